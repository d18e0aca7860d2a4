//! A sealed-bid second-price (Vickrey) auction that takes real ENG without publishing the bids.
//!
//! The seller deploys it with a reserve, the hash of a closing secret and a deposit. A bidder is
//! the task's verified caller (the account that signed it: nobody can bid in another's name).
//! Every bidder sends the same deposit with its first bid (`enigma call --value`): the amount
//! moved is public on chain, so it says nothing about the bid, which must be at most the deposit
//! and stays inside the enclave; a bidder may raise its bid later (without a new deposit).
//! Closing reveals only the winner and the price (the second-highest bid, or the reserve if
//! higher) and settles in the same task: the seller is paid the price, the winner gets its
//! deposit less the price back, every other bidder its whole deposit. With no bid at the
//! reserve, every deposit goes back. A bid the contract refuses fails its task, and the chain
//! returns its deposit.
//!
//! What it does not protect against, as an example: someone can fill the 15 places with
//! accounts of its own (their deposits come back at the close); the seller alone closes, when it
//! likes, and deposits are held until then. The payouts of the close show the price (and, to a
//! worker host that replays the close on older states, more: docs/threat-model.md section 5).
#![no_std]

use enigma_sdk::{alloy_primitives::keccak256, prelude::*};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Auction {
    seller: Address,
    reserve: U256,
    /// keccak256 of the seller's closing secret: only the seller can close.
    close_hash: B256,
    /// What every bidder sends with its bid (grains); 0 for an auction without money.
    #[serde(default)]
    deposit: U256,
    bidders: u64,
    closed: bool,
}

const AUCTION: &str = "auction";

/// Bidders an auction with deposits takes: at the close it pays each of them and the seller,
/// and a task makes at most 16 payouts.
const MAX_PAYING_BIDDERS: u64 = 15;

fn bid_key(index: u64) -> String {
    format!("bid/{index}")
}

fn bidder_key(bidder: Address) -> String {
    format!("bidder/{bidder}")
}

#[pub_interface]
pub trait ContractInterface {
    fn construct(seller: Address, reserve: U256, close_hash: B256, deposit: U256);
    /// Places or raises the caller's sealed bid; a first bid must bring exactly the deposit, a
    /// raise nothing.
    fn bid(amount: U256) -> Result<(), String>;
    /// Closes the auction (the seller proves itself with the secret whose hash it deployed
    /// with), pays everyone out and returns (winner, price); the zero address if no bid met the
    /// reserve.
    fn close(close_secret: B256) -> Result<(Address, U256), String>;
    #[query]
    fn bid_count() -> U256;
    /// The deposit a bid must bring (grains).
    #[query]
    fn deposit() -> U256;
    /// Whether the auction has closed (anyone may ask, anonymously).
    #[query]
    fn closed() -> bool;
    /// The caller's own bid (zero if it has none): answered only to the bidder itself.
    #[query(only)]
    fn my_bid() -> U256;
}

pub struct Contract;

fn auction() -> Auction {
    read_state!(AUCTION).unwrap_or_else(|| fail!("the auction was not constructed"))
}

impl ContractInterface for Contract {
    fn construct(seller: Address, reserve: U256, close_hash: B256, deposit: U256) {
        if deposit != U256::ZERO && reserve > deposit {
            fail!("the reserve is above the deposit: no bid could meet it");
        }
        write_state!(AUCTION => Auction {
            seller, reserve, close_hash, deposit, bidders: 0, closed: false
        });
    }

    fn bid(amount: U256) -> Result<(), String> {
        let bidder = caller();
        let mut a = auction();
        if a.closed {
            return Err("the auction is closed".into());
        }
        if bidder == a.seller {
            return Err("the seller cannot bid".into());
        }
        let paying = a.deposit != U256::ZERO;
        if paying && amount > a.deposit {
            return Err("a bid cannot be above the deposit that covers it".into());
        }
        let existing: Option<u64> = read_state!(bidder_key(bidder));
        // A first bid brings the deposit; a raise is covered by it already.
        let owed = if existing.is_some() { U256::ZERO } else { a.deposit };
        if value() != owed {
            return Err(format!(
                "this bid must bring {owed} grains (the deposit with a first bid, nothing with a \
                 raise); it brought {}",
                value()
            ));
        }
        let index = match existing {
            Some(index) => {
                let (_, previous): (Address, U256) =
                    read_state!(bid_key(index)).unwrap_or_default();
                if amount <= previous {
                    return Err("a new bid must be higher than your previous one".into());
                }
                index
            }
            None => {
                if paying && a.bidders >= MAX_PAYING_BIDDERS {
                    return Err(format!("the auction is full ({MAX_PAYING_BIDDERS} bidders)"));
                }
                let index = a.bidders;
                a.bidders += 1;
                write_state!(bidder_key(bidder) => index, AUCTION => a);
                index
            }
        };
        write_state!(bid_key(index) => (bidder, amount));
        Ok(())
    }

    fn close(close_secret: B256) -> Result<(Address, U256), String> {
        let mut a = auction();
        if a.closed {
            return Err("the auction is already closed".into());
        }
        if keccak256(close_secret) != a.close_hash {
            return Err("wrong closing secret: only the seller can close the auction".into());
        }
        let bids: Vec<(Address, U256)> =
            (0..a.bidders).map(|i| read_state!(bid_key(i)).unwrap_or_default()).collect();
        let mut best: Option<(Address, U256)> = None;
        let mut second = a.reserve;
        for &(bidder, amount) in &bids {
            match best {
                Some((_, top)) if amount <= top => second = second.max(amount),
                _ => {
                    if let Some((_, top)) = best {
                        second = second.max(top);
                    }
                    best = Some((bidder, amount));
                }
            }
        }
        let (winner, price) = match best {
            Some((winner, top)) if top >= second => (winner, second),
            _ => (Address::ZERO, U256::ZERO),
        };
        if a.deposit != U256::ZERO {
            // Every deposit is here: the price to the seller, the rest back to the bidders.
            if balance() < a.deposit * U256::from(a.bidders) {
                return Err("the contract holds less than the deposits it took".into());
            }
            if winner != Address::ZERO {
                pay(a.seller, price);
            }
            for &(bidder, _) in &bids {
                let owed = if bidder == winner { a.deposit - price } else { a.deposit };
                pay(bidder, owed);
            }
        }
        a.closed = true;
        write_state!(AUCTION => a);
        Ok((winner, price))
    }

    fn bid_count() -> U256 {
        U256::from(auction().bidders)
    }

    fn deposit() -> U256 {
        auction().deposit
    }

    fn closed() -> bool {
        auction().closed
    }

    fn my_bid() -> U256 {
        let index: Option<u64> = read_state!(bidder_key(caller()));
        index
            .and_then(|i| read_state!(bid_key(i)))
            .map_or(U256::ZERO, |(_, amount): (Address, U256)| amount)
    }
}
