//! Runtime benchmarks: a compute task of the millionaires and calculator examples end to end
//! (instantiate, run, collect the delta) with a cached module; module compilation cold and
//! cached; and a compute-heavy function against the same Rust code compiled natively.

#![allow(clippy::print_stderr, reason = "the bench reports the gas it measured")]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the benchmark runs on the host"
)]

extern crate alloc;

use std::{hint::black_box, path::PathBuf};

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use criterion::{Criterion, criterion_group, criterion_main};
use enigma_contract_build::{BuildOptions, build, find};
use enigma_runtime::{ContractCode, ContractState, Limits, Randomness, Runtime, Task};
use enigma_types::{DeltaHash, GasLimit};

#[path = "../../../examples/contracts/compute/src/kernel.rs"]
mod kernel;

struct Rng;

impl Randomness for Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(3);
    }

    fn fill_iv(&mut self, buf: &mut [u8]) {
        buf.fill(3);
    }
}

fn modules() -> Vec<enigma_contract_build::Built> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = BuildOptions::examples(&root);
    build(&options).expect("the example contracts build")
}

fn read(built: &[enigma_contract_build::Built], name: &str) -> Vec<u8> {
    std::fs::read(&find(built, name).expect("built").wasm).expect("readable")
}

const GAS: GasLimit = GasLimit(1_000_000_000);

fn tasks(c: &mut Criterion) {
    let built = modules();
    let millionaires = read(&built, "millionaires");
    let calculator = read(&built, "calculator");
    let compute = read(&built, "compute");

    // Millionaires with ten entries in state, then compute_richest / add_millionaire.
    let mut rt = Runtime::new(Limits::default());
    let code = ContractCode::new(&millionaires);
    let mut state = ContractState::new();
    let deployed =
        rt.execute(&code, Task::deploy("construct()", &[], GAS), &state, &mut Rng).result.unwrap();
    state.apply(&deployed.delta, DeltaHash([1; 32])).unwrap();
    for i in 0..10u8 {
        let args = (Address::repeat_byte(i), U256::from(u64::from(i) * 1000)).abi_encode_params();
        let task = Task::call("add_millionaire(address,uint256)", &args, GAS).after(&state);
        let done = rt.execute(&code, task, &state, &mut Rng).result.unwrap();
        state.apply(&done.delta, DeltaHash([i + 2; 32])).unwrap();
    }
    let add_args = (Address::repeat_byte(0xaa), U256::from(77u64)).abi_encode_params();
    c.bench_function("millionaires_add_millionaire_task", |b| {
        b.iter(|| {
            let task = Task::call("add_millionaire(address,uint256)", &add_args, GAS).after(&state);
            black_box(rt.execute(&code, task, &state, &mut Rng))
        })
    });
    c.bench_function("millionaires_compute_richest_task_10", |b| {
        b.iter(|| {
            black_box(rt.execute(
                &code,
                Task::call("compute_richest()", &[], GAS),
                &state,
                &mut Rng,
            ))
        })
    });

    let calc = ContractCode::new(&calculator);
    let calc_args = (U256::from(1234u64), U256::from(5678u64)).abi_encode_params();
    let empty = ContractState::new();
    c.bench_function("calculator_add_task", |b| {
        b.iter(|| {
            black_box(rt.execute(
                &calc,
                Task::call("add(uint256,uint256)", &calc_args, GAS),
                &empty,
                &mut Rng,
            ))
        })
    });

    c.bench_function("compile_millionaires_cold", |b| {
        b.iter(|| {
            let mut fresh = Runtime::new(Limits::default());
            black_box(fresh.validate(&millionaires).unwrap())
        })
    });
    c.bench_function("compile_millionaires_cached", |b| {
        b.iter(|| rt.prepare(black_box(&code)).unwrap())
    });

    let n = 200_000u32;
    let compute_code = ContractCode::new(&compute);
    let compute_args = (n,).abi_encode_params();
    let expected = kernel::primes_below(n);
    let out = rt.execute(
        &compute_code,
        Task::call("primes_below(uint32)", &compute_args, GAS),
        &empty,
        &mut Rng,
    );
    let result = out.result.unwrap();
    assert_eq!(
        <(u32, u64)>::abi_decode_params(&result.output).unwrap(),
        expected,
        "wasm and native agree"
    );
    eprintln!("primes_below({n}) uses {} gas", out.gas_used.0);
    let mut group = c.benchmark_group("primes_below_200k");
    group.sample_size(20);
    group.bench_function("wasm", |b| {
        b.iter(|| {
            black_box(rt.execute(
                &compute_code,
                Task::call("primes_below(uint32)", &compute_args, GAS),
                &empty,
                &mut Rng,
            ))
        })
    });
    group.bench_function("native", |b| b.iter(|| black_box(kernel::primes_below(black_box(n)))));
    group.finish();
}

criterion_group!(benches, tasks);
criterion_main!(benches);
