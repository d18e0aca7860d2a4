// Builds the secret contracts the dApp deploys (examples/contracts: millionaires, auction) for
// wasm32, as `enigma devnet --example` and the tests build them (same target directory and
// flags, so a build one of them made is reused). The dev server serves them at /contracts/.
//
//   node contracts.mjs
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CONTRACTS = ['millionaires', 'auction'];
export const built = resolve(root, 'target/contracts/wasm32-unknown-unknown/release');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
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
  try {
    execFileSync('cargo', [
      'build', '--release', '--locked', '--quiet', '--target', 'wasm32-unknown-unknown',
      '--manifest-path', resolve(root, 'examples/contracts/Cargo.toml'),
      '--target-dir', resolve(root, 'target/contracts'),
      ...CONTRACTS.flatMap((p) => ['--package', p]), ...config,
    ], { cwd: root, env, stdio: 'inherit' });
  } catch (e) {
    console.error(`enigma-dapp: building the contracts failed (${e.message.split('\n')[0]})`);
    process.exit(1);
  }
  console.log(`enigma-dapp: contracts built in ${built}`);
}
