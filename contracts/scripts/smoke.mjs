#!/usr/bin/env node
// End-to-end smoke test of the compiled contracts on a throwaway anvil, driven through `cast`
// (both from the pinned npm packages, offline). It deploys the token, both attestation
// verifiers, Enigma and VotingETH, then walks the whole lifecycle: IAS verification of the real
// Intel reports (and their rejections; the principal registers with its report, the workers'
// reports bind no operator and are refused), simulation registration bound to each operator
// (and a copied registration refused), stakes, epochs, worker selection (checked against a
// JavaScript mirror of the documented algorithm), the owner's task limits, task records with
// their per-contract order, every receipt kind (and one out of order), batches, callbacks,
// timeouts and withdrawals, and prints the gas of each step. The digests are built here
// independently from the Solidity code, byte by byte as docs/api.md describes them, and checked
// against the known answers of docs/api.md section 4 first.
//
//   node build.mjs && node scripts/smoke.mjs
//
// Not part of CI (the Rust tests against anvil are); exits non-zero on the first failed check.

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TESTDATA = join(ROOT, '..', 'testdata', 'ias');

// anvil's well-known development keys (public; never use them elsewhere).
const KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
];
// Test-only enclave keys for the simulation path.
const SIM_AUTHORITY_KEY = '0x' + '11'.repeat(32);
const SIM_WORKER_KEY = '0x' + '22'.repeat(32);
const SIM_WORKER_MR = '0x' + 'aa'.repeat(32);
const SIM_KM_MR = '0x' + 'bb'.repeat(32);

const EPOCH_SIZE = 10;
const TIMEOUT_BLOCKS = 20;
// The task limits the deployer sets (and may change as owner).
const MIN_GAS_PRICE = 2n;
const MAX_GAS_LIMIT = 10_000_000n;
const ZERO32 = '0x' + '00'.repeat(32);
const ZERO_ADDRESS = '0x' + '00'.repeat(20);

const gas = [];
let rpc;
let anvil;

// ---------------------------------------------------------------------------------------------
// Tools

function tool(name) {
  const platform = { linux: 'linux', darwin: 'darwin', win32: 'win32' }[process.platform];
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
  const binary = join(ROOT, 'node_modules', '@foundry-rs', `${name}-${platform}-${arch}`, 'bin', name);
  return existsSync(binary) ? binary : join(ROOT, 'node_modules', '.bin', name);
}
const CAST = tool('cast');
const ANVIL = tool('anvil');

function cast(...args) {
  return execFileSync(CAST, args.map(String), {
    encoding: 'utf8',
    env: { ...process.env, ETH_RPC_URL: rpc ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  }).trim();
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  process.stdout.write(`  ok  ${what}\n`);
}

function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

const strip = (hex) => (hex.startsWith('0x') ? hex.slice(2) : hex);
const keccak = (hex) => cast('keccak', `0x${strip(hex)}`);
const address = (key) => cast('wallet', 'address', '--private-key', key).toLowerCase();
const signDigest = (key, digest) => cast('wallet', 'sign', '--no-hash', '--private-key', key, digest);
const selector = (signature) => cast('sig', signature);

// `enc` of PROTOCOL.md section 1, on hex strings without 0x.
const u64 = (n) => BigInt(n).toString(16).padStart(16, '0');
const u256 = (n) => BigInt(n).toString(16).padStart(64, '0');
const enc = (hex) => u64(strip(hex).length / 2) + strip(hex);
const encList = (items) => u64(items.length) + items.map(enc).join('');

function send(key, to, signature, ...args) {
  const receipt = JSON.parse(cast('send', '--private-key', key, to, signature, ...args, '--json'));
  if (receipt.status !== '0x1') throw new Error(`${signature} reverted on chain`);
  return receipt;
}

/// Records the gas of the first transaction measured under `label` (later ones are repeats).
function measured(label, receipt, perTask = 1) {
  if (label && !gas.some((g) => g.label === label)) {
    const used = Number(BigInt(receipt.gasUsed));
    gas.push({ label, used, perTask: Math.round(used / perTask) });
  }
  return receipt;
}

function deploy(key, name, types = '', ...args) {
  const artifact = JSON.parse(readFileSync(join(ROOT, 'artifacts', `${name}.json`), 'utf8'));
  const encoded = types ? strip(cast('abi-encode', `constructor(${types})`, ...args)) : '';
  const receipt = JSON.parse(cast('send', '--private-key', key, '--create', artifact.bytecode + encoded, '--json'));
  if (receipt.status !== '0x1') throw new Error(`deploying ${name} failed`);
  measured(`deploy ${name}`, receipt);
  return receipt.contractAddress.toLowerCase();
}

/// A view call's outputs as JSON, with every integer kept as a decimal string (exact beyond 2^53)
/// and addresses in lower case.
function call(to, signature, ...args) {
  const text = cast('call', to, signature, ...args, '--json');
  return JSON.parse(text.replace(/(?<=[\[,]\s*)(-?\d+)(?=\s*[,\]])/g, '"$1"'), (_, v) =>
    typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v) ? v.toLowerCase() : v);
}

/// Runs `fn` (a call or send) and requires it to revert with the custom error `errorSignature`.
function expectRevert(errorSignature, what, fn) {
  const wanted = selector(errorSignature);
  try {
    fn();
  } catch (e) {
    const text = `${e.stderr ?? ''}${e.message}`;
    const data = /data: "(0x[0-9a-fA-F]*)"/.exec(text)?.[1] ?? '';
    check(data.toLowerCase().startsWith(wanted), `${what} reverts with ${errorSignature.split('(')[0]}`);
    return;
  }
  throw new Error(`check failed: ${what} did not revert (expected ${errorSignature})`);
}

const blockNumber = () => Number(cast('block-number'));
const mine = (blocks) => cast('rpc', 'anvil_mine', `0x${blocks.toString(16)}`);

// ---------------------------------------------------------------------------------------------
// anvil

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startAnvil() {
  const port = await freePort();
  anvil = spawn(ANVIL, ['--host', '127.0.0.1', '--port', String(port), '--silent'], { stdio: 'ignore' });
  // Last resort if the process dies abruptly; the normal path stops anvil in stopAnvil().
  process.on('exit', () => anvil.exitCode === null && anvil.kill());
  rpc = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      cast('chain-id');
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('anvil did not start');
}

// ---------------------------------------------------------------------------------------------
// Protocol helpers (the JavaScript mirror)

function epochDigest(seed, nonce, snapshotBlock, groupSize, signers, stakes) {
  return keccak(
    enc(u256(seed)) + enc(u256(nonce)) + enc(u256(snapshotBlock)) + enc(u256(groupSize)) +
      encList(signers) + encList(stakes.map(u256)),
  );
}

/// The selection of docs/api.md, computed here from the epoch's lists.
function selectWorkers(seed, scAddr, signers, stakes, groupSize) {
  const n = signers.length;
  const size = Math.min(groupSize, n);
  const total = stakes.reduce((a, b) => a + BigInt(b), 0n);
  const group = [];
  for (let nonce = 0; group.length < size && nonce < 32 * size; nonce++) {
    const r = BigInt(keccak(u256(seed) + strip(scAddr) + u256(nonce))) % total;
    let cumulative = 0n;
    let pick = signers[n - 1];
    for (let i = 0; i < n; i++) {
      cumulative += BigInt(stakes[i]);
      if (cumulative > r) {
        pick = signers[i];
        break;
      }
    }
    if (!group.includes(pick)) group.push(pick);
  }
  return group;
}

