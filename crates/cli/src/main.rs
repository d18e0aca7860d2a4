//! `enigma`: run enigma nodes. Parse the command line, build the parts, run them.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use enigma_crypto::KeyPair;
use enigma_node::{KmConfig, WorkerConfig, start_km, start_worker};
use enigma_types::Address;
use serde::Deserialize;

/// Enigma: secret contracts on Ethereum.
#[derive(Debug, Parser)]
#[command(
    name = "enigma",
    version,
    about = "Secret contracts: computation over inputs, outputs and state that only enclaves see.\n\
             Start a local network, write, deploy and call secret contracts, run worker and \
             key-management nodes.",
    long_about = None,
    after_help = "Getting started:\n  \
                  enigma devnet --example          start a local network and run the millionaires example\n  \
                  enigma contract new counter      write a contract from the template\n  \
                  enigma contract build counter    build it to WebAssembly\n  \
                  enigma deploy counter/target/wasm32-unknown-unknown/release/counter.wasm \
                  --constructor 'construct(uint256)' 5\n  \
                  enigma call 0x3f…9a 'add(uint256)' 2 --returns '(uint256)'\n\n\
                  Each command's --help has examples; --json makes output scriptable."
)]
struct Cli {
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(flatten)]
    chain: chain_cmds::ChainFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local network: anvil, the contracts, a key manager, workers and a gateway.
    ///
    /// Everything runs in this process until Ctrl-C; the data directory is cleared at start
    /// unless --keep resumes the devnet left there (chain, contracts, nodes and their state).
    /// Resumed with more --workers, the new ones join at the next epoch (it waits for it).
    ///
    /// Examples:
    ///   enigma devnet
    ///   enigma devnet --keep
    ///   enigma devnet --keep --workers 4   (a fourth worker joins the three)
    ///   enigma devnet --example      (and run the millionaires example against it)
    ///   enigma devnet --workers 5 --json > devnet.json
    #[command(verbatim_doc_comment)]
    Devnet(DevnetArgs),
    /// Run a worker node (and optionally its gateway), or manage its standing on chain.
    ///
    /// Examples:
    ///   enigma worker --config worker.toml
    ///   enigma worker register --config worker.toml --stake 100000000000
    ///   enigma worker login --config worker.toml
    ///   enigma worker logout --config worker.toml
    ///   enigma worker --data-dir ./w1 --chain-url http://127.0.0.1:8545 --enigma 0x… --token 0x… \
    ///       --operator-key @./w1/operator.key --km-url http://127.0.0.1:3040 --gateway-listen 127.0.0.1:3346
    #[command(verbatim_doc_comment)]
    Worker(Box<WorkerCommand>),
    /// Run a gateway as a node of its own: it serves clients' JSON-RPC and WebSocket (tasks,
    /// queries, results, the dashboard) and hands their tasks and queries to the selected
    /// workers over p2p. It sends no transaction and is never registered, so no epoch selects
    /// it: it runs no task, holds no contract's state and announces nothing. Its node key is
    /// kept in DATA_DIR/gateway.key.
    ///
    /// Examples:
    ///   enigma gateway --chain-config chain.toml --data-dir ./gw --gateway-listen 0.0.0.0:3346 \
    ///       --p2p-listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.0.0.11/tcp/4001/p2p/12D3Koo…
    ///   enigma gateway --config gateway.toml
    #[command(verbatim_doc_comment)]
    Gateway(Box<GatewayCommand>),
    /// Run the key-management node, or print its enclave's signer.
    ///
    /// Examples:
    ///   enigma km --data-dir ./km --chain-url http://127.0.0.1:8545 --enigma 0x… --token 0x… \
    ///       --operator-key @./km/operator.key --rpc-listen 127.0.0.1:3040
    ///   enigma km --config km.toml --chain-config chain.toml
    ///   enigma km signer --data-dir ./km --operator-key @./km/operator.key --sim-authority 0x9a…3f
    #[command(verbatim_doc_comment)]
    Km(Box<KmCommand>),
    /// The Ethereum contracts of a network: deploy them to a chain and write its chain file.
    ///
    /// Example:
    ///   enigma contracts deploy --rpc https://rpc.example.org --deployer-key @deployer.key \
    ///       --principal 0x5c…e1 --simulation-authority 0x9a…3f --out chain.toml
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Contracts(chain_cmds::ContractsCommand),
    /// The simulation attestation authority of a test network.
    ///
    /// Example:
    ///   enigma attestation serve --key-file authority.key --listen 0.0.0.0:3041
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Attestation(chain_cmds::AttestationCommand),
    /// Deploy a secret contract (WebAssembly) to the network.
    ///
    /// Endpoints and the account come from `.devnet/devnet.json` unless flags say otherwise.
    ///
    /// Examples:
    ///   enigma deploy target/contracts/wasm32-unknown-unknown/release/millionaires.wasm
    ///   enigma deploy voting.wasm --constructor 'construct(address)' 0x5FbDB2315678afecb367f032d93F642f64180aa3
    #[command(verbatim_doc_comment)]
    Deploy(client_cmds::DeployArgs),
    /// Call a secret contract: the arguments are encrypted for the selected worker's enclave and
    /// only you can decrypt the result.
    ///
    /// Examples:
    ///   enigma call 0x3f…9a 'add_millionaire(address,uint256)' 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 1000000
    ///   enigma call 0x3f…9a 'compute_richest()' --returns '(address)'
    ///   enigma call 0x3f…9a 'compute_richest()' --returns '(address)' --json
    ///   enigma call 0x7c…21 'bid(uint256)' 2500000 --value 5000000
    #[command(verbatim_doc_comment)]
    Call(client_cmds::CallArgs),
    /// Ask a secret contract a read-only question: no task is recorded and nothing is paid; the
    /// selected worker's enclave answers on the chain's state (or its latest), encrypted to you,
    /// and the contract knows it is you who asks.
    ///
    /// Examples:
    ///   enigma query 0x3f…9a 'compute_richest()' --returns '(address)'
    ///   enigma query 0x51…0c 'my_balance()' --returns '(uint256)' --json
    ///   enigma query 0x51…0c 'total_supply()' --returns '(uint256)' --anonymous --latest
    #[command(verbatim_doc_comment)]
    Query(client_cmds::QueryArgs),
    /// Sign a query permit: queries of the named contracts may carry it instead of a signature
    /// each, until it expires or you revoke it. Whoever holds it asks as you: keep the file
    /// private.
    ///
    /// Examples:
    ///   enigma permit --contract 0x51…0c --expires-in 86400 --name my-dapp > permit.json
    ///   enigma query 0x51…0c 'my_balance()' --returns '(uint256)' --permit permit.json
    ///   enigma permit --revoke --contract 0x51…0c --name my-dapp
    #[command(verbatim_doc_comment)]
    Permit(client_cmds::PermitArgs),
    /// The account's ENG and its prepaid balance for task fees.
    ///
    /// Examples:
    ///   enigma account balance
    ///   enigma account deposit 100000000000
    ///   enigma account transfer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 100000000000
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Account(client_cmds::AccountCommand),
    /// A task's status, signed result, or fee refund.
    ///
    /// Examples:
    ///   enigma task status 0x5c…e1
    ///   enigma task result 0x5c…e1 --json
    ///   enigma task refund 0x5c…e1
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Task(client_cmds::TaskCommand),
    /// Write and build secret contracts.
    ///
    /// Examples:
    ///   enigma contract new counter
    ///   enigma contract build counter
    ///   enigma contract build examples/contracts --json
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Contract(contract_cmds::ContractCommand),
    /// Measure the network: load it with tasks and queries and count the outcome on chain.
    ///
    /// Examples:
    ///   enigma bench load --clients 20 --contracts 5 --seconds 30
    ///   enigma bench load --mix write=70,read=10,query=15,deploy=5 --json
    ///   enigma bench load --devnet .devnet --clients 8   (a devnet already running)
    #[command(subcommand)]
    #[command(verbatim_doc_comment)]
    Bench(bench::BenchCommand),
}

