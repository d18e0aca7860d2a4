//! The coin flip through the runtime, with the enclave's randomness.

use crate::common::Contract;
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use enigma_runtime::ExecError;

#[test]
fn the_winner_follows_the_coin_and_games_finish_once() {
    let mut c = Contract::deploy("coin-flip", "construct()", &[]);
    let (p1, p2) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let mut heads = 0;
    for game in 0..20u64 {
        let guess = game % 2 == 0;
        let id = <(U256,)>::abi_decode_params(
            &c.ok("commit(address,bool)", &(p1, guess).abi_encode_params()),
        )
        .unwrap()
        .0;
        assert_eq!(id, U256::from(game));
        let out = c.ok("flip(uint256,address)", &(id, p2).abi_encode_params());
        let (winner, coin) = <(Address, bool)>::abi_decode_params(&out).unwrap();
        assert_eq!(winner, if coin == guess { p1 } else { p2 });
        heads += u32::from(coin);
        assert!(matches!(
            c.call("flip(uint256,address)", &(id, p2).abi_encode_params()),
            Err(ExecError::Reverted { message }) if message.contains("already finished")
        ));
    }
    assert!(
        heads > 0 && heads < 20,
        "the coin comes from the randomness, not a constant: {heads} heads"
    );
}

#[test]
fn an_unknown_game_is_an_error() {
    let mut c = Contract::deploy("coin-flip", "construct()", &[]);
    assert!(matches!(
        c.call("flip(uint256,address)", &(U256::from(5u64), Address::ZERO).abi_encode_params()),
        Err(ExecError::Reverted { message }) if message == "no game 5"
    ));
}
