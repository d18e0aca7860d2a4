//! The enigma client SDK (the Rust counterpart of Enigma-JS).
//!
//! A [`Client`] does, for every task: read the current epoch from the chain and select the
//! worker for the contract locally; fetch that worker's encryption key from a gateway and check
//! it all the way down (signed by the worker's enclave signer, which is registered and logged in
//! on chain, whose attestation evidence verifies under the client's [`Policy`]); encrypt the
//! callable and ABI arguments with a fresh key; create the task record (paying from the prepaid
//! balance); send the task; await the result by WebSocket push (polling as a fallback); check the
//! enclave's signature on the result against the selected worker; decrypt it.
//!
//! ```no_run
//! # async fn run() -> Result<(), enigma_client::ClientError> {
//! use enigma_client::{Client, ClientConfig};
//! # let config: ClientConfig = todo!();
//! let client = Client::connect(config).await?;
//! let wasm = std::fs::read("millionaires.wasm").unwrap();
//! let deployed = client.deploy(&wasm, "construct()", &[], 10_000_000).await?;
//! let out = client.compute(deployed.contract, "compute_richest()", &[], 10_000_000).await;
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{providers::Provider as _, rpc::types::Filter, sol_types::SolEvent};
pub use enigma_attestation::Policy;
use enigma_chain::{Chain, ChainError, WorkerStatus, bindings::Enigma};
pub use enigma_contract_build as build;
use enigma_crypto::SignedResult as _;
use enigma_crypto::{KeyPair, PublicKey, Signature};
use enigma_p2p::{ResultMessage, messages::ResultView};
use enigma_types::{
    Address, CodeHash, ContractAddress, SignerAddress, TaskId, code_hash, inputs_hash_compute,
    inputs_hash_deploy,
    messages::{TaskField, task_field_ad, worker_key_digest},
    padding::unpad,
    selection::select_workers,
    task_id,
};
use jsonrpsee::{
    core::client::{ClientT, SubscriptionClientT},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
    ws_client::WsClientBuilder,
};
use tokio::sync::Mutex;

/// Where and as whom a client works.
#[derive(Debug)]
pub struct ClientConfig {
    /// A gateway's JSON-RPC URL (`http://…`; its WebSocket is the same address).
    pub gateway_url: String,
    /// The Ethereum JSON-RPC URL.
    pub chain_url: String,
    /// The Enigma contract.
    pub enigma: Address,
    /// The ENG token.
    pub token: Address,
    /// The user's Ethereum account: creates task records and pays fees.
    pub account: KeyPair,
    /// Gas price in grains.
    pub gas_px: u64,
    /// What a worker's attestation evidence must show.
    pub policy: Policy,
    /// How long to wait for a result.
    pub result_timeout: Duration,
}

/// The gateway's error code for a task request its worker received but did not answer in
/// time: the task may still run.
const UNANSWERED: i32 = -32012;
/// The gateway's code for a request over its per-client or total limits (or from a banned
/// client), refused before any check.
const NOT_ADMITTED: i32 = -32013;
/// How often [`Client::record_many`] targets its tasks again when the epoch turned meanwhile.
const MAX_EPOCH_RETARGETS: u32 = 3;
/// How many more times a final task's receipt event is looked up before it counts as absent.
const RECEIPT_LOOKUPS: usize = 5;
/// The gateway's code for "not handed to the worker now; send it again shortly".
const NOT_DELIVERED: i32 = -32015;
/// How far back a client looks for record batches of its own account when a task id is
/// unknown to its chain handle (a client started again after recording them), newest first in
/// log queries of 2,000 blocks: about a month of mainnet blocks.
const OWN_BATCH_SEARCH_BLOCKS: u64 = 200_000;
/// Blocks read per step of that search (each step one or a few log queries).
const OWN_BATCH_WINDOW: u64 = 2_000;

/// Why a task did not give a result. Each variant is something a dApp can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The selected worker's key or attestation does not check out: do not send it secrets.
    #[error("worker {worker} is not attested: {reason}")]
    NotAttested {
        /// The worker.
        worker: SignerAddress,
        /// What failed.
        reason: String,
    },
    /// The contract failed; `message` is its (decrypted) error.
    #[error("task {task_id} failed: {message} (gas used {gas_used})")]
    TaskFailed {
        /// The task.
        task_id: TaskId,
        /// The contract's error text.
        message: String,
        /// The gas charged.
        gas_used: u64,
    },
    /// No result arrived in time; once the task's timeout passes on chain its whole fee can be
    /// reclaimed (`returnFeesForTask`).
    #[error(
        "no result for task {task_id} within the wait; it can be refunded after the chain's timeout"
    )]
    TimedOut {
        /// The task.
        task_id: TaskId,
    },
    /// The task was recorded on chain but no worker executed it (the gateway or the selected
    /// worker refused it, e.g. because its epoch ended first). Nothing ran; once the chain's
    /// timeout passes, `returnFeesForTask` returns the whole fee.
    #[error(
        "task {task_id} was recorded but not executed: {reason}; its fee can be reclaimed after the chain's timeout"
    )]
    NotExecuted {
        /// The task.
        task_id: TaskId,
        /// Why, as the gateway or worker said.
        reason: String,
    },
    /// The chain refuses tasks at this gas price or limit (its owner's task limits).
    #[error(
        "the chain accepts tasks with a gas price of at least {min_gas_price} and a gas limit of at most {max_gas_limit}; this one has {gas_px} and {gas_limit}"
    )]
    OutsideTaskLimits {
        /// The gas price asked.
        gas_px: u64,
        /// The gas limit asked.
        gas_limit: u64,
        /// The chain's minimum price.
        min_gas_price: u64,
        /// The chain's maximum limit.
        max_gas_limit: u64,
    },
    /// The prepaid balance does not cover the fee.
    #[error(
        "the prepaid balance is {have} grains but the task's fee is {need}; deposit more with `Client::deposit` (the token approval is included)"
    )]
    InsufficientBalance {
        /// Prepaid grains.
        have: u128,
        /// The fee.
        need: u128,
    },
    /// Other tasks from this account kept taking the task nonce this one read: another process
    /// is recording tasks from the same account at the same time. Nothing was recorded or paid.
    #[error(
        "other tasks from this account took the task nonce {tries} times in {seconds} s: another \
         process is recording tasks from this account at the same time; nothing was recorded, \
         try again (or record from one process, which takes turns itself)"
    )]
    AccountBusy {
        /// Tries made.
        tries: u32,
        /// Over how long.
        seconds: u64,
    },
    /// No secret contract at this address on chain (nothing was recorded or paid).
    #[error("no secret contract is deployed at {0}; check the address (nothing was recorded)")]
    UnknownContract(ContractAddress),
    /// A deployment was given a value (only compute tasks carry ENG to a contract).
    #[error(
        "a deployment cannot carry a value: send ENG to the contract with a compute task once it \
         is deployed (nothing was recorded)"
    )]
    ValueWithDeploy,
    /// No epoch or no worker to select.
    #[error("no worker can be selected: {0}")]
    NoWorker(String),
    /// A result that does not verify.
    #[error("the result does not verify: {0}")]
    BadResult(String),
    /// A permit that cannot be made as asked.
    #[error("the permit cannot be made: {0}")]
    BadPermit(String),
    /// The queried function failed (its error text, decrypted).
    #[error("the query failed: {message} (gas used {gas_used})")]
    QueryFailed {
        /// The contract's error.
        message: String,
        /// Gas used.
        gas_used: u64,
    },
    /// The gateway refused or failed.
    #[error("the gateway: {0}")]
    Gateway(String),
    /// What the caller asked for cannot be done as given (nothing was sent).
    #[error("{0}")]
    BadInput(String),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A key or signature failed.
    #[error(transparent)]
    Crypto(#[from] enigma_crypto::Error),
}

/// A result with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// How a query runs.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Run on the selected worker's latest state, its provisional results included, instead of
    /// the chain's delta tip (the default).
    pub latest: bool,
    /// Ask without the proof that this account asks: the contract's `sender()` is `None`.
    pub anonymous: bool,
    /// Ask this worker instead of the selected one (it must hold the contract's state key).
    pub worker: Option<SignerAddress>,
    /// Ask with this permit (see [`Client::sign_permit`]) instead of signing the query: the
    /// contract's caller is then the permit's signer.
    pub permit: Option<enigma_types::caller::Permit>,
}

/// A query's verified, decrypted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    /// The contract.
    pub contract: ContractAddress,
    /// The decrypted, ABI-encoded output.
    pub output: Vec<u8>,
    /// The worker whose enclave answered.
    pub worker: SignerAddress,
    /// The state it ran on: its number of deltas …
    pub delta_count: u64,
    /// … and the last of them.
    pub delta_hash: enigma_types::DeltaHash,
    /// Whether that state is on chain (`false`: a worker's provisional state, past the chain's).
    pub on_chain: bool,
    /// Gas used.
    pub gas_used: u64,
    /// The caller the contract was told (zero: anonymous).
    pub caller: Address,
}

/// A finished task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// The task.
    pub task_id: TaskId,
    /// The contract (for a deployment, the new one).
    pub contract: ContractAddress,
    /// The decrypted, ABI-encoded output.
    pub output: Vec<u8>,
    /// Gas used.
    pub gas_used: u64,
    /// The worker that ran it.
    pub worker: SignerAddress,
    /// The output's hash, as the enclave signed it (for a deployment: the code hash).
    pub output_hash: enigma_types::OutputHash,
    /// The state delta's hash (zero if the task changed nothing).
    pub delta_hash: enigma_types::DeltaHash,
    /// The ENG (grains) the task brought to the contract.
    pub value: u128,
    /// What the contract paid out in the task (from its balance to these accounts' prepaid
    /// balances, once the receipt is on chain).
    pub payouts: Vec<enigma_types::payouts::Payout>,
    /// Whether the chain has the task's receipt yet.
    pub finality: Finality,
}

/// How final a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// Signed by the enclave of the selected worker, over this task, this contract and a state
    /// the chain has not moved past; its receipt is not on chain yet (receipts are committed in
    /// batches, so this is the normal case at first). [`Client::confirm`] waits for it.
    Provisional,
    /// The chain holds the task's receipt.
    Confirmed,
}

/// A task's receipt as the chain recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// How the task ended on chain.
    pub status: enigma_chain::TaskStatus,
    /// The output hash the receipt carries.
    pub output_hash: enigma_types::OutputHash,
    /// The delta hash the receipt carries.
    pub delta_hash: enigma_types::DeltaHash,
    /// The gas the sender paid for.
    pub gas_used: u64,
}

