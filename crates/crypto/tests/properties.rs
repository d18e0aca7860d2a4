//! Properties of the envelope and the signatures, 256 random cases each.

use enigma_crypto::{Error, KeyPair, SymmetricKey, keccak256};
use proptest::prelude::*;

fn key_pair(secret: [u8; 32]) -> Option<KeyPair> {
    KeyPair::from_bytes(&secret).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decrypt_inverts_encrypt(key in any::<[u8; 32]>(), message in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let key = SymmetricKey::from_bytes(key);
        let blob = key.encrypt(&message).unwrap();
        prop_assert_eq!(blob.len(), message.len() + enigma_crypto::OVERHEAD);
        prop_assert_eq!(key.decrypt(&blob).unwrap(), message);
    }

    #[test]
    fn any_single_bit_flip_fails(
        key in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..256),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = SymmetricKey::from_bytes(key);
        let mut blob = key.encrypt(&message).unwrap();
        let i = position.index(blob.len());
        blob[i] ^= 1 << bit;
        prop_assert_eq!(key.decrypt(&blob), Err(Error::Decryption));
    }

    #[test]
    fn ecdh_agrees_both_ways(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let (Some(a), Some(b)) = (key_pair(a), key_pair(b)) else { return Ok(()) };
        prop_assert!(a.derive_key(b.public_key()) == b.derive_key(a.public_key()));
    }

    #[test]
    fn sign_then_recover_gives_the_signers_address(
        secret in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let Some(pair) = key_pair(secret) else { return Ok(()) };
        let digest = keccak256(&message);
        let signature = pair.sign_digest(&digest);
        prop_assert_eq!(signature.recover_address(&digest).unwrap(), pair.address());
        prop_assert_eq!(signature.recover(&digest).unwrap(), *pair.public_key());
        prop_assert!(signature.verify(&digest, &pair.address()).is_ok());
    }

    #[test]
    fn a_signature_over_another_digest_recovers_someone_else(
        secret in any::<[u8; 32]>(),
        a in any::<[u8; 32]>(),
        b in any::<[u8; 32]>(),
    ) {
        prop_assume!(a != b);
        let Some(pair) = key_pair(secret) else { return Ok(()) };
        let signature = pair.sign_digest(&a);
        prop_assert!(signature.verify(&b, &pair.address()).is_err());
    }
}
