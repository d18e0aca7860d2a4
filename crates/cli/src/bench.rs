//! `enigma bench load`: the network under load, end to end. Accounts send a mix of tasks and
//! queries to `ledger` contracts for a while, against a devnet this command starts or one
//! already running, and everything is counted against the chain at the end.
//!
//! A task is *completed* when its client verified and decrypted the result **and** the chain
//! holds its receipt (`Verified`); a query when its client verified the signed answer and
//! decrypted it. Reported: completed tasks and queries per second; latency percentiles of each
//! stage (recording: select the worker, check its attestation, encrypt, record on chain;
//! executing: send through the gateway, run, get the signed result, verify and decrypt) and of
//! each kind of call; the CPU each process spent per completed call; Ethereum gas per task (its
//! record transaction and its share of its receipt batch, from the chain's own transaction
//! receipts); the chain's final status of every recorded task; failures by kind.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    fmt,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, U256},
    providers::Provider as _,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent as _, SolValue as _},
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use enigma_chain::{
    TaskStatus,
    bindings::{Enigma, EnigmaBatches},
};
use enigma_client::{Client, TaskOptions};
use enigma_crypto::KeyPair;
use enigma_node::{DevnetConfig, DevnetSummary, GatewayLimits, start_devnet};
use enigma_types::{ContractAddress, TaskId, task_id};

use crate::{SecretArg, key};

/// Progress and failures, on stderr (stdout holds the summary).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The gas limit of every task.
const GAS: u64 = 50_000_000;
/// One ENG in grains.
const ENG: u128 = 100_000_000;

/// `enigma bench`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Load the network with a mix of tasks and queries and count the outcome on chain.
    ///
    /// Fresh accounts (funded from the devnet's first account) each send calls one after
    /// another to fresh `ledger` contracts for --seconds: state-writing tasks
    /// (`record(uint256)`), read-only tasks (`summary()`, no delta), queries (`summary()`,
    /// nothing recorded) and deployments, in the proportions of --mix. Then every recorded task
    /// is looked up on chain once it settles. Progress every 5 s on stderr; --json prints the
    /// summary as JSON on stdout.
    ///
    /// Examples:
    ///   enigma bench load --clients 20 --contracts 5 --seconds 30
    ///   enigma bench load --mix write=70,read=10,query=15,deploy=5 --json
    ///   enigma bench load --clients 100 --contracts 20 --batch 16 --record-window-ms 50 --block-ms 100
    ///   enigma bench load --devnet .devnet --clients 8 --seconds 20   (a devnet already running)
    #[command(verbatim_doc_comment)]
    Load(LoadArgs),
}

/// `enigma bench load` options.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Accounts sending calls at once (each one call, or one batch, at a time).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,
    /// `ledger` contracts deployed for the load; client i sends to contract i mod this.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    contracts: u64,
    /// How long the load runs.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// What the clients send, as KIND=WEIGHT pairs: write (`record(uint256)`, a delta each),
    /// read (a task calling `summary()`: recorded and paid, no delta), query (`summary()` as a
    /// free read-only query) and deploy (a new `ledger`). Each turn of a client draws a kind by
    /// weight: a write or read turn sends --batch tasks, a query or deploy turn one call.
    #[arg(long, default_value = "write=1")]
    mix: Mix,
    /// Tasks a client records in one transaction (`Client::record_many`), then sends in the
    /// chain's order; a task's recording time is its batch's, its execution time runs from its
    /// own send (the sends of the tasks before it are in neither).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    batch: u64,
    /// Record each batch as one Merkle root on chain (`Client::record_batch`).
    #[arg(long)]
    record_batches: bool,
    /// Start each batch's tasks as concurrent `compute` calls of a client that records what
    /// starts within this many ms as one record batch (`Client::batch_records`).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    record_window_ms: u64,
    /// Load a devnet already running from this data directory (its `devnet.json`; `enigma
    /// devnet --data-dir`) instead of starting one. Its gateway's per-client limits then apply:
    /// every client here comes from 127.0.0.1 (start it with `enigma devnet
    /// --clients-per-address N`), and tasks in flight when an epoch ends are not executed
    /// (refundable; start it with a long --epoch-size to measure the steady state).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["workers", "block_ms"])]
    devnet: Option<PathBuf>,
    /// Workers of the devnet this command starts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    workers: u64,
    /// Have the devnet this command starts mine a block every MS ms (as a fast L2 does) instead
    /// of one block per transaction.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=5_000))]
    block_ms: Option<u64>,
    /// The `ledger` contract's WebAssembly (default: built from examples/contracts, which
    /// needs the repository's root as the working directory).
    #[arg(long, value_name = "WASM")]
    contract: Option<PathBuf>,
    /// Seconds a client waits for a result.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print the summary as JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

