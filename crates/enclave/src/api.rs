//! The data that crosses the boundary. Every field is public information or ciphertext.

use enigma_crypto::{PublicKey, Signature};
pub use enigma_types::caller::CallerProof;
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, SignerAddress, TaskId,
};
use serde::{Deserialize, Serialize};

/// Which enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Executes secret contracts.
    Worker,
    /// Holds the master secret, releases state keys, draws epoch seeds.
    KeyManager,
}

impl Role {
    /// `"worker"` or `"km"`: the name in simulated measurements.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::KeyManager => "km",
        }
    }
}

/// The public identity an enclave attests to: what a quoting enclave (or, in simulation, the
/// attestation authority) signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveReport {
    /// The enclave's role.
    pub role: Role,
    /// Its signing key's address.
    pub signer: SignerAddress,
    /// Its measurement.
    pub mr_enclave: [u8; 32],
    /// 1 for workers, 2 for the KM.
    pub isv_prod_id: u16,
    /// Whether it runs in debug mode.
    pub debug: bool,
    /// `signer ‖ H(operator, principal) ‖ issuedAt` (`enigma_types::messages::ReportData`).
    #[serde(with = "bytes64")]
    pub report_data: [u8; 64],
}

mod bytes64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v = <Vec<u8>>::deserialize(d)?;
        v.try_into().map_err(|_| serde::de::Error::custom("report data is 64 bytes"))
    }
}

/// Attestation evidence as the host carries it across the boundary: its JSON. The enclave
/// parses and verifies it itself; the host can only choose what to carry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedEvidence(pub Vec<u8>);

impl std::fmt::Debug for CarriedEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CarriedEvidence({} bytes)", self.0.len())
    }
}

impl CarriedEvidence {
    /// Wraps `evidence` for the boundary.
    #[must_use]
    pub fn new(evidence: &enigma_attestation::Evidence) -> Self {
        Self(serde_json::to_vec(evidence).unwrap_or_default())
    }

    /// The evidence inside (enclave side).
    pub(crate) fn parse(&self) -> Result<enigma_attestation::Evidence, String> {
        if self.0.len() > crate::limits::MAX_EVIDENCE_BYTES {
            return Err(format!(
                "it is {} bytes, more than the limit of {}",
                self.0.len(),
                crate::limits::MAX_EVIDENCE_BYTES
            ));
        }
        serde_json::from_slice(&self.0).map_err(|e| format!("it does not parse: {e}"))
    }
}

/// Starts a worker enclave. Accepted once per enclave instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInit {
    /// The sealed identity from a previous run, if any (a new one is created otherwise).
    pub sealed_identity: Option<Vec<u8>>,
    /// The key manager's attestation evidence (what the chain's `PrincipalRegistered` event
    /// carries). A new identity serves the KM it attests, and only state-key responses signed by
    /// that KM are accepted; it is sealed into the identity. Required for a new identity; with a
    /// sealed one it may be left out, and if given must attest the same KM.
    pub principal_evidence: Option<CarriedEvidence>,
    /// The account that operates this worker on chain (bound into its report data, and sealed:
    /// an identity serves one operator).
    pub operator: Address,
    /// The host's clock (Unix seconds): to judge the KM's evidence and date the report.
    pub time: u64,
}

/// Starts the KM enclave. Accepted once per enclave instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmInit {
    /// The sealed state from a previous run, if any.
    pub sealed_state: Option<Vec<u8>>,
    /// The account that submits its epochs (bound into its report data).
    pub operator: Address,
    /// The host's clock (Unix seconds), to date the report.
    pub time: u64,
}

/// An initialized enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initialized {
    /// Its identity.
    pub report: EnclaveReport,
    /// The sealed identity/state to persist (unchanged if it was loaded).
    pub sealed: Vec<u8>,
}

/// A worker's encryption (IO) key for an epoch, signed by its enclave over
/// `H(enc("Enigma User Message", key))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerKey {
    /// The epoch (its first block) the key serves.
    pub epoch: u64,
    /// The public half of the IO key.
    pub public_key: PublicKey,
    /// The enclave's signature.
    pub signature: Signature,
}

/// What a worker announces on the network, for its enclave to sign (with the epoch's IO key,
/// which the enclave supplies itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementInput {
    /// The libp2p peer id (bytes).
    pub peer_id: Vec<u8>,
    /// Where it listens (multiaddrs as text).
    pub addresses: Vec<String>,
    /// The epoch (first block) whose IO key it announces.
    pub epoch: u64,
    /// When (Unix milliseconds, the host's clock).
    pub issued_at: u64,
}

