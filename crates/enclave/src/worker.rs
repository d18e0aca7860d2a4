//! The worker enclave: identity and IO keys, state keys, deploy and compute, batch signing.

use std::collections::{HashMap, VecDeque};

use enigma_attestation::{WORKER_PRODUCT_ID, simulation_measurement};
use enigma_crypto::{KeyPair, PublicKey, Signature, SymmetricKey};
use enigma_runtime::{ContractCode, ContractState, ExecError, Limits, Randomness, Runtime, Task};
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, OutputHash, SignerAddress, code_hash,
    delta::Delta,
    delta_hash,
    enc::{Decoder, Encoder},
    inputs_hash_compute, inputs_hash_deploy,
    messages::{
        BatchEntry, ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt, STATUS_FAILURE,
        STATUS_SUCCESS, batch_digest, bytes_digest, worker_key_digest,
    },
    output_hash,
};
use zeroize::Zeroizing;

use crate::{
    api::*,
    boundary::{EnclaveError, limits},
    seal::{NodeSecret, Sealer},
};

const IDENTITY: &str = "worker-identity";
pub(crate) const REQUEST_MAGIC: &[u8] = b"enigma-state-key-request-v1";
pub(crate) const RESPONSE_MAGIC: &[u8] = b"enigma-state-key-response-v1";
/// IO keys kept: the current epoch's and the two before (tasks of an epoch may still run after it).
const IO_KEYS_KEPT: usize = 3;
/// State-key requests awaiting an answer.
const PENDING_REQUESTS: usize = 16;
/// Contracts whose decrypted state stays cached.
const CACHED_STATES: usize = 256;

/// The enclave's randomness: the operating system's (RDRAND inside SGX).
pub(crate) struct EnclaveRng;

impl Randomness for EnclaveRng {
    fn fill(&mut self, buf: &mut [u8]) {
        // An RNG failure is not survivable for an enclave; the boundary turns the panic into an
        // error response and nothing is signed.
        enigma_crypto::random_bytes(buf).unwrap_or_else(|e| panic!("the enclave RNG failed: {e}"));
    }
}

struct IoKey {
    epoch: u64,
    pair: KeyPair,
    signature: Signature,
}

struct Identity {
    signing: KeyPair,
    io_keys: Vec<IoKey>,
}

struct PendingRequest {
    id: [u8; 12],
    epoch: u64,
    contracts: Vec<ContractAddress>,
    ephemeral: KeyPair,
}

pub(crate) struct WorkerState {
    sealer: Sealer,
    mr_enclave: [u8; 32],
    debug: bool,
    identity: Option<Identity>,
    principal: Address,
    runtime: Runtime,
    state_keys: HashMap<ContractAddress, SymmetricKey>,
    states: HashMap<ContractAddress, (ContractState, u64)>,
    state_clock: u64,
    pending: VecDeque<PendingRequest>,
}

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("signer", &self.identity.as_ref().map(|i| i.signing.address()))
            .field("state_keys", &self.state_keys.len())
            .field("cached_states", &self.states.len())
            .finish_non_exhaustive()
    }
}

fn crypto(e: enigma_crypto::Error) -> EnclaveError {
    EnclaveError::Crypto(e.to_string())
}

fn cap(what: &str, len: usize, max: usize) -> Result<(), EnclaveError> {
    if len > max { Err(EnclaveError::TooLarge { what: what.into(), len, max }) } else { Ok(()) }
}

fn position(state: &ContractState) -> ChainPosition {
    ChainPosition { next_index: state.next_index(), tip: state.tip() }
}

impl WorkerState {
    pub(crate) fn new(secret: &NodeSecret, debug: bool) -> Self {
        let mr_enclave = simulation_measurement("worker");
        Self {
            sealer: Sealer::new(secret, mr_enclave),
            mr_enclave,
            debug,
            identity: None,
            principal: Address::ZERO,
            runtime: Runtime::new(Limits { debug_logs: debug, ..Limits::default() }),
            state_keys: HashMap::new(),
            states: HashMap::new(),
            state_clock: 0,
            pending: VecDeque::new(),
        }
    }