/// The client.
#[derive(Debug)]
pub struct Client {
    chain: Chain,
    /// Held while a task of this account reads its task nonce and is recorded: the chain takes
    /// an account's records in nonce order.
    recording: Mutex<()>,
    http: HttpClient,
    ws_url: String,
    config: ClientConfig,
    attested: Mutex<HashMap<SignerAddress, Attested>>,
    principal: tokio::sync::OnceCell<Address>,
    /// Where queries of each contract went last (epoch, worker, its checked key), reused for
    /// [`QUERY_TARGET_TTL`]: a query then costs one chain read and one gateway call.
    query_targets:
        std::sync::Mutex<HashMap<ContractAddress, (u64, SignerAddress, PublicKey, Instant)>>,
    /// Workers' checked keys by epoch (first block), at most [`WORKER_KEYS_KEPT`].
    worker_keys: std::sync::Mutex<HashMap<(SignerAddress, u64), PublicKey>>,
    /// Contracts' code hashes (fixed at deployment), at most [`CODE_HASHES_KEPT`]: a task then
    /// does not read its contract from the chain before it is recorded.
    code_hashes: std::sync::Mutex<HashMap<ContractAddress, CodeHash>>,
    /// The chain's group size (fixed when the Enigma contract is deployed).
    group_size: tokio::sync::OnceCell<u64>,
    /// This client's query keys by the worker key they were agreed with and the contract asked
    /// (its public half and the derived key), each used for [`QUERY_KEY_TTL`]: a query then
    /// costs no key agreement. Anonymous queries take a fresh key each.
    query_keys: std::sync::Mutex<HashMap<([u8; 64], ContractAddress), QueryKey>>,
    /// Permits whose signer this client recovered (by their digest and signature).
    permit_signers: std::sync::Mutex<HashMap<[u8; 32], Address>>,
    /// WebSocket connections to the gateway that this client's tasks share for their result
    /// subscriptions, each carrying up to [`SUBSCRIPTIONS_PER_SOCKET`].
    sockets: Mutex<Vec<Arc<SharedSocket>>>,
    /// The blocks whose record batches of this account the chain handle has read
    /// (`Client::task_record`), `[low, high]`: a later look-up reads only blocks outside them.
    own_batches_read: std::sync::Mutex<Option<(u64, u64)>>,
    /// How long a compute task waits for others to be recorded with it
    /// ([`Client::batch_records`]); `None`: each is recorded alone.
    record_window: Option<Duration>,
    /// The record batch that compute tasks are joining now.
    window_batch: std::sync::Mutex<Option<Arc<WindowBatch>>>,
}

/// Compute tasks recorded together ([`Client::batch_records`]): the calls joined so far (closed
/// once it is being recorded), and the outcome, which the first of its tasks to get the lock
/// records and the others read (if that task is dropped meanwhile, the next records it).
struct WindowBatch {
    opened: tokio::time::Instant,
    joined: std::sync::Mutex<(Vec<WindowCall>, bool)>,
    outcome: Mutex<Option<std::result::Result<Vec<Option<RecordedTask>>, String>>>,
    /// How many of its tasks (in record order) [`Client::compute`] has sent or given up on: a
    /// task is sent once all before it were, as a worker takes a contract's tasks in record
    /// order and passes over one that is late.
    sent: tokio::sync::watch::Sender<usize>,
}

/// A windowed compute task's turn to be sent ([`WindowBatch::sent`]); dropping it, sent or
/// not, lets the next go.
struct SendTurn {
    batch: Arc<WindowBatch>,
    index: usize,
}

impl Drop for SendTurn {
    fn drop(&mut self) {
        let next = self.index + 1;
        self.batch.sent.send_modify(|n| *n = (*n).max(next));
    }
}

/// One compute call waiting in a [`WindowBatch`]: contract, callable, arguments, gas limit.
type WindowCall = (ContractAddress, String, Vec<u8>, u64);

/// Shows how many tasks joined, never their (secret) arguments.
impl std::fmt::Debug for WindowBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let joined = self.joined.lock().map_or(0, |j| j.0.len());
        f.debug_struct("WindowBatch").field("joined", &joined).finish_non_exhaustive()
    }
}

