//! Contract state as the runtime sees it, and the in-memory state the enclave keeps.

use alloc::{collections::BTreeMap, vec::Vec};
use core::fmt;

use enigma_types::{
    DecodeError, DeltaHash,
    delta::{Delta, DeltaError},
    enc::{Decoder, Encoder},
};

/// Read access to a contract's state: string keys (as bytes) to JSON-encoded values.
pub trait StateReader {
    /// The value stored under `key`, if any.
    fn read(&self, key: &[u8]) -> Option<&[u8]>;
}

/// The randomness of a task: the contract's `rand`, and the IVs of its `encrypt` calls. Inside
/// the enclave `rand` is a function of the task (re-running a task draws the same values), while
/// IVs come from the enclave's RNG (an IV must never repeat under a key); in tests both may be
/// seeded.
pub trait Randomness {
    /// Fills `buf` with the contract's random bytes (`rand`).
    fn fill(&mut self, buf: &mut [u8]);
    /// Fills `buf` with a fresh IV for the contract's `encrypt`: it must not repeat, even when
    /// the task runs again.
    fn fill_iv(&mut self, buf: &mut [u8]);
}

/// A contract's decrypted state: the map, and the position of its last applied delta.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ContractState {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    next_index: u64,
    tip: DeltaHash,
}

impl fmt::Debug for ContractState {
    /// Prints the position and size only: values are contract secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractState")
            .field("keys", &self.entries.len())
            .field("next_index", &self.next_index)
            .field("tip", &self.tip)
            .finish()
    }
}

/// Why a delta or a snapshot could not be applied or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The delta's index is not the next one.
    WrongIndex {
        /// The index the state expects next.
        expected: u64,
        /// The delta's index.
        got: u64,
    },
    /// The delta does not continue from this state's last delta.
    WrongPrevHash {
        /// The hash of the last applied delta.
        expected: DeltaHash,
        /// The delta's `prev_hash`.
        got: DeltaHash,
    },
    /// A delta could not be decoded.
    Delta(DeltaError),
    /// A snapshot could not be decoded.
    Snapshot(DecodeError),
    /// A snapshot of an unknown version.
    SnapshotVersion(u8),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongIndex { expected, got } => {
                write!(f, "delta {got} cannot be applied: the state expects delta {expected} next")
            }
            Self::WrongPrevHash { expected, got } => write!(
                f,
                "the delta follows {got}, but the state's last delta is {expected}: deltas are missing or out of order"
            ),
            Self::Delta(e) => write!(f, "{e}"),
            Self::Snapshot(e) => write!(f, "malformed state snapshot: {e}"),
            Self::SnapshotVersion(v) => write!(f, "state snapshot version {v} is not supported"),
        }
    }
}

impl core::error::Error for StateError {}

const SNAPSHOT_VERSION: u8 = 1;

impl ContractState {
    /// An empty state before delta 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The index the next delta will have.
    #[must_use]
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The hash of the last applied (encrypted) delta, zero before delta 0.
    #[must_use]
    pub fn tip(&self) -> DeltaHash {
        self.tip
    }

    /// The number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys and values in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Applies `delta`, whose encrypted form hashes to `hash`, after checking that it is the next
    /// delta of this contract's chain.
    pub fn apply(&mut self, delta: &Delta, hash: DeltaHash) -> Result<(), StateError> {
        if delta.index != self.next_index {
            return Err(StateError::WrongIndex { expected: self.next_index, got: delta.index });
        }
        if delta.prev_hash != self.tip {
            return Err(StateError::WrongPrevHash { expected: self.tip, got: delta.prev_hash });
        }
        for change in &delta.changes {
            match &change.value {
                Some(value) => {
                    self.entries.insert(change.key.clone(), value.clone());
                }
                None => {
                    self.entries.remove(&change.key);
                }
            }
        }
        self.next_index += 1;
        self.tip = hash;
        Ok(())
    }

    /// The state as bytes (to be encrypted and stored, so a node restarts without replaying every
    /// delta): `enc(u8 version, u64 nextIndex, tip, list((key, value)))`.
    #[must_use]
    pub fn encode_snapshot(&self) -> Vec<u8> {
        Encoder::new()
            .u8(SNAPSHOT_VERSION)
            .u64(self.next_index)
            .bytes(self.tip.as_bytes())
            .list(&self.entries, |e, (k, v)| e.bytes(k).bytes(v))
            .into_bytes()
    }

    /// Loads [`encode_snapshot`](Self::encode_snapshot)'s output.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<Self, StateError> {
        let mut d = Decoder::new(bytes);
        let version = d.u8().map_err(StateError::Snapshot)?;
        if version != SNAPSHOT_VERSION {
            return Err(StateError::SnapshotVersion(version));
        }
        let next_index = d.u64().map_err(StateError::Snapshot)?;
        let tip = DeltaHash(d.fixed::<32>().map_err(StateError::Snapshot)?);
        let n = d.list_len(u64::MAX).map_err(StateError::Snapshot)?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let key = d.bytes().map_err(StateError::Snapshot)?.to_vec();
            let value = d.bytes().map_err(StateError::Snapshot)?.to_vec();
            entries.insert(key, value);
        }
        d.finish().map_err(StateError::Snapshot)?;
        Ok(Self { entries, next_index, tip })
    }
}

impl StateReader for ContractState {
    fn read(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use alloc::{format, vec};

    use enigma_types::delta::Change;

    use super::*;

    fn delta(index: u64, prev: DeltaHash, changes: Vec<(&str, Option<&str>)>) -> Delta {
        Delta {
            index,
            prev_hash: prev,
            changes: changes
                .into_iter()
                .map(|(k, v)| Change {
                    key: k.as_bytes().to_vec(),
                    value: v.map(|v| v.as_bytes().to_vec()),
                })
                .collect(),
        }
    }

    #[test]
    fn apply_checks_the_chain_and_applies_in_order() {
        let mut s = ContractState::new();
        let h0 = DeltaHash([1; 32]);
        s.apply(&delta(0, DeltaHash::ZERO, vec![("a", Some("1")), ("b", Some("2"))]), h0).unwrap();
        assert_eq!(
            s.apply(&delta(2, h0, vec![]), DeltaHash([2; 32])),
            Err(StateError::WrongIndex { expected: 1, got: 2 })
        );
        assert_eq!(
            s.apply(&delta(1, DeltaHash([9; 32]), vec![]), DeltaHash([2; 32])),
            Err(StateError::WrongPrevHash { expected: h0, got: DeltaHash([9; 32]) })
        );
        s.apply(&delta(1, h0, vec![("a", None), ("c", Some("3"))]), DeltaHash([2; 32])).unwrap();
        assert_eq!(s.read(b"a"), None);
        assert_eq!(s.read(b"b"), Some(&b"2"[..]));
        assert_eq!(s.read(b"c"), Some(&b"3"[..]));
        assert_eq!((s.next_index(), s.tip()), (2, DeltaHash([2; 32])));
    }

    #[test]
    fn snapshot_round_trips_and_rejects_garbage() {
        let mut s = ContractState::new();
        s.apply(&delta(0, DeltaHash::ZERO, vec![("k", Some("secret-value"))]), DeltaHash([5; 32]))
            .unwrap();
        assert_eq!(ContractState::decode_snapshot(&s.encode_snapshot()).unwrap(), s);
        assert!(ContractState::decode_snapshot(&[1, 2, 3]).is_err());
        let debug = format!("{s:?}");
        assert!(!debug.contains("secret"), "values are never printed: {debug}");
    }
}