    fn identity(&self) -> Result<&Identity, EnclaveError> {
        self.identity.as_ref().ok_or(EnclaveError::NotInitialized)
    }

    fn report(&self, signing: &KeyPair) -> EnclaveReport {
        EnclaveReport {
            role: Role::Worker,
            signer: SignerAddress::from(signing.address()),
            mr_enclave: self.mr_enclave,
            isv_prod_id: WORKER_PRODUCT_ID,
            debug: self.debug,
        }
    }

    fn seal_identity(&self) -> Result<Vec<u8>, EnclaveError> {
        let id = self.identity()?;
        let secret = id.signing.secret_bytes();
        let io: Vec<(u64, Zeroizing<[u8; 32]>)> =
            id.io_keys.iter().map(|k| (k.epoch, k.pair.secret_bytes())).collect();
        let payload = Zeroizing::new(
            Encoder::new()
                .bytes(secret.as_ref())
                .list(&io, |e, (epoch, key)| e.u64(*epoch).bytes(key.as_ref()))
                .into_bytes(),
        );
        self.sealer.seal(IDENTITY, &payload)
    }

    fn unseal_identity(&self, blob: &[u8]) -> Result<Identity, EnclaveError> {
        let payload = self.sealer.unseal(IDENTITY, blob)?;
        let bad = |e: enigma_types::DecodeError| {
            EnclaveError::Sealing(format!("malformed identity: {e}"))
        };
        let mut d = Decoder::new(&payload);
        let signing =
            KeyPair::from_bytes(&Zeroizing::new(d.fixed::<32>().map_err(bad)?)).map_err(crypto)?;
        let n = d.list_len(IO_KEYS_KEPT as u64).map_err(bad)?;
        let mut io_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let epoch = d.u64().map_err(bad)?;
            let pair = KeyPair::from_bytes(&Zeroizing::new(d.fixed::<32>().map_err(bad)?))
                .map_err(crypto)?;
            let signature = signing.sign_digest(&worker_key_digest(pair.public_key().as_bytes()));
            io_keys.push(IoKey { epoch, pair, signature });
        }
        d.finish().map_err(bad)?;
        Ok(Identity { signing, io_keys })
    }

    pub(crate) fn init(&mut self, init: WorkerInit) -> Result<Initialized, EnclaveError> {
        let identity = match &init.sealed_identity {
            Some(blob) => self.unseal_identity(blob)?,
            None => Identity { signing: KeyPair::generate().map_err(crypto)?, io_keys: Vec::new() },
        };
        let report = self.report(&identity.signing);
        self.identity = Some(identity);
        self.principal = init.principal;
        let sealed = match init.sealed_identity {
            Some(blob) => blob,
            None => self.seal_identity()?,
        };
        Ok(Initialized { report, sealed })
    }

    fn io_pair(&self, epoch: u64) -> Result<&IoKey, EnclaveError> {
        self.identity()?
            .io_keys
            .iter()
            .find(|k| k.epoch == epoch)
            .ok_or(EnclaveError::NoIoKey { epoch })
    }

    pub(crate) fn rotate_io_key(&mut self, epoch: u64) -> Result<RotatedKey, EnclaveError> {
        let id = self.identity.as_mut().ok_or(EnclaveError::NotInitialized)?;
        if !id.io_keys.iter().any(|k| k.epoch == epoch) {
            let pair = KeyPair::generate().map_err(crypto)?;
            let signature =
                id.signing.sign_digest(&worker_key_digest(pair.public_key().as_bytes()));
            id.io_keys.push(IoKey { epoch, pair, signature });
            id.io_keys.sort_by_key(|k| k.epoch);
            while id.io_keys.len() > IO_KEYS_KEPT {
                id.io_keys.remove(0);
            }
        }
        let key = self.io_key(epoch)?;
        Ok(RotatedKey { key, sealed_identity: self.seal_identity()? })
    }

    pub(crate) fn io_key(&self, epoch: u64) -> Result<WorkerKey, EnclaveError> {
        let k = self.io_pair(epoch)?;
        Ok(WorkerKey { epoch, public_key: *k.pair.public_key(), signature: k.signature })
    }

    pub(crate) fn request_state_keys(
        &mut self,
        epoch: u64,
        contracts: Vec<ContractAddress>,
    ) -> Result<StateKeyRequest, EnclaveError> {
        cap("the contracts of a key request", contracts.len(), limits::MAX_CONTRACTS_PER_REQUEST)?;
        let signing = &self.identity()?.signing;
        let ephemeral = KeyPair::generate().map_err(crypto)?;
        let mut id = [0u8; 12];
        enigma_crypto::random_bytes(&mut id).map_err(crypto)?;
        let request = Encoder::new()
            .bytes(REQUEST_MAGIC)
            .bytes(ephemeral.public_key().as_bytes())
            .bytes(&id)
            .u64(epoch)
            .list(&contracts, |e, c| e.bytes(c.as_bytes()))
            .into_bytes();
        let signature = signing.sign_digest(&bytes_digest(&request));
        self.pending.push_back(PendingRequest { id, epoch, contracts, ephemeral });
        while self.pending.len() > PENDING_REQUESTS {
            self.pending.pop_front();
        }
        Ok(StateKeyRequest { request, signature })
    }

    pub(crate) fn accept_state_keys(
        &mut self,
        r: StateKeyResponse,
    ) -> Result<Vec<ContractAddress>, EnclaveError> {
        self.identity()?;
        let reject = |why: String| EnclaveError::KeyResponseRejected(why);
        let signer = r
            .signature
            .recover_address(&bytes_digest(&r.response))
            .map_err(|e| reject(e.to_string()))?;
        if signer != self.principal {
            return Err(reject(format!(
                "it is signed by {signer}, not by the key manager {}",
                self.principal
            )));
        }
        let mut d = Decoder::new(&r.response);
        let malformed = |e: enigma_types::DecodeError| {
            EnclaveError::KeyResponseRejected(format!("malformed: {e}"))
        };
        if d.bytes().map_err(malformed)? != RESPONSE_MAGIC {
            return Err(reject("it is not a state-key response".into()));
        }
        let id: [u8; 12] = d.fixed().map_err(malformed)?;
        let km_public = PublicKey::from_bytes(&d.fixed::<64>().map_err(malformed)?)
            .map_err(|e| reject(e.to_string()))?;
        let epoch = d.u64().map_err(malformed)?;
        let max = limits::MAX_CONTRACTS_PER_REQUEST as u64;
        let contracts: Vec<ContractAddress> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.fixed::<32>().map(ContractAddress))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        let keys: Vec<&[u8]> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.bytes())
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        d.finish().map_err(malformed)?;
        let at = self
            .pending
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| reject("it answers no pending request".into()))?;
        let pending = &self.pending[at];
        if pending.epoch != epoch || pending.contracts != contracts || keys.len() != contracts.len()
        {
            return Err(reject(
                "it does not answer the request it names (epoch or contracts differ)".into(),
            ));
        }
        let shared = pending.ephemeral.derive_key(&km_public);
        let mut unwrapped = Vec::with_capacity(keys.len());
        for key in &keys {
            let plain = Zeroizing::new(
                shared.decrypt(key).map_err(|_| reject("a key does not decrypt".into()))?,
            );
            let bytes: [u8; 32] =
                plain.as_slice().try_into().map_err(|_| reject("a key is not 32 bytes".into()))?;
            unwrapped.push(SymmetricKey::from_bytes(bytes));
        }
        self.pending.remove(at);
        for (contract, key) in contracts.iter().zip(unwrapped) {
            self.state_keys.insert(*contract, key);
        }
        Ok(contracts)
    }

    fn cache_state(&mut self, contract: ContractAddress, state: ContractState) {
        self.state_clock += 1;
        if !self.states.contains_key(&contract) && self.states.len() >= CACHED_STATES {
            let oldest = self.states.iter().min_by_key(|(_, (_, used))| *used).map(|(c, _)| *c);
            if let Some(oldest) = oldest {
                self.states.remove(&oldest);
            }
        }
        self.states.insert(contract, (state, self.state_clock));
    }

    /// Makes the cached state of `contract` stand at `want`, loading `given` if needed.
    fn ensure_state(
        &mut self,
        contract: ContractAddress,
        want: ChainPosition,
        given: Option<EncryptedState>,
    ) -> Result<(), EnclaveError> {
        let have = self.states.get(&contract).map(|(s, _)| position(s));
        if have == Some(want) {
            return Ok(());
        }
        let given = given.ok_or(EnclaveError::StateNotLoaded { contract, have, want })?;
        cap("the deltas of one call", given.deltas.len(), limits::MAX_DELTAS_PER_CALL)?;
        let key = self.state_keys.get(&contract).ok_or(EnclaveError::NoStateKey { contract })?;
        let bad = |why: String| EnclaveError::BadState(why);
        let mut state = match &given.snapshot {
            Some(blob) => {
                let plain = Zeroizing::new(key.decrypt(blob).map_err(|_| {
                    bad("the snapshot does not decrypt under the contract's key".into())
                })?);
                ContractState::decode_snapshot(&plain).map_err(|e| bad(e.to_string()))?
            }
            None => match (self.states.get(&contract), given.deltas.first()) {
                (Some((cached, _)), Some(first)) if cached.next_index() == first.index => {
                    cached.clone()
                }
                _ => ContractState::new(),
            },
        };
        for d in &given.deltas {
            if d.index != state.next_index() {
                return Err(bad(format!(
                    "delta {} was given where delta {} is needed",
                    d.index,
                    state.next_index()
                )));
            }
            let plain = Zeroizing::new(key.decrypt(&d.bytes).map_err(|_| {
                bad(format!("delta {} does not decrypt under the contract's key", d.index))
            })?);
            let delta =
                Delta::decode(&plain).map_err(|e| bad(format!("delta {}: {e}", d.index)))?;
            state
                .apply(&delta, delta_hash(&d.bytes))
                .map_err(|e| bad(format!("delta {}: {e}", d.index)))?;
        }
        if position(&state) != want {
            return Err(bad(format!(
                "after loading, the state stands at delta {} with tip {}, but the chain has {} with tip {}",
                state.next_index(),
                state.tip(),
                want.next_index,
                want.tip
            )));
        }
        self.cache_state(contract, state);
        Ok(())
    }

    fn check_inputs(encrypted_fn: &[u8], encrypted_args: &[u8]) -> Result<(), EnclaveError> {
        cap("the encrypted callable", encrypted_fn.len(), limits::MAX_INPUT_BYTES)?;
        cap("the encrypted arguments", encrypted_args.len(), limits::MAX_INPUT_BYTES)
    }

    /// The key shared with the user: normally with this epoch's IO key, but a client that
    /// fetched the key just before an epoch turned may have used the previous one, so the other
    /// kept IO keys are tried when the epoch's does not open the callable.
    fn user_key(
        &self,
        epoch: u64,
        user: &PublicKey,
        encrypted_fn: &[u8],
    ) -> Result<SymmetricKey, EnclaveError> {
        let id = self.identity()?;
        let primary = id.io_keys.iter().find(|k| k.epoch == epoch);
        if let Some(k) = primary {
            let key = k.pair.derive_key(user);
            if key.decrypt(encrypted_fn).is_ok() {
                return Ok(key);
            }
        }
        for k in id.io_keys.iter().rev().filter(|k| k.epoch != epoch) {
            let key = k.pair.derive_key(user);
            if key.decrypt(encrypted_fn).is_ok() {
                return Ok(key);
            }
        }
        primary.map(|k| k.pair.derive_key(user)).ok_or(EnclaveError::NoIoKey { epoch })
    }

    /// Decrypts the callable and arguments with the key shared with the user.
    fn decrypt_inputs(
        user_key: &SymmetricKey,
        encrypted_fn: &[u8],
        encrypted_args: &[u8],
        epoch: u64,
    ) -> Result<(String, Zeroizing<Vec<u8>>), String> {
        let wrong_key = || {
            format!(
                "the task's inputs do not decrypt with this worker's encryption key for epoch {epoch}; \
                 encrypt them to the selected worker's current key (getWorkerEncryptionKey)"
            )
        };
        let function = Zeroizing::new(user_key.decrypt(encrypted_fn).map_err(|_| wrong_key())?);
        let args = Zeroizing::new(if encrypted_args.is_empty() {
            Vec::new()
        } else {
            user_key.decrypt(encrypted_args).map_err(|_| wrong_key())?
        });
        let function = String::from_utf8(function.to_vec())
            .map_err(|_| "the callable is not UTF-8 text".to_string())?;
        Ok((function, args))
    }

    #[allow(clippy::too_many_arguments)]
    fn failure(
        &self,
        task_id: enigma_types::TaskId,
        contract: ContractAddress,
        user_key: &SymmetricKey,
        inputs_hash: enigma_types::InputsHash,
        code_hash: CodeHash,
        prev_delta_hash: DeltaHash,
        gas_limit: u64,
        gas_used: u64,
        message: &str,
    ) -> Result<TaskResult, EnclaveError> {
        let encrypted_output = user_key.encrypt(message.as_bytes()).map_err(crypto)?;
        let out_hash = output_hash(&encrypted_output);
        let receipt =
            FailureReceipt { inputs_hash, code_hash, output_hash: out_hash, gas_limit, gas_used };
        Ok(TaskResult {
            task_id,
            contract,
            status: TaskStatus::Failure,
            inputs_hash,
            code_hash,
            encrypted_output,
            output_hash: out_hash,
            prev_delta_hash,
            delta: None,
            delta_hash: DeltaHash::ZERO,
            gas_limit,
            gas_used,
            eth_call: None,
            signature: self.identity()?.signing.sign_digest(&receipt.digest()),
            snapshot: None,
            logs: Vec::new(),
        })
    }

    pub(crate) fn deploy(&mut self, t: DeployTask) -> Result<TaskResult, EnclaveError> {
        cap("the code", t.code.len(), limits::MAX_CODE_BYTES)?;
        Self::check_inputs(&t.encrypted_fn, &t.encrypted_args)?;
        let contract = ContractAddress::from(t.task_id);
        let user_key = self.user_key(t.epoch, &t.user_public_key, &t.encrypted_fn)?;
        let key = self.state_keys.get(&contract).ok_or(EnclaveError::NoStateKey { contract })?;
        let hash = code_hash(&t.code);
        let inputs_hash = inputs_hash_deploy(
            &t.encrypted_fn,
            &t.encrypted_args,
            &hash,
            t.user_public_key.as_bytes(),
        );
        let base = enigma_runtime::gas::TASK_BASE.min(t.gas_limit);

        let (function, args) =
            match Self::decrypt_inputs(&user_key, &t.encrypted_fn, &t.encrypted_args, t.epoch) {
                Ok(inputs) => inputs,
                Err(message) => {
                    return self.failure(
                        t.task_id,
                        contract,
                        &user_key,
                        inputs_hash,
                        CodeHash::ZERO,
                        DeltaHash::ZERO,
                        t.gas_limit,
                        base,
                        &message,
                    );
                }
            };
        let code = ContractCode::with_hash(hash, &t.code);
        let outcome = self.runtime.execute(
            &code,
            Task::deploy(&function, &args, enigma_types::GasLimit(t.gas_limit)),
            &ContractState::new(),
            &mut EnclaveRng,
        );
        let success = match outcome.result {
            Ok(success) => success,
            Err(error) => {
                let message = error.to_string();
                return self.failure(
                    t.task_id,
                    contract,
                    &user_key,
                    inputs_hash,
                    CodeHash::ZERO,
                    DeltaHash::ZERO,
                    t.gas_limit,
                    outcome.gas_used.0,
                    &message,
                );
            }
        };
        let plain_delta = Zeroizing::new(success.delta.encode());
        let encrypted_delta = key.encrypt(&plain_delta).map_err(crypto)?;
        let init_delta_hash = delta_hash(&encrypted_delta);
        let mut state = ContractState::new();
        state
            .apply(&success.delta, init_delta_hash)
            .map_err(|e| EnclaveError::BadState(e.to_string()))?;
        let encrypted_output = user_key.encrypt(&success.output).map_err(crypto)?;
        let eth_call = success.eth_call.map(|c| EthCall { address: c.address, payload: c.payload });
        let receipt = DeployReceipt {
            inputs_hash,
            code_hash: hash,
            init_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call: eth_ref(eth_call.as_ref()),
        };
        let signature = self.identity()?.signing.sign_digest(&receipt.digest());
        let snapshot = Some(key.encrypt(&Zeroizing::new(state.encode_snapshot())).map_err(crypto)?);
        self.cache_state(contract, state);
        Ok(TaskResult {
            task_id: t.task_id,
            contract,
            status: TaskStatus::Success,
            inputs_hash,
            code_hash: hash,
            encrypted_output,
            output_hash: OutputHash(hash.0),
            prev_delta_hash: DeltaHash::ZERO,
            delta: Some(EncryptedDelta { index: 0, bytes: encrypted_delta }),
            delta_hash: init_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call,
            signature,
            snapshot,
            logs: if self.debug { success.logs } else { Vec::new() },
        })
    }

    pub(crate) fn compute(&mut self, t: ComputeTask) -> Result<TaskResult, EnclaveError> {
        Self::check_inputs(&t.encrypted_fn, &t.encrypted_args)?;
        if let Some(code) = &t.code {
            cap("the code", code.len(), limits::MAX_CODE_BYTES)?;
        }
        let contract = t.contract;
        if !self.state_keys.contains_key(&contract) {
            return Err(EnclaveError::NoStateKey { contract });
        }
        let user_key = self.user_key(t.epoch, &t.user_public_key, &t.encrypted_fn)?;
        let inputs_hash = inputs_hash_compute(
            &t.encrypted_fn,
            &t.encrypted_args,
            &contract,
            t.user_public_key.as_bytes(),
        );
        let prev = t.position.tip;
        let base = enigma_runtime::gas::TASK_BASE.min(t.gas_limit);

        if !self.runtime.is_cached(&t.code_hash) {
            let code =
                t.code.as_deref().ok_or(EnclaveError::CodeNotLoaded { code_hash: t.code_hash })?;
            let got = code_hash(code);
            if got != t.code_hash {
                return Err(EnclaveError::CodeHashMismatch { expected: t.code_hash, got });
            }
            if let Err(e) = self.runtime.prepare(&ContractCode::with_hash(got, code)) {
                let message = ExecError::Module(e).to_string();
                return self.failure(
                    t.task_id,
                    contract,
                    &user_key,
                    inputs_hash,
                    t.code_hash,
                    prev,
                    t.gas_limit,
                    base,
                    &message,
                );
            }
        }
        self.ensure_state(contract, t.position, t.state)?;

        let (function, args) =
            match Self::decrypt_inputs(&user_key, &t.encrypted_fn, &t.encrypted_args, t.epoch) {
                Ok(inputs) => inputs,
                Err(message) => {
                    return self.failure(
                        t.task_id,
                        contract,
                        &user_key,
                        inputs_hash,
                        t.code_hash,
                        prev,
                        t.gas_limit,
                        base,
                        &message,
                    );
                }
            };
        let (state, _) = self.states.get(&contract).ok_or(EnclaveError::StateNotLoaded {
            contract,
            have: None,
            want: t.position,
        })?;
        let task = Task::call(&function, &args, enigma_types::GasLimit(t.gas_limit)).after(state);
        let outcome = self.runtime.execute(
            &ContractCode::with_hash(t.code_hash, &[]),
            task,
            state,
            &mut EnclaveRng,
        );
        let success = match outcome.result {
            Ok(success) => success,
            Err(error) => {
                let message = error.to_string();
                return self.failure(
                    t.task_id,
                    contract,
                    &user_key,
                    inputs_hash,
                    t.code_hash,
                    prev,
                    t.gas_limit,
                    outcome.gas_used.0,
                    &message,
                );
            }
        };

        let key = self.state_keys.get(&contract).ok_or(EnclaveError::NoStateKey { contract })?;
        let (delta, new_delta_hash) = if success.delta.is_empty() {
            (None, DeltaHash::ZERO)
        } else {
            let encrypted = key.encrypt(&Zeroizing::new(success.delta.encode())).map_err(crypto)?;
            let hash = delta_hash(&encrypted);
            (Some(EncryptedDelta { index: success.delta.index, bytes: encrypted }), hash)
        };
        let encrypted_output = user_key.encrypt(&success.output).map_err(crypto)?;
        let out_hash = output_hash(&encrypted_output);
        let eth_call = success.eth_call.map(|c| EthCall { address: c.address, payload: c.payload });
        let receipt = ComputeReceipt {
            code_hash: t.code_hash,
            inputs_hash,
            prev_delta_hash: prev,
            delta_hash: new_delta_hash,
            output_hash: out_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call: eth_ref(eth_call.as_ref()),
        };
        let signature = self.identity()?.signing.sign_digest(&receipt.digest());
        let mut snapshot = None;
        if let Some((state, _)) = self.states.get_mut(&contract) {
            if delta.is_some() {
                state
                    .apply(&success.delta, new_delta_hash)
                    .map_err(|e| EnclaveError::BadState(e.to_string()))?;
            }
            if t.want_snapshot {
                snapshot =
                    Some(key.encrypt(&Zeroizing::new(state.encode_snapshot())).map_err(crypto)?);
            }
        }
        Ok(TaskResult {
            task_id: t.task_id,
            contract,
            status: TaskStatus::Success,
            inputs_hash,
            code_hash: t.code_hash,
            encrypted_output,
            output_hash: out_hash,
            prev_delta_hash: prev,
            delta,
            delta_hash: new_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call,
            signature,
            snapshot,
            logs: if self.debug { success.logs } else { Vec::new() },
        })
    }

    pub(crate) fn sign_batch(&self, b: BatchRequest) -> Result<Signature, EnclaveError> {
        cap("the batch", b.items.len(), limits::MAX_BATCH)?;
        if b.items.is_empty() {
            return Err(EnclaveError::BadBatch("it is empty".into()));
        }
        let signing = &self.identity()?.signing;
        let me = signing.address();
        let mut prev = b.prev_delta_hash;
        let mut entries = Vec::with_capacity(b.items.len());
        for (i, item) in b.items.iter().enumerate() {
            let digest = match item.status {
                TaskStatus::Success => ComputeReceipt {
                    code_hash: b.code_hash,
                    inputs_hash: item.inputs_hash,
                    prev_delta_hash: prev,
                    delta_hash: item.delta_hash,
                    output_hash: item.output_hash,
                    gas_limit: item.gas_limit,
                    gas_used: item.gas_used,
                    eth_call: EthCallRef::default(),
                }
                .digest(),
                TaskStatus::Failure => {
                    if !item.delta_hash.is_zero() {
                        return Err(EnclaveError::BadBatch(format!(
                            "item {i} is a failure with a delta"
                        )));
                    }
                    FailureReceipt {
                        inputs_hash: item.inputs_hash,
                        code_hash: b.code_hash,
                        output_hash: item.output_hash,
                        gas_limit: item.gas_limit,
                        gas_used: item.gas_used,
                    }
                    .digest()
                }
            };
            if item.signature.recover_address(&digest).ok() != Some(me) {
                return Err(EnclaveError::BadBatch(format!(
                    "item {i} is not a result this enclave signed in this order (a task with an Ethereum call is committed alone)"
                )));
            }
            if item.status == TaskStatus::Success && !item.delta_hash.is_zero() {
                prev = item.delta_hash;
            }
            entries.push(BatchEntry {
                inputs_hash: item.inputs_hash,
                delta_hash: item.delta_hash,
                output_hash: item.output_hash,
                gas_limit: item.gas_limit,
                gas_used: item.gas_used,
                status: if item.status == TaskStatus::Success {
                    STATUS_SUCCESS
                } else {
                    STATUS_FAILURE
                },
            });
        }
        Ok(signing.sign_digest(&batch_digest(&b.code_hash, &b.prev_delta_hash, &entries)))
    }
}

fn eth_ref(call: Option<&EthCall>) -> EthCallRef<'_> {
    call.map_or_else(EthCallRef::default, |c| EthCallRef {
        payload: &c.payload,
        address: c.address,
    })
}
