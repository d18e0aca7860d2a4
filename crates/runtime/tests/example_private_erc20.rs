//! The private ERC-20 through the runtime: transfers from the verified caller, balances by the
//! holder's signature checked inside the contract.

use crate::common::Contract;
use alloy_primitives::{Address, Bytes, U256, keccak256};
use alloy_sol_types::SolValue;
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

/// A transfer by the verified caller `key`.
fn transfer(
    c: &mut Contract,
    key: &KeyPair,
    to: Address,
    amount: u64,
) -> Result<Vec<u8>, ExecError> {
    c.caller = Some(key.address());
    c.call("transfer(address,uint256)", &(to, U256::from(amount)).abi_encode_params())
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
fn transfers_from_the_caller_move_secret_balances() {
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
fn nobody_spends_anothers_tokens_and_a_balance_needs_its_holders_fresh_signature() {
    let alice = KeyPair::from_bytes(&[0xa1; 32]).unwrap();
    let mallory = KeyPair::from_bytes(&[0x66; 32]).unwrap();
    let mut c = Contract::deploy(
        "private-erc20",
        "construct(address,uint256)",
        &(address(&alice), U256::from(1000u64)).abi_encode_params(),
    );
    // A transfer spends the caller's own tokens: Mallory has none, and an unsigned task has no
    // caller at all.
    assert!(matches!(
        transfer(&mut c, &mallory, address(&mallory), 10),
        Err(ExecError::Reverted { message }) if message.contains("insufficient balance")
    ));
    c.caller = None;
    assert!(matches!(
        c.call("transfer(address,uint256)", &(address(&mallory), U256::from(10u64)).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("verified caller")
    ));
    // Mallory signs a balance query for Alice's account.
    let forged =
        sign(&mallory, (String::from("balance"), address(&alice), U256::ZERO).abi_encode_params());
    let args = (address(&alice), forged).abi_encode_params();
    assert!(matches!(
        c.call("balance_of(address,bytes)", &args),
        Err(ExecError::Reverted { message }) if message.contains("not by")
    ));
    // Alice's real signature works once; replaying it fails (the nonce moved on).
    let real =
        sign(&alice, (String::from("balance"), address(&alice), U256::ZERO).abi_encode_params());
    let args = (address(&alice), real).abi_encode_params();
    c.ok("balance_of(address,bytes)", &args);
    assert!(c.call("balance_of(address,bytes)", &args).is_err());
    assert_eq!(balance(&mut c, &alice), U256::from(1000u64), "nothing moved");
}
