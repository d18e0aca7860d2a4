//! The client crate's integration tests, built as one binary: every test binary links the
//! whole dependency tree, so one binary builds and links once and takes a fraction of the disk.
//! Each file below is one suite: `cargo nextest run -p enigma-client --test integration <suite>::`.

mod adversarial;
mod attestation;
#[path = "support/common.rs"]
mod common;
mod devnet;
mod discovery;
mod js;
mod matrix;
mod payable;
mod query;
