//! A compute-heavy contract for the runtime's benchmark: how far interpreted wasm is from
//! native on the same code.
#![no_std]

extern crate alloc;

use enigma_sdk::prelude::*;

mod kernel;

#[pub_interface]
pub trait ContractInterface {
    /// The number of primes below `n` and a hash over them.
    fn primes_below(n: u32) -> (u32, u64);
}

pub struct Contract;

impl ContractInterface for Contract {
    fn primes_below(n: u32) -> (u32, u64) {
        if n > 10_000_000 {
            fail!("n is at most 10,000,000");
        }
        kernel::primes_below(n)
    }
}