/// `enigma worker`: run it, or one of the subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct WorkerCommand {
    #[command(subcommand)]
    action: Option<WorkerSub>,
    /// Print the outcome of register/login/logout as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    run: NodeArgs,
}

/// `enigma gateway`.
#[derive(Debug, Args)]
struct GatewayCommand {
    #[command(flatten)]
    run: NodeArgs,
}

/// `enigma km`: run it, or print its signer.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct KmCommand {
    #[command(subcommand)]
    action: Option<KmSub>,
    #[command(flatten)]
    run: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum KmSub {
    /// Print the key manager enclave's signer (creating its sealed key in --data-dir if new):
    /// the `--principal` the network's contracts are deployed with.
    Signer {
        #[command(flatten)]
        args: NodeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What to do to a worker's standing on chain (with the same settings as running it).
#[derive(Debug, Subcommand)]
enum WorkerSub {
    /// Register the worker's enclave under its operator (attested by the simulation authority on
    /// a devnet) and, with --stake, deposit that many grains of stake.
    Register(NodeArgs),
    /// Take part in the next epochs.
    Login(NodeArgs),
    /// Leave from the next epoch on; the stake can be withdrawn an epoch later.
    Logout(NodeArgs),
}

/// `enigma devnet` options.
#[derive(Debug, Args)]
struct DevnetArgs {
    /// Workers to start.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Where the nodes keep their data (cleared at start; refused if it holds something else).
    #[arg(long, default_value = ".devnet")]
    data_dir: PathBuf,
    /// anvil's port.
    #[arg(long, default_value_t = 8545)]
    chain_port: u16,
    /// The gateway's address.
    #[arg(long, default_value = "127.0.0.1:3346")]
    gateway: SocketAddr,
    /// The key manager's address.
    #[arg(long, default_value = "127.0.0.1:3040")]
    km: SocketAddr,
    /// The simulation attestation service's address (it holds the devnet's authority key).
    #[arg(long, default_value = "127.0.0.1:3041")]
    attestation: SocketAddr,
    /// Blocks per epoch.
    #[arg(long, default_value_t = 100)]
    epoch_size: u64,
    /// Mine a block every MS milliseconds holding every transaction sent meanwhile, as a fast
    /// L2 does (more throughput under load: anvil recomputes its state root for every block),
    /// instead of one block per transaction (1 to 5,000). Epochs then last epoch-size × MS.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=5_000))]
    block_ms: Option<u64>,
    /// Workers that keep a copy of each contract: its selected group and the next workers the
    /// selection draws, up to K (at least 1; default: every worker keeps every contract).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    replicas: Option<u32>,
    /// Let the gateway treat this many clients from one address as separate clients: its
    /// per-client limits (64 connections, 32 requests in flight) multiplied, up to its totals
    /// (512 of each; more than 16 changes nothing). For load tests whose clients all come from
    /// 127.0.0.1 (`enigma bench load --devnet`).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
    clients_per_address: u64,
    /// Resume the devnet left in --data-dir (its chain, contracts and nodes) instead of clearing it.
    #[arg(long)]
    keep: bool,
    /// Once ready, build the millionaires example and run it against the devnet (from the
    /// repository's root).
    #[arg(long)]
    example: bool,
    /// Print the summary as JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

/// Settings of a node: from `--config FILE` (TOML, same names with dashes), overridden by flags.
#[derive(Debug, Args, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct NodeArgs {
    /// A TOML file with any of the settings below.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The network's chain file (`enigma contracts deploy` writes it): the chain URL, the
    /// contracts, the confirmations and the chain id, which the node checks.
    #[arg(long)]
    chain_config: Option<PathBuf>,
    /// Config file only (the flags of the same name are global): trusted CAs for the chain RPC.
    #[arg(skip)]
    chain_ca: Option<PathBuf>,
    /// Config file only: the most a transaction pays per gas (gwei).
    #[arg(skip)]
    max_fee_gwei: Option<String>,
    /// Config file only: the tip per gas (gwei).
    #[arg(skip)]
    priority_fee_gwei: Option<String>,
    /// The chain id the chain file names (checked against the node at start).
    #[arg(skip)]
    #[serde(skip)]
    chain_id: Option<u64>,
    /// Where the node keeps its database and sealing secret.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The Ethereum JSON-RPC URL.
    #[arg(long, env = "ENIGMA_CHAIN_URL")]
    chain_url: Option<String>,
    /// The Enigma contract's address.
    #[arg(long)]
    enigma: Option<String>,
    /// The ENG token's address.
    #[arg(long)]
    token: Option<String>,
    /// The operating account's private key: hex, or @FILE holding it (prefer a file or the
    /// environment over the command line, which other users of the machine can see).
    #[arg(long, env = "ENIGMA_OPERATOR_KEY", hide_env_values = true)]
    operator_key: Option<SecretArg>,
    /// Worker: the p2p listen address (multiaddr).
    #[arg(long)]
    p2p_listen: Option<String>,
    /// Worker: peers to bootstrap from (multiaddrs ending in /p2p/<id>).
    #[arg(long)]
    bootstrap: Vec<String>,
    /// Worker: serve the gateway JSON-RPC on this address.
    #[arg(long)]
    gateway_listen: Option<SocketAddr>,
    /// Gateway: connections one client (IP address, or IPv6 /64) may hold (default 64; at most
    /// 512). Raise it only for clients that share an address you trust, e.g. behind a proxy.
    #[arg(long)]
    gateway_connections_per_client: Option<usize>,
    /// Gateway: requests one client may have in flight (default 32; at most 512).
    #[arg(long)]
    gateway_requests_per_client: Option<usize>,
    /// Worker: the key manager's JSON-RPC URL.
    #[arg(long)]
    km_url: Option<String>,
    /// KM: serve getStateKeys on this address.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// The simulation attestation service that attests this node's enclave at registration
    /// (a devnet prints it as `attestation`); hardware nodes are attested by Intel instead.
    #[arg(long, env = "ENIGMA_ATTESTATION_URL")]
    attestation_url: Option<String>,
    /// The simulation attestation authority the enclave is built to trust (a devnet's
    /// `simulation_authority` in devnet.json): part of the enclave's measurement.
    #[arg(long, env = "ENIGMA_SIM_AUTHORITY")]
    sim_authority: Option<String>,
    /// Worker: register, stake this many grains and log in at start if not registered.
    #[arg(long)]
    stake: Option<u128>,
    /// Worker: receipts per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Worker: flush receipts at least this often (milliseconds).
    #[arg(long)]
    batch_wait_ms: Option<u64>,
    /// Worker: at an epoch change, wait at most this long for the previous holder of a
    /// contract to commit its receipts before taking over from the chain (milliseconds).
    #[arg(long)]
    handover_wait_ms: Option<u64>,
    /// Worker: stop a contract run that takes longer than this, a fence second to its gas
    /// limit; the task gets no result and is refunded (milliseconds, default 20000).
    #[arg(long)]
    task_time_budget_ms: Option<u64>,
    /// Worker: keep a copy only of the contracts this worker is among the first K the selection
    /// draws for (its group first) in the current epoch; default: a copy of every contract.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    replicas: Option<u32>,
    /// Worker: blocks a task record or chain event must be under before the worker acts on it
    /// (default: 0 on a devnet chain, 2 elsewhere, where 0 is refused).
    #[arg(long)]
    confirmations: Option<u64>,
}

impl NodeArgs {
    /// The file's settings, overridden by those given on the command line; then the chain
    /// file's where neither gave one.
    fn resolve(self) -> Result<Self> {
        let mut merged = self.merge_config()?;
        if let Some(path) = &merged.chain_config {
            let chain = chain_cmds::ChainFile::read(path)?;
            merged.chain_url = merged.chain_url.or(Some(chain.chain_url));
            merged.enigma = merged.enigma.or(Some(chain.enigma.to_string()));
            merged.token = merged.token.or(Some(chain.token.to_string()));
            merged.confirmations = merged.confirmations.or(Some(chain.confirmations));
            merged.sim_authority =
                merged.sim_authority.or(chain.simulation_authority.map(|a| a.to_string()));
            merged.chain_id = Some(chain.chain_id);
        }
        Ok(merged)
    }

    fn merge_config(self) -> Result<Self> {
        let Some(path) = &self.config else { return Ok(self) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let file: NodeArgs = toml::from_str(&text)
            .with_context(|| format!("parsing the config file {}", path.display()))?;
        // The file's own paths to other files (the chain file, the CA) are relative to it.
        let beside = |p: Option<PathBuf>| {
            p.map(|p| path.parent().map_or_else(|| p.clone(), |dir| dir.join(&p)))
        };
        Ok(Self {
            config: self.config.clone(),
            chain_config: self.chain_config.or(beside(file.chain_config)),
            chain_ca: beside(file.chain_ca),
            max_fee_gwei: file.max_fee_gwei,
            priority_fee_gwei: file.priority_fee_gwei,
            chain_id: None,
            data_dir: self.data_dir.or(file.data_dir),
            chain_url: self.chain_url.or(file.chain_url),
            enigma: self.enigma.or(file.enigma),
            token: self.token.or(file.token),
            operator_key: self.operator_key.or(file.operator_key),
            p2p_listen: self.p2p_listen.or(file.p2p_listen),
            bootstrap: if self.bootstrap.is_empty() { file.bootstrap } else { self.bootstrap },
            gateway_listen: self.gateway_listen.or(file.gateway_listen),
            gateway_connections_per_client: self
                .gateway_connections_per_client
                .or(file.gateway_connections_per_client),
            gateway_requests_per_client: self
                .gateway_requests_per_client
                .or(file.gateway_requests_per_client),
            km_url: self.km_url.or(file.km_url),
            rpc_listen: self.rpc_listen.or(file.rpc_listen),
            attestation_url: self.attestation_url.or(file.attestation_url),
            sim_authority: self.sim_authority.or(file.sim_authority),
            stake: self.stake.or(file.stake),
            batch_size: self.batch_size.or(file.batch_size),
            batch_wait_ms: self.batch_wait_ms.or(file.batch_wait_ms),
            handover_wait_ms: self.handover_wait_ms.or(file.handover_wait_ms),
            task_time_budget_ms: self.task_time_budget_ms.or(file.task_time_budget_ms),
            confirmations: self.confirmations.or(file.confirmations),
            replicas: self.replicas.or(file.replicas),
        })
    }
}

fn required<T>(value: Option<T>, flag: &str) -> Result<T> {
    value.with_context(|| format!("--{flag} is required (on the command line or in --config)"))
}

/// A private key (hex, or @FILE) from the command line, the environment or a config file. Its
/// `Debug` shows no key, so printing the parsed arguments cannot leak it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
struct SecretArg(String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.starts_with('@') {
            "SecretArg(@file)"
        } else {
            "SecretArg(<redacted>)"
        })
    }
}

fn key(text: &SecretArg, what: &str) -> Result<KeyPair> {
    let text = &text.0;
    let hex_text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the {what} from {path}"))?,
        None => text.to_string(),
    };
    let bytes = hex::decode(hex_text.trim().trim_start_matches("0x"))
        .with_context(|| format!("the {what} is not hex"))?;
    KeyPair::from_slice(&bytes)
        .with_context(|| format!("the {what} is not a valid secp256k1 private key"))
}

