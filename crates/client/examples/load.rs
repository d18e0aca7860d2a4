//! The network under load, end to end: a fresh devnet (anvil, the key manager, the workers and
//! the gateway in this process), `--clients` accounts each sending state-writing tasks one after
//! another to `--contracts` ledger contracts for `--seconds`, then everything counted against
//! the chain. A task is *completed* when its client verified and decrypted the result **and**
//! the chain holds its receipt (`Verified`); tasks/s is completed tasks over the load's seconds.
//!
//! Reported: completed tasks/s; latency percentiles of each stage (recording: select the worker,
//! check its attestation, encrypt, record on chain; executing: send through the gateway, run,
//! get the signed result, verify and decrypt) and of the whole; the CPU the devnet process
//! (clients, gateway, workers, key manager) and anvil spent per completed task; Ethereum gas per
//! task (its record transaction and its share of its receipt batch, from the chain's own
//! transaction receipts); the chain's final status of every recorded task; failures by kind.
//! Progress every 5 s on stderr; `--json` prints the summary as JSON on stdout; `RUST_LOG` (e.g.
//! `enigma_node=debug`) logs what the nodes and clients do, on stderr.
//!
//! ```text
//! cargo run --profile devnet -p enigma-client --example load -- --clients 20 --contracts 5 --seconds 30
//! cargo run --profile devnet -p enigma-client --example load -- --clients 20 --batch 16 --json
//! ```
//!
//! With `--batch N` each client records N tasks in one transaction (`Client::record_many`; with
//! `--record-batches`, `Client::record_batch`: one Merkle root on chain), sends them, then
//! collects their results; a task's recording time is its batch's. With `--record-window-ms W`
//! each client is built with `Client::batch_records(W ms)` and starts its `--batch N` tasks as N
//! concurrent `compute` calls, which it records as one record batch by itself. With `--block-ms N` anvil mines a block every N ms holding
//! every transaction sent meanwhile (as a fast L2 does) instead of one block per transaction.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measuring tool reports on the terminal"
)]

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::B256,
    providers::Provider as _,
    rpc::types::{Filter, Log},
};
use alloy_primitives::U256;
use alloy_sol_types::{SolEvent as _, SolValue as _};
use enigma_chain::{
    TaskStatus,
    bindings::{Enigma, EnigmaBatches},
};
use enigma_client::Client;
use enigma_node::{DevnetConfig, start_devnet};
use enigma_types::{TaskId, task_id};

mod common;

use common::Error;

const GAS: u64 = 50_000_000;

struct Options {
    clients: usize,
    contracts: usize,
    seconds: u64,
    workers: usize,
    /// Tasks each client records in one transaction (`Client::record_many`).
    batch: usize,
    /// Record them as a record batch (`Client::record_batch`: one Merkle root on chain).
    record_batches: bool,
    /// Mine a block every this many ms instead of one per transaction (0: per transaction).
    block_ms: u64,
    /// Start each batch's tasks as concurrent `compute` calls of a client built with
    /// `Client::batch_records(this many ms)`, instead of recording them explicitly.
    record_window_ms: u64,
    json: bool,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        clients: 20,
        contracts: 5,
        seconds: 30,
        workers: 3,
        batch: 1,
        record_batches: false,
        block_ms: 0,
        record_window_ms: 0,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            o.json = true;
            continue;
        }
        if flag == "--record-batches" {
            o.record_batches = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
        let n_usize = usize::try_from(n)?;
        match flag.as_str() {
            "--clients" => o.clients = n_usize,
            "--contracts" => o.contracts = n_usize,
            "--seconds" => o.seconds = n,
            "--workers" => o.workers = n_usize,
            "--batch" => o.batch = n_usize,
            "--block-ms" => o.block_ms = n,
            "--record-window-ms" => o.record_window_ms = n,
            other => {
                return Err(format!(
                    "unknown option {other} (--clients N, --contracts N, --seconds N, --workers N, --batch N, --record-batches, --record-window-ms N, --block-ms N, --json)"
                )
                .into());
            }
        }
    }
    if o.clients == 0 || o.contracts == 0 || o.seconds == 0 || o.workers == 0 || o.batch == 0 {
        return Err(
            "--clients, --contracts, --seconds, --workers and --batch must be at least 1".into()
        );
    }
    Ok(o)
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

