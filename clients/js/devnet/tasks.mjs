// Run by the Rust test crates/client/tests/js.rs against a devnet it started: deposits, deploys
// the millionaires contract from `config.wasm` (a path), adds `config.millionaires` with compute
// tasks (reporting every stage), confirms them on chain, adds `config.many` (if given) with one
// `computeMany` (one record transaction) and asks who is richest — all with
// enigma-js — and prints what it got as JSON on stdout. With `config.expect` = "refusal" it
// does only `config.action` ("deploy" or "compute" on `config.contract`) and prints the reason
// it was refused. A failure exits 1 with the reason on stderr.
//
//   node devnet/tasks.mjs < config.json   (the config on stdin: it holds the account's key)
import { readFileSync } from 'node:fs';

import { encodeAbiParameters } from 'viem';

import { Client } from '../src/index.mjs';

const config = JSON.parse(readFileSync(0, 'utf8'));
const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
const add = (who, worth) => encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [who, BigInt(worth)]);
const args = (h) => Uint8Array.from(Buffer.from(h.slice(2), 'hex'));
try {
  const client = await Client.connect(config.connect);
  const wasm = readFileSync(config.wasm);
  if (config.expect === 'refusal') {
    let refused = '';
    try {
      const got = config.action === 'deploy'
        ? await client.deploy(wasm, 'construct()')
        : await client.compute(config.contract, 'add_millionaire(address,uint256)', args(add(config.millionaires[0][0], 1)));
      refused = `ACCEPTED ${got.taskId}`;
    } catch (e) {
      refused = e.message;
    }
    console.log(JSON.stringify({ refused }));
    process.exit(0);
  }
  await client.deposit(config.deposit);
  const stages = [];
  const onProgress = (stage) => stages.push(stage);
  const deployed = await client.deploy(wasm, 'construct()', new Uint8Array(), { onProgress });
  const contract = deployed.contract;
  const tasks = [];
  for (const [who, worth] of config.millionaires) {
    const outcome = await client.compute(contract, 'add_millionaire(address,uint256)', args(add(who, worth)), { onProgress });
    const receipt = await client.confirm(outcome);
    tasks.push({ taskId: outcome.taskId, status: receipt.status, finality: outcome.finality, gasUsed: outcome.gasUsed, deltaHash: outcome.deltaHash });
  }
  // `config.many`: more millionaires in one record transaction (computeMany).
  const many = [];
  if (config.many) {
    const settled = await client.computeMany(
      config.many.map(([who, worth]) => ({ contract, callable: 'add_millionaire(address,uint256)', args: args(add(who, worth)) })),
      { onProgress },
    );
    for (const s of settled) {
      if (s.status !== 'fulfilled') throw s.reason;
      many.push({ taskId: s.value.taskId, recordTx: s.value.recordTx, deltaHash: s.value.deltaHash, status: await client.waitFinal(s.value.taskId) });
    }
  }
  const richest = await client.compute(contract, 'compute_richest()', new Uint8Array());
  console.log(JSON.stringify({
    many,
    address: client.address,
    contract,
    deployTask: deployed.taskId,
    stages: [...new Set(stages)],
    tasks,
    richest: hex(richest.output),
    richestStatus: await client.waitFinal(richest.taskId),
    balances: Object.fromEntries(Object.entries(await client.balances()).map(([k, v]) => [k, String(v)])),
  }));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
