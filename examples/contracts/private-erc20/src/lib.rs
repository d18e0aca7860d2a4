//! A private ERC-20: balances live only in secret state. A transfer moves tokens from the task's
//! verified caller (the account that signed the task: nobody can spend another's tokens). A
//! balance is shown to its holder only: `balance_of` takes the holder's secp256k1 signature,
//! checked inside the contract, over `keccak256(abi.encode("balance", holder, nonce))`; each
//! signature consumes the holder's nonce so it cannot be replayed.
#![no_std]

use enigma_sdk::{
    alloy_primitives::{Signature, keccak256},
    prelude::*,
};

const SUPPLY: &str = "supply";

fn balance_key(holder: Address) -> String {
    format!("balance/{holder}")
}

fn nonce_key(holder: Address) -> String {
    format!("nonce/{holder}")
}

fn balance(holder: Address) -> U256 {
    read_state!(balance_key(holder)).unwrap_or_default()
}

/// Checks that `signature` is `holder`'s over `message` and consumes `holder`'s nonce.
fn authorize(holder: Address, message: &[u8], signature: &[u8]) -> Result<(), String> {
    let signature =
        Signature::from_raw(signature).map_err(|e| format!("malformed signature: {e}"))?;
    let signer = signature
        .recover_address_from_prehash(&keccak256(message))
        .map_err(|e| format!("signature does not recover: {e}"))?;
    if signer != holder {
        return Err(format!(
            "the signature is by {signer}, not by {holder} (or it signs another nonce)"
        ));
    }
    let nonce: u64 = read_state!(nonce_key(holder)).unwrap_or(0);
    write_state!(nonce_key(holder) => nonce + 1);
    Ok(())
}

fn nonce(holder: Address) -> U256 {
    U256::from(read_state!(nonce_key(holder)).unwrap_or(0u64))
}

#[pub_interface]
pub trait ContractInterface {
    fn construct(owner: Address, supply: U256);
    /// Moves `amount` from the caller to `to`.
    fn transfer(to: Address, amount: U256) -> Result<(), String>;
    /// `holder`'s balance. `signature` is `holder`'s over
    /// `keccak256(abi.encode("balance", holder, nonce_of(holder)))`.
    fn balance_of(holder: Address, signature: Bytes) -> Result<U256, String>;
    /// The caller's own balance (ask it as a query: nothing is recorded, only the caller
    /// learns it).
    #[query]
    fn my_balance() -> U256;
    /// The nonce the holder's next signature must cover.
    #[query]
    fn nonce_of(holder: Address) -> U256;
    #[query]
    fn total_supply() -> U256;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn construct(owner: Address, supply: U256) {
        write_state!(balance_key(owner) => supply, SUPPLY => supply);
    }

    fn transfer(to: Address, amount: U256) -> Result<(), String> {
        let from = caller();
        let from_balance = balance(from);
        let left = from_balance
            .checked_sub(amount)
            .ok_or_else(|| format!("insufficient balance: {from} has less than {amount}"))?;
        write_state!(balance_key(from) => left);
        let to_balance = balance(to);
        write_state!(balance_key(to) => to_balance + amount);
        Ok(())
    }

    fn balance_of(holder: Address, signature: Bytes) -> Result<U256, String> {
        let message = (String::from("balance"), holder, nonce(holder)).abi_encode_params();
        authorize(holder, &message, &signature)?;
        Ok(balance(holder))
    }

    fn my_balance() -> U256 {
        balance(caller())
    }

    fn nonce_of(holder: Address) -> U256 {
        nonce(holder)
    }

    fn total_supply() -> U256 {
        read_state!(SUPPLY).unwrap_or_default()
    }
}
