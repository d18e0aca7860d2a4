//! The worker enclave: identity and IO keys, state keys, deploy and compute, batch signing.
//!
//! What it decides for itself, whatever its host says: which key manager it serves (the one
//! whose attestation it verified at its first start, sealed into its identity); which code runs
//! on a contract's state (state keys are per contract *and* code hash, and the code hash is the
//! one it computes over the module it runs); what a task's randomness is (a function of a
//! secret of the contract and the task id, so re-running a task draws the same values).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use enigma_attestation::{WORKER_PRODUCT_ID, verify};
use enigma_crypto::{KeyPair, PublicKey, Signature, SymmetricKey};
use enigma_runtime::{ContractCode, ContractState, ExecError, Limits, Randomness, Runtime, Task};
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, OutputHash, SignerAddress, TaskId, code_hash,
    delta::{Delta, MAX_ENCRYPTED_DELTA_BYTES},
    delta_hash,
    enc::{Decoder, Encoder},
    inputs_hash_compute, inputs_hash_deploy,
    messages::{
        BatchEntry, ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt, QueryAnswerFields,
        ReportData, ResultFields, STATUS_FAILURE, STATUS_SUCCESS, TaskField, batch_digest,
        bytes_digest, query_answer_digest, query_hash, result_digest, task_field_ad,
        worker_key_digest,
    },
    output_hash,
    padding::{Padding, pad, unpad},
};
use zeroize::Zeroizing;

use crate::{
    api::*,
    boundary::{EnclaveError, limits},
    build::EnclaveBuild,
    seal::{NodeSecret, Sealer},
};

const IDENTITY: &str = "worker-identity-v2";
pub(crate) const REQUEST_MAGIC: &[u8] = b"enigma-state-key-request-v2";
pub(crate) const RESPONSE_MAGIC: &[u8] = b"enigma-state-key-response-v2";
/// HKDF salt of a task's randomness key, derived from the contract's state key.
const TASK_RAND_SALT: &[u8] = b"enigma-task-rand-v1";
/// IO keys kept: the current epoch's and the two before (tasks of an epoch may still run after it).
const IO_KEYS_KEPT: usize = 3;
/// State-key requests awaiting an answer.
const PENDING_REQUESTS: usize = 16;
/// Contracts whose decrypted state stays cached.
const CACHED_STATES: usize = 256;

/// A task's randomness: `H(enc("enigma-task-rand-v1", key, u64 block))` in 32-byte blocks,
/// where `key = HKDF(stateKey, "enigma-task-rand-v1", taskId ‖ inputsHash ‖ prevDeltaHash)`.
/// Only the enclave holds the state key; the task id and inputs hash are fixed by the task's
/// record (a receipt under another id or with other inputs is not committable), and the previous
/// delta hash by the contract's chain. So a host that runs a task again (to fish for a better
/// coin flip or card) gets the same draws, and one that runs its own inputs under the task's id
/// (to read the draw in advance) gets other draws. IVs for the contract's `encrypt` come from
/// the enclave's RNG: an IV must never repeat.
struct TaskRng {
    key: SymmetricKey,
    block: u64,
    buffer: Zeroizing<[u8; 32]>,
    used: usize,
}

impl TaskRng {
    fn new(
        state_key: &SymmetricKey,
        task: &TaskId,
        inputs: &enigma_types::InputsHash,
        prev_delta: &DeltaHash,
    ) -> Self {
        let mut info = [0u8; 96];
        info[..32].copy_from_slice(task.as_bytes());
        info[32..64].copy_from_slice(inputs.as_bytes());
        info[64..].copy_from_slice(prev_delta.as_bytes());
        Self {
            key: SymmetricKey::derive_hkdf(state_key.expose_secret(), TASK_RAND_SALT, &info),
            block: 0,
            buffer: Zeroizing::new([0; 32]),
            used: 32,
        }
    }
}

