//! Secret voting through the runtime, with the tally's Ethereum callback.

use crate::common;

use crate::common::Contract;
use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use enigma_runtime::ExecError;

sol! {
    interface VotingETH {
        function finalizePoll(uint256 pollId, uint256 talliedQuorum);
    }
}

#[test]
fn votes_are_tallied_and_reported_to_ethereum() {
    let voting_eth = Address::repeat_byte(0xee);
    let mut c =
        Contract::deploy("voting", "construct(address)", &(voting_eth,).abi_encode_params());
    let poll = U256::from(7u64);
    for (i, vote) in [1u64, 1, 0, 1].into_iter().enumerate() {
        let voter = Address::repeat_byte(i as u8 + 1);
        c.ok(
            "cast_vote(uint256,address,uint256)",
            &(poll, voter, U256::from(vote)).abi_encode_params(),
        );
    }
    let outcome = c.call_outcome("tally_poll(uint256)", &(poll,).abi_encode_params(), common::GAS);
    let success = outcome.result.unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&success.output).unwrap().0, U256::from(75u64));
    let call = success.eth_call.expect("the tally calls VotingETH");
    assert_eq!(call.address.0, voting_eth.0.0);
    let decoded = VotingETH::finalizePollCall::abi_decode(&call.payload).unwrap();
    assert_eq!((decoded.pollId, decoded.talliedQuorum), (poll, U256::from(75u64)));
}

#[test]
fn double_votes_closed_polls_and_bad_votes_fail() {
    let mut c =
        Contract::deploy("voting", "construct(address)", &(Address::ZERO,).abi_encode_params());
    let poll = U256::from(1u64);
    let voter = Address::repeat_byte(9);
    c.ok(
        "cast_vote(uint256,address,uint256)",
        &(poll, voter, U256::from(1u64)).abi_encode_params(),
    );
    assert!(matches!(
        c.call("cast_vote(uint256,address,uint256)", &(poll, voter, U256::from(0u64)).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("already voted")
    ));
    assert!(matches!(
        c.call("cast_vote(uint256,address,uint256)", &(poll, Address::repeat_byte(8), U256::from(2u64)).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("0 (no) or 1 (yes)")
    ));
    c.ok("tally_poll(uint256)", &(poll,).abi_encode_params());
    assert!(matches!(
        c.call("cast_vote(uint256,address,uint256)", &(poll, Address::repeat_byte(8), U256::from(1u64)).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("closed")
    ));
}

#[test]
fn a_polls_count_answers_queries_once_it_is_tallied() {
    let mut c =
        Contract::deploy("voting", "construct(address)", &(Address::ZERO,).abi_encode_params());
    let poll = U256::from(3u64);
    for (i, vote) in [1u64, 0, 1].into_iter().enumerate() {
        c.ok(
            "cast_vote(uint256,address,uint256)",
            &(poll, Address::repeat_byte(i as u8 + 1), U256::from(vote)).abi_encode_params(),
        );
    }
    assert!(matches!(
        c.query("count(uint256)", &(poll,).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("secret until it is tallied")
    ));
    // Casting a vote is a task only: a free query cannot even try it.
    assert!(matches!(
        c.query("cast_vote(uint256,address,uint256)", &(poll, Address::repeat_byte(9), U256::from(1u64)).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message.contains("does not answer queries")
    ));
    c.ok("tally_poll(uint256)", &(poll,).abi_encode_params());
    let count = c.query("count(uint256)", &(poll,).abi_encode_params()).unwrap();
    assert_eq!(
        <(U256, U256)>::abi_decode_params(&count).unwrap(),
        (U256::from(2u64), U256::from(1u64))
    );
}
