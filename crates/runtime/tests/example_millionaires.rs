//! The millionaires' problem through the runtime.

use crate::common::Contract;
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use enigma_runtime::ExecError;

fn richest(c: &mut Contract) -> Address {
    <(Address,)>::abi_decode_params(&c.ok("compute_richest()", &[])).unwrap().0
}

#[test]
fn only_the_richest_address_comes_out() {
    let mut c = Contract::deploy("millionaires", "construct()", &[]);
    let people = [
        (Address::repeat_byte(1), 1_000_000u64),
        (Address::repeat_byte(2), 5_000_000),
        (Address::repeat_byte(3), 3_000_000),
    ];
    for (address, worth) in people {
        let out = c.ok(
            "add_millionaire(address,uint256)",
            &(address, U256::from(worth)).abi_encode_params(),
        );
        assert!(out.is_empty(), "adding reveals nothing");
    }
    assert_eq!(richest(&mut c), Address::repeat_byte(2));
    // Each addition is one delta with exactly two keys: the entry and the count.
    assert_eq!(c.deltas.len(), 1 + 3);
    for delta in &c.deltas[1..] {
        assert_eq!(delta.changes.len(), 2, "{delta:?}");
    }
    assert_eq!(c.state.len(), 4);
    // compute_richest changes nothing, so no delta.
    richest(&mut c);
    assert_eq!(c.deltas.len(), 4);
}

#[test]
fn computing_with_no_millionaires_fails_with_advice() {
    let mut c = Contract::deploy("millionaires", "construct()", &[]);
    assert_eq!(
        c.call("compute_richest()", &[]),
        Err(ExecError::Reverted {
            message: "no millionaires yet: call add_millionaire first".into()
        })
    );
}