/// A kind of call the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Write,
    Read,
    Query,
    Deploy,
}

impl Op {
    const ALL: [Self; 4] = [Self::Write, Self::Read, Self::Query, Self::Deploy];

    fn name(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
            Self::Query => "query",
            Self::Deploy => "deploy",
        }
    }
}

/// The proportions of each kind of call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mix(Vec<(Op, u32)>);

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| {
                format!("{part:?} is not KIND=WEIGHT (e.g. write=70,read=10,query=15,deploy=5)")
            })?;
            let op = Op::ALL.into_iter().find(|op| op.name() == name.trim()).ok_or_else(|| {
                format!("unknown kind {name:?}: the kinds are write, read, query and deploy")
            })?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("{name}'s weight must be a whole number up to 1,000,000, not {weight:?}")
            })?;
            if weight > 1_000_000 {
                return Err(format!("{name}'s weight must be at most 1,000,000"));
            }
            if weights.iter().any(|(o, _)| *o == op) {
                return Err(format!("{name} is given twice"));
            }
            weights.push((op, weight));
        }
        if weights.iter().all(|(_, w)| *w == 0) {
            return Err("the mix needs a kind with a weight above 0, e.g. write=1".into());
        }
        weights.sort();
        Ok(Self(weights))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.0.iter().map(|(op, w)| format!("{}={w}", op.name())).collect();
        f.write_str(&parts.join(","))
    }
}

impl Mix {
    /// The kind a draw `r` (any u64) picks, in proportion to the weights.
    fn pick(&self, r: u64) -> Op {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut at = r % total;
        for (op, w) in &self.0 {
            if at < u64::from(*w) {
                return *op;
            }
            at -= u64::from(*w);
        }
        // Unreachable: `at` < total, the sum of the weights.
        Op::Write
    }
}

/// A small deterministic generator (xorshift64*), so a run's mix is the same every time.
struct Draws(u64);

impl Draws {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// One finished call of the load.
struct Done {
    op: Op,
    /// Recording time, where it is separate (not for queries, nor windowed computes).
    record: Option<Duration>,
    /// Set when the call was answered (the result or answer verified and decrypted).
    execute: Option<Duration>,
    /// The task, once known to be recorded.
    task: Option<TaskId>,
    error: Option<String>,
}

/// What the clients share while the load runs.
#[derive(Clone)]
struct Tally {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    done: Arc<Mutex<Vec<Done>>>,
}

impl Tally {
    /// Counts a finished call: `task` is its task if recorded, `outcome` the time to its
    /// answer, or its error.
    fn push(
        &self,
        op: Op,
        record: Option<Duration>,
        task: Option<TaskId>,
        outcome: Result<Duration, String>,
    ) {
        let entry = match outcome {
            Ok(execute) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                Done { op, record, execute: Some(execute), task, error: None }
            }
            Err(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    note!("the first failure ({}), at once: {e}", op.name());
                }
                Done { op, record, execute: None, task, error: Some(e) }
            }
        };
        if let Ok(mut d) = self.done.lock() {
            d.push(entry);
        }
    }
}

/// Runs `enigma bench`.
pub(crate) async fn bench(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Load(args) => load(args).await,
    }
}

