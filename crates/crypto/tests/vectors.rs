//! Every known-answer vector of Discovery's crypto layer (testdata/discovery-crypto.json).

use enigma_crypto::{Error, KeyPair, PublicKey, Signature, SymmetricKey, keccak256, sha256};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/discovery-crypto.json");
    let text =
        std::fs::read_to_string(path).expect("testdata/discovery-crypto.json is in the repository");
    serde_json::from_str(&text).expect("the vectors file is JSON")
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn cases(name: &str) -> Vec<Value> {
    let cases = vectors()[name].as_array().unwrap_or_else(|| panic!("{name} cases")).clone();
    assert!(!cases.is_empty(), "{name} has cases");
    cases
}

fn key32(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

#[test]
fn aes_256_gcm_vectors() {
    let mut encrypted = 0;
    let mut tampered = 0;
    for case in cases("aes_256_gcm") {
        let key = SymmetricKey::from_bytes(key32(&case["key"]));
        if let Some(kind) = case["key_is"].as_str() {
            assert_eq!(kind, "sha256('EnigmaMPC')");
            assert_eq!(key.expose_secret(), &sha256(b"EnigmaMPC"));
        }
        if let Some(wire) = case.get("wire") {
            let wire = unhex(wire);
            let iv: [u8; 12] = unhex(&case["iv"]).try_into().unwrap();
            let plaintext = case["plaintext_utf8"].as_str().unwrap().as_bytes();
            assert_eq!(key.encrypt_with_iv(plaintext, &iv).unwrap(), wire, "encrypt");
            assert_eq!(key.decrypt(&wire).unwrap(), plaintext, "decrypt");
            encrypted += 1;
        }
        if let Some(bad) = case.get("tampered_wire_must_fail") {
            assert_eq!(key.decrypt(&unhex(bad)), Err(Error::Decryption));
            tampered += 1;
        }
    }
    assert_eq!((encrypted, tampered), (2, 1), "every AES case was checked");
}

#[test]
fn ecdh_kdf_vectors() {
    let mut checked = 0;
    for case in cases("ecdh_kdf") {
        let want = unhex(&case["derived_key"]);
        if let Some(peer) = case.get("peer_public_64") {
            let own = KeyPair::from_bytes(&key32(&case["own_private"])).unwrap();
            let peer = unhex(peer);
            let plain = PublicKey::from_bytes(&peer).unwrap();
            assert_eq!(own.derive_key(&plain).expose_secret().to_vec(), want, "64-byte peer key");
            let prefixed = PublicKey::from_bytes(&[&[0x04][..], &peer].concat()).unwrap();
            assert_eq!(
                own.derive_key(&prefixed).expose_secret().to_vec(),
                want,
                "04-prefixed peer key"
            );
            checked += 1;
        } else {
            let a = KeyPair::from_bytes(&key32(&case["private_a"])).unwrap();
            let b = KeyPair::from_bytes(&key32(&case["private_b"])).unwrap();
            assert_eq!(a.derive_key(b.public_key()).expose_secret().to_vec(), want, "a with b");
            assert_eq!(b.derive_key(a.public_key()).expose_secret().to_vec(), want, "b with a");
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn ecdsa_signature_vectors_byte_for_byte() {
    for case in cases("ecdsa_sign") {
        assert_eq!(case["digest_is"], "keccak256(message)");
        let pair = KeyPair::from_bytes(&key32(&case["private"])).unwrap();
        let message = case["message_utf8"].as_str().unwrap().as_bytes();
        let want = unhex(&case["signature_65"]);
        let signature = pair.sign(message);
        assert_eq!(signature.as_bytes().to_vec(), want, "signature bytes");
        let parsed = Signature::from_bytes(&want).unwrap();
        assert_eq!(parsed.recover_address(&keccak256(message)).unwrap(), pair.address());
    }
}
