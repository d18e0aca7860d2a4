// Compiled (not run) by `tsc -p test` in scripts/test: the declared types of enigma-js
// (src/index.d.ts) describe the API the way a TypeScript dApp uses it.
import { Client, EnigmaError, TASK_STATUS, type Permit, type Stage, type TaskOutcome } from 'enigma-js';

export async function example(wallet: { request(a: { method: string }): Promise<unknown> }): Promise<string> {
  const client = await Client.connect({
    chainUrl: 'http://127.0.0.1:8545',
    gatewayUrl: 'http://127.0.0.1:3346',
    enigma: '0x0000000000000000000000000000000000000001',
    policy: {},
    wallet,
  });
  await client.deposit(100_000_000n);
  const stages: Stage[] = [];
  const deployed: TaskOutcome = await client.deploy(new Uint8Array(), 'construct()', new Uint8Array(), {
    onProgress: (stage) => stages.push(stage),
  });
  const outcome = await client.compute(deployed.contract, 'add(uint256)', new Uint8Array(32), { gasLimit: 100_000, value: 0n });
  const receipt = await client.confirm(outcome);
  const many = await client.computeMany([
    { contract: deployed.contract, callable: 'add(uint256)', args: new Uint8Array(32) },
    { contract: deployed.contract, callable: 'total()', gasLimit: 100_000n },
  ]);
  const recordTxs = many.map((m) => (m.status === 'fulfilled' ? m.value.recordTx : String(m.reason)));
  const permit: Permit = await client.signPermit('app', [deployed.contract], Math.floor(Date.now() / 1000) + 3600);
  const answer = await client.query(deployed.contract, 'total()', undefined, { permit, latest: true });
  const tip: `0x${string}` | null = await client.deltaHashAt(deployed.contract, answer.deltaCount - 1);
  try {
    await client.refund(outcome.taskId);
  } catch (e) {
    if (e instanceof EnigmaError && e.taskId) return e.message;
  }
  return `${receipt.status} ${answer.onChain} ${tip} ${answer.caller} ${TASK_STATUS.length} ${outcome.finality} ${recordTxs.join()}`;
}