async fn load(o: LoadArgs) -> Result<()> {
    if o.record_batches && o.batch == 1 && o.record_window_ms == 0 {
        bail!("--record-batches records batches: give --batch N (N > 1) too");
    }
    // A running devnet's summary first: a wrong path is told before a build of minutes.
    let running = match &o.devnet {
        Some(dir) => {
            let path = if dir.is_dir() { dir.join("devnet.json") } else { dir.clone() };
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("reading {} (is a devnet running there? `enigma devnet`)", path.display())
            })?;
            let summary: DevnetSummary = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a devnet summary", path.display()))?;
            Some(summary)
        }
        None => None,
    };
    let ledger = ledger_wasm(o.contract.clone()).await?;
    let (summary, devnet, _dir) = match running {
        Some(summary) => (summary, None, None),
        None => {
            let dir = tempfile::tempdir().context("a temporary directory for the devnet")?;
            note!("starting a devnet with {} workers …", o.workers);
            let clients = usize::try_from(o.clients)?;
            let devnet = start_devnet(
                DevnetConfig {
                    workers: usize::try_from(o.workers)?,
                    // One epoch for the whole run: the load measures the steady state.
                    epoch_size: 100_000,
                    timeout_blocks: 100_000,
                    block_time: o.block_ms.map(Duration::from_millis),
                    // Every client here comes from 127.0.0.1, which the gateway would count
                    // as one client: let each of these be one.
                    gateway_limits: per_client_limits(clients),
                    ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
                },
                |_| {},
            )
            .await
            .context("starting the devnet")?;
            (devnet.summary.clone(), Some(devnet), Some(dir))
        }
    };
    let outcome = run_load(&o, &summary, &ledger).await;
    if let Some(devnet) = devnet {
        devnet.stop().await;
    }
    outcome
}

/// The gateway limits that give each of `clients` from one address the default limits.
pub(crate) fn per_client_limits(clients: usize) -> GatewayLimits {
    let default = GatewayLimits::default();
    GatewayLimits {
        connections_per_client: default.connections_per_client.saturating_mul(clients.max(1)),
        requests_per_client: default.requests_per_client.saturating_mul(clients.max(1)),
    }
}

/// The `ledger` contract: the file given, or built from the repository's examples.
async fn ledger_wasm(path: Option<PathBuf>) -> Result<Vec<u8>> {
    match path {
        Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display())),
        None => {
            note!("building the ledger contract from examples/contracts …");
            crate::example_contract("ledger", "without --contract ledger.wasm, run").await
        }
    }
}

