//! Recoverable ECDSA signatures `r ‖ s ‖ v` over Keccak-256 digests.

use core::fmt;

use enigma_types::Address;
use k256::ecdsa::{RecoveryId, VerifyingKey};

use crate::{Error, PublicKey, Result};

/// A 65-byte recoverable secp256k1 signature `r ‖ s ‖ v` with `v = 27 + recovery id`, as
/// Ethereum's `ecrecover` takes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 65]);

impl Signature {
    /// The length in bytes.
    pub const LEN: usize = 65;

    pub(crate) const fn from_array_unchecked(bytes: [u8; 65]) -> Self {
        Self(bytes)
    }

    /// Parses `r ‖ s ‖ v`. `v` may be 27/28 or the raw recovery id 0/1 (stored as 27/28).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut out = <[u8; 65]>::try_from(bytes).map_err(|_| Error::InvalidSignature {
            reason: "a signature is 65 bytes (r ‖ s ‖ v)",
        })?;
        out[64] = match out[64] {
            v @ (27 | 28) => v,
            v @ (0 | 1) => v + 27,
            _ => return Err(Error::InvalidSignature { reason: "v must be 27 or 28" }),
        };
        Ok(Self(out))
    }

    /// The 65 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 65] {
        &self.0
    }

    /// The public key that produced this signature over `digest`.
    pub fn recover(&self, digest: &[u8; 32]) -> Result<PublicKey> {
        let (rs, v) = self.0.split_at(64);
        let signature = k256::ecdsa::Signature::from_slice(rs).map_err(|_| {
            Error::InvalidSignature { reason: "r or s is zero or not below the curve order" }
        })?;
        let v = v.first().copied().unwrap_or(0);
        let recovery_id = RecoveryId::from_byte(v.wrapping_sub(27))
            .ok_or(Error::InvalidSignature { reason: "v must be 27 or 28" })?;
        let key =
            VerifyingKey::recover_from_prehash(digest, &signature, recovery_id).map_err(|_| {
                Error::InvalidSignature {
                    reason: "it does not verify under any public key for this digest",
                }
            })?;
        Ok(PublicKey::from_verifying_key(&key))
    }

    /// The address of the key that produced this signature over `digest`.
    pub fn recover_address(&self, digest: &[u8; 32]) -> Result<Address> {
        self.recover(digest).map(|key| key.address())
    }

    /// Succeeds when this is `expected`'s signature over `digest`.
    pub fn verify(&self, digest: &[u8; 32], expected: &Address) -> Result<()> {
        let recovered = self.recover_address(digest)?;
        if recovered == *expected {
            Ok(())
        } else {
            Err(Error::WrongSigner { expected: *expected, recovered })
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl core::str::FromStr for Signature {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut bytes = [0u8; 65];
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|_| Error::InvalidSignature { reason: "expected 130 hex digits" })?;
        Self::from_bytes(&bytes)
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 65-byte signature as bytes or 130 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> core::result::Result<Signature, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> core::result::Result<Signature, E> {
                Signature::from_bytes(v).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;
    use crate::{KeyPair, keccak256};

    #[test]
    fn malformed_signatures_are_errors() {
        assert!(Signature::from_bytes(&[0; 64]).is_err());
        let mut bytes = [1u8; 65];
        bytes[64] = 29;
        assert!(Signature::from_bytes(&bytes).is_err());
        bytes[64] = 1;
        assert_eq!(Signature::from_bytes(&bytes).unwrap().as_bytes()[64], 28);
        let zero = Signature([0; 65]);
        assert!(matches!(zero.recover(&[0; 32]), Err(Error::InvalidSignature { .. })));
    }

    #[test]
    fn verify_names_both_signers_on_mismatch() {
        let a = KeyPair::from_bytes(&[1; 32]).unwrap();
        let b = KeyPair::from_bytes(&[2; 32]).unwrap();
        let digest = keccak256(b"m");
        let sig = a.sign_digest(&digest);
        assert!(sig.verify(&digest, &a.address()).is_ok());
        assert_eq!(
            sig.verify(&digest, &b.address()),
            Err(Error::WrongSigner { expected: b.address(), recovered: a.address() })
        );
    }

    #[test]
    fn text_round_trip() {
        let sig = KeyPair::from_bytes(&[3; 32]).unwrap().sign(b"x");
        assert_eq!(sig.to_string().parse::<Signature>().unwrap(), sig);
    }
}
