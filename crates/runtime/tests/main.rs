#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run on the host, not in the enclave"
)]
//! The runtime crate's integration tests, built as one binary: every test binary links the
//! whole dependency tree, so one binary builds and links once and takes a fraction of the disk.
//! Each file below is one suite: `cargo nextest run -p enigma-runtime --test integration <suite>::`.

mod common;
mod example_auction;
mod example_calculator;
mod example_coin_flip;
mod example_millionaires;
mod example_private_erc20;
mod example_voting;
mod failures;