const taskIdOf = (sender, nonce) => keccak(strip(sender) + u256(nonce));
const text = (s) => Buffer.from(s).toString('hex');
const hashText = (s) => keccak(text(s));

function deployDigest(taskId, inputsHash, codeHash, initDeltaHash, gasLimit, gasUsed, ethPayload, ethAddress) {
  return keccak(
    enc(taskId) + enc(inputsHash) + enc(codeHash) + enc(initDeltaHash) + enc(u64(gasLimit)) +
      enc(u64(gasUsed)) + enc(ethPayload) + enc(ethAddress) + enc('01'),
  );
}

/// `deltaCount` is the number of deltas before the task, `prev` the last of them.
function computeDigest(taskId, scAddr, codeHash, inputsHash, deltaCount, prev, delta, output, gasLimit, gasUsed,
  ethPayload, ethAddress) {
  return keccak(
    enc(taskId) + enc(scAddr) + enc(codeHash) + enc(inputsHash) + enc(u64(deltaCount)) + enc(prev) + enc(delta) +
      enc(output) + enc(u64(gasLimit)) + enc(u64(gasUsed)) + enc(ethPayload) + enc(ethAddress) + enc('01'),
  );
}

/// For a deploy, `scAddr` is the task id and `codeHash` zero.
function failureDigest(taskId, scAddr, inputsHash, codeHash, output, gasLimit, gasUsed) {
  return keccak(
    enc(taskId) + enc(scAddr) + enc(inputsHash) + enc(codeHash) + enc(output) + enc(u64(gasLimit)) +
      enc(u64(gasUsed)) + enc('00'),
  );
}

function batchDigest(scAddr, codeHash, deltaCount, prev, entries) {
  return keccak(
    enc(scAddr) + enc(codeHash) + enc(u64(deltaCount)) + enc(prev) +
      encList(entries.map((e) => e.taskId)) +
      encList(entries.map((e) => e.inputsHash)) +
      encList(entries.map((e) => e.delta)) +
      encList(entries.map((e) => e.output)) +
      encList(entries.map((e) => u64(e.gasLimit))) +
      encList(entries.map((e) => u64(e.gasUsed))) +
      encList(entries.map((e) => (e.status ? '01' : '00'))),
  );
}

/// `H(enc("enigma-report-data-v1", operator(20), principal(20)))`: what an enclave puts in bytes
/// 20..52 of its report data.
const reportBinding = (operator, principal) =>
  keccak(enc(text('enigma-report-data-v1')) + enc(operator) + enc(principal));

/// An enclave's 64 bytes of report data (hex without 0x): signer(20) ‖ binding(32) ‖
/// u64be(issuedAt) ‖ 0000 (issuedAt is not checked on chain).
const ISSUED_AT = Math.floor(Date.now() / 1000);
const reportData = (signer, operator, principal, issuedAt = ISSUED_AT) =>
  strip(signer) + strip(reportBinding(operator, principal)) + u64(issuedAt) + '00000000';

/// What the simulation authority signs: enc("enigma-sim-attestation-v2", mrEnclave,
/// u16be(isvProdId), debug, reportData(64)).
const simDigest = (mrEnclave, product, debug, data) =>
  keccak(
    enc(text('enigma-sim-attestation-v2')) + enc(mrEnclave) + enc(product.toString(16).padStart(4, '0')) +
      enc(debug ? '01' : '00') + enc(data),
  );

const rand32 = (() => {
  let counter = 0;
  return (tag) => keccak(Buffer.from(`${tag}-${counter++}`).toString('hex'));
})();

// ---------------------------------------------------------------------------------------------

const SIG = {
  verify: 'verify(address,uint16,bytes)(bytes32,bytes32)',
  register: 'register(address,uint8,bytes)',
  registerPrincipal: 'registerPrincipal(uint8,bytes)',
  deposit: 'deposit(uint256)',
  withdraw: 'withdraw(uint256)',
  depositBalance: 'depositBalance(uint256)',
  depositBalanceWithPermit: 'depositBalanceWithPermit(uint256,uint256,uint8,bytes32,bytes32)',
  setWorkersParams: 'setWorkersParams(uint256,uint256,bytes)',
  createDeploymentTaskRecord: 'createDeploymentTaskRecord(bytes32,uint64,uint64,uint256,uint256)',
  createTaskRecord: 'createTaskRecord(bytes32,bytes32,uint64,uint64,uint256,uint256)',
  createTaskRecords: 'createTaskRecords(bytes32[],bytes32[],uint64[],uint64,uint256,uint256)',
  setTaskLimits: 'setTaskLimits(uint64,uint64)',
  setOwner: 'setOwner(address)',
  returnFeesForTask: 'returnFeesForTask(bytes32)',
  deploySecretContract: 'deploySecretContract(bytes32,bytes32,bytes32,bytes32,uint64,bytes,address,bytes)',
  commitReceipt: 'commitReceipt(bytes32,bytes32,bytes32,bytes32,uint64,bytes,address,bytes)',
  commitTaskFailure: 'commitTaskFailure(bytes32,bytes32,bytes32,uint64,bytes)',
  commitReceipts: 'commitReceipts(bytes32,bytes32[],bytes32[],bytes32[],uint64[],uint8[],bytes)',
  getActiveWorkers: 'getActiveWorkers(uint256)(address[],uint256[])',
  getWorkerGroup: 'getWorkerGroup(uint256,bytes32)(address[])',
  getWorkerBySigner:
    'getWorkerBySigner(address)((address,address,uint8,uint8,bytes32,uint256,uint256,uint256,uint256))',
  getEpoch: 'getEpoch(uint256)((uint256,uint256,uint256,uint256,address[],uint256[]))',
  getEpochForBlock: 'getEpochForBlock(uint256)((uint256,uint256,uint256,uint256,address[],uint256[]))',
  getTaskRecord:
    'getTaskRecord(bytes32)((address,bool,uint8,bytes32,uint64,uint64,uint256,uint256,uint256,uint256,bytes12))',
  getSecretContract: 'getSecretContract(bytes32)((address,bytes32,uint256,bytes32,uint256,uint256))',
  getDeltaHash: 'getDeltaHash(bytes32,uint256)(bytes32)',
  getDeltaHashes: 'getDeltaHashes(bytes32,uint256,uint256)(bytes32[])',
};
const ENG = 10n ** 8n;
const MAX = `0x${'f'.repeat(64)}`;
const GAS_LIMIT = 1_000_000n;
const GAS_PX = 2n;
const list = (items) => `[${items.join(',')}]`;

function loadIasVectors(keyOf) {
  return ['principal', 'worker0', 'worker1', 'worker2'].map((role) => {
    const v = JSON.parse(readFileSync(join(TESTDATA, `discovery-${role}.json`), 'utf8'));
    const report = Buffer.from(v.report, 'utf8').toString('hex');
    const quote = Buffer.from(JSON.parse(v.report).isvEnclaveQuoteBody, 'base64');
    keyOf.set(v.signer_address.toLowerCase(), v.signer_private_key);
    return {
      role,
      signer: v.signer_address.toLowerCase(),
      report,
      signature: v.signature_hex,
      evidence: cast('abi-encode', 'f(bytes,bytes)', `0x${report}`, `0x${v.signature_hex}`),
      mrEnclave: `0x${quote.subarray(112, 144).toString('hex')}`,
      mrSigner: `0x${quote.subarray(176, 208).toString('hex')}`,
    };
  });
}

