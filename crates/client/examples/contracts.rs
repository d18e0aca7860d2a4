//! Many contracts on one devnet: `--clients` accounts deploy `--contracts` ledger contracts
//! (10,000 by default) through the gateway, then one task runs on the first, a middle and the
//! last. Reported: deployments per second, the disk each worker's store takes and the devnet
//! process's resident memory (the key manager, the workers and the gateway together) before and
//! after, and whether the tasks on old and new contracts still run. Progress every 5 s on
//! stderr; `--json` prints the summary as JSON on stdout.
//!
//! `--join` then measures a worker joining the network: the devnet is stopped and resumed with
//! one worker more (`keep`), which registers, stakes and enters the next epoch with an empty
//! store; reported are the resumption's time (until every worker, the new one too, entered that
//! epoch) and the time until the new worker served a task on every sampled contract the epoch
//! selected it for (`--epoch-blocks` must let an epoch end soon: the default of 100,000 blocks
//! does not).
//!
//! ```text
//! cargo run --profile devnet -p enigma-client --example contracts -- --contracts 10000 --block-ms 100
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measuring tool reports on the terminal"
)]

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use alloy_sol_types::SolValue as _;
use enigma_node::{DevnetConfig, start_devnet};
use enigma_types::ContractAddress;

mod common;

use common::Error;

const GAS: u64 = 50_000_000;

struct Options {
    contracts: usize,
    clients: usize,
    workers: usize,
    block_ms: u64,
    epoch_blocks: u64,
    join: bool,
    json: bool,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        contracts: 10_000,
        clients: 20,
        workers: 3,
        block_ms: 0,
        epoch_blocks: 100_000,
        join: false,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" || flag == "--join" {
            if flag == "--json" {
                o.json = true;
            } else {
                o.join = true;
            }
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
        match flag.as_str() {
            "--contracts" => o.contracts = usize::try_from(n)?,
            "--clients" => o.clients = usize::try_from(n)?,
            "--workers" => o.workers = usize::try_from(n)?,
            "--block-ms" => o.block_ms = n,
            "--epoch-blocks" => o.epoch_blocks = n,
            other => {
                return Err(format!(
                    "unknown option {other} (--contracts N, --clients N, --workers N, --block-ms N, \
                     --epoch-blocks N, --join, --json)"
                )
                .into());
            }
        }
    }
    if o.contracts == 0 || o.clients == 0 || o.workers == 0 {
        return Err("--contracts, --clients and --workers must be at least 1".into());
    }
    Ok(o)
}

/// Bytes under `dir`, recursively.
fn disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => disk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// This process's resident memory in bytes (`VmRSS`).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1e5).round() / 10.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let o = options()?;
    // RUST_LOG=enigma_node=debug (say) shows what the nodes do, on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = enigma_client::build::BuildOptions::examples(&root);
    build.packages = vec!["ledger".into()];
    let built = enigma_client::build::build(&build)?;
    let ledger = std::fs::read(
        &enigma_client::build::find(&built, "ledger")
            .ok_or("the examples workspace has no ledger contract")?
            .wasm,
    )?;

    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("devnet");
    eprintln!("starting a devnet with {} workers …", o.workers);
    let config = DevnetConfig {
        workers: o.workers,
        epoch_size: o.epoch_blocks,
        timeout_blocks: 100_000,
        block_time: (o.block_ms > 0).then(|| Duration::from_millis(o.block_ms)),
        ..DevnetConfig::on_free_ports(data_dir.clone())
    };
    let devnet = start_devnet(config.clone(), |_| {}).await?;
    let s = devnet.summary.clone();
    let workers_disk = |dir: &Path| -> Vec<f64> {
        (0..o.workers).map(|i| mb(disk(&dir.join(format!("worker{i}"))))).collect()
    };
    let (rss_before, disk_before) = (rss(), workers_disk(&data_dir));
    eprintln!("funding {} accounts …", o.clients);
    let (funder, clients) =
        common::funded_clients(&s, o.clients, Duration::from_secs(60), None).await?;

    eprintln!("deploying {} ledgers from {} clients …", o.contracts, o.clients);
    let deployed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut deploys = tokio::task::JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let share = o.contracts / o.clients + usize::from(i < o.contracts % o.clients);
        let (c, ledger) = (c.clone(), ledger.clone());
        let (deployed, failed) = (deployed.clone(), failed.clone());
        deploys.spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..share {
                match c.deploy(&ledger, "construct()", &[], GAS).await {
                    Ok(d) => {
                        deployed.fetch_add(1, Ordering::Relaxed);
                        mine.push(d.contract);
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("a deployment failed: {e}");
                        }
                    }
                }
            }
            mine
        });
    }
    let progress = {
        let deployed = deployed.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = deployed.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>5.0} s] {n} contracts deployed ({:.1}/s)",
                    start.elapsed().as_secs_f64(),
                    n as f64 / start.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut contracts: Vec<ContractAddress> = Vec::new();
    while let Some(mine) = deploys.join_next().await {
        contracts.extend(mine?);
    }
    progress.abort();
    let deploy_secs = started.elapsed().as_secs_f64();
    let on_chain = funder.chain().enigma().secretContractCount().call().await?.to::<u64>();

    // Old and new contracts still serve: a task on the first, a middle and the last.
    let mut served = Vec::new();
    let picks = [0, contracts.len() / 2, contracts.len().saturating_sub(1)];
    let started = Instant::now();
    for &i in &picks {
        let Some(contract) = contracts.get(i) else { continue };
        let args = (U256::from(7u64),).abi_encode_params();
        let out = clients[0].compute(*contract, "record(uint256)", &args, GAS).await?;
        let (total, count) = <(U256, U256)>::abi_decode_params(&out.output)?;
        served.push(total == U256::from(7u64) && count == U256::from(1u64));
    }
    let serve_secs = started.elapsed().as_secs_f64();
    let (rss_after, disk_after) = (rss(), workers_disk(&data_dir));

    let joined = if o.join {
        drop(clients);
        drop(funder);
        devnet.stop().await;
        Some(join(&o, config, &contracts).await?)
    } else {
        devnet.stop().await;
        None
    };

    let summary = serde_json::json!({
        "contracts": contracts.len(),
        "on_chain": on_chain,
        "failed": failed.load(Ordering::Relaxed),
        "workers": o.workers,
        "clients": o.clients,
        "block_ms": o.block_ms,
        "deploy_seconds": (deploy_secs * 10.0).round() / 10.0,
        "deploys_per_second": (contracts.len() as f64 / deploy_secs * 10.0).round() / 10.0,
        "worker_disk_mb_before": disk_before,
        "worker_disk_mb_after": disk_after,
        "process_rss_mb_before": mb(rss_before),
        "process_rss_mb_after": mb(rss_after),
        "tasks_on_first_middle_last_right": served,
        "those_tasks_seconds": (serve_secs * 100.0).round() / 100.0,
        "join": joined,
    });
    if o.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// Resumes the stopped devnet with one worker more and measures how soon the new worker serves