/// A WebSocket connection to the gateway and how many result subscriptions it carries.
struct SharedSocket {
    ws: jsonrpsee::ws_client::WsClient,
    in_use: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for SharedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSocket")
            .field("subscriptions", &self.in_use.load(std::sync::atomic::Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A task's place on a shared socket, given back when the task's handle goes.
struct SocketPlace(Arc<SharedSocket>);

impl Drop for SocketPlace {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Result subscriptions one socket carries: under the gateway's 16 per connection, leaving room
/// for unsubscriptions still on their way.
const SUBSCRIPTIONS_PER_SOCKET: usize = 12;

/// Sockets a client keeps open; a task past them waits for its result by asking.
const SOCKETS_KEPT: usize = 32;

/// How long opening a socket may take before a task waits for its result by asking instead.
const SOCKET_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Contracts whose code hash a client keeps.
const CODE_HASHES_KEPT: usize = 4096;

/// Worker keys a client keeps (a worker has one per epoch).
const WORKER_KEYS_KEPT: usize = 256;

/// How long a query target (the selected worker and its attested key) is reused. A worker keeps
/// its previous epoch's key, and a target that no longer serves the contract is dropped at the
/// first refusal and looked up again.
const QUERY_TARGET_TTL: Duration = Duration::from_secs(5);

/// How long a query key is reused with one worker key and contract. The host of the worker
/// asked (and the gateway) sees that queries under one key come from one client, though not
/// who it is; a new key after this long keeps that window short, and anonymous queries take a
/// fresh key each.
const QUERY_KEY_TTL: Duration = Duration::from_secs(30);

/// A query key: its public half, the key agreed with a worker's key, and when it was made.
type QueryKey = (PublicKey, Arc<enigma_crypto::SymmetricKey>, Instant);

/// Query keys, and permit signers, a client keeps.
const QUERY_KEYS_KEPT: usize = 256;

/// The gas a permit's revocation is recorded with: the runtime charges it 15,000 (its task base
/// and the revocation), whatever the contract.
const REVOKE_PERMIT_GAS: u64 = 20_000;

/// A worker whose evidence verified: until it registers again or its evidence ages out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attested {
    registered_at: u64,
    expires_at: Option<u64>,
}

impl Attested {
    /// Whether the verification still stands for a worker registered at `registered_at`, at
    /// `now`.
    fn holds(&self, registered_at: u64, now: u64) -> bool {
        self.registered_at == registered_at && self.expires_at.is_none_or(|t| now < t)
    }
}

pub use enigma_attestation::{check_binding, check_worker_evidence};

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn gateway_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Gateway(e.to_string())
}

fn hexed(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

impl Client {
    /// Connects to the chain (signing as the configured account) and the gateway.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let chain =
            Chain::connect(&config.chain_url, Some(&config.account), config.enigma, config.token)
                .await?;
        let http = HttpClientBuilder::default().build(&config.gateway_url).map_err(gateway_err)?;
        let ws_url = config.gateway_url.replacen("http", "ws", 1);
        Ok(Self {
            chain,
            http,
            ws_url,
            config,
            attested: Mutex::new(HashMap::new()),
            recording: Mutex::new(()),
            principal: tokio::sync::OnceCell::new(),
            query_targets: std::sync::Mutex::new(HashMap::new()),
            worker_keys: std::sync::Mutex::new(HashMap::new()),
            code_hashes: std::sync::Mutex::new(HashMap::new()),
            group_size: tokio::sync::OnceCell::new(),
            query_keys: std::sync::Mutex::new(HashMap::new()),
            permit_signers: std::sync::Mutex::new(HashMap::new()),
            sockets: Mutex::new(Vec::new()),
            own_batches_read: std::sync::Mutex::new(None),
            record_window: None,
            window_batch: std::sync::Mutex::new(None),
        })
    }

    /// Records compute tasks started close together as one record batch: each
    /// [`compute`](Self::compute) or [`record_compute`](Self::record_compute) waits up to
    /// `window` for others of this client to join it (at most
    /// [`MAX_RECORD_BATCH`](enigma_chain::MAX_RECORD_BATCH)), and they are recorded in one
    /// transaction as [`record_batch`](Self::record_batch) does — about 12,400 gas a task in a
    /// batch of 16 instead of 119,000 alone, for `window` more latency. `compute` then sends a
    /// batch's tasks in their record order, each once the worker took the one before (tasks of
    /// [`record_compute`](Self::record_compute) are sent by their caller: send them in order).
    /// A task alone in its window is recorded alone; if the batch cannot be recorded, each of
    /// its tasks is recorded alone (its own error, if any, is its own). Tasks with
    /// [`TaskOptions`] are always recorded alone.
    ///
    /// ```no_run
    /// # async fn f(config: enigma_client::ClientConfig) -> enigma_client::Result<()> {
    /// let client = enigma_client::Client::connect(config)
    ///     .await?
    ///     .batch_records(std::time::Duration::from_millis(50));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn batch_records(mut self, window: Duration) -> Self {
        self.record_window = Some(window);
        self
    }

    /// The chain handle (signing as the account).
    #[must_use]
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Deposits `grains` into the prepaid balance that pays task fees (approving the token first).
    pub async fn deposit(&self, grains: u128) -> Result<()> {
        self.chain.deposit_balance(grains).await?;
        Ok(())
    }

    async fn select(&self, contract: &ContractAddress) -> Result<(u64, SignerAddress)> {
        let epoch = self
            .chain
            .current_epoch()
            .await?
            .ok_or_else(|| ClientError::NoWorker("no epoch has started yet".into()))?;
        let group_size = self.group_size().await?;
        let group = select_workers(
            &epoch.seed,
            contract,
            &epoch.workers,
            &epoch.stakes,
            usize::try_from(group_size).unwrap_or(1),
        );
        let worker = group.first().copied().ok_or_else(|| {
            ClientError::NoWorker(format!("epoch {} has no workers with stake", epoch.nonce))
        })?;
        Ok((epoch.first_block, worker))
    }

    /// The worker's key for the epoch, checked: signed by its enclave, which is attested.
    async fn worker_key(&self, worker: SignerAddress, epoch_block: u64) -> Result<PublicKey> {
        self.check_attestation(worker).await?;
        // A worker's key of an epoch never changes (its enclave seals it): asked for once.
        if let Some(key) =
            self.worker_keys.lock().ok().and_then(|k| k.get(&(worker, epoch_block)).copied())
        {
            return Ok(key);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer: std::result::Result<serde_json::Value, _> = self
                .http
                .request(
                    "getWorkerEncryptionKey",
                    rpc_params![serde_json::json!({"workerAddress": worker.to_string()})],
                )
                .await;
            if let Ok(a) = answer
                && a["epochBlock"].as_u64() == Some(epoch_block)
            {
                let key: PublicKey =
                    a["workerEncryptionKey"].as_str().unwrap_or_default().parse()?;
                let signature: Signature = a["workerSig"].as_str().unwrap_or_default().parse()?;
                let signer = signature.recover_address(&worker_key_digest(key.as_bytes()))?;
                if SignerAddress::from(signer) != worker {
                    return Err(ClientError::NotAttested {
                        worker,
                        reason: format!("its key is signed by {signer}, not by its enclave"),
                    });
                }
                if let Ok(mut keys) = self.worker_keys.lock() {
                    if keys.len() >= WORKER_KEYS_KEPT {
                        keys.clear();
                    }
                    keys.insert((worker, epoch_block), key);
                }
                return Ok(key);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClientError::Gateway(format!(
                    "the gateway has no key of worker {worker} for the current epoch; retry shortly"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Adds the proof that this account calls (its EIP-712 signature over the task,
    /// `enigma_types::caller`) to a task's gateway parameters, unless `options` asks for an
    /// anonymous task; returns the parameters and the caller the result must name.
    async fn sign_caller(
        &self,
        mut params: serde_json::Value,
        options: &TaskOptions,
        contract: &ContractAddress,
        nonce: u64,
        inputs: &enigma_types::InputsHash,
        value: u128,
    ) -> Result<(serde_json::Value, Address)> {
        if options.anonymous {
            return Ok((params, Address::ZERO));
        }
        let me = self.config.account.address();
        let digest = enigma_types::caller::caller_digest(
            &self.principal().await?,
            contract,
            &me,
            nonce,
            inputs,
            value,
        );
        let signature = self.config.account.sign_digest(&digest);
        params["sender"] = me.to_string().into();
        params["callerNonce"] = nonce.into();
        params["callerSignature"] = hexed(signature.as_bytes()).into();
        Ok((params, me))
    }

    /// The network's key manager (the chain's `principal`, fixed at deployment).
    async fn principal(&self) -> Result<Address> {
        let principal = self
            .principal
            .get_or_try_init(|| async {
                self.chain
                    .enigma()
                    .principal()
                    .call()
                    .await
                    .map(enigma_chain::convert::address)
                    .map_err(ChainError::from)
            })
            .await?;
        Ok(*principal)
    }

    /// Checks that the worker is registered and logged in and that the evidence it registered
    /// with verifies under the policy and binds its operator and the network's key manager. The
    /// verification is kept until the worker registers again or its evidence passes the policy's
    /// maximum age.
    async fn check_attestation(&self, worker: SignerAddress) -> Result<()> {
        let not = |reason: String| ClientError::NotAttested { worker, reason };
        let info = self
            .chain
            .worker_by_signer(worker)
            .await?
            .ok_or_else(|| not("it is not registered".into()))?;
        if info.status != WorkerStatus::LoggedIn {
            return Err(not(format!("it is {:?}", info.status)));
        }
        let now = now_secs();
        if let Some(a) = self.attested.lock().await.get(&worker)
            && a.holds(info.registered_at, now)
        {
            return Ok(());
        }
        let recorded = self
            .chain
            .worker_evidence(worker)
            .await?
            .ok_or_else(|| not("the chain has no registration event for it".into()))?;
        let principal = self.principal().await?;
        let verdict = check_worker_evidence(&recorded.evidence, &self.config.policy, worker, now)
            .map_err(&not)?;
        check_binding(&verdict, info.operator, principal).map_err(not)?;
        let expires_at = self
            .config
            .policy
            .max_age_secs
            .and_then(|max| verdict.timestamp.map(|t| t.saturating_add(max)));
        self.attested
            .lock()
            .await
            .insert(worker, Attested { registered_at: info.registered_at, expires_at });
        Ok(())
    }

    /// The chain's group size, read once (it is fixed when the Enigma contract is deployed).
    async fn group_size(&self) -> Result<u64> {
        self.group_size
            .get_or_try_init(|| async {
                enigma_chain::convert::u64_of(
                    self.chain.enigma().groupSize().call().await.map_err(ChainError::from)?,
                    "group size",
                )
                .map_err(ClientError::from)
            })
            .await
            .copied()
    }

    /// A deployed contract's code hash (read from the chain once: it never changes).
    async fn code_hash_of(&self, contract: &ContractAddress) -> Result<CodeHash> {
        if let Some(h) = self.code_hashes.lock().ok().and_then(|c| c.get(contract).copied()) {
            return Ok(h);
        }
        let on_chain = self
            .chain
            .secret_contract(contract)
            .await?
            .ok_or(ClientError::UnknownContract(*contract))?;
        if let Ok(mut c) = self.code_hashes.lock() {
            if c.len() >= CODE_HASHES_KEPT {
                c.clear();
            }
            c.insert(*contract, on_chain.code_hash);
        }
        Ok(on_chain.code_hash)
    }

    /// Refuses, before anything is recorded, a task the chain's limits would refuse.
    async fn check_limits(&self, gas_limit: u64) -> Result<()> {
        // Read each time: the owner may change the limits, and a client that refuses (or
        // records) by stale ones misleads its user.
        let limits = self.chain.task_limits().await?;
        let gas_px = self.config.gas_px;
        if gas_px < limits.min_gas_price || gas_limit > limits.max_gas_limit || gas_limit == 0 {
            return Err(ClientError::OutsideTaskLimits {
                gas_px,
                gas_limit,
                min_gas_price: limits.min_gas_price,
                max_gas_limit: limits.max_gas_limit,
            });
        }
        Ok(())
    }

    /// Where a verified result stands against the chain. The state it was computed on must be
    /// the chain's, or ahead of it (built on receipts the worker has not committed yet); one on
    /// a state the chain has moved past — a rolled-back or forked copy — is rejected, since its
    /// receipt can never land. Returns whether the chain holds this result's receipt already.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadResult`] for a result that can never land, or that the chain's final
    /// record contradicts.
    pub async fn finality(&self, m: &ResultMessage) -> Result<Finality> {
        // The contract first, then the record: a receipt landing in between shows as final.
        let on_chain =
            if m.is_deploy { None } else { self.chain.secret_contract(&m.contract).await? };
        let record = self.task_record(m.task_id).await?.ok_or_else(|| {
            ClientError::BadResult(format!("task {} has no record on chain", m.task_id))
        })?;
        if record.status.is_final() {
            return self.landed(m, record.status).await;
        }
        if m.is_deploy {
            // A deployment has no state before it.
            return Ok(Finality::Provisional);
        }
        // Failures too: the enclave sealed where the state stood, and a failure computed on a
        // state the chain has left (a host failing a task on old state) is no honest answer,
        // even though the chain takes failure receipts whatever the state.
        let on_chain = on_chain.ok_or(ClientError::UnknownContract(m.contract))?;
        m.standing(on_chain.delta_count, &on_chain.last_delta_hash)
            .map_err(ClientError::BadResult)?;
        Ok(Finality::Provisional)
    }

    /// A result whose task is final on chain is confirmed only if the chain took this very
    /// result: a refunded task, or a receipt with other hashes, means it never landed.
    async fn landed(
        &self,
        m: &ResultMessage,
        status: enigma_chain::TaskStatus,
    ) -> Result<Finality> {
        use enigma_chain::TaskStatus::{Failed, FailedEth, FailedReturn, Verified};
        let never = |why: String| {
            Err(ClientError::BadResult(format!("task {} is final on chain, but {why}", m.task_id)))
        };
        match (status, m.success) {
            (FailedReturn, _) => {
                return never("its fee was returned: no result was committed".into());
            }
            (Verified | FailedEth, false) | (Failed, true) => {
                return never(format!("the chain holds a {status:?} receipt, not this result"));
            }
            _ => {}
        }
        if m.is_deploy && m.success {
            if status == FailedEth {
                // The deployment's receipt landed; its Ethereum callback failed, so the chain
                // registered no contract.
                return Ok(Finality::Confirmed);
            }
            return match self.chain.secret_contract(&m.contract).await? {
                Some(c) if c.code_hash == m.code_hash => Ok(Finality::Confirmed),
                _ => never("the chain registered no contract of this code at its address".into()),
            };
        }
        // A node may serve the task's new status a moment before its log index has the
        // receipt event (seen under load on anvil): look again briefly before calling it absent.
        let mut found = self.receipt(m.task_id, m.contract, status).await?;
        for _ in 0..RECEIPT_LOOKUPS {
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            found = self.receipt(m.task_id, m.contract, status).await?;
        }
        match found {
            Some(r) if r.output_hash == m.output_hash && r.delta_hash == m.delta_hash => {
                Ok(Finality::Confirmed)
            }
            Some(r) => never(format!(
                "its receipt carries output hash {} and delta hash {}, this result {} and {}",
                r.output_hash, r.delta_hash, m.output_hash, m.delta_hash
            )),
            // A failed deployment's receipt, or one the node's logs no longer reach.
            None if m.is_deploy => Ok(Finality::Confirmed),
            None => never("its receipt could not be found".into()),
        }
    }

    async fn ensure_funds(&self, gas_limit: u64, value: u128) -> Result<()> {
        let need = (u128::from(gas_limit) * u128::from(self.config.gas_px)).saturating_add(value);
        let have = self.chain.prepaid_balance(self.config.account.address()).await?;
        if have < need {
            return Err(ClientError::InsufficientBalance { have, need });
        }
        Ok(())
    }

    /// Deploys `wasm`, running `constructor` with ABI-encoded `args`; returns once the contract
    /// is registered on chain.
    pub async fn deploy(
        &self,
        wasm: &[u8],
        constructor: &str,
        args: &[u8],
        gas_limit: u64,
    ) -> Result<TaskOutcome> {
        let task = self
            .record_deploy_with(wasm, constructor, args, gas_limit, &TaskOptions::default())
            .await?;
        let (id, contract) = (task.id, task.contract);
        let outcome = self.send(task).await?.result().await?;
        // A deployment is done when the chain registers the contract (the receipt lands).
        let deadline = tokio::time::Instant::now() + self.config.result_timeout;
        while self.chain.secret_contract(&contract).await?.is_none() {
            if tokio::time::Instant::now() > deadline {
                return Err(ClientError::TimedOut { task_id: id });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(outcome)
    }

    /// The first half of a deployment: like [`record_compute_with`](Self::record_compute_with),
    /// for a new contract whose address is the task id.
    pub async fn record_deploy_with(
        &self,
        wasm: &[u8],
        constructor: &str,
        args: &[u8],
        gas_limit: u64,
        options: &TaskOptions,
    ) -> Result<RecordedTask> {
        if options.value != 0 {
            return Err(ClientError::ValueWithDeploy);
        }
        self.ensure_funds(gas_limit, 0).await?;
        self.check_limits(gas_limit).await?;
        let user = self.config.account.address();
        let mut tries = Tries::new();
        loop {
            // The contract's address, hence its worker and key, follow from the task nonce: all
            // of it is fixed under this account's recording turn.
            let turn = self.recording.lock().await;
            let nonce = self.chain.task_nonce(user).await?;
            let contract = ContractAddress::from(task_id(&user, nonce));
            let (epoch, worker, key) = self.target(&contract, options).await?;
            let task_key = KeyPair::generate()?;
            let shared = task_key.derive_key(&key);
            let id = task_id(&user, nonce);
            let (f, a) = encrypt_inputs(&shared, &contract, &id, 0, constructor, args)?;
            let inputs =
                inputs_hash_deploy(&f, &a, &code_hash(wasm), task_key.public_key().as_bytes());
            let recorded = self
                .chain
                .create_deployment_task_record(inputs, gas_limit, self.config.gas_px, epoch, nonce)
                .await
                .map(|(id, _)| id);
            let recorded = self.settle_record(recorded, &id, &inputs).await;
            drop(turn);
            match recorded {
                Ok(id) => {
                    use base64::Engine as _;
                    let params = serde_json::json!({
                        "workerAddress": worker.to_string(),
                        "preCode": base64::engine::general_purpose::STANDARD.encode(wasm),
                        "encryptedArgs": hexed(&a), "encryptedFn": hexed(&f),
                        "userDHKey": hexed(task_key.public_key().as_bytes()),
                        "contractAddress": contract.to_string(),
                    });
                    let (params, caller) =
                        self.sign_caller(params, options, &contract, nonce, &inputs, 0).await?;
                    return Ok(RecordedTask {
                        id,
                        contract,
                        code_hash: code_hash(wasm),
                        is_deploy: true,
                        value: 0,
                        caller,
                        worker,
                        epoch_block: epoch,
                        inputs,
                        shared,
                        method: "deploySecretContract",
                        params,
                    });
                }
                Err((e, taken)) => tries.again(self, e, epoch, taken).await?,
            }
        }
    }

    /// The selected worker (or the one `options` names) and the key to encrypt to.
    async fn target(
        &self,
        contract: &ContractAddress,
        options: &TaskOptions,
    ) -> Result<(u64, SignerAddress, PublicKey)> {
        let (epoch, selected) = self.select(contract).await?;
        let worker = options.worker.unwrap_or(selected);
        let key = match &options.encrypt_to {
            Some(k) => *k,
            None => self.worker_key(worker, epoch).await?,
        };
        Ok((epoch, worker, key))
    }

    /// Calls `callable` (e.g. `add_millionaire(address,uint256)`) on `contract` with ABI-encoded
    /// `args`, and waits for the result: [`record_compute`](Self::record_compute), then
    /// [`send`](Self::send), then [`TaskHandle::result`].
    pub async fn compute(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
        gas_limit: u64,
    ) -> Result<TaskOutcome> {
        let Some(window) = self.record_window else {
            let task = self.record_compute(contract, callable, args, gas_limit).await?;
            return self.send(task).await?.result().await;
        };
        let call = (contract, callable.into(), args.into(), gas_limit);
        let (task, turn) = self.record_in_window(window, call).await?;
        // Sent in the batch's record order: each once the tasks before it were taken.
        if let Some(turn) = &turn {
            let mut sent = turn.batch.sent.subscribe();
            let _ = sent.wait_for(|n| *n >= turn.index).await;
        }
        let handle = self.send(task).await;
        drop(turn);
        handle?.result().await
    }

    /// The first half of a compute task: selects the worker, checks its attestation, encrypts the
    /// inputs to its key and records the task on chain (the fee is escrowed from here on). Send
    /// it with [`send`](Self::send); a task never sent can be refunded after the chain's timeout.
    pub async fn record_compute(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
        gas_limit: u64,
    ) -> Result<RecordedTask> {
        if let Some(window) = self.record_window {
            let call = (contract, callable.into(), args.into(), gas_limit);
            return Ok(self.record_in_window(window, call).await?.0);
        }
        self.record_compute_with(contract, callable, args, gas_limit, &TaskOptions::default()).await
    }

    /// Joins (or opens) the current [`WindowBatch`], waits out its window, and takes this
    /// task's place in its outcome: the task and, if it was recorded in the batch, its turn to
    /// be sent (taken from the start, so that however this ends the next task's turn comes).
    async fn record_in_window(
        &self,
        window: Duration,
        call: WindowCall,
    ) -> Result<(RecordedTask, Option<SendTurn>)> {
        let (batch, index) = {
            let mut slot =
                self.window_batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let open = slot.as_ref().and_then(|b| {
                let mut joined = b.joined.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if joined.1 || joined.0.len() >= enigma_chain::MAX_RECORD_BATCH {
                    return None;
                }
                joined.0.push(call.clone());
                Some((b.clone(), joined.0.len() - 1))
            });
            match open {
                Some(place) => place,
                None => {
                    let batch = Arc::new(WindowBatch {
                        opened: tokio::time::Instant::now(),
                        joined: std::sync::Mutex::new((vec![call.clone()], false)),
                        outcome: Mutex::new(None),
                        sent: tokio::sync::watch::Sender::new(0),
                    });
                    *slot = Some(batch.clone());
                    (batch, 0)
                }
            }
        };
        let turn = SendTurn { batch: batch.clone(), index };
        tokio::time::sleep_until(batch.opened + window).await;
        let mut outcome = batch.outcome.lock().await;
        if outcome.is_none() {
            // This task records the batch: none joins it from now on.
            if let Ok(mut slot) = self.window_batch.lock()
                && slot.as_ref().is_some_and(|b| Arc::ptr_eq(b, &batch))
            {
                *slot = None;
            }
            let calls = {
                let mut joined =
                    batch.joined.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                joined.1 = true;
                joined.0.clone()
            };
            let recorded = if let [(contract, callable, args, gas_limit)] = calls.as_slice() {
                let options = TaskOptions::default();
                self.record_compute_with(*contract, callable, args, *gas_limit, &options)
                    .await
                    .map(|t| vec![Some(t)])
            } else {
                let view: Vec<(ContractAddress, &str, &[u8], u64)> =
                    calls.iter().map(|(c, f, a, g)| (*c, f.as_str(), a.as_slice(), *g)).collect();
                self.record_several(&view, true).await.map(|ts| ts.into_iter().map(Some).collect())
            };
            *outcome = Some(recorded.map_err(|e| e.to_string()));
        }
        match outcome.as_mut() {
            Some(Ok(tasks)) => {
                let task = tasks.get_mut(index).and_then(Option::take).ok_or_else(|| {
                    ClientError::BadInput(
                        "a task's place in its record batch was taken twice".into(),
                    )
                })?;
                drop(outcome);
                Ok((task, Some(turn)))
            }
            // Not recorded: each of its tasks alone, with its own outcome.
            _ => {
                drop(outcome);
                // Its place in the batch's sending order goes too.
                drop(turn);
                let (contract, callable, args, gas_limit) = call;
                let options = TaskOptions::default();
                let task = self
                    .record_compute_with(contract, &callable, &args, gas_limit, &options)
                    .await?;
                Ok((task, None))
            }
        }
    }

    /// [`record_compute`](Self::record_compute) with [`TaskOptions`].
    pub async fn record_compute_with(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
        gas_limit: u64,
        options: &TaskOptions,
    ) -> Result<RecordedTask> {
        let code_hash = self.code_hash_of(&contract).await?;
        self.ensure_funds(gas_limit, options.value).await?;
        self.check_limits(gas_limit).await?;
        let user = self.config.account.address();
        let mut tries = Tries::new();
        loop {
            let (epoch, worker, key) = self.target(&contract, options).await?;
            let task_key = KeyPair::generate()?;
            let shared = task_key.derive_key(&key);
            // The task id is fixed before the record (the chain checks the nonce), so the inputs
            // are sealed as this task's fields: they open as nothing else. One task of this
            // account at a time reads the nonce and records.
            let turn = self.recording.lock().await;
            let nonce = self.chain.task_nonce(user).await?;
            let id = task_id(&user, nonce);
            let (f, a) = encrypt_inputs(&shared, &contract, &id, options.value, callable, args)?;
            let inputs = inputs_hash_compute(&f, &a, &contract, task_key.public_key().as_bytes());
            let recorded = self
                .chain
                .create_task_record(
                    contract,
                    inputs,
                    gas_limit,
                    self.config.gas_px,
                    epoch,
                    nonce,
                    options.value,
                )
                .await
                .map(|(id, _)| id);
            let recorded = self.settle_record(recorded, &id, &inputs).await;
            drop(turn);
            match recorded {
                Ok(id) => {
                    let params = task_params(&id, &worker, &f, &a, &contract, &task_key);
                    let (params, caller) = self
                        .sign_caller(params, options, &contract, nonce, &inputs, options.value)
                        .await?;
                    return Ok(RecordedTask {
                        id,
                        contract,
                        code_hash,
                        is_deploy: false,
                        value: options.value,
                        caller,
                        worker,
                        epoch_block: epoch,
                        inputs,
                        shared,
                        method: "sendTaskInput",
                        params,
                    });
                }
                Err((e, taken)) => tries.again(self, e, epoch, taken).await?,
            }
        }
    }

    /// Records several compute tasks in **one** transaction (the chain's `createTaskRecords`),
    /// in the order given, with consecutive task ids: each `(contract, callable, args, gas
    /// limit)` is targeted, checked, encrypted and signed as [`record_compute`](Self::record_compute)
    /// does, and the fees of all are escrowed together. Tasks of the same contract run in the
    /// order given. Send them with [`send`](Self::send) in that order (a send returns once the
    /// worker took the task); sending many at once does worse under load today (BENCHMARKS.md).
    /// A record costs about two thirds of the gas per task in batches of 16 (BENCHMARKS.md);
    /// [`record_batch`](Self::record_batch) costs a tenth.
    ///
    /// # Errors
    ///
    /// As [`record_compute`](Self::record_compute); an empty list is
    /// [`ClientError::BadInput`]. Nothing is recorded unless all are.
    pub async fn record_many(
        &self,
        calls: &[(ContractAddress, &str, &[u8], u64)],
    ) -> Result<Vec<RecordedTask>> {
        self.record_several(calls, false).await
    }

    /// As [`record_many`](Self::record_many), but as a **record batch** (the chain's
    /// `createTaskBatch`): the chain keeps one Merkle root for all the tasks instead of a record
    /// each, and each receipt proves its task against it. A task costs about 12,400 gas to
    /// record in a batch of 16 and 7,700 in one of 64, against 77,000 with `record_many` and
    /// 119,000 alone (BENCHMARKS.md). Workers find a batch task's record only through its batch,
    /// which they learn from the chain's event, and this client finds it because it recorded it;
    /// a client of the same account started again finds it by reading the account's batches
    /// (the last 200,000 blocks), and any other process after
    /// [`Chain::load_batches`](enigma_chain::Chain::load_batches).
    ///
    /// # Errors
    ///
    /// As [`record_many`](Self::record_many); more than
    /// [`MAX_RECORD_BATCH`](enigma_chain::MAX_RECORD_BATCH) tasks is [`ClientError::BadInput`].
    pub async fn record_batch(
        &self,
        calls: &[(ContractAddress, &str, &[u8], u64)],
    ) -> Result<Vec<RecordedTask>> {
        self.record_several(calls, true).await
    }

    async fn record_several(
        &self,
        calls: &[(ContractAddress, &str, &[u8], u64)],
        as_batch: bool,
    ) -> Result<Vec<RecordedTask>> {
        if calls.is_empty() {
            return Err(ClientError::BadInput("record_many needs at least one task".into()));
        }
        if as_batch && calls.len() > enigma_chain::MAX_RECORD_BATCH {
            return Err(ClientError::BadInput(format!(
                "at most {} tasks are recorded at once; {} given (record them in parts)",
                enigma_chain::MAX_RECORD_BATCH,
                calls.len()
            )));
        }
        let options = TaskOptions::default();
        let mut code_hashes = Vec::with_capacity(calls.len());
        for (contract, _, _, gas_limit) in calls {
            code_hashes.push(self.code_hash_of(contract).await?);
            self.check_limits(*gas_limit).await?;
        }
        let total_gas =
            calls.iter().map(|c| c.3).try_fold(0u64, u64::checked_add).ok_or_else(|| {
                ClientError::BadInput("the tasks' gas limits add up past 2^64".into())
            })?;
        self.ensure_funds(total_gas, 0).await?;
        let user = self.config.account.address();
        let mut tries = Tries::new();
        let mut turned = 0;
        loop {
            // Every task's target in one epoch (the record names one).
            let mut targets = Vec::with_capacity(calls.len());
            for (contract, ..) in calls {
                targets.push(self.target(contract, &options).await?);
            }
            let epoch = targets[0].0;
            if targets.iter().any(|t| t.0 != epoch) {
                // The epoch turned while targeting: target again, a few times (a chain that
                // keeps answering with other epochs does not hold the client).
                turned += 1;
                if turned > MAX_EPOCH_RETARGETS {
                    return Err(ClientError::Chain(ChainError::Rpc(format!(
                        "the chain's epoch changed {turned} times while the tasks were targeted; \
                         try again"
                    ))));
                }
                continue;
            }
            let turn = self.recording.lock().await;
            let nonce = self.chain.task_nonce(user).await?;
            let mut sealed = Vec::with_capacity(calls.len());
            for (i, ((contract, callable, args, _), (_, _, key))) in
                calls.iter().zip(&targets).enumerate()
            {
                let task_key = KeyPair::generate()?;
                let shared = task_key.derive_key(key);
                let id = task_id(&user, nonce + i as u64);
                let (f, a) = encrypt_inputs(&shared, contract, &id, 0, callable, args)?;
                let inputs =
                    inputs_hash_compute(&f, &a, contract, task_key.public_key().as_bytes());
                sealed.push((id, task_key, shared, f, a, inputs));
            }
            let records: Vec<_> = calls
                .iter()
                .zip(&sealed)
                .map(|((contract, _, _, gas_limit), s)| (*contract, s.5, *gas_limit, 0u128))
                .collect();
            let sent_from = self.chain.block_number().await?;
            let sent = if as_batch {
                self.chain
                    .create_task_batch(&records, self.config.gas_px, epoch, nonce)
                    .await
                    .map(|_| sealed[0].0)
            } else {
                self.chain
                    .create_task_records(&records, self.config.gas_px, epoch, nonce)
                    .await
                    .map(|_| sealed[0].0)
            };
            if sent.is_err() && as_batch {
                // A batch that landed although its answer was lost is known by its event only.
                if let Ok(head) = self.chain.block_number().await {
                    let _ = self.chain.load_batches(sent_from, head).await;
                }
            }
            // One transaction: the first record standing means all of them do.
            let recorded = self.settle_record(sent, &sealed[0].0, &sealed[0].5).await;
            drop(turn);
            match recorded {
                Ok(_) => {
                    let mut tasks = Vec::with_capacity(calls.len());
                    for (
                        i,
                        (((contract, ..), (_, worker, _)), (id, task_key, shared, f, a, inputs)),
                    ) in calls.iter().zip(&targets).zip(sealed).enumerate()
                    {
                        let params = task_params(&id, worker, &f, &a, contract, &task_key);
                        let (params, caller) = self
                            .sign_caller(params, &options, contract, nonce + i as u64, &inputs, 0)
                            .await?;
                        tasks.push(RecordedTask {
                            id,
                            contract: *contract,
                            code_hash: code_hashes[i],
                            is_deploy: false,
                            value: 0,
                            caller,
                            worker: *worker,
                            epoch_block: epoch,
                            inputs,
                            shared,
                            method: "sendTaskInput",
                            params,
                        });
                    }
                    return Ok(tasks);
                }
                Err((e, taken)) => tries.again(self, e, epoch, taken).await?,
            }
        }
    }

    /// Sends a recorded task to the gateway; the handle awaits its result.
    pub async fn send(&self, task: RecordedTask) -> Result<TaskHandle<'_>> {
        self.start(task).await
    }

    /// Asks `contract`'s `callable` with ABI-encoded `args` as a read-only query: nothing is
    /// recorded or paid, the answer comes from the selected worker's enclave, encrypted to this
    /// client and signed over the state it ran on (the chain's delta tip). The contract knows
    /// who asks (this account, by an EIP-712 signature inside the encrypted query).
    pub async fn query(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
    ) -> Result<QueryOutcome> {
        self.query_with(contract, callable, args, &QueryOptions::default()).await
    }

    /// [`query`](Self::query) with [`QueryOptions`].
    pub async fn query_with(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
        options: &QueryOptions,
    ) -> Result<QueryOutcome> {
        let first = self.query_once(contract, callable, args, options, true).await;
        match first {
            // A cached target may have stopped serving the contract (a new epoch): look it up
            // again, once.
            Err(ClientError::Gateway(_) | ClientError::NotExecuted { .. }) => {
                if let Ok(mut t) = self.query_targets.lock() {
                    t.remove(&contract);
                }
                self.query_once(contract, callable, args, options, false).await
            }
            other => other,
        }
    }

    /// Signs a query permit with this account: queries of `contracts` until `expiry` (Unix
    /// seconds) may carry it instead of a signature each (a dApp asks the wallet once). Whoever
    /// holds it can ask these contracts as this account until it expires: keep it private.
    pub async fn sign_permit(
        &self,
        name: &str,
        contracts: &[ContractAddress],
        expiry: u64,
    ) -> Result<enigma_types::caller::Permit> {
        use enigma_types::caller::{MAX_PERMIT_CONTRACTS, MAX_PERMIT_NAME};
        if contracts.is_empty() || contracts.len() > MAX_PERMIT_CONTRACTS {
            return Err(ClientError::BadPermit(format!(
                "a permit names 1 to {MAX_PERMIT_CONTRACTS} contracts, not {}",
                contracts.len()
            )));
        }
        if name.len() > MAX_PERMIT_NAME {
            return Err(ClientError::BadPermit(format!(
                "a permit's name is at most {MAX_PERMIT_NAME} bytes, not {}",
                name.len()
            )));
        }
        let digest =
            enigma_types::caller::permit_digest(&self.principal().await?, name, contracts, expiry);
        Ok(enigma_types::caller::Permit {
            name: name.to_string(),
            contracts: contracts.to_vec(),
            expiry,
            signature: self.config.account.sign_digest(&digest).as_bytes().to_vec(),
        })
    }

    /// Revokes this account's permits named `name` for `contract` before they expire: a signed
    /// task (`enigma_types::caller::REVOKE_PERMIT`, recorded and paid like any) after which the
    /// contract's enclave refuses them on its new state and every later one. A permit names
    /// several contracts: revoke it at each.
    pub async fn revoke_permit(
        &self,
        contract: ContractAddress,
        name: &str,
    ) -> Result<TaskOutcome> {
        use enigma_types::caller::{MAX_PERMIT_NAME, REVOKE_PERMIT};
        if name.len() > MAX_PERMIT_NAME {
            return Err(ClientError::BadPermit(format!(
                "a permit's name is at most {MAX_PERMIT_NAME} bytes, not {}",
                name.len()
            )));
        }
        let args = alloy::sol_types::SolValue::abi_encode_params(&(name.to_string(),));
        self.compute(contract, REVOKE_PERMIT, &args, REVOKE_PERMIT_GAS).await
    }

    /// The account that signed `permit` for this network.
    async fn permit_signer(&self, permit: &enigma_types::caller::Permit) -> Result<Address> {
        let digest = enigma_types::caller::permit_digest(
            &self.principal().await?,
            &permit.name,
            &permit.contracts,
            permit.expiry,
        );
        let seen = enigma_types::keccak256([&digest[..], &permit.signature].concat());
        if let Some(signer) = self.permit_signers.lock().ok().and_then(|s| s.get(&seen).copied()) {
            return Ok(signer);
        }
        let signer = Signature::from_bytes(&permit.signature)?.recover_address(&digest)?;
        if let Ok(mut s) = self.permit_signers.lock() {
            if s.len() >= QUERY_KEYS_KEPT {
                s.clear();
            }
            s.insert(seen, signer);
        }
        Ok(signer)
    }

    /// This client's query key for `worker_key` (its public half and the key agreed with the
    /// worker's enclave): the one from the last [`QUERY_KEY_TTL`], or a new one.
    fn query_key(
        &self,
        worker_key: &PublicKey,
        contract: &ContractAddress,
        anonymous: bool,
    ) -> Result<(PublicKey, Arc<enigma_crypto::SymmetricKey>)> {
        let slot = (*worker_key.as_bytes(), *contract);
        if !anonymous
            && let Some((public, shared, at)) =
                self.query_keys.lock().ok().and_then(|k| k.get(&slot).cloned())
            && at.elapsed() < QUERY_KEY_TTL
        {
            return Ok((public, shared));
        }
        let pair = KeyPair::generate()?;
        let (public, shared) = (*pair.public_key(), Arc::new(pair.derive_key(worker_key)));
        if anonymous {
            // Its key would link it to this client's other queries.
            return Ok((public, shared));
        }
        if let Ok(mut k) = self.query_keys.lock() {
            if k.len() >= QUERY_KEYS_KEPT {
                k.retain(|_, (_, _, at)| at.elapsed() < QUERY_KEY_TTL);
                if k.len() >= QUERY_KEYS_KEPT {
                    k.clear();
                }
            }
            k.insert(slot, (public, shared.clone(), Instant::now()));
        }
        Ok((public, shared))
    }

    async fn query_target(
        &self,
        contract: &ContractAddress,
        options: &QueryOptions,
        cached: bool,
    ) -> Result<(u64, SignerAddress, PublicKey)> {
        if cached
            && options.worker.is_none()
            && let Some((epoch, worker, key, at)) =
                self.query_targets.lock().ok().and_then(|t| t.get(contract).copied())
            && at.elapsed() < QUERY_TARGET_TTL
        {
            return Ok((epoch, worker, key));
        }
        let targeting = TaskOptions { worker: options.worker, ..TaskOptions::default() };
        let (epoch, worker, key) = self.target(contract, &targeting).await?;
        if options.worker.is_none()
            && let Ok(mut t) = self.query_targets.lock()
        {
            if t.len() > 1024 {
                t.clear();
            }
            t.insert(*contract, (epoch, worker, key, Instant::now()));
        }
        Ok((epoch, worker, key))
    }

    async fn query_once(
        &self,
        contract: ContractAddress,
        callable: &str,
        args: &[u8],
        options: &QueryOptions,
        cached: bool,
    ) -> Result<QueryOutcome> {
        let at_request = self
            .chain
            .secret_contract(&contract)
            .await?
            .ok_or(ClientError::UnknownContract(contract))?;
        let (epoch, worker, key) = self.query_target(&contract, options, cached).await?;
        let (query_public, shared) = self.query_key(&key, &contract, options.anonymous)?;
        let mut query_id = [0u8; 32];
        enigma_crypto::random_bytes(&mut query_id)?;
        let as_task = enigma_types::messages::query_task_id(&query_id);
        let (f, a) = encrypt_inputs(&shared, &contract, &as_task, 0, callable, args)?;
        let query = enigma_types::messages::query_hash(
            &contract,
            &query_id,
            &f,
            &a,
            query_public.as_bytes(),
        );
        use enigma_types::caller::QueryCaller;
        let ad = task_field_ad(&contract, &as_task, 0, TaskField::Caller);
        // The caller field is always there and always the same size: its length tells the host
        // nothing about who asks, or whether anyone does.
        let (caller, encrypted_caller) = if options.anonymous {
            (Address::ZERO, shared.encrypt_with_ad(&QueryCaller::Nobody.encode(), &ad)?)
        } else if let Some(permit) = &options.permit {
            let signer = self.permit_signer(permit).await?;
            let field = QueryCaller::Permit(permit.clone()).encode();
            (signer, shared.encrypt_with_ad(&field, &ad)?)
        } else {
            let digest =
                enigma_types::caller::query_digest(&self.principal().await?, &contract, &query);
            let signature = self.config.account.sign_digest(&digest);
            let field = QueryCaller::Signature(signature.as_bytes().to_vec()).encode();
            (self.config.account.address(), shared.encrypt_with_ad(&field, &ad)?)
        };
        let params = serde_json::json!({
            "contractAddress": contract.to_string(), "workerAddress": worker.to_string(),
            "queryId": hexed(&query_id), "epochBlock": epoch,
            "encryptedFn": hexed(&f), "encryptedArgs": hexed(&a),
            "encryptedCaller": hexed(&encrypted_caller),
            "userDHKey": hexed(query_public.as_bytes()),
            "freshness": if options.latest { "latest" } else { "confirmed" },
        });
        let view: enigma_p2p::messages::QueryAnswerView =
            self.http.request("queryContract", rpc_params![params]).await.map_err(gateway_err)?;
        let answer =
            enigma_p2p::QueryAnswerMessage::try_from(&view).map_err(ClientError::BadResult)?;
        // The answer is for this query, this contract and its code, from the selected worker's
        // enclave, told who asks.
        if answer.query_hash != query || answer.contract != contract {
            return Err(ClientError::BadResult("it answers another query".into()));
        }
        if answer.code_hash != at_request.code_hash {
            return Err(ClientError::BadResult(format!(
                "it ran code {}, but the contract's code is {}",
                answer.code_hash, at_request.code_hash
            )));
        }
        // The ciphertext is the one the signature covers (its hash is signed): not another run's
        // output under the same key, attached to an honest header.
        if enigma_types::output_hash(&answer.encrypted_output) != answer.output_hash {
            return Err(ClientError::BadResult(
                "its output is not the one its signature covers".into(),
            ));
        }
        // Its signature names the caller the contract was told: checked against this account
        // (or none, anonymous), so an answer given as anyone else does not verify.
        if answer.signer(caller) != Some(worker) {
            let asked = if options.anonymous {
                "asked anonymously".to_string()
            } else {
                format!("asked by {caller}")
            };
            return Err(ClientError::BadResult(format!(
                "it is not signed by the selected worker {worker} over this query, {asked}"
            )));
        }
        // The state it ran on: on the chain's delta chain, not behind where the chain stood
        // when the query was sent (a stale replica), or (latest) past the chain's tip.
        if answer.delta_count < at_request.delta_count {
            return Err(ClientError::BadResult(format!(
                "it ran on {} of the contract's deltas, but the chain had {} when it was asked: a stale state",
                answer.delta_count, at_request.delta_count
            )));
        }
        let at_tip = answer.delta_count == at_request.delta_count
            && answer.delta_hash == at_request.last_delta_hash;
        let chain_count = if at_tip {
            at_request.delta_count
        } else {
            self.chain
                .secret_contract(&contract)
                .await?
                .ok_or(ClientError::UnknownContract(contract))?
                .delta_count
        };
        let on_chain = answer.delta_count <= chain_count;
        if !on_chain {
            if !options.latest {
                return Err(ClientError::BadResult(format!(
                    "it ran on {} deltas, past the chain's {chain_count}, but the query asked for \
                     the chain's state",
                    answer.delta_count
                )));
            }
        } else if !at_tip {
            let tip = match answer.delta_count.checked_sub(1) {
                None => enigma_types::DeltaHash::ZERO,
                Some(last) => self
                    .chain
                    .delta_hashes(&contract, last, last + 1)
                    .await?
                    .first()
                    .copied()
                    .unwrap_or(enigma_types::DeltaHash::ZERO),
            };
            if tip != answer.delta_hash {
                return Err(ClientError::BadResult(format!(
                    "it ran on delta {} {}, which is not the chain's",
                    answer.delta_count, answer.delta_hash
                )));
            }
        }
        let ad = task_field_ad(&contract, &as_task, 0, TaskField::Output);
        let padded = shared
            .decrypt_with_ad(&answer.encrypted_output, &ad)
            .map_err(|e| ClientError::BadResult(format!("the output does not decrypt: {e}")))?;
        let output = unpad(&padded)
            .map_err(|e| ClientError::BadResult(format!("the output: {e}")))?
            .to_vec();
        if !answer.success {
            return Err(ClientError::QueryFailed {
                message: String::from_utf8_lossy(&output).into_owned(),
                gas_used: answer.gas_used,
            });
        }
        Ok(QueryOutcome {
            contract,
            output,
            worker,
            delta_count: answer.delta_count,
            delta_hash: answer.delta_hash,
            on_chain,
            gas_used: answer.gas_used,
            caller,
        })
    }

    /// A task's status on chain.
    pub async fn task_status(&self, task: TaskId) -> Result<enigma_chain::TaskStatus> {
        Ok(self.task_record(task).await?.map_or(enigma_chain::TaskStatus::Undefined, |r| r.status))
    }

    /// A task's record on chain, `None` if unknown. A task of this client's account recorded in
    /// a record batch this handle has not seen (the client started again since) is found by
    /// reading the account's batches, newest first, as far back as 200,000 blocks.
    ///
    /// # Errors
    ///
    /// [`ClientError::Chain`] if the chain cannot be read.
    pub async fn task_record(&self, task: TaskId) -> Result<Option<enigma_chain::TaskRecord>> {
        if let Some(r) = self.chain.task(&task).await? {
            return Ok(Some(r));
        }
        let Some(me) = self.chain.account() else { return Ok(None) };
        // The search is a courtesy to a client started again: a node that refuses it (a range
        // or result cap) leaves the id unknown, as it was before, rather than failing the call.
        match self.read_own_batches(me, &task).await {
            Ok(true) => Ok(self.chain.task(&task).await?),
            Ok(false) => Ok(None),
            Err(e) => {
                tracing::warn!(%task, error = %e, "reading this account's record batches failed");
                Ok(None)
            }
        }
    }

    /// Reads this account's record batches into the chain handle until `task` is known:
    /// first the blocks since the last such read (all of them), then older ones, newest first,
    /// down to [`OWN_BATCH_SEARCH_BLOCKS`] below the head. Blocks read once are not read again,
    /// so an id that stays unknown (a typo, a record its block's replacement dropped) costs
    /// only the blocks that came since. Returns whether the task became known.
    async fn read_own_batches(&self, me: Address, task: &TaskId) -> Result<bool> {
        let head = self.chain.block_number().await?;
        let floor = head.saturating_sub(OWN_BATCH_SEARCH_BLOCKS);
        let read = self.own_batches_read.lock().ok().and_then(|r| *r);
        // Nothing read yet, or only blocks now below the floor: start from the head.
        let (mut low, mut high) = read.filter(|(_, h)| *h >= floor).unwrap_or((head + 1, head));
        let store = |low: u64, high: u64| {
            if let Ok(mut r) = self.own_batches_read.lock() {
                *r = Some((low, high));
            }
        };
        let known = |c: &Self| c.chain.proven_task(task).is_some();
        if high < head {
            self.chain.load_batches_of(me, high + 1, head).await?;
            high = head;
            store(low.min(high), high);
            if known(self) {
                return Ok(true);
            }
        }
        while low > floor {
            let from = low.saturating_sub(OWN_BATCH_WINDOW).max(floor);
            self.chain.load_batches_of(me, from, low - 1).await?;
            low = from;
            store(low, high);
            if known(self) {
                return Ok(true);
            }
        }
        Ok(known(self))
    }

    /// A task's signed result as the gateway holds it (status, hashes, gas used and the output
    /// encrypted to the key of the call that sent it), `None` if it has none. Its signature is
    /// checked against the worker the task's epoch selected for its contract.
    pub async fn task_result(&self, task: TaskId) -> Result<Option<ResultMessage>> {
        let view: Option<ResultView> = self
            .http
            .request("getTaskResult", rpc_params![serde_json::json!({"taskId": task.to_string()})])
            .await
            .map_err(gateway_err)?;
        let Some(view) = view else { return Ok(None) };
        let message = ResultMessage::try_from(&view).map_err(ClientError::BadResult)?;
        if message.task_id != task {
            return Err(ClientError::BadResult("the gateway answered for another task".into()));
        }
        let record = self
            .task_record(task)
            .await?
            .ok_or_else(|| ClientError::BadResult(format!("task {task} has no record on chain")))?;
        let epoch = self.chain.epoch_for_block(record.first_block).await?.ok_or_else(|| {
            ClientError::BadResult(format!("no epoch starts at block {}", record.first_block))
        })?;
        let group_size = enigma_chain::convert::u64_of(
            self.chain.enigma().groupSize().call().await.map_err(ChainError::from)?,
            "group size",
        )?;
        let group = select_workers(
            &epoch.seed,
            &message.contract,
            &epoch.workers,
            &epoch.stakes,
            usize::try_from(group_size).unwrap_or(1),
        );
        match message.signer() {
            Some(signer) if group.contains(&signer) => Ok(Some(message)),
            other => Err(ClientError::BadResult(format!(
                "it is signed by {other:?}, not by a worker selected for the task ({group:?})"
            ))),
        }
    }

    /// Waits until the task is final on chain (a receipt landed, or its fee was returned) and
    /// returns its status.
    pub async fn wait_final(&self, task: TaskId) -> Result<enigma_chain::TaskStatus> {
        let deadline = tokio::time::Instant::now() + self.config.result_timeout;
        loop {
            let status = self.task_status(task).await?;
            if status.is_final() {
                return Ok(status);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClientError::TimedOut { task_id: task });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a finished task's receipt on chain and checks it against the result the client
    /// verified: the same output hash, delta hash and gas. A mismatch is
    /// [`ClientError::BadResult`]; a callback that failed on chain shows as
    /// `TaskStatus::FailedEth` in the returned receipt.
    pub async fn confirm(&self, outcome: &TaskOutcome) -> Result<Receipt> {
        let status = self.wait_final(outcome.task_id).await?;
        if status == enigma_chain::TaskStatus::FailedReturn {
            return Err(ClientError::BadResult(format!(
                "task {} was refunded: its receipt never landed on chain (the worker was cut off \
                 before committing it, and the next holder went on from the chain's state), so \
                 this result is void and the contract's state does not include it; send the task \
                 again",
                outcome.task_id
            )));
        }
        let receipt =
            self.receipt(outcome.task_id, outcome.contract, status).await?.ok_or_else(|| {
                ClientError::BadResult(format!(
                    "task {} is {status:?} on chain but no receipt event names it",
                    outcome.task_id
                ))
            })?;
        let differs = |what: &str, chain: String, result: String| {
            ClientError::BadResult(format!(
                "the chain's receipt of task {} has {what} {chain}, the result {result}",
                outcome.task_id
            ))
        };
        if receipt.output_hash != outcome.output_hash {
            return Err(differs(
                "output hash",
                receipt.output_hash.to_string(),
                outcome.output_hash.to_string(),
            ));
        }
        if receipt.delta_hash != outcome.delta_hash {
            return Err(differs(
                "delta hash",
                receipt.delta_hash.to_string(),
                outcome.delta_hash.to_string(),
            ));
        }
        if receipt.gas_used != outcome.gas_used {
            return Err(differs(
                "gas used",
                receipt.gas_used.to_string(),
                outcome.gas_used.to_string(),
            ));
        }
        Ok(receipt)
    }

    /// The receipt event of a task (single or in a batch), if the chain has one.
    async fn receipt(
        &self,
        task: TaskId,
        contract: ContractAddress,
        status: enigma_chain::TaskStatus,
    ) -> Result<Option<Receipt>> {
        use alloy::primitives::B256;
        let from = self.chain.task(&task).await?.map_or(0, |r| r.created_at);
        let base = Filter::new()
            .address(enigma_chain::convert::eth(self.chain.enigma_address()))
            .from_block(from);
        let logs = |filter: Filter| async move {
            self.chain.provider().get_logs(&filter).await.map_err(ChainError::from)
        };
        let single =
            |signature: B256| base.clone().event_signature(signature).topic1(B256::from(task.0));
        let found = |output: [u8; 32], delta: [u8; 32], gas_used: u64| {
            Some(Receipt {
                status,
                output_hash: enigma_types::OutputHash(output),
                delta_hash: enigma_types::DeltaHash(delta),
                gas_used,
            })
        };
        for log in logs(single(Enigma::ReceiptVerified::SIGNATURE_HASH)).await? {
            if let Ok(e) = log.log_decode::<Enigma::ReceiptVerified>() {
                let e = e.inner.data;
                return Ok(found(e.outputHash.0, e.deltaHash.0, e.gasUsed));
            }
        }
        for log in logs(single(Enigma::ReceiptFailed::SIGNATURE_HASH)).await? {
            if let Ok(e) = log.log_decode::<Enigma::ReceiptFailed>() {
                let e = e.inner.data;
                return Ok(found(e.outputHash.0, [0; 32], e.gasUsed));
            }
        }
        for log in logs(single(Enigma::ReceiptFailedETH::SIGNATURE_HASH)).await? {
            if let Ok(e) = log.log_decode::<Enigma::ReceiptFailedETH>() {
                let e = e.inner.data;
                return Ok(found(e.outputHash.0, e.deltaHash.0, e.gasUsed));
            }
        }
        let batches = base
            .clone()
            .event_signature(Enigma::ReceiptsVerified::SIGNATURE_HASH)
            .topic1(B256::from(contract.0));
        for log in logs(batches).await? {
            let Ok(e) = log.log_decode::<Enigma::ReceiptsVerified>() else { continue };
            let e = e.inner.data;
            if let Some(i) = e.taskIds.iter().position(|t| t.0 == task.0) {
                let (Some(output), Some(delta), Some(gas)) =
                    (e.outputHashes.get(i), e.deltaHashes.get(i), e.gasUsed.get(i))
                else {
                    continue;
                };
                return Ok(found(output.0, delta.0, *gas));
            }
        }
        Ok(None)
    }

    /// Returns the whole fee of a task nobody committed, once the chain's timeout has passed
    /// (anyone may call it; the fee goes to the task's sender's prepaid balance).
    pub async fn refund(&self, task: TaskId) -> Result<()> {
        // A batch task is refunded by its proof: its batch must be known first.
        self.task_record(task).await?;
        self.chain.return_fees(task).await?;
        Ok(())
    }

    /// Whether the current epoch is no longer the one that started at `first_block` (a task
    /// record naming it is then refused, and the task is prepared again for the new epoch).
    /// What a task record's sending came to, judged by the chain (still under the account's
    /// recording turn): an error after which the chain holds this very record (its receipt
    /// poll failed, say) is a success — recording it again would pay twice; otherwise the error,
    /// and whether another record took the task's nonce (its id holds other inputs, or the chain
    /// said `WrongTaskNonce`).
    async fn settle_record(
        &self,
        sent: std::result::Result<TaskId, ChainError>,
        id: &TaskId,
        inputs: &enigma_types::InputsHash,
    ) -> std::result::Result<TaskId, (ChainError, bool)> {
        let e = match sent {
            Ok(id) => return Ok(id),
            Err(e) => e,
        };
        match self.chain.task(id).await {
            Ok(Some(r)) if r.inputs_hash == *inputs => Ok(*id),
            Ok(Some(_)) => Err((e, true)),
            _ => {
                let raced =
                    matches!(&e, ChainError::Reverted(why) if why.contains("WrongTaskNonce"));
                Err((e, raced))
            }
        }
    }

    /// A place on one of this client's sockets to the gateway: one with room, or a new one
    /// (at most [`SOCKETS_KEPT`]; closed ones are dropped). `None`: the task asks for its
    /// result instead.
    async fn socket(&self) -> Option<SocketPlace> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut sockets = self.sockets.lock().await;
        sockets.retain(|s| s.ws.is_connected());
        for s in sockets.iter() {
            let claimed = s
                .in_use
                .fetch_update(SeqCst, SeqCst, |n| (n < SUBSCRIPTIONS_PER_SOCKET).then_some(n + 1));
            if claimed.is_ok() {
                return Some(SocketPlace(s.clone()));
            }
        }
        if sockets.len() >= SOCKETS_KEPT {
            return None;
        }
        let connecting = WsClientBuilder::default().build(&self.ws_url);
        let ws = tokio::time::timeout(SOCKET_CONNECT_WAIT, connecting).await.ok()?.ok()?;
        let socket = Arc::new(SharedSocket { ws, in_use: std::sync::atomic::AtomicUsize::new(1) });
        sockets.push(socket.clone());
        Some(SocketPlace(socket))
    }

    pub(crate) async fn epoch_turned(&self, first_block: u64) -> Result<bool> {
        Ok(self.chain.current_epoch().await?.is_some_and(|e| e.first_block != first_block))
    }

    async fn start(&self, task: RecordedTask) -> Result<TaskHandle<'_>> {
        let RecordedTask {
            id,
            contract,
            code_hash,
            is_deploy,
            value,
            caller,
            worker,
            inputs,
            shared,
            method,
            params,
            ..
        } = task;
        // Subscribe before sending, so the push cannot be missed.
        let mut ws = self.socket().await;
        let sub = match &ws {
            Some(place) => place
                .0
                .ws
                .subscribe::<ResultView, _>(
                    "subscribeTaskResult",
                    rpc_params![serde_json::json!({"taskId": id.to_string()})],
                    "unsubscribeTaskResult",
                )
                .await
                .ok(),
            None => None,
        };
        if sub.is_none() {
            ws = None; // its place goes back: the result is asked for instead
        }
        // The task is recorded and paid: one the gateway could not take or hand on now (a
        // restart, a dropped connection, a worker it does not know yet) is sent again until the
        // wait is over. A worker takes a task it already has as that same task: nothing runs
        // twice.
        let deadline = tokio::time::Instant::now() + self.config.result_timeout;
        let mut pause = Duration::from_millis(250);
        // Whether an attempt may have reached the worker without its answer reaching us.
        let mut maybe_delivered = false;
        loop {
            use jsonrpsee::core::ClientError as Rpc;
            let sent: Result<serde_json::Value, _> =
                self.http.request(method, rpc_params![params.clone()]).await;
            let again = match &sent {
                Ok(_) => break,
                // Delivered, but the worker did not answer in time: it may be running; the
                // result (or its absence) decides.
                Err(Rpc::Call(e)) if e.code() == UNANSWERED => {
                    tracing::debug!(task = %id, reason = e.message(), "the worker has not answered yet; waiting for the result");
                    break;
                }
                Err(Rpc::Call(e)) if e.code() == NOT_DELIVERED => true,
                // Over the gateway's limits for this client or in all (many tasks in flight
                // from one address): taken once some finish. A ban is not waited out.
                Err(Rpc::Call(e)) if e.code() == NOT_ADMITTED => !e.message().contains("banned"),
                // The gateway refused the request itself (too large, say): sending it again
                // changes nothing, and nothing was handed on.
                Err(Rpc::Transport(e)) if http_refusal(e.as_ref()) => false,
                Err(Rpc::Transport(_) | Rpc::RequestTimeout) => {
                    maybe_delivered = true;
                    true
                }
                // A refusal after an attempt whose fate is unknown (the gateway went before it
                // answered): that attempt may have run the task ("already final on chain"), so
                // the result decides.
                Err(Rpc::Call(e)) if maybe_delivered => {
                    tracing::debug!(task = %id, reason = e.message(), "a resent task was refused; an earlier attempt may have run it: waiting for the result");
                    break;
                }
                Err(_) => false,
            };
            match sent {
                Err(e) if again && tokio::time::Instant::now() + pause < deadline => {
                    tracing::debug!(task = %id, error = %e, "the gateway did not take the task; sending it again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                // Out of time: after an attempt whose fate is unknown the result decides.
                Err(_) if maybe_delivered => break,
                Err(e) => {
                    return Err(ClientError::NotExecuted { task_id: id, reason: e.to_string() });
                }
                Ok(_) => break,
            }
        }
        Ok(TaskHandle {
            client: self,
            id,
            contract,
            code_hash,
            is_deploy,
            value,
            caller,
            worker,
            inputs,
            shared,
            _ws: ws,
            sub,
        })
    }
}

/// A compute task's `sendTaskInput` parameters (Discovery's names), before the caller's proof.
fn task_params(
    id: &TaskId,
    worker: &SignerAddress,
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    contract: &ContractAddress,
    task_key: &KeyPair,
) -> serde_json::Value {
    serde_json::json!({
        "taskId": id.to_string(), "workerAddress": worker.to_string(),
        "encryptedFn": hexed(encrypted_fn), "encryptedArgs": hexed(encrypted_args),
        "contractAddress": contract.to_string(),
        "userDHKey": hexed(task_key.public_key().as_bytes()),
    })
}

/// Whether a transport error is the gateway's HTTP refusal of the request itself (a 4xx status,
/// or a body too large to send), as opposed to a connection that failed or dropped.
fn http_refusal(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    use jsonrpsee::http_client::transport::Error as Http;
    matches!(
        e.downcast_ref::<Http>(),
        Some(Http::Rejected { status_code: 400..=499 } | Http::RequestTooLarge)
    )
}

/// A task recorded on chain but not sent yet (see [`Client::record_compute`],
/// [`Client::record_deploy_with`]).
#[derive(Debug)]
pub struct RecordedTask {
    id: TaskId,
    contract: ContractAddress,
    code_hash: CodeHash,
    is_deploy: bool,
    value: u128,
    caller: Address,
    worker: SignerAddress,
    epoch_block: u64,
    inputs: enigma_types::InputsHash,
    shared: enigma_crypto::SymmetricKey,
    method: &'static str,
    params: serde_json::Value,
}

/// What a task carries besides its inputs, and overrides for operators and tests.
///
/// `value` is ENG (grains) for the contract, escrowed by the task record with the fee: the
/// contract sees it (`enigma_sdk::value()`), it joins the contract's balance if the task
/// succeeds and returns to the sender's prepaid balance otherwise. The amount is public on
/// chain. `worker` directs the task at a given worker and `encrypt_to` encrypts its inputs to a
/// given key: a worker that is not selected refuses the task (it is then refundable); inputs
/// under the wrong key end in a signed failure.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// ENG (grains) to send to the contract with the task (compute tasks only).
    pub value: u128,
    /// Send the task without the proof that this account calls: the contract's `sender()` is
    /// then `None` (tasks are signed by default).
    pub anonymous: bool,
    /// Send to this worker instead of the selected one.
    pub worker: Option<SignerAddress>,
    /// Encrypt to this key instead of the worker's.
    pub encrypt_to: Option<PublicKey>,
}

impl RecordedTask {
    /// The task id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The contract.
    #[must_use]
    pub fn contract(&self) -> ContractAddress {
        self.contract
    }

    /// The worker selected for it.
    #[must_use]
    pub fn worker(&self) -> SignerAddress {
        self.worker
    }

    /// The first block of the epoch its record names.
    #[must_use]
    pub fn epoch_block(&self) -> u64 {
        self.epoch_block
    }
}

/// A task sent to a gateway: await its result with [`result`](Self::result).
pub struct TaskHandle<'a> {
    client: &'a Client,
    id: TaskId,
    contract: ContractAddress,
    code_hash: CodeHash,
    is_deploy: bool,
    value: u128,
    caller: Address,
    worker: SignerAddress,
    inputs: enigma_types::InputsHash,
    shared: enigma_crypto::SymmetricKey,
    // The subscription goes before its socket's place is given back (fields drop in order).
    sub: Option<jsonrpsee::core::client::Subscription<ResultView>>,
    _ws: Option<SocketPlace>,
}

impl std::fmt::Debug for TaskHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).field("worker", &self.worker).finish()
    }
}

impl TaskHandle<'_> {
    /// The task id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Waits for the result (pushed over WebSocket; polled over HTTP if the push channel
    /// fails), checks the enclave's signature and hashes, and decrypts it.
    pub async fn result(mut self) -> Result<TaskOutcome> {
        let (id, worker, inputs) = (self.id, self.worker, self.inputs);
        let client = self.client;
        let deadline = tokio::time::Instant::now() + client.config.result_timeout;
        let view = loop {
            if let Some(s) = self.sub.as_mut() {
                match tokio::time::timeout(Duration::from_millis(500), s.next()).await {
                    Ok(Some(Ok(v))) => break v,
                    Ok(_) => self.sub = None,
                    Err(_) => {}
                }
            } else {
                // A gateway that fails to answer now (its peer connection to the worker
                // dropped, a restart) may answer in a moment: ask again until the deadline.
                let asked = client.http.request(
                    "getTaskResult",
                    rpc_params![serde_json::json!({"taskId": id.to_string()})],
                );
                let polled: Option<ResultView> = match tokio::time::timeout_at(deadline, asked)
                    .await
                    .unwrap_or_else(|_| {
                        Err(jsonrpsee::core::ClientError::Custom("the wait is over".into()))
                    }) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(task = %id, error = %e, "asking for the result failed; asking again");
                        None
                    }
                };
                if let Some(v) = polled {
                    break v;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClientError::TimedOut { task_id: id });
            }
        };
        let shared = &self.shared;
        let message = ResultMessage::try_from(&view).map_err(ClientError::BadResult)?;
        let payouts = message
            .check(&enigma_types::result::Expected {
                task_id: id,
                inputs_hash: inputs,
                contract: self.contract,
                is_deploy: self.is_deploy,
                value: self.value,
                caller: self.caller,
                code_hash: self.code_hash,
            })
            .map_err(ClientError::BadResult)?;
        // The enclave signed over the task id, the contract and the inputs: a result relabelled
        // for another task or contract does not verify.
        if message.signer() != Some(worker) {
            return Err(ClientError::BadResult(format!(
                "it is not signed by the selected worker {worker} over this task and contract"
            )));
        }
        let finality = client.finality(&message).await?;
        let ad = task_field_ad(&self.contract, &id, self.value, TaskField::Output);
        let padded = shared
            .decrypt_with_ad(&message.encrypted_output, &ad)
            .map_err(|e| ClientError::BadResult(format!("the output does not decrypt: {e}")))?;
        let output = unpad(&padded)
            .map_err(|e| ClientError::BadResult(format!("the output: {e}")))?
            .to_vec();
        if !message.success {
            return Err(ClientError::TaskFailed {
                task_id: id,
                message: String::from_utf8_lossy(&output).into_owned(),
                gas_used: message.gas_used,
            });
        }
        Ok(TaskOutcome {
            task_id: id,
            contract: message.contract,
            output,
            gas_used: message.gas_used,
            worker,
            output_hash: message.output_hash,
            delta_hash: message.delta_hash,
            value: message.value,
            payouts,
            finality,
        })
    }
}

/// Encrypts a task's callable and arguments to `shared`, as the fields of task `id` of
/// `contract` (a deploy's contract is its task id) sent with `value` grains.
fn encrypt_inputs(
    shared: &enigma_crypto::SymmetricKey,
    contract: &ContractAddress,
    id: &TaskId,
    value: u128,
    callable: &str,
    args: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    use TaskField::{Arguments, Callable};
    let f = shared
        .encrypt_with_ad(callable.as_bytes(), &task_field_ad(contract, id, value, Callable))?;
    let a = shared.encrypt_with_ad(args, &task_field_ad(contract, id, value, Arguments))?;
    Ok((f, a))
}

/// How long a task keeps trying when other processes record tasks from the same account at the
/// same moment (each took the task nonce it read).
const NONCE_RACE_WINDOW: Duration = Duration::from_secs(60);

/// A task's attempts to be recorded: again after another process took its task nonce (within
/// [`NONCE_RACE_WINDOW`]), or after the epoch turned under it (twice at most).
struct Tries {
    /// When another process first took this task's nonce.
    first_race: Option<tokio::time::Instant>,
    raced: u32,
    epoch_turns: u32,
}

/// How long a record refused for its epoch waits for the chain to show the new one.
const EPOCH_WAIT: Duration = Duration::from_secs(30);

impl Tries {
    fn new() -> Self {
        Self { first_race: None, raced: 0, epoch_turns: 0 }
    }

    /// Whether to prepare the task again after `e`, recorded for the epoch at `epoch`
    /// (`nonce_taken`: another record took the task's nonce): waits a moment and returns `Ok`
    /// if so, the error to report if not.
    async fn again(
        &mut self,
        client: &Client,
        e: ChainError,
        epoch: u64,
        nonce_taken: bool,
    ) -> Result<()> {
        if nonce_taken {
            self.raced += 1;
            let elapsed = self.first_race.get_or_insert_with(tokio::time::Instant::now).elapsed();
            if elapsed > NONCE_RACE_WINDOW {
                return Err(ClientError::AccountBusy {
                    tries: self.raced,
                    seconds: elapsed.as_secs(),
                });
            }
            // Spread out from the other processes: a growing pause with jitter.
            let jitter = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()) % 150);
            let pause = (25 * u64::from(self.raced)).min(500) + jitter;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            return Ok(());
        }
        self.epoch_turns += 1;
        if self.epoch_turns < 3 {
            // The chain refused the record for its epoch: the new epoch may still be in a block
            // being built (gas estimation saw it, reads of the latest block do not yet). Wait
            // for it, a few blocks at most.
            let refused_for_epoch =
                matches!(&e, ChainError::Reverted(t) if t.contains("WrongEpoch"));
            let deadline = tokio::time::Instant::now() + EPOCH_WAIT;
            loop {
                if client.epoch_turned(epoch).await? {
                    return Ok(());
                }
                if !refused_for_epoch || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Err(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_the_gateway_refused_over_http_is_not_sent_again_but_a_failed_connection_is() {
        use jsonrpsee::http_client::transport::Error as Http;
        let boxed = |e: Http| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) };
        assert!(http_refusal(boxed(Http::Rejected { status_code: 413 }).as_ref()));
        assert!(http_refusal(boxed(Http::RequestTooLarge).as_ref()));
        assert!(!http_refusal(boxed(Http::Rejected { status_code: 502 }).as_ref()));
        let refused: Box<dyn std::error::Error + Send + Sync> =
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!http_refusal(refused.as_ref()));
    }

    #[test]
    fn a_verified_attestation_expires_with_its_age_and_a_new_registration() {
        let a = Attested { registered_at: 10, expires_at: Some(1_000) };
        assert!(a.holds(10, 999));
        assert!(!a.holds(10, 1_000), "aged out");
        assert!(!a.holds(11, 5), "the worker registered again");
        let forever = Attested { registered_at: 10, expires_at: None };
        assert!(forever.holds(10, u64::MAX));
    }
}
