//! A fair coin flip between two players: the first commits a secret guess, the second joins,
//! and the enclave's randomness flips the coin. Nobody, not even the worker, sees the guess
//! before the flip.
#![no_std]

use enigma_sdk::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Game {
    player1: Address,
    guess: bool,
    finished: bool,
}

const GAMES: &str = "games";

fn game_key(id: u64) -> String {
    format!("game/{id}")
}

#[pub_interface]
pub trait ContractInterface {
    /// Starts a game: `player1` bets that the coin shows `guess` (true = heads). Returns its id.
    fn commit(player1: Address, guess: bool) -> U256;
    /// `player2` joins game `game_id`; the coin is flipped. Returns (winner, coin).
    fn flip(game_id: U256, player2: Address) -> Result<(Address, bool), String>;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn commit(player1: Address, guess: bool) -> U256 {
        let id: u64 = read_state!(GAMES).unwrap_or(0);
        write_state!(game_key(id) => Game { player1, guess, finished: false }, GAMES => id + 1);
        U256::from(id)
    }

    fn flip(game_id: U256, player2: Address) -> Result<(Address, bool), String> {
        let id: u64 = game_id.try_into().map_err(|_| format!("no game {game_id}"))?;
        let mut game: Game =
            read_state!(game_key(id)).ok_or_else(|| format!("no game {game_id}"))?;
        if game.finished {
            return Err(format!("game {game_id} is already finished"));
        }
        let coin: bool = Rand::random();
        let winner = if coin == game.guess { game.player1 } else { player2 };
        game.finished = true;
        write_state!(game_key(id) => game);
        Ok((winner, coin))
    }
}
