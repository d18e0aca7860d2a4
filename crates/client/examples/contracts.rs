//! Many contracts on one devnet: `--clients` accounts deploy `--contracts` ledger contracts
//! (10,000 by default) through the gateway, then one task runs on the first, a middle and the
//! last. Reported: deployments per second, the disk each worker's store takes and the devnet
//! process's resident memory (the key manager, the workers and the gateway together) before and
//! after, and whether the tasks on old and new contracts still run. Progress every 5 s on
//! stderr; `--json` prints the summary as JSON on stdout.
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
    json: bool,
}

fn options() -> Result<Options, Error> {
    let mut o = Options { contracts: 10_000, clients: 20, workers: 3, block_ms: 0, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            o.json = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
        match flag.as_str() {
            "--contracts" => o.contracts = usize::try_from(n)?,
            "--clients" => o.clients = usize::try_from(n)?,
            "--workers" => o.workers = usize::try_from(n)?,
            "--block-ms" => o.block_ms = n,
            other => {
                return Err(format!(
                    "unknown option {other} (--contracts N, --clients N, --workers N, --block-ms N, --json)"
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
    let devnet = start_devnet(
        DevnetConfig {
            workers: o.workers,
            epoch_size: 100_000,
            timeout_blocks: 100_000,
            block_time: (o.block_ms > 0).then(|| Duration::from_millis(o.block_ms)),
            ..DevnetConfig::on_free_ports(data_dir.clone())
        },
        |_| {},
    )
    .await?;
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
    });
    if o.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    devnet.stop().await;
    Ok(())
}
