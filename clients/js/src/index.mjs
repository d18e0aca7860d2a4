// enigma-js: the enigma client for JavaScript, in browsers and Node. The protocol logic — keys,
// the task-field envelope, hashes, EIP-712 digests, worker selection, attestation checks, result
// and answer verification — is the Rust client's own code compiled to WebAssembly (../pkg, built
// by build.mjs from crates/wasm); this layer reads and writes the chain with viem and talks to
// the gateway's JSON-RPC.
//
//   const client = await Client.connect({ chainUrl, gatewayUrl, enigma, policy, secret });
//   await client.deposit(10n ** 8n);
//   const { contract } = await client.deploy(wasm, 'construct()');
//   const r = await client.compute(contract, 'add(uint256)', args, { onProgress: console.log });
//   const q = await client.query(contract, 'total()');

import {
  bytesToHex,
  concat,
  createPublicClient,
  createWalletClient,
  custom,
  encodeAbiParameters,
  hexToBytes,
  http,
  keccak256,
  pad,
  serializeTransaction,
} from 'viem';

import * as core from '../pkg/enigma_wasm.js';
import { enigmaAbi, tokenAbi } from '../pkg/enigma-abi.mjs';

const inNode = typeof process !== 'undefined' && Boolean(process.versions?.node);

/** Loads a wasm-bindgen module's WebAssembly: in Node from pkg/ beside this file, in a browser
 * (or a bundler) from the URL wasm-bindgen's loader names. */
async function load(module, file) {
  if (inNode) {
    const fs = 'node:fs/promises'; // a variable: bundlers for the browser leave it alone
    const { readFile } = await import(/* @vite-ignore */ fs);
    module.initSync({ module: await readFile(new URL(file, import.meta.url)) });
  } else {
    await module.default();
  }
  return module;
}

let loading;
/** The core, once. */
function init() {
  loading ??= load(core, '../pkg/enigma_wasm_bg.wasm');
  return loading;
}

let hardware;
/** The hardware-attestation module (IAS and DCAP), fetched the first time a worker with
 * hardware evidence is judged: pages that only meet simulation workers never load it. */
function hardwareModule() {
  hardware ??= import('../pkg/hardware/enigma_wasm_attestation.js')
    .then((m) => load(m, '../pkg/hardware/enigma_wasm_attestation_bg.wasm'))
    .catch((e) => {
      hardware = undefined; // a failed fetch is tried again next time
      throw new EnigmaError(`the hardware-attestation module could not be loaded: ${e.message}`);
    });
  return hardware;
}

const bytes = (h) => hexToBytes(/^0x/.test(String(h)) ? h : `0x${h}`);
const hex = (b) => bytesToHex(b);
const ZERO = '0x0000000000000000000000000000000000000000';
const utf8 = new TextEncoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The chain's task states, by the number `getTaskRecord` returns. */
export const TASK_STATUS = ['Undefined', 'Created', 'Verified', 'Failed', 'FailedEth', 'FailedReturn'];
const FINAL = new Set(['Verified', 'Failed', 'FailedEth', 'FailedReturn']);

/** What the client refuses or could not do: the message says what and what to do. */
export class EnigmaError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = 'EnigmaError';
    Object.assign(this, details);
  }
}

/** The gateway's code for "delivered, but the worker has not answered yet". */
const UNANSWERED = -32012;
/** The gateway's code for "not handed to the worker now; send it again shortly". */
const NOT_DELIVERED = -32015;
/** The gateway's code for a request over its per-client or total limits, or from a banned client. */
const NOT_ADMITTED = -32013;
/** The most tasks `computeMany` records at once: their results are awaited together, each on its
 * own WebSocket and HTTP poll, under the gateway's 64 connections per client. */
const MAX_TASKS_IN_ONE_RECORD = 16;

/** A viem account that signs with the wasm core's key (so no second secp256k1 library ships). */
function keyAccount(keys) {
  return {
    address: keys.address(),
    type: 'local',
    source: 'enigma',
    publicKey: hex(Uint8Array.of(4, ...keys.publicKey())),
    async signTransaction(tx, { serializer = serializeTransaction } = {}) {
      const unsigned = await serializer(tx);
      const sig = keys.signDigest(bytes(keccak256(unsigned)));
      const yParity = sig[64] - 27;
      return serializer(tx, { r: hex(sig.slice(0, 32)), s: hex(sig.slice(32, 64)), yParity, v: BigInt(27 + yParity) });
    },
    async signMessage() {
      throw new EnigmaError('enigma-js signs transactions and typed tasks only');
    },
    async signTypedData() {
      throw new EnigmaError('enigma-js signs transactions and typed tasks only');
    },
  };
}