fn address(text: Option<String>, flag: &str) -> Result<Address> {
    let text = required(text, flag)?;
    text.parse().with_context(|| format!("--{flag} {text} is not an address"))
}

/// Writes a line for the user; a closed stdout (a pipe whose reader left) must not stop a node.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod abi;
mod bench;
mod chain_cmds;
mod client_cmds;
mod contract_cmds;

/// Ctrl-C or SIGTERM: either stops a node cleanly.
async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

fn init_logs(json: bool, default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The devnet's nodes share the terminal with its summary: only warnings unless RUST_LOG asks.
    let default = match cli.command {
        Command::Devnet(_) => "warn",
        // The chain pollers of the load's clients outlive a devnet the load stops.
        Command::Bench(_) => "warn,alloy_rpc_client::poller=off",
        _ => "info",
    };
    init_logs(cli.json_logs, default);
    match run(cli.command, &cli.chain).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes on one line, without a backtrace: it is for users.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, chain: &chain_cmds::ChainFlags) -> Result<()> {
    let command = match command {
        Command::Worker(mut w) => {
            w.run = w.run.resolve()?;
            if let Some(WorkerSub::Register(a) | WorkerSub::Login(a) | WorkerSub::Logout(a)) =
                &mut w.action
            {
                *a = std::mem::take(a).resolve()?;
            }
            Command::Worker(w)
        }
        Command::Gateway(mut g) => {
            g.run = g.run.resolve()?;
            Command::Gateway(g)
        }
        Command::Km(mut k) => {
            k.run = k.run.resolve()?;
            if let Some(KmSub::Signer { args, .. }) = &mut k.action {
                *args = std::mem::take(args).resolve()?;
            }
            Command::Km(k)
        }
        other => other,
    };
    let file = match &command {
        Command::Worker(w) => match &w.action {
            Some(WorkerSub::Register(a) | WorkerSub::Login(a) | WorkerSub::Logout(a)) => a,
            None => &w.run,
        },
        Command::Km(k) => &k.run,
        Command::Gateway(g) => &g.run,
        _ => &NodeArgs::default(),
    };
    chain.apply(&chain_cmds::ChainFileFlags {
        chain_ca: file.chain_ca.clone(),
        max_fee_gwei: file.max_fee_gwei.clone(),
        priority_fee_gwei: file.priority_fee_gwei.clone(),
    })?;
    if let (Some(id), Some(url)) = (file.chain_id, &file.chain_url) {
        chain_cmds::check_chain_id(url, id).await?;
    }
    // A running node (not a one-off register/login/logout) needs a fee cap off a devnet chain.
    let running = matches!(&command, Command::Worker(w) if w.action.is_none())
        || matches!(&command, Command::Km(k) if k.action.is_none());
    if running && let Some(url) = &file.chain_url {
        chain_cmds::require_fee_cap(url).await?;
    }
    match command {
        Command::Devnet(args) => devnet(args).await,
        Command::Worker(command) => worker(*command).await,
        Command::Km(command) => km(*command).await,
        Command::Gateway(command) => gateway(*command).await,
        Command::Contracts(command) => chain_cmds::contracts(command).await,
        Command::Attestation(command) => chain_cmds::attestation(command).await,
        Command::Deploy(args) => client_cmds::deploy(args).await,
        Command::Call(args) => client_cmds::call(args).await,
        Command::Query(args) => client_cmds::query(args).await,
        Command::Account(command) => client_cmds::account(command).await,
        Command::Permit(args) => client_cmds::permit(args).await,
        Command::Task(command) => client_cmds::task(command).await,
        Command::Contract(command) => contract_cmds::contract(command).await,
        Command::Bench(command) => bench::bench(command).await,
    }
}

