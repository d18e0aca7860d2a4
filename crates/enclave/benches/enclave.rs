//! One compute task through the enclave boundary, simulation backend: serialize the call,
//! derive the user key, decrypt the inputs, run the contract, encrypt the output and the delta,
//! sign the receipt, serialize the result. Client-side encryption is prepared outside the timing.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the benchmark runs on the host"
)]

use std::{hint::black_box, time::Instant};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use enigma_enclave::*;
use enigma_types::{ContractAddress, delta_hash};

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn boundary(c: &mut Criterion) {
    let mut net = Net::new(&[100]);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    net.provision(0, contract).unwrap();
    let key = net.workers[0].enclave.io_key(EPOCH).unwrap();
    let signer = net.workers[0].signer;
    let code = millionaires();
    let deployed = net.workers[0]
        .enclave
        .deploy(deploy_task(
            id,
            code.clone(),
            &ClientTask::deploy(&key, signer, id, "construct()", &[]),
        ))
        .unwrap();
    let code_hash = deployed.code_hash;
    let mut position =
        ChainPosition { next_index: 1, tip: delta_hash(&deployed.delta.unwrap().bytes) };
    let worker = &mut net.workers[0].enclave;

    let add = |who: u8| {
        (AlloyAddress::repeat_byte(who), U256::from(u64::from(who) * 1000)).abi_encode_params()
    };
    for i in 0..10u8 {
        let id = next_task(1 + u64::from(i));
        let client = ClientTask::new(
            &key,
            signer,
            contract,
            id,
            "add_millionaire(address,uint256)",
            &add(i),
        );
        let mut task = compute_task(id, contract, code_hash, position, &client);
        task.code = Some(code.clone());
        let r = worker.compute(task).unwrap();
        position = ChainPosition {
            next_index: position.next_index + 1,
            tip: delta_hash(&r.delta.unwrap().bytes),
        };
    }

    c.bench_function("enclave_millionaires_compute_richest_task", |b| {
        b.iter_batched(
            || {
                compute_task(
                    next_task(99),
                    contract,
                    code_hash,
                    position,
                    &ClientTask::new(
                        &key,
                        signer,
                        contract,
                        next_task(99),
                        "compute_richest()",
                        &[],
                    ),
                )
            },
            |task| black_box(worker.compute(task).unwrap()),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("enclave_millionaires_add_millionaire_task", |b| {
        b.iter_custom(|iters| {
            let tasks: Vec<ClientTask> = (0..iters)
                .map(|i| {
                    ClientTask::new(
                        &key,
                        signer,
                        contract,
                        next_task(1000 + i),
                        "add_millionaire(address,uint256)",
                        &add(i as u8),
                    )
                })
                .collect();
            let start = Instant::now();
            for (i, client) in tasks.iter().enumerate() {
                let task =
                    compute_task(next_task(1000 + i as u64), contract, code_hash, position, client);
                let r = worker.compute(task).unwrap();
                position = ChainPosition {
                    next_index: position.next_index + 1,
                    tip: delta_hash(&r.delta.unwrap().bytes),
                };
            }
            start.elapsed()
        })
    });
}

criterion_group!(benches, boundary);
criterion_main!(benches);
