//! The worker node: follows the chain, takes tasks from the network and its gateway, executes
//! them in its enclave, persists, publishes and commits receipts.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Weak},
    time::Duration,
};

use enigma_attestation::Evidence;
use enigma_chain::{
    BatchItemTx, Chain, ChainEvent, ComputeReceiptTx, DeployReceiptTx, EpochCache, Watcher,
};
use enigma_crypto::SignedResult as _;
use enigma_crypto::{KeyPair, PublicKey, Signature};
use enigma_enclave::{
    AnnouncementInput, BatchItem, BatchRequest, CarriedEvidence, ChainPosition, ComputeTask,
    ContractKeyId, DeployTask, EnclaveError, EnclaveProxy, EncryptedDelta, EncryptedState,
    NodeSecret, QueryRequest, SimulationBackend, StateKeyResponse, TaskResult, TaskStatus,
    WorkerEnclave, WorkerInit, WorkerKey,
};
use enigma_p2p::{
    GossipMessage, Multiaddr, PeerId, QueryAnswerMessage, QueryMessage, ResultMessage, TaskRequest,
    TaskResponse, Verdict, WorkerAnnouncement, messages,
};
use enigma_store::{ContractInfo, Store};
use enigma_types::{
    Address, ContractAddress, SignerAddress, TaskId, code_hash, delta_hash, inputs_hash_compute,
    inputs_hash_deploy, messages::worker_key_digest,
};
use tokio::sync::{Mutex, RwLock, broadcast};

use crate::{
    NodeError, Result,
    core::{
        Admission, AdmissionLimits, Commit, Contracts, NotAdmitted, Pending, Queued, ReceiptKind,
        ReceiptQueue, Recent, Refusal, Source, check_limits, check_task,
    },
    km::StateKeysMessage,
    sync::Verified,
};

const IDENTITY: &str = "worker-identity";
/// A worker's announcement is signed again this often (milliseconds).
const ANNOUNCEMENT_REFRESH_MS: u64 = 30_000;
/// Announcements older than this are ignored (workers announce every second; milliseconds).
const ANNOUNCEMENT_MAX_AGE_MS: u64 = 120_000;
/// How long after a peer connects a fresh announcement goes out (its gossip subscriptions are
/// known by then, so it is among those the announcement reaches).
const NEWCOMER_DELAY: Duration = Duration::from_secs(2);
/// The least time between two announcements signed for newcomers (the regular refresh is
/// [`ANNOUNCEMENT_REFRESH_MS`]): a peer that connects and reconnects makes a worker sign and
/// gossip at most three times as often as it would anyway.
const NEWCOMER_GAP: Duration = Duration::from_secs(10);
/// The most workers whose announcements are remembered.
const MAX_KNOWN_WORKERS: usize = 10_000;
/// The most gossiped results kept for the gateway.
const MAX_CACHED_RESULTS: usize = 100_000;
const CHAIN_CURSOR: &str = "chain-cursor";
/// Blocks past the confirmation depth after which a sent receipt without a confirmed event is
/// looked up on chain.
const REORG_GRACE_BLOCKS: u64 = 2;
/// Task ids of recent records remembered (from the chain's events), and of requests that
/// named no record.
const MAX_RECENT_RECORDS: usize = 100_000;
/// How long a task id that had no record skips its first chain read.
const MISS_MEMORY_MS: u64 = 60_000;
/// How long a worker waits for the record of a task routed to it to appear (the gateway saw it
/// before routing; this covers a chain node that lags behind the gateway's).
const FORWARDED_RECORD_WAIT: Duration = Duration::from_secs(3);
/// How long a found record may take to become `confirmations` deep.
const DEPTH_WAIT: Duration = Duration::from_secs(600);
/// Gossip messages waiting to be judged; beyond it they are dropped.
const GOSSIP_QUEUE: usize = 1024;
/// Gossiped results judged at once (each waits on chain reads).
const RESULT_JUDGES: usize = 16;
/// The shortest time between two loads of epochs asked for by what peers send.
const EPOCH_REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Dials to newly announced workers at once.
const MAX_DIALS: usize = 8;
/// Addresses of one announcement dialed (one after the other, 5 s each at most).
const MAX_DIALED_ADDRESSES: usize = 4;
const SEQ: &str = "receipt-seq";

/// How a worker node runs.
#[derive(Debug)]
pub struct WorkerConfig {
    /// Where its database and sealing secret live.
    pub data_dir: PathBuf,
    /// The Ethereum JSON-RPC URL.
    pub chain_url: String,
    /// The Enigma contract.
    pub enigma: Address,
    /// The ENG token.
    pub token: Address,
    /// The operating account: holds the stake, pays for receipts.
    pub operator: KeyPair,
    /// Where the p2p service listens.
    pub p2p_listen: Multiaddr,
    /// Peers to bootstrap from.
    pub bootstrap: Vec<Multiaddr>,
    /// Where the gateway JSON-RPC listens, if this worker is a gateway.
    pub gateway_listen: Option<SocketAddr>,
    /// What the gateway allows one client (when `gateway_listen` is set).
    pub gateway_limits: crate::GatewayLimits,
    /// The key manager's JSON-RPC URL.
    pub km_url: String,
    /// The simulation attestation service (a devnet's) that attests the enclave at
    /// registration. Without it the worker can run once registered, but not register.
    pub attestation_url: Option<String>,
    /// The simulation attestation authority the enclave build trusts (a devnet's; part of the
    /// enclave's measurement). Zero trusts none, and the worker cannot verify its key manager.
    pub simulation_authority: Address,
    /// Register, stake this many grains and log in at start (if not registered yet).
    pub stake: Option<u128>,
    /// Receipts per batch.
    pub batch_size: usize,
    /// How often receipts are flushed even when a batch is not full.
    pub batch_wait: Duration,
    /// How often the chain is polled.
    pub poll_interval: Duration,
    /// How long a task waits for its record to be mined.
    pub record_wait: Duration,
    /// At an epoch change, how long a newly selected worker waits for the previous one to
    /// commit its receipts of the contract before it takes over from the chain's state.
    pub handover_wait: Duration,
    /// Tasks that may wait for contracts being synced; beyond it tasks are refused as busy.
    pub max_waiting_tasks: usize,
    /// Most deltas handed to the enclave in one call when it loads a contract's state (a
    /// state longer than that, or than [`LOAD_CHUNK_BYTES`], goes in as several calls).
    pub load_chunk_deltas: usize,
    /// How long a task waits for its contract's tasks recorded before it to arrive (the chain
    /// takes a contract's receipts in record order) with none of the contract's tasks running
    /// in turn meanwhile: each that does starts the wait again, up to six times this from the
    /// task's arrival. After it, the missing tasks are skipped (refunded).
    pub order_wait: Duration,
    /// Wall-clock budget of one contract run, a fence second to the gas limit: a run that
    /// passes it is stopped with no result (the task is refunded after the chain's timeout).
    pub task_time_budget: Duration,
    /// How long a task request waits for its task to finish before it is answered "accepted"
    /// (the result follows by subscription); below the peers' request timeout (30 s), so a
    /// gateway never reports "not executed" for a task that is running.
    pub answer_within: Duration,
    /// Blocks a chain event or task record must be under before the worker acts on it, and
    /// before it forgets a receipt it sent. `None`: 0 on a devnet chain (anvil's id 31337,
    /// which mines only on transactions), [`DEFAULT_CONFIRMATIONS`] elsewhere, where 0 is refused.
    pub confirmations: Option<u64>,
    /// How many workers keep a copy of each contract. `None` (the default): every worker keeps
    /// every contract. `Some(k)`: a worker keeps a copy of a contract only while it is among the
    /// first `k` workers the selection draws for it in the current epoch (the group comes first,
    /// and is always among them); a new holder takes the state from the previous holder or a
    /// keeper. Copies a worker stops keeping stay on its disk, no longer brought up to date.
    pub replicas: Option<u32>,
    /// A gateway node (`enigma gateway`): it serves clients and routes their tasks and queries
    /// to the selected workers, and does nothing else — no stake or registration (refused with
    /// `stake`), no epoch keys or announcements, no contract replication or provider records.
    pub gateway_only: bool,
}

/// The confirmation depth outside a devnet when none is configured.
pub const DEFAULT_CONFIRMATIONS: u64 = 2;

/// Most deltas the worker hands its enclave in one call by default (the enclave takes at most
/// `MAX_DELTAS_PER_CALL`, 100,000).
pub const LOAD_CHUNK_DELTAS: usize = 10_000;
/// Most delta bytes handed to the enclave in one call (a call may carry 64 MiB).
pub const LOAD_CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// The chain id of anvil, the devnet's chain.
pub const DEVNET_CHAIN_ID: u64 = 31337;

impl WorkerConfig {
    /// Defaults for a devnet worker.
    #[must_use]
    pub fn devnet(
        data_dir: PathBuf,
        chain_url: String,
        enigma: Address,
        token: Address,
        operator: KeyPair,
        km_url: String,
    ) -> Self {
        Self {
            data_dir,
            chain_url,
            enigma,
            token,
            operator,
            p2p_listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap_or_else(|_| Multiaddr::empty()),
            bootstrap: Vec::new(),
            gateway_listen: None,
            gateway_limits: crate::GatewayLimits::default(),
            km_url,
            attestation_url: None,
            simulation_authority: Address::ZERO,
            stake: None,
            batch_size: 16,
            batch_wait: Duration::from_secs(2),
            poll_interval: Duration::from_millis(200),
            record_wait: Duration::from_secs(10),
            handover_wait: Duration::from_secs(10),
            max_waiting_tasks: 256,
            load_chunk_deltas: LOAD_CHUNK_DELTAS,
            order_wait: Duration::from_secs(5),
            task_time_budget: Duration::from_secs(20),
            answer_within: Duration::from_secs(20),
            confirmations: None,
            replicas: None,
            gateway_only: false,
        }
    }
}

/// A task result as the gateway serves it.
pub(crate) type PublishedResult = ResultMessage;

/// Verified results for the gateway, first come first kept, the oldest evicted beyond
/// [`MAX_CACHED_RESULTS`] (the worker that ran a task also keeps its result in its store).
#[derive(Debug, Default)]
pub(crate) struct ResultCache {
    by_task: HashMap<TaskId, PublishedResult>,
    order: std::collections::VecDeque<TaskId>,
}

impl ResultCache {
    pub(crate) fn get(&self, task: &TaskId) -> Option<&PublishedResult> {
        self.by_task.get(task)
    }

    /// Keeps `r` unless a result of its task is kept already; returns whether it was new.
    fn insert_new(&mut self, r: &PublishedResult) -> bool {
        if self.by_task.contains_key(&r.task_id) {
            return false;
        }
        while self.order.len() >= MAX_CACHED_RESULTS {
            if let Some(old) = self.order.pop_front() {
                self.by_task.remove(&old);
            }
        }
        self.order.push_back(r.task_id);
        self.by_task.insert(r.task_id, r.clone());
        true
    }
}