export class Client {
  /**
   * Connects to the chain and the gateway.
   * @param {object} config
   * @param {string} config.chainUrl   Ethereum JSON-RPC
   * @param {string} config.gatewayUrl the enigma gateway's JSON-RPC
   * @param {string} config.enigma     the Enigma contract
   * @param {object} config.policy     what a worker's attestation must show
   *   (`enigma_attestation::Policy` as JSON; a devnet prints its own)
   * @param {Uint8Array|string} [config.secret] the account's 32-byte key (scripts, devnets)
   * @param {object} [config.wallet]   an EIP-1193 provider (`window.ethereum`) instead of a key:
   *   it sends the transactions and signs tasks and queries as typed data
   * @param {bigint|number} [config.gasPrice] the task gas price (default: the chain's minimum)
   * @param {number} [config.resultTimeoutMs] how long to wait for a result (default 120 s)
   */
  static async connect(config) {
    await init();
    const c = new Client();
    // The secret lives only inside the wasm key object (never printed), not in the config.
    const { secret, wallet, ...rest } = config;
    c.config = { resultTimeoutMs: 120_000, ...rest };
    c.chain = createPublicClient({ transport: http(config.chainUrl), pollingInterval: 100 });
    const chainId = await c.chain.getChainId();
    c.chainDef = {
      id: chainId,
      name: `chain ${chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [config.chainUrl] } },
    };
    if (secret != null) {
      // Checked before parsing, and never echoed: a parser's error would quote the key.
      if (typeof secret === 'string' ? !/^(0x)?[0-9a-fA-F]{64}$/.test(secret) : !(secret instanceof Uint8Array && secret.length === 32)) {
        throw new EnigmaError('the secret must be 32 bytes: a Uint8Array, or 64 hex digits (0x optional)');
      }
      c.keys = core.Keys.fromSecret(typeof secret === 'string' ? bytes(secret) : secret);
      c.account = keyAccount(c.keys);
      c.wallet = createWalletClient({ account: c.account, chain: c.chainDef, transport: http(config.chainUrl) });
    } else if (wallet) {
      c.wallet = createWalletClient({ chain: c.chainDef, transport: custom(wallet) });
      const [address] = await c.wallet.requestAddresses();
      if (!address) throw new EnigmaError('the wallet gave no account: unlock it and allow this site');
      c.account = { address, type: 'json-rpc' };
    } else {
      throw new EnigmaError('give the account: `secret` (a 32-byte key) or `wallet` (an EIP-1193 provider)');
    }
    [c.principal, c.groupSize, c.token, c.minGasPrice, c.maxGasLimit] = await Promise.all([
      c.read('principal'),
      c.read('groupSize').then(Number),
      c.read('token'),
      c.read('minGasPrice'),
      c.read('maxGasLimit'),
    ]);
    c.gasPrice = BigInt(config.gasPrice ?? c.minGasPrice);
    c.attested = new Map();
    c.turn = Promise.resolve();
    return c;
  }

  /** The account's address (checksummed). */
  get address() {
    return this.account.address;
  }

  read(functionName, args = [], address = this.config.enigma, abi = enigmaAbi) {
    return this.chain.readContract({ address, abi, functionName, args });
  }

  /** Sends a transaction from the account and waits until it is mined. */
  async write(functionName, args, address = this.config.enigma, abi = enigmaAbi) {
    let hash;
    try {
      hash = await this.wallet.writeContract({ address, abi, functionName, args, account: this.account, chain: this.chainDef });
    } catch (e) {
      throw new EnigmaError(`${functionName} was refused: ${e.shortMessage || e.message}`);
    }
    let receipt;
    try {
      receipt = await this.chain.waitForTransactionReceipt({ hash, pollingInterval: 100 });
    } catch (e) {
      // Sent: it may still be mined. The hash lets a caller find out.
      throw new EnigmaError(`${functionName} was sent (transaction ${hash}) but its receipt was not received: ${e.shortMessage || e.message}`, { txHash: hash });
    }
    if (receipt.status !== 'success') throw new EnigmaError(`${functionName} reverted (transaction ${hash})`);
    return receipt;
  }

  async rpc(method, params) {
    let body;
    try {
      const response = await fetch(this.config.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [params] }),
      });
      body = await response.json();
    } catch (e) {
      throw new EnigmaError(`the gateway at ${this.config.gatewayUrl} did not answer ${method}: ${e.message}`, { unreachable: true });
    }
    if (body?.error) throw new EnigmaError(`the gateway: ${body.error.message}`, { code: body.error.code });
    return body?.result;
  }

  /** One recording at a time from this client: the task nonce is read and used under it. */
  async recordingTurn(work) {
    const run = this.turn.then(work, work);
    this.turn = run.catch(() => {});
    return run;
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
    // Simulation evidence (kind 0) is judged by the core; IAS and DCAP by the second module.
    const judge = last.args.evidenceKind === 0 ? core : await hardwareModule();
    let verdict;
    try {
      verdict = JSON.parse(judge.checkWorker(
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
    const deadline = Date.now() + 10_000;
    for (;;) {
      const answer = await this.rpc('getWorkerEncryptionKey', { workerAddress: worker });
      if (answer?.epochBlock === epochBlock) {
        const key = bytes(answer.workerEncryptionKey);
        if (core.workerKeySigner(key, bytes(answer.workerSig)) !== worker) {
          throw new EnigmaError(`worker ${worker}'s key is not signed by its enclave`);
        }
        return key;
      }
      if (Date.now() > deadline) {
        throw new EnigmaError(`the gateway has worker ${worker}'s key of epoch ${answer?.epochBlock}, not ${epochBlock}; retry shortly`);
      }
      await sleep(100);
    }
  }

  /** The account's signature over an EIP-712 digest: with its key, or by the wallet as typed
   * data (checked to be over the very digest the enclave will check). */
  async signTyped(digest, primaryType, types, message) {
    if (this.keys) return this.keys.signDigest(digest);
    const signature = bytes(await this.wallet.signTypedData({
      account: this.account.address,
      domain: { name: 'Enigma', version: '1', salt: pad(this.principal, { size: 32 }) },
      types,
      primaryType,
      message,
    }));
    if (core.recoverAddress(digest, signature) !== this.address) {
      throw new EnigmaError(`the wallet's ${primaryType} signature is not over this task`);
    }
    return signature;
  }

  /** Deposits `grains` of ENG into the prepaid balance that pays task fees (approving first). */
  async deposit(grains) {
    const amount = BigInt(grains);
    await this.write('approve', [this.config.enigma, amount], this.token, tokenAbi);
    await this.write('depositBalance', [amount]);
  }

  /** The account's prepaid balance (grains) and ENG held. */
  async balances() {
    const [prepaid, eng] = await Promise.all([
      this.read('prepaidBalance', [this.address]),
      this.read('balanceOf', [this.address], this.token, tokenAbi),
    ]);
    return { prepaid, eng };
  }

  async checkFunds(gasLimit, value) {
    this.checkLimits(gasLimit);
    await this.checkBalance(BigInt(gasLimit) * this.gasPrice + BigInt(value));
  }

  checkLimits(gasLimit) {
    const limit = BigInt(gasLimit);
    if (limit === 0n || limit > this.maxGasLimit || this.gasPrice < this.minGasPrice) {
      throw new EnigmaError(`the chain accepts tasks with a gas price of at least ${this.minGasPrice} and a gas limit of at most ${this.maxGasLimit}; this one has ${this.gasPrice} and ${limit}`);
    }
  }

  async checkBalance(need) {
    const have = await this.read('prepaidBalance', [this.address]);
    if (have < need) {
      throw new EnigmaError(`the prepaid balance holds ${have} grains, the task needs ${need}: deposit more`);
    }
  }

  /**
   * Deploys a secret contract: `wasm` (its WebAssembly module), running `constructor` with
   * ABI-encoded `args`. Resolves once the chain registers the contract.
   * @param {object} [options] `gasLimit`, `anonymous`, `onProgress(stage, detail)`
   * @returns {Promise<TaskOutcome>} its `contract` is the new contract's address
   */
  async deploy(wasm, constructor = 'construct()', args = new Uint8Array(), options = {}) {
    const { gasLimit = 20_000_000, onProgress = () => {} } = options;
    onProgress('checking', {});
    await this.checkFunds(gasLimit, 0n);
    const codeHash = core.codeHash(wasm);
    const task = await this.recordingTurn(async () => {
      const nonce = Number(await this.read('taskNonce', [this.address]));
      const id = core.taskId(this.address, nonce);
      const contract = id;
      onProgress('selecting', { contract });
      const { worker, epochBlock } = await this.selected(contract);
      const key = await this.workerKey(worker, epochBlock);
      const mine = core.Keys.generate();
      const shared = mine.sharedKey(key);
      const f = shared.encryptField(utf8.encode(constructor), contract, id, '0', 'callable');
      const a = shared.encryptField(args, contract, id, '0', 'arguments');
      const inputs = core.inputsHashDeploy(f, a, codeHash, mine.publicKey());
      // Signed before anything is paid: a wallet's refusal costs no fee.
      const proof = await this.proveCaller(contract, nonce, inputs, 0n, options);
      onProgress('recording', { taskId: id, worker });
      const receipt = await this.write('createDeploymentTaskRecord', [hex(inputs), BigInt(gasLimit), this.gasPrice, BigInt(epochBlock), BigInt(nonce)]);
      const params = {
        workerAddress: worker,
        preCode: base64(wasm),
        encryptedArgs: hex(a),
        encryptedFn: hex(f),
        userDHKey: hex(mine.publicKey()),
        contractAddress: contract,
        ...proof.params,
      };
      return { id, contract, worker, shared, params, inputs, caller: proof.caller, value: 0n, isDeploy: true, codeHash, recordTx: receipt.transactionHash };
    });
    const outcome = await this.finish(task, 'deploySecretContract', options);
    onProgress('registering', { taskId: task.id, contract: task.contract });
    const deadline = Date.now() + this.config.resultTimeoutMs;
    while (/^0x0+$/.test((await this.read('getSecretContract', [task.contract])).codeHash)) {
      if (Date.now() > deadline) throw new EnigmaError(`deployment ${task.id} was not registered on chain in time`, { taskId: task.id });
      await sleep(100);
    }
    onProgress('done', { taskId: task.id, contract: task.contract });
    return outcome;
  }

  /**
   * Calls `callable` (e.g. `add_millionaire(address,uint256)`) on `contract` with ABI-encoded
   * `args` as a task: selects the worker and checks its attestation, encrypts the inputs to its
   * enclave, records the task on chain (its fee escrowed), sends it, waits for the result, checks
   * it (signed by the selected worker's enclave over this task, on the chain's state) and
   * decrypts it.
   * @param {object} [options] `gasLimit`, `value` (grains sent with the call), `anonymous`
   *   (do not prove the caller), `onProgress(stage, detail)`: stages `checking`, `selecting`,
   *   `encrypting`, `recording`, `sending`, `waiting`, `verifying`, `done`
   * @returns {Promise<TaskOutcome>}
   */
  async compute(contract, callable, args = new Uint8Array(), options = {}) {
    const { gasLimit = 20_000_000, value = 0n, onProgress = () => {} } = options;
    onProgress('checking', { contract });
    const head = await this.read('getSecretContract', [contract]);
    if (/^0x0+$/.test(head.codeHash)) throw new EnigmaError(`no secret contract ${contract} is deployed`);
    await this.checkFunds(gasLimit, value);
    onProgress('selecting', { contract });
    const { worker, epochBlock } = await this.selected(contract);
    const key = await this.workerKey(worker, epochBlock);
    const task = await this.recordingTurn(async () => {
      const nonce = Number(await this.read('taskNonce', [this.address]));
      const id = core.taskId(this.address, nonce);
      onProgress('encrypting', { taskId: id, worker });
      const mine = core.Keys.generate();
      const shared = mine.sharedKey(key);
      const v = String(BigInt(value));
      const f = shared.encryptField(utf8.encode(callable), contract, id, v, 'callable');
      const a = shared.encryptField(args, contract, id, v, 'arguments');
      const inputs = core.inputsHashCompute(f, a, contract, mine.publicKey());
      // Signed before anything is paid: a wallet's refusal costs no fee.
      const proof = await this.proveCaller(contract, nonce, inputs, BigInt(value), options);
      onProgress('recording', { taskId: id, worker });
      const receipt = await this.write('createTaskRecord', [contract, hex(inputs), BigInt(gasLimit), this.gasPrice, BigInt(epochBlock), BigInt(nonce), BigInt(value)]);
      const params = {
        taskId: id,
        workerAddress: worker,
        encryptedFn: hex(f),
        encryptedArgs: hex(a),
        contractAddress: contract,
        userDHKey: hex(mine.publicKey()),
        ...proof.params,
      };
      return { id, contract, worker, shared, params, inputs, caller: proof.caller, value: BigInt(value), isDeploy: false, codeHash: head.codeHash, recordTx: receipt.transactionHash };
    });
    const outcome = await this.finish(task, 'sendTaskInput', options);
    onProgress('done', { taskId: task.id });
    return outcome;
  }

  /**
   * Several compute tasks recorded in **one transaction** (`createTaskRecords`; each task keeps
   * its own record, so status, receipts and refunds are as for `compute`): about 77,000 gas a
   * task in a batch of 16 against 119,000 alone. All are recorded or none. They are then sent in
   * the chain's order, each once the worker took the one before, and their results awaited
   * together.
   * @param {Array<{contract: string, callable: string, args?: Uint8Array, gasLimit?: number|bigint, value?: bigint}>} calls
   *   the tasks, in the order they are recorded (tasks of one contract run in this order)
   *   (at most 16)
   * @param {object} [options] `anonymous`, `onProgress(stage, detail)` (each task's stages).
   *   With a wallet, each task's caller proof is a signature of its own (one prompt a task)
   *   unless `anonymous`.
   * @returns {Promise<PromiseSettledResult<TaskOutcome>[]>} each task's outcome or error, in
   *   the order of `calls`; it rejects if the recording failed (the error's `taskIds` name the
   *   tasks; `txHash` when its transaction was sent and may still be mined)
   */
  async computeMany(calls, options = {}) {
    const { onProgress = () => {} } = options;
    if (!Array.isArray(calls) || calls.length === 0) throw new EnigmaError('computeMany needs at least one task');
    if (calls.length > MAX_TASKS_IN_ONE_RECORD) {
      throw new EnigmaError(`at most ${MAX_TASKS_IN_ONE_RECORD} tasks are recorded at once; ${calls.length} given (record them in parts)`);
    }
    const tasks = calls.map((c, i) => {
      if (typeof c?.contract !== 'string' || typeof c.callable !== 'string') {
        throw new EnigmaError(`task ${i} needs a contract and a callable`);
      }
      return { contract: c.contract, callable: c.callable, args: c.args ?? new Uint8Array(), gasLimit: BigInt(c.gasLimit ?? 20_000_000), value: BigInt(c.value ?? 0n) };
    });
    const codeHashes = new Map();
    for (const t of tasks) {
      if (codeHashes.has(t.contract)) continue;
      onProgress('checking', { contract: t.contract });
      const head = await this.read('getSecretContract', [t.contract]);
      if (/^0x0+$/.test(head.codeHash)) throw new EnigmaError(`no secret contract ${t.contract} is deployed`);
      codeHashes.set(t.contract, head.codeHash);
    }
    for (const t of tasks) this.checkLimits(t.gasLimit);
    await this.checkBalance(tasks.reduce((sum, t) => sum + t.gasLimit * this.gasPrice + t.value, 0n));
    // Every task's worker in one epoch (the record names one): targeted again if it turned.
    let targets;
    for (let tries = 0; ; tries += 1) {
      const byContract = new Map();
      for (const t of tasks) {
        if (byContract.has(t.contract)) continue;
        onProgress('selecting', { contract: t.contract });
        const { worker, epochBlock } = await this.selected(t.contract);
        byContract.set(t.contract, { worker, epochBlock, key: await this.workerKey(worker, epochBlock) });
      }
      targets = tasks.map((t) => byContract.get(t.contract));
      if (targets.every((x) => x.epochBlock === targets[0].epochBlock)) break;
      if (tries >= 3) throw new EnigmaError('the epoch kept changing while the tasks were targeted; try again');
    }
    const epochBlock = targets[0].epochBlock;
    const recorded = await this.recordingTurn(async () => {
      const nonce = Number(await this.read('taskNonce', [this.address]));
      const sealed = [];
      for (const [i, t] of tasks.entries()) {
        const id = core.taskId(this.address, nonce + i);
        const { worker, key } = targets[i];
        onProgress('encrypting', { taskId: id, worker });
        const mine = core.Keys.generate();
        const shared = mine.sharedKey(key);
        const v = String(t.value);
        const f = shared.encryptField(utf8.encode(t.callable), t.contract, id, v, 'callable');
        const a = shared.encryptField(t.args, t.contract, id, v, 'arguments');
        const inputs = core.inputsHashCompute(f, a, t.contract, mine.publicKey());
        // Signed before anything is paid: a wallet's refusal costs no fee.
        const proof = await this.proveCaller(t.contract, nonce + i, inputs, t.value, options);
        const params = {
          taskId: id,
          workerAddress: worker,
          encryptedFn: hex(f),
          encryptedArgs: hex(a),
          contractAddress: t.contract,
          userDHKey: hex(mine.publicKey()),
          ...proof.params,
        };
        sealed.push({ id, contract: t.contract, worker, shared, params, inputs, caller: proof.caller, value: t.value, isDeploy: false, codeHash: codeHashes.get(t.contract) });
      }
      onProgress('recording', { taskId: sealed[0].id });
      let recordTx = null;
      try {
        const receipt = await this.write('createTaskRecords', [
          tasks.map((t) => t.contract),
          sealed.map((x) => hex(x.inputs)),
          tasks.map((t) => t.gasLimit),
          this.gasPrice,
          BigInt(epochBlock),
          BigInt(nonce),
          tasks.map((t) => t.value),
        ]);
        recordTx = receipt.transactionHash;
      } catch (e) {
        const taskIds = sealed.map((x) => x.id);
        const span = `tasks ${taskIds[0]} … ${taskIds.at(-1)}`;
        // Never sent, or mined and reverted: nothing is recorded.
        if (!e.txHash) throw new EnigmaError(`${e.message} (${span}: none is recorded)`, { taskIds });
        // Sent, its receipt lost: the records may stand (one transaction: the first standing
        // with these inputs means all do), or may still be mined.
        const first = await this.read('getTaskRecord', [sealed[0].id]).catch(() => null);
        if (first?.inputsHash !== hex(sealed[0].inputs)) {
          throw new EnigmaError(`${e.message} (${span} may still be recorded: check taskStatus before recording them again)`, { taskIds, txHash: e.txHash });
        }
      }
      for (const x of sealed) x.recordTx = recordTx;
      return sealed;
    });
    // Sent in the chain's order, each once the worker took the one before; awaited together.
    const delivered = [];
    for (const task of recorded) {
      delivered.push(await this.deliver(task, 'sendTaskInput', options).then(() => null, (e) => e));
    }
    return Promise.allSettled(recorded.map(async (task, i) => {
      if (delivered[i]) throw delivered[i];
      const outcome = await this.complete(task, options);
      onProgress('done', { taskId: task.id });
      return outcome;
    }));
  }

  /** The proof that this account calls (its EIP-712 signature over the task), unless the task
   * is anonymous: the gateway parameters it adds and the caller the result must name. */
  async proveCaller(contract, nonce, inputs, value, { anonymous = false }) {
    if (anonymous) return { params: {}, caller: ZERO };
    const digest = core.callerDigest(this.principal, contract, this.address, nonce, inputs, String(value));
    const signature = await this.signTyped(digest, 'EnigmaTask', {
      EnigmaTask: [
        { name: 'contract', type: 'bytes32' },
        { name: 'sender', type: 'address' },
        { name: 'nonce', type: 'uint256' },
        { name: 'inputsHash', type: 'bytes32' },
        { name: 'value', type: 'uint256' },
      ],
    }, { contract, sender: this.address, nonce: BigInt(nonce), inputsHash: hex(inputs), value });
    return {
      params: { sender: this.address, callerNonce: nonce, callerSignature: hex(signature) },
      caller: this.address,
    };
  }

  /** Sends a recorded task, awaits its result, verifies and decrypts it. */
  async finish(task, method, options) {
    await this.deliver(task, method, options);
    return this.complete(task, options);
  }

  /** Sends a recorded task to the gateway; resolves once the worker took it (or may have). */
  async deliver(task, method, { onProgress = () => {} }) {
    const { id, worker, params } = task;
    onProgress('sending', { taskId: id, worker, recordTx: task.recordTx });
    // The task is recorded and paid: one the gateway could not take or hand on now (a restart, a
    // dropped connection, a worker it does not know yet) is sent again until the wait is over. A
    // worker takes a task it already has as that same task: nothing runs twice.
    const deadline = Date.now() + this.config.resultTimeoutMs;
    let maybeDelivered = false; // an attempt may have reached the worker without its answer
    for (let pause = 250; ; pause = Math.min(pause * 2, 2000)) {
      try {
        await this.rpc(method, params);
        break;
      } catch (e) {
        // Delivered, but the worker did not answer in time: it may be running; the result decides.
        if (e.code === UNANSWERED) break;
        // A refusal after an attempt whose fate is unknown: that attempt may have run the task.
        if (maybeDelivered && !e.unreachable && e.code !== NOT_DELIVERED && e.code !== NOT_ADMITTED) break;
        // Over the gateway's limits (many tasks in flight from one address) it is taken once some
        // finish; a ban is not waited out.
        const busy = e.code === NOT_ADMITTED && !String(e.message).includes('banned');
        const again = e.unreachable || e.code === NOT_DELIVERED || busy;
        maybeDelivered ||= Boolean(e.unreachable);
        if (again && Date.now() + pause < deadline) {
          await sleep(pause);
          continue;
        }
        if (maybeDelivered) break;
        throw new EnigmaError(`task ${id} was recorded but not executed: ${e.message} (its fee can be refunded after the chain's timeout)`, { taskId: id });
      }
    }
  }

  /** Awaits a delivered task's result, verifies and decrypts it. */
  async complete(task, { onProgress = () => {} }) {
    const { id, contract, worker, inputs, shared, value, isDeploy, codeHash, caller } = task;
    onProgress('waiting', { taskId: id, worker });
    const { view, via } = await this.awaitResult(id);
    onProgress('verifying', { taskId: id, worker, via });
    const json = JSON.stringify(view);
    let checked;
    try {
      checked = JSON.parse(core.verifyResult(json, id, inputs, contract, isDeploy, String(value), caller, codeHash, worker));
    } catch (e) {
      throw new EnigmaError(`task ${id}'s result is refused: ${e.message}`, { taskId: id });
    }
    const finality = await this.finality(id, contract, json, checked, isDeploy, codeHash);
    let output;
    try {
      output = shared.openOutput(bytes(view.output), contract, id, String(value));
    } catch (e) {
      throw new EnigmaError(`task ${id}'s result is refused: ${e.message}`, { taskId: id });
    }
    if (!checked.success) {
      throw new EnigmaError(`task ${id} failed: ${new TextDecoder().decode(output)}`, { taskId: id, gasUsed: checked.gasUsed, failed: true });
    }
    return {
      taskId: id,
      contract,
      output,
      gasUsed: checked.gasUsed,
      worker,
      outputHash: checked.outputHash,
      deltaHash: checked.deltaHash,
      payouts: checked.payouts,
      finality,
      recordTx: task.recordTx,
    };
  }

  /** A task's result as the gateway serves it (unverified): pushed over the gateway's
   * WebSocket (`subscribeTaskResult`) where the platform has one — browsers, Node 22 — and
   * polled over HTTP too (often without a WebSocket), whichever comes first. */
  async awaitResult(id) {
    const deadline = Date.now() + this.config.resultTimeoutMs;
    let socket;
    let pushed = null;
    const arrived = new Promise((resolve) => {
      if (typeof WebSocket !== 'function') return;
      try {
        socket = new WebSocket(this.config.gatewayUrl.replace(/^http/, 'ws'));
      } catch {
        return;
      }
      let subscription;
      socket.onopen = () => socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscribeTaskResult', params: [{ taskId: id }] }));
      socket.onmessage = (m) => {
        try {
          const message = JSON.parse(m.data);
          if (message.id === 1 && message.result != null) subscription = message.result;
          // Only our subscription's push of this task's result (verified after, like any).
          if (message.method === 'taskResult' && message.params?.subscription === subscription &&
            subscription != null && message.params.result?.taskId === id) {
            pushed = message.params.result;
            resolve();
          }
        } catch {
          // not a notification of ours: the poll still runs
        }
      };
      socket.onerror = () => {};
    });
    try {
      for (;;) {
        if (pushed) return { view: pushed, via: 'websocket' };
        const view = await this.rpc('getTaskResult', { taskId: id });
        if (view) return { view, via: 'http' };
        if (Date.now() > deadline) throw new EnigmaError(`no result for task ${id} in time`, { taskId: id });
        await Promise.race([arrived, sleep(socket ? 1000 : 100)]);
      }
    } finally {
      socket?.close();
    }
  }

  /** Where a verified result stands against the chain, as the Rust client judges it:
   * `provisional` (its receipt not yet on chain, its state the chain's or ahead) or `confirmed`
   * (the chain holds this very result). Throws for a result that can never land. */
  async finality(id, contract, json, checked, isDeploy, codeHash) {
    const head = isDeploy ? null : await this.read('getSecretContract', [contract]);
    const record = await this.read('getTaskRecord', [id]);
    const status = TASK_STATUS[record.status];
    if (!FINAL.has(status)) {
      if (head) {
        try {
          core.resultStanding(json, Number(head.deltaCount), head.lastDeltaHash);
        } catch (e) {
          throw new EnigmaError(`task ${id}'s result is refused: ${e.message}`, { taskId: id });
        }
      }
      return 'provisional';
    }
    const never = (why) => new EnigmaError(`task ${id}'s result is refused: the task is final on chain, but ${why}`, { taskId: id });
    if (status === 'FailedReturn') throw never('its fee was returned: no result was committed');
    if ((status === 'Failed') === checked.success) throw never(`the chain holds a ${status} receipt, not this result`);
    if (isDeploy && checked.success) {
      // The receipt landed; a failed Ethereum callback leaves no contract registered.
      if (status === 'FailedEth') return 'confirmed';
      const registered = await this.read('getSecretContract', [contract]);
      if (registered.codeHash !== codeHash) throw never('the chain registered no contract of this code at its address');
      return 'confirmed';
    }
    // A node may serve the new status a moment before its log index has the receipt event.
    let receipt = await this.receipt(id, contract);
    for (let i = 0; !receipt && i < 5; i++) {
      await sleep(200);
      receipt = await this.receipt(id, contract);
    }
    if (!receipt) {
      // A failed deployment's receipt names no contract the logs are searched by.
      if (isDeploy) return 'confirmed';
      throw never('its receipt could not be found');
    }
    if (receipt.outputHash !== checked.outputHash || receipt.deltaHash !== checked.deltaHash) {
      throw never(`its receipt carries output hash ${receipt.outputHash} and delta hash ${receipt.deltaHash}`);
    }
    return 'confirmed';
  }

  /** Delta `index` of `contract` as the chain keeps it: from its slot, or from the receipt event
   * that wrote its chunk, checked against the chunk's commitment (docs/api.md section 8). */
  async deltaHashAt(contract, index) {
    const [hashes, chunks] = await this.read('getDeltas', [contract, BigInt(index), BigInt(index + 1)]);
    if (hashes.length !== 1) return null;
    if (chunks.length === 0) return hashes[0];
    const chunk = chunks[0];
    const block = BigInt(chunk.blockNumber);
    const logs = await this.chain.getContractEvents({
      address: this.config.enigma,
      abi: enigmaAbi,
      eventName: 'ReceiptsVerified',
      args: { scAddr: contract },
      fromBlock: block,
      toBlock: block,
    });
    for (const log of logs) {
      if (log.args.firstDeltaIndex !== BigInt(chunk.first)) continue;
      const appended = log.args.deltaHashes.filter((h) => BigInt(h) !== 0n);
      if (appended.length !== Number(chunk.count)) continue;
      // The commitment is the first 19 bytes of the hash: '0x' and 38 hex digits.
      if (keccak256(concat(appended)).slice(0, 40) !== chunk.listHash.toLowerCase()) continue;
      const at = index - Number(chunk.first);
      if (at < 0 || at >= appended.length) break; // a chunk that does not hold the delta asked for
      return appended[at];
    }
    throw new EnigmaError(
      `delta ${index} of ${contract} is kept in a chunk whose receipt event (block ${block}) the chain did not return; use an RPC that keeps the chain's logs`,
    );
  }

  /** A task's receipt event (single or in a batch), or null. */
  async receipt(id, contract) {
    const record = await this.read('getTaskRecord', [id]);
    const from = { address: this.config.enigma, abi: enigmaAbi, fromBlock: record.createdAt };
    for (const eventName of ['ReceiptVerified', 'ReceiptFailed', 'ReceiptFailedETH']) {
      const [log] = await this.chain.getContractEvents({ ...from, eventName, args: { taskId: id } });
      if (log) {
        return {
          outputHash: log.args.outputHash,
          deltaHash: log.args.deltaHash ?? `0x${'0'.repeat(64)}`,
          gasUsed: Number(log.args.gasUsed),
        };
      }
    }
    const batches = await this.chain.getContractEvents({ ...from, eventName: 'ReceiptsVerified', args: { scAddr: contract } });
    for (const log of batches) {
      const i = log.args.taskIds.indexOf(id);
      if (i >= 0) {
        return { outputHash: log.args.outputHashes[i], deltaHash: log.args.deltaHashes[i], gasUsed: Number(log.args.gasUsed[i]) };
      }
    }
    return null;
  }

  /** A task's status on chain: one of {@link TASK_STATUS}. */
  async taskStatus(id) {
    const record = await this.read('getTaskRecord', [id]);
    return TASK_STATUS[record.status] ?? 'Undefined';
  }

  /** Waits until the task is final on chain (its receipt landed, or its fee was returned). */
  async waitFinal(id) {
    const deadline = Date.now() + this.config.resultTimeoutMs;
    for (;;) {
      const status = await this.taskStatus(id);
      if (FINAL.has(status)) return status;
      if (Date.now() > deadline) throw new EnigmaError(`task ${id} is not final on chain in time`, { taskId: id });
      await sleep(100);
    }
  }

  /** Waits for a task's receipt on chain and checks it against the verified result. */
  async confirm(outcome) {
    const status = await this.waitFinal(outcome.taskId);
    if (status === 'FailedReturn') {
      throw new EnigmaError(
        `task ${outcome.taskId} was refunded: its receipt never landed on chain (the worker was cut off before committing it, and the next holder went on from the chain's state), so this result is void and the contract's state does not include it; send the task again`,
        { taskId: outcome.taskId },
      );
    }
    const receipt = await this.receipt(outcome.taskId, outcome.contract);
    if (!receipt) throw new EnigmaError(`task ${outcome.taskId} is ${status} on chain but no receipt event names it`);
    for (const [what, chain, result] of [
      ['output hash', receipt.outputHash, outcome.outputHash],
      ['delta hash', receipt.deltaHash, outcome.deltaHash],
      ['gas used', receipt.gasUsed, outcome.gasUsed],
    ]) {
      if (chain !== result) throw new EnigmaError(`the chain's receipt of task ${outcome.taskId} has ${what} ${chain}, the result ${result}`);
    }
    return { status, ...receipt };
  }

  /** Returns the fee of a task nobody committed, once the chain's timeout has passed. */
  async refund(id) {
    await this.write('returnFeesForTask', [id]);
  }

  /**
   * Signs a query permit with the account (a wallet is asked once): queries of `contracts` until
   * `expiry` (Unix seconds) may carry it instead of a signature each. Whoever holds it can ask
   * these contracts as this account until it expires or is revoked: keep it private.
   * @returns {Promise<{name: string, contracts: string[], expiry: number, signature: string}>}
   */
  async signPermit(name, contracts, expiry) {
    const digest = core.permitDigest(this.principal, name, contracts, expiry);
    const signature = await this.signTyped(digest, 'EnigmaPermit', {
      EnigmaPermit: [
        { name: 'name', type: 'string' },
        { name: 'contracts', type: 'bytes32[]' },
        { name: 'expiry', type: 'uint64' },
      ],
    }, { name, contracts, expiry: BigInt(expiry) });
    return { name, contracts: [...contracts], expiry, signature: hex(signature) };
  }

  /** Revokes this account's permits named `name` for `contract` before they expire (a signed
   * task: the contract's enclave refuses them from its new state on). */
  revokePermit(contract, name, options = {}) {
    return this.compute(contract, 'enigma_revoke_permit(string)',
      hexToBytes(encodeAbiParameters([{ type: 'string' }], [name])), { gasLimit: 20_000, ...options });
  }

  /**
   * Asks `callable` (e.g. `compute_richest()`) of `contract` with ABI-encoded `args` as a
   * read-only query: no record, no fee. The answer is checked — signed by the selected worker's
   * enclave over this query, this code, a state not behind the chain's, and this caller — and
   * decrypted.
   * @param {object} [options] `anonymous` (ask as nobody: for functions that do not ask who
   *   calls); `permit` (ask as the permit's signer, with a permit from {@link signPermit}: no
   *   signature per query); `latest` (the selected worker's newest state, including results
   *   whose receipts are not on chain yet, instead of the state at the chain's delta tip)
   * @returns {Promise<{output: Uint8Array, worker: string, deltaCount: number, onChain: boolean, gasUsed: number}>}
   */
  async query(contract, callable, args = new Uint8Array(), { anonymous = false, latest = false, permit = null } = {}) {
    const head = await this.read('getSecretContract', [contract]);
    if (/^0x0+$/.test(head.codeHash)) throw new EnigmaError(`no secret contract ${contract} is deployed`);
    const { worker, epochBlock } = await this.selected(contract);
    const workerKey = await this.workerKey(worker, epochBlock);
    const mine = core.Keys.generate();
    const shared = mine.sharedKey(workerKey);
    const queryId = core.keccak256(mine.publicKey());
    const asTask = core.queryTaskId(queryId);
    const seal = (plain, field) => shared.encryptField(plain, contract, asTask, '0', field);
    const encryptedFn = seal(utf8.encode(callable), 'callable');
    const encryptedArgs = seal(args, 'arguments');
    const queryHash = core.queryHash(contract, queryId, encryptedFn, encryptedArgs, mine.publicKey());
    // The caller field is always there and always the same size: its length tells the host
    // nothing about who asks, or whether anyone does.
    let callerField;
    let caller = ZERO;
    if (anonymous) {
      callerField = core.queryCallerField(undefined);
    } else if (permit) {
      const signature = bytes(permit.signature);
      callerField = core.queryPermitField(permit.name, permit.contracts, permit.expiry, signature);
      caller = core.recoverAddress(core.permitDigest(this.principal, permit.name, permit.contracts, permit.expiry), signature);
    } else {
      const signature = await this.signTyped(core.queryDigest(this.principal, contract, queryHash), 'EnigmaQuery', {
        EnigmaQuery: [{ name: 'contract', type: 'bytes32' }, { name: 'query', type: 'bytes32' }],
      }, { contract, query: hex(queryHash) });
      callerField = core.queryCallerField(signature);
      caller = this.address;
    }
    const answer = await this.rpc('queryContract', {
      contractAddress: contract,
      workerAddress: worker,
      queryId: hex(queryId),
      epochBlock,
      encryptedFn: hex(encryptedFn),
      encryptedArgs: hex(encryptedArgs),
      encryptedCaller: hex(seal(callerField, 'caller')),
      userDHKey: hex(mine.publicKey()),
      freshness: latest ? 'latest' : 'confirmed',
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
    let onChain = true;
    if (answer.deltaCount > Number(head.deltaCount)) {
      const now = await this.read('getSecretContract', [contract]);
      onChain = answer.deltaCount <= Number(now.deltaCount);
      if (!onChain && !latest) {
        throw new EnigmaError(`the answer ran on ${answer.deltaCount} deltas, past the chain's ${now.deltaCount}, but the query asked for the chain's state`);
      }
      if (onChain && (await this.deltaHashAt(contract, answer.deltaCount - 1)) !== answer.deltaHash) {
        throw new EnigmaError('the answer ran on a state that is not the chain\'s');
      }
    }
    const plain = shared.openOutput(output, contract, asTask, '0');
    if (answer.status !== 'SUCCESS') {
      throw new EnigmaError(`the query failed: ${new TextDecoder().decode(plain)}`);
    }
    return { output: plain, worker, caller, deltaCount: answer.deltaCount, onChain, gasUsed: answer.gasUsed };
  }
}

/** Base64 of bytes, in browsers and Node alike. */
function base64(data) {
  let s = '';
  for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return btoa(s);
}
