//! Client-observed task latency against a fresh devnet: how long a dApp waits from calling
//! `compute` (select and verify the worker, encrypt, record the task on chain, send, await,
//! verify and decrypt) to holding the decrypted result.
//!
//! ```text
//! cargo run --release -p enigma-client --example latency -- 200
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measuring tool reports on the terminal"
)]

#[allow(dead_code, reason = "this example takes only the client configuration from it")]
mod common;

use std::{path::PathBuf, time::Duration, time::Instant};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_client::Client;
use enigma_crypto::KeyPair;
use enigma_node::{DevnetConfig, start_devnet};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), common::Error> {
    let tasks: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("the task count must be a number, got {n:?}"))?,
        None => 200,
    };
    if tasks == 0 {
        return Err("the task count must be at least 1".into());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_client::build::BuildOptions::examples(&root);
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
    let s = &devnet.summary;
    let account =
        KeyPair::from_slice(&hex::decode(s.accounts[0].private_key.trim_start_matches("0x"))?)?;
    let client =
        Client::connect(common::client_config(s, account, Duration::from_secs(30))?).await?;
    client.deposit(50_000 * 100_000_000).await?;
    let contract = client.deploy(&wasm, "construct()", &[], 50_000_000).await?.contract;

    let mut samples = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let args = (AlloyAddress::repeat_byte((i % 250) as u8 + 1), U256::from(i as u64))
            .abi_encode_params();
        let start = Instant::now();
        client.compute(contract, "add_millionaire(address,uint256)", &args, 50_000_000).await?;
        samples.push(start.elapsed());
        if (i + 1) % 50 == 0 {
            eprintln!("{}/{tasks} tasks", i + 1);
        }
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let total: Duration = samples.iter().sum();
    println!(
        "{tasks} tasks: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / tasks as f64,
    );
    devnet.stop().await;
    Ok(())
}
