//! Host gas costs, charged on top of wasmi fuel (one unit of fuel is one unit of gas).
//!
//! | what | cost |
//! |---|---|
//! | every compute task | [`TASK_BASE`] |
//! | every deploy | [`TASK_BASE`] + [`DEPLOY_PER_CODE_BYTE`] per byte of code |
//! | any host call | [`HOST_CALL`], plus [`COPY_PER_WORD`] per 32 bytes it copies in or out |
//! | `write_state` | [`HOST_CALL`] + [`WRITE_PER_GROWN_BYTE`] per byte the stored data grows (key and value for a new key) |
//! | `rand` | [`HOST_CALL`] + [`RAND_PER_BYTE`] per byte |
//! | `encrypt`, `decrypt` | [`CRYPTO_BASE`] + [`CRYPTO_PER_BYTE`] per byte |
//! | `enigma_pay` | [`HOST_CALL`] + copies + [`PAYOUT`] |
//! | `gas(n)` | `n` |
//! | a permit's revocation (`enigma_revoke_permit(string)`, no contract code runs) | [`TASK_BASE`] + [`REVOKE_PERMIT`] |

/// Charged once per compute task (and per deploy).
pub const TASK_BASE: u64 = 10_000;
/// Charged per byte of a deployed module.
pub const DEPLOY_PER_CODE_BYTE: u64 = 1;
/// Charged per host call.
pub const HOST_CALL: u64 = 10;
/// Charged per started 32 bytes copied between the host and the contract's memory.
pub const COPY_PER_WORD: u64 = 1;
/// Charged per byte the contract's stored state grows.
pub const WRITE_PER_GROWN_BYTE: u64 = 1;
/// Charged per random byte.
pub const RAND_PER_BYTE: u64 = 2;
/// Charged per `encrypt`/`decrypt` call (a key schedule and an IV).
pub const CRYPTO_BASE: u64 = 1_000;
/// Charged per byte encrypted or decrypted.
pub const CRYPTO_PER_BYTE: u64 = 1;

/// Charged per payout: the chain writes the recipient's balance (a fresh slot costs 22,100
/// Ethereum gas, paid by the worker that commits the receipt).
pub const PAYOUT: u64 = 25_000;
/// Revoking a permit (`enigma_types::caller::REVOKE_PERMIT`), beside the task's base.
pub const REVOKE_PERMIT: u64 = 5_000;

/// The copy cost of `len` bytes.
#[must_use]
pub(crate) fn copy(len: usize) -> u64 {
    (len as u64).div_ceil(32) * COPY_PER_WORD
}