async fn run_load(o: &LoadArgs, s: &DevnetSummary, ledger: &[u8]) -> Result<()> {
    let timeout = Duration::from_secs(o.timeout);
    let funder_key = s.accounts.first().context("the devnet summary has no dev account")?;
    let funder_account = key(&SecretArg(funder_key.private_key.clone()), "dev account key")?;
    let funder = Client::connect(crate::devnet_client_config(s, funder_account, timeout)?)
        .await
        .context("connecting the devnet's first account (it funds the load's accounts)")?;
    note!("funding {} accounts and deploying {} ledgers …", o.clients, o.contracts);
    let mut clients = Vec::new();
    for i in 0..o.clients {
        let account = KeyPair::generate()?;
        let address = account.address();
        // 100 ETH for gas (a devnet's chain is anvil), 1,000 ENG from the funder, all of it
        // deposited as the account's prepaid balance for fees.
        let _: serde_json::Value = funder
            .chain()
            .provider()
            .raw_request("anvil_setBalance".into(), (format!("{address}"), "0x56bc75e2d63100000"))
            .await
            .context("funding an account with anvil_setBalance (the chain must be a devnet's)")?;
        funder.chain().transfer_token(address, 1_000 * ENG).await.with_context(|| {
            format!("sending account {i} 1,000 ENG from the devnet's first account")
        })?;
        let mut c = Client::connect(crate::devnet_client_config(s, account, timeout)?)
            .await
            .with_context(|| format!("connecting account {i}"))?;
        if o.record_window_ms > 0 {
            c = c.batch_records(Duration::from_millis(o.record_window_ms));
        }
        c.deposit(1_000 * ENG)
            .await
            .with_context(|| format!("depositing account {i}'s 1,000 ENG for task fees"))?;
        clients.push(Arc::new(c));
    }
    let mut contracts = Vec::new();
    for _ in 0..o.contracts {
        let deployed = clients[0].deploy(ledger, "construct()", &[], GAS).await;
        contracts.push(deployed.context("deploying a ledger for the load")?.contract);
    }

    let mut starts = Vec::new();
    for c in &clients {
        let user = c.chain().account().context("a client without an account")?;
        starts.push(c.chain().task_nonce(user).await?);
    }
    // The load's blocks come after this one, which may hold the setup's last receipt.
    let first_block = funder.chain().block_number().await? + 1;
    let tally = Tally {
        stop: Arc::default(),
        answered: Arc::default(),
        failed: Arc::default(),
        done: Arc::default(),
    };
    // The processes serving the gateway and the chain, where they run on this machine.
    let (devnet_pid, anvil) = (local_listener(&s.gateway_url), local_listener(&s.chain_url));
    let me = std::process::id();
    let before = [Some(me), devnet_pid, anvil].map(|p| p.and_then(cpu));
    let ledger: Arc<[u8]> = ledger.into();
    let started = Instant::now();
    let mut load = tokio::task::JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let client = Sender {
            c: c.clone(),
            contract: contracts[i % contracts.len()],
            tally: tally.clone(),
            batch: usize::try_from(o.batch)?,
            record_batches: o.record_batches,
            windowed: o.record_window_ms > 0,
            ledger: ledger.clone(),
        };
        let (mix, seed) = (o.mix.clone(), i as u64);
        load.spawn(async move { client.run(&mix, seed).await });
    }
    let deadline = started + Duration::from_secs(o.seconds);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5).min(deadline - Instant::now())).await;
        let t = started.elapsed().as_secs_f64();
        let n = tally.answered.load(Ordering::Relaxed);
        note!(
            "[{t:>4.0} s] {n} calls answered ({:.1}/s), {} failed",
            n as f64 / t,
            tally.failed.load(Ordering::Relaxed)
        );
    }
    tally.stop.store(true, Ordering::Relaxed);
    note!("stopping: the calls under way finish …");
    while load.join_next().await.is_some() {}
    let load_secs = started.elapsed().as_secs_f64();
    // CPU over the load's seconds (receipts that settle after them are not in it).
    let after = [Some(me), devnet_pid, anvil].map(|p| p.and_then(cpu));
    let spent: Vec<Option<Duration>> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.zip(*b).map(|(a, b)| a.saturating_sub(b)))
        .collect();

    // Every recorded task, counted against the chain once it settles (receipts go in batches):
    // up to 16 looked at at once, each read bounded, all of it within 120 s of waiting.
    note!("waiting for every recorded task to settle on chain (up to 120 s) …");
    let mut all = Vec::new();
    for (c, start) in clients.iter().zip(&starts) {
        let user = c.chain().account().context("a client without an account")?;
        let end = c.chain().task_nonce(user).await.context("reading an account's task nonce")?;
        all.extend((*start..end).map(|n| (c.clone(), task_id(&user, n))));
    }
    let recorded = all.len() as u64;
    let settle_by = Instant::now() + Duration::from_secs(120);
    let settled_statuses: Vec<(TaskId, String, bool)> =
        futures::StreamExt::collect(futures::StreamExt::buffer_unordered(
            futures::stream::iter(all.into_iter().map(|(c, id)| async move {
                let mut errors = 0;
                loop {
                    let read = tokio::time::timeout(Duration::from_secs(10), c.chain().task(&id));
                    match read.await {
                        Ok(Ok(record)) => {
                            let status = record.map_or(TaskStatus::Created, |r| r.status);
                            let late = Instant::now() > settle_by;
                            if status.is_final() || late {
                                return (id, format!("{status:?}"), !status.is_final());
                            }
                        }
                        // A chain that keeps failing to answer does not lose the run's summary.
                        Ok(Err(_)) | Err(_) if errors >= 3 || Instant::now() > settle_by => {
                            return (id, "Unknown".to_string(), true);
                        }
                        Ok(Err(_)) | Err(_) => errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })),
            16,
        ))
        .await;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut verified = HashSet::new();
    let mut unsettled = 0u64;
    for (id, status, open) in settled_statuses {
        unsettled += u64::from(open);
        if status == "Verified" {
            verified.insert(id);
        }
        *statuses.entry(status).or_default() += 1;
    }
    if unsettled > 0 {
        note!(
            "{unsettled} recorded tasks were not final after 120 s, or their status could not \
             be read (counted as they stood, or Unknown)"
        );
    }
    let last_block = funder.chain().block_number().await?;
    let done =
        std::mem::take(&mut *tally.done.lock().map_err(|_| anyhow::anyhow!("a poisoned lock"))?);
    let completed = |d: &Done| match d.op {
        Op::Query => d.execute.is_some(),
        _ => d.execute.is_some() && d.task.is_some_and(|id| verified.contains(&id)),
    };
    let tasks_completed = done.iter().filter(|d| d.op != Op::Query && completed(d)).count();
    let queries_answered = done.iter().filter(|d| d.op == Op::Query && completed(d)).count();

    // Gas: the record transactions and the receipt transactions of the load's blocks.
    let (record_gas, receipt_gas, receipt_txs) = gas(&funder, s, first_block, last_block).await?;
    let settled = statuses
        .iter()
        .filter(|(s, _)| !matches!(s.as_str(), "Created" | "Unknown"))
        .map(|(_, n)| n)
        .sum::<u64>()
        .max(1);
    let per = |gas: u64, n: u64| gas / n.max(1);

    // Latency of the answered calls (a failure's time says little).
    let percentiles_of = |pick: &dyn Fn(&Done) -> Option<Duration>| {
        let mut samples: Vec<Duration> = done.iter().filter_map(pick).collect();
        percentiles(&mut samples)
    };
    let whole = |d: &Done| d.execute.map(|e| e + d.record.unwrap_or_default());
    let task_call = |d: &Done| d.op != Op::Query;
    let mut by_kind = serde_json::Map::new();
    for op in Op::ALL.into_iter().filter(|op| o.mix.0.iter().any(|(k, w)| k == op && *w > 0)) {
        let of = |d: &&Done| d.op == op;
        by_kind.insert(
            op.name().into(),
            serde_json::json!({
                "calls": done.iter().filter(of).count(),
                "answered": done.iter().filter(of).filter(|d| d.execute.is_some()).count(),
                "completed": done.iter().filter(of).filter(|d| completed(d)).count(),
                "latency_ms": percentiles_of(&|d| if d.op == op { whole(d) } else { None }),
            }),
        );
    }
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for d in &done {
        if let Some(e) = &d.error {
            let n = failures.entry(format!("{}: {}", d.op.name(), kind(e))).or_default();
            if *n == 0 {
                note!("a failure ({}), in full: {e}", d.op.name());
            }
            *n += 1;
        }
    }
    // Answered, but its receipt not on chain when counted: a provisional result.
    let answered_not_verified =
        done.iter().filter(|d| d.op != Op::Query && d.execute.is_some() && !completed(d)).count();
    let calls_completed = (tasks_completed + queries_answered).max(1) as f64;
    let ms_per = |d: Option<Duration>| {
        d.map(|d| (d.as_secs_f64() * 1e3 / calls_completed * 100.0).round() / 100.0)
    };
    let in_process = devnet_pid == Some(me);
    let summary = serde_json::json!({
        "clients": o.clients,
        "contracts": o.contracts,
        "contract_addresses": contracts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "workers": if o.devnet.is_some() { s.worker_signers.len() as u64 } else { o.workers },
        "mix": o.mix.to_string(),
        "batch": o.batch,
        "record_batches": o.record_batches,
        "record_window_ms": o.record_window_ms,
        "seconds": (load_secs * 10.0).round() / 10.0,
        "calls": done.len(),
        "answered": done.iter().filter(|d| d.execute.is_some()).count(),
        "completed": tasks_completed,
        "completed_per_second": (tasks_completed as f64 / load_secs * 10.0).round() / 10.0,
        "answered_but_not_verified_on_chain": answered_not_verified,
        "queries_answered": queries_answered,
        "queries_per_second": (queries_answered as f64 / load_secs * 10.0).round() / 10.0,
        "recorded": recorded,
        "chain_status": statuses,
        "by_kind": by_kind,
        "latency": {
            "record": percentiles_of(&|d| if task_call(d) && d.execute.is_some() { d.record } else { None }),
            "execute": percentiles_of(&|d| if task_call(d) { d.execute } else { None }),
            "total": percentiles_of(&|d| if task_call(d) { whole(d) } else { None }),
        },
        "cpu_ms_per_completed_call": {
            // With the devnet in this process, its figure includes the load's clients.
            "devnet_process": ms_per(spent[1]),
            "anvil": ms_per(spent[2]),
            "load_clients": if in_process { None } else { ms_per(spent[0]) },
        },
        "gas_per_task": {
            "record": per(record_gas, recorded),
            "receipt": per(receipt_gas, settled),
            "all_in": per(record_gas, recorded) + per(receipt_gas, settled),
            "receipt_transactions": receipt_txs,
        },
        "failures": failures,
    });
    if o.json {
        say!("{summary}");
        return Ok(());
    }
    say!(
        "{} clients on {} contracts, mix {}, {:.1} s: {} calls, {} answered; {} tasks completed end to end ({:.1}/s), {} queries answered ({:.1}/s)",
        o.clients,
        o.contracts,
        o.mix,
        load_secs,
        done.len(),
        summary["answered"],
        tasks_completed,
        tasks_completed as f64 / load_secs,
        queries_answered,
        queries_answered as f64 / load_secs,
    );
    say!("chain: {recorded} recorded, {statuses:?}");
    for (k, v) in &by_kind {
        say!("{k:<8} {v}");
    }
    for stage in ["record", "execute", "total"] {
        say!("task latency {stage:<8} {}", summary["latency"][stage]);
    }
    say!("CPU per completed call (ms): {}", summary["cpu_ms_per_completed_call"]);
    say!("gas per task: {}", summary["gas_per_task"]);
    for (k, n) in &failures {
        say!("failed ×{n}: {k}");
    }
    Ok(())
}

/// One client's loop.
struct Sender {
    c: Arc<Client>,
    contract: ContractAddress,
    tally: Tally,
    batch: usize,
    record_batches: bool,
    windowed: bool,
    ledger: Arc<[u8]>,
}

impl Sender {
    async fn run(self, mix: &Mix, seed: u64) {
        let mut draws = Draws::new(seed + 1);
        let mut k = 0u64;
        while !self.tally.stop.load(Ordering::Relaxed) {
            match mix.pick(draws.next()) {
                Op::Query => {
                    let at = Instant::now();
                    let answer = self.c.query(self.contract, "summary()", &[]).await;
                    let outcome = answer.map(|_| at.elapsed()).map_err(|e| e.to_string());
                    self.tally.push(Op::Query, None, None, outcome);
                }
                Op::Deploy => self.deploy().await,
                op => {
                    let args: Vec<Vec<u8>> = (0..self.batch)
                        .map(|_| {
                            k += 1;
                            match op {
                                Op::Write => (U256::from(seed << 32 | k),).abi_encode_params(),
                                _ => Vec::new(),
                            }
                        })
                        .collect();
                    let callable = if op == Op::Write { "record(uint256)" } else { "summary()" };
                    if self.windowed {
                        self.windowed_batch(op, callable, &args).await;
                    } else {
                        self.recorded_batch(op, callable, &args).await;
                    }
                }
            }
        }
    }

    /// A deployment: recorded, sent, its result verified (the chain's registration is checked
    /// with every other task at the end).
    async fn deploy(&self) {
        let at = Instant::now();
        let recorded = self
            .c
            .record_deploy_with(&self.ledger, "construct()", &[], GAS, &TaskOptions::default())
            .await;
        let record = Some(at.elapsed());
        let task = match recorded {
            Ok(task) => task,
            Err(e) => return self.tally.push(Op::Deploy, record, None, Err(e.to_string())),
        };
        let (id, at) = (task.id(), Instant::now());
        let outcome = match self.c.send(task).await {
            Ok(h) => h.result().await.map(|_| at.elapsed()),
            Err(e) => Err(e),
        };
        self.tally.push(Op::Deploy, record, Some(id), outcome.map_err(|e| e.to_string()));
    }

    /// A batch's tasks as concurrent computes: the client records them as one record batch by
    /// itself and sends them in record order. A task's recording time is not separable here:
    /// its whole time counts as execute.
    async fn windowed_batch(&self, op: Op, callable: &'static str, args: &[Vec<u8>]) {
        let at = Instant::now();
        let mut computes = tokio::task::JoinSet::new();
        for a in args {
            let (c, contract, a) = (self.c.clone(), self.contract, a.clone());
            computes.spawn(async move { c.compute(contract, callable, &a, GAS).await });
        }
        while let Some(joined) = computes.join_next().await {
            let (task, outcome) = match joined {
                Ok(Ok(o)) => (Some(o.task_id), Ok(at.elapsed())),
                // A failed compute's task, if it was recorded, is counted on chain all the same.
                Ok(Err(e)) => (None, Err(e.to_string())),
                Err(e) => (None, Err(format!("a compute task ended: {e}"))),
            };
            self.tally.push(op, None, task, outcome);
        }
    }

    /// A batch recorded first (one task alone, or `record_many` / `record_batch`), its tasks
    /// then sent in the chain's order, each once the worker took the one before, and their
    /// results awaited together. (Sending a batch all at once does worse: BENCHMARKS.md.)
    async fn recorded_batch(&self, op: Op, callable: &str, args: &[Vec<u8>]) {
        let calls: Vec<_> =
            args.iter().map(|a| (self.contract, callable, a.as_slice(), GAS)).collect();
        let at = Instant::now();
        let recorded = if args.len() == 1 && !self.record_batches {
            self.c.record_compute(self.contract, callable, &args[0], GAS).await.map(|t| vec![t])
        } else if self.record_batches {
            self.c.record_batch(&calls).await
        } else {
            self.c.record_many(&calls).await
        };
        let record = Some(at.elapsed());
        let tasks = match recorded {
            Ok(tasks) => tasks,
            Err(e) => {
                // None of the batch was recorded: each of its calls failed.
                for _ in args {
                    self.tally.push(op, record, None, Err(e.to_string()));
                }
                return;
            }
        };
        let mut handles = Vec::new();
        for task in tasks {
            let (id, at) = (task.id(), Instant::now());
            match self.c.send(task).await {
                Ok(h) => handles.push((id, at, h)),
                Err(e) => self.tally.push(op, record, Some(id), Err(e.to_string())),
            }
        }
        let results = handles.into_iter().map(|(id, at, h)| async move {
            (id, h.result().await.map(|_| at.elapsed()).map_err(|e| e.to_string()))
        });
        for (id, outcome) in futures::future::join_all(results).await {
            self.tally.push(op, record, Some(id), outcome);
        }
    }
}

/// Gas of the load's record transactions and receipt transactions (between the blocks), and
/// how many receipt transactions there were.
async fn gas(client: &Client, s: &DevnetSummary, from: u64, to: u64) -> Result<(u64, u64, usize)> {
    let enigma = enigma_chain::convert::eth(s.deployment.enigma);
    let logs = |signatures: Vec<B256>| {
        let filter =
            Filter::new().address(enigma).event_signature(signatures).from_block(from).to_block(to);
        let provider = client.chain().provider().clone();
        async move { provider.get_logs(&filter).await }
    };
    let record_logs = logs(vec![
        Enigma::TaskRecordCreated::SIGNATURE_HASH,
        Enigma::TaskRecordsCreated::SIGNATURE_HASH,
        EnigmaBatches::TaskBatchCreated::SIGNATURE_HASH,
    ])
    .await?;
    let receipt_logs = logs(vec![
        Enigma::ReceiptVerified::SIGNATURE_HASH,
        Enigma::ReceiptsVerified::SIGNATURE_HASH,
        Enigma::ReceiptFailed::SIGNATURE_HASH,
        Enigma::ReceiptFailedETH::SIGNATURE_HASH,
        Enigma::SecretContractDeployed::SIGNATURE_HASH,
    ])
    .await?;
    let receipt_txs: BTreeSet<B256> =
        receipt_logs.iter().filter_map(|l| l.transaction_hash).collect();
    Ok((
        gas_of(client, &record_logs).await?,
        gas_of(client, &receipt_logs).await?,
        receipt_txs.len(),
    ))
}

/// Gas of the distinct transactions that emitted `logs`.
async fn gas_of(client: &Client, logs: &[Log]) -> Result<u64> {
    let txs: HashSet<B256> = logs.iter().filter_map(|l| l.transaction_hash).collect();
    let mut gas = 0;
    for tx in txs {
        if let Some(r) = client.chain().provider().get_transaction_receipt(tx).await? {
            gas += r.gas_used;
        }
    }
    Ok(gas)
}

fn percentiles(samples: &mut [Duration]) -> serde_json::Value {
    if samples.is_empty() {
        return serde_json::Value::Null;
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        (samples[i].as_secs_f64() * 1e4).round() / 10.0
    };
    serde_json::json!({ "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0) })
}

/// An error's kind: its text with numbers folded (hex to `0x…`, decimal to `N`), so the same
/// failure counts once.
fn kind(e: &str) -> String {
    let mut out = String::new();
    let mut rest = e;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        out.push_str("0x…");
        rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    let mut folded = String::with_capacity(out.len());
    let mut in_number = false;
    for c in out.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                folded.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            folded.push(c);
        }
    }
    folded.replace("Nx…", "0x…")
}

/// The port of a URL such as `http://127.0.0.1:8545` or `ws://[::1]:3346/path`, if its host is
/// this machine's loopback.
fn local_port(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return None;
    }
    port.parse().ok()
}