/// The anvil this process started (a child named `anvil`).
fn anvil_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        let ppid: u32 = stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()?;
        (name == "anvil" && ppid == me).then_some(pid)
    })
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

/// One finished call of the load.
struct Done {
    record: Duration,
    execute: Option<Duration>,
    answered: Option<TaskId>,
    error: Option<String>,
}

/// Gas of the distinct transactions that emitted `logs`.
async fn gas_of(client: &Client, logs: &[Log]) -> Result<u64, Error> {
    let txs: HashSet<B256> = logs.iter().filter_map(|l| l.transaction_hash).collect();
    let mut gas = 0;
    for tx in txs {
        if let Some(r) = client.chain().provider().get_transaction_receipt(tx).await? {
            gas += r.gas_used;
        }
    }
    Ok(gas)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let o = options()?;
    // RUST_LOG=enigma_node=debug (say) shows what the nodes and clients do, on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let say = |line: String| {
        if !o.json {
            println!("{line}");
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = enigma_client::build::BuildOptions::examples(&root);
    build.packages = vec!["ledger".into()];
    let built = enigma_client::build::build(&build)?;
    let ledger = std::fs::read(
        &enigma_client::build::find(&built, "ledger")
            .ok_or("the examples workspace has no ledger contract")?
            .wasm,
    )?;

    let dir = tempfile::tempdir()?;
    eprintln!("starting a devnet with {} workers …", o.workers);
    let devnet = start_devnet(
        DevnetConfig {
            workers: o.workers,
            // One epoch for the whole run: the load measures the steady state.
            epoch_size: 100_000,
            timeout_blocks: 100_000,
            block_time: (o.block_ms > 0).then(|| Duration::from_millis(o.block_ms)),
            // Every client here comes from 127.0.0.1, which the gateway would count as one
            // client (64 connections, 32 requests in flight): let each of these be one.
            gateway_limits: enigma_node::GatewayLimits {
                connections_per_client: 64 * o.clients.max(1),
                requests_per_client: 32 * o.clients.max(1),
            },
            ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
        },
        |_| {},
    )
    .await?;
    let s = devnet.summary.clone();
    eprintln!("funding {} accounts and deploying {} ledgers …", o.clients, o.contracts);
    let (funder, clients) = common::funded_clients(
        &s,
        o.clients,
        Duration::from_secs(30),
        (o.record_window_ms > 0).then(|| Duration::from_millis(o.record_window_ms)),
    )
    .await?;
    let mut contracts = Vec::new();
    for _ in 0..o.contracts {
        contracts.push(clients[0].deploy(&ledger, "construct()", &[], GAS).await?.contract);
    }

    // The load.
    let mut starts = Vec::new();
    for c in &clients {
        let user = c.chain().account().ok_or("a client without an account")?;
        starts.push(c.chain().task_nonce(user).await?);
    }
    let first_block = funder.chain().block_number().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let answered_count = Arc::new(AtomicU64::new(0));
    let failed_count = Arc::new(AtomicU64::new(0));
    let done: Arc<Mutex<Vec<Done>>> = Arc::default();
    let (cpu_before, anvil) = (cpu(std::process::id()), anvil_pid());
    let anvil_before = anvil.and_then(cpu);
    let started = Instant::now();
    let mut load = tokio::task::JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let (c, contract) = (c.clone(), contracts[i % contracts.len()]);
        let (stop, done) = (stop.clone(), done.clone());
        let (answered_count, failed_count) = (answered_count.clone(), failed_count.clone());
        let (batch, record_batches) = (o.batch, o.record_batches);
        let windowed = o.record_window_ms > 0;
        load.spawn(async move {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let amounts: Vec<Vec<u8>> = (0..batch)
                    .map(|_| {
                        k += 1;
                        (U256::from((i as u64) << 32 | k),).abi_encode_params()
                    })
                    .collect();
                let calls: Vec<_> = amounts
                    .iter()
                    .map(|a| (contract, "record(uint256)", a.as_slice(), GAS))
                    .collect();
                let at = Instant::now();
                if windowed {
                    // The batch's tasks as concurrent computes: the client records them as one
                    // record batch by itself, and they are sent at once (the workers put them
                    // in the chain's order). A task's recording time is not separable here:
                    // its whole time counts as execute.
                    let computes = amounts
                        .iter()
                        .map(|a| c.compute(contract, "record(uint256)", a, GAS))
                        .collect::<Vec<_>>();
                    let outcomes = futures::future::join_all(computes).await;
                    let elapsed = at.elapsed();
                    for outcome in outcomes {
                        let entry = match outcome {
                            Ok(o) => {
                                answered_count.fetch_add(1, Ordering::Relaxed);
                                Done {
                                    record: Duration::ZERO,
                                    execute: Some(elapsed),
                                    answered: Some(o.task_id),
                                    error: None,
                                }
                            }
                            Err(e) => {
                                if failed_count.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!("the first failure, at once: {e}");
                                }
                                Done {
                                    record: Duration::ZERO,
                                    execute: None,
                                    answered: None,
                                    error: Some(e.to_string()),
                                }
                            }
                        };
                        if let Ok(mut d) = done.lock() {
                            d.push(entry);
                        }
                    }
                    continue;
                }
                let recorded = if batch == 1 && !record_batches {
                    c.record_compute(contract, "record(uint256)", &amounts[0], GAS)
                        .await
                        .map(|t| vec![t])
                } else {
                    if record_batches {
                        c.record_batch(&calls).await
                    } else {
                        c.record_many(&calls).await
                    }
                };
                let record = at.elapsed();
                let mut entries = Vec::new();
                match recorded {
                    Err(e) => entries.push(Err(e)),
                    Ok(tasks) => {
                        // Sent in the chain's order, each once the worker took the one before
                        // (a send returns then), the results collected after. Sending a batch
                        // all at once does worse today (BENCHMARKS.md).
                        let mut handles = Vec::new();
                        for task in tasks {
                            let at = Instant::now();
                            match c.send(task).await {
                                Ok(h) => handles.push((at, h)),
                                Err(e) => entries.push(Err(e)),
                            }
                        }
                        for (at, h) in handles {
                            entries.push(h.result().await.map(|o| (o.task_id, at.elapsed())));
                        }
                    }
                }
                for outcome in entries {
                    let entry = match outcome {
                        Ok((id, execute)) => {
                            answered_count.fetch_add(1, Ordering::Relaxed);
                            Done { record, execute: Some(execute), answered: Some(id), error: None }
                        }
                        Err(e) => {
                            if failed_count.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("the first failure, at once: {e}");
                            }
                            Done {
                                record,
                                execute: None,
                                answered: None,
                                error: Some(e.to_string()),
                            }
                        }
                    };
                    if let Ok(mut d) = done.lock() {
                        d.push(entry);
                    }
                }
            }
        });
    }
    let deadline = started + Duration::from_secs(o.seconds);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5).min(deadline - Instant::now())).await;
        let t = started.elapsed().as_secs_f64();
        let n = answered_count.load(Ordering::Relaxed);
        eprintln!(
            "[{t:>4.0} s] {n} tasks answered ({:.1}/s), {} failed",
            n as f64 / t,
            failed_count.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let load_secs = started.elapsed().as_secs_f64();
    let cpu_spent = cpu(std::process::id()).zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
    let anvil_spent = anvil.and_then(cpu).zip(anvil_before).map(|(a, b)| a.saturating_sub(b));

    // Every recorded task, counted against the chain once it settles (receipts go in batches).
    eprintln!("waiting for every recorded task to settle on chain …");
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut verified = HashSet::new();
    let mut recorded = 0u64;
    let settle_by = Instant::now() + Duration::from_secs(120);
    for (c, start) in clients.iter().zip(&starts) {
        let user = c.chain().account().ok_or("a client without an account")?;
        let end = c.chain().task_nonce(user).await?;
        for n in *start..end {
            recorded += 1;
            let id = task_id(&user, n);
            let status = loop {
                let status = c.chain().task(&id).await?.map_or(TaskStatus::Created, |r| r.status);
                if status.is_final() || Instant::now() > settle_by {
                    break status;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if status == TaskStatus::Verified {
                verified.insert(id);
            }
            *statuses.entry(format!("{status:?}")).or_default() += 1;
        }
    }
    let last_block = funder.chain().block_number().await?;
    let done = std::mem::take(&mut *done.lock().map_err(|_| "a poisoned lock")?);
    let completed =
        done.iter().filter_map(|d| d.answered).filter(|id| verified.contains(id)).count();

    // Gas: the record transactions and the receipt transactions of the load's blocks.
    let enigma = enigma_chain::convert::eth(s.deployment.enigma);
    let logs = |signatures: Vec<B256>| {
        let filter = Filter::new()
            .address(enigma)
            .event_signature(signatures)
            .from_block(first_block)
            .to_block(last_block);
        let provider = funder.chain().provider().clone();
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
    ])
    .await?;
    let receipt_txs: BTreeSet<B256> =
        receipt_logs.iter().filter_map(|l| l.transaction_hash).collect();
    let (record_gas, receipt_gas) =
        (gas_of(&funder, &record_logs).await?, gas_of(&funder, &receipt_logs).await?);
    let settled =
        statuses.iter().filter(|(s, _)| *s != "Created").map(|(_, n)| n).sum::<u64>().max(1);
    let per = |gas: u64, n: u64| gas / n.max(1);

    // Latency of the answered tasks (a failure's time says little).
    let mut record: Vec<Duration> =
        done.iter().filter(|d| d.execute.is_some()).map(|d| d.record).collect();
    let mut execute: Vec<Duration> = done.iter().filter_map(|d| d.execute).collect();
    let mut total: Vec<Duration> =
        done.iter().filter_map(|d| d.execute.map(|e| e + d.record)).collect();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for e in done.iter().filter_map(|d| d.error.as_deref()) {
        let n = failures.entry(kind(e)).or_default();
        if *n == 0 {
            eprintln!("a failure, in full: {e}");
        }
        *n += 1;
    }
    let ms_per = |d: Option<Duration>| {
        d.map(|d| (d.as_secs_f64() * 1e3 / completed.max(1) as f64 * 100.0).round() / 100.0)
    };
    let summary = serde_json::json!({
        "clients": o.clients,
        "contracts": o.contracts,
        "workers": o.workers,
        "batch": o.batch,
        "record_batches": o.record_batches,
        "seconds": (load_secs * 10.0).round() / 10.0,
        "calls": done.len(),
        "answered": done.iter().filter(|d| d.answered.is_some()).count(),
        "completed": completed,
        "completed_per_second": (completed as f64 / load_secs * 10.0).round() / 10.0,
        "recorded": recorded,
        "chain_status": statuses,
        "latency": {
            "record": percentiles(&mut record),
            "execute": percentiles(&mut execute),
            "total": percentiles(&mut total),
        },
        "cpu_ms_per_completed_task": {
            "devnet_process": ms_per(cpu_spent),
            "anvil": ms_per(anvil_spent),
        },
        "gas_per_task": {
            "record": per(record_gas, recorded),
            "receipt": per(receipt_gas, settled),
            "all_in": per(record_gas, recorded) + per(receipt_gas, settled),
            "receipt_transactions": receipt_txs.len(),
        },
        "failures": failures,
    });
    if o.json {
        println!("{summary}");
    } else {
        say(format!(
            "{} clients on {} contracts, {} workers, {:.1} s: {} calls, {} answered, {} completed end to end ({:.1} tasks/s)",
            o.clients,
            o.contracts,
            o.workers,
            load_secs,
            done.len(),
            summary["answered"],
            completed,
            completed as f64 / load_secs,
        ));
        say(format!("chain: {recorded} recorded, {statuses:?}"));
        for (stage, v) in [
            ("record", &summary["latency"]["record"]),
            ("execute", &summary["latency"]["execute"]),
            ("total", &summary["latency"]["total"]),
        ] {
            say(format!("latency {stage:<8} {v}"));
        }
        say(format!("CPU per completed task: {}", summary["cpu_ms_per_completed_task"]));
        say(format!("gas per task: {}", summary["gas_per_task"]));
        for (k, n) in &failures {
            say(format!("failed ×{n}: {k}"));
        }
    }
    devnet.stop().await;
    Ok(())
}