/// A worker's configuration from its settings; `run` requires what only a running node needs.
fn worker_config(a: NodeArgs, run: bool) -> Result<WorkerConfig> {
    let data_dir = required(a.data_dir, "data-dir")?;
    let km_url = if run { required(a.km_url, "km-url")? } else { a.km_url.unwrap_or_default() };
    let mut config = WorkerConfig::devnet(
        data_dir,
        required(a.chain_url, "chain-url")?,
        address(a.enigma, "enigma")?,
        address(a.token, "token")?,
        key(&required(a.operator_key, "operator-key")?, "operator key")?,
        km_url,
    );
    if let Some(listen) = a.p2p_listen {
        config.p2p_listen =
            listen.parse().with_context(|| format!("--p2p-listen {listen} is not a multiaddr"))?;
    }
    config.bootstrap = a
        .bootstrap
        .iter()
        .map(|b| b.parse().with_context(|| format!("--bootstrap {b} is not a multiaddr")))
        .collect::<Result<_>>()?;
    config.gateway_listen = a.gateway_listen;
    let defaults = enigma_node::GatewayLimits::default();
    config.gateway_limits = enigma_node::GatewayLimits {
        connections_per_client: a
            .gateway_connections_per_client
            .unwrap_or(defaults.connections_per_client),
        requests_per_client: a.gateway_requests_per_client.unwrap_or(defaults.requests_per_client),
    };
    config.attestation_url = a.attestation_url;
    config.simulation_authority = address(a.sim_authority, "sim-authority")?;
    config.stake = a.stake;
    if a.replicas == Some(0) {
        bail!("replicas must be at least 1 (or unset: every worker keeps every contract)");
    }
    config.replicas = a.replicas;
    if let Some(n) = a.batch_size {
        if n == 0 {
            bail!("--batch-size must be at least 1");
        }
        config.batch_size = n;
    }
    if let Some(ms) = a.batch_wait_ms {
        config.batch_wait = Duration::from_millis(ms);
    }
    if let Some(ms) = a.handover_wait_ms {
        config.handover_wait = Duration::from_millis(ms);
    }
    if let Some(ms) = a.task_time_budget_ms {
        if ms == 0 {
            bail!("--task-time-budget-ms must be at least 1");
        }
        config.task_time_budget = Duration::from_millis(ms);
    }
    config.confirmations = a.confirmations;
    Ok(config)
}

