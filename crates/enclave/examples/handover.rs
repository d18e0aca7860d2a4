//! A contract with many deltas changes hands: one worker enclave runs `--deltas N` state-writing
//! tasks of the `ledger` example (200,000 by default: `record(n)` for n = 1, 2, …), then the
//! worker the next epoch selects loads the whole encrypted delta chain in parts of `--part P`
//! deltas (10,000 by default, as a worker node does) and runs the first task on it: a
//! `record(1)` that must answer the total and the count of every entry before it.
//! Prints how long producing, loading and the first task took.
//!
//! ```text
//! cargo run --release -p enigma-enclave --example handover -- --deltas 200000
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    reason = "a measuring tool on the host"
)]

use std::time::Instant;

use alloy_primitives::U256;
use alloy_sol_types::SolValue;
use enigma_enclave::*;
use enigma_types::{ContractAddress, delta_hash};

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn ledger() -> Vec<u8> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_contract_build::BuildOptions::examples(&root);
    let built = enigma_contract_build::build(&options).expect("the examples build");
    std::fs::read(&enigma_contract_build::find(&built, "ledger").unwrap().wasm).unwrap()
}

fn main() {
    let (mut deltas_wanted, mut part) = (200_000usize, 10_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: handover [--deltas N] [--part P]");
            std::process::exit(2)
        });
        match flag.as_str() {
            "--deltas" => deltas_wanted = value.max(2),
            "--part" => part = value.clamp(1, 100_000),
            _ => {
                eprintln!("unknown option {flag} (--deltas N, --part P)");
                std::process::exit(2)
            }
        }
    }

    let mut net = Net::new(&[100, 300]);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    let w = net.selected(&contract);
    let code = ledger();
    let code_hash = enigma_types::code_hash(&code);
    net.provision_code(w, contract, code_hash).unwrap();
    let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
    let signer = net.workers[w].signer;
    let deployed = net.workers[w]
        .enclave
        .deploy(deploy_task(
            id,
            code.clone(),
            &ClientTask::deploy(&key, signer, id, "construct()", &[]),
        ))
        .unwrap();
    assert_eq!(deployed.status, TaskStatus::Success);
    let first = deployed.delta.unwrap();
    let mut position = ChainPosition { next_index: 1, tip: delta_hash(&first.bytes) };
    let mut deltas = vec![first];

    eprintln!("producing {deltas_wanted} deltas …");
    let started = Instant::now();
    let mut n = 1u64;
    while deltas.len() < deltas_wanted {
        let args = (U256::from(n),).abi_encode_params();
        let client =
            ClientTask::new(&key, signer, contract, next_task(n), "record(uint256)", &args);
        let mut task = compute_task(next_task(n), contract, code_hash, position, &client);
        if n == 1 {
            task.code = Some(code.clone());
        }
        let r = net.workers[w].enclave.compute(task).unwrap();
        assert_eq!(r.status, TaskStatus::Success);
        let d = r.delta.unwrap();
        position = ChainPosition { next_index: position.next_index + 1, tip: delta_hash(&d.bytes) };
        deltas.push(d);
        n += 1;
        if deltas.len() % 50_000 == 0 {
            eprintln!("  {} deltas", deltas.len());
        }
    }
    let produced = started.elapsed();
    let entries = n - 1;
    let bytes: usize = deltas.iter().map(|d| d.bytes.len()).sum();

    // The next epoch selects the other worker: it gets the key and the encrypted deltas.
    let other = 1 - w;
    net.draw(1, if other == 0 { vec![100, 0] } else { vec![0, 100] });
    net.provision_code(other, contract, code_hash).unwrap();
    let enclave = &net.workers[other].enclave;
    let key_id = ContractKeyId { contract, code_hash };
    let started = Instant::now();
    let mut parts = 0;
    let mut at = 0;
    while deltas.len() - at > part {
        let state = EncryptedState { snapshot: None, deltas: deltas[at..at + part].to_vec() };
        at = usize::try_from(enclave.load_state(key_id, state).unwrap().next_index).unwrap();
        parts += 1;
    }
    let loaded = started.elapsed();

    let key = enclave.io_key(EPOCH).unwrap();
    let args = (U256::from(1u64),).abi_encode_params();
    let client = ClientTask::new(
        &key,
        net.workers[other].signer,
        contract,
        next_task(n),
        "record(uint256)",
        &args,
    );
    let mut task = compute_task(next_task(n), contract, code_hash, position, &client);
    task.code = Some(code);
    task.state = Some(EncryptedState { snapshot: None, deltas: deltas[at..].to_vec() });
    let started = Instant::now();
    let result = enclave.compute(task).unwrap();
    let first_task = started.elapsed();
    let output = client.open(&result.encrypted_output);
    assert_eq!(result.status, TaskStatus::Success, "{}", String::from_utf8_lossy(&output));
    let (total, count) = <(U256, U256)>::abi_decode_params(&output).unwrap();
    let expected =
        U256::from(entries) * U256::from(entries + 1) / U256::from(2u64) + U256::from(1u64);
    assert_eq!((total, count), (expected, U256::from(entries + 1)), "the state handed over");

    println!(
        "{} deltas ({:.1} MB encrypted): produced in {:.1} s ({:.0}/s); the new holder loaded \
         {parts} parts of {part} in {:.2} s ({:.0} deltas/s) and ran its first task (with the \
         last {} deltas) in {:.1} ms: total {total} over {count} entries (right)",
        deltas.len(),
        bytes as f64 / 1e6,
        produced.as_secs_f64(),
        deltas.len() as f64 / produced.as_secs_f64(),
        loaded.as_secs_f64(),
        at as f64 / loaded.as_secs_f64(),
        deltas.len() - at,
        first_task.as_secs_f64() * 1e3,
    );
}