/// the sampled contracts the next epoch gives it.
async fn join(
    o: &Options,
    config: DevnetConfig,
    contracts: &[ContractAddress],
) -> Result<serde_json::Value, Error> {
    eprintln!("resuming with {} workers (one new) …", o.workers + 1);
    let devnet_dir = config.data_dir.clone();
    let started = Instant::now();
    let devnet = start_devnet(DevnetConfig { workers: o.workers + 1, keep: true, ..config }, |m| {
        eprintln!("  {m}")
    })
    .await?;
    let ready_secs = started.elapsed().as_secs_f64();
    let s = devnet.summary.clone();
    let newcomer = s.worker_signers.last().cloned().ok_or("the devnet has no workers")?;
    let (_funder, clients) = common::funded_clients(&s, 1, Duration::from_secs(300), None).await?;
    let client = clients.first().ok_or("no client")?.clone();
    let chain = client.chain();
    let block = chain.block_number().await?;
    // Every 20th contract; those whose group the new worker leads are its to serve.
    let mut mine = Vec::new();
    for contract in contracts.iter().step_by(20) {
        let group = chain.worker_group(block, contract).await?;
        if group.first().is_some_and(|w| w.to_string().eq_ignore_ascii_case(&newcomer)) {
            mine.push(*contract);
        }
    }
    eprintln!(
        "the new worker leads {} of {} sampled contracts; a task on each …",
        mine.len(),
        contracts.len().div_ceil(20)
    );
    let serving = Instant::now();
    let mut first_task_ms = Vec::new();
    let mut right = 0;
    let mut on_newcomer = 0;
    // The first, middle and last contract already ran a task of 7 (see main).
    let picked = [0, contracts.len() / 2, contracts.len().saturating_sub(1)].map(|i| contracts[i]);
    for contract in &mine {
        let t = Instant::now();
        let args = (U256::from(5u64),).abi_encode_params();
        let out = client.compute(*contract, "record(uint256)", &args, GAS).await?;
        first_task_ms.push(t.elapsed().as_secs_f64() * 1e3);
        eprintln!("  first task on {contract}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
        let (total, count) = <(U256, U256)>::abi_decode_params(&out.output)?;
        let expected = if picked.contains(contract) { (12u64, 2u64) } else { (5, 1) };
        if (total, count) == (U256::from(expected.0), U256::from(expected.1)) {
            right += 1;
        }
        if out.worker.to_string().eq_ignore_ascii_case(&newcomer) {
            on_newcomer += 1;
        }
    }
    let serve_secs = serving.elapsed().as_secs_f64();
    first_task_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        first_task_ms
            .get(((first_task_ms.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |v| (v * 10.0).round() / 10.0)
    };
    let new_disk = mb(disk(&devnet_dir.join(format!("worker{}", o.workers))));
    devnet.stop().await;
    Ok(serde_json::json!({
        "new_worker_disk_mb": new_disk,
        "resumed_with_new_worker_seconds": (ready_secs * 10.0).round() / 10.0,
        "sampled_contracts_it_leads": mine.len(),
        "served_right": right,
        "served_by_the_new_worker": on_newcomer,
        "serving_them_one_after_another_seconds": (serve_secs * 10.0).round() / 10.0,
        "first_task_ms_p50_p95_max": [pct(0.5), pct(0.95), pct(1.0)],
    }))
}
