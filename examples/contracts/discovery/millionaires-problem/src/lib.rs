//! Discovery's `millionaires_problem_demo`: millionaires add their net worth in secret; anyone
//! learns who is richest, never how rich. Addresses are `bytes32`, as in Discovery's tests.

#![no_std]

use eng_wasm::*;
use eng_wasm_derive::pub_interface;
use serde::{Deserialize, Serialize};

static MILLIONAIRES: &str = "millionaires";

#[derive(Serialize, Deserialize)]
pub struct Millionaire {
    address: H256,
    net_worth: U256,
}

#[pub_interface]
pub trait ContractInterface {
    fn add_millionaire(address: H256, net_worth: U256);
    fn compute_richest() -> H256;
}

pub struct Contract;

impl Contract {
    /// Read before anything is written, the key is missing: eng-wasm reads `null` and gets none.
    fn get_millionaires() -> Vec<Millionaire> {
        read_state!(MILLIONAIRES).unwrap_or_default()
    }
}

impl ContractInterface for Contract {
    fn add_millionaire(address: H256, net_worth: U256) {
        let mut millionaires = Self::get_millionaires();
        millionaires.push(Millionaire { address, net_worth });
        write_state!(MILLIONAIRES => millionaires);
    }

    fn compute_richest() -> H256 {
        match Self::get_millionaires().iter().max_by_key(|m| m.net_worth) {
            Some(m) => m.address,
            None => H256::ZERO,
        }
    }
}