/// Simulation evidence (320 bytes): the authority's signature over simDigest of the enclave's
/// report data `data` (reportData(signer, operator, principal): the verifier checks the signer,
/// Enigma.register the binding of operator and principal).
function simEvidence(data, mrEnclave, product, debug, key = SIM_AUTHORITY_KEY) {
  return cast('abi-encode', 'f(bytes32,uint16,bool,bytes32,bytes32,bytes)', mrEnclave, product, debug,
    `0x${data.slice(0, 64)}`, `0x${data.slice(64)}`, signDigest(key, simDigest(mrEnclave, product, debug, data)));
}

/// The known answers of docs/api.md section 4, recomputed by the mirror above (the selection
/// vector of section 6 is checked on chain, in the groupSize-2 step).
function knownAnswers() {
  const [I, I2, C, D0, D1, O, O2, P, T, T2, S] = ['inputs', 'inputs 2', 'code', 'delta 0', 'delta 1', 'output',
    'output 2', 'prev', 'task', 'task 2', 'contract'].map(hashText);
  const A = '0x' + '11'.repeat(20);
  const answers = [
    ['deploy success', deployDigest(T, I, C, D0, 1_000_000, 123_456, '0x', ZERO_ADDRESS),
      '0xe88091331e9e24dfd907aa35ad28d9ac26a17fe171e067e7440ad32badedb8a3'],
    ['deploy success with a callback', deployDigest(T, I, C, D0, 1_000_000, 123_456, '0xdeadbeef', A),
      '0x57d53ed311c5767d229876d52baa3d3dff55a33c751cb59a8440cddedf274872'],
    ['compute success', computeDigest(T, S, C, I, 7, P, D1, O, 1_000_000, 50_000, '0x', ZERO_ADDRESS),
      '0xc4793e643e9cf59a7de808fcd26c4df290b5cd55ac38e5b5e1416c3746cb3c7a'],
    ['compute failure', failureDigest(T, S, I, C, O, 1_000_000, 1_000_000),
      '0x7f1e4d7ae66ff99703ce999e12de97064d1758db4755872efe5322673b6f1f78'],
    ['deploy failure', failureDigest(T, T, I, ZERO32, O, 1_000_000, 777),
      '0x66018939312736d20fa6a655a82f210f2f7358a68a2d5359038a34ca8af6f00c'],
    ['receipt batch', batchDigest(S, C, 7, P, [
      { taskId: T, inputsHash: I, delta: D1, output: O, gasLimit: 1_000_000, gasUsed: 40_000, status: 1 },
      { taskId: T2, inputsHash: I2, delta: ZERO32, output: O2, gasLimit: 1_000_000, gasUsed: 40_001, status: 0 },
    ]), '0x9c1db5544d33204bf42d42e55c1b551dffc4e945df24d8f1d1bcdc65cc975266'],
    ['epoch', epochDigest(12345, 0, 100, 1, ['11'.repeat(20), '22'.repeat(20)], [10n ** 11n, 2n * 10n ** 11n]),
      '0x73d5c2fa07bf5293d5e09ce4247c62f00711a149748c6d113a0b7debc6bc766e'],
    ['epoch without workers', epochDigest(12345, 7, 100, 1, [], []),
      '0x1c83fe78c930deda31f94973e82844a3c6629f89d17f6bb1bc94bc78244c48f9'],
    ['report binding', reportBinding('22'.repeat(20), '33'.repeat(20)),
      '0x1b77f854c5abff7f45ac5ea5c8278929d11cc0fb306d4e82887f38d0b4e50f7e'],
    ['simulation attestation', simDigest('aa'.repeat(32), 1, false,
      reportData('11'.repeat(20), '22'.repeat(20), '33'.repeat(20), 1_700_000_000)),
    '0xd15d086332104901bba67493ef7ececa3ed1828a2cca2005b9bcc6c9166a8455'],
  ];
  for (const [what, got, want] of answers) check(got === want, `${what} digest = ${want.slice(0, 10)}…`);
}

function flipByte(hex, at) {
  const bytes = Buffer.from(hex, 'hex');
  bytes[at] ^= 0x01;
  return bytes.toString('hex');
}