impl Randomness for TaskRng {
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            if self.used == 32 {
                *self.buffer = Encoder::hashing()
                    .bytes(TASK_RAND_SALT)
                    .bytes(self.key.expose_secret())
                    .u64(self.block)
                    .digest();
                self.block += 1;
                self.used = 0;
            }
            *byte = self.buffer[self.used];
            self.used += 1;
        }
    }

    fn fill_iv(&mut self, buf: &mut [u8]) {
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

/// Cheap to clone (its keys are shared, never copied): a call takes its own handle and holds no
/// lock while it runs.
#[derive(Clone)]
struct Identity {
    signing: Arc<KeyPair>,
    io_keys: Vec<Arc<IoKey>>,
    /// The key manager it serves: verified from its evidence when the identity was created.
    principal: Address,
    /// The account that operates it.
    operator: Address,
}

struct PendingRequest {
    id: [u8; 12],
    epoch: u64,
    contracts: Vec<ContractKeyId>,
    ephemeral: KeyPair,
}

/// The worker enclave. Calls may come on several host threads at once (an SGX enclave has
/// several thread control structures), and the state is split so that none waits on a contract
/// run but another run: signing (announcements, batches, keys) takes the identity for an instant,
/// state-key requests their own lock, and only deploy and compute hold the runtime.
pub(crate) struct WorkerState {
    sealer: Sealer,
    mr_enclave: [u8; 32],
    debug: bool,
    build: EnclaveBuild,
    identity: RwLock<Option<Identity>>,
    /// The latest time the host has told it: time never runs backwards for the enclave.
    clock: AtomicU64,
    keys: Mutex<StateKeys>,
    /// Task runtimes (deploy, compute, loading a contract's state in parts): a contract's runs
    /// always go to the same one ([`Self::task_runtime`]), so tasks of contracts on different
    /// runtimes run at once, while the host runs a contract's own tasks one at a time, in the
    /// chain's order. As many as the enclave has threads for, 2 to [`TASK_RUNTIMES`]: `exec`
    /// and `more_execs`.
    exec: Mutex<Exec>,
    more_execs: Vec<Mutex<Exec>>,
    /// Read-only queries run here, with their own runtimes and copies of the states: they never
    /// wait behind a deploy or compute (nor change what tasks see), and as many run at once as
    /// there are runtimes (one per core, at most [`QUERY_RUNTIMES`]).
    queries: Vec<Mutex<Exec>>,
    /// Which query runtime a query waits for when all are busy (in turn).
    next_query: std::sync::atomic::AtomicUsize,
    /// Queries asked per caller in the current second (`QUERIES_PER_CALLER_PER_SECOND`).
    asked: Mutex<Asked>,
    /// Keys agreed with users and permit signers recovered, kept so that a client reusing its
    /// query key or permit costs no curve arithmetic here.
    agreed: Mutex<Agreed>,
}

/// Keys agreed with users' keys (by this enclave's IO key and the user's key), and the signers
/// of permits (by the permit's digest and signature) — only ones that checked out: a key that
/// opened its callable, a signature that recovered. At most [`AGREED_KEPT`] of each; past it
/// they are forgotten and agreed again, so a flood of made-up keys costs what it costs anyway.
#[derive(Default)]
struct Agreed {
    keys: HashMap<([u8; 64], [u8; 64]), Arc<SymmetricKey>>,
    signers: HashMap<[u8; 32], Address>,
}

/// User keys and permit signers an enclave keeps.
const AGREED_KEPT: usize = 4096;

impl Agreed {
    fn key(&mut self, slot: ([u8; 64], [u8; 64]), key: &Arc<SymmetricKey>) {
        if self.keys.len() >= AGREED_KEPT {
            self.keys.clear();
        }
        self.keys.insert(slot, key.clone());
    }

    fn signer(&mut self, seen: [u8; 32], signer: Address) {
        if self.signers.len() >= AGREED_KEPT {
            self.signers.clear();
        }
        self.signers.insert(seen, signer);
    }
}

/// Whom a permit's queries are counted against: the permit of its signer. Two users' permits of
/// the same name, contracts and expiry have the same digest, and neither may use up the other's
/// rate.
fn permit_rate_id(digest: &[u8; 32], signer: &Address) -> [u8; 32] {
    enigma_types::keccak256([&digest[..], &signer.0].concat())
}

/// What identifies a query for the caller rate: its caller (as counted) and its hash, which
/// binds its id, inputs and key. Not the id alone: the client chooses it, and could send any
/// number of different queries under one.
fn asked_id(caller: &[u8; 32], query: &[u8; 32]) -> [u8; 32] {
    enigma_types::keccak256([&caller[..], &query[..]].concat())
}

/// The queries each caller asked in one second of the enclave's clock.
#[derive(Default)]
struct Asked {
    second: u64,
    by: HashMap<[u8; 32], u32>,
    /// The queries counted this second ([`asked_id`]: its caller and hash): a query sent again
    /// (a replay, or the host's retry after loading code or state) is not counted again, while a
    /// new query under an id used before is.
    seen: HashSet<[u8; 32]>,
}

/// The most callers (and query ids) counted in one second; past it, new callers wait for the
/// next second, and further query ids are counted without being remembered.
const MAX_COUNTED_CALLERS: usize = 65_536;

impl Asked {
    /// Counts query `id` of `caller` at `second`: false if it is one too many.
    fn count(&mut self, caller: [u8; 32], id: [u8; 32], second: u64, per_second: u32) -> bool {
        if per_second == 0 {
            return true;
        }
        if second != self.second {
            self.second = second;
            self.by.clear();
            self.seen.clear();
        }
        if self.seen.contains(&id) {
            return self.by.get(&caller).is_none_or(|n| *n <= per_second);
        }
        if self.by.len() >= MAX_COUNTED_CALLERS && !self.by.contains_key(&caller) {
            return false;
        }
        if self.seen.len() < MAX_COUNTED_CALLERS {
            self.seen.insert(id);
        }
        let asked = self.by.entry(caller).or_insert(0);
        *asked = asked.saturating_add(1);
        *asked <= per_second
    }
}

/// The most query runtimes a worker enclave keeps (each caches modules and states).
const QUERY_RUNTIMES: usize = 4;

/// The most task runtimes a worker enclave keeps (each caches modules and states).
const TASK_RUNTIMES: usize = 4;

/// Contract state keys, and the requests for them awaiting the key manager's answer.
#[derive(Default)]
struct StateKeys {
    keys: HashMap<ContractKeyId, Arc<SymmetricKey>>,
    pending: VecDeque<PendingRequest>,
}

/// What a contract run needs to itself: the runtime and the decrypted states.
struct Exec {
    runtime: Runtime,
    states: HashMap<ContractKeyId, (ContractState, u64)>,
    state_clock: u64,
}

/// A lock whose holder panicked stays usable: every update under these locks is a single insert
/// or removal, so a panic leaves nothing half written (and the panic became an error response).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("signer", &self.identity().ok().map(|i| i.signing.address()))
            .field("state_keys", &lock(&self.keys).keys.len())
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
    pub(crate) fn new(secret: &NodeSecret, debug: bool, build: EnclaveBuild) -> Self {
        let task_exec = || Exec {
            runtime: Runtime::new(Limits { debug_logs: debug, ..Limits::default() }),
            states: HashMap::new(),
            state_clock: 0,
        };
        let mr_enclave = build.measurement(Role::Worker);
        Self {
            sealer: Sealer::new(secret, mr_enclave, debug),
            mr_enclave,
            debug,
            build,
            identity: RwLock::new(None),
            clock: AtomicU64::new(0),
            keys: Mutex::new(StateKeys::default()),
            exec: Mutex::new(task_exec()),
            more_execs: (1..std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get)
                .clamp(2, TASK_RUNTIMES))
                .map(|_| Mutex::new(task_exec()))
                .collect(),
            queries: (0..std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .clamp(1, QUERY_RUNTIMES))
                .map(|_| {
                    Mutex::new(Exec {
                        runtime: Runtime::new(Limits::default()),
                        states: HashMap::new(),
                        state_clock: 0,
                    })
                })
                .collect(),
            next_query: std::sync::atomic::AtomicUsize::new(0),
            asked: Mutex::new(Asked::default()),
            agreed: Mutex::new(Agreed::default()),
        }
    }

    /// A handle on the identity, taken without holding any lock afterwards.
    fn identity(&self) -> Result<Identity, EnclaveError> {
        self.identity
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(EnclaveError::NotInitialized)
    }

    fn tick(&self, time: u64) -> u64 {
        self.clock.fetch_max(time, Ordering::SeqCst).max(time)
    }

    fn padding(&self) -> Padding {
        self.build.padding
    }

    fn report_of(&self, id: &Identity, time: u64) -> EnclaveReport {
        let signer = SignerAddress::from(id.signing.address());
        EnclaveReport {
            role: Role::Worker,
            signer,
            mr_enclave: self.mr_enclave,
            isv_prod_id: WORKER_PRODUCT_ID,
            debug: self.debug,
            report_data: ReportData::new(signer, &id.operator, &id.principal, time).to_bytes(),
        }
    }

    pub(crate) fn report(&self, time: u64) -> Result<EnclaveReport, EnclaveError> {
        let time = self.tick(time);
        Ok(self.report_of(&self.identity()?, time))
    }

    fn seal_identity(&self, id: &Identity) -> Result<Vec<u8>, EnclaveError> {
        let secret = id.signing.secret_bytes();
        let io: Vec<(u64, Zeroizing<[u8; 32]>)> =
            id.io_keys.iter().map(|k| (k.epoch, k.pair.secret_bytes())).collect();
        let payload = Zeroizing::new(
            Encoder::new()
                .bytes(secret.as_ref())
                .bytes(id.principal.as_bytes())
                .bytes(id.operator.as_bytes())
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
        let principal = Address(d.fixed::<20>().map_err(bad)?);
        let operator = Address(d.fixed::<20>().map_err(bad)?);
        let n = d.list_len(IO_KEYS_KEPT as u64).map_err(bad)?;
        let mut io_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let epoch = d.u64().map_err(bad)?;
            let pair = KeyPair::from_bytes(&Zeroizing::new(d.fixed::<32>().map_err(bad)?))
                .map_err(crypto)?;
            let signature = signing.sign_digest(&worker_key_digest(pair.public_key().as_bytes()));
            io_keys.push(Arc::new(IoKey { epoch, pair, signature }));
        }
        d.finish().map_err(bad)?;
        Ok(Identity { signing: Arc::new(signing), io_keys, principal, operator })
    }

    /// Verifies the key manager's evidence against this build's policy; returns its signer.
    fn verify_principal(
        &self,
        evidence: &CarriedEvidence,
        at: u64,
    ) -> Result<Address, EnclaveError> {
        let refuse = |why: String| EnclaveError::InitRefused(why);
        let evidence = evidence
            .parse()
            .map_err(|e| refuse(format!("the key manager's evidence is rejected: {e}")))?;
        let verdict = verify(&evidence, &self.build.peer_policy(Role::KeyManager), at)
            .map_err(|e| refuse(format!("the key manager's attestation is not accepted: {e}")))?;
        ReportData::parse(&verdict.report_data).map_err(|e| {
            refuse(format!("the key manager's attestation is not an enigma enclave's: {e}"))
        })?;
        Ok(Address::from(verdict.signer))
    }

    pub(crate) fn init(&self, init: WorkerInit) -> Result<Initialized, EnclaveError> {
        // Held throughout: two inits at once must not both succeed.
        let mut slot = self.identity.write().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Err(EnclaveError::AlreadyInitialized);
        }
        let time = self.tick(init.time);
        let (identity, fresh) = match &init.sealed_identity {
            Some(blob) => {
                let id = self.unseal_identity(blob)?;
                // The sealed principal was verified when the identity was created. Evidence given
                // now only catches a restart against another network: a key manager it verifies
                // must be the sealed one; evidence that no longer verifies (aged past the policy)
                // does not stop a restart.
                let attested = match &init.principal_evidence {
                    Some(e) => self.verify_principal(e, time).ok(),
                    None => None,
                };
                if id.operator != init.operator {
                    return Err(EnclaveError::InitRefused(format!(
                        "this identity is bound to operator {}, not {}; start with a fresh identity to serve another operator",
                        id.operator, init.operator
                    )));
                }
                if let Some(p) = attested
                    && p != id.principal
                {
                    return Err(EnclaveError::InitRefused(format!(
                        "this identity serves the key manager {}; the evidence given is of {p}",
                        id.principal
                    )));
                }
                (id, false)
            }
            None => {
                let evidence = init.principal_evidence.as_ref().ok_or_else(|| {
                    EnclaveError::InitRefused(
                        "a new identity needs the key manager's attestation evidence".into(),
                    )
                })?;
                let principal = self.verify_principal(evidence, time)?;
                let identity = Identity {
                    signing: Arc::new(KeyPair::generate().map_err(crypto)?),
                    io_keys: Vec::new(),
                    principal,
                    operator: init.operator,
                };
                (identity, true)
            }
        };
        let report = self.report_of(&identity, time);
        let sealed = match init.sealed_identity {
            Some(blob) if !fresh => blob,
            _ => self.seal_identity(&identity)?,
        };
        *slot = Some(identity);
        Ok(Initialized { report, sealed })
    }

    fn io_pair(id: &Identity, epoch: u64) -> Result<&IoKey, EnclaveError> {
        id.io_keys
            .iter()
            .find(|k| k.epoch == epoch)
            .map(|k| &**k)
            .ok_or(EnclaveError::NoIoKey { epoch })
    }

    pub(crate) fn rotate_io_key(&self, epoch: u64) -> Result<RotatedKey, EnclaveError> {
        let mut slot = self.identity.write().unwrap_or_else(PoisonError::into_inner);
        let id = slot.as_mut().ok_or(EnclaveError::NotInitialized)?;
        if !id.io_keys.iter().any(|k| k.epoch == epoch) {
            let pair = KeyPair::generate().map_err(crypto)?;
            let signature =
                id.signing.sign_digest(&worker_key_digest(pair.public_key().as_bytes()));
            id.io_keys.push(Arc::new(IoKey { epoch, pair, signature }));
            id.io_keys.sort_by_key(|k| k.epoch);
            while id.io_keys.len() > IO_KEYS_KEPT {
                id.io_keys.remove(0);
            }
        }
        let id = id.clone();
        drop(slot);
        Ok(RotatedKey {
            key: Self::worker_key(&id, epoch)?,
            sealed_identity: self.seal_identity(&id)?,
        })
    }

    fn worker_key(id: &Identity, epoch: u64) -> Result<WorkerKey, EnclaveError> {
        let k = Self::io_pair(id, epoch)?;
        Ok(WorkerKey { epoch, public_key: *k.pair.public_key(), signature: k.signature })
    }

    pub(crate) fn io_key(&self, epoch: u64) -> Result<WorkerKey, EnclaveError> {
        Self::worker_key(&self.identity()?, epoch)
    }

    pub(crate) fn sign_announcement(
        &self,
        a: AnnouncementInput,
    ) -> Result<Signature, EnclaveError> {
        cap("the announced addresses", a.addresses.len(), limits::MAX_ANNOUNCED_ADDRESSES)?;
        cap("the announced peer id", a.peer_id.len(), limits::MAX_ANNOUNCED_FIELD_BYTES)?;
        for address in &a.addresses {
            cap("an announced address", address.len(), limits::MAX_ANNOUNCED_FIELD_BYTES)?;
        }
        let id = self.identity()?;
        let key = Self::io_pair(&id, a.epoch)?;
        let digest = enigma_types::messages::announcement_digest(
            &SignerAddress::from(id.signing.address()),
            &a.peer_id,
            &a.addresses,
            a.epoch,
            key.pair.public_key().as_bytes(),
            a.issued_at,
        );
        Ok(id.signing.sign_digest(&digest))
    }

    pub(crate) fn request_state_keys(
        &self,
        epoch: u64,
        contracts: Vec<ContractKeyId>,
    ) -> Result<StateKeyRequest, EnclaveError> {
        cap("the contracts of a key request", contracts.len(), limits::MAX_CONTRACTS_PER_REQUEST)?;
        let identity = self.identity()?;
        let ephemeral = KeyPair::generate().map_err(crypto)?;
        let mut id = [0u8; 12];
        enigma_crypto::random_bytes(&mut id).map_err(crypto)?;
        let request = Encoder::new()
            .bytes(REQUEST_MAGIC)
            .bytes(ephemeral.public_key().as_bytes())
            .bytes(&id)
            .u64(epoch)
            .bytes(identity.operator.as_bytes())
            .list(&contracts, |e, c| e.bytes(c.contract.as_bytes()))
            .list(&contracts, |e, c| e.bytes(c.code_hash.as_bytes()))
            .into_bytes();
        let signature = identity.signing.sign_digest(&bytes_digest(&request));
        let mut keys = lock(&self.keys);
        keys.pending.push_back(PendingRequest { id, epoch, contracts, ephemeral });
        while keys.pending.len() > PENDING_REQUESTS {
            keys.pending.pop_front();
        }
        Ok(StateKeyRequest { request, signature })
    }

    pub(crate) fn accept_state_keys(
        &self,
        r: StateKeyResponse,
    ) -> Result<Vec<ContractKeyId>, EnclaveError> {
        let principal = self.identity()?.principal;
        let reject = |why: String| EnclaveError::KeyResponseRejected(why);
        let signer = r
            .signature
            .recover_address(&bytes_digest(&r.response))
            .map_err(|e| reject(e.to_string()))?;
        if signer != principal {
            return Err(reject(format!(
                "it is signed by {signer}, not by the key manager {principal}"
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
        let addresses: Vec<ContractAddress> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.fixed::<32>().map(ContractAddress))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        let hashes: Vec<CodeHash> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.fixed::<32>().map(CodeHash))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        if hashes.len() != addresses.len() {
            return Err(reject("its contracts and code hashes differ in number".into()));
        }
        let contracts: Vec<ContractKeyId> = addresses
            .into_iter()
            .zip(hashes)
            .map(|(contract, code_hash)| ContractKeyId { contract, code_hash })
            .collect();
        let keys: Vec<&[u8]> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.bytes())
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        d.finish().map_err(malformed)?;
        let mut held = lock(&self.keys);
        let at = held
            .pending
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| reject("it answers no pending request".into()))?;
        let pending = &held.pending[at];
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
            unwrapped.push(Arc::new(SymmetricKey::from_bytes(bytes)));
        }
        held.pending.remove(at);
        for (id, key) in contracts.iter().zip(unwrapped) {
            held.keys.insert(*id, key);
        }
        Ok(contracts)
    }

    fn state_key(&self, id: ContractKeyId) -> Result<Arc<SymmetricKey>, EnclaveError> {
        lock(&self.keys)
            .keys
            .get(&id)
            .cloned()
            .ok_or(EnclaveError::NoStateKey { contract: id.contract, code_hash: id.code_hash })
    }

    /// Encrypts a delta or snapshot under the contract's key, padded to its bucket.
    fn seal_state(&self, key: &SymmetricKey, plain: &[u8]) -> Result<Vec<u8>, EnclaveError> {
        key.encrypt(&Zeroizing::new(pad(plain, self.padding()))).map_err(crypto)
    }

    /// Encrypts a task's delta; `Ok(Err(message))` when it comes to more than
    /// [`MAX_ENCRYPTED_DELTA_BYTES`], which fails the task (no peer could sync such a delta).
    fn seal_delta(
        &self,
        key: &SymmetricKey,
        delta: &Delta,
    ) -> Result<Result<Vec<u8>, String>, EnclaveError> {
        let sealed = self.seal_state(key, &Zeroizing::new(delta.encode()))?;
        if sealed.len() > MAX_ENCRYPTED_DELTA_BYTES {
            return Ok(Err(format!(
                "the task's state changes come to {} bytes once encrypted, over the {} bytes \
                 (4 MiB) a delta may have so that other workers can sync it: write less state \
                 in one task (split the work over several tasks)",
                sealed.len(),
                MAX_ENCRYPTED_DELTA_BYTES
            )));
        }
        Ok(Ok(sealed))
    }

    /// Encrypts an output or error text to the user, padded to its bucket and bound to the
    /// task's output field.
    fn seal_output(
        &self,
        user: &SymmetricKey,
        plain: &[u8],
        contract: &ContractAddress,
        task: &TaskId,
        value: u128,
    ) -> Result<Vec<u8>, EnclaveError> {
        let ad = task_field_ad(contract, task, value, TaskField::Output);
        user.encrypt_with_ad(&Zeroizing::new(pad(plain, self.padding())), &ad).map_err(crypto)
    }

    fn cache_state(exec: &mut Exec, contract: ContractKeyId, state: ContractState) {
        exec.state_clock += 1;
        if !exec.states.contains_key(&contract) && exec.states.len() >= CACHED_STATES {
            let oldest = exec.states.iter().min_by_key(|(_, (_, used))| *used).map(|(c, _)| *c);
            if let Some(oldest) = oldest {
                exec.states.remove(&oldest);
            }
        }
        let clock = exec.state_clock;
        exec.states.insert(contract, (state, clock));
    }

    /// Makes the cached state of `contract` stand at `want`, loading `given` if needed.
    fn ensure_state(
        &self,
        exec: &mut Exec,
        key: &SymmetricKey,
        id: ContractKeyId,
        want: ChainPosition,
        given: Option<EncryptedState>,
    ) -> Result<(), EnclaveError> {
        let contract = id.contract;
        let have = exec.states.get(&id).map(|(s, _)| position(s));
        if have == Some(want) {
            return Ok(());
        }
        let given = given.ok_or(EnclaveError::StateNotLoaded { contract, have, want })?;
        let state = Self::build_state(exec, key, id, &given)?;
        if position(&state) != want {
            return Err(EnclaveError::BadState(format!(
                "after loading, the state stands at delta {} with tip {}, but the chain has {} with tip {}",
                state.next_index(),
                state.tip(),
                want.next_index,
                want.tip
            )));
        }
        Self::cache_state(exec, id, state);
        Ok(())
    }

    /// Loads part of a contract's state ahead of the call that needs it: a state too long for
    /// one call (more than [`limits::MAX_DELTAS_PER_CALL`] deltas, or 64 MiB) goes in as
    /// several, each continuing the last. Each delta is checked as in a task's load (it
    /// decrypts under the contract's key and continues the chain by index and previous hash);
    /// where the chain stands is checked by the task that runs on it. Returns where the cached
    /// state now stands.
    pub(crate) fn load_state(
        &self,
        id: ContractKeyId,
        given: EncryptedState,
    ) -> Result<ChainPosition, EnclaveError> {
        if given.snapshot.is_none() && given.deltas.is_empty() {
            return Err(EnclaveError::BadState("nothing to load: no snapshot and no delta".into()));
        }
        let key = self.state_key(id)?;
        let mut exec = self.task_runtime(&id.contract);
        let state = Self::build_state(&exec, &key, id, &given)?;
        let at = position(&state);
        Self::cache_state(&mut exec, id, state);
        Ok(at)
    }

    /// The state `given` makes: its snapshot, or the cached state when the first delta
    /// continues it, or nothing; then its deltas in order.
    fn build_state(
        exec: &Exec,
        key: &SymmetricKey,
        id: ContractKeyId,
        given: &EncryptedState,
    ) -> Result<ContractState, EnclaveError> {
        cap("the deltas of one call", given.deltas.len(), limits::MAX_DELTAS_PER_CALL)?;
        let bad = |why: String| EnclaveError::BadState(why);
        let mut state = match &given.snapshot {
            Some(blob) => {
                let plain = Zeroizing::new(key.decrypt(blob).map_err(|_| {
                    bad("the snapshot does not decrypt under the contract's key".into())
                })?);
                let plain = unpad(&plain).map_err(|e| bad(format!("the snapshot: {e}")))?;
                ContractState::decode_snapshot(plain).map_err(|e| bad(e.to_string()))?
            }
            None => match (exec.states.get(&id), given.deltas.first()) {
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
            let plain = unpad(&plain).map_err(|e| bad(format!("delta {}: {e}", d.index)))?;
            let delta = Delta::decode(plain).map_err(|e| bad(format!("delta {}: {e}", d.index)))?;
            state
                .apply(&delta, delta_hash(&d.bytes))
                .map_err(|e| bad(format!("delta {}: {e}", d.index)))?;
        }
        Ok(state)
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
        id: &Identity,
        epoch: u64,
        user: &PublicKey,
        encrypted_fn: &[u8],
        fn_ad: &[u8; 32],
    ) -> Result<Arc<SymmetricKey>, EnclaveError> {
        let primary = id.io_keys.iter().find(|k| k.epoch == epoch);
        let others = id.io_keys.iter().rev().filter(|k| k.epoch != epoch);
        for k in primary.into_iter().chain(others) {
            let slot = (*k.pair.public_key().as_bytes(), *user.as_bytes());
            let kept = lock(&self.agreed).keys.get(&slot).cloned();
            let key = kept.clone().unwrap_or_else(|| Arc::new(k.pair.derive_key(user)));
            if key.decrypt_with_ad(encrypted_fn, fn_ad).is_ok() {
                if kept.is_none() {
                    lock(&self.agreed).key(slot, &key);
                }
                return Ok(key);
            }
        }
        primary.map(|k| Arc::new(k.pair.derive_key(user))).ok_or(EnclaveError::NoIoKey { epoch })
    }

    /// The task's verified caller: `None` without a proof; the proof's sender when it is for
    /// this task (its sender and nonce give the task id, which the chain only records for that
    /// sender) and its EIP-712 signature, for this enclave's key manager, recovers to it.
    fn verify_caller(
        me: &Identity,
        proof: Option<&CallerProof>,
        task: &TaskId,
        contract: &ContractAddress,
        inputs_hash: &enigma_types::InputsHash,
        value: u128,
    ) -> Result<Option<Address>, EnclaveError> {
        let Some(proof) = proof else { return Ok(None) };
        let refuse = |e: enigma_types::caller::CallerError| EnclaveError::BadCaller(e.to_string());
        let digest =
            proof.digest_for(&me.principal, task, contract, inputs_hash, value).map_err(refuse)?;
        let signer = Signature::from_bytes(&proof.signature)
            .ok()
            .and_then(|s| s.recover_address(&digest).ok())
            .ok_or(refuse(enigma_types::caller::CallerError::BadSignature))?;
        if signer != proof.sender {
            return Err(refuse(enigma_types::caller::CallerError::BadSignature));
        }
        Ok(Some(proof.sender))
    }

    /// Decrypts the callable and arguments with the key shared with the user; each opens only
    /// as its own field of this task of this contract.
    fn decrypt_inputs(
        user_key: &SymmetricKey,
        encrypted_fn: &[u8],
        encrypted_args: &[u8],
        epoch: u64,
        contract: &ContractAddress,
        task: &TaskId,
        value: u128,
    ) -> Result<(String, Zeroizing<Vec<u8>>), String> {
        let wrong_key = || {
            format!(
                "the task's inputs do not decrypt with this worker's encryption key for epoch {epoch} \
                 as the callable and arguments of task {task} on contract {contract}; encrypt them \
                 to the selected worker's current key (getWorkerEncryptionKey), bound to this task"
            )
        };
        let fn_ad = task_field_ad(contract, task, value, TaskField::Callable);
        let args_ad = task_field_ad(contract, task, value, TaskField::Arguments);
        let function = Zeroizing::new(
            user_key.decrypt_with_ad(encrypted_fn, &fn_ad).map_err(|_| wrong_key())?,
        );
        let args = Zeroizing::new(if encrypted_args.is_empty() {
            Vec::new()
        } else {
            user_key.decrypt_with_ad(encrypted_args, &args_ad).map_err(|_| wrong_key())?
        });
        let function = String::from_utf8(function.to_vec())
            .map_err(|_| "the callable is not UTF-8 text".to_string())?;
        Ok((function, args))
    }

    #[allow(clippy::too_many_arguments)]
    fn failure(
        &self,
        me: &Identity,
        task_id: TaskId,
        contract: ContractAddress,
        user_key: &SymmetricKey,
        inputs_hash: enigma_types::InputsHash,
        code_hash: CodeHash,
        prev: ChainPosition,
        gas_limit: u64,
        gas_used: u64,
        message: &str,
        is_deploy: bool,
        value: u128,
        caller: Option<Address>,
    ) -> Result<TaskResult, EnclaveError> {
        let encrypted_output =
            self.seal_output(user_key, message.as_bytes(), &contract, &task_id, value)?;
        let out_hash = output_hash(&encrypted_output);
        let receipt = FailureReceipt {
            task_id,
            contract,
            inputs_hash,
            code_hash,
            output_hash: out_hash,
            gas_limit,
            gas_used,
            value,
        };
        let receipt = receipt.digest();
        let signature = me.signing.sign_digest(&receipt);
        let mut r = TaskResult {
            task_id,
            contract,
            status: TaskStatus::Failure,
            inputs_hash,
            code_hash,
            encrypted_output,
            output_hash: out_hash,
            prev_delta_count: prev.next_index,
            prev_delta_hash: prev.tip,
            delta: None,
            delta_hash: DeltaHash::ZERO,
            gas_limit,
            gas_used,
            eth_call: None,
            value,
            payouts: Vec::new(),
            caller: caller.unwrap_or(Address::ZERO),
            signature,
            result_signature: signature,
            snapshot: None,
            logs: Vec::new(),
        };
        r.result_signature = Self::seal_result(me, &r, &receipt, is_deploy);
        Ok(r)
    }

    /// The seal over a result: its receipt digest and every published field.
    fn seal_result(
        me: &Identity,
        r: &TaskResult,
        receipt: &[u8; 32],
        is_deploy: bool,
    ) -> Signature {
        let eth = eth_ref(r.eth_call.as_ref());
        let digest = result_digest(&ResultFields {
            receipt_digest: receipt,
            encrypted_output: &r.encrypted_output,
            output_hash: &r.output_hash,
            contract: &r.contract,
            prev_delta_count: r.prev_delta_count,
            prev_delta_hash: &r.prev_delta_hash,
            delta_hash: &r.delta_hash,
            eth_call: eth,
            value: r.value,
            payouts: &r.payouts,
            caller: r.caller,
            success: r.status == TaskStatus::Success,
            is_deploy,
        });
        me.signing.sign_digest(&digest)
    }

    pub(crate) fn deploy(&self, t: DeployTask) -> Result<TaskResult, EnclaveError> {
        cap("the code", t.code.len(), limits::MAX_CODE_BYTES)?;
        Self::check_inputs(&t.encrypted_fn, &t.encrypted_args)?;
        let contract = ContractAddress::from(t.task_id);
        let fn_ad = task_field_ad(&contract, &t.task_id, 0, TaskField::Callable);
        let me = self.identity()?;
        let user_key = self.user_key(&me, t.epoch, &t.user_public_key, &t.encrypted_fn, &fn_ad)?;
        // The code hash is computed here, over the bytes that will run: the key it selects opens
        // this contract's state only for this code.
        let hash = code_hash(&t.code);
        let id = ContractKeyId { contract, code_hash: hash };
        let key = self.state_key(id)?;
        let inputs_hash = inputs_hash_deploy(
            &t.encrypted_fn,
            &t.encrypted_args,
            &hash,
            t.user_public_key.as_bytes(),
        );
        let caller =
            Self::verify_caller(&me, t.caller.as_ref(), &t.task_id, &contract, &inputs_hash, 0)?;
        let base = enigma_runtime::gas::TASK_BASE.min(t.gas_limit);
        let fail = |gas_used: u64, message: &str| {
            self.failure(
                &me,
                t.task_id,
                contract,
                &user_key,
                inputs_hash,
                CodeHash::ZERO,
                ChainPosition::default(),
                t.gas_limit,
                gas_used,
                message,
                true,
                0,
                caller,
            )
        };

        let (function, args) = match Self::decrypt_inputs(
            &user_key,
            &t.encrypted_fn,
            &t.encrypted_args,
            t.epoch,
            &contract,
            &t.task_id,
            0,
        ) {
            Ok(inputs) => inputs,
            Err(message) => return fail(base, &message),
        };
        let code = ContractCode::with_hash(hash, &t.code);
        let mut rng = TaskRng::new(&key, &t.task_id, &inputs_hash, &DeltaHash::ZERO);
        let mut exec = self.task_runtime(&contract);
        let outcome = exec
            .runtime
            .execute_within(
                &code,
                Task::deploy(&function, &args, enigma_types::GasLimit(t.gas_limit))
                    .called_by(caller),
                &ContractState::new(),
                &mut rng,
                &mut TimeBudget::new(t.time_budget_ms),
            )
            .map_err(|stopped| out_of_time(t.time_budget_ms, &stopped))?;
        let success = match outcome.result {
            Ok(success) => success,
            Err(error) => return fail(outcome.gas_used.0, &error.to_string()),
        };
        let encrypted_delta = match self.seal_delta(&key, &success.delta)? {
            Ok(sealed) => sealed,
            Err(message) => return fail(outcome.gas_used.0, &message),
        };
        let init_delta_hash = delta_hash(&encrypted_delta);
        let mut state = ContractState::new();
        state
            .apply(&success.delta, init_delta_hash)
            .map_err(|e| EnclaveError::BadState(e.to_string()))?;
        let encrypted_output =
            self.seal_output(&user_key, &success.output, &contract, &t.task_id, 0)?;
        let eth_call = success.eth_call.map(|c| EthCall { address: c.address, payload: c.payload });
        let receipt = DeployReceipt {
            task_id: t.task_id,
            inputs_hash,
            code_hash: hash,
            init_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call: eth_ref(eth_call.as_ref()),
        };
        let receipt = receipt.digest();
        let signature = me.signing.sign_digest(&receipt);
        let snapshot = Some(self.seal_state(&key, &Zeroizing::new(state.encode_snapshot()))?);
        Self::cache_state(&mut exec, id, state);
        drop(exec);
        let mut r = TaskResult {
            task_id: t.task_id,
            contract,
            status: TaskStatus::Success,
            inputs_hash,
            code_hash: hash,
            encrypted_output,
            output_hash: OutputHash(hash.0),
            prev_delta_count: 0,
            prev_delta_hash: DeltaHash::ZERO,
            delta: Some(EncryptedDelta { index: 0, bytes: encrypted_delta }),
            delta_hash: init_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call,
            value: 0,
            payouts: Vec::new(),
            caller: caller.unwrap_or(Address::ZERO),
            signature,
            result_signature: signature,
            snapshot,
            logs: if self.debug { success.logs } else { Vec::new() },
        };
        r.result_signature = Self::seal_result(&me, &r, &receipt, true);
        Ok(r)
    }

    pub(crate) fn compute(&self, t: ComputeTask) -> Result<TaskResult, EnclaveError> {
        Self::check_inputs(&t.encrypted_fn, &t.encrypted_args)?;
        if let Some(code) = &t.code {
            cap("the code", code.len(), limits::MAX_CODE_BYTES)?;
        }
        let contract = t.contract;
        // The key of (contract, code hash): a module of the host's choosing, sent under this
        // contract's address, gets a key that opens none of its state.
        let id = ContractKeyId { contract, code_hash: t.code_hash };
        let key = self.state_key(id)?;
        let me = self.identity()?;
        let fn_ad = task_field_ad(&contract, &t.task_id, t.value, TaskField::Callable);
        let user_key = self.user_key(&me, t.epoch, &t.user_public_key, &t.encrypted_fn, &fn_ad)?;
        let inputs_hash = inputs_hash_compute(
            &t.encrypted_fn,
            &t.encrypted_args,
            &contract,
            t.user_public_key.as_bytes(),
        );
        let caller = Self::verify_caller(
            &me,
            t.caller.as_ref(),
            &t.task_id,
            &contract,
            &inputs_hash,
            t.value,
        )?;
        let prev = t.position.tip;
        let base = enigma_runtime::gas::TASK_BASE.min(t.gas_limit);
        let fail = |gas_used: u64, message: &str| {
            self.failure(
                &me,
                t.task_id,
                contract,
                &user_key,
                inputs_hash,
                t.code_hash,
                t.position,
                t.gas_limit,
                gas_used,
                message,
                false,
                t.value,
                caller,
            )
        };

        let mut exec = self.task_runtime(&contract);
        let exec = &mut *exec;
        // A module is cached under the hash this enclave computed over its bytes.
        if !exec.runtime.is_cached(&t.code_hash) {
            let code =
                t.code.as_deref().ok_or(EnclaveError::CodeNotLoaded { code_hash: t.code_hash })?;
            let got = code_hash(code);
            if got != t.code_hash {
                return Err(EnclaveError::CodeHashMismatch { expected: t.code_hash, got });
            }
            if let Err(e) = exec.runtime.prepare(&ContractCode::with_hash(got, code)) {
                return fail(base, &ExecError::Module(e).to_string());
            }
        }
        self.ensure_state(exec, &key, id, t.position, t.state)?;

        let (function, args) = match Self::decrypt_inputs(
            &user_key,
            &t.encrypted_fn,
            &t.encrypted_args,
            t.epoch,
            &contract,
            &t.task_id,
            t.value,
        ) {
            Ok(inputs) => inputs,
            Err(message) => return fail(base, &message),
        };
        let (state, _) = exec.states.get(&id).ok_or(EnclaveError::StateNotLoaded {
            contract,
            have: None,
            want: t.position,
        })?;
        let mut rng = TaskRng::new(&key, &t.task_id, &inputs_hash, &prev);
        let task = Task::call(&function, &args, enigma_types::GasLimit(t.gas_limit))
            .after(state)
            .paying(t.value)
            .called_by(caller);
        let outcome = exec
            .runtime
            .execute_within(
                &ContractCode::with_hash(t.code_hash, &[]),
                task,
                state,
                &mut rng,
                &mut TimeBudget::new(t.time_budget_ms),
            )
            .map_err(|stopped| out_of_time(t.time_budget_ms, &stopped))?;
        let success = match outcome.result {
            Ok(success) => success,
            Err(error) => return fail(outcome.gas_used.0, &error.to_string()),
        };

        let (delta, new_delta_hash) = if success.delta.is_empty() {
            (None, DeltaHash::ZERO)
        } else {
            let encrypted = match self.seal_delta(&key, &success.delta)? {
                Ok(sealed) => sealed,
                Err(message) => return fail(outcome.gas_used.0, &message),
            };
            let hash = delta_hash(&encrypted);
            (Some(EncryptedDelta { index: success.delta.index, bytes: encrypted }), hash)
        };
        let encrypted_output =
            self.seal_output(&user_key, &success.output, &contract, &t.task_id, t.value)?;
        let out_hash = output_hash(&encrypted_output);
        let eth_call = success.eth_call.map(|c| EthCall { address: c.address, payload: c.payload });
        let payouts = enigma_types::payouts::encode(&success.payouts);
        let receipt = ComputeReceipt {
            task_id: t.task_id,
            contract,
            code_hash: t.code_hash,
            inputs_hash,
            delta_count: t.position.next_index,
            prev_delta_hash: prev,
            delta_hash: new_delta_hash,
            output_hash: out_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call: eth_ref(eth_call.as_ref()),
            value: t.value,
            payouts: &payouts,
        };
        let receipt = receipt.digest();
        let signature = me.signing.sign_digest(&receipt);
        let mut snapshot = None;
        let padding = self.padding();
        if let Some((state, _)) = exec.states.get_mut(&id) {
            if delta.is_some() {
                state
                    .apply(&success.delta, new_delta_hash)
                    .map_err(|e| EnclaveError::BadState(e.to_string()))?;
            }
            if t.want_snapshot {
                let plain = Zeroizing::new(pad(&state.encode_snapshot(), padding));
                snapshot = Some(key.encrypt(&plain).map_err(crypto)?);
            }
        }
        let mut r = TaskResult {
            task_id: t.task_id,
            contract,
            status: TaskStatus::Success,
            inputs_hash,
            code_hash: t.code_hash,
            encrypted_output,
            output_hash: out_hash,
            prev_delta_count: t.position.next_index,
            prev_delta_hash: prev,
            delta,
            delta_hash: new_delta_hash,
            gas_limit: t.gas_limit,
            gas_used: outcome.gas_used.0,
            eth_call,
            value: t.value,
            payouts,
            caller: caller.unwrap_or(Address::ZERO),
            signature,
            result_signature: signature,
            snapshot,
            logs: if self.debug { success.logs } else { Vec::new() },
        };
        r.result_signature = Self::seal_result(&me, &r, &receipt, false);
        Ok(r)
    }

    /// Answers a read-only query on the contract's state at `q.position`, in the query runtime
    /// (never behind a task): the output is encrypted to the user and the answer signed over
    /// the contract, code, state, query, output and caller.
    pub(crate) fn query(&self, q: QueryRequest) -> Result<QueryAnswer, EnclaveError> {
        Self::check_inputs(&q.encrypted_fn, &q.encrypted_args)?;
        cap("the encrypted caller proof", q.encrypted_caller.len(), 2048)?;
        let contract = q.contract;
        let as_task = enigma_types::messages::query_task_id(&q.query_id);
        let id = ContractKeyId { contract, code_hash: q.code_hash };
        let key = self.state_key(id)?;
        let me = self.identity()?;
        let fn_ad = task_field_ad(&contract, &as_task, 0, TaskField::Callable);
        let user_key = self.user_key(&me, q.epoch, &q.user_public_key, &q.encrypted_fn, &fn_ad)?;
        let query = query_hash(
            &contract,
            &q.query_id,
            &q.encrypted_fn,
            &q.encrypted_args,
            q.user_public_key.as_bytes(),
        );
        // Who asks: the signer of the query, if it signed (inside the encryption, so the host
        // does not learn it).
        // A permit's name, to look up its revocation in the state the query runs on.
        let mut permit_name = None;
        // Whom the caller rate counts: the permit (its digest), or a signer of single queries.
        let mut counted = None;
        let caller = if q.encrypted_caller.is_empty() {
            None
        } else {
            use enigma_types::caller::{QueryCaller, permit_digest, query_digest};
            let refuse = || {
                EnclaveError::BadCaller(
                    "the query's caller proof does not open or does not verify: it must be an \
                     EIP-712 signature over this query, or a permit, for this network's key \
                     manager"
                        .into(),
                )
            };
            let recover = |signature: &[u8], digest: &[u8; 32]| {
                Signature::from_bytes(signature)
                    .ok()
                    .and_then(|s| s.recover_address(digest).ok())
                    .ok_or_else(refuse)
            };
            let ad = task_field_ad(&contract, &as_task, 0, TaskField::Caller);
            let plain = user_key.decrypt_with_ad(&q.encrypted_caller, &ad).map_err(|_| refuse())?;
            match QueryCaller::decode(&plain).ok_or_else(refuse)? {
                QueryCaller::Nobody => None,
                QueryCaller::Signature(signature) => {
                    let signer =
                        recover(&signature, &query_digest(&me.principal, &contract, &query))?;
                    let mut who = [0u8; 32];
                    who[12..].copy_from_slice(&signer.0);
                    counted = Some(who);
                    Some(signer)
                }
                QueryCaller::Permit(p) => {
                    // The reasons name nothing of the permit: the host reads them.
                    if !p.contracts.contains(&contract) {
                        return Err(EnclaveError::BadCaller(format!(
                            "the permit does not cover contract {contract}"
                        )));
                    }
                    if p.expiry <= self.tick(q.time) {
                        return Err(EnclaveError::BadCaller(
                            "the permit has expired; sign a new one".into(),
                        ));
                    }
                    let digest = permit_digest(&me.principal, &p.name, &p.contracts, p.expiry);
                    let seen = enigma_types::keccak256([&digest[..], &p.signature].concat());
                    let kept = lock(&self.agreed).signers.get(&seen).copied();
                    let signer = match kept {
                        Some(signer) => signer,
                        None => {
                            let signer = recover(&p.signature, &digest)?;
                            lock(&self.agreed).signer(seen, signer);
                            signer
                        }
                    };
                    permit_name = Some(p.name);
                    counted = Some(permit_rate_id(&digest, &signer));
                    Some(signer)
                }
            }
        };

        let rate = QUERIES_PER_CALLER_PER_SECOND;
        if let Some(who) = counted
            && !lock(&self.asked).count(who, asked_id(&who, &query), self.tick(q.time), rate)
        {
            return Err(EnclaveError::CallerRateExceeded { per_second: rate });
        }

        let mut exec = self.query_runtime();
        let exec = &mut *exec;
        if !exec.runtime.is_cached(&q.code_hash) {
            let code =
                q.code.as_deref().ok_or(EnclaveError::CodeNotLoaded { code_hash: q.code_hash })?;
            let got = code_hash(code);
            if got != q.code_hash {
                return Err(EnclaveError::CodeHashMismatch { expected: q.code_hash, got });
            }
            exec.runtime
                .prepare(&ContractCode::with_hash(got, code))
                .map_err(|e| EnclaveError::BadState(format!("the contract's module: {e}")))?;
        }
        self.ensure_state(exec, &key, id, q.position, q.state)?;
        // Revoked in this state (by a task of its signer, `REVOKE_PERMIT`): refused here and in
        // every later state.
        if let (Some(signer), Some(name)) = (caller, &permit_name) {
            let (state, _) = exec.states.get(&id).ok_or(EnclaveError::StateNotLoaded {
                contract,
                have: None,
                want: q.position,
            })?;
            if enigma_runtime::permit_revoked(state, &signer, name) {
                return Err(EnclaveError::BadCaller(
                    "the permit was revoked by its signer; ask for a new one under another name"
                        .into(),
                ));
            }
        }
        let (success, plain, gas_used) = match Self::decrypt_inputs(
            &user_key,
            &q.encrypted_fn,
            &q.encrypted_args,
            q.epoch,
            &contract,
            &as_task,
            0,
        ) {
            Err(message) => (false, Zeroizing::new(message.into_bytes()), 0),
            Ok((function, args)) => {
                let (state, _) = exec.states.get(&id).ok_or(EnclaveError::StateNotLoaded {
                    contract,
                    have: None,
                    want: q.position,
                })?;
                let mut rng =
                    TaskRng::new(&key, &as_task, &enigma_types::InputsHash(query), &q.position.tip);
                let task = Task::query(&function, &args, enigma_types::GasLimit(q.gas_limit))
                    .after(state)
                    .called_by(caller);
                let outcome = exec
                    .runtime
                    .execute_within(
                        &ContractCode::with_hash(q.code_hash, &[]),
                        task,
                        state,
                        &mut rng,
                        &mut TimeBudget::new(q.time_budget_ms),
                    )
                    .map_err(|stopped| out_of_time(q.time_budget_ms, &stopped))?;
                match outcome.result {
                    Ok(done) => (true, Zeroizing::new(done.output), outcome.gas_used.0),
                    Err(e) => {
                        (false, Zeroizing::new(e.to_string().into_bytes()), outcome.gas_used.0)
                    }
                }
            }
        };
        let encrypted_output = self.seal_output(&user_key, &plain, &contract, &as_task, 0)?;
        let out_hash = output_hash(&encrypted_output);
        // The digest names the caller; the answer does not (the host need not learn who asked).
        let caller = caller.unwrap_or(Address::ZERO);
        let digest = query_answer_digest(&QueryAnswerFields {
            contract: &contract,
            code_hash: &q.code_hash,
            delta_count: q.position.next_index,
            delta_hash: &q.position.tip,
            query_hash: &query,
            output_hash: &out_hash,
            success,
            gas_used,
            caller,
        });
        Ok(QueryAnswer {
            contract,
            code_hash: q.code_hash,
            position: q.position,
            query_hash: query,
            success,
            encrypted_output,
            output_hash: out_hash,
            gas_used,
            signature: me.signing.sign_digest(&digest),
        })
    }

    /// A free query runtime, or (all busy) the first to come free of one of them.
    fn query_runtime(&self) -> MutexGuard<'_, Exec> {
        for m in &self.queries {
            match m.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let at = self.next_query.fetch_add(1, Ordering::Relaxed) % self.queries.len().max(1);
        match self.queries.get(at) {
            Some(m) => lock(m),
            None => lock(&self.exec),
        }
    }

    /// The task runtime of `contract`: always the same one (by its address, which is a hash),
    /// so its cached state is where its next task runs.
    fn task_runtime(&self, contract: &ContractAddress) -> MutexGuard<'_, Exec> {
        let word = contract.0.first_chunk::<8>().copied().unwrap_or_default();
        let at = u64::from_le_bytes(word) % (self.more_execs.len() as u64 + 1);
        let more = usize::try_from(at).ok().and_then(|at| at.checked_sub(1));
        lock(more.and_then(|i| self.more_execs.get(i)).unwrap_or(&self.exec))
    }

    pub(crate) fn sign_batch(&self, b: BatchRequest) -> Result<Signature, EnclaveError> {
        cap("the batch", b.items.len(), limits::MAX_BATCH)?;
        if b.items.is_empty() {
            return Err(EnclaveError::BadBatch("it is empty".into()));
        }
        let me = self.identity()?;
        let signing = &me.signing;
        let me = signing.address();
        let mut prev = b.prev_delta_hash;
        let mut count = b.delta_count;
        let mut entries = Vec::with_capacity(b.items.len());
        for (i, item) in b.items.iter().enumerate() {
            let digest = match item.status {
                TaskStatus::Success => ComputeReceipt {
                    task_id: item.task_id,
                    contract: b.contract,
                    code_hash: b.code_hash,
                    inputs_hash: item.inputs_hash,
                    delta_count: count,
                    prev_delta_hash: prev,
                    delta_hash: item.delta_hash,
                    output_hash: item.output_hash,
                    gas_limit: item.gas_limit,
                    gas_used: item.gas_used,
                    eth_call: EthCallRef::default(),
                    value: item.value,
                    payouts: &item.payouts,
                }
                .digest(),
                TaskStatus::Failure => {
                    if !item.delta_hash.is_zero() || !item.payouts.is_empty() {
                        return Err(EnclaveError::BadBatch(format!(
                            "item {i} is a failure with a delta or payouts"
                        )));
                    }
                    FailureReceipt {
                        task_id: item.task_id,
                        contract: b.contract,
                        inputs_hash: item.inputs_hash,
                        code_hash: b.code_hash,
                        output_hash: item.output_hash,
                        gas_limit: item.gas_limit,
                        gas_used: item.gas_used,
                        value: item.value,
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
                count += 1;
            }
            entries.push(BatchEntry {
                task_id: item.task_id,
                inputs_hash: item.inputs_hash,
                delta_hash: item.delta_hash,
                output_hash: item.output_hash,
                value: item.value,
                payouts_hash: enigma_types::payouts::hash(&item.payouts),
                gas_limit: item.gas_limit,
                gas_used: item.gas_used,
                status: if item.status == TaskStatus::Success {
                    STATUS_SUCCESS
                } else {
                    STATUS_FAILURE
                },
            });
        }
        Ok(signing.sign_digest(&batch_digest(
            &b.contract,
            &b.code_hash,
            b.delta_count,
            &b.prev_delta_hash,
            &entries,
        )))
    }
}

/// A run the host's time budget stopped: no result, and the gas it had used.
fn out_of_time(budget_ms: u64, stopped: &enigma_runtime::Interrupted) -> EnclaveError {
    EnclaveError::TimeBudgetExceeded { budget_ms, gas_used: stopped.gas_used.0 }
}

fn eth_ref(call: Option<&EthCall>) -> EthCallRef<'_> {
    call.map_or_else(EthCallRef::default, |c| EthCallRef {
        payload: &c.payload,
        address: c.address,
    })
}

