//! The secret-contract engine: runs a contract's wasm module on wasmi with fuel metering behind
//! the eng-wasm-compatible host ABI of PROTOCOL.md section 6, and returns its output, the delta
//! of the state keys it wrote, the gas it used and any Ethereum call it asked for.
//!
//! It has no I/O: a contract's state is reached through [`StateReader`] and its randomness
//! through [`Randomness`], so the same code runs inside the enclave and in host-side tests.
//!
//! ```no_run
//! use enigma_runtime::{ContractCode, ContractState, Entry, Limits, Runtime, Task};
//! use enigma_types::GasLimit;
//!
//! # fn rng() -> impl enigma_runtime::Randomness { struct R; impl enigma_runtime::Randomness for R { fn fill(&mut self, b: &mut [u8]) { b.fill(4) } fn fill_iv(&mut self, b: &mut [u8]) { b.fill(5) } } R }
//! let wasm: Vec<u8> = std::fs::read("millionaires.wasm")?;
//! let mut runtime = Runtime::new(Limits::default());
//! let code = ContractCode::new(&wasm);
//! runtime.validate(&wasm)?;
//! let mut state = ContractState::new();
//! let deployed = runtime.execute(&code, Task::deploy("construct()", &[], GasLimit(1_000_000)), &state, &mut rng());
//! let success = deployed.result?;
//! state.apply(&success.delta, enigma_types::DeltaHash([1; 32]))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Gas is wasmi fuel at its default per-instruction costs (tied to the pinned wasmi 2.x) plus the
//! host costs in [`gas`]. Modules are compiled eagerly, so a contract pays no translation fuel
//! and the gas of a task is the same on every worker, cached module or not.
//!
//! Features: `std` (default) enables std in wasmi and the crypto crates; without it the crate is
//! `no_std` + `alloc`.
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![cfg_attr(not(test), deny(clippy::panic))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod exec;
pub mod gas;
mod host;
mod limits;
mod module;
mod state;

pub use error::{ExecError, ModuleError, TrapKind};
pub use exec::{
    ContractCode, Deadline, Entry, EthCall, FUEL_SLICE, Interrupted, NoDeadline, Outcome, Runtime,
    Success, Task,
};
pub use host::{BALANCE_KEY, RESERVED_PREFIX, permit_revoked, revoked_permit_key, stored_balance};
pub use limits::Limits;
pub use state::{ContractState, Randomness, StateError, StateReader};
