// enigma-js: the enigma client for JavaScript. The protocol logic — keys, the task-field
// envelope, hashes, EIP-712 digests, worker selection, attestation checks, answer verification —
// is the Rust client's own code compiled to WebAssembly (../pkg, built by build.mjs from
// crates/wasm); this layer reads the chain with viem and talks to the gateway's JSON-RPC.
//
// So far: `connect` and `query` (a private read-only query, verified and decrypted). Tasks
// (deposit, deploy, compute), permits and progress callbacks are next (issue 16).

import { readFileSync } from 'node:fs';
import { createPublicClient, http } from 'viem';

import * as core from '../pkg/enigma_wasm.js';
import { enigmaAbi } from '../pkg/enigma-abi.mjs';

let ready = false;
/** Loads the WebAssembly core once (Node: from pkg/ beside this file). */
function init() {
  if (!ready) {
    core.initSync({ module: readFileSync(new URL('../pkg/enigma_wasm_bg.wasm', import.meta.url)) });
    ready = true;
  }
}

const bytes = (hex) => Uint8Array.from(Buffer.from(String(hex).replace(/^0x/, ''), 'hex'));
const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
const ZERO = '0x0000000000000000000000000000000000000000';

/** What the client refuses: the reason says what did not check out. */
export class EnigmaError extends Error {
  constructor(message) {
    super(message);
    this.name = 'EnigmaError';
  }
}

export class Client {
  /**
   * @param {object} config
   * @param {string} config.chainUrl   Ethereum JSON-RPC
   * @param {string} config.gatewayUrl the enigma gateway's JSON-RPC
   * @param {string} config.enigma     the Enigma contract
   * @param {Uint8Array} config.secret the account's 32-byte key (for signing queries)
   * @param {object} config.policy     what a worker's attestation must show
   *   (`enigma_attestation::Policy` as JSON; a devnet prints its own)
   */
  static async connect(config) {
    init();
    const c = new Client();
    // The secret lives only inside the wasm key object (never printed), not in the config.
    const { secret, ...rest } = config;
    c.config = rest;
    c.account = core.Keys.fromSecret(secret);
    c.chain = createPublicClient({ transport: http(config.chainUrl) });
    c.principal = await c.read('principal');
    c.groupSize = Number(await c.read('groupSize'));
    c.attested = new Map();
    return c;
  }

  /** The account's address. */
  get address() {
    return this.account.address();
  }

  read(functionName, args = []) {
    return this.chain.readContract({ address: this.config.enigma, abi: enigmaAbi, functionName, args });
  }

