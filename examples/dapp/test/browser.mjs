// Drives the template dApp and the network dashboard in a real headless Chromium (Debian's
// `chromium`, through playwright-core: no browser download), against a devnet started by the
// Rust test crates/client/tests/js.rs. It builds the dApp with Vite, serves it with `vite
// preview`, plays the millionaires' problem and a sealed-bid auction through the page, then
// opens the gateway's dashboard and waits for the new contract and task to show with their
// final status. Screenshots go to $ENIGMA_ARTIFACTS. Prints what it saw as JSON; exits 1 with
// the reason (and a screenshot) on failure.
//
//   ENIGMA_DEVNET=.devnet/devnet.json node test/browser.mjs
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const devnet = JSON.parse(readFileSync(process.env.ENIGMA_DEVNET, 'utf8'));
const artifacts = process.env.ENIGMA_ARTIFACTS || join(here, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 120_000;

await build({ root: here, logLevel: 'warn' });
const server = await preview({ root: here, preview: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
const url = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
const logs = [];
page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
const wasmFetched = [];
const sockets = [];
page.on('websocket', (ws) => sockets.push(ws.url()));
page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmFetched.push(new URL(r.url()).pathname); });
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const text = (selector) => page.locator(selector).innerText();

/** Clicks, then waits until the page is idle again (its buttons re-enabled) without an error. */
async function click(selector) {
  await page.click(selector);
  await page.waitForFunction(() => !document.querySelector('#deposit').disabled, null, { timeout: TIMEOUT });
  if (await page.locator('#error').isVisible()) throw new Error(`the page shows an error after ${selector}: ${await text('#error')}`);
}

async function account(i) {
  await page.selectOption('#account', devnet.accounts[i].address);
  await page.waitForFunction(() => !document.querySelector('#deposit').disabled, null, { timeout: TIMEOUT });
}

// A browser wallet (EIP-1193) that is anvil itself: its development accounts are unlocked, so it
// sends transactions (eth_sendTransaction) and signs typed data (eth_signTypedData_v4) as a
// wallet would, with its own EIP-712 implementation, not enigma-js's.
await page.addInitScript((chainUrl) => {
  window.ethereum = {
    async request({ method, params }) {
      const response = await fetch(chainUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: params ?? [] }),
      });
      const body = await response.json();
      if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code });
      return body.result;
    },
  };
}, devnet.chain_url);

try {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await click('#deposit');

  // The millionaires' problem: deploy, three secret entries, the richest by task and by query.
  await click('#mill-deploy');
  const millionaires = await text('#mill-contract');
  const people = [[devnet.accounts[1].address, 1000], [devnet.accounts[2].address, 5000], [devnet.accounts[3].address, 3000]];
  for (const [who, worth] of people) {
    await page.fill('#mill-address', who);
    await page.fill('#mill-worth', String(worth));
    await click('#mill-add');
  }
  await click('#mill-richest');
  const richestByTask = await text('#mill-result');
  const richestTask = await page.locator('#tasks tr').first().getAttribute('data-task');
  await page.evaluate(() => { document.querySelector('#mill-result').textContent = '–'; });
  await click('#mill-query');
  const richestByQuery = await text('#mill-result');
  // Every task's row reaches its final status on chain.
  await page.waitForFunction(
    () => [...document.querySelectorAll('#tasks .chain')].every((c) => c.textContent === 'Verified'),
    null, { timeout: TIMEOUT },
  );
  const taskRows = await page.locator('#tasks tr').count();
  const pushedResults = await page.locator('#tasks tr[data-via="websocket"]').count();
  await shot('dapp-millionaires');

  // The sealed-bid auction: the seller deploys, two accounts bid, one asks its own bid, the
  // seller closes: the higher bidder wins at the second price.
  await page.fill('#auction-reserve', '10');
  await click('#auction-deploy');
  const auction = await text('#auction-contract');
  for (const [i, bid] of [[1, 30], [2, 50]]) {
    await account(i);
    await click('#deposit');
    await page.fill('#auction-amount', String(bid));
    await click('#auction-bid');
  }
  await account(1);
  await click('#auction-mine');
  const myBid = await text('#auction-my');
  await account(0);
  await click('#auction-close');
  const auctionResult = await text('#auction-result');
  await shot('dapp-auction');

  // The browser wallet: it pays, records and signs the tasks and the query (typed data).
  await click('#wallet');
  const walletAccount = await text('#who');
  await click('#deposit');
  await click('#mill-deploy');
  const walletContract = await text('#mill-contract');
  await page.fill('#mill-address', devnet.accounts[4].address);
  await page.fill('#mill-worth', '7');
  await click('#mill-add');
  await page.evaluate(() => { document.querySelector('#mill-result').textContent = '–'; });
  await click('#mill-query');
  const walletRichest = await text('#mill-result');
  await shot('dapp-wallet');

  // The dashboard shows the new contract and the task with its final status, live.
  const dashboard = await browser.newPage({ viewport: { width: 1300, height: 1200 } });
  await dashboard.goto(`${devnet.gateway_url}/dashboard`);
  await dashboard.waitForSelector(`#contracts code[data-full="${millionaires}"]`, { timeout: TIMEOUT });
  const row = dashboard.locator('#tasks tr', { has: dashboard.locator(`code[data-full="${richestTask}"]`) });
  await row.locator('.task-status.Verified').waitFor({ timeout: TIMEOUT });
  const dashboardState = await dashboard.locator('#state').innerText();
  const workers = await dashboard.locator('#workers tr').count();
  await dashboard.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });

  console.log(JSON.stringify({
    wasmFetched, sockets, millionaires, richestByTask, richestByQuery, richestTask, taskRows, pushedResults, auction, myBid, auctionResult,
    wallet: { account: walletAccount, contract: walletContract, richest: walletRichest },
    dashboard: { state: dashboardState, workers, taskStatus: await row.locator('.task-status').innerText() },
  }));
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(`${e.stack || e}\n--- page console ---\n${logs.join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  await new Promise((r) => server.httpServer.close(r));
}
