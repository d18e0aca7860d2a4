//! State deltas: the ordered list of keys a task changed, chained by hash.
//!
//! A contract's state is an ordered map from key to (JSON) value. Each task that changes state
//! produces a [`Delta`]: the keys it wrote with their new values or their removal, in key order,
//! each key once, with the delta's index in the contract's chain and the hash of the previous
//! encrypted delta. Delta 0 comes from the deploy (even when empty). The enclave encrypts the
//! canonical encoding ([`Delta::encode`]) with the contract's state key; the chain records
//! `H(encrypted delta)`.

use alloc::vec::Vec;

use crate::{
    DecodeError, DeltaHash,
    enc::{Decoder, Encoder},
};

/// The version byte that starts every encoded delta.
pub const DELTA_VERSION: u8 = 1;

/// The largest encrypted delta (padding and AEAD overhead included): what one sync response
/// carries, so that every delta the chain records can reach every worker. A task whose state
/// changes would seal to more fails, with its gas charged, and changes nothing.
pub const MAX_ENCRYPTED_DELTA_BYTES: usize = 4 * 1024 * 1024;

const OP_REMOVE: u8 = 0;
const OP_SET: u8 = 1;

/// One key's change: its new value, or `None` when the task removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state key.
    pub key: Vec<u8>,
    /// The new value, or `None` for a removal.
    pub value: Option<Vec<u8>>,
}

/// The state changes of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The position of this delta in the contract's chain (0 for the deploy).
    pub index: u64,
    /// `H(encrypted previous delta)`, zero for delta 0.
    pub prev_hash: DeltaHash,
    /// The changed keys in ascending byte order, each once.
    pub changes: Vec<Change>,
}

impl Delta {
    /// Whether the task changed nothing (such a compute task does not extend the chain).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The canonical encoding:
    /// `enc(u8 version, u64 index, prevHash, list((key, op)))` where `op` is `0x00` for a removal
    /// and `0x01 ‖ value` for a write.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let size = 64
            + self
                .changes
                .iter()
                .map(|c| 17 + c.key.len() + c.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        let mut op = Vec::new();
        Encoder::with_capacity(size)
            .u8(DELTA_VERSION)
            .u64(self.index)
            .bytes(self.prev_hash.as_bytes())
            .list(&self.changes, |e, change| {
                op.clear();
                match &change.value {
                    Some(value) => {
                        op.push(OP_SET);
                        op.extend_from_slice(value);
                    }
                    None => op.push(OP_REMOVE),
                }
                e.bytes(&change.key).bytes(&op)
            })
            .into_bytes()
    }

    /// Decodes [`encode`](Self::encode)'s output, rejecting anything non-canonical: another
    /// version, an unknown op, keys out of order or repeated, trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeltaError> {
        let mut d = Decoder::new(bytes);
        let version = d.u8()?;
        if version != DELTA_VERSION {
            return Err(DeltaError::Version(version));
        }
        let index = d.u64()?;
        let prev_hash = DeltaHash(d.fixed::<32>()?);
        let n = d.list_len(u64::MAX)?;
        let mut changes: Vec<Change> = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let key = d.bytes()?;
            if changes.last().is_some_and(|last| last.key.as_slice() >= key) {
                return Err(DeltaError::KeysNotInOrder);
            }
            let value = match d.bytes()?.split_first() {
                Some((&OP_SET, value)) => Some(value.to_vec()),
                Some((&OP_REMOVE, [])) => None,
                _ => return Err(DeltaError::BadOp),
            };
            changes.push(Change { key: key.to_vec(), value });
        }
        d.finish()?;
        Ok(Self { index, prev_hash, changes })
    }
}

/// Why bytes are not a canonical delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// The length-prefixed structure is broken.
    Decode(DecodeError),
    /// An unknown version byte.
    Version(u8),
    /// An op that is neither a removal (`0x00` alone) nor a write (`0x01 ‖ value`).
    BadOp,
    /// Keys must be strictly ascending.
    KeysNotInOrder,
}

impl From<DecodeError> for DeltaError {
    fn from(value: DecodeError) -> Self {
        Self::Decode(value)
    }
}

impl core::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "malformed delta: {e}"),
            Self::Version(v) => {
                write!(f, "delta version {v} is not supported (expected {DELTA_VERSION})")
            }
            Self::BadOp => {
                f.write_str("malformed delta: a change is neither a write nor a removal")
            }
            Self::KeysNotInOrder => f.write_str("malformed delta: keys are not strictly ascending"),
        }
    }
}

impl core::error::Error for DeltaError {}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use proptest::prelude::*;

    use super::*;

    fn sample() -> Delta {
        Delta {
            index: 3,
            prev_hash: DeltaHash([9; 32]),
            changes: vec![
                Change { key: b"a".to_vec(), value: Some(b"1".to_vec()) },
                Change { key: b"b".to_vec(), value: None },
                Change { key: b"c".to_vec(), value: Some(Vec::new()) },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let delta = sample();
        assert_eq!(Delta::decode(&delta.encode()).unwrap(), delta);
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let mut unordered = sample();
        unordered.changes.swap(0, 1);
        assert_eq!(Delta::decode(&unordered.encode()), Err(DeltaError::KeysNotInOrder));
        let mut repeated = sample();
        repeated.changes[1].key = b"a".to_vec();
        assert_eq!(Delta::decode(&repeated.encode()), Err(DeltaError::KeysNotInOrder));
        let mut bytes = sample().encode();
        bytes[8] = 2;
        assert_eq!(Delta::decode(&bytes), Err(DeltaError::Version(2)));
        let mut trailing = sample().encode();
        trailing.push(0);
        assert!(matches!(
            Delta::decode(&trailing),
            Err(DeltaError::Decode(DecodeError::TrailingBytes(1)))
        ));
        let bad_op = Encoder::new()
            .u8(1)
            .u64(0)
            .bytes(&[0; 32])
            .list([()], |e, ()| e.bytes(b"k").bytes(&[0, 1]))
            .into_bytes();
        assert_eq!(Delta::decode(&bad_op), Err(DeltaError::BadOp));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Delta::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trips(
            index in any::<u64>(),
            entries in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
                0..8,
            ),
        ) {
            let delta = Delta {
                index,
                prev_hash: DeltaHash([1; 32]),
                changes: entries.into_iter().map(|(key, value)| Change { key, value }).collect(),
            };
            prop_assert_eq!(Delta::decode(&delta.encode()).unwrap(), delta);
        }
    }
}
