//! The cryptography of the enigma protocol (PROTOCOL.md section 2), `no_std` + `alloc`.
//!
//! - [`KeyPair`]: a secp256k1 key pair (generate, from bytes, its 64-byte [`PublicKey`] and
//!   Ethereum [`Address`]); recoverable ECDSA over Keccak digests ([`Signature`], RFC 6979);
//!   the ECDH key derivation `SHA256((0x02 | parity(P.y)) ‖ P.x)` into a [`SymmetricKey`].
//! - [`SymmetricKey`]: the AES-256-GCM envelope `ciphertext ‖ tag(16) ‖ iv(12)` with a random IV.
//! - [`keccak256`] and [`sha256`].
//!
//! Private and derived keys zeroize on drop, are neither `Copy` nor `Clone`, and their `Debug`
//! prints no secret. Every failure — a short blob, a bad tag, an invalid point, a bad
//! signature — is an [`Error`] value, never a panic.
//!
//! ```
//! use enigma_crypto::{KeyPair, keccak256};
//!
//! let user = KeyPair::generate()?;
//! let enclave = KeyPair::generate()?;
//! // Both sides derive the same key from their own secret and the other's public key.
//! let key = user.derive_key(enclave.public_key());
//! let blob = key.encrypt(b"add_millionaire(address,uint256)")?;
//! assert_eq!(enclave.derive_key(user.public_key()).decrypt(&blob)?, b"add_millionaire(address,uint256)");
//!
//! let digest = keccak256(b"a receipt");
//! let signature = enclave.sign_digest(&digest);
//! assert_eq!(signature.recover_address(&digest)?, enclave.address());
//! # Ok::<(), enigma_crypto::Error>(())
//! ```
//!
//! Features: `std` (default) implements `std::error::Error`; `test-utils` exposes encryption
//! with a caller-chosen IV for known-answer tests (never for real messages).
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![cfg_attr(not(test), deny(clippy::panic))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod keys;
mod signature;
mod symmetric;

pub use enigma_types::{Address, keccak256};
pub use error::{Error, Result};
pub use keys::{KeyPair, PublicKey};
pub use signature::Signature;
pub use symmetric::{IV_LEN, OVERHEAD, SymmetricKey, TAG_LEN};

/// SHA-256 of `data` (used by the ECDH key derivation; every protocol hash is Keccak-256).
#[must_use]
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data.as_ref()).into()
}

/// Fills `buf` from the operating system's random number generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Rng)
}

/// Who signed a task's result.
pub trait SignedResult {
    /// The enclave signer who signed this result: its receipt signature and its seal must both
    /// be well formed and recover to the same signer, so no field of the message can have been
    /// altered on the way.
    fn signer(&self) -> Option<enigma_types::SignerAddress>;
}

impl SignedResult for enigma_types::result::ResultMessage {
    fn signer(&self) -> Option<enigma_types::SignerAddress> {
        let recover = |signature: &[u8], digest: &[u8; 32]| {
            Signature::from_bytes(signature).ok()?.recover_address(digest).ok()
        };
        let receipt = recover(&self.signature, &self.receipt_digest())?;
        let seal = recover(&self.result_signature, &self.result_digest())?;
        (receipt == seal).then_some(enigma_types::SignerAddress::from(receipt))
    }
}
