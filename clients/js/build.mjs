// Builds enigma-js's WebAssembly core from crates/wasm: `cargo build` for wasm32-unknown-unknown,
// optimized for size, then the pinned wasm-bindgen into pkg/ (the `web` target: ES modules that
// load in browsers, bundlers and Node). Prints the sizes, gzipped as a browser downloads them.
//
//   node build.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

// wasm-bindgen's command-line tool must match the `wasm-bindgen` crate (crates/wasm/Cargo.toml).
const WASM_BINDGEN = '0.2.108';
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const pkg = join(here, 'pkg');

function run(cmd, args) {
  try {
    execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
  } catch (e) {
    console.error(`enigma-js: \`${cmd} ${args.join(' ')}\` failed (${e.message.split('\n')[0]})`);
    process.exit(1);
  }
}

let version = '';
try {
  version = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).trim();
} catch {
  // reported below
}
if (!version.endsWith(` ${WASM_BINDGEN}`)) {
  console.error(
    `enigma-js: needs wasm-bindgen ${WASM_BINDGEN} (found: ${version || 'none'}); install it with\n` +
      `  cargo install wasm-bindgen-cli --version ${WASM_BINDGEN} --locked`,
  );
  process.exit(1);
}

const size = [
  ['opt-level', '"z"'],
  ['lto', 'true'],
  ['codegen-units', '1'],
  ['panic', '"abort"'],
  ['debug', 'false'],
  ['strip', 'true'],
].flatMap(([k, v]) => ['--config', `profile.release.${k}=${v}`]);
run('cargo', ['build', '--locked', '--release', '-p', 'enigma-wasm', '--target', 'wasm32-unknown-unknown', ...size]);
mkdirSync(pkg, { recursive: true });
run('wasm-bindgen', [
  '--target', 'web',
  '--out-dir', pkg,
  join(root, 'target/wasm32-unknown-unknown/release/enigma_wasm.wasm'),
]);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const wasm = readFileSync(join(pkg, 'enigma_wasm_bg.wasm'));
const js = readFileSync(join(pkg, 'enigma_wasm.js'));
const gz = gzipSync(wasm, { level: 9 }).length + gzipSync(js, { level: 9 }).length;
console.log(
  `enigma-js: pkg/ built — wasm ${kb(wasm.length)}, js ${kb(js.length)}; ` +
    `${kb(gz)} gzipped together (goal: at most 300 KB)`,
);
