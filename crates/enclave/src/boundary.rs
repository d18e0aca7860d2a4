//! The boundary: one call enum, one response enum, one dispatcher, and the untrusted proxy.

use enigma_crypto::Signature;
use enigma_types::{CodeHash, ContractAddress};
use serde::{Deserialize, Serialize};

use crate::{api::*, km::KmState, worker::WorkerState};

/// The largest serialized call the boundary accepts.
pub const MAX_CALL_BYTES: usize = 64 * 1024 * 1024;

/// Named caps on what a call may carry, checked before any work.
pub mod limits {
    /// Largest module.
    pub const MAX_CODE_BYTES: usize = 2 * 1024 * 1024;
    /// Largest encrypted callable or argument blob.
    pub const MAX_INPUT_BYTES: usize = 1024 * 1024 + 28;
    /// Most contracts in one state-key request.
    pub const MAX_CONTRACTS_PER_REQUEST: usize = 1000;
    /// Most tasks in one batch.
    pub const MAX_BATCH: usize = 1024;
    /// Most workers in an epoch.
    pub const MAX_WORKERS: usize = 10_000;
    /// Most deltas loaded in one call.
    pub const MAX_DELTAS_PER_CALL: usize = 100_000;
    /// Most addresses in an announcement, and the longest address or peer id.
    pub const MAX_ANNOUNCED_ADDRESSES: usize = 16;
    /// The longest announced address or peer id, in bytes.
    pub const MAX_ANNOUNCED_FIELD_BYTES: usize = 256;
    /// Largest attestation evidence (JSON; a DCAP quote with its collateral is about 20 KiB).
    pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;
}

/// Every call into an enclave: one variant per trait method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveCall {
    /// [`WorkerEnclave::init`].
    WorkerInit(WorkerInit),
    /// [`WorkerEnclave::report`] and [`KmEnclave::report`].
    Report {
        /// The host's clock (Unix seconds).
        time: u64,
    },
    /// [`WorkerEnclave::rotate_io_key`].
    RotateIoKey {
        /// The epoch's first block.
        epoch: u64,
    },
    /// [`WorkerEnclave::io_key`].
    IoKey {
        /// The epoch's first block.
        epoch: u64,
    },
    /// [`WorkerEnclave::sign_announcement`].
    SignAnnouncement(AnnouncementInput),
    /// [`WorkerEnclave::request_state_keys`].
    RequestStateKeys {
        /// The epoch's first block.
        epoch: u64,
        /// The contracts and their code hashes.
        contracts: Vec<ContractKeyId>,
    },
    /// [`WorkerEnclave::accept_state_keys`].
    AcceptStateKeys(StateKeyResponse),
    /// [`WorkerEnclave::deploy`].
    Deploy(DeployTask),
    /// [`WorkerEnclave::compute`].
    Compute(ComputeTask),
    /// [`WorkerEnclave::sign_batch`].
    SignBatch(BatchRequest),
    /// [`WorkerEnclave::query`].
    Query(QueryRequest),
    /// [`KmEnclave::init`].
    KmInit(KmInit),
    /// [`KmEnclave::new_epoch`].
    NewEpoch(EpochInput),
    /// [`KmEnclave::get_state_keys`].
    GetStateKeys(KeyRequestInput),
    /// [`WorkerEnclave::load_state`].
    LoadState {
        /// The contract and its code hash (the state key).
        contract: ContractKeyId,
        /// A snapshot and deltas, or deltas continuing what the enclave holds.
        state: EncryptedState,
    },
}

/// Every answer from an enclave. No variant carries a plaintext secret (see
/// docs/architecture.md for the review of each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveResponse {
    /// Identity and sealed blob.
    Initialized(Initialized),
    /// A fresh report.
    Report(EnclaveReport),
    /// A new IO key and the sealed identity.
    Rotated(RotatedKey),
    /// An IO key.
    WorkerKey(WorkerKey),
    /// A signed state-key request.
    StateKeyRequest(StateKeyRequest),
    /// The contracts whose keys were accepted.
    StateKeysAccepted(Vec<ContractKeyId>),
    /// A signed task result.
    TaskResult(Box<TaskResult>),
    /// A batch signature.
    BatchSignature(Signature),
    /// A query's signed answer.
    QueryAnswer(Box<QueryAnswer>),
    /// An announcement's signature.
    AnnouncementSignature(Signature),
    /// A signed epoch seed.
    EpochSeed(EpochSeed),
    /// Encrypted state keys.
    StateKeyResponse(StateKeyResponse),
    /// The call failed.
    Error(EnclaveError),
    /// Where a contract's loaded state stands.
    StateLoaded(ChainPosition),
}

