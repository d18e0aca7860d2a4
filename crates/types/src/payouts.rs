//! Payouts: the transfers a secret contract makes from its ENG balance, which its receipt
//! carries and the chain settles after verifying the enclave's signature.
//!
//! Packed as the chain reads them: `to(20) ‖ u128be amount(16)` per payout, in the order the
//! contract made them. A receipt's digest covers the packed bytes (the batch digest their hash).

use alloc::vec::Vec;
use core::fmt;

use crate::{Address, Grains, keccak256};

/// The bytes of one packed payout.
pub const PAYOUT_SIZE: usize = 36;

/// The most payouts one task may make.
pub const MAX_PAYOUTS: usize = 16;

/// One transfer from a contract's balance to an account's prepaid balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout {
    /// The recipient.
    pub to: Address,
    /// The amount, in grains (never zero).
    pub amount: Grains,
}

/// Why packed payouts could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutError {
    /// The length is not a multiple of [`PAYOUT_SIZE`].
    Length(usize),
    /// More than [`MAX_PAYOUTS`].
    TooMany(usize),
    /// A payout of nothing.
    Zero,
}

impl fmt::Display for PayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(n) => {
                write!(f, "payouts are {n} bytes, not a multiple of {PAYOUT_SIZE}")
            }
            Self::TooMany(n) => write!(f, "{n} payouts; a task may make at most {MAX_PAYOUTS}"),
            Self::Zero => f.write_str("a payout of zero"),
        }
    }
}

impl core::error::Error for PayoutError {}

/// The packed form of `payouts`.
#[must_use]
pub fn encode(payouts: &[Payout]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payouts.len() * PAYOUT_SIZE);
    for p in payouts {
        out.extend_from_slice(p.to.as_bytes());
        out.extend_from_slice(&p.amount.0.to_be_bytes());
    }
    out
}

/// Reads packed payouts, refusing a ragged length, more than [`MAX_PAYOUTS`] or a zero amount.
pub fn decode(bytes: &[u8]) -> Result<Vec<Payout>, PayoutError> {
    if !bytes.len().is_multiple_of(PAYOUT_SIZE) {
        return Err(PayoutError::Length(bytes.len()));
    }
    let n = bytes.len() / PAYOUT_SIZE;
    if n > MAX_PAYOUTS {
        return Err(PayoutError::TooMany(n));
    }
    bytes
        .chunks_exact(PAYOUT_SIZE)
        .map(|c| {
            let (to, amount) = c.split_at_checked(20).ok_or(PayoutError::Length(bytes.len()))?;
            let to = <[u8; 20]>::try_from(to).map_err(|_| PayoutError::Length(bytes.len()))?;
            let amount = <[u8; 16]>::try_from(amount)
                .map(u128::from_be_bytes)
                .map_err(|_| PayoutError::Length(bytes.len()))?;
            if amount == 0 {
                return Err(PayoutError::Zero);
            }
            Ok(Payout { to: Address(to), amount: Grains(amount) })
        })
        .collect()
}

/// `keccak256(packed)`: a batch entry's payouts as its digest lists them.
#[must_use]
pub fn hash(packed: &[u8]) -> [u8; 32] {
    keccak256(packed)
}

/// A `u128` widened to 32 big-endian bytes (a value in a digest).
#[must_use]
pub fn u256_from_u128(value: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[16..].copy_from_slice(&value.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payouts_round_trip_and_bad_packings_are_refused() {
        let ps = [
            Payout { to: Address([1; 20]), amount: Grains(5) },
            Payout { to: Address([2; 20]), amount: Grains(u128::MAX) },
        ];
        let packed = encode(&ps);
        assert_eq!(packed.len(), 72);
        assert_eq!(&packed[20..36], &5u128.to_be_bytes());
        assert_eq!(decode(&packed).unwrap(), ps);
        assert_eq!(decode(&packed[..71]), Err(PayoutError::Length(71)));
        assert_eq!(decode(&[0; 36]), Err(PayoutError::Zero));
        let many = encode(&[ps[0]; MAX_PAYOUTS + 1]);
        assert_eq!(decode(&many), Err(PayoutError::TooMany(MAX_PAYOUTS + 1)));
        assert!(decode(&[]).unwrap().is_empty());
    }
}
