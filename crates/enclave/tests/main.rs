#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run on the host, not in the enclave"
)]
//! The enclave crate's integration tests, built as one binary: every test binary links the
//! whole dependency tree, so one binary builds and links once and takes a fraction of the disk.
//! Each file below is one suite: `cargo nextest run -p enigma-enclave --test integration <suite>::`.

mod adversarial;
mod common;
mod enclave;
