// The template dApp: the millionaires' problem and a sealed-bid auction against a local devnet,
// with enigma-js. Start a devnet (`cargo run --profile devnet -p enigma -- devnet`), then
// `npm start` here. The devnet's summary (/devnet.json) gives the endpoints, the attestation
// policy and funded development accounts; a browser wallet (EIP-1193) can be used instead.
import { Client } from 'enigma-js';
import { bytesToHex, decodeAbiParameters, encodeAbiParameters, hexToBytes, keccak256 } from 'viem';

const $ = (id) => document.getElementById(id);
const GRAINS_PER_ENG = 100_000_000n;
const abi = (types, values) => hexToBytes(encodeAbiParameters(types.map((type) => ({ type })), values));
const decode = (types, bytes) => decodeAbiParameters(types.map((type) => ({ type })), bytesToHex(bytes));
const short = (h) => `${h.slice(0, 10)}…${h.slice(-6)}`;

let devnet;
let client;
const clients = new Map();
const state = { millionaires: null, auction: null, closeSecret: null, seller: null };

function showError(e) {
  $('error').hidden = false;
  $('error').textContent = e?.message ?? String(e);
  console.error(e);
}

/** Runs `work` with the buttons held, showing any error. */
async function busy(work) {
  const buttons = [...document.querySelectorAll('button')];
  const was = buttons.map((b) => b.disabled);
  buttons.forEach((b) => { b.disabled = true; });
  $('error').hidden = true;
  try {
    await work();
  } catch (e) {
    showError(e);
  } finally {
    buttons.forEach((b, i) => { b.disabled = was[i]; });
    refreshButtons();
    refreshBalances();
  }
}

function refreshButtons() {
  const m = state.millionaires != null;
  $('mill-add').disabled = !m;
  $('mill-richest').disabled = !m;
  $('mill-query').disabled = !m;
  const a = state.auction != null;
  $('auction-bid').disabled = !a;
  $('auction-mine').disabled = !a;
  $('auction-close').disabled = !a || client?.address !== state.seller;
}

async function refreshBalances() {
  if (!client) return;
  $('who').textContent = client.address;
  const { prepaid, eng } = await client.balances();
  $('balances').textContent = `prepaid ${Number(prepaid / GRAINS_PER_ENG).toLocaleString()} ENG · holds ${Number(eng / GRAINS_PER_ENG).toLocaleString()} ENG`;
}

/** A row in the task table that follows the task's stages, then its status on chain. */
function track(what) {
  const row = document.createElement('tr');
  row.innerHTML = '<td class="id">–</td><td></td><td class="stage">starting</td><td class="chain">–</td><td class="gas">–</td>';
  row.children[1].textContent = what;
  $('tasks').prepend(row);
  return {
    onProgress(stage, detail) {
      row.querySelector('.stage').textContent = stage;
      if (detail?.via) row.dataset.via = detail.via; // how the result came: websocket or http
      if (detail?.taskId) {
        row.dataset.task = detail.taskId;
        row.querySelector('.id').innerHTML = `<code title="${detail.taskId}">${short(detail.taskId)}</code>`;
      }
    },
    async done(outcome) {
      row.querySelector('.gas').textContent = outcome.gasUsed;
      const status = await client.waitFinal(outcome.taskId);
      const cell = row.querySelector('.chain');
      cell.textContent = status;
      cell.className = `chain ${status}`;
    },
    failed(e) {
      row.querySelector('.stage').textContent = `refused: ${e.message}`;
      if (e.taskId) client.taskStatus(e.taskId).then((s) => { row.querySelector('.chain').textContent = s; });
    },
  };
}

/** Runs a task (deploy or compute) with a row following it. */
async function task(what, run) {
  const t = track(what);
  try {
    const outcome = await run(t.onProgress);
    t.done(outcome).catch(showError);
    return outcome;
  } catch (e) {
    t.failed(e);
    throw e;
  }
}

async function module(name) {
  const response = await fetch(`/contracts/${name}.wasm`);
  if (!response.ok) throw new Error(await response.text());
  return new Uint8Array(await response.arrayBuffer());
}

async function use(account) {
  if (!clients.has(account.address)) {
    clients.set(account.address, await Client.connect({
      chainUrl: devnet.chain_url,
      gatewayUrl: devnet.gateway_url,
      enigma: devnet.deployment.enigma,
      policy: devnet.policy,
      secret: account.private_key,
    }));
  }
  client = clients.get(account.address);
  refreshButtons();
  await refreshBalances();
}

