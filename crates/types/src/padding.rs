//! Length hiding: what an enclave encrypts (outputs, error texts, state deltas) is first padded
//! to a size bucket, so a ciphertext's length tells an observer only the bucket.
//!
//! The format is ISO/IEC 7816-4: `plaintext ‖ 0x80 ‖ 0x00…` up to the bucket's size, so
//! [`unpad`] needs no parameter and works whatever bucket scheme the enclave used.
//!
//! ```
//! use enigma_types::padding::{Padding, pad, unpad};
//!
//! let padded = pad(b"the richest is 0x3C44", Padding::default());
//! assert_eq!(padded.len(), 64);
//! assert_eq!(unpad(&padded)?, b"the richest is 0x3C44");
//! # Ok::<(), enigma_types::padding::BadPadding>(())
//! ```

use alloc::vec::Vec;

/// How plaintext lengths are rounded up before encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Only the one-byte marker: lengths leak exactly.
    Exact,
    /// Padmé buckets (Nikitin et al., PETS 2019) of at least `min` bytes: at most 12 % overhead,
    /// and a length of `L` leaks only `O(log log L)` bits.
    Padme {
        /// The smallest bucket.
        min: u32,
    },
    /// Powers of two of at least `min` bytes: leaks only `log L`, at up to 100 % overhead.
    PowerOfTwo {
        /// The smallest bucket.
        min: u32,
    },
}

impl Default for Padding {
    /// Padmé with 64-byte minimum buckets.
    fn default() -> Self {
        Self::Padme { min: 64 }
    }
}

impl Padding {
    /// The padded size of a plaintext of `len` bytes (marker included).
    #[must_use]
    pub fn bucket(self, len: usize) -> usize {
        let need = len.saturating_add(1);
        match self {
            Self::Exact => need,
            Self::Padme { min } => padme(need.max(min as usize)),
            Self::PowerOfTwo { min } => {
                need.max(min as usize).checked_next_power_of_two().unwrap_or(need)
            }
        }
    }

    /// A stable byte tag of the scheme, for measurements and logs.
    #[must_use]
    pub fn tag(self) -> [u8; 5] {
        let (kind, min) = match self {
            Self::Exact => (0u8, 0u32),
            Self::Padme { min } => (1, min),
            Self::PowerOfTwo { min } => (2, min),
        };
        let m = min.to_be_bytes();
        [kind, m[0], m[1], m[2], m[3]]
    }
}

/// Rounds `len` up to its Padmé bucket.
fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e.saturating_sub(s);
    let mask = (1usize << last_bits) - 1;
    len.checked_add(mask).map_or(len, |l| l & !mask)
}

/// `plaintext ‖ 0x80 ‖ 0x00…` to the bucket `padding` gives.
#[must_use]
pub fn pad(plaintext: &[u8], padding: Padding) -> Vec<u8> {
    let size = padding.bucket(plaintext.len());
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(plaintext);
    out.push(0x80);
    out.resize(size, 0);
    out
}

/// A padded plaintext without its `0x80` marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPadding;

impl core::fmt::Display for BadPadding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the decrypted data has no padding marker (0x80 after the content)")
    }
}

impl core::error::Error for BadPadding {}

/// Removes the padding [`pad`] added.
pub fn unpad(padded: &[u8]) -> Result<&[u8], BadPadding> {
    let end = padded.iter().rposition(|b| *b != 0).ok_or(BadPadding)?;
    match padded.get(end) {
        Some(0x80) => padded.get(..end).ok_or(BadPadding),
        _ => Err(BadPadding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_buckets_match_the_paper_and_overhead_stays_under_12_percent() {
        // E = floor(log2 L), S = floor(log2 E) + 1: the low E - S bits are cleared upwards.
        assert_eq!(padme(9), 10);
        assert_eq!(padme(33), 36);
        assert_eq!(padme(1000), 1024);
        for len in 2..50_000usize {
            let b = padme(len);
            assert!(b >= len);
            assert!((b - len) * 100 <= len * 12, "{len} -> {b}");
            assert_eq!(padme(b), b, "buckets are fixed points");
        }
    }

    #[test]
    fn pad_unpad_round_trip_every_scheme() {
        for scheme in [Padding::Exact, Padding::default(), Padding::PowerOfTwo { min: 16 }] {
            for len in [0usize, 1, 15, 63, 64, 65, 1000, 4097] {
                let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let padded = pad(&plain, scheme);
                assert_eq!(padded.len(), scheme.bucket(len));
                assert_eq!(unpad(&padded).unwrap(), plain.as_slice());
            }
        }
        // Content that ends in zeros or 0x80 survives.
        for plain in [&[0u8, 0][..], &[0x80][..], &[1, 0x80, 0][..]] {
            assert_eq!(unpad(&pad(plain, Padding::default())).unwrap(), plain);
        }
    }

    #[test]
    fn lengths_in_one_bucket_are_indistinguishable() {
        let p = Padding::default();
        assert_eq!(pad(&[1; 1], p).len(), pad(&[1; 60], p).len());
        assert_eq!(pad(&[1; 1000], p).len(), pad(&[1; 1020], p).len());
    }

    #[test]
    fn unpad_rejects_what_pad_cannot_produce() {
        assert_eq!(unpad(&[]), Err(BadPadding));
        assert_eq!(unpad(&[0, 0, 0]), Err(BadPadding));
        assert_eq!(unpad(&[1, 2, 3]), Err(BadPadding));
    }
}