/// The process serving `url` on this machine (none for another host's URL).
fn local_listener(url: &str) -> Option<u32> {
    local_port(url).and_then(listener)
}

/// The process listening on a local TCP `port` (from `/proc/net/tcp{,6}` and each process's
/// open sockets), to measure its CPU; `None` where that cannot be read.
fn listener(port: u16) -> Option<u32> {
    let wanted = format!(":{port:04X}");
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), inode.
            if let (Some(local), Some(&"0A"), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
                && local.ends_with(&wanted)
            {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(e.path().join("fd")).ok()?;
        fds.flatten()
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| l.to_str().is_some_and(|l| inodes.contains(l)))
            })
            .then_some(pid)
    })
}

/// CPU time (user + system) of a process so far, from `/proc/PID/stat`.
fn cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every mainstream architecture.
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_is_parsed_and_drawn_in_its_proportions() {
        let mix: Mix = "write=70, read=10,query=15,deploy=5".parse().unwrap();
        assert_eq!(mix.to_string(), "write=70,read=10,query=15,deploy=5");
        let mut draws = Draws::new(1);
        let mut counts = BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(mix.pick(draws.next())).or_insert(0u32) += 1;
        }
        for (op, share) in [(Op::Write, 70), (Op::Read, 10), (Op::Query, 15), (Op::Deploy, 5)] {
            let got = counts[&op];
            assert!(
                got.abs_diff(share * 1_000) < 1_000,
                "{} drawn {got} times in 100,000, expected about {}",
                op.name(),
                share * 1_000
            );
        }
        let only_queries: Mix = "query=3,write=0".parse().unwrap();
        assert!((0..1_000).all(|r| only_queries.pick(r) == Op::Query));
    }

    #[test]
    fn a_bad_mix_says_what_is_wrong() {
        for (text, says) in [
            ("write", "is not KIND=WEIGHT"),
            ("writes=1", "unknown kind \"writes\""),
            ("write=-1", "whole number"),
            ("write=1,write=2", "given twice"),
            ("write=0", "a weight above 0"),
            ("", "a weight above 0"),
            ("write=2000000", "at most 1,000,000"),
        ] {
            let e = text.parse::<Mix>().unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn ports_are_read_from_local_urls_only() {
        assert_eq!(local_port("http://127.0.0.1:8545"), Some(8545));
        assert_eq!(local_port("ws://[::1]:3346/path"), Some(3346));
        assert_eq!(local_port("http://localhost"), None);
        assert_eq!(local_port("http://10.77.0.4:3346"), None, "another host's process is not ours");
    }

    #[test]
    fn the_process_listening_on_a_port_is_found() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(listener(port), Some(std::process::id()));
        drop(socket);
        assert_eq!(listener(port), None);
    }
}
