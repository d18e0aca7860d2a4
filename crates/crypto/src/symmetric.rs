//! The AES-256-GCM envelope: `ciphertext ‖ tag(16) ‖ iv(12)`, empty associated data.

use alloc::vec::Vec;
use core::fmt;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce, Tag,
    aead::{AeadInOut, inout::InOutBuf},
};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the IV.
pub const IV_LEN: usize = 12;
/// Bytes an envelope adds to its plaintext (an empty plaintext encrypts to this many).
pub const OVERHEAD: usize = TAG_LEN + IV_LEN;

/// A 256-bit symmetric key: an ECDH-derived key, a contract state key or a sealing key.
/// Zeroized on drop; not `Copy` or `Clone`; compared in constant time; `Debug` prints nothing
/// of it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Wraps 32 key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut key = Self([0; 32]);
        crate::random_bytes(&mut key.0)?;
        Ok(key)
    }

    /// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and `info`, 32 bytes of output.
    #[must_use]
    pub fn derive_hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Self {
        let mut key = Self([0; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 · 32, so expand cannot fail.
        let _ = Hkdf::<sha2::Sha256>::new(Some(salt), ikm).expand(info, &mut key.0);
        key
    }

    /// The raw key bytes. Only enclave code that seals or derives from the key needs this.
    #[must_use]
    pub const fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    /// Encrypts `plaintext` under a random IV from the operating system.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_with_ad(plaintext, &[])
    }

    /// Encrypts `plaintext` bound to associated data `ad`: the envelope opens only with the
    /// same `ad` ([`decrypt_with_ad`](Self::decrypt_with_ad)). The wire format is unchanged.
    pub fn encrypt_with_ad(&self, plaintext: &[u8], ad: &[u8]) -> Result<Vec<u8>> {
        let mut iv = [0u8; IV_LEN];
        crate::random_bytes(&mut iv)?;
        self.seal(plaintext, &iv, ad)
    }

    /// Encrypts `plaintext` under a random IV drawn from `rng`.
    pub fn encrypt_with_rng<R: CryptoRng + ?Sized>(
        &self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        self.seal(plaintext, &iv, &[])
    }

    /// Encrypts under a caller-chosen IV, for known-answer tests only: reusing an IV under one
    /// key destroys the confidentiality and integrity of both messages.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn encrypt_with_iv(&self, plaintext: &[u8], iv: &[u8; IV_LEN]) -> Result<Vec<u8>> {
        self.seal(plaintext, iv, &[])
    }

    fn seal(&self, plaintext: &[u8], iv: &[u8; IV_LEN], ad: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher()
            .encrypt_inout_detached(&Nonce::from(*iv), ad, InOutBuf::from(out.as_mut_slice()))
            .map_err(|_| Error::PlaintextTooLong { len: plaintext.len() })?;
        out.extend_from_slice(&tag);
        out.extend_from_slice(iv);
        Ok(out)
    }

    /// Decrypts an envelope made by [`encrypt`](Self::encrypt) under this key.
    pub fn decrypt(&self, blob: &[u8]) -> Result<Vec<u8>> {
        self.decrypt_with_ad(blob, &[])
    }

    /// Decrypts an envelope made by [`encrypt_with_ad`](Self::encrypt_with_ad) with the same
    /// associated data; any other `ad` fails as [`Error::Decryption`].
    pub fn decrypt_with_ad(&self, blob: &[u8], ad: &[u8]) -> Result<Vec<u8>> {
        let too_short = Error::BlobTooShort { len: blob.len() };
        let body_len = blob.len().checked_sub(OVERHEAD).ok_or(too_short)?;
        let (ciphertext, rest) = blob.split_at(body_len);
        let (tag, iv) = rest.split_at(TAG_LEN);
        let tag = Tag::try_from(tag).map_err(|_| Error::BlobTooShort { len: blob.len() })?;
        let iv = Nonce::try_from(iv).map_err(|_| Error::BlobTooShort { len: blob.len() })?;
        let mut out = ciphertext.to_vec();
        match self.cipher().decrypt_inout_detached(
            &iv,
            ad,
            InOutBuf::from(out.as_mut_slice()),
            &tag,
        ) {
            Ok(()) => Ok(out),
            Err(_) => {
                out.zeroize();
                Err(Error::Decryption)
            }
        }
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    #[test]
    fn empty_plaintext_gives_28_bytes() {
        let key = SymmetricKey::from_bytes([1; 32]);
        let blob = key.encrypt(b"").unwrap();
        assert_eq!(blob.len(), OVERHEAD);
        assert_eq!(key.decrypt(&blob).unwrap(), b"");
    }

    #[test]
    fn short_blobs_are_errors_not_panics() {
        let key = SymmetricKey::from_bytes([1; 32]);
        for len in 0..OVERHEAD {
            assert_eq!(key.decrypt(&[0; OVERHEAD][..len]), Err(Error::BlobTooShort { len }));
        }
        assert_eq!(key.decrypt(&[0; OVERHEAD]), Err(Error::Decryption));
    }

    #[test]
    fn wrong_key_fails() {
        let blob = SymmetricKey::from_bytes([1; 32]).encrypt(b"secret").unwrap();
        assert_eq!(SymmetricKey::from_bytes([2; 32]).decrypt(&blob), Err(Error::Decryption));
    }

    #[test]
    fn associated_data_must_match() {
        let key = SymmetricKey::from_bytes([1; 32]);
        let blob = key.encrypt_with_ad(b"secret", b"task 1 callable").unwrap();
        assert_eq!(key.decrypt_with_ad(&blob, b"task 1 callable").unwrap(), b"secret");
        assert_eq!(key.decrypt_with_ad(&blob, b"task 2 callable"), Err(Error::Decryption));
        assert_eq!(key.decrypt(&blob), Err(Error::Decryption));
        let plain = key.encrypt(b"secret").unwrap();
        assert_eq!(key.decrypt_with_ad(&plain, b"x"), Err(Error::Decryption));
    }

    #[test]
    fn random_ivs_differ() {
        let key = SymmetricKey::from_bytes([1; 32]);
        assert_ne!(key.encrypt(b"same").unwrap(), key.encrypt(b"same").unwrap());
    }

    #[test]
    fn debug_is_redacted() {
        let key = SymmetricKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "SymmetricKey(<redacted>)");
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt: [u8; 13] = core::array::from_fn(|i| i as u8);
        let info: [u8; 10] = core::array::from_fn(|i| 0xf0 + i as u8);
        let key = SymmetricKey::derive_hkdf(&ikm, &salt, &info);
        assert_eq!(
            hex::encode(key.expose_secret()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }
}
