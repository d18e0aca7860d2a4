//! What the network tests share: the millionaires example, anvil's keys, ABI arguments, and a
//! bounded wait.

#![allow(dead_code, reason = "each test takes what it needs")]

use std::{future::Future, path::PathBuf, sync::OnceLock, time::Duration};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_crypto::KeyPair;

/// The millionaires example's module (built once per test binary).
pub(crate) fn millionaires() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_contract_build::BuildOptions::examples(&root);
        let built = enigma_contract_build::build(&options).unwrap();
        std::fs::read(&enigma_contract_build::find(&built, "millionaires").unwrap().wasm).unwrap()
    })
    .clone()
}

/// anvil's `i`th development key.
pub(crate) fn key(anvil: &alloy::node_bindings::AnvilInstance, i: usize) -> KeyPair {
    KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap()
}

/// The arguments of `add_millionaire(address,uint256)`.
pub(crate) fn add(who: u8, worth: u64) -> Vec<u8> {
    (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params()
}

/// Polls `f` every 100 ms until it gives a value; fails the test after a minute.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