async fn worker(command: WorkerCommand) -> Result<()> {
    let (a, action) = match command.action {
        None => (command.run, None),
        Some(WorkerSub::Register(a)) => {
            let stake = a.stake;
            (a, Some(enigma_node::WorkerAction::Register { stake }))
        }
        Some(WorkerSub::Login(a)) => (a, Some(enigma_node::WorkerAction::Login)),
        Some(WorkerSub::Logout(a)) => (a, Some(enigma_node::WorkerAction::Logout)),
    };
    if let Some(action) = action {
        let json = command.json;
        let config = worker_config(a, false)?;
        let (signer, info) =
            enigma_node::manage_worker(&config, action).await.with_context(|| {
                format!("{action:?} for the worker in {}", config.data_dir.display())
            })?;
        if json {
            say!(
                "{}",
                serde_json::json!({
                    "signer": signer.to_string(),
                    "operator": info.operator.to_string(),
                    "status": format!("{:?}", info.status),
                    "stake_grains": info.balance.to_string(),
                })
            );
        } else {
            say!("worker {signer} (operator {})", info.operator);
            say!("  status {:?}  stake {} grains", info.status, info.balance);
        }
        return Ok(());
    }
    let config = worker_config(a, true)?;
    let node = start_worker(config).await.context("starting the worker")?;
    say!("worker {} ready", node.signer);
    say!(
        "  p2p:     {}",
        node.p2p_addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
    );
    if let Some(g) = node.gateway_addr {
        say!("  gateway: http://{g} (WebSocket ws://{g})");
    }
    shutdown_signal().await?;
    node.stop().await;
    Ok(())
}

