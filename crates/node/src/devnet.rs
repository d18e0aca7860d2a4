//! A local network in one process: anvil, the contracts, the simulation attestation authority,
//! the key manager, N workers and a gateway — what `enigma devnet` runs.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy::{node_bindings::AnvilInstance, providers::Provider as _};
use enigma_attestation::SimulationAuthority;
use enigma_chain::{
    Chain, DeployConfig, Deployment, SimulationPolicy, deploy, ensure_anvil, provider,
};
use enigma_crypto::KeyPair;
use enigma_enclave::{EnclaveBuild, Role};
use enigma_types::Address;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt, net::TcpListener};

use crate::{
    AttestationService, KmConfig, KmNode, NodeError, Result, WorkerConfig, WorkerNode,
    obtain_evidence, prepare_km, serve_attestation, start_km, start_worker,
};

/// The enclave measurements of a simulated network whose attestation authority is `authority`:
/// the worker and key manager of the simulation build trusting it.
#[must_use]
pub fn devnet_measurements(authority: Address) -> (/* worker */ [u8; 32], /* km */ [u8; 32]) {
    let build = EnclaveBuild::simulation(Some(authority));
    (build.measurement(Role::Worker), build.measurement(Role::KeyManager))
}

/// The client policy the workers of a simulated network with attestation authority `authority`
/// satisfy: that authority, the build's worker measurement and the worker product id.
#[must_use]
pub fn devnet_policy(authority: Address) -> enigma_attestation::Policy {
    enigma_attestation::Policy::default()
        .with_simulation_authority(authority)
        .with_mr_enclaves(vec![devnet_measurements(authority).0])
        .with_product_id(enigma_attestation::WORKER_PRODUCT_ID)
}

/// The chain's simulation policy for such a network: its authority and the build's enclaves.
#[must_use]
pub fn devnet_simulation_policy(authority: Address) -> SimulationPolicy {
    let (worker, km) = devnet_measurements(authority);
    SimulationPolicy {
        authority,
        debug_allowed: false,
        worker_enclaves: vec![worker],
        km_enclaves: vec![km],
    }
}

/// Starts a simulation attestation service on `listen` (port 0 picks one) with the authority
/// `key`, signing the reports of the simulation build that trusts it. The key stays with the
/// caller (a devnet or a test harness); nodes get the service's URL and the authority's address.
pub async fn serve_devnet_attestation(
    listen: SocketAddr,
    key: KeyPair,
) -> Result<AttestationService> {
    let authority = key.address();
    let (worker, km) = devnet_measurements(authority);
    serve_attestation(SimulationAuthority::new(key), vec![worker, km], listen).await
}

/// The devnet's authority key: created at random for a fresh devnet, read back when resuming
/// one (0600 file in the data directory, read by the devnet process only).
fn authority_key(data_dir: &std::path::Path) -> Result<KeyPair> {
    key_file(&data_dir.join(AUTHORITY_KEY))
}

