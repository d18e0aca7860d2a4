//! The length-prefixed encoding `enc` of PROTOCOL.md section 1.
//!
//! - A byte string `b` encodes as `u64be(len(b)) ‖ b`.
//! - A list `L` encodes as `u64be(len(L)) ‖ enc(L[0]) ‖ … ‖ enc(L[n-1])`.
//! - Integers are fixed-width big-endian byte strings (`u64be` is 8 bytes, `u256` is 32 bytes),
//!   each length-prefixed like any other byte string.
//! - A message `(x1, …, xk)` is `enc(x1) ‖ … ‖ enc(xk)`, and its digest is Keccak-256 of that.
//!
//! For messages made only of byte strings this is Discovery's "MultiHash". Every signer and
//! verifier in the project builds its messages with [`Encoder`], so the bytes hashed in the
//! enclave, the node, the client and (mirrored in Solidity) the chain are the same.
//!
//! ```
//! use enigma_types::enc::{Decoder, Encoder};
//!
//! let digest = Encoder::hashing().bytes(b"Enigma User Message").bytes(&[7u8; 64]).digest();
//! let bytes = Encoder::new().bytes(b"Enigma User Message").bytes(&[7u8; 64]).into_bytes();
//! assert_eq!(digest, enigma_types::keccak256(&bytes));
//!
//! let mut d = Decoder::new(&bytes);
//! assert_eq!(d.bytes()?, b"Enigma User Message");
//! assert_eq!(d.fixed::<64>()?, [7u8; 64]);
//! d.finish()?;
//! # Ok::<(), enigma_types::DecodeError>(())
//! ```

use alloc::vec::Vec;

use crate::{DecodeError, hash::Keccak};

/// Where an [`Encoder`] writes: a byte vector or a running hash.
pub trait Sink {
    /// Append `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Keccak {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Builds a length-prefixed message field by field.
///
/// [`Encoder::new`] collects the bytes; [`Encoder::hashing`] feeds them straight into Keccak-256
/// without allocating, for digests that are signed or compared.
#[derive(Debug, Clone)]
#[must_use = "an encoder does nothing until its bytes or digest are taken"]
pub struct Encoder<S = Vec<u8>> {
    sink: S,
}

impl Encoder<Vec<u8>> {
    /// An encoder that collects bytes.
    pub fn new() -> Self {
        Self { sink: Vec::new() }
    }

    /// An encoder that collects bytes into a buffer of the given capacity.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { sink: Vec::with_capacity(capacity) }
    }

    /// The encoded message.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.sink
    }
}

impl Default for Encoder<Vec<u8>> {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder<Keccak> {
    /// An encoder that hashes as it goes.
    pub fn hashing() -> Self {
        Self { sink: Keccak::new() }
    }

    /// Keccak-256 of the encoded message.
    #[must_use]
    pub fn digest(self) -> [u8; 32] {
        self.sink.finalize()
    }
}

impl<S: Sink> Encoder<S> {
    fn prefix(&mut self, len: usize) {
        // usize is at most 64 bits on every target this project builds for.
        self.sink.put(&(len as u64).to_be_bytes());
    }

    /// A byte string: its length as `u64be`, then the bytes.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.prefix(bytes.len());
        self.sink.put(bytes);
        self
    }

    /// A single byte, as a one-byte string (status bytes, flags).
    pub fn u8(self, value: u8) -> Self {
        self.bytes(&[value])
    }

    /// A `u16` as a 2-byte big-endian string (product ids, SVNs).
    pub fn u16(self, value: u16) -> Self {
        self.bytes(&value.to_be_bytes())
    }

    /// A `u64` as an 8-byte big-endian string.
    pub fn u64(self, value: u64) -> Self {
        self.bytes(&value.to_be_bytes())
    }

    /// A 256-bit big-endian integer, given as its 32 bytes.
    pub fn u256(self, value: &[u8; 32]) -> Self {
        self.bytes(value)
    }

    /// A `u64` widened to a 256-bit big-endian integer (32 bytes).
    pub fn u256_from_u64(self, value: u64) -> Self {
        self.u256(&u256_from_u64(value))
    }

    /// A list: its element count as `u64be`, then each element as `each` encodes it.
    pub fn list<I, F>(mut self, items: I, mut each: F) -> Self
    where
        I: IntoIterator,
        I::IntoIter: ExactSizeIterator,
        F: FnMut(Self, I::Item) -> Self,
    {
        let items = items.into_iter();
        self.prefix(items.len());
        items.fold(self, &mut each)
    }

