//! The sealed-bid second-price auction through the runtime.

mod common;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use common::Contract;
use enigma_runtime::ExecError;

fn deploy(reserve: u64) -> (Contract, B256) {
    let secret = B256::repeat_byte(0x5e);
    let args =
        (Address::repeat_byte(0xff), U256::from(reserve), keccak256(secret)).abi_encode_params();
    (Contract::deploy("auction", "construct(address,uint256,bytes32)", &args), secret)
}

fn bid(c: &mut Contract, who: u8, amount: u64) -> Result<Vec<u8>, ExecError> {
    c.call(
        "bid(address,uint256)",
        &(Address::repeat_byte(who), U256::from(amount)).abi_encode_params(),
    )
}

fn close(c: &mut Contract, secret: B256) -> Result<(Address, U256), ExecError> {
    c.call("close(bytes32)", &(secret,).abi_encode_params())
        .map(|out| <(Address, U256)>::abi_decode_params(&out).unwrap())
}

#[test]
fn the_highest_bidder_wins_at_the_second_price() {
    let (mut c, secret) = deploy(100);
    bid(&mut c, 1, 150).unwrap();
    bid(&mut c, 2, 400).unwrap();
    bid(&mut c, 3, 250).unwrap();
    bid(&mut c, 1, 300).unwrap();
    assert_eq!(
        <(U256,)>::abi_decode_params(&c.ok("bid_count()", &[])).unwrap().0,
        U256::from(3u64)
    );
    assert!(
        matches!(close(&mut c, B256::ZERO), Err(ExecError::Reverted { message }) if message.contains("only the seller"))
    );
    assert_eq!(close(&mut c, secret).unwrap(), (Address::repeat_byte(2), U256::from(300u64)));
    assert!(
        matches!(bid(&mut c, 4, 1000), Err(ExecError::Reverted { message }) if message.contains("closed"))
    );
}

#[test]
fn the_reserve_sets_the_floor() {
    let (mut c, secret) = deploy(500);
    bid(&mut c, 1, 600).unwrap();
    bid(&mut c, 2, 550).unwrap();
    assert_eq!(close(&mut c, secret).unwrap(), (Address::repeat_byte(1), U256::from(550u64)));

    let (mut c, secret) = deploy(500);
    bid(&mut c, 1, 700).unwrap();
    assert_eq!(close(&mut c, secret).unwrap(), (Address::repeat_byte(1), U256::from(500u64)));

    let (mut c, secret) = deploy(500);
    bid(&mut c, 1, 499).unwrap();
    assert_eq!(
        close(&mut c, secret).unwrap(),
        (Address::ZERO, U256::ZERO),
        "no bid meets the reserve"
    );
}

#[test]
fn bids_must_rise_and_the_seller_cannot_bid() {
    let (mut c, _) = deploy(0);
    bid(&mut c, 1, 10).unwrap();
    assert!(
        matches!(bid(&mut c, 1, 10), Err(ExecError::Reverted { message }) if message.contains("higher"))
    );
    assert!(
        matches!(bid(&mut c, 0xff, 10), Err(ExecError::Reverted { message }) if message.contains("seller"))
    );
}