pub(crate) struct Worker {
    pub(crate) signer: SignerAddress,
    /// The next receipt's sequence number (the order receipts go to the chain in): taken by
    /// each run as it persists, so runs of different contracts persisting at once never share
    /// one. Starts past the stored counter and every receipt still pending.
    receipt_seq: std::sync::atomic::AtomicU64,
    pub(crate) peer_id: PeerId,
    /// The enclave, called from blocking threads (a contract run must not stall the runtime).
    /// Calls may overlap: signing and key calls do not wait behind a contract run.
    enclave: Arc<EnclaveProxy<SimulationBackend>>,
    /// Contract runs (deploy, compute, loading a state in parts) in the enclave: at most
    /// [`RUNS_AT_ONCE`], first come first served. A contract's own runs take turns in its line;
    /// runs of different contracts go on at once, on the enclave's task runtimes.
    runs: tokio::sync::Semaphore,
    /// Queries being answered (at most [`MAX_QUERIES_IN_FLIGHT`]; beyond, "busy, retry").
    query_slots: Arc<tokio::sync::Semaphore>,
    /// Queries' reads of their contract's record on the chain, shared by those that arrive
    /// while one is on its way.
    contract_reads:
        crate::reads::SharedReads<ContractAddress, Option<enigma_chain::SecretContract>>,
    pub(crate) store: Store,
    pub(crate) chain: Chain,
    pub(crate) epochs: RwLock<EpochCache>,
    pub(crate) p2p: enigma_p2p::Handle,
    pub(crate) workers: RwLock<HashMap<SignerAddress, (PeerId, WorkerKey)>>,
    pub(crate) results: RwLock<ResultCache>,
    /// This worker's last signed announcement.
    announcement: Mutex<Option<WorkerAnnouncement>>,
    /// When a peer connected that has had no announcement signed since (a restarted gateway
    /// or worker, which missed the last one and would wait for the next refresh otherwise).
    newcomer: std::sync::Mutex<Option<std::time::Instant>>,
    /// When the last announcement signed for newcomers went out (at most one per
    /// [`NEWCOMER_GAP`], however many peers connect: connecting costs a peer nothing).
    greeted: std::sync::Mutex<Option<std::time::Instant>>,
    /// The newest announcement time seen per worker.
    announced_at: Mutex<HashMap<SignerAddress, u64>>,
    pub(crate) result_events: broadcast::Sender<PublishedResult>,
    receipts: Mutex<ReceiptQueue>,
    /// One committer at a time: receipts of a contract must reach the chain in order.
    committing: Mutex<()>,
    km_url: String,
    /// How long a task waits for the contract's tasks recorded before it.
    pub(crate) order_wait: Duration,
    task_time_budget: Duration,
    answer_within: Duration,
    load_chunk_deltas: usize,
    /// Blocks a chain fact must be under before the worker acts on it.
    confirmations: u64,
    /// Tasks recorded in the blocks the watcher has read: intake waits on these, not on polls.
    records: std::sync::Mutex<Recent<TaskId>>,
    /// Task ids a request named that had no record within the wait.
    misses: std::sync::Mutex<Recent<TaskId>>,
    /// The watcher's cursor (next block to read), for intake to wait on.
    chain_tick: tokio::sync::watch::Sender<u64>,
    /// Task requests from peers, per peer.
    pub(crate) admission: std::sync::Mutex<Admission>,
    /// Dials to announced workers in progress.
    dials: Arc<tokio::sync::Semaphore>,
    /// The latest epoch entered (its IO key made and announced).
    entered_epoch: Mutex<u64>,
    /// The chain's task limits as read at start: the worker holds to them too.
    task_limits: enigma_chain::TaskLimits,
    /// When epochs were last loaded from the chain on demand.
    epochs_refreshed: std::sync::Mutex<Option<std::time::Instant>>,
    /// The enclave's attestation evidence as registered: sent with each state-key request, so the
    /// key manager's enclave can verify who asks.
    evidence: RwLock<Option<Evidence>>,
    record_wait: Duration,
    pub(crate) handover_wait: Duration,
    /// A gateway node: no epochs entered, nothing replicated (`WorkerConfig::gateway_only`).
    pub(crate) gateway_only: bool,
    /// Workers keeping each contract (`WorkerConfig::replicas`; `None`: all).
    pub(crate) replicas: Option<u32>,
    /// Where each contract stands here and whose turn it is (decisions without I/O).
    pub(crate) contracts: std::sync::Mutex<Contracts>,
    /// Bumped whenever a contract's line changes: waiting tasks look again.
    pub(crate) contracts_changed: tokio::sync::watch::Sender<u64>,
    /// One catch-up with the chain and peers at a time per contract (a task's preparation, a
    /// take-over, a replication).
    pub(crate) gates: std::sync::Mutex<HashMap<ContractAddress, Arc<Mutex<()>>>>,
    pub(crate) verified: Verified,
    pub(crate) spawned: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Contracts whose chain moved, to replicate (those this worker is not selected for).
    pub(crate) dirty: std::sync::Mutex<std::collections::HashSet<ContractAddress>>,
}

/// A running worker node.
#[derive(Debug)]
pub struct WorkerNode {
    /// The enclave's signer.
    pub signer: SignerAddress,
    /// The p2p identity.
    pub peer_id: PeerId,
    /// Where peers reach it (with `/p2p/<id>`).
    pub p2p_addrs: Vec<Multiaddr>,
    /// The gateway's address, if it serves one.
    pub gateway_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    gateway: Option<jsonrpsee::server::ServerHandle>,
    p2p: enigma_p2p::Handle,
    worker: Weak<Worker>,
}

impl WorkerNode {
    /// The first block of the latest epoch this worker has entered (its key for the epoch made
    /// and announced), if any.
    pub async fn entered_epoch(&self) -> Option<u64> {
        let worker = self.worker.upgrade()?;
        let entered = *worker.entered_epoch.lock().await;
        (entered > 0).then_some(entered)
    }

    /// Stops the node at once, like a crash that loses no committed write: work in flight is
    /// dropped, what is committed to its store stays. Returns once the store is closed, so the
    /// same data directory can be opened again.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(w) = self.worker.upgrade() {
            w.abort_spawned();
        }
        if let Some(g) = self.gateway {
            let _ = g.stop();
            g.stopped().await;
        }
        self.p2p.shutdown().await;
        for t in self.tasks {
            let _ = t.await;
        }
        for _ in 0..300 {
            match self.worker.upgrade() {
                None => return,
                Some(w) => w.abort_spawned(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!("the worker's store is still in use after stopping");
    }
}

fn seq_key(contract: &ContractAddress) -> String {
    format!("executed-seq/{contract}")
}

fn seq_next(store: &Store) -> Result<u64> {
    let n = store.meta(SEQ)?.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0);
    Ok(n)
}

struct Opened {
    store: Store,
    enclave: EnclaveProxy<SimulationBackend>,
    init: enigma_enclave::Initialized,
    chain: Chain,
}

/// Opens a worker's store and enclave (creating its identity on first use, bound to the key
/// manager whose attestation the chain recorded and to the operator).
async fn open_worker(config: &WorkerConfig) -> Result<Opened> {
    let store = Store::open(config.data_dir.join("worker.redb"))?;
    let secret = NodeSecret::load_or_create(&config.data_dir.join("sealing.secret"))
        .map_err(|e| NodeError::Io(e.to_string()))?;
    let chain =
        Chain::connect(&config.chain_url, Some(&config.operator), config.enigma, config.token)
            .await?;
    let sealed_identity = store.sealed(IDENTITY)?;
    let principal_evidence = match chain.principal_evidence().await? {
        Some(recorded) => Some(CarriedEvidence::new(&recorded.evidence)),
        None if sealed_identity.is_none() => {
            return Err(NodeError::Config(
                "the key manager has not registered its attestation on chain yet \
                 (registerPrincipal); start the key manager first"
                    .into(),
            ));
        }
        None => None,
    };
    let authority =
        (config.simulation_authority != Address::ZERO).then_some(config.simulation_authority);
    let build = enigma_enclave::EnclaveBuild::simulation(authority);
    let enclave = EnclaveProxy::new(SimulationBackend::worker_built(build, &secret, false));
    let init = WorkerEnclave::init(
        &enclave,
        WorkerInit {
            sealed_identity,
            principal_evidence,
            operator: config.operator.address(),
            time: crate::attest::now(),
        },
    )?;
    let mut batch = store.batch()?;
    batch.put_sealed(IDENTITY, &init.sealed)?;
    batch.commit()?;
    Ok(Opened { store, enclave, init, chain })
}

/// Registers the enclave's signer under the operator, with evidence from the attestation
/// service (a devnet's simulation service; hardware evidence comes from Intel's services).
async fn register(
    config: &WorkerConfig,
    chain: &Chain,
    init: &enigma_enclave::Initialized,
) -> Result<Evidence> {
    let url = config.attestation_url.as_ref().ok_or_else(|| {
        NodeError::Config(
            "registering needs attestation evidence: give the attestation service's URL \
             (--attestation-url; a devnet prints it)"
                .into(),
        )
    })?;
    let evidence = crate::attest::obtain_evidence(url, &init.report).await?;
    chain.register(init.report.signer, &evidence).await?;
    Ok(evidence)
}

/// What `enigma worker register|login|logout` do to a worker's standing on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerAction {
    /// Register the enclave's signer (if not yet) and stake this many grains (if any).
    Register {
        /// Grains to stake.
        stake: Option<u128>,
    },
    /// Take part in the next epochs.
    Login,
    /// Leave from the next epoch on (the stake can be withdrawn an epoch later).
    Logout,
}

/// Registers, logs in or logs out the worker whose data directory and operator `config` names,
/// without starting it. Returns its standing afterwards.
pub async fn manage_worker(
    config: &WorkerConfig,
    action: WorkerAction,
) -> Result<(SignerAddress, enigma_chain::WorkerInfo)> {
    let Opened { init, chain, .. } = open_worker(config).await?;
    let operator = config.operator.address();
    let registered = chain.worker(operator).await?;
    match action {
        WorkerAction::Register { stake } => {
            match &registered {
                None => {
                    register(config, &chain, &init).await?;
                }
                Some(w) if w.signer != init.report.signer => {
                    return Err(NodeError::Config(format!(
                        "operator {operator} is registered with signer {}, not this data directory's {}",
                        w.signer, init.report.signer
                    )));
                }
                Some(_) => {}
            }
            if let Some(stake) = stake {
                chain.deposit_stake(stake).await?;
            }
        }
        WorkerAction::Login | WorkerAction::Logout if registered.is_none() => {
            return Err(NodeError::Config(format!(
                "operator {operator} is not registered; run `enigma worker register` first"
            )));
        }
        WorkerAction::Login => {
            chain.login().await?;
        }
        WorkerAction::Logout => {
            chain.logout().await?;
        }
    }
    let info = chain
        .worker(operator)
        .await?
        .ok_or_else(|| NodeError::Config(format!("operator {operator} is not registered")))?;
    Ok((init.report.signer, info))
}

