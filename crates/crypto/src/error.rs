use enigma_types::Address;

/// A cryptographic operation failed. No variant carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An encrypted blob too short to hold a tag and an IV.
    #[error(
        "encrypted blob is {len} bytes, shorter than the 28 bytes of tag and IV every AES-GCM \
         envelope carries; it was truncated or is not ciphertext"
    )]
    BlobTooShort {
        /// The blob's length.
        len: usize,
    },
    /// Authentication of an encrypted blob failed.
    #[error(
        "decryption failed: the ciphertext was altered, or it was encrypted under another key \
         (check that the right public keys were used)"
    )]
    Decryption,
    /// A plaintext too long for AES-GCM.
    #[error("plaintext of {len} bytes is too long to encrypt")]
    PlaintextTooLong {
        /// The plaintext's length.
        len: usize,
    },
    /// Bytes that are not a valid secp256k1 public key.
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes that are not a valid secp256k1 secret key.
    #[error("invalid secret key: it must be 32 bytes, not zero, and less than the curve order")]
    InvalidSecretKey,
    /// Bytes that are not a valid recoverable signature.
    #[error("invalid signature: {reason}")]
    InvalidSignature {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A valid signature by someone other than the expected signer.
    #[error("signature is by {recovered}, not by the expected signer {expected}")]
    WrongSigner {
        /// Who should have signed.
        expected: Address,
        /// Who did.
        recovered: Address,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// A result with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
