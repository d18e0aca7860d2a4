//! The chain crate's integration tests, built as one binary: every test binary links the
//! whole dependency tree, so one binary builds and links once and takes a fraction of the disk.
//! Each file below is one suite: `cargo nextest run -p enigma-chain --test integration <suite>::`.

mod batches;
mod common;
mod gas;
mod ias;
mod lifecycle;
mod selection;