/// A secret key kept in `path`: read back if the file exists, else created at random and written
/// there (mode 0600, synced) before it is used. An existing file other users can read is
/// refused: the key in it may be known.
pub fn key_file(path: &std::path::Path) -> Result<KeyPair> {
    use std::io::Write as _;
    let io = |e: std::io::Error| NodeError::Io(format!("{}: {e}", path.display()));
    match std::fs::read(path) {
        Ok(bytes) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(NodeError::Config(format!(
                        "{} holds a secret key but other users may read or change it (mode \
                         {:o}); make it private with `chmod 600 {}`",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    )));
                }
            }
            Ok(KeyPair::from_slice(&zeroize::Zeroizing::new(bytes))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            file.write_all(key.secret_bytes().as_ref()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// How to run a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Where the KM's and workers' data live.
    pub data_dir: PathBuf,
    /// Workers to start.
    pub workers: usize,
    /// anvil's port.
    pub chain_port: u16,
    /// The gateway (worker 0's JSON-RPC).
    pub gateway: SocketAddr,
    /// The KM's `getStateKeys`.
    pub km: SocketAddr,
    /// The simulation attestation service (it holds the devnet's authority key and attests the
    /// nodes' enclaves).
    pub attestation: SocketAddr,
    /// Serve the Enigma contract's address as plain text here (and the token's on the next port).
    pub address_port: Option<u16>,
    /// Blocks per epoch.
    pub epoch_size: u64,
    /// Blocks before an open task's fee can be returned.
    pub timeout_blocks: u64,
    /// Mine a block this often even when idle, so epochs turn.
    pub block_interval: Duration,
    /// `None`: anvil mines a block for each transaction (a transaction is final at once).
    /// `Some(t)` (1 ms to 60 s): the devnet has it mine a block every `t` with every transaction
    /// sent meanwhile, as a fast L2 does — far less work for anvil under load, which recomputes
    /// its whole state root for every block (BENCHMARKS.md).
    pub block_time: Option<Duration>,
    /// What the gateway allows one client (one address: every client of a devnet on this
    /// machine shares 127.0.0.1).
    pub gateway_limits: crate::GatewayLimits,
    /// How many workers keep a copy of each contract (`WorkerConfig::replicas`; `None`: all).
    pub replicas: Option<u32>,
    /// Each worker's stake (grains).
    pub stake: u128,
    /// Resume the devnet left in `data_dir` (its chain, contracts, nodes and their stores)
    /// instead of starting from scratch; a fresh one starts if there is none.
    pub keep: bool,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".devnet"),
            workers: 3,
            chain_port: 8545,
            gateway: SocketAddr::from(([127, 0, 0, 1], 3346)),
            km: SocketAddr::from(([127, 0, 0, 1], 3040)),
            attestation: SocketAddr::from(([127, 0, 0, 1], 3041)),
            address_port: Some(8080),
            epoch_size: 100,
            timeout_blocks: 1_000,
            block_interval: Duration::from_secs(1),
            block_time: None,
            gateway_limits: crate::GatewayLimits::default(),
            replicas: None,
            stake: 10_000 * 100_000_000,
            keep: false,
        }
    }
}

impl DevnetConfig {
    /// A devnet in `data_dir` on free loopback ports (anvil, gateway, key manager, attestation
    /// service), without the address pages: several can run side by side, as tests do.
    #[must_use]
    pub fn on_free_ports(data_dir: PathBuf) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            data_dir,
            chain_port: 0,
            gateway: any,
            km: any,
            attestation: any,
            address_port: None,
            ..Self::default()
        }
    }
}

/// A funded development account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevAccount {
    /// Its address.
    pub address: Address,
    /// Its private key (a well-known anvil key: never use it on a real network).
    pub private_key: String,
    /// Its ENG, in grains.
    pub eng_grains: u128,
}

/// What a running devnet offers; printed, and written as `devnet.json` in the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetSummary {
    /// The chain's JSON-RPC URL.
    pub chain_url: String,
    /// Its chain id.
    pub chain_id: u64,
    /// The contracts.
    pub deployment: Deployment,
    /// The gateway's JSON-RPC URL (HTTP; WebSocket on the same port).
    pub gateway_url: String,
    /// The key manager's URL.
    pub km_url: String,
    /// The key manager's enclave signer.
    pub km_signer: String,
    /// The simulation attestation service, for nodes started outside the devnet
    /// (`enigma worker --attestation-url`).
    #[serde(default)]
    pub attestation_url: String,
    /// What a client's policy pins: the simulation authority, and the measurements of the
    /// devnet build's worker and key-manager enclaves (hex).
    #[serde(default)]
    pub simulation_authority: String,
    /// The worker enclave's measurement.
    #[serde(default)]
    pub worker_measurement: String,
    /// The key-manager enclave's measurement.
    #[serde(default)]
    pub km_measurement: String,
    /// The attestation policy a client of this devnet checks workers against (its simulation
    /// authority and the worker enclave's measurement), as enigma-js and the SDK take it.
    #[serde(default)]
    pub policy: Option<enigma_attestation::Policy>,
    /// The workers' enclave signers.
    pub worker_signers: Vec<String>,
    /// Where a node joining the devnet's p2p network bootstraps from (`--bootstrap`).
    #[serde(default)]
    pub p2p_bootstrap: Vec<String>,
    /// Where the addresses are served as plain text.
    pub address_urls: Vec<String>,
    /// Funded accounts for users.
    pub accounts: Vec<DevAccount>,
    /// Blocks per epoch.
    pub epoch_size: u64,
}