async function start() {
  const response = await fetch('/devnet.json');
  devnet = await response.json();
  if (!response.ok) throw new Error(devnet.error);
  $('network').innerHTML = `chain <code>${devnet.chain_url}</code> · gateway <code>${devnet.gateway_url}</code> · ` +
    `<a href="${devnet.gateway_url}/dashboard" target="_blank">network dashboard</a>`;
  for (const a of devnet.accounts) {
    const option = document.createElement('option');
    option.value = a.address;
    option.textContent = a.address;
    $('account').append(option);
  }
  $('account').onchange = () => busy(() => use(devnet.accounts.find((a) => a.address === $('account').value)));
  if (globalThis.ethereum) {
    $('wallet').hidden = false;
    $('wallet').onclick = () => busy(async () => {
      client = await Client.connect({
        chainUrl: devnet.chain_url, gatewayUrl: devnet.gateway_url, enigma: devnet.deployment.enigma,
        policy: devnet.policy, wallet: globalThis.ethereum,
      });
      $('account').value = '';
      refreshButtons();
      await refreshBalances();
    });
  }
  await use(devnet.accounts[0]);
  $('mill-address').value = devnet.accounts[0].address;

  $('deposit').onclick = () => busy(() => client.deposit(1_000n * GRAINS_PER_ENG));

  $('mill-deploy').onclick = () => busy(async () => {
    const wasm = await module('millionaires');
    const o = await task('deploy millionaires', (onProgress) => client.deploy(wasm, 'construct()', new Uint8Array(), { onProgress }));
    state.millionaires = o.contract;
    $('mill-contract').textContent = o.contract;
    $('mill-result').textContent = '–';
  });
  $('mill-add').onclick = () => busy(async () => {
    const who = $('mill-address').value.trim();
    const worth = BigInt($('mill-worth').value || '0');
    const args = abi(['address', 'uint256'], [who, worth]);
    await task(`add_millionaire(${short(who)}, ••••)`, (onProgress) =>
      client.compute(state.millionaires, 'add_millionaire(address,uint256)', args, { onProgress }));
    $('mill-worth').value = '';
  });
  $('mill-richest').onclick = () => busy(async () => {
    const o = await task('compute_richest()', (onProgress) =>
      client.compute(state.millionaires, 'compute_richest()', new Uint8Array(), { onProgress }));
    $('mill-result').textContent = decode(['address'], o.output)[0];
  });
  $('mill-query').onclick = () => busy(async () => {
    // The worker's newest state: entries whose receipts are not on chain yet count.
    const q = await client.query(state.millionaires, 'compute_richest()', new Uint8Array(), { latest: true });
    $('mill-result').textContent = decode(['address'], q.output)[0];
  });

  $('auction-deploy').onclick = () => busy(async () => {
    const wasm = await module('auction');
    state.closeSecret = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
    state.seller = client.address;
    const args = abi(['address', 'uint256', 'bytes32', 'uint256'], [client.address, BigInt($('auction-reserve').value || '0'), keccak256(state.closeSecret), 0n]);
    const o = await task('deploy auction', (onProgress) =>
      client.deploy(wasm, 'construct(address,uint256,bytes32,uint256)', args, { onProgress }));
    state.auction = o.contract;
    $('auction-contract').textContent = o.contract;
    $('auction-result').textContent = 'open';
  });
  $('auction-bid').onclick = () => busy(async () => {
    const amount = BigInt($('auction-amount').value || '0');
    await task(`bid(••••) by ${short(client.address)}`, (onProgress) =>
      client.compute(state.auction, 'bid(uint256)', abi(['uint256'], [amount]), { onProgress }));
    $('auction-amount').value = '';
  });
  $('auction-mine').onclick = () => busy(async () => {
    // The worker's newest state: a bid whose receipt is not on chain yet counts.
    const q = await client.query(state.auction, 'my_bid()', new Uint8Array(), { latest: true });
    $('auction-my').textContent = `your bid: ${decode(['uint256'], q.output)[0]}`;
  });
  $('auction-close').onclick = () => busy(async () => {
    const o = await task('close(secret)', (onProgress) =>
      client.compute(state.auction, 'close(bytes32)', abi(['bytes32'], [state.closeSecret]), { onProgress }));
    const [winner, price] = decode(['address', 'uint256'], o.output);
    $('auction-result').textContent = `${winner} wins at ${price}`;
  });
  refreshButtons();
  document.body.dataset.ready = 'true';
}

start().catch(showError);
