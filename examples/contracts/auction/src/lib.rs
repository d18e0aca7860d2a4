//! A sealed-bid second-price (Vickrey) auction: bids stay secret; closing reveals only the
//! winner and the price, the second-highest bid (or the reserve, if higher).
#![no_std]

use enigma_sdk::{alloy_primitives::keccak256, prelude::*};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Auction {
    seller: Address,
    reserve: U256,
    /// keccak256 of the seller's closing secret: only the seller can close.
    close_hash: B256,
    bidders: u64,
    closed: bool,
}

const AUCTION: &str = "auction";

fn bid_key(index: u64) -> String {
    format!("bid/{index}")
}

fn bidder_key(bidder: Address) -> String {
    format!("bidder/{bidder}")
}

#[pub_interface]
pub trait ContractInterface {
    fn construct(seller: Address, reserve: U256, close_hash: B256);
    /// Places or raises `bidder`'s sealed bid.
    fn bid(bidder: Address, amount: U256) -> Result<(), String>;
    /// Closes the auction (the seller proves itself with the secret whose hash it deployed
    /// with) and returns (winner, price); the zero address if no bid met the reserve.
    fn close(close_secret: B256) -> Result<(Address, U256), String>;
    fn bid_count() -> U256;
}

pub struct Contract;

fn auction() -> Auction {
    read_state!(AUCTION).unwrap_or_else(|| fail!("the auction was not constructed"))
}

impl ContractInterface for Contract {
    fn construct(seller: Address, reserve: U256, close_hash: B256) {
        write_state!(AUCTION => Auction { seller, reserve, close_hash, bidders: 0, closed: false });
    }

    fn bid(bidder: Address, amount: U256) -> Result<(), String> {
        let mut a = auction();
        if a.closed {
            return Err("the auction is closed".into());
        }
        if bidder == a.seller {
            return Err("the seller cannot bid".into());
        }
        let existing: Option<u64> = read_state!(bidder_key(bidder));
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
        let mut best: Option<(Address, U256)> = None;
        let mut second = a.reserve;
        for i in 0..a.bidders {
            let (bidder, amount): (Address, U256) = read_state!(bid_key(i)).unwrap_or_default();
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
        a.closed = true;
        write_state!(AUCTION => a);
        Ok(match best {
            Some((winner, top)) if top >= second => (winner, second),
            _ => (Address::ZERO, U256::ZERO),
        })
    }

    fn bid_count() -> U256 {
        U256::from(auction().bidders)
    }
}
