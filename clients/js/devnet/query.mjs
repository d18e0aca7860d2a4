// Run by the Rust test crates/client/tests/js.rs against a devnet it started (`config.connect`
// is what the client connects with): asks a query with
// enigma-js (signed and anonymous) and prints what it got as JSON on stdout; a refusal exits 1
// with the reason on stderr.
//
//   node devnet/query.mjs < config.json   (the config on stdin: it holds the account's key)
import { readFileSync } from 'node:fs';

import { Client } from '../src/index.mjs';

const config = JSON.parse(readFileSync(0, 'utf8'));
const bytes = (hex) => Uint8Array.from(Buffer.from(hex.replace(/^0x/, ''), 'hex'));
const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
try {
  const client = await Client.connect(config.connect);
  if (config.expectRefusal) {
    // Through a hostile gateway: the query must be refused, and the reason printed.
    let refused = '';
    try {
      const got = await client.query(config.contract, config.callable, bytes(config.args));
      refused = `ACCEPTED ${hex(got.output)}`;
    } catch (e) {
      refused = e.message;
    }
    console.log(JSON.stringify({ refused }));
    process.exit(0);
  }
  const signed = await client.query(config.contract, config.callable, bytes(config.args));
  const anonymous = await client.query(config.contract, config.callable, bytes(config.args), { anonymous: true });
  let refused = '';
  try {
    await client.query(config.contract, config.taskOnly, new Uint8Array());
  } catch (e) {
    refused = e.message;
  }
  // A permit: signed once, carried by queries instead of a signature each; a permit for
  // another contract is refused by the enclave; once revoked (a task), it is refused too.
  const permit = await client.signPermit('js-test', [config.contract], Math.floor(Date.now() / 1000) + 3600);
  const viaPermit = await client.query(config.contract, config.callable, bytes(config.args), { permit });
  const elsewhere = await client.signPermit('js-test', [`0x${'ab'.repeat(32)}`], Math.floor(Date.now() / 1000) + 3600);
  let permitRefused = '';
  try {
    await client.query(config.contract, config.callable, bytes(config.args), { permit: elsewhere });
  } catch (e) {
    permitRefused = e.message;
  }
  await client.deposit(100_000_000n);
  await client.revokePermit(config.contract, 'js-test');
  let revokedRefused = '';
  try {
    await client.query(config.contract, config.callable, bytes(config.args), { permit, latest: true });
  } catch (e) {
    revokedRefused = e.message;
  }
  // Every delta hash as the chain keeps it (from slots, or from chunks' receipt events).
  const deltaHashes = [];
  for (let i = 0; i < (config.deltaCount ?? 0); i++) {
    deltaHashes.push(await client.deltaHashAt(config.contract, i));
  }
  console.log(JSON.stringify({
    deltaHashes,
    permitOutput: hex(viaPermit.output),
    permitCaller: viaPermit.caller,
    permitRefused,
    revokedRefused,
    address: client.address,
    output: hex(signed.output),
    anonymousOutput: hex(anonymous.output),
    worker: signed.worker,
    deltaCount: signed.deltaCount,
    refused,
  }));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