/// A new IO key and the sealed identity that now includes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedKey {
    /// The new key.
    pub key: WorkerKey,
    /// The identity to persist.
    pub sealed_identity: Vec<u8>,
}

/// A deployment task as the worker received it, with its gas limit from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployTask {
    /// The task id, which is the new contract's address.
    pub task_id: TaskId,
    /// The epoch (first block) of the task record: selects the IO key.
    pub epoch: u64,
    /// The wasm module as uploaded.
    pub code: Vec<u8>,
    /// The constructor's callable, encrypted to the worker's IO key, with associated data
    /// `task_field_ad(taskId as the contract, taskId, 0, Callable)`.
    pub encrypted_fn: Vec<u8>,
    /// The constructor's ABI arguments, encrypted (field `Arguments`).
    pub encrypted_args: Vec<u8>,
    /// The user's per-task public key.
    pub user_public_key: PublicKey,
    /// From the task record on chain.
    pub gas_limit: u64,
    /// The sender's proof that it calls (EIP-712 signature), if it signed the task: the
    /// constructor's `sender()`.
    pub caller: Option<CallerProof>,
    /// The host's wall-clock budget for the run in milliseconds (0: none), a fence second to the
    /// gas limit. Time is the host's to give (it could stop the enclave anyway): a run that
    /// passes it ends with [`crate::EnclaveError::TimeBudgetExceeded`] and no result.
    pub time_budget_ms: u64,
}

/// A contract's encrypted state: an optional snapshot, then deltas in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedState {
    /// An encrypted snapshot to start from, if any.
    pub snapshot: Option<Vec<u8>>,
    /// Encrypted deltas to apply after it (or after what the enclave holds).
    pub deltas: Vec<EncryptedDelta>,
}

/// One encrypted delta; its hash is `H(bytes)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedDelta {
    /// Its index in the contract's chain.
    pub index: u64,
    /// The ciphertext.
    pub bytes: Vec<u8>,
}

/// Where a contract's delta chain stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPosition {
    /// The index the next delta gets (the number of deltas so far).
    pub next_index: u64,
    /// The hash of the last delta (zero before delta 0).
    pub tip: DeltaHash,
}

/// A compute task as the worker received it, with its gas limit from the chain. The enclave
/// runs only the module whose hash it computes to be `code_hash`, and only with the state key of
/// `(contract, code_hash)`, so other code sent for the contract opens nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeTask {
    /// The task id.
    pub task_id: TaskId,
    /// The epoch (first block) of the task record: selects the IO key.
    pub epoch: u64,
    /// The contract.
    pub contract: ContractAddress,
    /// Its code hash (from the chain): the enclave checks the module against it.
    pub code_hash: CodeHash,
    /// The module, needed only when the enclave has not cached it.
    pub code: Option<Vec<u8>>,
    /// Where the contract's delta chain stands on chain: the enclave executes on exactly this.
    pub position: ChainPosition,
    /// State to load, needed only when the enclave does not hold the contract at `position`.
    pub state: Option<EncryptedState>,
    /// The callable, encrypted to the worker's IO key, with associated data
    /// `task_field_ad(contract, taskId, value, Callable)`.
    pub encrypted_fn: Vec<u8>,
    /// The ABI arguments, encrypted (field `Arguments`).
    pub encrypted_args: Vec<u8>,
    /// The user's per-task public key.
    pub user_public_key: PublicKey,
    /// From the task record on chain.
    pub gas_limit: u64,
    /// The ENG (grains) the task record escrowed for the contract, from the record on chain. The
    /// enclave signs it into the receipt and the result seal: a host that gives another value
    /// gets a receipt the chain refuses and a result the client refuses.
    pub value: u128,
    /// The sender's proof that it calls (EIP-712 signature), if it signed the task: the
    /// contract's `sender()`.
    pub caller: Option<CallerProof>,
    /// The host's wall-clock budget for the run in milliseconds (0: none), a fence second to the
    /// gas limit. Time is the host's to give (it could stop the enclave anyway): a run that
    /// passes it ends with [`crate::EnclaveError::TimeBudgetExceeded`] and no result.
    pub time_budget_ms: u64,
    /// Return an encrypted snapshot of the new state.
    pub want_snapshot: bool,
}

