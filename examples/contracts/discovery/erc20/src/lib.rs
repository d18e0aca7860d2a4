//! Discovery's `erc20`: a token whose balances and allowances are secret. Every change is
//! authorized by a signature of the account it debits (the contract's owner for `mint`) over
//! the action's fields, checked inside the enclave.

#![no_std]

use alloy_primitives::Signature;
use eng_wasm::*;
use eng_wasm_derive::pub_interface;
use serde::{Deserialize, Serialize};

static TOTAL_SUPPLY: &str = "total_supply";
static OWNER: &str = "owner";

#[derive(Serialize, Deserialize, Default)]
pub struct User {
    balance: U256,
    /// Allowances by spender (64-char lowercase hex of the spender).
    approved: alloc::collections::BTreeMap<String, U256>,
}

extern crate alloc;

#[pub_interface]
pub trait ContractInterface {
    fn construct(contract_owner: H256, total_supply: U256);
    fn total_supply() -> U256;
    fn balance_of(token_owner: H256) -> U256;
    fn allowance(owner: H256, spender: H256) -> U256;
    fn mint(owner: H256, addr: H256, tokens: U256, sig: Vec<u8>);
    fn transfer(from: H256, to: H256, tokens: U256, sig: Vec<u8>);
    fn approve(token_owner: H256, spender: H256, tokens: U256, sig: Vec<u8>);
    fn transfer_from(owner: H256, from: H256, to: H256, tokens: U256, sig: Vec<u8>);
}

pub struct Contract;

fn key(account: &H256) -> String {
    eformat!("{:x}", account)
}

fn user(account: &H256) -> User {
    read_state!(key(account)).unwrap_or_default()
}

/// The 32-byte account a key signs for: its Ethereum address, left-padded (as Discovery's
/// tests passed addresses as bytes32).
fn account_of(address: Address) -> H256 {
    address.into_word()
}

/// Checks that `sig` (65 bytes, r ‖ s ‖ v) is `signer`'s over keccak256 of `fields`, each
/// length-prefixed (u64 big-endian).
fn verify(signer: &H256, fields: &[&[u8]], sig: &[u8]) {
    let mut message = Vec::new();
    for f in fields {
        message.extend_from_slice(&(f.len() as u64).to_be_bytes());
        message.extend_from_slice(f);
    }
    let signature = Signature::from_raw(sig).expect("a malformed signature");
    let recovered = signature
        .recover_address_from_prehash(&keccak256(&message))
        .expect("the signature does not recover");
    assert!(account_of(recovered) == *signer, "the signature is not the account's");
}

impl ContractInterface for Contract {
    fn construct(contract_owner: H256, total_supply: U256) {
        let mut owner = user(&contract_owner);
        owner.balance = total_supply;
        write_state!(key(&contract_owner) => owner, OWNER => contract_owner, TOTAL_SUPPLY => total_supply);
    }

    fn total_supply() -> U256 {
        read_state!(TOTAL_SUPPLY).unwrap_or_default()
    }

    fn balance_of(token_owner: H256) -> U256 {
        user(&token_owner).balance
    }

    fn allowance(owner: H256, spender: H256) -> U256 {
        user(&owner).approved.get(&key(&spender)).copied().unwrap_or_default()
    }

    fn mint(owner: H256, addr: H256, tokens: U256, sig: Vec<u8>) {
        let contract_owner: H256 = read_state!(OWNER).expect("no owner");
        assert!(owner == contract_owner, "only the contract's owner mints");
        verify(&owner, &[b"mint", addr.as_slice(), &tokens.to_be_bytes::<32>()], &sig);
        let mut to = user(&addr);
        to.balance = to.balance.checked_add(tokens).expect("balance overflow");
        let supply: U256 = read_state!(TOTAL_SUPPLY).unwrap_or_default();
        let supply = supply.checked_add(tokens).expect("supply overflow");
        write_state!(key(&addr) => to, TOTAL_SUPPLY => supply);
    }

    fn transfer(from: H256, to: H256, tokens: U256, sig: Vec<u8>) {
        verify(&from, &[b"transfer", to.as_slice(), &tokens.to_be_bytes::<32>()], &sig);
        let mut sender = user(&from);
        sender.balance = sender.balance.checked_sub(tokens).expect("insufficient balance");
        write_state!(key(&from) => sender);
        let mut receiver = user(&to);
        receiver.balance = receiver.balance.checked_add(tokens).expect("balance overflow");
        write_state!(key(&to) => receiver);
    }

    fn approve(token_owner: H256, spender: H256, tokens: U256, sig: Vec<u8>) {
        verify(&token_owner, &[b"approve", spender.as_slice(), &tokens.to_be_bytes::<32>()], &sig);
        let mut owner = user(&token_owner);
        owner.approved.insert(key(&spender), tokens);
        write_state!(key(&token_owner) => owner);
    }

    fn transfer_from(owner: H256, from: H256, to: H256, tokens: U256, sig: Vec<u8>) {
        // `owner` is the spender the allowance was given to; it signs.
        verify(
            &owner,
            &[b"transfer_from", from.as_slice(), to.as_slice(), &tokens.to_be_bytes::<32>()],
            &sig,
        );
        let mut holder = user(&from);
        let allowed = holder.approved.get(&key(&owner)).copied().unwrap_or_default();
        let left = allowed.checked_sub(tokens).expect("allowance exceeded");
        holder.approved.insert(key(&owner), left);
        holder.balance = holder.balance.checked_sub(tokens).expect("insufficient balance");
        write_state!(key(&from) => holder);
        let mut receiver = user(&to);
        receiver.balance = receiver.balance.checked_add(tokens).expect("balance overflow");
        write_state!(key(&to) => receiver);
    }
}