/// Starts a worker node.
pub async fn start_worker(config: WorkerConfig) -> Result<WorkerNode> {
    if config.gateway_only && (config.stake.is_some() || config.gateway_listen.is_none()) {
        return Err(NodeError::Config(
            "a gateway node serves clients (it needs a gateway address) and never stakes".into(),
        ));
    }
    let Opened { store, enclave, init, chain } = open_worker(&config).await?;
    let signer = init.report.signer;
    let mut evidence = None;
    if let Some(stake) = config.stake
        && chain.worker(config.operator.address()).await?.is_none()
    {
        evidence = Some(register(&config, &chain, &init).await?);
        chain.deposit_stake(stake).await?;
        chain.login().await?;
        tracing::info!(%signer, stake, "registered, staked and logged in");
    }
    if evidence.is_none() {
        evidence = chain.worker_evidence(signer).await?.map(|r| r.evidence);
    }

    let chain_id = chain.chain_id().await?;
    let task_limits = chain.task_limits().await?;
    let confirmations = match config.confirmations {
        Some(0) if chain_id != DEVNET_CHAIN_ID => {
            return Err(NodeError::Config(format!(
                "a confirmation depth of 0 is only for a devnet; chain {chain_id} can replace its \
                 latest blocks, so give --confirmations 1 or more (default {DEFAULT_CONFIRMATIONS})"
            )));
        }
        Some(n) => n,
        None if chain_id == DEVNET_CHAIN_ID => 0,
        None => DEFAULT_CONFIRMATIONS,
    };

    let (p2p, mut p2p_events) = enigma_p2p::spawn(enigma_p2p::Config {
        listen: vec![config.p2p_listen.clone()],
        bootstrap: config.bootstrap.clone(),
        ..enigma_p2p::Config::default()
    })
    .await?;
    let p2p_addrs = p2p.dialable_addrs().await?;
    let epochs = EpochCache::load(&chain).await?;
    let mut queue = ReceiptQueue::new(config.batch_size);
    let mut contracts = Contracts::new(config.max_waiting_tasks);
    let mut receipt_seq = seq_next(&store)?;
    for (_, _, bytes) in store.pending_receipts()? {
        if let Ok(p) = serde_json::from_slice::<Pending>(&bytes) {
            receipt_seq = receipt_seq.max(p.seq.saturating_add(1));
            // A task that calls Ethereum holds back its contract until its receipt settles.
            if p.kind == ReceiptKind::Callback {
                contracts.await_callback(p.contract, p.task);
            }
            queue.push(p);
        }
    }
    let (result_events, _) = broadcast::channel(1024);
    let worker = Arc::new(Worker {
        signer,
        receipt_seq: std::sync::atomic::AtomicU64::new(receipt_seq),
        peer_id: p2p.peer_id(),
        enclave: Arc::new(enclave),
        runs: tokio::sync::Semaphore::new(RUNS_AT_ONCE),
        store,
        chain,
        epochs: RwLock::new(epochs),
        query_slots: Arc::new(tokio::sync::Semaphore::new(MAX_QUERIES_IN_FLIGHT)),
        contract_reads: crate::reads::SharedReads::default(),
        p2p: p2p.clone(),
        workers: RwLock::new(HashMap::new()),
        results: RwLock::new(ResultCache::default()),
        announcement: Mutex::new(None),
        newcomer: std::sync::Mutex::new(None),
        greeted: std::sync::Mutex::new(None),
        announced_at: Mutex::new(HashMap::new()),
        result_events,
        receipts: Mutex::new(queue),
        committing: Mutex::new(()),
        km_url: config.km_url.clone(),
        order_wait: config.order_wait,
        task_time_budget: config.task_time_budget,
        answer_within: config.answer_within,
        load_chunk_deltas: config.load_chunk_deltas.clamp(1, LOAD_CHUNK_DELTAS),
        confirmations,
        records: std::sync::Mutex::new(Recent::new(MAX_RECENT_RECORDS)),
        misses: std::sync::Mutex::new(Recent::new(MAX_RECENT_RECORDS)),
        chain_tick: tokio::sync::watch::Sender::new(0),
        admission: std::sync::Mutex::new(Admission::new(AdmissionLimits::PEERS)),
        dials: Arc::new(tokio::sync::Semaphore::new(MAX_DIALS)),
        entered_epoch: Mutex::new(0),
        task_limits,
        epochs_refreshed: std::sync::Mutex::new(None),
        evidence: RwLock::new(evidence),
        record_wait: config.record_wait,
        handover_wait: config.handover_wait,
        gateway_only: config.gateway_only,
        replicas: config.replicas,
        contracts: std::sync::Mutex::new(contracts),
        contracts_changed: tokio::sync::watch::Sender::new(0),
        gates: std::sync::Mutex::new(HashMap::new()),
        verified: Verified::default(),
        spawned: std::sync::Mutex::new(Vec::new()),
        dirty: std::sync::Mutex::new(std::collections::HashSet::new()),
    });
    for (contract, _) in worker.store.contracts()? {
        worker.p2p.provide(contract).await?;
    }
    let current = worker.epochs.read().await.current().map(|e| e.first_block);
    if let Some(epoch) = current.filter(|_| !worker.gateway_only) {
        worker.enter_epoch(epoch).await?;
        *worker.entered_epoch.lock().await = epoch;
        // A restarted or late-joining worker catches up on what it is selected for.
        worker.spawn(worker.clone().take_over(epoch));
    }

    let mut tasks = Vec::new();
    let w = worker.clone();
    let start_block = match w.store.meta(CHAIN_CURSOR)? {
        Some(b) => b.try_into().map(u64::from_be_bytes).unwrap_or(0),
        None => w.chain.block_number().await?,
    };
    // Record batches read before this start (or before this node joined) whose tasks may still
    // run or await their receipts: those of the last two timeouts. Their events are behind the
    // watcher's cursor, and their tasks have no record of their own to find them by.
    if start_block > 0 {
        let loaded = match w.chain.timeout_blocks().await {
            Ok(timeout) => {
                let since = start_block.saturating_sub(timeout.saturating_mul(2));
                w.chain.load_batches(since, start_block - 1).await
            }
            Err(e) => Err(e),
        };
        match loaded {
            Ok(found) => tracing::debug!(found, "record batches loaded"),
            // Its pending receipts carry their proofs; tasks of batches it did not load are
            // not found, and end in the timeout refund.
            Err(e) => tracing::warn!(error = %e, "loading the recent record batches failed"),
        }
    }
    let poll = config.poll_interval;
    tasks.push(tokio::spawn(async move {
        let mut watcher = Watcher::new(
            w.chain.provider().clone(),
            w.chain.enigma_address(),
            start_block,
            w.confirmations,
        );
        loop {
            let mut caught_up = true;
            match watcher.poll().await {
                Ok(found) => {
                    caught_up = found.caught_up;
                    if let Some(block) = found.rewound_to {
                        tracing::warn!(
                            block,
                            "blocks this worker had read were replaced; reading again from there"
                        );
                    }
                    for e in found.events {
                        if let ChainEvent::TaskBatchCreated { batch } = &e.event {
                            // Its tasks' records are found through it from now on.
                            w.chain.remember_batch(batch.clone());
                        }
                        if let ChainEvent::TaskRecordCreated { task_id, .. } = &e.event
                            && let Ok(mut records) = w.records.lock()
                        {
                            records.insert(*task_id, crate::attest::now_ms());
                        }
                        if let Err(err) = w.chain_event(e.event).await {
                            tracing::warn!(error = %err, "handling a chain event failed");
                        }
                    }
                    let next = watcher.next_block();
                    if w.confirmations > 0
                        && let Ok(head) = w.chain.block_number().await
                        && head >= next
                    {
                        // Record batches not confirmed yet: their tasks' records are found as
                        // soon as a per-task record's would be (each is checked against the
                        // chain's latest state when read, and again at depth before running).
                        let _ = w.chain.load_batches(next, head).await;
                    }
                    w.chain_tick.send_if_modified(|cursor| {
                        let moved = *cursor != next;
                        *cursor = next;
                        moved
                    });
                    let cursor = watcher.next_block().to_be_bytes();
                    if let Ok(mut b) = w.store.batch() {
                        let _ = b.put_meta(CHAIN_CURSOR, &cursor);
                        let _ = b.commit();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "polling the chain failed"),
            }
            // Behind the chain (after a restart or a jump): read the next range at once.
            if caught_up {
                tokio::time::sleep(poll).await;
            }
        }
    }));
    let (gossip_tx, mut gossip_rx) =
        tokio::sync::mpsc::channel::<(GossipMessage, enigma_p2p::GossipVerdict)>(GOSSIP_QUEUE);
    let w = worker.clone();
    tasks.push(tokio::spawn(async move {
        // Results are judged several at once: each waits on chain reads (its task's record,
        // for a batch task also its batch), and judged one after another they fell behind under
        // load, so results reached the gateway late and left the gossip cache before they
        // could be forwarded. Announcements stay in order (a newer one must not be overtaken).
        let judges = Arc::new(tokio::sync::Semaphore::new(RESULT_JUDGES));
        while let Some((message, verdict)) = gossip_rx.recv().await {
            if matches!(message, GossipMessage::Worker(_)) {
                verdict.report(w.judge(message).await);
                continue;
            }
            let Ok(judge) = judges.clone().acquire_owned().await else { break };
            let w2 = w.clone();
            w.spawn(async move {
                verdict.report(w2.judge(message).await);
                drop(judge);
            });
        }
    }));
    let w = worker.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(event) = p2p_events.recv().await {
            match event {
                enigma_p2p::Event::Task { request: TaskRequest::Query(query), reply, from } => {
                    // Admitted per peer like tasks (a peer cannot hold every query slot), and
                    // never a strike.
                    let source = Source::Peer(from);
                    let admitted = admit(&w.admission, source);
                    let w2 = w.clone();
                    w.spawn(async move {
                        let answer = match admitted {
                            Err(e) => TaskResponse::Rejected(e.to_string()),
                            Ok(()) => {
                                let answered = w2.answer_query(*query).await;
                                settle(&w2.admission, source, false);
                                match answered {
                                    Ok(a) => TaskResponse::Answer(Box::new(a)),
                                    Err(e) => TaskResponse::Rejected(e.to_string()),
                                }
                            }
                        };
                        tracing::debug!(%from, "answered a routed query");
                        reply.send(answer).await;
                    });
                }
                enigma_p2p::Event::Task { request, reply, from } => {
                    let source = Source::Peer(from);
                    let admitted = admit(&w.admission, source);
                    let w2 = w.clone();
                    w.spawn(async move {
                        let w = w2;
                        let answer = match admitted {
                            // Over a limit, not a verdict on the task: the peer may send it again.
                            Err(
                                e @ (NotAdmitted::SourceBusy { .. } | NotAdmitted::Busy { .. }),
                            ) => TaskResponse::Busy(e.to_string()),
                            Err(e) => TaskResponse::Rejected(e.to_string()),
                            Ok(()) => {
                                let slot = Arc::new(Slot::new(source));
                                let outcome = w.handle_task(request, Some(slot.clone())).await;
                                slot.settle(
                                    &w.admission,
                                    outcome.as_ref().err().is_some_and(is_strike),
                                );
                                match outcome {
                                    Ok(()) => TaskResponse::Accepted,
                                    Err(e) => TaskResponse::Rejected(e.to_string()),
                                }
                            }
                        };
                        tracing::debug!(%from, ?answer, "answered a routed task");
                        reply.send(answer).await;
                    });
                }
                enigma_p2p::Event::Sync { request, reply, .. } => {
                    let w2 = w.clone();
                    w.spawn(async move { reply.send(w2.serve_sync(request).await).await });
                }
                // Judged off this loop, through a bounded queue: a flood fills the queue and
                // is dropped (not forwarded), while tasks and syncs go on being served.
                enigma_p2p::Event::Gossip { message, verdict, .. } => {
                    let queued = gossip_tx.try_send((message, verdict));
                    if queued.is_err() {
                        tracing::debug!("gossip queue full; dropping a message");
                    }
                }
                enigma_p2p::Event::Connected(_) => {
                    if let Ok(mut n) = w.newcomer.lock() {
                        n.get_or_insert_with(std::time::Instant::now);
                    }
                }
                _ => {}
            }
        }
    }));
    let w = worker.clone();
    let wait = config.batch_wait;
    tasks.push(tokio::spawn(async move {
        let mut since_flush = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let flush = since_flush.elapsed() >= wait;
            if flush {
                since_flush = std::time::Instant::now();
            }
            if let Err(e) = w.commit_receipts(flush).await {
                tracing::warn!(error = %e, "committing receipts failed; will retry");
            }
        }
    }));
    // Replicate, every second, the contracts whose chain moved.
    let w = worker.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            w.replicate_dirty().await;
        }
    }));
    // Announce periodically so late joiners learn the key, and anew soon after a peer connects
    // (at most once every NEWCOMER_GAP, however many connect).
    let w = worker.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let current = w.epochs.read().await.current().map(|e| e.first_block);
            if let Some(epoch) = current.filter(|_| !w.gateway_only) {
                let spaced =
                    w.greeted.lock().is_ok_and(|g| g.is_none_or(|at| at.elapsed() >= NEWCOMER_GAP));
                let fresh = spaced
                    && w.newcomer.lock().is_ok_and(|mut n| {
                        let due = n.is_some_and(|at| at.elapsed() >= NEWCOMER_DELAY);
                        if due {
                            *n = None;
                        }
                        due
                    });
                if fresh && let Ok(mut g) = w.greeted.lock() {
                    *g = Some(std::time::Instant::now());
                }
                let _ = w.announce(epoch, fresh).await;
            }
        }
    }));

    let (gateway_addr, gateway) = match config.gateway_listen {
        Some(addr) => {
            let (addr, handle) =
                crate::gateway::serve(worker.clone(), addr, config.gateway_limits).await?;
            (Some(addr), Some(handle))
        }
        None => (None, None),
    };
    tracing::info!(%signer, peer = %worker.peer_id, ?gateway_addr, "worker ready");
    let weak = Arc::downgrade(&worker);
    Ok(WorkerNode {
        signer,
        peer_id: worker.peer_id,
        p2p_addrs,
        gateway_addr,
        tasks,
        gateway,
        p2p,
        worker: weak,
    })
}