    /// A list of byte strings.
    pub fn bytes_list<I>(self, items: I) -> Self
    where
        I: IntoIterator,
        I::IntoIter: ExactSizeIterator,
        I::Item: AsRef<[u8]>,
    {
        self.list(items, |e, item| e.bytes(item.as_ref()))
    }

    /// A list of `u64`s, each an 8-byte big-endian string.
    pub fn u64_list<I>(self, items: I) -> Self
    where
        I: IntoIterator<Item = u64>,
        I::IntoIter: ExactSizeIterator,
    {
        self.list(items, Self::u64)
    }
}

/// A `u64` widened to 32 big-endian bytes.
#[must_use]
pub fn u256_from_u64(value: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&value.to_be_bytes());
    out
}

/// Reads a length-prefixed message field by field, checking every length against the input.
///
/// Nothing in the input can make it panic or allocate: a length that runs past the end, a
/// fixed-width field of another width, or a list longer than its bytes could hold is a
/// [`DecodeError`].
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    #[must_use]
    pub fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.input.len();
        let truncated = DecodeError::Truncated { needed: n, remaining };
        let n = usize::try_from(n).map_err(|_| truncated.clone())?;
        if n > remaining {
            return Err(truncated);
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    fn prefix(&mut self) -> Result<u64, DecodeError> {
        let raw = self.take(8)?;
        let mut be = [0u8; 8];
        be.copy_from_slice(raw);
        Ok(u64::from_be_bytes(be))
    }

    /// A byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.prefix()?;
        self.take(len)
    }

    /// A byte string that must be exactly `N` bytes long.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let len = self.prefix()?;
        if len != N as u64 {
            return Err(DecodeError::WrongWidth { expected: N, got: len });
        }
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(len)?);
        Ok(out)
    }

    /// A single byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.fixed::<1>()?))
    }

    /// A 2-byte big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.fixed::<2>()?))
    }

    /// An 8-byte big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.fixed::<8>()?))
    }

    /// A list's element count, at most `max`. Each element takes at least 8 bytes, so a count
    /// the remaining input cannot hold is rejected before anything is allocated.
    pub fn list_len(&mut self, max: u64) -> Result<usize, DecodeError> {
        let len = self.prefix()?;
        let fits = (self.input.len() / 8) as u64;
        let max = max.min(fits);
        if len > max {
            return Err(DecodeError::ListTooLong { len, max });
        }
        usize::try_from(len).map_err(|_| DecodeError::ListTooLong { len, max })
    }

    /// A list of at most `max` byte strings.
    pub fn bytes_list(&mut self, max: u64) -> Result<Vec<&'a [u8]>, DecodeError> {
        let n = self.list_len(max)?;
        (0..n).map(|_| self.bytes()).collect()
    }

    /// Ends decoding: an error if any input is left.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.input.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};

    use proptest::prelude::*;

    use super::*;
    use crate::keccak256;

    #[test]
    fn byte_string_is_length_then_bytes() {
        let out = Encoder::new().bytes(b"abc").into_bytes();
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn empty_string_is_eight_zero_bytes() {
        assert_eq!(Encoder::new().bytes(b"").into_bytes(), [0u8; 8]);
    }

    #[test]
    fn integers_are_fixed_width_and_prefixed() {
        let out = Encoder::new().u64(0x0102).u8(1).u16(0x0304).into_bytes();
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 3, 4]);
        assert_eq!(out, want);
        let mut d = Decoder::new(&out);
        assert_eq!((d.u64().unwrap(), d.u8().unwrap(), d.u16().unwrap()), (0x0102, 1, 0x0304));
        d.finish().unwrap();
        let wide = Encoder::new().u256_from_u64(5).into_bytes();
        assert_eq!(wide.len(), 8 + 32);
        assert_eq!(wide[7], 32);
        assert_eq!(wide[39], 5);
    }

    #[test]
    fn list_is_count_then_encoded_elements() {
        let out = Encoder::new().bytes_list([&b"a"[..], b"bc"]).into_bytes();
        let want = [
            &[0u8, 0, 0, 0, 0, 0, 0, 2][..],
            &[0, 0, 0, 0, 0, 0, 0, 1, b'a'],
            &[0, 0, 0, 0, 0, 0, 0, 2, b'b', b'c'],
        ]
        .concat();
        assert_eq!(out, want);
        let gas = Encoder::new().u64_list([7u64]).into_bytes();
        assert_eq!(
            gas,
            [&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &[0, 0, 0, 0, 0, 0, 0, 8], &7u64.to_be_bytes()]
                .concat()
        );
    }

    #[test]
    fn hashing_encoder_equals_keccak_of_bytes() {
        let fields: [&[u8]; 3] = [b"x", b"", &[9; 100]];
        let bytes = fields.iter().fold(Encoder::new(), |e, f| e.bytes(f)).into_bytes();
        let digest = fields.iter().fold(Encoder::hashing(), |e, f| e.bytes(f)).digest();
        assert_eq!(digest, keccak256(bytes));
    }

    #[test]
    fn decoder_rejects_truncation_and_trailing_bytes() {
        let bytes = Encoder::new().bytes(b"hello").into_bytes();
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(&bytes[..cut]);
            assert!(matches!(d.bytes(), Err(DecodeError::Truncated { .. })), "cut at {cut}");
        }
        let mut extended = bytes;
        extended.push(0);
        let mut d = Decoder::new(&extended);
        assert_eq!(d.bytes().unwrap(), b"hello");
        assert_eq!(d.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn decoder_rejects_a_huge_length_without_allocating() {
        let mut input = u64::MAX.to_be_bytes().to_vec();
        input.extend_from_slice(b"xy");
        assert!(matches!(Decoder::new(&input).bytes(), Err(DecodeError::Truncated { .. })));
        assert!(matches!(
            Decoder::new(&input).list_len(u64::MAX),
            Err(DecodeError::ListTooLong { len: u64::MAX, max: 0 })
        ));
    }

    #[test]
    fn decoder_rejects_a_fixed_field_of_another_width() {
        let bytes = Encoder::new().bytes(&[1; 31]).into_bytes();
        assert_eq!(
            Decoder::new(&bytes).fixed::<32>(),
            Err(DecodeError::WrongWidth { expected: 32, got: 31 })
        );
    }

    #[test]
    fn list_len_respects_the_callers_maximum() {
        let bytes = Encoder::new().bytes_list([b"a", b"b", b"c"]).into_bytes();
        assert_eq!(
            Decoder::new(&bytes).list_len(2),
            Err(DecodeError::ListTooLong { len: 3, max: 2 })
        );
        assert_eq!(Decoder::new(&bytes).bytes_list(3).unwrap(), [b"a", b"b", b"c"]);
    }

    fn encode_message(fields: &[Vec<u8>]) -> Vec<u8> {
        fields.iter().fold(Encoder::new(), |e, f| e.bytes(f)).into_bytes()
    }

    /// A message of the shape the signed receipt batch has: a fixed field, then two lists.
    #[derive(Debug, Clone, PartialEq)]
    struct Shaped {
        head: Vec<u8>,
        hashes: Vec<Vec<u8>>,
        gas: Vec<u64>,
    }

    fn encode_shaped(m: &Shaped) -> Vec<u8> {
        Encoder::new()
            .bytes(&m.head)
            .bytes_list(&m.hashes)
            .u64_list(m.gas.iter().copied())
            .into_bytes()
    }

    fn decode_shaped(bytes: &[u8]) -> Result<Shaped, DecodeError> {
        let mut d = Decoder::new(bytes);
        let head = d.bytes()?.to_vec();
        let hashes = d.bytes_list(u64::MAX)?.into_iter().map(<[u8]>::to_vec).collect();
        let n = d.list_len(u64::MAX)?;
        let gas = (0..n).map(|_| d.u64()).collect::<Result<_, _>>()?;
        d.finish()?;
        Ok(Shaped { head, hashes, gas })
    }

    fn shaped() -> impl Strategy<Value = Shaped> {
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
            proptest::collection::vec(any::<u64>(), 0..6),
        )
            .prop_map(|(head, hashes, gas)| Shaped { head, hashes, gas })
    }

    fn fields() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Distinct lists of byte-string fields never share an encoding (so never a digest).
        #[test]
        fn enc_is_injective_on_field_lists(a in fields(), b in fields()) {
            prop_assert_eq!(a == b, encode_message(&a) == encode_message(&b));
        }

        /// The encoding of a field list decodes back to exactly that list.
        #[test]
        fn enc_of_field_lists_decodes_back(a in fields()) {
            let bytes = encode_message(&a);
            let mut d = Decoder::new(&bytes);
            let mut back = Vec::new();
            while d.remaining() > 0 {
                back.push(d.bytes().unwrap().to_vec());
            }
            prop_assert_eq!(back, a);
        }

        /// Within one message shape (fields and lists), distinct messages encode differently.
        #[test]
        fn enc_is_injective_within_a_shape(a in shaped(), b in shaped()) {
            prop_assert_eq!(a == b, encode_shaped(&a) == encode_shaped(&b));
            prop_assert_eq!(decode_shaped(&encode_shaped(&a)).unwrap(), a);
        }

        /// No input makes the decoder panic.
        #[test]
        fn decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_shaped(&input);
        }
    }
}