/// The host's wall-clock budget of a run. Under SGX the clock is an OCALL, untrusted: time only
/// decides liveness, which the host controls anyway.
struct TimeBudget {
    until: Option<std::time::Instant>,
}

impl TimeBudget {
    fn new(budget_ms: u64) -> Self {
        let until = (budget_ms > 0)
            .then(|| {
                std::time::Instant::now().checked_add(std::time::Duration::from_millis(budget_ms))
            })
            .flatten();
        Self { until }
    }
}

impl enigma_runtime::Deadline for TimeBudget {
    fn passed(&mut self) -> bool {
        self.until.is_some_and(|until| std::time::Instant::now() >= until)
    }
}

#[cfg(test)]
mod tests {
    use super::{Address, Asked, MAX_COUNTED_CALLERS, asked_id, permit_rate_id};

    #[test]
    fn a_new_query_under_a_used_id_is_counted_and_a_replay_is_not() {
        let alice = [1u8; 32];
        let (first, second) = ([10u8; 32], [11u8; 32]); // two queries' hashes, one id
        let mut asked = Asked::default();
        assert!(asked.count(alice, asked_id(&alice, &first), 9, 1));
        assert!(asked.count(alice, asked_id(&alice, &first), 9, 1), "a replay is not counted");
        assert!(
            !asked.count(alice, asked_id(&alice, &second), 9, 1),
            "another query is counted, whatever its id"
        );
    }