/// Counts a request of `source` against the per-source limits (released with [`settle`]).
pub(crate) fn admit(
    admission: &std::sync::Mutex<Admission>,
    source: Source,
) -> std::result::Result<(), NotAdmitted> {
    admission
        .lock()
        .map_err(|_| NotAdmitted::Busy { limit: 0 })
        .and_then(|mut a| a.admit(source, crate::attest::now_ms()))
}

/// A task request's admission slot, given back once: when the request is answered, or earlier
/// when its task joins its contract's line. By then its record is on chain and its inputs hash
/// to it (a paid task), and the line (at most `max_waiting_tasks` across contracts) bounds its
/// wait: so tasks waiting for their turn do not hold a peer's slots — a gateway is one peer for
/// all its clients, and before this 32 tasks waiting behind one contract's earlier tasks kept
/// every other task of that gateway out.
pub(crate) struct Slot {
    source: Source,
    released: std::sync::atomic::AtomicBool,
}

impl Slot {
    pub(crate) fn new(source: Source) -> Self {
        Self { source, released: std::sync::atomic::AtomicBool::new(false) }
    }

    fn take(&self) -> bool {
        !self.released.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Gives the slot back before the answer (the task waits in line).
    fn release_early(&self, admission: &std::sync::Mutex<Admission>) {
        if self.take()
            && let Ok(mut a) = admission.lock()
        {
            a.release(self.source);
        }
    }

    /// Ends the request ([`settle`]) unless its slot went back early (a task in line has passed
    /// every check a strike is for).
    pub(crate) fn settle(&self, admission: &std::sync::Mutex<Admission>, strike: bool) {
        if self.take() {
            settle(admission, self.source, strike);
        }
    }
}

/// Ends an admitted request of `source`; a `strike` counts against it (enough of them ban the
/// source).
pub(crate) fn settle(admission: &std::sync::Mutex<Admission>, source: Source, strike: bool) {
    let Ok(mut a) = admission.lock() else { return };
    a.release(source);
    if strike && a.strike(source, crate::attest::now_ms()) {
        tracing::warn!(%source, "banning a source of task requests for unrecorded or altered tasks");
    }
}

/// Whether a refusal counts against the requester: a task with no record, or inputs that do
/// not hash to its record (what a flood of made-up or altered requests gets).
pub(crate) fn is_strike(e: &NodeError) -> bool {
    matches!(e, NodeError::Task(Refusal::NoRecord(_) | Refusal::InputsMismatch { .. }))
}

/// A task request's id.
fn record_task(request: &TaskRequest) -> TaskId {
    match request {
        TaskRequest::Deploy { task_id, .. } | TaskRequest::Compute { task_id, .. } => *task_id,
        TaskRequest::Query(q) => TaskId(q.query_id),
    }
}

/// A task request's id, contract, kind and the inputs hash its inputs give.
fn describe(
    request: &TaskRequest,
) -> Result<(TaskId, ContractAddress, bool, enigma_types::InputsHash)> {
    let key = |bytes: &[u8]| {
        PublicKey::from_bytes(bytes)
            .map_err(|e| NodeError::Refused(format!("the user public key: {e}")))
    };
    Ok(match request {
        TaskRequest::Query(_) => {
            return Err(NodeError::Refused("a query is answered, not run as a task".into()));
        }
        TaskRequest::Deploy {
            task_id,
            code,
            encrypted_fn,
            encrypted_args,
            user_public_key,
            ..
        } => (
            *task_id,
            ContractAddress::from(*task_id),
            true,
            inputs_hash_deploy(
                encrypted_fn,
                encrypted_args,
                &code_hash(code),
                key(user_public_key)?.as_bytes(),
            ),
        ),
        TaskRequest::Compute {
            task_id,
            contract,
            encrypted_fn,
            encrypted_args,
            user_public_key,
            ..
        } => (
            *task_id,
            *contract,
            false,
            inputs_hash_compute(
                encrypted_fn,
                encrypted_args,
                contract,
                key(user_public_key)?.as_bytes(),
            ),
        ),
    })
}

fn rebuild(mut list: Vec<Pending>) -> Commit {
    if list.len() == 1
        && let Some(p) = list.pop()
    {
        return Commit::Single(p);
    }
    Commit::Batch(list)
}

pub(crate) fn ended(task: TaskId, epoch: u64) -> NodeError {
    NodeError::Refused(format!(
        "task {task} belongs to the epoch that started at block {epoch}, which ended before it ran \
         and moved the contract to another worker; nothing was executed, and the fee returns to \
         the sender after the chain's timeout (returnFeesForTask)"
    ))
}

/// The result message a worker publishes for an enclave's task result.
#[must_use]
pub fn to_message(r: &TaskResult, is_deploy: bool) -> ResultMessage {
    ResultMessage {
        task_id: r.task_id,
        contract: r.contract,
        success: r.status == TaskStatus::Success,
        is_deploy,
        inputs_hash: r.inputs_hash,
        code_hash: r.code_hash,
        encrypted_output: r.encrypted_output.clone(),
        output_hash: r.output_hash,
        prev_delta_count: r.prev_delta_count,
        prev_delta_hash: r.prev_delta_hash,
        delta_hash: r.delta_hash,
        gas_limit: r.gas_limit,
        gas_used: r.gas_used,
        eth_address: r.eth_call.as_ref().map_or([0; 20], |c| c.address.0),
        eth_payload: r.eth_call.as_ref().map(|c| c.payload.clone()).unwrap_or_default(),
        value: r.value,
        payouts: r.payouts.clone(),
        caller: r.caller,
        signature: r.signature.as_bytes().to_vec(),
        result_signature: r.result_signature.as_bytes().to_vec(),
    }
}

impl Worker {
    async fn enter_epoch(&self, first_block: u64) -> Result<()> {
        let rotated = self.enclave.rotate_io_key(first_block)?;
        let mut b = self.store.batch()?;
        b.put_sealed(IDENTITY, &rotated.sealed_identity)?;
        b.commit()?;
        self.workers.write().await.insert(self.signer, (self.peer_id, rotated.key));
        let _ = self.announce(first_block, false).await;
        Ok(())
    }

    /// Publishes this worker's announcement, signed by its enclave over every field. It is
    /// signed again when the epoch or the addresses change, and every
    /// [`ANNOUNCEMENT_REFRESH_MS`], or `fresh` (peers ignore announcements older than
    /// [`ANNOUNCEMENT_MAX_AGE_MS`], and any not newer than the last they kept of the worker).
    async fn announce(&self, epoch: u64, fresh: bool) -> Result<()> {
        let addresses: Vec<String> =
            self.p2p.listen_addrs().await?.iter().take(16).map(ToString::to_string).collect();
        let previous = self.announcement.lock().await.clone();
        // Milliseconds, and always later than the last: a new epoch's key announced within the
        // same millisecond as the last announcement still supersedes it.
        let now = crate::attest::now_ms().max(previous.as_ref().map_or(0, |a| a.issued_at + 1));
        let cached = previous.filter(|a| {
            !fresh
                && a.epoch == epoch
                && a.addresses == addresses
                && a.issued_at + ANNOUNCEMENT_REFRESH_MS > now
        });
        let announcement = match cached {
            Some(a) => a,
            None => {
                let enclave = &self.enclave;
                let key = enclave.io_key(epoch)?;
                let signature = enclave.sign_announcement(AnnouncementInput {
                    peer_id: self.peer_id.to_bytes(),
                    addresses: addresses.clone(),
                    epoch,
                    issued_at: now,
                })?;
                let a = WorkerAnnouncement {
                    signer: self.signer,
                    peer_id: self.peer_id.to_bytes(),
                    addresses,
                    epoch,
                    io_public_key: key.public_key.as_bytes().to_vec(),
                    signature: key.signature.as_bytes().to_vec(),
                    issued_at: now,
                    announcement_signature: signature.as_bytes().to_vec(),
                };
                *self.announcement.lock().await = Some(a.clone());
                a
            }
        };
        self.p2p.publish(&GossipMessage::Worker(announcement)).await?;
        Ok(())
    }

    /// Judges a gossip message: only what checks out is kept, served and forwarded.
    async fn judge(self: &Arc<Self>, message: GossipMessage) -> Verdict {
        match message {
            GossipMessage::Worker(a) => self.judge_announcement(a).await,
            GossipMessage::Result(r) => {
                // A verified result is never replaced: a relabelled or replayed copy of another
                // result can neither displace it nor reach its subscribers.
                if self.results.read().await.get(&r.task_id).is_some() {
                    return Verdict::Ignore;
                }
                let verdict = self.verify_result(&r).await;
                if verdict != Verdict::Accept {
                    return verdict;
                }
                // Judged at once with others: a copy of the same task's result judged meanwhile
                // may have been kept first, and only the kept one is forwarded.
                if !self.results.write().await.insert_new(&r) {
                    return Verdict::Ignore;
                }
                let _ = self.result_events.send(*r);
                Verdict::Accept
            }
        }
    }

    async fn judge_announcement(self: &Arc<Self>, a: WorkerAnnouncement) -> Verdict {
        let (Ok(public_key), Ok(signature), Ok(peer)) = (
            PublicKey::from_bytes(&a.io_public_key),
            Signature::from_bytes(&a.signature),
            PeerId::from_bytes(&a.peer_id),
        ) else {
            return Verdict::Reject;
        };
        // Only announcements the named enclave signed whole (peer id, addresses, epoch, key,
        // time), with a key it signed, are kept: no peer can announce itself in another
        // worker's name.
        if !a.is_signed()
            || signature.recover_address(&worker_key_digest(public_key.as_bytes())).ok()
                != Some(a.signer.into())
        {
            return Verdict::Reject;
        }
        // Only workers of a known epoch take a place in the table (made-up signers cannot fill
        // it); stale or replayed ones are ignored: older than the newest seen for the signer,
        // or than the allowed age, or from the future.
        if !self.epochs.read().await.has_worker(&a.signer) {
            return Verdict::Ignore;
        }
        let now = crate::attest::now_ms();
        if a.issued_at.saturating_add(ANNOUNCEMENT_MAX_AGE_MS) < now
            || a.issued_at > now.saturating_add(300_000)
        {
            return Verdict::Ignore;
        }
        {
            let mut seen = self.announced_at.lock().await;
            if seen.get(&a.signer).is_some_and(|t| *t >= a.issued_at) {
                return Verdict::Ignore;
            }
            if seen.len() >= MAX_KNOWN_WORKERS && !seen.contains_key(&a.signer) {
                return Verdict::Ignore;
            }
            seen.insert(a.signer, a.issued_at);
        }
        let known = self.workers.read().await.get(&a.signer).is_some_and(|(p, _)| *p == peer);
        if !known && peer != self.peer_id {
            // Learn how to reach it directly, for routing tasks to it. Dials run on their own,
            // bounded in number and time: unreachable addresses stall nothing.
            let addrs: Vec<Multiaddr> = a
                .addresses
                .iter()
                .filter_map(|s| s.parse::<Multiaddr>().ok())
                .take(MAX_DIALED_ADDRESSES)
                .map(|addr| addr.with(enigma_p2p::Protocol::P2p(peer)))
                .collect();
            if let Ok(permit) = self.dials.clone().try_acquire_owned() {
                let p2p = self.p2p.clone();
                self.spawn(async move {
                    for addr in addrs {
                        let _ = tokio::time::timeout(Duration::from_secs(5), p2p.dial(addr)).await;
                    }
                    drop(permit);
                });
            }
        }
        self.workers
            .write()
            .await
            .insert(a.signer, (peer, WorkerKey { epoch: a.epoch, public_key, signature }));
        Verdict::Accept
    }

