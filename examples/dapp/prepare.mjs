// Prepares what the dApp needs from the repository, so `npm start` works on a fresh clone:
// enigma-js (clients/js: its packages, and its WebAssembly core built from crates/wasm unless it
// is newer than the sources) and the secret contracts the dApp deploys (examples/contracts:
// millionaires, auction) for wasm32, as `enigma devnet --example` and the tests build them (same
// target directory and flags, so a build one of them made is reused). The dev server serves the
// contracts at /contracts/.
//
//   node prepare.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CONTRACTS = ['millionaires', 'auction'];
export const built = resolve(root, 'target/contracts/wasm32-unknown-unknown/release');

const js = resolve(root, 'clients/js');

/** The newest modification time under `dir` (its .rs and .toml files). */
function newest(dir) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) t = Math.max(t, newest(path));
    else if (/\.(rs|toml)$/.test(entry.name)) t = Math.max(t, statSync(path).mtimeMs);
  }
  return t;
}

function run(what, cmd, args, options = {}) {
  try {
    execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  } catch (e) {
    console.error(`enigma-dapp: ${what} failed (${e.message.split('\n')[0]})`);
    process.exit(1);
  }
}

function prepareClient() {
  if (!existsSync(join(js, 'node_modules/viem'))) {
    console.log('enigma-dapp: installing enigma-js\'s packages (npm ci in clients/js) …');
    run('npm ci in clients/js', 'npm', ['ci', '--no-audit', '--no-fund'], { cwd: js });
  }
  const wasm = join(js, 'pkg/enigma_wasm_bg.wasm');
  const sources = Math.max(...['crates/wasm', 'crates/types', 'crates/crypto', 'crates/attestation'].map((d) => newest(resolve(root, d))));
  if (existsSync(wasm) && statSync(wasm).mtimeMs > sources) return;
  let version = '';
  try {
    version = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' });
  } catch {
    // installed below
  }
  if (!version.includes('0.2.108')) {
    console.log('enigma-dapp: installing wasm-bindgen-cli 0.2.108 (once, a few minutes) …');
    run('installing wasm-bindgen-cli', 'cargo', ['install', 'wasm-bindgen-cli', '--version', '0.2.108', '--locked']);
  }
  console.log('enigma-dapp: building enigma-js\'s WebAssembly core …');
  run('building enigma-js', 'node', ['build.mjs'], { cwd: js });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  prepareClient();
  const config = ['opt-level="z"', 'lto=true', 'codegen-units=1', 'panic="abort"', 'strip=true', 'debug=false']
    .flatMap((c) => ['--config', `profile.release.${c}`]);
  const env = { ...process.env };
  for (const v of ['CARGO_TARGET_DIR', 'RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'CARGO_BUILD_RUSTFLAGS', 'CARGO_BUILD_TARGET']) delete env[v];
  console.log(`enigma-dapp: building ${CONTRACTS.join(', ')} for wasm32 …`);
  try {
    execFileSync('rustup', ['target', 'add', 'wasm32-unknown-unknown'], { cwd: root, stdio: 'ignore' });
  } catch {
    // cargo says what is missing below
  }
  run('building the contracts', 'cargo', [
    'build', '--release', '--locked', '--quiet', '--target', 'wasm32-unknown-unknown',
    '--manifest-path', resolve(root, 'examples/contracts/Cargo.toml'),
    '--target-dir', resolve(root, 'target/contracts'),
    ...CONTRACTS.flatMap((p) => ['--package', p]), ...config,
  ], { env });
  console.log(`enigma-dapp: contracts built in ${built}`);
}
