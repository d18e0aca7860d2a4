//! Secret voting: votes are cast in secret; the tally reveals only the share of "yes" votes,
//! and reports it to the poll's Ethereum contract (`VotingETH.finalizePoll`) through the bridge.
#![no_std]

use enigma_sdk::prelude::*;
use serde::{Deserialize, Serialize};

sol! {
    #![sol(alloy_sol_types = enigma_sdk::alloy_sol_types)]
    interface VotingETH {
        function finalizePoll(uint256 pollId, uint256 talliedQuorum);
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Poll {
    yes: u64,
    no: u64,
    closed: bool,
}

const VOTING_ETH: &str = "voting_eth";

fn poll_key(poll_id: U256) -> String {
    format!("poll/{poll_id}")
}

fn vote_key(poll_id: U256, voter: Address) -> String {
    format!("vote/{poll_id}/{voter}")
}

#[pub_interface]
pub trait ContractInterface {
    /// The Ethereum contract that holds the polls and receives the tallies.
    fn construct(voting_eth: Address);
    /// Casts `voter`'s vote (1 = yes, 0 = no) in poll `poll_id`, once per voter.
    fn cast_vote(poll_id: U256, voter: Address, vote: U256) -> Result<(), String>;
    /// Closes the poll and sends the share of yes votes (in percent) to VotingETH.
    fn tally_poll(poll_id: U256) -> Result<U256, String>;
    /// The count (yes, no) of a closed poll, for anyone to ask as a query; secret while the
    /// poll is open.
    #[query]
    fn count(poll_id: U256) -> Result<(U256, U256), String>;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn construct(voting_eth: Address) {
        write_state!(VOTING_ETH => voting_eth);
    }

    fn cast_vote(poll_id: U256, voter: Address, vote: U256) -> Result<(), String> {
        let yes = match vote.to::<u64>() {
            0 => false,
            1 => true,
            _ => return Err(format!("a vote is 0 (no) or 1 (yes), not {vote}")),
        };
        let mut poll: Poll = read_state!(poll_key(poll_id)).unwrap_or_default();
        if poll.closed {
            return Err(format!("poll {poll_id} is closed"));
        }
        let voted: Option<bool> = read_state!(vote_key(poll_id, voter));
        if voted.is_some() {
            return Err(format!("{voter} has already voted in poll {poll_id}"));
        }
        if yes {
            poll.yes += 1;
        } else {
            poll.no += 1;
        }
        write_state!(vote_key(poll_id, voter) => true, poll_key(poll_id) => poll);
        Ok(())
    }

    fn tally_poll(poll_id: U256) -> Result<U256, String> {
        let mut poll: Poll =
            read_state!(poll_key(poll_id)).ok_or_else(|| format!("poll {poll_id} has no votes"))?;
        if poll.closed {
            return Err(format!("poll {poll_id} is already tallied"));
        }
        let total = poll.yes + poll.no;
        let quorum = U256::from(poll.yes * 100 / total);
        poll.closed = true;
        write_state!(poll_key(poll_id) => poll);
        let voting_eth: Address = read_state!(VOTING_ETH).unwrap_or_default();
        eth_call(
            voting_eth,
            &VotingETH::finalizePollCall { pollId: poll_id, talliedQuorum: quorum },
        );
        Ok(quorum)
    }

    fn count(poll_id: U256) -> Result<(U256, U256), String> {
        let poll: Poll = read_state!(poll_key(poll_id)).unwrap_or_default();
        if !poll.closed {
            return Err(format!("poll {poll_id} is open: its count is secret until it is tallied"));
        }
        Ok((U256::from(poll.yes), U256::from(poll.no)))
    }
}
