//! A private ledger: secret entries and their running total. Every `record` changes the state and
//! answers with what the state now holds, so a sequence of tasks can be checked step by step
//! against a reference execution (the network tests carry it across epochs and workers).
#![no_std]

use enigma_sdk::prelude::*;

const TOTAL: &str = "total";
const COUNT: &str = "count";

#[pub_interface]
pub trait ContractInterface {
    fn construct();
    /// Records a positive `amount`; returns the new total and the number of entries.
    fn record(amount: U256) -> Result<(U256, U256), String>;
    /// The `index`-th entry (from 0).
    #[query]
    fn entry(index: U256) -> Result<U256, String>;
    /// The total and the number of entries.
    #[query]
    fn summary() -> (U256, U256);
}

fn summary() -> (U256, U256) {
    let total: U256 = read_state!(TOTAL).unwrap_or_default();
    let count: u64 = read_state!(COUNT).unwrap_or(0);
    (total, U256::from(count))
}

pub struct Contract;

impl ContractInterface for Contract {
    fn construct() {
        write_state!(TOTAL => U256::ZERO, COUNT => 0u64);
    }

    fn record(amount: U256) -> Result<(U256, U256), String> {
        if amount.is_zero() {
            return Err("an entry must be positive".into());
        }
        let (total, count) = summary();
        let total = total.checked_add(amount).ok_or_else(|| String::from("the total overflows"))?;
        let index: u64 = count.to::<u64>();
        write_state!(format!("entry/{index}") => amount, TOTAL => total, COUNT => index + 1);
        Ok((total, U256::from(index + 1)))
    }

    fn entry(index: U256) -> Result<U256, String> {
        read_state!(format!("entry/{index}")).ok_or_else(|| format!("there is no entry {index}"))
    }

    fn summary() -> (U256, U256) {
        summary()
    }
}
