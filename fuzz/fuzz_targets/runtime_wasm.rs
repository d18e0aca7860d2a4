//! Any module through the contract runtime: validated, deployed and called with a small gas
//! limit. Fuel bounds the time of every run and the limits its memory; nothing may panic.
#![no_main]

use enigma_runtime::{ContractCode, ContractState, Limits, Randomness, Runtime, Task};
use enigma_types::GasLimit;
use libfuzzer_sys::fuzz_target;

struct Zeros;

impl Randomness for Zeros {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
    fn fill_iv(&mut self, buf: &mut [u8]) {
        buf.fill(1);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut runtime = Runtime::new(Limits { max_memory_pages: 16, ..Limits::default() });
    if runtime.validate(data).is_err() {
        return;
    }
    let code = ContractCode::new(data);
    let state = ContractState::new();
    let gas = GasLimit(2_000_000);
    let deployed =
        runtime.execute(&code, Task::deploy("construct()", &[], gas), &state, &mut Zeros);
    let _ = deployed;
    for function in ["add(uint256)", "value()", "compute_richest()"] {
        let _ = runtime.execute(&code, Task::call(function, &[0; 32], gas), &state, &mut Zeros);
        let _ = runtime.execute(&code, Task::query(function, &[], gas), &state, &mut Zeros);
    }
});