/// Why an enclave call failed. Serializable, specific, and free of secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EnclaveError {
    /// The enclave has not been initialized.
    #[error("the enclave is not initialized: call init first")]
    NotInitialized,
    /// A second init: an enclave is initialized once, for one key manager and operator.
    #[error(
        "the enclave is already initialized; an enclave is initialized once (restart it to load another identity)"
    )]
    AlreadyInitialized,
    /// Init evidence or settings the enclave does not accept.
    #[error("the enclave refuses to start: {0}")]
    InitRefused(String),
    /// A call meant for the other kind of enclave.
    #[error("this is a {actual:?} enclave; the call is for a {wanted:?} enclave")]
    WrongRole {
        /// The role the call needs.
        wanted: Role,
        /// This enclave's role.
        actual: Role,
    },
    /// The call bytes do not decode.
    #[error("the enclave call does not decode: {0}")]
    BadCall(String),
    /// The response bytes do not decode (host side).
    #[error("the enclave response does not decode: {0}")]
    BadResponse(String),
    /// A field exceeds its cap.
    #[error("{what} is {len}, more than the limit of {max}")]
    TooLarge {
        /// The field.
        what: String,
        /// Its size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The sealed blob cannot be unsealed (other machine, other enclave, or damaged).
    #[error("the sealed data cannot be unsealed: {0}")]
    Sealing(String),
    /// No IO key for the epoch.
    #[error("this worker has no encryption key for epoch {epoch}; rotate_io_key first")]
    NoIoKey {
        /// The epoch asked for.
        epoch: u64,
    },
    /// No state key for the contract and code.
    #[error(
        "this worker holds no state key for contract {contract} with code {code_hash}; request it from the key manager"
    )]
    NoStateKey {
        /// The contract.
        contract: ContractAddress,
        /// The code hash the key is for.
        code_hash: CodeHash,
    },
    /// The enclave does not have the module cached: send the code.
    #[error("the enclave does not hold the code {code_hash}; send the code with the task")]
    CodeNotLoaded {
        /// The code hash.
        code_hash: CodeHash,
    },
    /// The code does not hash to the expected hash.
    #[error("the code given hashes to {got}, not to the contract's code hash {expected}")]
    CodeHashMismatch {
        /// The chain's hash.
        expected: CodeHash,
        /// The given code's hash.
        got: CodeHash,
    },
    /// The enclave's state of the contract is not at the task's position: send deltas from `have`.
    #[error("the enclave holds contract {contract} at delta {}, the task needs it at {}; send the missing state", have.map_or(0, |h| h.next_index), want.next_index)]
    StateNotLoaded {
        /// The contract.
        contract: ContractAddress,
        /// Where the enclave's copy stands, if it has one.
        have: Option<ChainPosition>,
        /// Where the task needs it.
        want: ChainPosition,
    },
    /// State given to the enclave does not decrypt, decode or chain correctly.
    #[error("the contract's stored state is invalid: {0}")]
    BadState(String),
    /// A state-key response that fails verification.
    #[error("the state-key response is rejected: {0}")]
    KeyResponseRejected(String),
    /// The KM refuses to release a key.
    #[error("the key manager refuses: {0}")]
    Refused(String),
    /// A batch that fails verification.
    #[error("the batch cannot be signed: {0}")]
    BadBatch(String),
    /// An epoch request the KM cannot honor.
    #[error("the epoch cannot be drawn: {0}")]
    BadEpoch(String),
    /// A cryptographic operation failed.
    #[error("a cryptographic operation failed: {0}")]
    Crypto(String),
    /// The contract ran past the host's time budget without finishing: no result and no
    /// receipt (another machine might have finished it), the task can be refunded.
    #[error(
        "the task ran past the worker's time budget of {budget_ms} ms after {gas_used} gas without finishing; it has no result and can be refunded"
    )]
    TimeBudgetExceeded {
        /// The budget.
        budget_ms: u64,
        /// Gas used when it stopped.
        gas_used: u64,
    },
    /// The task came with a caller proof that does not stand (another task's, or a signature
    /// that is not its sender's): no result and no receipt, the task can be refunded. A proof
    /// is not secret, so a host could have altered it; a task that must not run anonymously is
    /// refused rather than run without its caller.
    #[error("the task's caller proof is refused: {0}")]
    BadCaller(String),
    /// The query's caller asked more than the worker allows per second.
    #[error(
        "busy: this caller asked more than {per_second} queries in a second here; retry shortly"
    )]
    CallerRateExceeded {
        /// The worker's limit.
        per_second: u32,
    },
    /// The enclave code panicked; the call had no effect that escaped.
    #[error("the enclave panicked while handling the call; this is a bug, please report it")]
    Panicked,
}