    #[test]
    fn permits_alike_but_of_different_signers_are_counted_apart() {
        let digest = [7u8; 32];
        let (alice, bob) = (Address([1; 20]), Address([2; 20]));
        let mut asked = Asked::default();
        assert!(asked.count(permit_rate_id(&digest, &alice), [1; 32], 5, 1));
        assert!(!asked.count(permit_rate_id(&digest, &alice), [2; 32], 5, 1));
        assert!(
            asked.count(permit_rate_id(&digest, &bob), [3; 32], 5, 1),
            "bob's permit of the same name, contracts and expiry has its own count"
        );
        assert_ne!(permit_rate_id(&digest, &alice), permit_rate_id(&[8; 32], &alice));
    }

    #[test]
    fn each_caller_gets_its_own_queries_per_second_and_the_count_is_bounded() {
        let id = |n: u64| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_be_bytes());
            id
        };
        let mut asked = Asked::default();
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        assert!((0..3).all(|n| asked.count(alice, id(n), 100, 3)));
        assert!(!asked.count(alice, id(3), 100, 3), "a fourth in the same second is refused");
        assert!(asked.count(bob, id(4), 100, 3), "another caller is counted apart");
        assert!(asked.count(alice, id(5), 101, 3), "the next second starts afresh");
        assert!((6..16).all(|n| asked.count(alice, id(n), 102, 0)), "0: no limit");

        // A query sent again in the same second (a replay, a retry) is not counted again.
        let mut asked = Asked::default();
        assert!((0..5).all(|_| asked.count(alice, id(1), 7, 2)));
        assert!(asked.count(alice, id(2), 7, 2));
        assert!(!asked.count(alice, id(3), 7, 2));

        // Past the most callers counted in a second, new ones wait for the next; those counted
        // keep their share.
        let mut asked = Asked::default();
        for i in 0..MAX_COUNTED_CALLERS {
            assert!(asked.count(id(i as u64), id(i as u64), 7, 2));
        }
        assert!(!asked.count([0xff; 32], [0xfe; 32], 7, 2));
        assert!(asked.count(id(0), [0xfd; 32], 7, 2));
        assert!(asked.count([0xff; 32], [0xfe; 32], 8, 2));
    }
}
