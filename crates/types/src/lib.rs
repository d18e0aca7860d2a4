//! Typed identifiers, hashes and the length-prefixed encoding of the enigma protocol.
//!
//! Everything here crosses a boundary (client ↔ worker, worker ↔ enclave, node ↔ chain) and is
//! therefore `no_std` + `alloc`, so the same code runs in the enclave, the node and a wasm32
//! client.
//!
//! - [`enc`]: the length-prefixed encoding that every signed message and hashed input uses
//!   (PROTOCOL.md section 1), as an [`Encoder`](enc::Encoder) that writes bytes or feeds a hash
//!   and a bounds-checked [`Decoder`](enc::Decoder).
//! - Identifiers ([`TaskId`], [`ContractAddress`], [`SignerAddress`], [`Address`]) and hashes
//!   ([`InputsHash`], [`CodeHash`], [`DeltaHash`], [`OutputHash`]): fixed-byte newtypes that
//!   print as `0x` hex (addresses checksummed, EIP-55) and parse with or without `0x`.
//! - [`Epoch`] and the gas types ([`GasLimit`], [`GasUsed`], [`GasPrice`], [`Grains`]).
//! - The protocol's derivations: [`task_id`], [`contract_address`], [`inputs_hash_deploy`],
//!   [`inputs_hash_compute`] and the content hashes.
//!
//! ```
//! use enigma_types::{Address, ContractAddress, contract_address};
//!
//! let sender: Address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse()?;
//! let contract: ContractAddress = contract_address(&sender, 0);
//! assert_eq!(contract.to_string().len(), 66);
//! # Ok::<(), enigma_types::ParseError>(())
//! ```
//!
//! Features: `std` (default) implements `std::error::Error` for the error types; without it the
//! crate is `no_std` + `alloc`.
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![cfg_attr(not(test), deny(clippy::panic))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod caller;
pub mod delta;
pub mod enc;
mod error;
mod fixed;
mod gas;
pub mod hash;
mod ids;
pub mod messages;
pub mod padding;
pub mod payouts;
mod protocol;
pub mod result;
pub mod selection;

pub use error::{DecodeError, ParseError};
pub use gas::{GasLimit, GasPrice, GasUsed, Grains};
pub use hash::keccak256;
pub use ids::{
    Address, CodeHash, ContractAddress, DeltaHash, Epoch, Hash256, InputsHash, OutputHash,
    SignerAddress, TaskId,
};
pub use protocol::{
    code_hash, contract_address, delta_hash, inputs_hash_compute, inputs_hash_deploy, output_hash,
    task_id,
};

/// The length of an uncompressed secp256k1 public key without its `04` prefix.
pub const PUBLIC_KEY_LEN: usize = 64;