async fn gateway(command: GatewayCommand) -> Result<()> {
    let mut a = command.run;
    for (given, flag) in [
        (a.stake.is_some(), "--stake"),
        (a.operator_key.is_some(), "--operator-key"),
        (a.km_url.is_some(), "--km-url"),
        (a.rpc_listen.is_some(), "--rpc-listen"),
    ] {
        if given {
            bail!(
                "a gateway runs no task and sends no transaction: {flag} is for a worker or the \
                 key manager (`enigma worker`, `enigma km`)"
            );
        }
    }
    if a.gateway_listen.is_none() {
        bail!("--gateway-listen is required: the address clients reach the gateway on");
    }
    let data_dir = required(a.data_dir.clone(), "data-dir")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    // Its own key, never registered: no epoch selects the node, so it only routes.
    let key =
        enigma_node::key_file(&data_dir.join("gateway.key")).context("the gateway's node key")?;
    a.operator_key = Some(SecretArg(format!("0x{}", hex::encode(key.secret_bytes().as_ref()))));
    let mut config = worker_config(a, false)?;
    config.gateway_only = true;
    let node = start_worker(config).await.context("starting the gateway")?;
    let Some(g) = node.gateway_addr else { bail!("the gateway did not start") };
    say!("gateway http://{g} ready (WebSocket ws://{g}; dashboard http://{g}/dashboard)");
    say!(
        "  p2p:     {}",
        node.p2p_addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
    );
    shutdown_signal().await?;
    node.stop().await;
    Ok(())
}