/// Runs one call and returns its response bytes: the only entry into an enclave. Calls may
/// come from several threads at once, as ECALLs do on an enclave with several thread control
/// structures: a contract run does not hold up signing.
pub trait Backend {
    /// Sends serialized `call` and returns the serialized response.
    fn ecall(&self, call: &[u8]) -> Vec<u8>;
}

/// A worker enclave, as the host sees it.
pub trait WorkerEnclave {
    /// Loads (or creates and seals) the identity, bound to the attested key manager and the
    /// operator. Once per enclave.
    fn init(&self, init: WorkerInit) -> Result<Initialized, EnclaveError>;
    /// A fresh report (report data dated `time`), to obtain new evidence.
    fn report(&self, time: u64) -> Result<EnclaveReport, EnclaveError>;
    /// Creates the IO key of a new epoch.
    fn rotate_io_key(&self, epoch: u64) -> Result<RotatedKey, EnclaveError>;
    /// The signed IO key of an epoch.
    fn io_key(&self, epoch: u64) -> Result<WorkerKey, EnclaveError>;
    /// Signs an announcement of where the worker is and its IO key of the epoch.
    fn sign_announcement(&self, input: AnnouncementInput) -> Result<Signature, EnclaveError>;
    /// A signed request for contracts' state keys.
    fn request_state_keys(
        &self,
        epoch: u64,
        contracts: Vec<ContractKeyId>,
    ) -> Result<StateKeyRequest, EnclaveError>;
    /// Verifies the KM's response and keeps the keys inside the enclave.
    fn accept_state_keys(
        &self,
        response: StateKeyResponse,
    ) -> Result<Vec<ContractKeyId>, EnclaveError>;
    /// Runs a deployment.
    fn deploy(&self, task: DeployTask) -> Result<TaskResult, EnclaveError>;
    /// Runs a compute task.
    fn compute(&self, task: ComputeTask) -> Result<TaskResult, EnclaveError>;
    /// Answers a read-only query; never waits behind a deploy or compute.
    fn query(&self, query: QueryRequest) -> Result<QueryAnswer, EnclaveError>;
    /// Signs a batch of receipts it produced.
    fn sign_batch(&self, batch: BatchRequest) -> Result<Signature, EnclaveError>;
    /// Loads part of a contract's state ahead of a task or query (a state longer than one call
    /// carries goes in as several); returns where the state it holds now stands.
    fn load_state(
        &self,
        contract: ContractKeyId,
        state: EncryptedState,
    ) -> Result<ChainPosition, EnclaveError>;
}

/// The key-management enclave, as the host sees it.
pub trait KmEnclave {
    /// Loads (or creates and seals) the master secret, signer and epochs. Once per enclave.
    fn init(&self, init: KmInit) -> Result<Initialized, EnclaveError>;
    /// A fresh report (report data dated `time`), to obtain new evidence.
    fn report(&self, time: u64) -> Result<EnclaveReport, EnclaveError>;
    /// Draws and signs a new epoch's seed.
    fn new_epoch(&self, input: EpochInput) -> Result<EpochSeed, EnclaveError>;
    /// Verifies the requesting enclave's evidence and the epoch's selection, and releases the
    /// keys encrypted to the requesting enclave.
    fn get_state_keys(&self, input: KeyRequestInput) -> Result<StateKeyResponse, EnclaveError>;
}

/// The enclave side: one enclave's state and the dispatcher.
#[derive(Debug)]
pub(crate) enum Enclave {
    Worker(Box<WorkerState>),
    Km(std::sync::Mutex<Box<KmState>>),
    /// An enclave whose every call panics, to test that a panic stays inside.
    #[cfg(test)]
    Panicking,
}

impl Enclave {
    fn role(&self) -> Role {
        match self {
            Self::Worker(_) => Role::Worker,
            Self::Km(_) => Role::KeyManager,
            #[cfg(test)]
            Self::Panicking => Role::Worker,
        }
    }

    /// Decodes a call, runs it, encodes the response. Never fails: every problem becomes
    /// [`EnclaveResponse::Error`].
    pub(crate) fn dispatch(&self, call: &[u8]) -> Vec<u8> {
        let response = if call.len() > MAX_CALL_BYTES {
            EnclaveResponse::Error(EnclaveError::TooLarge {
                what: "the call".into(),
                len: call.len(),
                max: MAX_CALL_BYTES,
            })
        } else {
            match postcard::from_bytes::<EnclaveCall>(call) {
                Ok(call) => self.handle(call).unwrap_or_else(EnclaveResponse::Error),
                Err(e) => EnclaveResponse::Error(EnclaveError::BadCall(e.to_string())),
            }
        };
        encode_response(&response)
    }

