//! Discovery's `voting_demo`: votes are cast in secret; `VotingETH` on Ethereum learns only
//! that a vote was cast and, once the poll has expired, its tallied quorum — through Ethereum
//! callbacks the Enigma contract makes after verifying each receipt.

#![no_std]

use alloc::collections::BTreeMap;
use eng_wasm::*;
use eng_wasm_derive::{eth_contract, pub_interface};

extern crate alloc;

static POLLS: &str = "polls";
static VOTING_ETH_ADDR: &str = "voting_eth_addr";

#[eth_contract("VotingETH.json")]
struct EthContract;

#[pub_interface]
pub trait ContractInterface {
    fn construct(voting_eth_addr: H160);
    fn cast_vote(poll_id: U256, voter: H256, vote: U256);
    fn tally_poll(poll_id: U256);
}

pub struct Contract;

type Polls = BTreeMap<u64, BTreeMap<String, U256>>;

impl Contract {
    fn voting_eth() -> EthContract {
        let addr: String = read_state!(VOTING_ETH_ADDR).expect("the VotingETH address is not set");
        EthContract::new(&addr)
    }
}

impl ContractInterface for Contract {
    fn construct(voting_eth_addr: H160) {
        write_state!(VOTING_ETH_ADDR => eformat!("{}", voting_eth_addr));
    }

    fn cast_vote(poll_id: U256, voter: H256, vote: U256) {
        let mut polls: Polls = read_state!(POLLS).unwrap_or_default();
        let votes = polls.entry(poll_id.to::<u64>()).or_default();
        let voter = eformat!("{}", voter);
        assert!(!votes.contains_key(&voter), "user has already voted in poll");
        assert!(vote <= U256::from(1u64), "a vote is 0 or 1");
        votes.insert(voter, vote);
        write_state!(POLLS => polls);
        Self::voting_eth().validateCastVote(poll_id);
    }

    fn tally_poll(poll_id: U256) {
        let polls: Polls = read_state!(POLLS).unwrap_or_default();
        let votes = polls.get(&poll_id.to::<u64>()).expect("no votes in this poll");
        let yes = votes.values().filter(|v| **v == U256::from(1u64)).count() as u64;
        let tallied_quorum = U256::from(yes * 100 / votes.len() as u64);
        Self::voting_eth().validateTallyPoll(poll_id, tallied_quorum);
    }
}
