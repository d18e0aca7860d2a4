//! Shared by the example-contract tests: builds the examples once per test binary and drives a
//! contract through deploy and calls, carrying state by applying each returned delta.

#![allow(dead_code)]

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use enigma_contract_build::{BuildOptions, build};
use enigma_runtime::{
    ContractCode, ContractState, ExecError, Limits, Outcome, Randomness, Runtime, Task,
};
use enigma_types::{DeltaHash, GasLimit, delta::Delta, keccak256};

/// Builds every example contract (once per process) and returns its module.
pub(crate) fn wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = BuildOptions::examples(&root);
        build(&options)
            .expect("the example contracts build")
            .into_iter()
            .map(|b| (b.name.replace('-', "_"), b.wasm))
            .collect()
    });
    let path =
        built.get(&name.replace('-', "_")).unwrap_or_else(|| panic!("no example contract {name}"));
    std::fs::read(path).expect("the built module is readable")
}

/// A deterministic stand-in for the enclave's RNG (a counter through Keccak).
pub(crate) struct TestRng(u64);

impl Randomness for TestRng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            self.0 += 1;
            let block = keccak256(self.0.to_be_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    fn fill_iv(&mut self, buf: &mut [u8]) {
        self.fill(buf);
    }
}

pub(crate) const GAS: u64 = 200_000_000;

/// A deployed contract and its state, as an enclave would keep them.
pub(crate) struct Contract {
    pub(crate) runtime: Runtime,
    pub(crate) wasm: Vec<u8>,
    pub(crate) state: ContractState,
    pub(crate) rng: TestRng,
    /// Every delta applied, in order (as the chain would list their hashes).
    pub(crate) deltas: Vec<Delta>,
    /// The verified caller of the next calls (as an enclave passes it on).
    pub(crate) caller: Option<enigma_types::Address>,
}

impl Contract {
    /// Deploys example `name` with the constructor's ABI-encoded `args`.
    pub(crate) fn deploy(name: &str, constructor: &str, args: &[u8]) -> Self {
        let wasm = wasm(name);
        let mut runtime = Runtime::new(Limits::default());
        runtime.validate(&wasm).expect("the example validates");
        let mut contract = Self {
            runtime,
            wasm,
            state: ContractState::new(),
            rng: TestRng(0),
            deltas: Vec::new(),
            caller: None,
        };
        let outcome = contract.run(Task::deploy(constructor, args, GasLimit(GAS)));
        let success = outcome.result.unwrap_or_else(|e| panic!("deploy of {name} failed: {e}"));
        assert!(outcome.gas_used.0 > contract.wasm.len() as u64, "deploy pays per byte of code");
        assert_eq!(success.delta.index, 0);
        contract.apply(&success.delta);
        contract
    }

    fn run(&mut self, task: Task<'_>) -> Outcome {
        let code = ContractCode::new(&self.wasm);
        self.runtime.execute(&code, task, &self.state, &mut self.rng)
    }

    /// Applies a delta the way an enclave does after decrypting it: through its canonical
    /// encoding, checked against the chain position. The "encrypted delta hash" here is the hash
    /// of the plaintext encoding (encryption belongs to the enclave).
    fn apply(&mut self, delta: &Delta) {
        let bytes = delta.encode();
        let decoded = Delta::decode(&bytes).expect("a delta decodes");
        assert_eq!(&decoded, delta);
        self.state.apply(&decoded, DeltaHash(keccak256(&bytes))).expect("the delta applies");
        self.deltas.push(decoded);
    }

    /// Calls `function` with ABI-encoded `args`; applies the delta on success.
    pub(crate) fn call_outcome(&mut self, function: &str, args: &[u8], gas: u64) -> Outcome {
        self.paying_outcome(function, args, gas, 0)
    }

    /// Calls `function` bringing `value` grains to the contract; applies the delta on success.
    pub(crate) fn paying_outcome(
        &mut self,
        function: &str,
        args: &[u8],
        gas: u64,
        value: u128,
    ) -> Outcome {
        let task = Task::call(function, args, GasLimit(gas))
            .after(&self.state)
            .paying(value)
            .called_by(self.caller);
        let outcome = self.run(task);
        if let Ok(success) = &outcome.result
            && !success.delta.is_empty()
        {
            let delta = success.delta.clone();
            self.apply(&delta);
        }
        outcome
    }

    /// Calls and returns the output, or the error.
    pub(crate) fn call(&mut self, function: &str, args: &[u8]) -> Result<Vec<u8>, ExecError> {
        let outcome = self.call_outcome(function, args, GAS);
        assert!(outcome.gas_used.0 >= enigma_runtime::gas::TASK_BASE && outcome.gas_used.0 < GAS);
        outcome.result.map(|s| s.output)
    }

    /// Calls bringing `value` grains; returns the output and the payouts, or the error.
    pub(crate) fn pay_call(
        &mut self,
        function: &str,
        args: &[u8],
        value: u128,
    ) -> Result<(Vec<u8>, Vec<enigma_types::payouts::Payout>), ExecError> {
        self.paying_outcome(function, args, GAS, value).result.map(|s| (s.output, s.payouts))
    }

    /// Asks `function` as a read-only query: its output, or the error. Nothing is applied.
    pub(crate) fn query(&mut self, function: &str, args: &[u8]) -> Result<Vec<u8>, ExecError> {
        let task = Task::query(function, args, GasLimit(GAS)).after(&self.state);
        let outcome = self.run(task);
        if let Ok(done) = &outcome.result {
            assert!(done.delta.is_empty(), "a query changes nothing");
        }
        outcome.result.map(|s| s.output)
    }

    /// The contract's ENG balance as its state holds it.
    pub(crate) fn balance(&self) -> u128 {
        enigma_runtime::stored_balance(&self.state)
    }

    /// Calls and expects success.
    pub(crate) fn ok(&mut self, function: &str, args: &[u8]) -> Vec<u8> {
        self.call(function, args).unwrap_or_else(|e| panic!("{function} failed: {e}"))
    }
}
