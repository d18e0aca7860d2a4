//! Discovery's known-answer vectors for the inputs hash (testdata/discovery-crypto.json).

use enigma_types::{ContractAddress, enc::Encoder, inputs_hash_compute};
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

#[test]
fn discovery_inputs_hash_vectors() {
    let cases = vectors()["inputs_hash"].as_array().expect("inputs_hash cases").clone();
    assert!(!cases.is_empty());
    for case in cases {
        let parts: Vec<Vec<u8>> = case["parts_hex"].as_array().unwrap().iter().map(unhex).collect();
        let want = unhex(&case["hash"]);

        let generic = parts.iter().fold(Encoder::hashing(), |e, p| e.bytes(p)).digest();
        assert_eq!(generic.to_vec(), want, "enc over the four parts");

        let [f, a, c, pk] = parts.as_slice() else { panic!("four parts") };
        let contract = ContractAddress::from_slice(c).unwrap();
        let pk: [u8; 64] = pk.as_slice().try_into().unwrap();
        assert_eq!(
            inputs_hash_compute(f, a, &contract, &pk).0.to_vec(),
            want,
            "inputs_hash_compute"
        );
    }
}