/// A read-only query of a contract function: nothing is recorded, written or paid; the answer is
/// encrypted to the user and signed over the state it ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The client's random id for the query: its fields are encrypted as those of "task"
    /// `query_task_id(query_id)` of the contract (value 0), which no task has.
    pub query_id: [u8; 32],
    /// The epoch (first block) whose IO key the query is encrypted to.
    pub epoch: u64,
    /// The contract.
    pub contract: ContractAddress,
    /// Its code hash (from the chain).
    pub code_hash: CodeHash,
    /// The module, needed only when the enclave's query runtime has not cached it.
    pub code: Option<Vec<u8>>,
    /// The state to run on: the chain's tip (confirmed) or this worker's (latest); the answer
    /// says which it was.
    pub position: ChainPosition,
    /// State to load, needed only when the enclave does not hold the contract at `position`.
    pub state: Option<EncryptedState>,
    /// The callable, encrypted (field `Callable`).
    pub encrypted_fn: Vec<u8>,
    /// The ABI arguments, encrypted (field `Arguments`).
    pub encrypted_args: Vec<u8>,
    /// Who asks (`enigma_types::caller::QueryCaller`: an EIP-712 signature over the query, or
    /// a permit), encrypted (field `Caller`), so the host does not learn who asks; empty:
    /// anonymous.
    pub encrypted_caller: Vec<u8>,
    /// The user's per-query public key: the answer is encrypted to it.
    pub user_public_key: PublicKey,
    /// The gas the query may use (the worker's cap).
    pub gas_limit: u64,
    /// The host's clock (Unix seconds), to judge a permit's expiry (the enclave's time only
    /// moves forward, but it is the host's to give).
    pub time: u64,
    /// The host's wall-clock budget in milliseconds (0: none).
    pub time_budget_ms: u64,
}

/// A query's signed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// The contract.
    pub contract: ContractAddress,
    /// The code it ran.
    pub code_hash: CodeHash,
    /// The state it ran on.
    pub position: ChainPosition,
    /// `enigma_types::messages::query_hash`.
    pub query_hash: [u8; 32],
    /// Whether the function returned (otherwise the output is the error text).
    pub success: bool,
    /// The output (or error text), encrypted to the user (field `Output` of the query).
    pub encrypted_output: Vec<u8>,
    /// `H(encrypted_output)`.
    pub output_hash: OutputHash,
    /// Gas used.
    pub gas_used: u64,
    /// The enclave's signature over `query_answer_digest`, which names the caller the contract
    /// was told (zero: anonymous). The answer does not carry it: the caller's proof came
    /// encrypted, and the host need not learn who asked; the asker checks it against itself.
    pub signature: Signature,
}

/// A call of an Ethereum contract the task asked for (public: the chain makes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthCall {
    /// The contract.
    pub address: Address,
    /// The calldata.
    pub payload: Vec<u8>,
}

/// Whether a task succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Ran to completion.
    Success,
    /// Failed; the output is the encrypted error text.
    Failure,
}

/// A task's signed result. Everything here is public or encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub task_id: TaskId,
    /// The contract (the task id for a deploy).
    pub contract: ContractAddress,
    /// Success or failure.
    pub status: TaskStatus,
    /// The inputs hash the enclave computed (the chain's record must match).
    pub inputs_hash: InputsHash,
    /// The contract's code hash (zero for a failed deploy).
    pub code_hash: CodeHash,
    /// The output (or error text) encrypted to the user.
    pub encrypted_output: Vec<u8>,
    /// `H(encrypted_output)`; for a successful deploy, the code hash.
    pub output_hash: OutputHash,
    /// The number of the contract's deltas before this task (0 for a deploy).
    pub prev_delta_count: u64,
    /// The contract's last delta hash before this task.
    pub prev_delta_hash: DeltaHash,
    /// The new encrypted delta, if state changed (always for a successful deploy).
    pub delta: Option<EncryptedDelta>,
    /// `H(delta)`, zero if none.
    pub delta_hash: DeltaHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// The Ethereum call to make after commit, if any.
    pub eth_call: Option<EthCall>,
    /// The ENG the task brought (grains; zero for a deploy).
    pub value: u128,
    /// The payouts the task made, packed (`enigma_types::payouts`); empty for a failure.
    pub payouts: Vec<u8>,
    /// The verified caller the contract was told (zero: none), sealed for the client.
    pub caller: Address,
    /// The enclave's signature over the receipt (deploy, compute or failure digest).
    pub signature: Signature,
    /// The enclave's seal for peers and clients: its signature over
    /// `result_digest(receipt digest, encrypted output, contract, previous delta count and
    /// hash, success, kind)`, which covers every published field the receipt leaves out.
    pub result_signature: Signature,
    /// An encrypted snapshot of the new state, when asked for.
    pub snapshot: Option<Vec<u8>>,
    /// The contract's debug output, only from a debug enclave.
    pub logs: Vec<String>,
}