async fn km(command: KmCommand) -> Result<()> {
    let a = match command.action {
        None => command.run,
        Some(KmSub::Signer { args, json }) => {
            let data_dir = required(args.data_dir, "data-dir")?;
            let operator = key(&required(args.operator_key, "operator-key")?, "operator key")?;
            let authority = address(args.sim_authority, "sim-authority")?;
            let report = enigma_node::prepare_km(&data_dir, operator.address(), authority)
                .with_context(|| format!("opening the key manager in {}", data_dir.display()))?;
            if json {
                say!("{}", serde_json::json!({ "signer": report.signer.to_string() }));
            } else {
                say!("{}", report.signer);
            }
            return Ok(());
        }
    };
    let config = KmConfig {
        data_dir: required(a.data_dir, "data-dir")?,
        chain_url: required(a.chain_url, "chain-url")?,
        enigma: address(a.enigma, "enigma")?,
        token: address(a.token, "token")?,
        operator: key(&required(a.operator_key, "operator-key")?, "operator key")?,
        rpc_listen: a.rpc_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3040))),
        poll_interval: Duration::from_millis(500),
        attestation_url: a.attestation_url,
        simulation_authority: address(a.sim_authority, "sim-authority")?,
    };
    let node = start_km(config).await.context("starting the key manager")?;
    say!("key manager {} ready: getStateKeys at http://{}", node.signer, node.rpc_addr);
    shutdown_signal().await?;
    node.stop().await;
    Ok(())
}

async fn devnet(a: DevnetArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let summary_path = a.data_dir.join("devnet.json");
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    let block_ms = a.block_ms;
    let config = enigma_node::DevnetConfig {
        data_dir: a.data_dir,
        workers: a.workers,
        chain_port: a.chain_port,
        gateway: a.gateway,
        km: a.km,
        attestation: a.attestation,
        epoch_size: a.epoch_size,
        block_time: a.block_ms.map(Duration::from_millis),
        replicas: a.replicas,
        keep: a.keep,
        gateway_limits: bench::per_client_limits(usize::try_from(a.clients_per_address)?),
        ..enigma_node::DevnetConfig::default()
    };
    let devnet = enigma_node::start_devnet(config, |step| spinner.set_message(step.to_string()))
        .await
        .context("starting the devnet")?;
    spinner.finish_and_clear();
    let s = &devnet.summary;
    if a.json {
        say!("{}", serde_json::to_string_pretty(s)?);
    } else {
        say!("enigma devnet ready in {:.1} s (Ctrl-C stops it)", started.elapsed().as_secs_f64());
        say!("");
        say!("  chain       {}  (chain id {})", s.chain_url, s.chain_id);
        say!(
            "  gateway     {}  (WebSocket: ws{})",
            s.gateway_url,
            s.gateway_url.trim_start_matches("http")
        );
        say!(
            "  dashboard   {}/dashboard  (workers, epochs, contracts, tasks, live)",
            s.gateway_url
        );
        say!("  key manager {}  (signer {})", s.km_url, s.km_signer);
        say!(
            "  attestation {}  (simulation authority {})",
            s.attestation_url,
            s.simulation_authority
        );
        say!(
            "  enclaves    worker {}  key manager {}",
            short(&s.worker_measurement),
            short(&s.km_measurement)
        );
        say!("  Enigma      {}", s.deployment.enigma);
        say!("  ENG token   {}", s.deployment.token);
        for url in &s.address_urls {
            say!("  address at  {url}");
        }
        say!("  workers     {}", s.worker_signers.join(", "));
        match block_ms {
            Some(ms) => say!("  epoch size  {} blocks (a block every {ms} ms)", s.epoch_size),
            None => say!(
                "  epoch size  {} blocks (a block per transaction, a block a second when idle)",
                s.epoch_size
            ),
        }
        say!("");
        say!("  funded dev accounts (well-known anvil keys: devnet only):");
        for acct in &s.accounts {
            say!(
                "    {}  key {}  {} ENG",
                acct.address,
                acct.private_key,
                acct.eng_grains / 100_000_000
            );
        }
        say!("");
        say!("  summary written to {}", summary_path.display());
    }
    if a.example
        && let Err(e) = millionaires_example(s).await
    {
        devnet.stop().await;
        return Err(e.context("running the millionaires example"));
    }
    shutdown_signal().await?;
    devnet.stop().await;
    Ok(())
}