/// A running devnet; dropping it (or [`Devnet::stop`]) stops everything.
#[derive(Debug)]
pub struct Devnet {
    /// What it offers.
    pub summary: DevnetSummary,
    anvil: AnvilInstance,
    km: KmNode,
    workers: Vec<WorkerNode>,
    attestation: AttestationService,
    /// The chain's RPC, for the last block at the stop.
    chain_rpc: alloy::providers::DynProvider,
    background: Background,
}

impl Devnet {
    /// Stops the nodes, the block ticker, the address pages and anvil (which writes the chain's
    /// final state to the data directory, so `keep` can resume it).
    pub async fn stop(mut self) {
        for w in self.workers {
            w.stop().await;
        }
        self.km.stop().await;
        self.attestation.stop().await;
        drop(self.background);
        // A last block for what was sent since the miner's last tick: anvil's state file keeps
        // mined transactions only.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.chain_rpc.raw_request::<_, serde_json::Value>("anvil_mine".into(), (1u64,)),
        )
        .await;
        // SIGTERM lets anvil write its state; it is killed regardless when dropped.
        #[cfg(unix)]
        {
            let pid = self.anvil.child().id().to_string();
            let asked = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await;
            if asked.is_ok_and(|s| s.success()) {
                for _ in 0..50 {
                    if self.anvil.child_mut().try_wait().ok().flatten().is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// anvil's flags for a devnet: at most 64 past states in memory (nothing reads older ones: every
/// call is at the latest block, and logs and receipts are kept whatever this says). Without it
/// anvil keeps up to 500 snapshots of the whole state (its default), one per block.
const DEVNET_ANVIL_ARGS: [&str; 2] = ["--prune-history", "64"];

/// Mines a block (with every pending transaction) every `interval`, until aborted.
fn spawn_miner(
    chain: alloy::providers::DynProvider,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // A failed block is retried at the next tick (the devnet aborts this task when it
            // stops or fails to start).
            let _: std::result::Result<serde_json::Value, _> =
                chain.raw_request("anvil_mine".into(), (1u64,)).await;
        }
    })
}

/// A devnet's background tasks (the block miner, the address pages): aborted when dropped, so
/// a start that fails half-way or a devnet dropped without `stop` leaves none running.
#[derive(Debug)]
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn serve_text(port: u16, text: String) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| NodeError::Io(format!("cannot serve on port {port}: {e}")))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { continue };
            let body = text.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    }))
}

/// Empties the devnet's data directory: only one that holds a previous devnet, what a devnet
/// stopped while starting left (only files a devnet writes), or nothing.
fn clear_data_dir(dir: &std::path::Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(NodeError::Io(format!("{}: {e}", dir.display()))),
        Ok(entries) => entries,
    };
    if !dir.join("devnet.json").exists() {
        for entry in entries {
            let entry = entry.map_err(|e| NodeError::Io(format!("{}: {e}", dir.display())))?;
            let name = entry.file_name();
            if !name.to_str().is_some_and(written_by_a_devnet) {
                return Err(NodeError::Config(format!(
                    "{} holds {} and no previous devnet; choose another --data-dir (or move \
                     that away)",
                    dir.display(),
                    name.to_string_lossy()
                )));
            }
        }
    }
    std::fs::remove_dir_all(dir)
        .map_err(|e| NodeError::Io(format!("clearing {}: {e}", dir.display())))
}

/// Whether a devnet writes an entry of this name in its data directory.
fn written_by_a_devnet(name: &str) -> bool {
    matches!(name, "devnet.json" | CHAIN_STATE | AUTHORITY_KEY | "km")
        || name
            .strip_prefix("worker")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The simulation attestation authority's key in the data directory.
const AUTHORITY_KEY: &str = "attestation-authority.key";

/// The devnet left in `dir`, if it can be resumed (its summary and its chain's state).
fn previous_devnet(dir: &std::path::Path) -> Result<Option<DevnetSummary>> {
    let (summary, state) = (dir.join("devnet.json"), dir.join(CHAIN_STATE));
    if !summary.exists() || !state.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&summary)
        .map_err(|e| NodeError::Io(format!("{}: {e}", summary.display())))?;
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        NodeError::Config(format!(
            "{} is not a devnet summary ({e}); start without --keep to begin afresh",
            summary.display()
        ))
    })
}

