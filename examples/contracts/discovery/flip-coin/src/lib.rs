//! Discovery's `flip_coin`: a fair coin from the task's randomness, and a commit-and-guess game
//! whose commitment stays secret in the contract's state.

#![no_std]

use eng_wasm::*;
use eng_wasm_derive::pub_interface;

static COMMITMENT: &str = "commitment";

#[pub_interface]
pub trait ContractInterface {
    fn flip() -> bool;
    fn commit(commitment: bool);
    fn guess(guess: bool) -> bool;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn flip() -> bool {
        Rand::gen::<u8>() % 2 == 1
    }

    fn commit(commitment: bool) {
        let existing: Option<bool> = read_state!(COMMITMENT);
        if existing.is_some() {
            panic!("a commitment is already made");
        }
        write_state!(COMMITMENT => commitment);
    }

    fn guess(guess: bool) -> bool {
        let commitment: bool = remove_from_state!(COMMITMENT).expect("no commitment to guess");
        guess == commitment
    }
}
