//! secp256k1 key pairs, public keys and the ECDH key derivation.

use core::fmt;

use enigma_types::Address;
use k256::{
    ProjectivePoint,
    ecdsa::SigningKey,
    elliptic_curve::{
        Generate as _,
        sec1::{Tag, ToSec1Point},
    },
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::{Error, Result, Signature, SymmetricKey, keccak256, sha256};

/// A secp256k1 public key. It is always a valid point on the curve; its wire form is the
/// 64-byte uncompressed encoding without the `04` prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 64],
    point: k256::PublicKey,
}

impl PublicKey {
    /// Parses a public key given as 64 bytes, or as 65 bytes starting with `04`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut sec1 = [0u8; 65];
        match bytes.len() {
            64 => {
                sec1[0] = Tag::Uncompressed as u8;
                sec1[1..].copy_from_slice(bytes);
            }
            65 if bytes.first() == Some(&(Tag::Uncompressed as u8)) => sec1.copy_from_slice(bytes),
            _ => {
                return Err(Error::InvalidPublicKey {
                    reason: "expected 64 bytes (x ‖ y), or 65 bytes starting with 04",
                });
            }
        }
        let point = k256::PublicKey::from_sec1_bytes(&sec1)
            .map_err(|_| Error::InvalidPublicKey { reason: "the point is not on secp256k1" })?;
        Ok(Self::from_point(point))
    }

    fn from_point(point: k256::PublicKey) -> Self {
        let sec1 = point.as_affine().to_sec1_point(false);
        let mut bytes = [0u8; 64];
        if let Some(xy) = sec1.as_bytes().get(1..65) {
            bytes.copy_from_slice(xy);
        }
        Self { bytes, point }
    }

    /// The 64-byte wire form (`x ‖ y`).
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }

    /// The Ethereum address of this key: `H(pubkey64)[12..32]`.
    #[must_use]
    pub fn address(&self) -> Address {
        Address::from_public_key(&self.bytes)
    }

    pub(crate) fn point(&self) -> &k256::PublicKey {
        &self.point
    }

    pub(crate) fn from_verifying_key(key: &k256::ecdsa::VerifyingKey) -> Self {
        Self::from_point(k256::PublicKey::from(key))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl core::str::FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut buf = [0u8; 65];
        let len = digits.len() / 2;
        let out = buf
            .get_mut(..len)
            .filter(|_| digits.len().is_multiple_of(2))
            .ok_or(Error::InvalidPublicKey { reason: "expected 128 or 130 hex digits" })?;
        hex_decode(digits, out)
            .map_err(|()| Error::InvalidPublicKey { reason: "not a hex string" })?;
        Self::from_bytes(out)
    }
}