/// The chain's state file in the data directory (anvil writes it every 10 s and when stopped).
const CHAIN_STATE: &str = "chain-state.json";

/// Starts a devnet: from scratch (its data directory is cleared), or with `keep`, resuming the
/// one left in the data directory. `progress` is told each step.
pub async fn start_devnet(config: DevnetConfig, mut progress: impl FnMut(&str)) -> Result<Devnet> {
    let previous = if config.keep { previous_devnet(&config.data_dir)? } else { None };
    if let Some(prev) = &previous
        && prev.worker_signers.len() > config.workers
    {
        return Err(NodeError::Config(format!(
            "the devnet in {} has {} workers; resume it with at least as many (--workers {}), or start afresh without --keep",
            config.data_dir.display(),
            prev.worker_signers.len(),
            prev.worker_signers.len()
        )));
    }
    if previous.is_none() {
        clear_data_dir(&config.data_dir)?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| NodeError::Io(format!("creating {}: {e}", config.data_dir.display())))?;
    progress(if previous.is_some() { "resuming anvil" } else { "starting anvil" });
    let state = config.data_dir.join(CHAIN_STATE);
    let mut anvil = alloy::node_bindings::Anvil::new()
        .path(ensure_anvil()?)
        .port(config.chain_port)
        .arg("--state")
        .arg(state.display().to_string())
        // anvil also writes the state when stopped (SIGTERM, `Devnet::stop`); the interval
        // bounds what a devnet killed outright loses. Every second, the dump of a large state
        // (140 MB of JSON at 10,000 contracts) kept anvil's CPU at 100 % and slowed its blocks
        // by a third (BENCHMARKS.md, "10,000 contracts").
        .args(["--state-interval", "10"])
        .args(DEVNET_ANVIL_ARGS);
    if config.block_time.is_some() {
        // Blocks on a timer, mined by the devnet (below), not by anvil's `--block-time`: with
        // one, anvil keeps 1,500 snapshots of the whole state in memory whatever
        // `--prune-history` says — 15.7 GB at 7,185 contracts (BENCHMARKS.md).
        anvil = anvil.arg("--no-mining");
    }
    let anvil = anvil
        .try_spawn()
        .map_err(|e| NodeError::Io(format!("starting anvil on port {}: {e}", config.chain_port)))?;
    let chain_url = anvil.endpoint_url().to_string();
    let key = |i: usize| KeyPair::from_slice(&anvil.keys()[i].to_bytes());
    let deployer = key(0)?;
    let p = provider(&chain_url, Some(&deployer)).await?;
    // With a block time, a block every `t` with every transaction sent meanwhile, from now on
    // (the deployment's transactions wait for it).
    let miner = Background(
        config
            .block_time
            .map(|t| {
                spawn_miner(p.clone(), t.clamp(Duration::from_millis(1), Duration::from_secs(60)))
            })
            .into_iter()
            .collect(),
    );
    let km_dir = config.data_dir.join("km");
    let fresh = previous.is_none();
    let attestation =
        serve_devnet_attestation(config.attestation, authority_key(&config.data_dir)?).await?;
    let deployment = match &previous {
        Some(prev) => prev.deployment,
        None => {
            deploy_contracts(&p, &config, &km_dir, &key(9)?, &attestation, &mut progress).await?
        }
    };
    let chain =
        Chain::new(p.clone(), deployment.enigma, deployment.token, Some(deployer.address()));
    if !fresh && chain.enigma().secretContractCount().call().await.is_err() {
        return Err(NodeError::Config(format!(
            "the chain resumed from {} has no Enigma contract at {}; start afresh without --keep",
            state.display(),
            deployment.enigma
        )));
    }
    let nodes = Nodes { anvil, miner, chain_url, p, chain, deployment, km_dir, attestation };
    start_nodes(config, nodes, previous, progress).await
}

