//! Yao's millionaires' problem: each millionaire submits a secret net worth; anyone may learn
//! who is richest, and nothing else.
#![no_std]

use enigma_sdk::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Millionaire {
    address: Address,
    net_worth: U256,
}

const COUNT: &str = "count";

fn key(index: u64) -> String {
    format!("millionaire/{index}")
}

#[pub_interface]
pub trait ContractInterface {
    fn construct();
    fn add_millionaire(address: Address, net_worth: U256);
    #[query]
    fn compute_richest() -> Address;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn construct() {
        write_state!(COUNT => 0u64);
    }

    fn add_millionaire(address: Address, net_worth: U256) {
        let count: u64 = read_state!(COUNT).unwrap_or(0);
        write_state!(key(count) => Millionaire { address, net_worth }, COUNT => count + 1);
    }

    fn compute_richest() -> Address {
        let count: u64 = read_state!(COUNT).unwrap_or(0);
        if count == 0 {
            fail!("no millionaires yet: call add_millionaire first");
        }
        let mut richest: Option<Millionaire> = None;
        for i in 0..count {
            let m: Millionaire =
                read_state!(&key(i)).unwrap_or_else(|| fail!("millionaire {i} is missing"));
            if richest.as_ref().is_none_or(|r| m.net_worth > r.net_worth) {
                richest = Some(m);
            }
        }
        richest.map(|m| m.address).unwrap_or_default()
    }
}