  async rpc(method, params) {
    const response = await fetch(this.config.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [params] }),
    });
    const body = await response.json();
    if (body.error) throw new EnigmaError(`the gateway: ${body.error.message}`);
    return body.result;
  }

  /** The worker selected for `contract` in the current epoch, its attestation checked. */
  async selected(contract) {
    const epoch = await this.read('getCurrentEpoch');
    const group = core.selectWorkers(
      bytes(epoch.seed.toString(16).padStart(64, '0')),
      contract,
      epoch.workers,
      epoch.stakes.map(String),
      this.groupSize,
    );
    if (group.length === 0) throw new EnigmaError(`epoch ${epoch.nonce} has no workers with stake`);
    const worker = group[0];
    await this.checkAttestation(worker);
    return { worker, epochBlock: Number(epoch.firstBlockNumber) };
  }

  /** Judges the worker's registered evidence under the policy, as the Rust client does. */
  async checkAttestation(worker) {
    const info = await this.read('getWorkerBySigner', [worker]);
    if (info.status !== 1) throw new EnigmaError(`worker ${worker} is not logged in`);
    const now = Math.floor(Date.now() / 1000);
    const known = this.attested.get(worker);
    if (known && known.registeredAt === info.registeredAt && (known.expiresAt === null || now < known.expiresAt)) {
      return;
    }
    const logs = await this.chain.getContractEvents({
      address: this.config.enigma,
      abi: enigmaAbi,
      eventName: 'Registered',
      args: { signer: worker },
      fromBlock: 0n,
    });
    const last = logs.at(-1);
    if (!last) throw new EnigmaError(`the chain has no registration of worker ${worker}`);
    let verdict;
    try {
      verdict = JSON.parse(core.checkWorker(
        last.args.evidenceKind,
        bytes(last.args.evidence),
        JSON.stringify(this.config.policy),
        worker,
        now,
        info.operator,
        this.principal,
      ));
    } catch (e) {
      throw new EnigmaError(`worker ${worker} is not attested: ${e.message}`);
    }
    // Judged again once the evidence passes the policy's maximum age, as the Rust client does.
    const maxAge = this.config.policy.max_age_secs;
    const expiresAt = maxAge != null && verdict.timestamp != null ? verdict.timestamp + maxAge : null;
    this.attested.set(worker, { registeredAt: info.registeredAt, expiresAt });
  }

  /** The worker's IO key for the epoch, signed by its enclave. */
  async workerKey(worker, epochBlock) {
    const answer = await this.rpc('getWorkerEncryptionKey', { workerAddress: worker });
    if (answer.epochBlock !== epochBlock) {
      throw new EnigmaError(`the gateway has worker ${worker}'s key of epoch ${answer.epochBlock}, not ${epochBlock}; retry shortly`);
    }
    const key = bytes(answer.workerEncryptionKey);
    if (core.workerKeySigner(key, bytes(answer.workerSig)) !== worker) {
      throw new EnigmaError(`worker ${worker}'s key is not signed by its enclave`);
    }
    return key;
  }

  /**
   * Asks `callable` (e.g. `compute_richest()`) of `contract` with ABI-encoded `args` as a
   * read-only query: no record, no fee. The answer is checked — signed by the selected worker's
   * enclave over this query, this code, a state not behind the chain's, and this caller — and
   * decrypted.
   * @returns {Promise<{output: Uint8Array, worker: string, deltaCount: number, gasUsed: number}>}
   */
  async query(contract, callable, args = new Uint8Array(), { anonymous = false } = {}) {
    const head = await this.read('getSecretContract', [contract]);
    if (/^0x0+$/.test(head.codeHash)) throw new EnigmaError(`no secret contract ${contract} is deployed`);
    const { worker, epochBlock } = await this.selected(contract);
    const workerKey = await this.workerKey(worker, epochBlock);
    const mine = core.Keys.generate();
    const shared = mine.sharedKey(workerKey);
    const queryId = core.keccak256(mine.publicKey());
    const asTask = core.queryTaskId(queryId);
    const seal = (plain, field) => shared.encryptField(plain, contract, asTask, '0', field);
    const encryptedFn = seal(new TextEncoder().encode(callable), 'callable');
    const encryptedArgs = seal(args, 'arguments');
    const queryHash = core.queryHash(contract, queryId, encryptedFn, encryptedArgs, mine.publicKey());
    const signature = anonymous
      ? undefined
      : this.account.signDigest(core.queryDigest(this.principal, contract, queryHash));
    const caller = anonymous ? ZERO : this.address;
    const answer = await this.rpc('queryContract', {
      contractAddress: contract,
      workerAddress: worker,
      queryId: hex(queryId),
      epochBlock,
      encryptedFn: hex(encryptedFn),
      encryptedArgs: hex(encryptedArgs),
      encryptedCaller: hex(seal(core.queryCallerField(signature), 'caller')),
      userDHKey: hex(mine.publicKey()),
      freshness: 'confirmed',
    });
    // Every field of the expected type (the gateway is not trusted to send them right).
    for (const [name, type] of [['contractAddress', 'string'], ['codeHash', 'string'], ['deltaHash', 'string'],
      ['queryHash', 'string'], ['status', 'string'], ['output', 'string'], ['outputHash', 'string'], ['signature', 'string']]) {
      if (typeof answer?.[name] !== type) throw new EnigmaError(`the answer's ${name} is not a ${type}`);
    }
    for (const name of ['deltaCount', 'gasUsed']) {
      if (!Number.isSafeInteger(answer[name]) || answer[name] < 0) {
        throw new EnigmaError(`the answer's ${name} is not a whole number`);
      }
    }
    // The checks the Rust client makes, in the same order.
    if (answer.queryHash !== hex(queryHash) || answer.contractAddress !== contract) {
      throw new EnigmaError('the answer answers another query');
    }
    if (answer.codeHash !== head.codeHash) {
      throw new EnigmaError(`the answer ran code ${answer.codeHash}, but the contract's code is ${head.codeHash}`);
    }
    const output = bytes(answer.output);
    if (hex(core.outputHash(output)) !== answer.outputHash) {
      throw new EnigmaError('the answer\'s output is not the one its signature covers');
    }
    const signer = core.queryAnswerSigner(
      contract, answer.codeHash, answer.deltaCount, answer.deltaHash, queryHash,
      bytes(answer.outputHash), answer.status === 'SUCCESS', answer.gasUsed, caller, bytes(answer.signature),
    );
    if (signer !== worker) {
      throw new EnigmaError(`the answer is not signed by the selected worker ${worker} over this query, asked by ${caller}`);
    }
    if (answer.deltaCount < Number(head.deltaCount)) {
      throw new EnigmaError(`the answer ran on ${answer.deltaCount} of the contract's deltas, but the chain had ${head.deltaCount}: a stale state`);
    }
    if (answer.deltaCount === Number(head.deltaCount) && answer.deltaHash !== head.lastDeltaHash) {
      throw new EnigmaError('the answer ran on a state that is not the chain\'s');
    }
    if (answer.deltaCount > Number(head.deltaCount)) {
      const now = await this.read('getSecretContract', [contract]);
      const at = answer.deltaCount - 1;
      if (answer.deltaCount > Number(now.deltaCount) || (await this.read('getDeltaHash', [contract, BigInt(at)])) !== answer.deltaHash) {
        throw new EnigmaError('the answer ran on a state that is not the chain\'s');
      }
    }
    const plain = shared.openOutput(output, contract, asTask, '0');
    if (answer.status !== 'SUCCESS') {
      throw new EnigmaError(`the query failed: ${new TextDecoder().decode(plain)}`);
    }
    return { output: plain, worker, deltaCount: answer.deltaCount, gasUsed: answer.gasUsed };
  }
}