/// Deploys the contracts with the KM's enclave as principal, and records the KM's attestation
/// (the devnet plays the attestation service, so it submits it; anyone may).
async fn deploy_contracts(
    p: &alloy::providers::DynProvider,
    config: &DevnetConfig,
    km_dir: &std::path::Path,
    km_operator: &KeyPair,
    attestation: &AttestationService,
    progress: &mut impl FnMut(&str),
) -> Result<Deployment> {
    progress("deploying the contracts");
    let km = prepare_km(km_dir, km_operator.address(), attestation.authority)?;
    let deployment = deploy(
        p,
        &DeployConfig {
            epoch_size: config.epoch_size,
            timeout_blocks: config.timeout_blocks,
            principal: km.signer,
            group_size: 1,
            simulation: Some(devnet_simulation_policy(attestation.authority)),
            ias: None,
            task_limits: enigma_chain::DEFAULT_TASK_LIMITS,
        },
    )
    .await?;
    progress("attesting the key manager");
    let evidence = obtain_evidence(&attestation.url, &km).await?;
    Chain::new(p.clone(), deployment.enigma, deployment.token, None)
        .register_principal(&evidence)
        .await?;
    Ok(deployment)
}

/// What `start_devnet` has built when the nodes start.
struct Nodes {
    anvil: AnvilInstance,
    /// The block miner, when blocks come on a timer.
    miner: Background,
    chain_url: String,
    p: alloy::providers::DynProvider,
    chain: Chain,
    deployment: Deployment,
    km_dir: PathBuf,
    attestation: AttestationService,
}