async function main() {
  if (!existsSync(join(ROOT, 'artifacts', 'Enigma.json'))) throw new Error('run `node build.mjs` first');
  step('known answers of the digest mirror (docs/api.md section 4)');
  knownAnswers();
  await startAnvil();
  const [DEPLOYER, OP1, OP2, OP3, USER, OP5] = KEYS;
  const [deployer, op1, , , user, op5] = KEYS.map(address);
  const keyOf = new Map(); // enclave signer address => its test private key
  const ias = loadIasVectors(keyOf);
  const [principalIas, ...workerIas] = ias;
  const w0 = workerIas[0];
  const principal = principalIas.signer;
  const simAuthority = address(SIM_AUTHORITY_KEY);
  const simSigner = address(SIM_WORKER_KEY);
  keyOf.set(simSigner, SIM_WORKER_KEY);
  const intelKey = JSON.parse(readFileSync(join(ROOT, 'ias-intel-signing-key.json'), 'utf8'));

  step('deploy');
  const token = deploy(DEPLOYER, 'EnigmaToken');
  const simVerifier = deploy(DEPLOYER, 'SimulationVerifier', 'address,bool,bytes32[],bytes32[]',
    simAuthority, true, list([SIM_WORKER_MR]), list([SIM_KM_MR]));
  const iasVerifierWith = (overrides = {}) => {
    const p = {
      mrSigner: w0.mrSigner,
      minSvn: 0,
      debug: true, // the Discovery enclaves were debug builds (attributes 0x07)
      statuses: '[GROUP_OUT_OF_DATE,OK]',
      workers: list([w0.mrEnclave]),
      keyManagers: list([principalIas.mrEnclave]),
      ...overrides,
    };
    return deploy(DEPLOYER, 'IasVerifier', 'bytes,bytes,bytes32,uint16,bool,string[],bytes32[],bytes32[]',
      intelKey.modulus, intelKey.exponent, p.mrSigner, p.minSvn, p.debug, p.statuses, p.workers, p.keyManagers);
  };
  const iasVerifier = iasVerifierWith();
  const enigmaArgs = 'address,uint256,uint256,address,uint256,address,address,uint64,uint64';
  const enigma = deploy(DEPLOYER, 'Enigma', enigmaArgs,
    token, EPOCH_SIZE, TIMEOUT_BLOCKS, principal, 1, simVerifier, iasVerifier, MIN_GAS_PRICE, MAX_GAS_LIMIT);
  const voting = deploy(DEPLOYER, 'VotingETH', 'address', enigma);
  check(call(token, 'totalSupply()(uint256)')[0] === '15000000000000000', 'ENG supply is 150,000,000 ENG in grains');
  check(call(token, 'decimals()(uint8)')[0] === '8', 'ENG has 8 decimals');
  const limits = () => [call(enigma, 'minGasPrice()(uint64)')[0], call(enigma, 'maxGasLimit()(uint64)')[0]].join();
  check(call(enigma, 'owner()(address)')[0] === deployer && limits() === `${MIN_GAS_PRICE},${MAX_GAS_LIMIT}`,
    'the deployer owns Enigma, with the task limits of the constructor');
  const tx = (key, name, ...args) => send(key, enigma, SIG[name], ...args);
  const view = (name, ...args) => call(enigma, SIG[name], ...args);

  step('IAS attestation with the real Intel reports');
  for (const v of ias) {
    const product = v.role === 'principal' ? 2 : 1;
    const [mrEnclave, binding] = call(iasVerifier, SIG.verify, v.signer, product, v.evidence);
    check(mrEnclave === v.mrEnclave && binding === ZERO32,
      `${v.role} report verifies (product ${product}); its report data binds nothing`);
  }
  const rejects = (error, what, verifier, signer, product, evidence) =>
    expectRevert(error, what, () => call(verifier, SIG.verify, signer, product, evidence));
  const reportLength = w0.report.length / 2;
  for (const at of [0, 10, 60, 150, 300, 500, reportLength - 300, reportLength - 2, reportLength - 1]) {
    const evidence = cast('abi-encode', 'f(bytes,bytes)', `0x${flipByte(w0.report, at)}`, `0x${w0.signature}`);
    rejects('InvalidReportSignature()', `report with byte ${at} changed`, iasVerifier, w0.signer, 1, evidence);
  }
  for (const at of [0, 128, 255]) {
    const evidence = cast('abi-encode', 'f(bytes,bytes)', `0x${w0.report}`, `0x${flipByte(w0.signature, at)}`);
    rejects('InvalidReportSignature()', `signature with byte ${at} changed`, iasVerifier, w0.signer, 1, evidence);
  }
  rejects('MalformedEvidence()', 'truncated evidence', iasVerifier, w0.signer, 1, w0.evidence.slice(0, 200));
  rejects('WrongProductId(uint16,uint16)', 'the principal report as a worker',
    iasVerifier, principal, 1, principalIas.evidence);
  rejects('WrongProductId(uint16,uint16)', 'a worker report as the key manager', iasVerifier, w0.signer, 2, w0.evidence);
  rejects('ReportDataMismatch(address,address)', 'a report for another signer', iasVerifier, op1, 1, w0.evidence);
  const policies = [
    ['QuoteStatusNotAllowed(string)', 'status OK only', { statuses: '[OK]' }],
    ['EnclaveNotAllowed(uint16,bytes32)', 'MRENCLAVE not allowed', { workers: '[]' }],
    ['WrongEnclaveSigner(bytes32)', 'another MRSIGNER', { mrSigner: ZERO32 }],
    ['SecurityVersionTooLow(uint16,uint16)', 'ISVSVN minimum 1', { minSvn: 1 }],
    ['DebugEnclaveNotAllowed()', 'debug not allowed', { debug: false }],
  ];
  for (const [error, policy, overrides] of policies) {
    rejects(error, `policy "${policy}" rejects worker0`, iasVerifierWith(overrides), w0.signer, 1, w0.evidence);
  }

  step('register the principal (IAS) and three workers (simulation; their IAS reports bind no operator)');
  expectRevert('PrincipalNotRegistered()', 'an epoch before the principal registers', () =>
    tx(DEPLOYER, 'setWorkersParams', 0, 1, '0x'));
  measured('registerPrincipal (IAS)', tx(DEPLOYER, 'registerPrincipal', 1, principalIas.evidence));
  check(call(enigma, 'principalRegistered()(bool)')[0] === true, 'principal registered');
  const workerKeys = [OP1, OP2, OP3];
  const workerOps = workerKeys.map(address);
  for (let i = 0; i < 3; i++) {
    expectRevert('OperatorNotBound(address)', `worker${i}'s IAS report (it binds no operator)`, () =>
      tx(workerKeys[i], 'register', workerIas[i].signer, 1, workerIas[i].evidence));
  }
  // The Discovery enclaves' signers (their keys are in testdata) attested by the simulation
  // authority, each report binding its operator and this network's principal.
  const workerSim = workerIas.map((v, i) =>
    simEvidence(reportData(v.signer, workerOps[i], principal), SIM_WORKER_MR, 1, true));
  expectRevert('OperatorNotBound(address)', 'worker0\'s pending registration copied by another sender', () =>
    tx(USER, 'register', w0.signer, 0, workerSim[0]));
  expectRevert('OperatorNotBound(address)', 'a report binding another principal', () =>
    tx(OP1, 'register', w0.signer, 0,
      simEvidence(reportData(w0.signer, op1, simAuthority), SIM_WORKER_MR, 1, true)));
  for (let i = 0; i < 3; i++) {
    measured(i === 0 ? 'register (simulation)' : null, tx(workerKeys[i], 'register', workerIas[i].signer, 0, workerSim[i]));
  }
  expectRevert('SignerTaken(address,address)', 'a second operator for worker0\'s signer', () =>
    tx(USER, 'register', w0.signer, 0, simEvidence(reportData(w0.signer, user, principal), SIM_WORKER_MR, 1, true)));
  expectRevert('AlreadyRegistered()', 'registering twice', () => tx(OP1, 'register', w0.signer, 0, workerSim[0]));

  step('simulation attestation');
  const simData = reportData(simSigner, op5, principal);
  const simRejects = (error, what, evidence) => expectRevert(error, what, () => tx(OP5, 'register', simSigner, 0, evidence));
  simRejects('InvalidAuthoritySignature(address)', 'simulation evidence signed by another key',
    simEvidence(simData, SIM_WORKER_MR, 1, false, SIM_WORKER_KEY));
  simRejects('WrongProductId(uint16,uint16)', 'simulation evidence for the key-manager product',
    simEvidence(simData, SIM_KM_MR, 2, false));
  simRejects('EnclaveNotAllowed(uint16,bytes32)', 'simulation evidence for an unknown MRENCLAVE',
    simEvidence(simData, ZERO32, 1, false));
  simRejects('ReportDataMismatch(address,address)', 'simulation evidence for another signer',
    simEvidence(reportData(op5, op5, principal), SIM_WORKER_MR, 1, false));
  simRejects('MalformedEvidence()', 'garbage simulation evidence', '0x1234');
  simRejects('MalformedEvidence()', 'simulation evidence one byte short',
    simEvidence(simData, SIM_WORKER_MR, 1, false).slice(0, -2));
  const noDebug = deploy(DEPLOYER, 'SimulationVerifier', 'address,bool,bytes32[],bytes32[]',
    simAuthority, false, list([SIM_WORKER_MR]), '[]');
  rejects('DebugEnclaveNotAllowed()', 'a debug enclave under a no-debug policy',
    noDebug, simSigner, 1, simEvidence(simData, SIM_WORKER_MR, 1, true));
  {
    const [mrEnclave, binding] = call(simVerifier, SIG.verify, simSigner, 1, simEvidence(simData, SIM_WORKER_MR, 1, true));
    check(mrEnclave === SIM_WORKER_MR && binding === reportBinding(op5, principal),
      'the simulation verifier returns MRENCLAVE and report data bytes 20..52');
  }
  measured(null, tx(OP5, 'register', simSigner, 0, simEvidence(simData, SIM_WORKER_MR, 1, true)));
  measured('registerPrincipal (simulation)',
    tx(DEPLOYER, 'registerPrincipal', 0, simEvidence(reportData(principal, deployer, principal), SIM_KM_MR, 2, false)));
  const info = view('getWorkerBySigner', simSigner)[0];
  check(info[0] === op5 && info[1] === simSigner && info[2] === '2' && info[3] === '0' && info[4] === SIM_WORKER_MR,
    'worker by signer: operator, signer, LoggedOut, simulation evidence, MRENCLAVE');
  check(view('getWorkerBySigner', w0.signer)[0][0] === op1, 'worker0\'s signer belongs to the operator its report binds');

  step('stakes and login');
  const stakes = [1000n * ENG, 2000n * ENG, 3000n * ENG, 500n * ENG];
  const stakers = [OP1, OP2, OP3, OP5];
  for (const key of [...stakers, USER]) send(DEPLOYER, token, 'transfer(address,uint256)', address(key), 1_000_000n * ENG);
  for (let i = 0; i < stakers.length; i++) {
    send(stakers[i], token, 'approve(address,uint256)', enigma, MAX);
    measured('deposit', tx(stakers[i], 'deposit', stakes[i]));
    measured('login', send(stakers[i], enigma, 'login()'));
  }

  step('epoch 0');
  // The key manager's round: read the active workers at the latest block, sign, submit;
  // `meanwhile` runs between the read and the submission (the chain moves on).
  const setEpoch = (label, meanwhile = () => {}) => {
    const b = blockNumber();
    const [signers, weights] = view('getActiveWorkers', b);
    const nonce = Number(call(enigma, 'epochCount()(uint256)')[0]);
    const seed = BigInt(rand32('seed'));
    const sig = signDigest(keyOf.get(principal), epochDigest(seed, nonce, b, 1, signers, weights));
    meanwhile();
    const receipt = measured(label, tx(DEPLOYER, 'setWorkersParams', b, seed, sig));
    return { seed, nonce, signers, stakes: weights, firstBlock: Number(BigInt(receipt.blockNumber)) };
  };
  expectRevert('InvalidPrincipalSignature(address)', 'epoch signed by someone else', () =>
    tx(DEPLOYER, 'setWorkersParams', blockNumber(), 7, signDigest(SIM_WORKER_KEY, ZERO32)));
  let epoch = setEpoch('setWorkersParams (4 workers)');
  check(epoch.signers.length === 4 && epoch.signers.join() === [...workerIas.map((v) => v.signer), simSigner].join(),
    'epoch lists the active set (in login order)');
  check(epoch.stakes.join() === stakes.join(), 'epoch stakes are the deposits');
  expectRevert('EpochNotOver(uint256)', 'a second epoch too early', () =>
    tx(DEPLOYER, 'setWorkersParams', blockNumber(), 1, '0x'));
  for (let i = 0; i < 12; i++) {
    const scAddr = rand32('contract');
    const onChain = view('getWorkerGroup', epoch.firstBlock, scAddr)[0];
    const mirrored = selectWorkers(epoch.seed, scAddr, epoch.signers, epoch.stakes, 1);
    if (onChain.join() !== mirrored.join()) throw new Error(`selection differs for ${scAddr}: ${onChain} vs ${mirrored}`);
  }
  check(true, 'getWorkerGroup equals the JavaScript mirror on 12 random contracts');

  // Task helpers: the user's records (nonces tracked here) and the selected workers' receipts.
  const selected = (scAddr) => view('getWorkerGroup', epoch.firstBlock, scAddr)[0][0];
  const record = (taskId) => view('getTaskRecord', taskId)[0];
  const status = (taskId) => Number(record(taskId)[2]);
  const prepaid = () => BigInt(call(enigma, 'prepaidBalance(address)(uint256)', user)[0]);
  const stakeOf = (signer) => BigInt(view('getWorkerBySigner', signer)[0][5]);
  const contractInfo = (scAddr) => {
    const [owner, codeHash, deltaCount, lastDeltaHash, taskCount, nextReceiptSeq] = view('getSecretContract', scAddr)[0];
    return {
      owner, codeHash, deltaCount: Number(deltaCount), lastDeltaHash,
      taskCount: Number(taskCount), nextReceiptSeq: Number(nextReceiptSeq),
    };
  };
  // A contract as tracked here: `chain` its delta hashes (deltaCount = chain.length), `seq` the
  // sequence number its next task record takes.
  const tip = (c) => c.chain[c.chain.length - 1];
  let userNonce = 0;
  const createDeploy = () => {
    const inputsHash = rand32('inputs');
    const receipt = measured('createDeploymentTaskRecord',
      tx(USER, 'createDeploymentTaskRecord', inputsHash, GAS_LIMIT, GAS_PX, epoch.firstBlock, userNonce));
    const taskId = taskIdOf(user, userNonce++);
    if (!receipt.logs.some((l) => l.topics[1] === taskId)) throw new Error('unexpected deployment task id');
    return { taskId, inputsHash };
  };
  const createTask = (c, label = 'createTaskRecord') => {
    const inputsHash = rand32('inputs');
    measured(label, tx(USER, 'createTaskRecord', c.scAddr, inputsHash, GAS_LIMIT, GAS_PX, epoch.firstBlock, userNonce));
    return { taskId: taskIdOf(user, userNonce++), inputsHash, seq: c.seq++ };
  };
  const createBatch = (c, n) => {
    const hashes = Array.from({ length: n }, () => rand32('inputs'));
    const first = userNonce;
    const receipt = tx(USER, 'createTaskRecords', list(Array(n).fill(c.scAddr)), list(hashes),
      list(Array(n).fill(GAS_LIMIT)), GAS_PX, epoch.firstBlock, userNonce);
    measured(n === 16 ? 'createTaskRecords (16)' : null, receipt, n);
    userNonce += n;
    return hashes.map((inputsHash, i) => ({ taskId: taskIdOf(user, first + i), inputsHash, seq: c.seq++ }));
  };
  const deployContract = (label, ethPayload = '0x', ethAddress = ZERO_ADDRESS) => {
    const { taskId, inputsHash } = createDeploy();
    const codeHash = rand32('code');
    const initDelta = rand32('delta');
    const gasUsed = 123_456n;
    const signer = selected(taskId);
    const digest = deployDigest(taskId, inputsHash, codeHash, initDelta, GAS_LIMIT, gasUsed, ethPayload, ethAddress);
    measured(label, tx(DEPLOYER, 'deploySecretContract',
      taskId, codeHash, codeHash, initDelta, gasUsed, ethPayload, ethAddress, signDigest(keyOf.get(signer), digest)));
    return { scAddr: taskId, codeHash, signer, chain: [initDelta], seq: 0 };
  };
  const commitCompute = (c, label, options = {}) => {
    const { delta = rand32('delta'), ethPayload = '0x', ethAddress = ZERO_ADDRESS, signerKey } = options;
    const { taskId, inputsHash } = options.task ?? createTask(c);
    const output = rand32('output');
    const gasUsed = 50_000n;
    const digest = computeDigest(taskId, c.scAddr, c.codeHash, inputsHash, c.chain.length, tip(c), delta, output,
      GAS_LIMIT, gasUsed, ethPayload, ethAddress);
    const sig = signDigest(signerKey ?? keyOf.get(c.signer), digest);
    measured(label, tx(DEPLOYER, 'commitReceipt', c.scAddr, taskId, delta, output, gasUsed, ethPayload, ethAddress, sig));
    return { taskId, delta };
  };
  const commitBatch = (c, tasks, label, statusOf = () => 1, withDelta = true) => {
    const entries = tasks.map((t, i) => {
      const s = statusOf(i);
      const delta = s && withDelta ? rand32('delta') : ZERO32;
      return { ...t, status: s, delta, output: rand32('output'), gasLimit: GAS_LIMIT, gasUsed: 40_000n + BigInt(i) };
    });
    const sig = signDigest(keyOf.get(c.signer), batchDigest(c.scAddr, c.codeHash, c.chain.length, tip(c), entries));
    const field = (f) => list(entries.map(f));
    measured(label, tx(DEPLOYER, 'commitReceipts', c.scAddr, field((e) => e.taskId), field((e) => e.delta),
      field((e) => e.output), field((e) => e.gasUsed), field((e) => e.status), sig), entries.length);
    for (const e of entries) if (e.delta !== ZERO32) c.chain.push(e.delta);
    return entries;
  };

  step('user balance and deployment');
  send(USER, token, 'approve(address,uint256)', enigma, MAX);
  measured('depositBalance', tx(USER, 'depositBalance', 10_000n * ENG));
  const balanceBefore = prepaid();
  const c1 = deployContract('deploySecretContract');
  check(true, 'deployment record id = keccak256(sender ‖ u256(nonce))');
  const sc = contractInfo(c1.scAddr);
  check(sc.owner === user && sc.codeHash === c1.codeHash && sc.deltaCount === 1 && sc.lastDeltaHash === c1.chain[0],
    'contract registered: owner, code hash, delta 0');
  check(balanceBefore - prepaid() === 123_456n * GAS_PX, 'user paid gasUsed·gasPx, the rest refunded to the prepaid balance');

  step('task limits (owner)');
  expectRevert('GasPriceTooLow(uint64,uint64)', 'a record offering less than the minimum gas price', () =>
    tx(USER, 'createTaskRecord', c1.scAddr, rand32('inputs'), GAS_LIMIT, MIN_GAS_PRICE - 1n, epoch.firstBlock, userNonce));
  expectRevert('GasPriceTooLow(uint64,uint64)', 'a batch of records under the minimum gas price', () =>
    tx(USER, 'createTaskRecords', list([c1.scAddr]), list([rand32('inputs')]), list([GAS_LIMIT]), MIN_GAS_PRICE - 1n,
      epoch.firstBlock, userNonce));
  expectRevert('GasLimitTooHigh(uint64,uint64)', 'a deployment asking for more than the maximum gas limit', () =>
    tx(USER, 'createDeploymentTaskRecord', rand32('inputs'), MAX_GAS_LIMIT + 1n, GAS_PX, epoch.firstBlock, userNonce));
  expectRevert('ZeroGasLimit()', 'a record with no gas', () =>
    tx(USER, 'createTaskRecord', c1.scAddr, rand32('inputs'), 0, GAS_PX, epoch.firstBlock, userNonce));
  expectRevert('UnknownSecretContract(bytes32)', 'a record on a contract never deployed', () =>
    tx(USER, 'createTaskRecord', rand32('contract'), rand32('inputs'), GAS_LIMIT, GAS_PX, epoch.firstBlock, userNonce));
  expectRevert('NotOwner()', 'task limits set by someone else', () => tx(USER, 'setTaskLimits', 1, 1));
  measured('setTaskLimits', tx(DEPLOYER, 'setTaskLimits', GAS_PX + 1n, MAX_GAS_LIMIT));
  expectRevert('GasPriceTooLow(uint64,uint64)', 'a record at the old minimum once the owner raised it', () =>
    tx(USER, 'createTaskRecord', c1.scAddr, rand32('inputs'), GAS_LIMIT, GAS_PX, epoch.firstBlock, userNonce));
  expectRevert('InvalidConfiguration(string)', 'a zero maximum gas limit', () => tx(DEPLOYER, 'setTaskLimits', 0, 0));
  measured('setOwner', tx(DEPLOYER, 'setOwner', user));
  expectRevert('NotOwner()', 'the former owner', () => tx(DEPLOYER, 'setTaskLimits', MIN_GAS_PRICE, MAX_GAS_LIMIT));
  tx(USER, 'setTaskLimits', MIN_GAS_PRICE, MAX_GAS_LIMIT);
  tx(USER, 'setOwner', deployer);
  check(call(enigma, 'owner()(address)')[0] === deployer && limits() === `${MIN_GAS_PRICE},${MAX_GAS_LIMIT}`,
    'the owner hands the role on and back; the limits are restored');

  step('compute receipts');
  const stakeBefore = stakeOf(c1.signer);
  let r = commitCompute(c1, 'commitReceipt (with delta)');
  c1.chain.push(r.delta);
  check(status(r.taskId) === 2, 'compute task is ReceiptVerified');
  check(stakeOf(c1.signer) - stakeBefore === 50_000n * GAS_PX, 'worker stake credited gasUsed·gasPx');
  r = commitCompute(c1, 'commitReceipt (no delta)', { delta: ZERO32 });
  check(contractInfo(c1.scAddr).deltaCount === 2, 'a zero delta hash does not extend the chain');
  const other = epoch.signers.find((s) => s !== c1.signer);
  const pending = createTask(c1, null);
  expectRevert('WorkerNotSelected(address)', 'a receipt signed by a worker not selected', () =>
    commitCompute(c1, null, { task: pending, signerKey: keyOf.get(other) }));
  expectRevert('TaskNotOpen(bytes32,uint8)', 'committing the same task twice', () =>
    commitCompute(c1, null, { task: { taskId: r.taskId, inputsHash: ZERO32 } }));
  {
    const early = createTask(c1, null);
    const late = createTask(c1, null);
    const [, , , , , , , , , seq, scTag] = record(late.taskId);
    check(Number(seq) === late.seq && late.seq === early.seq + 1 && scTag === c1.scAddr.slice(0, 26),
      `records take the contract's next sequence number (${seq}) and name the contract`);
    r = commitCompute(c1, null, { task: late });
    c1.chain.push(r.delta);
    expectRevert('ReceiptOutOfOrder(bytes32,uint256,uint256)', 'a receipt landing after a later-recorded task\'s', () =>
      commitCompute(c1, null, { task: early }));
    const info = contractInfo(c1.scAddr);
    check(info.taskCount === c1.seq && info.nextReceiptSeq === late.seq + 1,
      'the contract counts its records and moved its next receipt sequence past the later task');
  }

  step('failures');
  {
    const { taskId, inputsHash } = createTask(c1);
    const output = rand32('error');
    const sig = signDigest(keyOf.get(c1.signer),
      failureDigest(taskId, c1.scAddr, inputsHash, c1.codeHash, output, GAS_LIMIT, GAS_LIMIT));
    measured('commitTaskFailure (compute)', tx(DEPLOYER, 'commitTaskFailure', c1.scAddr, taskId, output, GAS_LIMIT, sig));
    check(status(taskId) === 3, 'failed compute task is ReceiptFailed');
    expectRevert('GasUsedAboveLimit(bytes32,uint64,uint64)', 'gasUsed above the limit', () =>
      tx(DEPLOYER, 'commitTaskFailure', c1.scAddr, pending.taskId, output, GAS_LIMIT + 1n, sig));
  }
  {
    const { taskId, inputsHash } = createDeploy();
    const output = rand32('error');
    const sig = signDigest(keyOf.get(selected(taskId)),
      failureDigest(taskId, taskId, inputsHash, ZERO32, output, GAS_LIMIT, 777n));
    measured('commitTaskFailure (deploy)', tx(DEPLOYER, 'commitTaskFailure', taskId, taskId, output, 777, sig));
    check(status(taskId) === 3, 'failed deployment is ReceiptFailed');
    check(contractInfo(taskId).owner === ZERO_ADDRESS, 'a failed deployment registers no contract');
  }

  step('Ethereum callbacks (VotingETH)');
  send(USER, voting, 'createPoll(uint256,string)', 50, 'Should we?');
  const payload = (signature, ...args) => cast('calldata', signature, ...args);
  const callback = (ethAddress, signature, ...args) => ({ ethAddress, ethPayload: payload(signature, ...args) });
  r = commitCompute(c1, 'commitReceipt (callback validateVote)', callback(voting, 'validateVote(uint256,address)', 0, user));
  c1.chain.push(r.delta);
  check(status(r.taskId) === 2 && call(voting, 'hasVoted(uint256,address)(bool)', 0, user)[0] === true,
    'callback ran: vote validated');
  r = commitCompute(c1, 'commitReceipt (callback finalizePoll)', callback(voting, 'finalizePoll(uint256,uint256)', 0, 60));
  c1.chain.push(r.delta);
  check(call(voting, 'getPoll(uint256)((address,uint8,uint8,uint32,uint256,string))', 0)[0][2] === '2', 'poll passed');
  const countBefore = contractInfo(c1.scAddr).deltaCount;
  r = commitCompute(c1, 'commitReceipt (callback fails)', callback(voting, 'finalizePoll(uint256,uint256)', 0, 60));
  check(status(r.taskId) === 4, 'a failing callback ends ReceiptFailedETH');
  check(contractInfo(c1.scAddr).deltaCount === countBefore, 'its delta is not appended');
  r = commitCompute(c1, null, callback(voting, 'revertWith(string)', 'on demand'));
  check(status(r.taskId) === 4, 'revertWith makes the callback fail');
  r = commitCompute(c1, null, callback(token, 'transfer(address,uint256)', user, 1));
  check(status(r.taskId) === 4, 'a callback into the ENG token is refused (ReceiptFailedETH)');
  const failed = deployContract('deploySecretContract (callback fails)', payload('revertWith(string)', 'no'), voting);
  check(status(failed.scAddr) === 4 && contractInfo(failed.scAddr).owner === ZERO_ADDRESS,
    'a deployment whose callback fails registers no contract');

  step('batches');
  const c2 = deployContract(null);
  const firstOfC2 = createTask(c2, null);
  expectRevert('TaskOfAnotherContract(bytes32,bytes32)', 'a receipt of c2\'s task committed on c1', () =>
    commitCompute(c1, null, { task: firstOfC2 }));
  let entries = commitBatch(c2, [firstOfC2], 'commitReceipts (1 task)');
  check(status(entries[0].taskId) === 2, 'a batch of one verifies');
  commitBatch(c2, createBatch(c2, 16), 'commitReceipts (16 tasks)');
  entries = commitBatch(c2, createBatch(c2, 64), 'commitReceipts (64 tasks)');
  check(entries.every((e) => status(e.taskId) === 2), 'all 64 tasks ReceiptVerified');
  commitBatch(c2, createBatch(c2, 64), 'commitReceipts (64 tasks, no deltas)', () => 1, false);
  {
    const [a, b] = createBatch(c2, 2);
    const entry = (t) => ({ ...t, status: 1, delta: ZERO32, output: rand32('o'), gasLimit: GAS_LIMIT, gasUsed: 1n });
    const swapped = [entry(b), entry(a)];
    const sig = signDigest(keyOf.get(c2.signer), batchDigest(c2.scAddr, c2.codeHash, c2.chain.length, tip(c2), swapped));
    expectRevert('ReceiptOutOfOrder(bytes32,uint256,uint256)', 'a batch whose entries are not in record order', () =>
      tx(DEPLOYER, 'commitReceipts', c2.scAddr, list([b.taskId, a.taskId]), list([ZERO32, ZERO32]),
        list(swapped.map((e) => e.output)), '[1,1]', '[1,1]', sig));
    commitBatch(c2, [a, b], null, () => 1, false);
  }
  entries = commitBatch(c2, createBatch(c2, 10), null, (i) => (i % 3 === 0 ? 0 : 1));
  check(entries.every((e) => status(e.taskId) === (e.status ? 2 : 3)),
    'mixed batch: successes verified, failures ReceiptFailed');
  const hashes = view('getDeltaHashes', c2.scAddr, 0, 10_000)[0];
  check(hashes.length === c2.chain.length && hashes.every((h, i) => h === c2.chain[i]),
    `delta chain of ${hashes.length} hashes reads back (slots and chunks)`);
  check(view('getDeltaHash', c2.scAddr, 40)[0] === c2.chain[40], 'getDeltaHash inside a chunk');
  expectRevert('DeltaIndexOutOfRange(uint256,uint256)', 'getDeltaHash past the chain', () =>
    view('getDeltaHash', c2.scAddr, c2.chain.length));
  {
    const tasks = createBatch(c2, 2);
    const stale = tasks.map((t) => ({ ...t, status: 1, delta: rand32('d'), output: rand32('o'), gasLimit: GAS_LIMIT, gasUsed: 1n }));
    const sig = signDigest(keyOf.get(c2.signer), batchDigest(c2.scAddr, c2.codeHash, c2.chain.length, ZERO32, stale));
    const field = (f) => list(stale.map(f));
    expectRevert('WorkerNotSelected(address)', 'a batch signed over a stale prevDeltaHash', () =>
      tx(DEPLOYER, 'commitReceipts', c2.scAddr, field((e) => e.taskId), field((e) => e.delta),
        field((e) => e.output), '[1,1]', '[1,1]', sig));
  }

  step('timeout');
  {
    const before = prepaid();
    const { taskId } = createTask(c1);
    expectRevert('TaskNotTimedOut(bytes32,uint256)', 'returning fees before the timeout', () =>
      tx(USER, 'returnFeesForTask', taskId));
    mine(TIMEOUT_BLOCKS);
    measured('returnFeesForTask', tx(USER, 'returnFeesForTask', taskId));
    check(status(taskId) === 5 && prepaid() === before, 'timed-out task refunded in full (status 5)');
  }

  step('logout, next epochs, withdraw');
  const previous = epoch;
  // Recorded in epoch 0, committed after two epoch changes: verified against epoch 0's selection.
  const lateTask = createTask(c1, null);
  mine(EPOCH_SIZE);
  // The simulation worker logs out after the key manager read the list: it is in epoch 1.
  epoch = setEpoch(null, () => measured('logout', send(OP5, enigma, 'logout()')));
  check(epoch.nonce === 1 && epoch.signers.includes(simSigner), 'epoch 1 is the snapshot taken before the logout');
  expectRevert('StakeLocked(uint256,uint256)', 'withdrawing while in the current epoch', () => tx(OP5, 'withdraw', 1));
  mine(EPOCH_SIZE);
  epoch = setEpoch('setWorkersParams (3 workers)');
  check(epoch.nonce === 2 && epoch.signers.length === 3 && !epoch.signers.includes(simSigner),
    'epoch 2 leaves the logged-out worker out');
  const old = view('getEpoch', 0)[0];
  check(old[1] === previous.seed.toString() && old[4].join() === previous.signers.join(), 'epoch 0 stays readable');
  check(JSON.stringify(view('getEpochForBlock', previous.firstBlock + 1)[0]) === JSON.stringify(old),
    'getEpochForBlock finds the epoch containing a block');
  measured('withdraw', tx(OP5, 'withdraw', stakes[3]));
  measured('unregister', send(OP5, enigma, 'unregister()'));
  expectRevert('WrongEpoch(uint256,uint256)', 'a record naming the previous epoch', () =>
    tx(USER, 'createTaskRecord', c1.scAddr, ZERO32, 1, GAS_PX, previous.firstBlock, userNonce));
  r = commitCompute(c1, null, { task: lateTask });
  c1.chain.push(r.delta);
  check(status(lateTask.taskId) === 2, 'a task of epoch 0 commits after the epoch changed, under epoch 0\'s selection');
  check(status(deployContract(null).scAddr) === 2, 'deployment in the new epoch');

  step('selection with groupSize 2 (a second Enigma)');
  {
    const enigma2 = deploy(DEPLOYER, 'Enigma', enigmaArgs, token, EPOCH_SIZE, TIMEOUT_BLOCKS, principal, 2, simVerifier,
      iasVerifier, MIN_GAS_PRICE, MAX_GAS_LIMIT);
    send(DEPLOYER, enigma2, SIG.registerPrincipal, 1, principalIas.evidence);
    for (let i = 0; i < 3; i++) {
      // The same operators and principal: the evidence of the first Enigma binds them here too.
      send(workerKeys[i], enigma2, SIG.register, workerIas[i].signer, 0, workerSim[i]);
      send(workerKeys[i], token, 'approve(address,uint256)', enigma2, stakes[i]);
      send(workerKeys[i], enigma2, SIG.deposit, stakes[i]);
      send(workerKeys[i], enigma2, 'login()');
    }
    const b = blockNumber();
    const [signers, weights] = call(enigma2, SIG.getActiveWorkers, b);
    // The known-answer vector of docs/api.md ("Selection"): this seed, these workers and stakes.
    const seed = BigInt(keccak(Buffer.from('enigma selection vector').toString('hex')));
    const digest = epochDigest(seed, 0, b, 2, signers, weights);
    const sig = signDigest(keyOf.get(principal), digest);
    const first = Number(BigInt(send(DEPLOYER, enigma2, SIG.setWorkersParams, b, seed, sig).blockNumber));
    const vector = [0, 1, 2, 3].map((i) => {
      const scAddr = keccak(Buffer.from(`enigma contract ${i}`).toString('hex'));
      return `${scAddr} -> ${call(enigma2, SIG.getWorkerGroup, first, scAddr)[0].join(', ')}`;
    });
    process.stdout.write(`  vector: seed ${seed}\n  vector: epoch digest ${digest}\n`);
    for (const line of vector) process.stdout.write(`  vector: ${line}\n`);
    // docs/api.md section 6: the epoch digest at snapshot block 42 and the groups of the table.
    check(epochDigest(seed, 0, 42, 2, signers, weights) === '0x199a12ca8abcc13489619425193fef2be33ceea65315acf5da7f3f41e0b460ac',
      'the documented epoch digest of the selection vector (snapshot block 42)');
    const [wa, wb, wc] = ['0xfa17e89ee497e8a0796f6a6c7e657c1d31c6d437', '0x069e2ab5182f8e46ac7fd3a1d279549fbc016a10',
      '0x624565ebc4916b70e91cf368f324efe5549aae33'];
    const documented = [[wa, wc], [wb, wc], [wa, wb], [wb, wa]];
    check(vector.every((line, i) => line.endsWith(documented[i].join(', '))), 'the documented groups of the selection vector');
    for (let i = 0; i < 12; i++) {
      const scAddr = rand32('contract');
      const onChain = call(enigma2, SIG.getWorkerGroup, first, scAddr)[0];
      const mirrored = selectWorkers(seed, scAddr, signers, weights, 2);
      if (onChain.length !== 2 || onChain.join() !== mirrored.join()) {
        throw new Error(`selection differs for ${scAddr}: ${onChain} vs ${mirrored}`);
      }
    }
    check(true, 'groups of 2 equal the JavaScript mirror on 12 random contracts');
  }

  step('permit');
  {
    const deadline = 2n ** 255n;
    const [nonce] = call(token, 'nonces(address)(uint256)', user);
    const field = (name, type) => ({ name, type });
    const typed = {
      types: {
        EIP712Domain: [field('name', 'string'), field('version', 'string'), field('chainId', 'uint256'),
          field('verifyingContract', 'address')],
        Permit: [field('owner', 'address'), field('spender', 'address'), field('value', 'uint256'),
          field('nonce', 'uint256'), field('deadline', 'uint256')],
      },
      primaryType: 'Permit',
      domain: { name: 'Enigma', version: '1', chainId: Number(cast('chain-id')), verifyingContract: token },
      message: { owner: user, spender: enigma, value: (5n * ENG).toString(), nonce, deadline: deadline.toString() },
    };
    send(USER, token, 'approve(address,uint256)', enigma, 0);
    const sig = strip(cast('wallet', 'sign', '--private-key', USER, '--data', JSON.stringify(typed)));
    const before = prepaid();
    measured('depositBalanceWithPermit', tx(USER, 'depositBalanceWithPermit',
      5n * ENG, deadline, parseInt(sig.slice(128, 130), 16), `0x${sig.slice(0, 64)}`, `0x${sig.slice(64, 128)}`));
    check(prepaid() - before === 5n * ENG, 'permit + deposit in one transaction');
  }

  report();
}

