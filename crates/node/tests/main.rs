//! The node crate's integration tests, built as one binary: every test binary links the
//! whole dependency tree, so one binary builds and links once and takes a fraction of the disk.
//! Each file below is one suite: `cargo nextest run -p enigma-node --test integration <suite>::`.

mod adversarial;
#[path = "support/common.rs"]
mod common;
mod devnet;
mod epochs;
mod network;
mod reorg;
#[path = "support/rogue.rs"]
mod rogue;
mod support;
mod sync;