    /// A result is served only if it answers its task's record (inputs hash, contract, kind)
    /// and the worker its epoch selects signed it, over the task id and contract. A signer
    /// that is no known worker (what any altered copy of a signed result recovers to) is
    /// rejected before the chain is asked.
    async fn verify_result(&self, r: &ResultMessage) -> Verdict {
        // Both signatures must recover to one signer: an altered field (the ciphertext, the
        // state position, the contract) breaks one of them.
        let Some(signer) = r.signer() else { return Verdict::Reject };
        if !self.epochs.read().await.has_worker(&signer) {
            // Perhaps a worker of an epoch this node has not read yet: look (at most every
            // couple of seconds), then judge.
            let _ = self.refresh_epochs(false).await;
            if !self.epochs.read().await.has_worker(&signer) {
                return Verdict::Reject;
            }
        }
        let Ok(Some(record)) = self.chain.task_terms(&r.task_id).await else {
            return Verdict::Ignore;
        };
        let contract_ok = if r.is_deploy {
            r.contract == ContractAddress::from(r.task_id)
        } else {
            record.names(&r.contract)
        };
        // A result run with another value than the record escrowed (its host lied to its
        // enclave) is no result of this task: the chain would refuse its receipt.
        if record.inputs_hash != r.inputs_hash
            || record.is_deploy != r.is_deploy
            || record.value != r.value
            || !contract_ok
        {
            return Verdict::Reject;
        }
        if self.epochs.read().await.by_first_block(record.first_block).is_none() {
            let _ = self.refresh_epochs(true).await;
        }
        let epochs = self.epochs.read().await;
        let selected = epochs
            .by_first_block(record.first_block)
            .is_some_and(|e| epochs.group(e, &r.contract).contains(&signer));
        if selected { Verdict::Accept } else { Verdict::Reject }
    }