/// A contract's state key is that of its address and its code hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContractKeyId {
    /// The contract.
    pub contract: ContractAddress,
    /// Its code hash.
    pub code_hash: CodeHash,
}

/// A worker's signed request for state keys (docs/protocol.md section 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateKeyRequest {
    /// `enc("enigma-state-key-request-v2", ephemeralPubKey, id(12), u64 epochBlock,
    /// operator(20), list(contract), list(codeHash))`.
    pub request: Vec<u8>,
    /// The worker enclave's signature over `H(enc(request))`.
    pub signature: Signature,
}

/// The KM's signed answer: keys encrypted to the request's ephemeral key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateKeyResponse {
    /// `enc("enigma-state-key-response-v2", id(12), kmEphemeralPubKey, u64 epochBlock,
    /// list(contract), list(codeHash), list(encrypted key))`.
    pub response: Vec<u8>,
    /// The KM enclave's signature over `H(enc(response))`.
    pub signature: Signature,
}

/// The active workers of a new epoch, as the chain lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInput {
    /// The epoch counter the chain expects next.
    pub nonce: u64,
    /// The block whose worker list this is (`setWorkersParams`'s `blockNumber`).
    pub snapshot_block: u64,
    /// Workers per contract (the chain's `groupSize`).
    pub group_size: u64,
    /// Worker signer addresses, in the chain's order.
    pub workers: Vec<SignerAddress>,
    /// Their stakes (grains), same order.
    pub stakes: Vec<u128>,
}

/// A drawn epoch seed and the KM's signature over the epoch message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSeed {
    /// The random seed.
    pub seed: [u8; 32],
    /// The epoch counter.
    pub nonce: u64,
    /// The KM's signature over the epoch message (`enigma_types::messages::EpochMessage`).
    pub signature: Signature,
    /// The KM's sealed state to persist.
    pub sealed_state: Vec<u8>,
}

/// An epoch's parameters as committed on chain: every field the KM's release check reads, all
/// covered by the epoch message it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochParams {
    /// The seed.
    pub seed: [u8; 32],
    /// The epoch counter.
    pub nonce: u64,
    /// The block whose worker list it holds.
    pub snapshot_block: u64,
    /// Worker signer addresses.
    pub workers: Vec<SignerAddress>,
    /// Their stakes.
    pub stakes: Vec<u128>,
    /// Workers per contract.
    pub group_size: u64,
}

/// A state-key request, the requesting enclave's evidence and the epoch it names, for the KM's
/// release check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequestInput {
    /// The worker's request.
    pub request: StateKeyRequest,
    /// The requesting enclave's attestation evidence: the KM verifies it itself.
    pub evidence: CarriedEvidence,
    /// The epoch whose selection decides which attested enclave holds the keys.
    pub epoch: EpochParams,
    /// The host's clock (Unix seconds), to judge the evidence (never earlier than the latest
    /// time the KM has seen).
    pub time: u64,
}

/// One task of a batch, with the single-receipt signature the enclave gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// The task.
    pub task_id: TaskId,
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// Success or failure.
    pub status: TaskStatus,
    /// The delta hash (zero for none or a failure).
    pub delta_hash: DeltaHash,
    /// The output hash.
    pub output_hash: OutputHash,
    /// The value the task's record escrowed (grains).
    pub value: u128,
    /// The payouts, packed (empty for a failure).
    pub payouts: Vec<u8>,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// The result's signature.
    pub signature: Signature,
}

/// A batch of one contract's receipts to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The contract.
    pub contract: ContractAddress,
    /// The contract's code hash.
    pub code_hash: CodeHash,
    /// The chain's delta count when the batch starts.
    pub delta_count: u64,
    /// The chain's delta tip when the batch starts.
    pub prev_delta_hash: DeltaHash,
    /// The tasks, in execution order.
    pub items: Vec<BatchItem>,
}

/// The most queries one caller — one permit, or one signer's signed queries — may ask of a worker
/// enclave in a second of its clock (each query id counted once, so a replayed query costs its
/// caller nothing more). Only the enclave knows who asks, so only it can count; the limit is the
/// enclave's, not its host's, so a host cannot lower it to learn which queries share a caller.
pub const QUERIES_PER_CALLER_PER_SECOND: u32 = 500;
