//! A calculator on uint256: the smallest secret contract. Overflow, underflow and division by
//! zero fail the task with a message instead of wrapping.
#![no_std]

use enigma_sdk::prelude::*;

#[pub_interface]
pub trait ContractInterface {
    #[query]
    fn add(a: U256, b: U256) -> Result<U256, String>;
    #[query]
    fn sub(a: U256, b: U256) -> Result<U256, String>;
    #[query]
    fn mul(a: U256, b: U256) -> Result<U256, String>;
    #[query]
    fn div(a: U256, b: U256) -> Result<U256, String>;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn add(a: U256, b: U256) -> Result<U256, String> {
        a.checked_add(b).ok_or_else(|| "overflow: a + b is larger than 2^256 - 1".into())
    }

    fn sub(a: U256, b: U256) -> Result<U256, String> {
        a.checked_sub(b).ok_or_else(|| "underflow: b is larger than a".into())
    }

    fn mul(a: U256, b: U256) -> Result<U256, String> {
        a.checked_mul(b).ok_or_else(|| "overflow: a * b is larger than 2^256 - 1".into())
    }

    fn div(a: U256, b: U256) -> Result<U256, String> {
        a.checked_div(b).ok_or_else(|| "division by zero".into())
    }
}