async fn start_nodes(
    config: DevnetConfig,
    nodes: Nodes,
    previous: Option<DevnetSummary>,
    mut progress: impl FnMut(&str),
) -> Result<Devnet> {
    let Nodes { anvil, miner, chain_url, p, chain, deployment, km_dir, attestation } = nodes;
    let key = |i: usize| KeyPair::from_slice(&anvil.keys()[i].to_bytes());
    let fresh = previous.is_none();
    // Workers register first, so the key manager's first epoch already selects them all.
    let km_addr = if config.km.port() == 0 {
        let probe = std::net::TcpListener::bind(config.km)
            .map_err(|e| NodeError::Io(format!("finding a port for the key manager: {e}")))?;
        probe.local_addr().map_err(|e| NodeError::Io(e.to_string()))?
    } else {
        config.km
    };
    let km_url = format!("http://{km_addr}");
    let mut workers: Vec<WorkerNode> = Vec::new();
    for i in 0..config.workers {
        progress(&format!("starting worker {} of {}", i + 1, config.workers));
        let operator = key(1 + i)?;
        if chain.worker(operator.address()).await?.is_none() {
            chain.transfer_token(operator.address(), config.stake).await?;
        }
        let mut w = WorkerConfig::devnet(
            config.data_dir.join(format!("worker{i}")),
            chain_url.clone(),
            deployment.enigma,
            deployment.token,
            operator,
            km_url.clone(),
        );
        w.attestation_url = Some(attestation.url.clone());
        w.simulation_authority = attestation.authority;
        w.stake = Some(config.stake);
        w.batch_wait = Duration::from_secs(1);
        w.replicas = config.replicas;
        w.bootstrap = workers.first().map(|w| w.p2p_addrs.clone()).unwrap_or_default();
        if i == 0 {
            w.gateway_listen = Some(config.gateway);
            w.gateway_limits = config.gateway_limits;
        }
        workers.push(start_worker(w).await?);
    }

    progress("starting the key manager");
    let km = start_km(KmConfig {
        data_dir: km_dir,
        chain_url: chain_url.clone(),
        enigma: deployment.enigma,
        token: deployment.token,
        operator: key(9)?,
        rpc_listen: km_addr,
        poll_interval: Duration::from_millis(200),
        attestation_url: Some(attestation.url.clone()),
        simulation_authority: attestation.authority,
    })
    .await?;

    let mut background = miner;
    // Without a block time anvil mines only on transactions, so a ticker keeps blocks (and
    // epochs) coming while idle: from now on, as a resumed devnet's new workers wait for the
    // next epoch.
    if config.block_time.is_none() {
        background.0.push(spawn_miner(p.clone(), config.block_interval));
    }
    progress(if fresh {
        "starting the first epoch with the workers"
    } else {
        "waiting for an epoch with every worker (a new one enters at the next epoch)"
    });
    // A resumed devnet with a new worker waits for the next epoch, which may be up to an
    // epoch's blocks away.
    let block = config.block_time.unwrap_or(config.block_interval);
    let epoch_time = block.saturating_mul(u32::try_from(config.epoch_size).unwrap_or(u32::MAX));
    let wait = Duration::from_secs(30) + if fresh { Duration::ZERO } else { epoch_time };
    let deadline = tokio::time::Instant::now() + wait;
    let entered = async {
        loop {
            // Ready once the chain has the epoch and every worker has entered it (its key for
            // the epoch is made and announced).
            if let Some(e) = chain.current_epoch().await?
                && e.workers.len() == config.workers
            {
                let mut entered = 0;
                for w in &workers {
                    if w.entered_epoch().await == Some(e.first_block) {
                        entered += 1;
                    }
                }
                if entered == workers.len() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NodeError::Config(format!(
                    "the key manager did not start an epoch with the workers within {} s",
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    entered?;

    let mut address_urls = Vec::new();
    if let Some(port) = config.address_port {
        background.0.push(serve_text(port, deployment.enigma.to_string()).await?);
        background.0.push(serve_text(port + 1, deployment.token.to_string()).await?);
        address_urls =
            vec![format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{}", port + 1)];
    }

    // Users get ENG; their keys are anvil's well-known development keys.
    let mut accounts = Vec::new();
    for i in 4..9 {
        let user = key(i)?;
        if fresh {
            chain.transfer_token(user.address(), 100_000 * 100_000_000).await?;
        }
        accounts.push(DevAccount {
            address: user.address(),
            private_key: format!("0x{}", hex::encode(user.secret_bytes().as_ref())),
            eng_grains: chain.token_balance(user.address()).await?,
        });
    }
    let summary = DevnetSummary {
        chain_url,
        chain_id: anvil.chain_id(),
        deployment,
        gateway_url: format!(
            "http://{}",
            workers.first().and_then(|w| w.gateway_addr).unwrap_or(config.gateway)
        ),
        km_url,
        km_signer: km.signer.to_string(),
        attestation_url: attestation.url.clone(),
        simulation_authority: attestation.authority.to_string(),
        worker_measurement: format!(
            "0x{}",
            hex::encode(devnet_measurements(attestation.authority).0)
        ),
        km_measurement: format!("0x{}", hex::encode(devnet_measurements(attestation.authority).1)),
        policy: Some(devnet_policy(attestation.authority)),
        worker_signers: workers.iter().map(|w| w.signer.to_string()).collect(),
        p2p_bootstrap: workers
            .first()
            .map(|w| w.p2p_addrs.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        address_urls,
        accounts,
        epoch_size: config.epoch_size,
    };
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| NodeError::Io(e.to_string()))?;
    std::fs::write(config.data_dir.join("devnet.json"), json)
        .map_err(|e| NodeError::Io(e.to_string()))?;
    Ok(Devnet { summary, anvil, km, workers, attestation, chain_rpc: p, background })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_directory_of_devnet_files_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(".devnet");
        // What a devnet killed while starting leaves: no summary, only its own files.
        std::fs::create_dir_all(data.join("worker0")).unwrap();
        std::fs::create_dir_all(data.join("km")).unwrap();
        std::fs::write(data.join(CHAIN_STATE), "{}").unwrap();
        std::fs::write(data.join(AUTHORITY_KEY), [7; 32]).unwrap();
        clear_data_dir(&data).unwrap();
        assert!(!data.exists());
        // A file a devnet does not write keeps the directory, and the error names it.
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(CHAIN_STATE), "{}").unwrap();
        std::fs::write(data.join("notes.txt"), "mine").unwrap();
        let e = clear_data_dir(&data).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains("--data-dir"), "{e}");
        assert!(data.join("notes.txt").exists());
        assert!(!written_by_a_devnet("worker") && !written_by_a_devnet("workers"));
        // With a summary it is a previous devnet, cleared whole.
        std::fs::write(data.join("devnet.json"), "{}").unwrap();
        clear_data_dir(&data).unwrap();
        assert!(!data.exists());
        // Nothing there is fine.
        clear_data_dir(&data).unwrap();
    }

    #[test]
    fn a_key_file_is_created_private_read_back_and_refused_once_others_may_read_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let created = key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(key_file(&path).unwrap().address(), created.address(), "read back");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = key_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
    }
}
