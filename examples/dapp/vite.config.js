// The template dApp's dev server: besides the app it serves the devnet's summary (/devnet.json,
// read from the devnet's data directory on each request: $ENIGMA_DEVNET, or the repository's
// .devnet/devnet.json that `enigma devnet` writes) and the built contracts (/contracts/*.wasm).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { defineConfig } from 'vite';

import { built, CONTRACTS, root } from './prepare.mjs';

const devnetJson = () => process.env.ENIGMA_DEVNET || resolve(root, '.devnet/devnet.json');

function serveDevnet(server) {
  server.middlewares.use((req, res, next) => {
    const url = req.url.split('?')[0];
    if (url === '/devnet.json') {
      const path = devnetJson();
      if (!existsSync(path)) {
        res.statusCode = 503;
        res.end(JSON.stringify({ error: `no devnet: ${path} does not exist. Start one: cargo run --profile devnet -p enigma -- devnet` }));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(readFileSync(path));
      return;
    }
    const m = /^\/contracts\/([a-z_-]+)\.wasm$/.exec(url);
    if (m && CONTRACTS.includes(m[1])) {
      const path = resolve(built, `${m[1]}.wasm`);
      if (!existsSync(path)) {
        res.statusCode = 404;
        res.end(`${m[1]} is not built: run \`node prepare.mjs\` in examples/dapp`);
        return;
      }
      res.setHeader('content-type', 'application/wasm');
      res.end(readFileSync(path));
      return;
    }
    next();
  });
}

export default defineConfig({
  plugins: [{ name: 'enigma-devnet', configureServer: serveDevnet, configurePreviewServer: serveDevnet }],
  // enigma-js (a link to clients/js) loads its WebAssembly from the repository, outside this
  // directory: the dev server may serve files from the repository.
  server: { port: 5173, host: '127.0.0.1', fs: { allow: [root] } },
  preview: { port: 4173, host: '127.0.0.1' },
  build: { target: 'es2022' },
  optimizeDeps: { exclude: ['enigma-js'] },
});