/// `0x1234abcd…ef01` for a long hex string.
fn short(hex: &str) -> String {
    if hex.len() > 16 { format!("{}…{}", &hex[..10], &hex[hex.len() - 4..]) } else { hex.into() }
}

/// Builds `package` of the repository's example contracts (examples/contracts) and reads its
/// WebAssembly; `who` names what needs it, for the error when not run from the repository's root.
async fn example_contract(package: &str, who: &str) -> Result<Vec<u8>> {
    let manifest = PathBuf::from("examples/contracts/Cargo.toml");
    if !manifest.is_file() {
        bail!("{who} from the repository's root (examples/contracts/Cargo.toml is not here)");
    }
    let name = package.to_string();
    let built = tokio::task::spawn_blocking(move || {
        let mut options = enigma_client::build::BuildOptions::new(manifest);
        options.packages = vec![name];
        enigma_client::build::build(&options)
    })
    .await
    .context("the build task")??;
    let wasm_path = &enigma_client::build::find(&built, package)
        .with_context(|| format!("the build produced no {package}.wasm"))?
        .wasm;
    std::fs::read(wasm_path).with_context(|| format!("reading {}", wasm_path.display()))
}

/// A client of the devnet `s` as `account`, waiting up to `timeout` for results.
fn devnet_client_config(
    s: &enigma_node::DevnetSummary,
    account: KeyPair,
    timeout: Duration,
) -> Result<enigma_client::ClientConfig> {
    Ok(enigma_client::ClientConfig {
        gateway_url: s.gateway_url.clone(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account,
        gas_px: 1,
        policy: enigma_node::devnet_policy(
            s.simulation_authority.parse().context("the devnet summary's simulation_authority")?,
        ),
        result_timeout: timeout,
    })
}

/// Builds the millionaires example and runs it against the devnet, printing each step.
async fn millionaires_example(s: &enigma_node::DevnetSummary) -> Result<()> {
    use alloy::dyn_abi::DynSolValue;
    say!("");
    say!("millionaires example: building examples/contracts for wasm32 …");
    let wasm = example_contract("millionaires", "--example runs").await?;
    let account = s.accounts.first().context("the devnet has no dev account")?;
    let client = enigma_client::Client::connect(devnet_client_config(
        s,
        key(&SecretArg(account.private_key.clone()), "dev account key")?,
        Duration::from_secs(60),
    )?)
    .await?;
    client.deposit(1_000 * 100_000_000).await?;
    say!("  deposited 1,000 ENG into {}'s prepaid balance", account.address);
    let deployed = client.deploy(&wasm, "construct()", &[], 50_000_000).await?;
    say!(
        "  deployed {} (worker {}, gas {})",
        deployed.contract,
        deployed.worker,
        deployed.gas_used
    );
    let people = [
        ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 1_000_000u64),
        ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", 5_000_000),
        ("0x90F79bf6EB2c4f870365E785982E1f101E93b906", 3_000_000),
    ];
    for (who, worth) in people {
        let args = DynSolValue::Tuple(vec![
            DynSolValue::Address(who.parse().context("an example address")?),
            DynSolValue::Uint(alloy::primitives::U256::from(worth), 256),
        ])
        .abi_encode_params();
        let o = client
            .compute(deployed.contract, "add_millionaire(address,uint256)", &args, 50_000_000)
            .await?;
        say!("  add_millionaire({who}, {worth}) — encrypted, task {}", o.task_id);
    }
    let o = client.compute(deployed.contract, "compute_richest()", &[], 50_000_000).await?;
    let richest = abi::decode_output("(address)", &o.output)?;
    say!("  compute_richest() → {} (only the caller can decrypt this)", richest.join(""));
    say!("");
    say!("the devnet keeps running; Ctrl-C stops it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_files_chain_file_and_ca_are_found_beside_it_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("worker.toml");
        std::fs::write(
            &config,
            "chain-config = \"chain.toml\"\nchain-ca = \"ca.pem\"\nstake = 5\nbatch-size = 3\n\
             gateway-connections-per-client = 200\nreplicas = 2\n",
        )
        .unwrap();
        let args = NodeArgs { config: Some(config), stake: Some(7), ..NodeArgs::default() };
        let merged = args.merge_config().unwrap();
        assert_eq!(merged.chain_config, Some(dir.path().join("chain.toml")));
        assert_eq!(merged.chain_ca, Some(dir.path().join("ca.pem")));
        assert_eq!(merged.stake, Some(7), "the flag wins");
        assert_eq!(merged.batch_size, Some(3));
        assert_eq!(merged.gateway_connections_per_client, Some(200));
        assert_eq!(merged.gateway_requests_per_client, None, "the default then");
        assert_eq!(merged.replicas, Some(2));
    }
}
