//! The private ERC-20 through the runtime: signatures checked inside the contract.

mod common;

use alloy_primitives::{Address, Bytes, U256, keccak256};
use alloy_sol_types::SolValue;
use common::Contract;
use enigma_crypto::KeyPair;
use enigma_runtime::ExecError;

fn address(key: &KeyPair) -> Address {
    Address::from(key.address().0)
}

fn nonce(c: &mut Contract, holder: Address) -> U256 {
    <(U256,)>::abi_decode_params(&c.ok("nonce_of(address)", &(holder,).abi_encode_params()))
        .unwrap()
        .0
}

fn sign(key: &KeyPair, message: Vec<u8>) -> Bytes {
    Bytes::from(key.sign_digest(&keccak256(message).0).as_bytes().to_vec())
}

fn transfer(
    c: &mut Contract,
    key: &KeyPair,
    to: Address,
    amount: u64,
) -> Result<Vec<u8>, ExecError> {
    let from = address(key);
    let n = nonce(c, from);
    let sig =
        sign(key, (String::from("transfer"), from, to, U256::from(amount), n).abi_encode_params());
    c.call(
        "transfer(address,address,uint256,bytes)",
        &(from, to, U256::from(amount), sig).abi_encode_params(),
    )
}

fn balance(c: &mut Contract, key: &KeyPair) -> U256 {
    let holder = address(key);
    let n = nonce(c, holder);
    let sig = sign(key, (String::from("balance"), holder, n).abi_encode_params());
    <(U256,)>::abi_decode_params(
        &c.ok("balance_of(address,bytes)", &(holder, sig).abi_encode_params()),
    )
    .unwrap()
    .0
}

#[test]
fn signed_transfers_move_secret_balances() {
    let alice = KeyPair::from_bytes(&[0xa1; 32]).unwrap();
    let bob = KeyPair::from_bytes(&[0xb0; 32]).unwrap();
    let mut c = Contract::deploy(
        "private-erc20",
        "construct(address,uint256)",
        &(address(&alice), U256::from(1000u64)).abi_encode_params(),
    );
    transfer(&mut c, &alice, address(&bob), 300).unwrap();
    assert_eq!(balance(&mut c, &alice), U256::from(700u64));
    assert_eq!(balance(&mut c, &bob), U256::from(300u64));
    assert_eq!(
        <(U256,)>::abi_decode_params(&c.ok("total_supply()", &[])).unwrap().0,
        U256::from(1000u64)
    );
    assert!(matches!(
        transfer(&mut c, &bob, address(&alice), 301),
        Err(ExecError::Reverted { message }) if message.contains("insufficient balance")
    ));
}

#[test]
fn a_forged_or_replayed_signature_is_rejected() {
    let alice = KeyPair::from_bytes(&[0xa1; 32]).unwrap();
    let mallory = KeyPair::from_bytes(&[0x66; 32]).unwrap();
    let mut c = Contract::deploy(
        "private-erc20",
        "construct(address,uint256)",
        &(address(&alice), U256::from(1000u64)).abi_encode_params(),
    );
    let from = address(&alice);
    let to = address(&mallory);
    // Mallory signs a transfer out of Alice's account.
    let forged = sign(
        &mallory,
        (String::from("transfer"), from, to, U256::from(10u64), U256::ZERO).abi_encode_params(),
    );
    let args = (from, to, U256::from(10u64), forged).abi_encode_params();
    assert!(matches!(
        c.call("transfer(address,address,uint256,bytes)", &args),
        Err(ExecError::Reverted { message }) if message.contains("not by")
    ));
    // Alice's real signature works once; replaying it fails (the nonce moved on).
    let real = sign(
        &alice,
        (String::from("transfer"), from, to, U256::from(10u64), U256::ZERO).abi_encode_params(),
    );
    let args = (from, to, U256::from(10u64), real).abi_encode_params();
    c.ok("transfer(address,address,uint256,bytes)", &args);
    assert!(c.call("transfer(address,address,uint256,bytes)", &args).is_err());
    assert_eq!(
        balance(&mut c, &mallory),
        U256::from(10u64),
        "only Alice's one real transfer moved tokens"
    );
    assert_eq!(balance(&mut c, &alice), U256::from(990u64));
}
