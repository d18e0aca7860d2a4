//! The sealed-bid second-price auction through the runtime.

use crate::common::Contract;
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use enigma_runtime::ExecError;
use enigma_types::{Grains, payouts::Payout};

const CONSTRUCT: &str = "construct(address,uint256,bytes32,uint256)";
const SELLER: Address = Address::repeat_byte(0xff);

fn deploy(reserve: u64) -> (Contract, B256) {
    deploy_with_deposit(reserve, 0)
}

fn deploy_with_deposit(reserve: u64, deposit: u128) -> (Contract, B256) {
    let secret = B256::repeat_byte(0x5e);
    let args =
        (SELLER, U256::from(reserve), keccak256(secret), U256::from(deposit)).abi_encode_params();
    (Contract::deploy("auction", CONSTRUCT, &args), secret)
}

fn paid_bid(c: &mut Contract, who: u8, amount: u64, value: u128) -> Result<(), ExecError> {
    c.caller = Some(enigma_types::Address([who; 20]));
    c.pay_call("bid(uint256)", &(U256::from(amount),).abi_encode_params(), value)
        .map(|(out, payouts)| assert!(out.is_empty() && payouts.is_empty()))
}

/// A bid by the verified caller 0x`who`…`who`.
fn bid(c: &mut Contract, who: u8, amount: u64) -> Result<Vec<u8>, ExecError> {
    c.caller = Some(enigma_types::Address([who; 20]));
    c.call("bid(uint256)", &(U256::from(amount),).abi_encode_params())
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

#[test]
fn deposits_pay_the_seller_the_price_and_return_the_rest() {
    const DEPOSIT: u128 = 1_000;
    let (mut c, secret) = deploy_with_deposit(100, DEPOSIT);
    paid_bid(&mut c, 1, 150, DEPOSIT).unwrap();
    paid_bid(&mut c, 2, 400, DEPOSIT).unwrap();
    paid_bid(&mut c, 3, 250, DEPOSIT).unwrap();
    assert_eq!(c.balance(), 3 * DEPOSIT, "every deposit is held");
    // ENG sent with the close (which takes none) is refused, not kept.
    assert_eq!(
        c.pay_call("close(bytes32)", &(secret,).abi_encode_params(), 1).unwrap_err(),
        ExecError::ValueNotTaken { value: 1 }
    );

    let (out, payouts) = c.pay_call("close(bytes32)", &(secret,).abi_encode_params(), 0).unwrap();
    let (winner, price) = <(Address, U256)>::abi_decode_params(&out).unwrap();
    assert_eq!((winner, price), (Address::repeat_byte(2), U256::from(250u64)));
    let to = |b: u8| enigma_types::Address([b; 20]);
    assert_eq!(
        payouts,
        vec![
            Payout { to: to(0xff), amount: Grains(250) },
            Payout { to: to(1), amount: Grains(DEPOSIT) },
            Payout { to: to(2), amount: Grains(DEPOSIT - 250) },
            Payout { to: to(3), amount: Grains(DEPOSIT) },
        ],
        "the seller gets the price, the winner its deposit less the price, the others theirs"
    );
    assert_eq!(c.balance(), 0, "nothing is left behind");
}

#[test]
fn without_a_bid_at_the_reserve_every_deposit_goes_back() {
    let (mut c, secret) = deploy_with_deposit(500, 600);
    paid_bid(&mut c, 1, 499, 600).unwrap();
    let (out, payouts) = c.pay_call("close(bytes32)", &(secret,).abi_encode_params(), 0).unwrap();
    assert_eq!(<(Address, U256)>::abi_decode_params(&out).unwrap(), (Address::ZERO, U256::ZERO));
    assert_eq!(payouts, vec![Payout { to: enigma_types::Address([1; 20]), amount: Grains(600) }]);
    assert_eq!(c.balance(), 0);
}

#[test]
fn a_bid_must_bring_the_deposit_and_stay_within_it() {
    let (mut c, _) = deploy_with_deposit(0, 1_000);
    let refused = |r: Result<(), ExecError>, what: &str| {
        assert!(
            matches!(&r, Err(ExecError::Reverted { message }) if message.contains(what)),
            "{what}: {r:?}"
        );
    };
    refused(paid_bid(&mut c, 1, 10, 999), "must bring 1000 grains");
    refused(paid_bid(&mut c, 1, 10, 0), "brought 0");
    refused(paid_bid(&mut c, 1, 1_001, 1_000), "above the deposit");
    assert_eq!(c.balance(), 0, "a refused bid leaves its value out (the chain returns it)");
    paid_bid(&mut c, 1, 10, 1_000).unwrap();
    // A raise brings nothing more: the deposit covers it.
    refused(paid_bid(&mut c, 1, 20, 1_000), "must bring 0 grains");
    paid_bid(&mut c, 1, 20, 0).unwrap();
    refused(paid_bid(&mut c, 1, 15, 0), "higher");
    assert_eq!(c.balance(), 1_000);
    for who in 2..=15 {
        paid_bid(&mut c, who, 5, 1_000).unwrap();
    }
    refused(paid_bid(&mut c, 16, 5, 1_000), "full");
    assert_eq!(c.balance(), 15_000);
    // A deposit-free auction takes no money at all.
    let (mut free, _) = deploy(0);
    refused(paid_bid(&mut free, 1, 10, 1), "must bring 0 grains");
}

#[test]
fn a_bid_needs_a_verified_caller() {
    let (mut c, _) = deploy(0);
    c.caller = None;
    let anonymous = c.call("bid(uint256)", &(U256::from(5u64),).abi_encode_params());
    assert!(
        matches!(&anonymous, Err(ExecError::Reverted { message }) if message.contains("verified caller")),
        "{anonymous:?}"
    );
}