fn hex_decode(digits: &str, out: &mut [u8]) -> core::result::Result<(), ()> {
    let digits = digits.as_bytes();
    if digits.len() != out.len() * 2 {
        return Err(());
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8).ok_or(());
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return Err(()),
        };
        *byte = hi << 4 | lo;
    }
    Ok(())
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.bytes)
        }
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PublicKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secp256k1 public key as 64 bytes or 128 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> core::result::Result<PublicKey, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> core::result::Result<PublicKey, E> {
                PublicKey::from_bytes(v).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

/// A secp256k1 key pair. The secret half zeroizes on drop, cannot be copied or cloned, and
/// never appears in `Debug` output.
pub struct KeyPair {
    signing: SigningKey,
    public: PublicKey,
    address: Address,
}

impl KeyPair {
    /// A fresh key pair from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
            .map(Self::from_signing_key)
            .map_err(|_| Error::Rng)
    }

    /// A fresh key pair from the given cryptographic random number generator.
    pub fn generate_with<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_signing_key(SigningKey::generate_from_rng(rng))
    }

    /// The key pair whose secret key is the big-endian scalar `secret`.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self> {
        SigningKey::from_slice(secret)
            .map(Self::from_signing_key)
            .map_err(|_| Error::InvalidSecretKey)
    }

    /// Like [`from_bytes`](Self::from_bytes), for a slice that must be 32 bytes.
    pub fn from_slice(secret: &[u8]) -> Result<Self> {
        let secret =
            Zeroizing::new(<[u8; 32]>::try_from(secret).map_err(|_| Error::InvalidSecretKey)?);
        Self::from_bytes(&secret)
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let public = PublicKey::from_verifying_key(signing.verifying_key());
        let address = public.address();
        Self { signing, public, address }
    }

    /// The secret key's 32 bytes, for sealing. Handle with care: the copy zeroizes on drop.
    #[must_use]
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes().into())
    }

    /// The public half.
    #[must_use]
    pub const fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The Ethereum address of the public key.
    #[must_use]
    pub const fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest (normally Keccak-256 of an `enc` message): `r ‖ s ‖ v`,
    /// `v = 27 + recovery id`, deterministic nonce (RFC 6979), low `s`.
    #[must_use]
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Signature {
        let (signature, recovery_id) = self.signing.sign_prehash_recoverable(digest);
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = 27 + recovery_id.to_byte();
        Signature::from_array_unchecked(bytes)
    }

    /// Signs Keccak-256 of `message` (no `"\x19Ethereum Signed Message"` prefix).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.sign_digest(&keccak256(message))
    }

    /// The key shared with the holder of `peer`'s secret key:
    /// `SHA256((0x02 | parity(P.y)) ‖ P.x)` with `P = self · peer`.
    #[must_use]
    pub fn derive_key(&self, peer: &PublicKey) -> SymmetricKey {
        let shared = (ProjectivePoint::from(*peer.point().as_affine())
            * self.signing.as_nonzero_scalar().as_ref())
        .to_affine();
        // The compressed SEC1 encoding is exactly `(0x02 | parity(y)) ‖ x`.
        let mut compressed = shared.to_sec1_point(true);
        let key = sha256(compressed.as_bytes());
        zeroize::Zeroize::zeroize(&mut compressed);
        SymmetricKey::from_bytes(key)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("address", &self.address)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use alloc::{format, string::ToString};

    use super::*;

    #[test]
    fn debug_shows_the_address_and_not_the_secret() {
        let secret = [0x42u8; 32];
        let pair = KeyPair::from_bytes(&secret).unwrap();
        let debug = format!("{pair:?}");
        assert!(debug.contains(&format!("{}", pair.address())), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("4242"), "{debug}");
    }

    #[test]
    fn invalid_secret_keys_are_errors() {
        assert_eq!(KeyPair::from_bytes(&[0; 32]).unwrap_err(), Error::InvalidSecretKey);
        assert_eq!(KeyPair::from_bytes(&[0xff; 32]).unwrap_err(), Error::InvalidSecretKey);
        assert_eq!(KeyPair::from_slice(&[1; 31]).unwrap_err(), Error::InvalidSecretKey);
    }

    #[test]
    fn invalid_public_keys_are_errors() {
        assert!(matches!(PublicKey::from_bytes(&[1; 63]), Err(Error::InvalidPublicKey { .. })));
        assert!(matches!(PublicKey::from_bytes(&[0; 64]), Err(Error::InvalidPublicKey { .. })));
        let pair = KeyPair::from_bytes(&[7; 32]).unwrap();
        let mut prefixed = [0u8; 65];
        prefixed[0] = 0x03;
        prefixed[1..].copy_from_slice(pair.public_key().as_bytes());
        assert!(matches!(PublicKey::from_bytes(&prefixed), Err(Error::InvalidPublicKey { .. })));
        let mut off_curve = *pair.public_key().as_bytes();
        off_curve[63] ^= 1;
        assert!(matches!(PublicKey::from_bytes(&off_curve), Err(Error::InvalidPublicKey { .. })));
    }

    #[test]
    fn public_key_text_round_trips_with_or_without_prefix() {
        let pair = KeyPair::from_bytes(&[9; 32]).unwrap();
        let text = pair.public_key().to_string();
        assert_eq!(text.len(), 130);
        assert_eq!(text.parse::<PublicKey>().unwrap(), *pair.public_key());
        assert_eq!(format!("04{}", &text[2..]).parse::<PublicKey>().unwrap(), *pair.public_key());
        assert!("0x12".parse::<PublicKey>().is_err());
        assert!("zz".repeat(64).parse::<PublicKey>().is_err());
    }

    #[test]
    fn secret_bytes_round_trip() {
        let pair = KeyPair::generate().unwrap();
        let again = KeyPair::from_bytes(&pair.secret_bytes()).unwrap();
        assert_eq!(again.address(), pair.address());
    }
}
