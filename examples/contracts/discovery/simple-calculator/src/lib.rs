//! Discovery's `simple_calculator`: checked arithmetic on uint256 (an overflow or a division by
//! zero panics, and the task fails).

#![no_std]

use eng_wasm::*;
use eng_wasm_derive::pub_interface;

#[pub_interface]
pub trait ContractInterface {
    fn add(a: U256, b: U256) -> U256;
    fn sub(a: U256, b: U256) -> U256;
    fn mul(a: U256, b: U256) -> U256;
    fn div(a: U256, b: U256) -> U256;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn add(a: U256, b: U256) -> U256 {
        a.checked_add(b).expect("addition overflow")
    }

    fn sub(a: U256, b: U256) -> U256 {
        a.checked_sub(b).expect("subtraction underflow")
    }

    fn mul(a: U256, b: U256) -> U256 {
        a.checked_mul(b).expect("multiplication overflow")
    }

    fn div(a: U256, b: U256) -> U256 {
        a.checked_div(b).expect("division by zero")
    }
}