    fn handle(&self, call: EnclaveCall) -> Result<EnclaveResponse, EnclaveError> {
        let role = self.role();
        let wrong = |wanted| EnclaveError::WrongRole { wanted, actual: role };
        match (self, call) {
            (Self::Worker(w), EnclaveCall::WorkerInit(init)) => {
                w.init(init).map(EnclaveResponse::Initialized)
            }
            (Self::Worker(w), EnclaveCall::Report { time }) => {
                w.report(time).map(EnclaveResponse::Report)
            }
            (Self::Km(k), EnclaveCall::Report { time }) => {
                km(k).report(time).map(EnclaveResponse::Report)
            }
            (Self::Worker(w), EnclaveCall::SignAnnouncement(input)) => {
                w.sign_announcement(input).map(EnclaveResponse::AnnouncementSignature)
            }
            (Self::Worker(w), EnclaveCall::RotateIoKey { epoch }) => {
                w.rotate_io_key(epoch).map(EnclaveResponse::Rotated)
            }
            (Self::Worker(w), EnclaveCall::IoKey { epoch }) => {
                w.io_key(epoch).map(EnclaveResponse::WorkerKey)
            }
            (Self::Worker(w), EnclaveCall::RequestStateKeys { epoch, contracts }) => {
                w.request_state_keys(epoch, contracts).map(EnclaveResponse::StateKeyRequest)
            }
            (Self::Worker(w), EnclaveCall::AcceptStateKeys(r)) => {
                w.accept_state_keys(r).map(EnclaveResponse::StateKeysAccepted)
            }
            (Self::Worker(w), EnclaveCall::Deploy(t)) => {
                w.deploy(t).map(|r| EnclaveResponse::TaskResult(Box::new(r)))
            }
            (Self::Worker(w), EnclaveCall::Compute(t)) => {
                w.compute(t).map(|r| EnclaveResponse::TaskResult(Box::new(r)))
            }
            (Self::Worker(w), EnclaveCall::Query(q)) => {
                w.query(q).map(|a| EnclaveResponse::QueryAnswer(Box::new(a)))
            }
            (Self::Worker(w), EnclaveCall::SignBatch(b)) => {
                w.sign_batch(b).map(EnclaveResponse::BatchSignature)
            }
            (Self::Worker(w), EnclaveCall::LoadState { contract, state }) => {
                w.load_state(contract, state).map(EnclaveResponse::StateLoaded)
            }
            (Self::Km(k), EnclaveCall::KmInit(init)) => {
                km(k).init(init).map(EnclaveResponse::Initialized)
            }
            (Self::Km(k), EnclaveCall::NewEpoch(input)) => {
                km(k).new_epoch(input).map(EnclaveResponse::EpochSeed)
            }
            (Self::Km(k), EnclaveCall::GetStateKeys(input)) => {
                km(k).get_state_keys(input).map(EnclaveResponse::StateKeyResponse)
            }
            (Self::Worker(_), _) => Err(wrong(Role::KeyManager)),
            (Self::Km(_), _) => Err(wrong(Role::Worker)),
            #[cfg(test)]
            (Self::Panicking, _) => panic!("a bug inside the enclave"),
        }
    }
}

/// The key manager runs one call at a time (its calls are short; none runs a contract). A lock
/// whose holder panicked stays usable: the panic became an error response and the KM's updates
/// are single inserts.
fn km(k: &std::sync::Mutex<Box<KmState>>) -> std::sync::MutexGuard<'_, Box<KmState>> {
    k.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn encode_response(response: &EnclaveResponse) -> Vec<u8> {
    postcard::to_allocvec(response).unwrap_or_else(|e| {
        // Serializing our own types into a Vec cannot fail short of allocation failure; answer
        // with an error the host can still decode.
        postcard::to_allocvec(&EnclaveResponse::Error(EnclaveError::BadResponse(e.to_string())))
            .unwrap_or_default()
    })
}

/// The untrusted side: implements both enclave traits by serializing each call to a backend.
#[derive(Debug)]
pub struct EnclaveProxy<B> {
    backend: B,
}