    /// Loads the epochs the cache lacks from the chain, at most every
    /// [`EPOCH_REFRESH_INTERVAL`] (what peers send can ask for it often), without holding the
    /// cache's lock across the chain calls.
    /// `always` skips the interval (for a task whose record names an epoch not cached: a
    /// recorded task has paid for its look-up).
    pub(crate) async fn refresh_epochs(&self, always: bool) -> Result<()> {
        {
            let Ok(mut last) = self.epochs_refreshed.lock() else { return Ok(()) };
            if !always && last.is_some_and(|t| t.elapsed() < EPOCH_REFRESH_INTERVAL) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let mut copy = self.epochs.read().await.clone();
        copy.refresh(&self.chain).await?;
        let mut live = self.epochs.write().await;
        for e in copy.iter() {
            if live.by_first_block(e.first_block).is_none() {
                live.insert(e.clone());
            }
        }
        Ok(())
    }

    async fn chain_event(self: &Arc<Self>, event: ChainEvent) -> Result<()> {
        match event {
            ChainEvent::WorkersParameterized { nonce, seed, first_block, workers, stakes } => {
                self.epochs.write().await.insert(enigma_chain::EpochInfo {
                    nonce,
                    seed,
                    first_block,
                    snapshot_block: 0,
                    workers,
                    stakes,
                });
                if self.gateway_only {
                    return Ok(()); // a gateway only needs to know the epoch
                }
                // Entering the epoch (a new IO key, announced to peers) runs beside the watcher,
                // which keeps reading the chain that task intake waits on.
                let w = self.clone();
                self.spawn(async move {
                    {
                        let mut entered = w.entered_epoch.lock().await;
                        if *entered > first_block {
                            return; // a later epoch was entered meanwhile
                        }
                        match w.enter_epoch(first_block).await {
                            Ok(()) => *entered = first_block,
                            Err(e) => tracing::warn!(error = %e, "entering the epoch failed"),
                        }
                    }
                    w.turn_epoch(first_block).await;
                    // Receipts of the epoch that ended go now.
                    if let Err(e) = w.commit_receipts(true).await {
                        tracing::warn!(error = %e, "committing receipts failed; will retry");
                    }
                    w.take_over(first_block).await;
                });
            }
            ChainEvent::ReceiptVerified { task_id, contract, .. } => {
                self.mark_dirty([contract]);
                self.forget_receipt(&task_id, Some(&contract)).await?;
                self.settle_callback(&task_id, true);
            }
            ChainEvent::SecretContractDeployed { contract, .. } => self.mark_dirty([contract]),
            ChainEvent::ReceiptFailed { task_id, contract, .. }
            | ChainEvent::ReceiptFailedEth { task_id, contract } => {
                self.forget_receipt(&task_id, Some(&contract)).await?;
                // The chain kept no state of it: a contract that ran ahead goes back to it.
                self.settle_callback(&task_id, false);
            }
            ChainEvent::TaskFeeReturned { task_id, .. } => {
                self.forget_receipt(&task_id, None).await?;
                // The chain kept no state of it: a contract that ran ahead goes back to it.
                self.settle_callback(&task_id, false);
            }
            ChainEvent::ReceiptsVerified { task_ids, contract, .. } => {
                self.mark_dirty([contract]);
                for t in task_ids {
                    self.forget_receipt(&t, Some(&contract)).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Forgets the pending receipts of `contract` that the chain has settled (verified, failed
    /// or refunded), as their events would: for a decision that cannot wait for the watcher.
    pub(crate) async fn forget_settled(&self, contract: &ContractAddress) -> Result<()> {
        for (c, task, _) in self.store.pending_receipts()? {
            if c == *contract
                && self
                    .chain
                    .task(&task)
                    .await?
                    .is_some_and(|r| r.status != enigma_chain::TaskStatus::Created)
            {
                self.forget_receipt(&task, Some(contract)).await?;
            }
        }
        Ok(())
    }

    async fn forget_receipt(
        &self,
        task: &TaskId,
        contract: Option<&ContractAddress>,
    ) -> Result<()> {
        self.receipts.lock().await.forget(task);
        // The contract from the event when it names one (a direct look-up); else a scan.
        let contract = match contract {
            Some(c) => self.store.has_pending_receipt(c, task)?.then_some(*c),
            None => self.store.pending_receipt_contract(task)?,
        };
        if let Some(c) = contract {
            let mut b = self.store.batch()?;
            b.remove_pending_receipt(&c, task)?;
            b.commit()?;
            if !self.store.any_pending_for(&c)? {
                self.contracts().receipts_settled(&c);
            }
        }
        Ok(())
    }

    /// A receipt settled on chain (`kept`: its state with it): a contract whose next tasks
    /// wait on it goes on.
    pub(crate) fn settle_callback(&self, task: &TaskId, kept: bool) {
        if self.contracts().receipt_settled(task, kept) {
            self.contracts_moved();
        }
    }

    /// Tells the contracts' lines that the epoch starting at `first_block` began: those this
    /// worker keeps are prepared again by their next task, those it leaves are handed over.
    async fn turn_epoch(&self, first_block: u64) {
        {
            let epochs = self.epochs.read().await;
            let Some(e) = epochs.by_first_block(first_block) else { return };
            self.contracts()
                .epoch_turned(first_block, |c| epochs.group(e, c).contains(&self.signer));
        }
        // Contracts left with nothing pending are handed over at once.
        let leaving = self.contracts().handing_over();
        for contract in leaving {
            if self.store.pending_for(&contract).is_ok_and(|n| n == 0) {
                self.contracts().receipts_settled(&contract);
            }
        }
        self.contracts_moved();
    }

    /// Takes a task request: runs it (in its own task, which finishes even when the requester
    /// stops waiting) and answers with its outcome, or "accepted" once it has run for
    /// `answer_within` (the result then follows by subscription). A refusal thus always means
    /// the task did not and will not run here.
    /// A peer's request carries its admission `slot`, given back once the task is in line.
    pub(crate) async fn handle_task(
        self: &Arc<Self>,
        request: TaskRequest,
        slot: Option<Arc<Slot>>,
    ) -> Result<()> {
        let w = self.clone();
        let mut running = tokio::spawn(async move { w.run_task(request, slot).await });
        if let Ok(mut v) = self.spawned.lock() {
            v.retain(|h| !h.is_finished());
            v.push(running.abort_handle());
        }
        match tokio::time::timeout(self.answer_within, &mut running).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(NodeError::Io(format!("the task stopped: {e}"))),
            Err(_) => Ok(()),
        }
    }

    /// The task's record, waiting up to `appear_within` for it to show in the chain's events
    /// (the watcher reads them; waiting costs no chain call) and, when `deep`, until it is
    /// `confirmations` blocks deep (the watcher has read its block at that depth). An id that
    /// had no record within the wait skips the first chain read for a while (a request naming
    /// it waits on the watcher only, so it is still found once it is recorded).
    pub(crate) async fn await_record(
        &self,
        task: &TaskId,
        deep: bool,
        appear_within: Duration,
    ) -> Result<Option<enigma_chain::TaskRecord>> {
        let now = crate::attest::now_ms();
        let start = tokio::time::Instant::now();
        let mut tick = self.chain_tick.subscribe();
        let missed = self
            .misses
            .lock()
            .is_ok_and(|m| m.seen_since(task, now.saturating_sub(MISS_MEMORY_MS)));
        let seen = |w: &Self| w.records.lock().is_ok_and(|r| r.seen_since(task, 0));
        let mut found = if missed && !seen(self) { None } else { self.chain.task(task).await? };
        loop {
            match &found {
                Some(r) if !deep || self.confirmations == 0 => return Ok(found),
                // The watcher has read the record's block at the confirmation depth: check the
                // record is still there (a replaced block takes it away).
                Some(r) if *tick.borrow() > r.created_at => {
                    return self.chain.task(task).await.map_err(Into::into);
                }
                _ => {}
            }
            let deadline = start + if found.is_some() { DEPTH_WAIT } else { appear_within };
            match tokio::time::timeout_at(deadline, tick.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    if found.is_none()
                        && let Ok(mut m) = self.misses.lock()
                    {
                        m.insert(*task, crate::attest::now_ms());
                    }
                    return Ok(None);
                }
            }
            if found.is_none() && seen(self) {
                found = self.chain.task(task).await?;
            }
        }
    }

    /// Checks a task request against its record and the selection of `signer` (before it is
    /// routed there, and by the worker itself). Returns the record's epoch and the record.
    pub(crate) async fn precheck(
        &self,
        request: &TaskRequest,
        signer: SignerAddress,
        deep: bool,
    ) -> Result<(u64, enigma_chain::TaskRecord)> {
        let (task_id, contract, is_deploy, computed) = describe(request)?;
        // A gateway needs the record to be there; the worker waits until it is deep enough,
        // giving it a short while to appear (a gateway forwarded it after seeing it).
        let record = if deep {
            self.await_record(&task_id, true, FORWARDED_RECORD_WAIT).await?
        } else {
            self.await_record(&task_id, false, self.record_wait).await?
        };
        if let Some(r) = &record
            && self.epochs.read().await.by_first_block(r.first_block).is_none()
        {
            self.refresh_epochs(true).await?;
        }
        let epochs = self.epochs.read().await;
        let epoch =
            check_task(task_id, contract, is_deploy, computed, record.as_ref(), &epochs, signer)?;
        Ok((epoch, record.ok_or(Refusal::NoRecord(task_id))?))
    }

    /// Validates and executes a task, persists its result and publishes it.
    async fn run_task(&self, request: TaskRequest, slot: Option<Arc<Slot>>) -> Result<()> {
        let (epoch, record) = self.precheck(&request, self.signer, true).await?;
        check_limits(record_task(&request), &record, &self.task_limits)?;
        let (task_id, contract, is_deploy, _) = describe(&request)?;
        let (encrypted_fn, encrypted_args, user_key, code, caller) = match request {
            TaskRequest::Deploy {
                code,
                encrypted_fn,
                encrypted_args,
                user_public_key,
                caller,
                ..
            } => (encrypted_fn, encrypted_args, user_public_key, Some(code), caller),
            TaskRequest::Compute {
                encrypted_fn, encrypted_args, user_public_key, caller, ..
            } => (encrypted_fn, encrypted_args, user_public_key, None, caller),
            TaskRequest::Query(_) => {
                return Err(NodeError::Refused("a query is answered, not run as a task".into()));
            }
        };
        let user_key = PublicKey::from_bytes(&user_key)
            .map_err(|e| NodeError::Refused(format!("the user public key: {e}")))?;
        let gas_limit = record.gas_limit;
        // Execution is serial per contract's delta chain, in the chain's order of its records:
        // the contract's line (`core::Contracts`) says when this task's turn is, after the copy
        // is checked against the chain and handed over by the previous holder.
        if self.store.result(&task_id)?.is_some() {
            return Ok(()); // executed already (a retry): its result is published
        }
        let queued = Queued {
            task: task_id,
            seq: if is_deploy { 0 } else { record.seq },
            deploy: is_deploy,
        };
        let joined = self.join_line(contract, queued);
        if joined.is_err() && self.store.result(&task_id)?.is_some() {
            return Ok(()); // it ran just now (a retry): its result is published
        }
        let Some(turn) = joined? else {
            // A retry of a task in line: its outcome is the first arrival's.
            return self.outcome_of_first(contract, task_id).await;
        };
        if let Some(slot) = &slot {
            slot.release_early(&self.admission);
        }
        let current = turn.wait(epoch).await?;
        if self.store.result(&task_id)?.is_some() {
            return Ok(()); // executed already (a retry): nothing runs twice
        }
        let result = if let Some(code) = code {
            let task = DeployTask {
                task_id,
                epoch,
                code: code.clone(),
                encrypted_fn,
                encrypted_args,
                user_public_key: user_key,
                gas_limit,
                caller: caller.clone(),
                time_budget_ms: self.time_budget_ms(),
            };
            let r = self.with_state_key(epoch, move |e| e.deploy(task.clone())).await?;
            self.persist(&r, epoch, true, Some(&code), 0).await?;
            let deployed = r.status == TaskStatus::Success;
            turn.ran(deployed.then_some(current), false);
            if deployed {
                self.p2p.provide(contract).await?;
            }
            r
        } else {
            // This worker's own copy may be ahead of the chain: its deployment or earlier
            // receipts can still be queued. It executes on what it holds; the receipts go to
            // the chain in execution order.
            let local = self.store.contract(&contract)?.ok_or_else(|| {
                NodeError::Refused(format!(
                    "this worker could not obtain contract {contract}'s state yet; retry shortly"
                ))
            })?;
            if let Some(c) = self.chain.secret_contract(&contract).await?
                && c.code_hash != local.code_hash
            {
                return Err(NodeError::Refused(format!(
                    "the stored code of contract {contract} differs from the chain's"
                )));
            }
            let position = ChainPosition { next_index: local.next_index, tip: local.tip };
            let task = ComputeTask {
                task_id,
                epoch,
                contract,
                code_hash: local.code_hash,
                code: None,
                position,
                state: None,
                encrypted_fn,
                encrypted_args,
                user_public_key: user_key,
                gas_limit,
                value: record.value,
                caller,
                time_budget_ms: self.time_budget_ms(),
                want_snapshot: position.next_index.is_multiple_of(64),
            };
            let r = self.run_compute(epoch, task).await?;
            self.persist(&r, epoch, false, None, queued.seq).await?;
            turn.ran(None, r.eth_call.is_some());
            r
        };
        tracing::info!(me = %self.signer, task = %task_id, epoch, current, status = ?result.status, gas = result.gas_used, "executed");
        Ok(())
    }

    /// Waits for the first arrival of a retried task to leave its contract's line: its result is
    /// then stored, or it did not run (and the retry says so, as the first was told).
    async fn outcome_of_first(&self, contract: ContractAddress, task: TaskId) -> Result<()> {
        let mut changed = self.contracts_changed.subscribe();
        loop {
            changed.borrow_and_update();
            if !self.contracts().holds(&contract, &task) {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), changed.changed()).await;
        }
        if self.store.result(&task)?.is_some() {
            return Ok(());
        }
        Err(NodeError::Refused(format!(
            "task {task} was not executed here: an earlier request for it was refused; its fee \
             returns after the chain's timeout"
        )))
    }

    async fn run_compute(&self, epoch: u64, mut task: ComputeTask) -> Result<TaskResult> {
        let id = ContractKeyId { contract: task.contract, code_hash: task.code_hash };
        let mut use_snapshot = true;
        for _ in 0..5 {
            let attempt = {
                let task = task.clone();
                self.with_state_key(epoch, move |e| e.compute(task.clone())).await
            };
            match attempt {
                Err(NodeError::Enclave(EnclaveError::CodeNotLoaded { code_hash })) => {
                    task.code = Some(self.store.code(&code_hash)?.ok_or_else(|| {
                        NodeError::Refused(format!("code {code_hash} is not stored"))
                    })?);
                }
                Err(NodeError::Enclave(EnclaveError::StateNotLoaded { have, want, .. })) => {
                    task.state = Some(
                        match self.load_in_parts(epoch, id, have, want, use_snapshot).await {
                            // A snapshot or cached state that is not on this chain: rebuild from
                            // delta 0.
                            Err(NodeError::Enclave(EnclaveError::BadState(why)))
                                if use_snapshot || have.is_some() =>
                            {
                                tracing::warn!(contract = %task.contract, why, "rebuilding state from its deltas");
                                use_snapshot = false;
                                self.load_in_parts(epoch, id, None, want, false).await?
                            }
                            loaded => loaded?,
                        },
                    );
                }
                Err(NodeError::Enclave(EnclaveError::BadState(why))) if task.state.is_some() => {
                    // A snapshot or cached state that is not on this chain: rebuild from delta 0.
                    tracing::warn!(contract = %task.contract, why, "rebuilding state from its deltas");
                    use_snapshot = false;
                    task.state =
                        Some(self.load_in_parts(epoch, id, None, task.position, false).await?);
                }
                other => return other,
            }
        }
        Err(NodeError::Refused("the enclave could not load the contract".into()))
    }

    /// What the enclave needs to stand at `want` (see [`Self::state_to_load`]), read from the
    /// store a part at a time: every part but the last goes to the enclave ahead of the call
    /// that needs it (`load_chunk_deltas` deltas or [`LOAD_CHUNK_BYTES`] each, so neither one
    /// call nor this node holds a long delta chain at once); the last is returned for that call.
    /// Each part continues the one before inside the enclave, which checks every delta.
    async fn load_in_parts(
        &self,
        epoch: u64,
        id: ContractKeyId,
        have: Option<ChainPosition>,
        want: ChainPosition,
        use_snapshot: bool,
    ) -> Result<EncryptedState> {
        let contract = id.contract;
        let (mut snapshot, mut from) = self.load_start(&contract, have, want, use_snapshot)?;
        let mut parts = 0;
        loop {
            let budget = LOAD_CHUNK_BYTES.saturating_sub(snapshot.as_ref().map_or(0, Vec::len));
            let to = want.next_index.min(from.saturating_add(self.load_chunk_deltas as u64));
            let deltas = self.store.deltas(&contract, from, to, budget)?;
            let end = from + deltas.len() as u64;
            if deltas.first().is_some_and(|(i, _)| *i != from)
                || deltas.last().is_some_and(|(i, _)| *i + 1 != end)
                || (deltas.is_empty() && from < want.next_index)
            {
                return Err(NodeError::Refused(format!(
                    "deltas {from}..{} of contract {contract} are not all stored; retry shortly",
                    want.next_index
                )));
            }
            let part = EncryptedState {
                snapshot: snapshot.take(),
                deltas: deltas
                    .into_iter()
                    .map(|(index, bytes)| EncryptedDelta { index, bytes })
                    .collect(),
            };
            if end == want.next_index {
                if parts > 0 {
                    tracing::info!(%contract, parts, "loaded a long state in parts");
                }
                return Ok(part);
            }
            let part = Arc::new(part);
            let at = self.with_state_key(epoch, move |e| e.load_state(id, (*part).clone())).await?;
            parts += 1;
            from = at.next_index;
            if from != end {
                return Err(NodeError::Refused(format!(
                    "the enclave loaded contract {contract} to delta {from}, not {end}"
                )));
            }
        }
    }

    /// What the enclave needs to stand at `want`: only the deltas after what it has cached when
    /// that is on this worker's delta chain; otherwise the latest snapshot (if any) and the deltas
    /// after it, or every delta from 0.
    fn state_to_load(
        &self,
        contract: &ContractAddress,
        have: Option<ChainPosition>,
        want: ChainPosition,
        use_snapshot: bool,
    ) -> Result<EncryptedState> {
        let (snapshot, from) = self.load_start(contract, have, want, use_snapshot)?;
        let deltas = self.store.deltas(contract, from, want.next_index, usize::MAX)?;
        if deltas.len() as u64 != want.next_index - from {
            return Err(NodeError::Refused(format!(
                "deltas {from}..{} of contract {contract} are not all stored; retry shortly",
                want.next_index
            )));
        }
        Ok(EncryptedState {
            snapshot,
            deltas: deltas
                .into_iter()
                .map(|(index, bytes)| EncryptedDelta { index, bytes })
                .collect(),
        })
    }

    /// Where loading starts: after what the enclave has cached when that is on this worker's
    /// delta chain; otherwise at the latest snapshot (if any), or at delta 0.
    fn load_start(
        &self,
        contract: &ContractAddress,
        have: Option<ChainPosition>,
        want: ChainPosition,
        use_snapshot: bool,
    ) -> Result<(Option<Vec<u8>>, u64)> {
        let on_chain = |p: &ChainPosition| -> Result<bool> {
            Ok(p.next_index <= want.next_index
                && (p.next_index == 0
                    || self
                        .store
                        .delta(contract, p.next_index - 1)?
                        .is_some_and(|d| delta_hash(&d) == p.tip)))
        };
        let mut from = match have {
            Some(h) if on_chain(&h)? => h.next_index,
            _ => 0,
        };
        let mut snapshot = None;
        if use_snapshot
            && from == 0
            && let Some((index, bytes)) = self.store.snapshot(contract)?
            && index <= want.next_index
        {
            snapshot = Some(bytes);
            from = index;
        }
        Ok((snapshot, from))
    }

    /// The lowest record sequence number of `contract` this worker may still execute: past the
    /// last it executed, and past what the chain has committed (its next receipt number `chain`).
    pub(crate) fn next_seq_after(&self, contract: &ContractAddress, chain: u64) -> Result<u64> {
        let local = self
            .store
            .meta(&seq_key(contract))?
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        Ok(local.map_or(chain, |l| chain.max(l + 1)))
    }

    /// Runs an enclave call, obtaining the state key it lacks (of the contract and the code
    /// the enclave is about to run) from the KM first if needed.
    async fn with_state_key<T: Send + 'static>(
        &self,
        epoch: u64,
        call: impl Fn(&EnclaveProxy<SimulationBackend>) -> std::result::Result<T, EnclaveError>
        + Send
        + Sync
        + 'static,
    ) -> Result<T> {
        let call = Arc::new(call);
        // Runs wait for their turn here, in arrival order, rather than as blocked threads on
        // the enclave's runtime lock (which wakes them in no order).
        let first = {
            let _turn = self.runs.acquire().await;
            let call = call.clone();
            self.in_enclave(move |e| call(e)).await?
        };
        match first {
            Err(EnclaveError::NoStateKey { contract, code_hash }) => {
                self.fetch_state_key(epoch, ContractKeyId { contract, code_hash }).await?;
                let _turn = self.runs.acquire().await;
                Ok(self.in_enclave(move |e| call(e)).await??)
            }
            other => Ok(other?),
        }
    }

    /// Runs `call` on the enclave from a blocking thread: a contract run takes as long as its
    /// gas and time budget allow, and must not hold up the async runtime meanwhile.
    async fn in_enclave<T: Send + 'static>(
        &self,
        call: impl FnOnce(&EnclaveProxy<SimulationBackend>) -> T + Send + 'static,
    ) -> Result<T> {
        let enclave = self.enclave.clone();
        tokio::task::spawn_blocking(move || call(&enclave))
            .await
            .map_err(|e| NodeError::Io(format!("an enclave call did not complete: {e}")))
    }

    fn time_budget_ms(&self) -> u64 {
        u64::try_from(self.task_time_budget.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// This worker's evidence as the chain recorded it at registration.
    async fn own_evidence(&self) -> Result<Evidence> {
        if let Some(e) = self.evidence.read().await.clone() {
            return Ok(e);
        }
        let recorded = self.chain.worker_evidence(self.signer).await?.ok_or_else(|| {
            NodeError::Refused(format!(
                "worker {} is not registered (the chain has no attestation of it); register it first",
                self.signer
            ))
        })?;
        *self.evidence.write().await = Some(recorded.evidence.clone());
        Ok(recorded.evidence)
    }

    async fn fetch_state_key(&self, epoch: u64, id: ContractKeyId) -> Result<()> {
        use jsonrpsee::core::client::ClientT;
        let evidence = self.own_evidence().await?;
        let request = self.enclave.request_state_keys(epoch, vec![id])?;
        let client = jsonrpsee::http_client::HttpClientBuilder::default()
            .build(&self.km_url)
            .map_err(|e| NodeError::Rpc(format!("key manager at {}: {e}", self.km_url)))?;
        let params = StateKeysMessage {
            request: format!("0x{}", hex::encode(&request.request)),
            signature: request.signature.to_string(),
            evidence: Some(
                serde_json::to_value(&evidence).map_err(|e| NodeError::Io(e.to_string()))?,
            ),
        };
        let answer: StateKeysMessage = client
            .request("getStateKeys", jsonrpsee::rpc_params![params])
            .await
            .map_err(|e| NodeError::Rpc(format!("the key manager refused the state key: {e}")))?;
        let response = StateKeyResponse {
            response: hex::decode(answer.request.trim_start_matches("0x"))
                .map_err(|e| NodeError::Rpc(e.to_string()))?,
            signature: answer
                .signature
                .parse()
                .map_err(|e: enigma_crypto::Error| NodeError::Rpc(e.to_string()))?,
        };
        self.enclave.accept_state_keys(response)?;
        Ok(())
    }

    async fn persist(
        &self,
        r: &TaskResult,
        epoch: u64,
        is_deploy: bool,
        code: Option<&[u8]>,
        record_seq: u64,
    ) -> Result<()> {
        let message = to_message(r, is_deploy);
        let seq = self.receipt_seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let kind = match (is_deploy, r.status, r.eth_call.is_some()) {
            (true, TaskStatus::Success, _) => ReceiptKind::Deploy,
            (true, TaskStatus::Failure, _) => ReceiptKind::DeployFailure,
            (false, TaskStatus::Success, true) => ReceiptKind::Callback,
            _ => ReceiptKind::Batchable,
        };
        let pending = Pending {
            seq,
            record_seq,
            contract: r.contract,
            task: r.task_id,
            epoch,
            kind,
            result: messages::encode(&message),
            // Found through its batch when it was checked to run: the proof goes with it.
            batch: if is_deploy { None } else { self.chain.proven_task(&r.task_id).map(Box::new) },
        };
        let mut b = self.store.batch()?;
        b.put_result(&r.task_id, &pending.result)?;
        b.put_pending_receipt(
            &r.contract,
            &r.task_id,
            &serde_json::to_vec(&pending).map_err(|e| NodeError::Io(e.to_string()))?,
        )?;
        b.put_meta(SEQ, &(seq + 1).to_be_bytes())?;
        if !is_deploy {
            b.put_meta(&seq_key(&r.contract), &record_seq.to_be_bytes())?;
        }
        if let Some(code) = code
            && r.status == TaskStatus::Success
        {
            b.put_code(&r.code_hash, code)?;
        }
        if let Some(d) = &r.delta {
            b.put_delta(&r.contract, d.index, &d.bytes)?;
            b.put_contract(
                &r.contract,
                &ContractInfo {
                    code_hash: r.code_hash,
                    next_index: d.index + 1,
                    tip: delta_hash(&d.bytes),
                },
            )?;
        }
        if let Some(s) = &r.snapshot {
            let next = r.delta.as_ref().map_or(0, |d| d.index + 1);
            b.put_snapshot(&r.contract, next, s)?;
        }
        // The delta and the result are durable before anything is published.
        b.commit()?;
        self.receipts.lock().await.push(pending);
        self.results.write().await.insert_new(&message);
        let _ = self.result_events.send(message.clone());
        if let Err(e) = self.p2p.publish(&GossipMessage::Result(Box::new(message))).await {
            tracing::debug!(error = %e, "no peer to publish the result to yet");
        }
        Ok(())
    }

    async fn commit_receipts(&self, flush: bool) -> Result<()> {
        let _one = self.committing.lock().await;
        self.check_sent().await?;
        let mut commits = self.receipts.lock().await.take(flush).into_iter();
        while let Some(commit) = commits.next() {
            let commit = match self.drop_uncommittable(commit).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    self.requeue(commits).await;
                    return Err(e);
                }
            };
            let (tasks, result) = match &commit {
                Commit::Single(p) => (vec![p.clone()], self.commit_single(p).await),
                Commit::Batch(ps) => (ps.clone(), self.commit_batch(ps).await),
            };
            match result {
                Ok(()) => {
                    // Kept (in the store too) until the chain's event for it is confirmed: a
                    // reorg that drops the block sends it again.
                    let block = self.chain.block_number().await.unwrap_or(0);
                    self.receipts.lock().await.sent(commit, block);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a receipt commit failed; requeueing");
                    // A receipt the chain already holds (sent before a restart, or by a retry
                    // whose answer was lost) is done, not retried forever.
                    let mut done = Vec::new();
                    for p in &tasks {
                        if let Ok(false) = self.open_on_chain(p).await {
                            self.forget_receipt(&p.task, Some(&p.contract)).await?;
                            done.push(p.task);
                        }
                    }
                    let rest = std::iter::once(commit).chain(commits).filter_map(|c| match c {
                        Commit::Single(p) if done.contains(&p.task) => None,
                        Commit::Batch(ps) => {
                            let ps: Vec<Pending> =
                                ps.into_iter().filter(|p| !done.contains(&p.task)).collect();
                            (!ps.is_empty()).then_some(Commit::Batch(ps))
                        }
                        other => Some(other),
                    });
                    let rest: Vec<Commit> = rest.collect();
                    self.requeue(rest.into_iter()).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Receipts sent a while ago whose confirmation has not come: landed (the event was missed
    /// or is below the cursor) → forgotten; gone with a replaced block → sent again.
    async fn check_sent(&self) -> Result<()> {
        let overdue = {
            let q = self.receipts.lock().await;
            if q.unconfirmed() == 0 {
                return Ok(());
            }
            let head = self.chain.block_number().await?;
            q.overdue(head, self.confirmations + REORG_GRACE_BLOCKS)
        };
        for p in overdue {
            let task = p.task;
            if self.open_on_chain(&p).await? {
                tracing::warn!(me = %self.signer, %task, "a sent receipt is no longer on chain (reorg); sending it again");
                self.receipts.lock().await.resend(&task);
            } else {
                self.forget_receipt(&task, None).await?;
            }
        }
        Ok(())
    }

    /// Whether a receipt's task still awaits its receipt on chain: its own record's status, or
    /// its bit in its record batch (no event search: closed is all a commit needs to know).
    async fn open_on_chain(&self, p: &Pending) -> Result<bool> {
        Ok(match &p.batch {
            Some(b) => self.chain.record_batch(b.root).await?.is_some_and(|i| i.is_open(b.index)),
            None => self
                .chain
                .task(&p.task)
                .await?
                .is_some_and(|r| r.status == enigma_chain::TaskStatus::Created),
        })
    }

    async fn requeue(&self, commits: impl Iterator<Item = Commit>) {
        let mut q = self.receipts.lock().await;
        for commit in commits {
            match commit {
                Commit::Single(p) => q.push(p),
                Commit::Batch(ps) => ps.into_iter().for_each(|p| q.push(p)),
            }
        }
    }

    /// Removes the receipts of a commit that can never land: successes built on a delta chain
    /// the chain has since left (another worker took the contract over from the chain's state).
    /// Their tasks end by the timeout refund; the contract is prepared again before its next
    /// task, which drops the local deltas the chain did not take.
    async fn drop_uncommittable(&self, commit: Commit) -> Result<Option<Commit>> {
        let list = match commit {
            Commit::Single(p)
                if matches!(p.kind, ReceiptKind::Deploy | ReceiptKind::DeployFailure) =>
            {
                return Ok(Some(Commit::Single(p)));
            }
            Commit::Single(p) => vec![p],
            Commit::Batch(ps) => ps,
        };
        let Some(first) = list.first() else { return Ok(None) };
        let contract = first.contract;
        let Some(on_chain) = self.chain.secret_contract(&contract).await? else {
            // Its deployment has not landed yet: keep waiting.
            return Ok(Some(rebuild(list)));
        };
        let mut expected = on_chain.last_delta_hash;
        let mut next_seq = on_chain.next_receipt_seq;
        let (mut keep, mut dropped) = (Vec::new(), Vec::new());
        for p in list {
            let m = Self::decode(&p)?;
            // The chain takes a contract's receipts in record order: one whose task was recorded
            // before a receipt already on chain can never land.
            if p.record_seq < next_seq {
                tracing::debug!(me = %self.signer, task = %p.task, seq = p.record_seq, next_seq, "out of order");
                dropped.push(p);
                continue;
            }
            next_seq = p.record_seq + 1;
            if m.success && m.prev_delta_hash != expected {
                tracing::debug!(me = %self.signer, task = %p.task, epoch = p.epoch, prev = %m.prev_delta_hash, %expected, "uncommittable");
                dropped.push(p);
                continue;
            }
            if m.success && !m.delta_hash.is_zero() {
                expected = m.delta_hash;
            }
            keep.push(p);
        }
        if !dropped.is_empty() {
            tracing::warn!(
                %contract,
                receipts = dropped.len(),
                "dropping receipts built on state the chain has left; their tasks will be refunded after the timeout"
            );
            let mut b = self.store.batch()?;
            for p in &dropped {
                b.remove_pending_receipt(&p.contract, &p.task)?;
            }
            b.commit()?;
            let mut lines = self.contracts();
            lines.stale(&contract);
            // A dropped receipt will never settle: nothing waits on it.
            for p in &dropped {
                lines.receipt_settled(&p.task, false);
            }
            if self.store.pending_for(&contract).is_ok_and(|n| n == 0) {
                lines.receipts_settled(&contract);
            }
            drop(lines);
            self.contracts_moved();
        }
        Ok((!keep.is_empty()).then(|| rebuild(keep)))
    }

    fn decode(p: &Pending) -> Result<ResultMessage> {
        messages::decode(&p.result, usize::MAX)
            .map_err(|e| NodeError::Io(format!("stored result: {e}")))
    }

    async fn commit_single(&self, p: &Pending) -> Result<()> {
        // Nothing is committed twice: an already finished task is skipped (and one the chain
        // has no record of, which no receipt can close, is not sent to fail for ever).
        if !self.open_on_chain(p).await? {
            return Ok(());
        }
        let m = Self::decode(p)?;
        let signature = Signature::from_bytes(&m.signature)?;
        match p.kind {
            ReceiptKind::Deploy => {
                self.chain
                    .commit_deploy(&DeployReceiptTx {
                        task_id: m.task_id,
                        pre_code_hash: m.code_hash,
                        code_hash: m.code_hash,
                        init_delta_hash: m.delta_hash,
                        gas_used: m.gas_used,
                        eth_payload: m.eth_payload,
                        eth_address: Address(m.eth_address),
                        signature,
                    })
                    .await?;
            }
            // A batch-recorded task's failure goes as a receipt batch of one (its record has no
            // single-failure path); its success below goes with the proof of its record.
            _ if !m.success && p.batch.is_some() => {
                return self.commit_batch(std::slice::from_ref(p)).await;
            }
            _ if !m.success => {
                self.chain
                    .commit_failure(m.contract, m.task_id, m.output_hash, m.gas_used, &signature)
                    .await?;
            }
            _ => {
                let receipt = ComputeReceiptTx {
                    contract: m.contract,
                    task_id: m.task_id,
                    delta_hash: m.delta_hash,
                    output_hash: m.output_hash,
                    gas_used: m.gas_used,
                    eth_payload: m.eth_payload,
                    eth_address: Address(m.eth_address),
                    payouts: m.payouts,
                    signature,
                };
                match &p.batch {
                    Some(proven) => self.chain.commit_batch_receipt(proven, &receipt).await?,
                    None => self.chain.commit_receipt(&receipt).await?,
                };
            }
        }
        Ok(())
    }

    /// Commits receipts of one contract as receipt batches: a run of batch-recorded tasks goes
    /// with their proofs (`commitBatchReceipts`), a run of per-task records as `commitReceipts`
    /// (the chain takes each kind alone), each run signed over the chain's state after the one
    /// before it.
    async fn commit_batch(&self, ps: &[Pending]) -> Result<()> {
        let mut open = Vec::new();
        for p in ps {
            if self.open_on_chain(p).await? {
                open.push((Self::decode(p)?, p.batch.clone()));
            }
        }
        let mut rest = open.as_slice();
        while let Some((_, first)) = rest.first() {
            let run = rest.iter().take_while(|(_, b)| b.is_some() == first.is_some()).count();
            self.commit_run(&rest[..run]).await?;
            rest = &rest[run..];
        }
        Ok(())
    }

    /// Commits a run of receipts of one kind (all batch-recorded, with their proofs, or none).
    async fn commit_run(
        &self,
        run: &[(ResultMessage, Option<Box<enigma_chain::ProvenTask>>)],
    ) -> Result<()> {
        let messages: Vec<&ResultMessage> = run.iter().map(|(m, _)| m).collect();
        let Some(first) = messages.first() else { return Ok(()) };
        let contract = first.contract;
        let on_chain =
            self.chain.secret_contract(&contract).await?.ok_or_else(|| {
                NodeError::Refused(format!("contract {contract} is not deployed"))
            })?;
        let items: Vec<BatchItem> = messages
            .iter()
            .map(|m| {
                Ok(BatchItem {
                    task_id: m.task_id,
                    inputs_hash: m.inputs_hash,
                    status: if m.success { TaskStatus::Success } else { TaskStatus::Failure },
                    delta_hash: m.delta_hash,
                    output_hash: m.output_hash,
                    value: m.value,
                    payouts: m.payouts.clone(),
                    gas_limit: m.gas_limit,
                    gas_used: m.gas_used,
                    signature: Signature::from_bytes(&m.signature)?,
                })
            })
            .collect::<Result<_>>()?;
        let signature = self.enclave.sign_batch(BatchRequest {
            contract,
            code_hash: on_chain.code_hash,
            delta_count: on_chain.delta_count,
            prev_delta_hash: on_chain.last_delta_hash,
            items,
        })?;
        let txs: Vec<BatchItemTx> = messages
            .iter()
            .map(|m| BatchItemTx {
                task_id: m.task_id,
                delta_hash: m.delta_hash,
                output_hash: m.output_hash,
                gas_used: m.gas_used,
                status: u8::from(m.success),
                payouts: m.payouts.clone(),
            })
            .collect();
        let proven: Option<Vec<_>> = run.iter().map(|(_, b)| b.as_deref().cloned()).collect();
        match proven {
            Some(proven) if !proven.is_empty() => {
                let items: Vec<_> = proven.into_iter().zip(txs).collect();
                self.chain.commit_batch_receipts(contract, &items, &signature).await?;
            }
            _ => {
                self.chain.commit_receipts(contract, &txs, &signature).await?;
            }
        }
        Ok(())
    }

    /// This worker's IO key for the current epoch, or another worker's from gossip.
    pub(crate) async fn worker_key(&self, signer: SignerAddress) -> Option<WorkerKey> {
        self.workers.read().await.get(&signer).map(|(_, k)| k.clone())
    }

    /// Routes a task to the selected worker (itself, or a peer).
    pub(crate) async fn route(
        self: &Arc<Self>,
        signer: SignerAddress,
        request: TaskRequest,
    ) -> Result<()> {
        if signer == self.signer {
            return self.handle_task(request, None).await;
        }
        let peer = self.workers.read().await.get(&signer).map(|(p, _)| *p).ok_or_else(|| {
            NodeError::NotDelivered(format!(
                "worker {signer} is not known on the network yet; retry in a moment"
            ))
        })?;
        match self.p2p.send_task(peer, &request).await? {
            TaskResponse::Accepted => Ok(()),
            TaskResponse::Rejected(why) => Err(NodeError::Refused(why)),
            // The client sends it again shortly: nothing ran.
            TaskResponse::Busy(why) => Err(NodeError::NotDelivered(format!(
                "worker {signer} did not take it now ({why}); sending it again shortly"
            ))),
            TaskResponse::Answer(_) => {
                Err(NodeError::Refused(format!("worker {signer} answered a task as a query")))
            }
        }
    }

    /// Routes a query to the worker `signer` (itself, or a peer) and returns its answer.
    pub(crate) async fn route_query(
        self: &Arc<Self>,
        signer: SignerAddress,
        query: QueryMessage,
    ) -> Result<QueryAnswerMessage> {
        if signer == self.signer {
            return self.answer_query(query).await;
        }
        let peer = self.workers.read().await.get(&signer).map(|(p, _)| *p).ok_or_else(|| {
            NodeError::NotDelivered(format!(
                "worker {signer} is not known on the network yet; retry in a moment"
            ))
        })?;
        match self.p2p.send_task(peer, &TaskRequest::Query(Box::new(query))).await? {
            TaskResponse::Answer(a) => Ok(*a),
            TaskResponse::Rejected(why) | TaskResponse::Busy(why) => Err(NodeError::Refused(why)),
            TaskResponse::Accepted => {
                Err(NodeError::Refused(format!("worker {signer} gave no answer to the query")))
            }
        }
    }

    /// Answers a read-only query in the enclave's query runtime (never behind a task), on the
    /// chain's delta tip (`confirmed`) or this worker's latest state.
    pub(crate) async fn answer_query(&self, q: QueryMessage) -> Result<QueryAnswerMessage> {
        let _slot = self.query_slots.clone().try_acquire_owned().map_err(|_| {
            NodeError::Refused(format!(
                "busy: {MAX_QUERIES_IN_FLIGHT} queries are being answered here; retry shortly"
            ))
        })?;
        let contract = q.contract;
        let user_key = PublicKey::from_bytes(&q.user_public_key)
            .map_err(|e| NodeError::Refused(format!("the user public key: {e}")))?;
        // The record as the chain has it now (a read that starts after this query arrived,
        // shared with the queries of the contract that arrive meanwhile).
        let chain = self.chain.clone();
        let on_chain = self
            .contract_reads
            .read(contract, move || {
                let chain = chain.clone();
                async move { chain.secret_contract(&contract).await.map_err(|e| e.to_string()) }
            })
            .await
            .map_err(|e| {
                NodeError::Refused(format!("reading contract {contract} on the chain: {e}"))
            })?
            .ok_or_else(|| NodeError::Refused(format!("no contract {contract} is deployed")))?;
        let local = self.store.contract(&contract)?.ok_or_else(|| {
            NodeError::Refused(format!(
                "this worker holds no state of contract {contract}; ask its selected worker"
            ))
        })?;
        if local.code_hash != on_chain.code_hash {
            return Err(NodeError::Refused(format!(
                "the stored code of contract {contract} differs from the chain's"
            )));
        }
        let position = if q.confirmed {
            if local.next_index < on_chain.delta_count {
                return Err(NodeError::Refused(format!(
                    "this worker has {} of contract {contract}'s {} deltas yet; retry shortly",
                    local.next_index, on_chain.delta_count
                )));
            }
            ChainPosition { next_index: on_chain.delta_count, tip: on_chain.last_delta_hash }
        } else {
            ChainPosition { next_index: local.next_index, tip: local.tip }
        };
        let epoch = self.epochs.read().await.current().map(|e| e.first_block).ok_or_else(|| {
            NodeError::Refused("no epoch yet; retry once the first epoch is drawn".into())
        })?;
        let mut request = QueryRequest {
            query_id: q.query_id,
            epoch: q.epoch_block,
            contract,
            code_hash: on_chain.code_hash,
            code: None,
            position,
            state: None,
            encrypted_fn: q.encrypted_fn,
            encrypted_args: q.encrypted_args,
            encrypted_caller: q.encrypted_caller,
            user_public_key: user_key,
            gas_limit: QUERY_GAS_LIMIT,
            time: crate::attest::now_ms() / 1000,
            time_budget_ms: self.time_budget_ms(),
        };
        let mut use_snapshot = true;
        for _ in 0..5 {
            let attempt = {
                let request = request.clone();
                self.with_query_key(epoch, move |e| e.query(request.clone())).await
            };
            match attempt {
                Err(NodeError::Enclave(EnclaveError::CodeNotLoaded { code_hash })) => {
                    request.code = Some(self.store.code(&code_hash)?.ok_or_else(|| {
                        NodeError::Refused(format!("code {code_hash} is not stored"))
                    })?);
                }
                Err(NodeError::Enclave(EnclaveError::StateNotLoaded { have, want, .. })) => {
                    request.state =
                        Some(self.state_to_load(&contract, have, want, use_snapshot)?);
                }
                // Queries run on whichever of the enclave's query runtimes is free, so the
                // deltas sent for one may not line up with the next one's copy: load whole (the
                // snapshot first, then every delta from 0 if even that does not stand).
                Err(NodeError::Enclave(EnclaveError::BadState(why))) if request.state.is_some() => {
                    tracing::debug!(%contract, why, "loading a query's state whole");
                    request.state = Some(self.state_to_load(
                        &contract,
                        None,
                        request.position,
                        use_snapshot,
                    )?);
                    use_snapshot = false;
                }
                Ok(a) => {
                    return Ok(QueryAnswerMessage {
                        contract: a.contract,
                        code_hash: a.code_hash,
                        delta_count: a.position.next_index,
                        delta_hash: a.position.tip,
                        query_hash: a.query_hash,
                        success: a.success,
                        encrypted_output: a.encrypted_output,
                        output_hash: a.output_hash,
                        gas_used: a.gas_used,
                        signature: a.signature.as_bytes().to_vec(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(NodeError::Refused("the enclave could not load the contract for the query".into()))
    }

    /// Runs a query call on the enclave, fetching the contract's state key first if it lacks
    /// it. Unlike tasks, queries take no turn behind contract runs.
    async fn with_query_key<T: Send + 'static>(
        &self,
        epoch: u64,
        call: impl Fn(&EnclaveProxy<SimulationBackend>) -> std::result::Result<T, EnclaveError>
        + Send
        + Sync
        + 'static,
    ) -> Result<T> {
        let call = Arc::new(call);
        let first = {
            let call = call.clone();
            self.in_enclave(move |e| call(e)).await?
        };
        match first {
            Err(EnclaveError::NoStateKey { contract, code_hash }) => {
                self.fetch_state_key(epoch, ContractKeyId { contract, code_hash }).await?;
                Ok(self.in_enclave(move |e| call(e)).await??)
            }
            other => Ok(other?),
        }
    }
}

/// Contract runs a worker sends its enclave at once: the enclave's most task runtimes (it has
/// 2 to 4, by its threads; runs of contracts that share one wait there).
const RUNS_AT_ONCE: usize = 4;

/// The most queries a worker answers at once (from its gateway and its peers together).
pub const MAX_QUERIES_IN_FLIGHT: usize = 64;

/// The gas a query may use: enough for any read a task could do, bounded so that a query costs
/// a worker at most this much work (queries pay no fee).
pub const QUERY_GAS_LIMIT: u64 = 200_000_000;