function report() {
  step('gas (Ethereum gas units; anvil 1.7.1 default hardfork)');
  const width = Math.max(...gas.map((g) => g.label.length));
  for (const g of gas) {
    const per = g.perTask !== g.used ? `   ${String(g.perTask).padStart(8)} per task` : '';
    process.stdout.write(`  ${g.label.padEnd(width)} ${String(g.used).padStart(9)}${per}\n`);
  }
  const of = (label) => gas.find((g) => g.label === label);
  const single = of('commitReceipt (with delta)').used;
  const batch64 = of('commitReceipts (64 tasks)').perTask;
  const singleNoDelta = of('commitReceipt (no delta)').used;
  const batch64NoDelta = of('commitReceipts (64 tasks, no deltas)').perTask;
  process.stdout.write(`\n  a task in a batch of 64 / a single compute receipt: ${(batch64 / single).toFixed(3)} with deltas, ` +
    `${(batch64NoDelta / singleNoDelta).toFixed(3)} without\n`);
  check(batch64 * 3 <= single && batch64NoDelta * 3 <= singleNoDelta,
    'a task in a batch of 64 costs at most a third of a single compute receipt');
}

async function stopAnvil() {
  if (!anvil || anvil.exitCode !== null || anvil.signalCode !== null) return;
  const exited = once(anvil, 'exit');
  anvil.kill();
  await exited;
}

main().then(
  async () => {
    await stopAnvil();
    process.stdout.write('\nsmoke test passed\n');
    process.exit(0);
  },
  async (e) => {
    await stopAnvil();
    process.stderr.write(`\n${e.stack ?? e}\n`);
    process.exit(1);
  },
);