impl<B: Backend> EnclaveProxy<B> {
    /// A proxy over `backend`.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Sends one call and decodes its response.
    pub fn call(&self, call: &EnclaveCall) -> Result<EnclaveResponse, EnclaveError> {
        let bytes =
            postcard::to_allocvec(call).map_err(|e| EnclaveError::BadCall(e.to_string()))?;
        if bytes.len() > MAX_CALL_BYTES {
            return Err(EnclaveError::TooLarge {
                what: "the call".into(),
                len: bytes.len(),
                max: MAX_CALL_BYTES,
            });
        }
        let response = self.backend.ecall(&bytes);
        match postcard::from_bytes::<EnclaveResponse>(&response) {
            Ok(EnclaveResponse::Error(e)) => Err(e),
            Ok(r) => Ok(r),
            Err(e) => Err(EnclaveError::BadResponse(e.to_string())),
        }
    }
}

fn unexpected(r: &EnclaveResponse) -> EnclaveError {
    let name = format!("{r:?}");
    EnclaveError::BadResponse(format!(
        "unexpected response {}",
        name.split(['(', ' ', '{']).next().unwrap_or("?")
    ))
}

macro_rules! expect {
    ($self:ident, $call:expr, $variant:ident) => {
        match $self.call(&$call)? {
            EnclaveResponse::$variant(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    };
}

impl<B: Backend> WorkerEnclave for EnclaveProxy<B> {
    fn init(&self, init: WorkerInit) -> Result<Initialized, EnclaveError> {
        expect!(self, EnclaveCall::WorkerInit(init), Initialized)
    }

    fn report(&self, time: u64) -> Result<EnclaveReport, EnclaveError> {
        expect!(self, EnclaveCall::Report { time }, Report)
    }

    fn rotate_io_key(&self, epoch: u64) -> Result<RotatedKey, EnclaveError> {
        expect!(self, EnclaveCall::RotateIoKey { epoch }, Rotated)
    }

    fn io_key(&self, epoch: u64) -> Result<WorkerKey, EnclaveError> {
        expect!(self, EnclaveCall::IoKey { epoch }, WorkerKey)
    }

    fn sign_announcement(&self, input: AnnouncementInput) -> Result<Signature, EnclaveError> {
        expect!(self, EnclaveCall::SignAnnouncement(input), AnnouncementSignature)
    }

    fn request_state_keys(
        &self,
        epoch: u64,
        contracts: Vec<ContractKeyId>,
    ) -> Result<StateKeyRequest, EnclaveError> {
        expect!(self, EnclaveCall::RequestStateKeys { epoch, contracts }, StateKeyRequest)
    }

    fn accept_state_keys(
        &self,
        response: StateKeyResponse,
    ) -> Result<Vec<ContractKeyId>, EnclaveError> {
        expect!(self, EnclaveCall::AcceptStateKeys(response), StateKeysAccepted)
    }

    fn deploy(&self, task: DeployTask) -> Result<TaskResult, EnclaveError> {
        expect!(self, EnclaveCall::Deploy(task), TaskResult).map(|r| *r)
    }

    fn compute(&self, task: ComputeTask) -> Result<TaskResult, EnclaveError> {
        expect!(self, EnclaveCall::Compute(task), TaskResult).map(|r| *r)
    }

    fn sign_batch(&self, batch: BatchRequest) -> Result<Signature, EnclaveError> {
        expect!(self, EnclaveCall::SignBatch(batch), BatchSignature)
    }

    fn query(&self, query: QueryRequest) -> Result<QueryAnswer, EnclaveError> {
        expect!(self, EnclaveCall::Query(query), QueryAnswer).map(|a| *a)
    }

    fn load_state(
        &self,
        contract: ContractKeyId,
        state: EncryptedState,
    ) -> Result<ChainPosition, EnclaveError> {
        expect!(self, EnclaveCall::LoadState { contract, state }, StateLoaded)
    }
}

impl<B: Backend> KmEnclave for EnclaveProxy<B> {
    fn init(&self, init: KmInit) -> Result<Initialized, EnclaveError> {
        expect!(self, EnclaveCall::KmInit(init), Initialized)
    }

    fn report(&self, time: u64) -> Result<EnclaveReport, EnclaveError> {
        expect!(self, EnclaveCall::Report { time }, Report)
    }

    fn new_epoch(&self, input: EpochInput) -> Result<EpochSeed, EnclaveError> {
        expect!(self, EnclaveCall::NewEpoch(input), EpochSeed)
    }

    fn get_state_keys(&self, input: KeyRequestInput) -> Result<StateKeyResponse, EnclaveError> {
        expect!(self, EnclaveCall::GetStateKeys(input), StateKeyResponse)
    }
}
