//! Read-only query latency and throughput against a fresh devnet: how long a dApp waits from
//! calling `query` (select the worker, encrypt and sign the query, send it, verify the signed
//! answer against the chain, decrypt) to holding the answer; then how many queries per second
//! 32 concurrent clients get answered while tasks run: first with each query signed by its
//! caller, then with a permit each client signed once (what a dApp does).
//!
//! ```text
//! cargo run --release -p enigma-client --example queries -- 500 10
//! ```
//! (500 sequential queries, then 10 seconds of 32 concurrent clients signing each query, then
//! 10 seconds of 32 concurrent clients with permits.)

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measuring tool reports on the terminal"
)]

#[allow(dead_code, reason = "this example takes only the client configuration from it")]
mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use common::Error;
use enigma_client::{Client, ClientConfig, ClientError};
use enigma_crypto::KeyPair;
use enigma_node::{DevnetConfig, DevnetSummary, start_devnet};

/// A client of `account` (queries need no funds: each concurrent client asks as its own caller,
/// as users of a dApp do, so no caller's query rate is shared).
fn config(s: &DevnetSummary, account: KeyPair) -> Result<ClientConfig, Error> {
    common::client_config(s, account, Duration::from_secs(30))
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let queries: usize = match args.next() {
        Some(n) => n.parse().map_err(|_| format!("the query count must be a number, got {n:?}"))?,
        None => 500,
    };
    let seconds: u64 = match args.next() {
        Some(n) => n.parse().map_err(|_| format!("the seconds must be a number, got {n:?}"))?,
        None => 10,
    };
    if queries == 0 {
        return Err("the query count must be at least 1".into());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages = vec!["millionaires".into()];
    let built = enigma_client::build::build(&options)?;
    let wasm = std::fs::read(
        &enigma_client::build::find(&built, "millionaires")
            .ok_or("the examples workspace has no millionaires contract")?
            .wasm,
    )?;

    let dir = tempfile::tempdir()?;
    let devnet = start_devnet(
        DevnetConfig {
            epoch_size: 100_000,
            ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
        },
        |_| {},
    )
    .await?;
    let s = devnet.summary.clone();
    let first =
        KeyPair::from_slice(&hex::decode(s.accounts[0].private_key.trim_start_matches("0x"))?)?;
    let client = Client::connect(config(&s, first)?).await?;
    client.deposit(50_000 * 100_000_000).await?;
    let contract = client.deploy(&wasm, "construct()", &[], 50_000_000).await?.contract;
    // The tasks that run beside the queries go to a contract of their own: the one queried keeps
    // its 10 entries, so every query does the same work.
    let written = client.deploy(&wasm, "construct()", &[], 50_000_000).await?.contract;
    for i in 0..10u8 {
        let args =
            (AlloyAddress::repeat_byte(i + 1), U256::from(u64::from(i) * 7)).abi_encode_params();
        let o =
            client.compute(contract, "add_millionaire(address,uint256)", &args, 50_000_000).await?;
        client.confirm(&o).await?;
    }

    // 1. One client, one query at a time.
    client.query(contract, "compute_richest()", &[]).await?;
    let mut samples = Vec::with_capacity(queries);
    // One caller may ask an enclave 500 queries a second: past that it is told "busy", and asks
    // again in the next second (those answers are not timed).
    let mut refused = 0;
    while samples.len() < queries {
        let start = Instant::now();
        match client.query(contract, "compute_richest()", &[]).await {
            Ok(_) => samples.push(start.elapsed()),
            Err(ClientError::Gateway(why)) if why.contains("busy") => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "{queries} sequential queries: {} ({refused} refused as over the caller's rate)",
        percentiles(samples)
    );

    // 2. 32 clients asking at once for `seconds`, while one client sends tasks: each query
    // signed, then with a permit each.
    let client = Arc::new(client);
    for permits in [false, true] {
        let (n, elapsed, busy, failed, tasks, samples) =
            concurrent(&s, &client, contract, written, seconds, permits).await?;
        println!(
            "32 concurrent clients for {seconds} s, {}: {n} queries answered ({:.0}/s), {busy} refused as busy, {failed} failed; {tasks} tasks ran meanwhile; latency {}",
            if permits { "each with a permit" } else { "each query signed" },
            n as f64 / elapsed,
            if samples.is_empty() { "-".to_string() } else { percentiles(samples) },
        );
    }
    devnet.stop().await;
    Ok(())
}

/// 32 clients query `contract` for `seconds` while `tasker` sends tasks to `written`: the queries
/// answered, the seconds it took, those refused as busy, those failed, the tasks run and the
/// answered queries' latencies.
async fn concurrent(
    s: &DevnetSummary,
    tasker: &Arc<Client>,
    contract: enigma_types::ContractAddress,
    written: enigma_types::ContractAddress,
    seconds: u64,
    permits: bool,
) -> Result<(u64, f64, u64, u64, u64, Vec<Duration>), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, busy, failed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let expiry =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 3600;
    let mut askers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let c = Client::connect(config(s, KeyPair::generate()?)?).await?;
        let options = enigma_client::QueryOptions {
            permit: if permits {
                Some(c.sign_permit("queries benchmark", &[contract], expiry).await?)
            } else {
                None
            },
            ..enigma_client::QueryOptions::default()
        };
        let (stop, answered, busy, failed) =
            (stop.clone(), answered.clone(), busy.clone(), failed.clone());
        askers.spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                match c.query_with(contract, "compute_richest()", &[], &options).await {
                    Ok(_) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        samples.push(start.elapsed());
                    }
                    Err(ClientError::Gateway(why)) if why.contains("busy") => {
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("a query failed: {e}");
                        }
                    }
                }
            }
            samples
        });
    }
    let tasks_stop = stop.clone();
    let client = tasker.clone();
    let tasks = tokio::spawn(async move {
        let mut sent = 0u64;
        while !tasks_stop.load(Ordering::Relaxed) {
            let args = (AlloyAddress::repeat_byte(0xee), U256::from(sent)).abi_encode_params();
            if client
                .compute(written, "add_millionaire(address,uint256)", &args, 50_000_000)
                .await
                .is_ok()
            {
                sent += 1;
            }
        }
        sent
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    while let Some(done) = askers.join_next().await {
        samples.extend(done?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        answered.load(Ordering::Relaxed),
        elapsed,
        busy.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        tasks.await?,
        samples,
    ))
}
