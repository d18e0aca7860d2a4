//! The known answers the JavaScript client is tested against (`testdata/js-vectors.json`),
//! checked here against the Rust crates themselves: the same keys and inputs give the same
//! shared key, inputs hash, query hash, signature and selection, and the ciphertexts made by Rust
//! open. `clients/js/test/vectors.test.mjs` checks the WebAssembly build against the same file, so
//! both implementations answer alike — and a change to a format fails both until the file is
//! regenerated (`ENIGMA_WRITE_VECTORS=1 cargo test -p enigma-wasm`).

use std::path::PathBuf;

use enigma_attestation::{IasEvidence, Policy, WORKER_PRODUCT_ID, onchain};
use enigma_crypto::{KeyPair, PublicKey, Signature};
use enigma_types::{
    ContractAddress, SignerAddress, TaskId,
    messages::{TaskField, query_hash, query_task_id, task_field_ad},
    selection::select_workers,
};
use serde_json::{Value, json};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/js-vectors.json")
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

fn key(byte: u8) -> KeyPair {
    KeyPair::from_bytes(&[byte; 32]).unwrap()
}

const CALLABLE: &str = "add_millionaire(address,uint256)";

/// The answer's signed fields other than the query and output hashes.
const ANSWER_CODE_HASH: &str = "0x9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e";
const ANSWER_DELTA_HASH: &str =
    "0x4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";

/// Discovery's worker 0 as the chain's `Registered` event carries it, the policy that accepts
/// it, and when.
fn ias() -> (u8, Vec<u8>, Policy, String, u64) {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ias/discovery-worker0.json"),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let report = v["report"].as_str().unwrap().to_string();
    let inner: Value = serde_json::from_str(&report).unwrap();
    let evidence = enigma_attestation::Evidence::Ias(IasEvidence {
        report,
        signature: hex::decode(v["signature_hex"].as_str().unwrap()).unwrap(),
        signing_certificate: v["signing_cert_pem"].as_str().unwrap().into(),
    });
    let (kind, bytes) = onchain::encode_evidence(&evidence).unwrap();
    let mr: [u8; 32] =
        hex::decode("26a0c230e56c6412b505349d298480acb88fc512f456471372aff7950f742574")
            .unwrap()
            .try_into()
            .unwrap();
    let policy = Policy::default()
        .allow_status("GROUP_OUT_OF_DATE")
        .allow_debug(true)
        .with_mr_enclaves(vec![mr])
        .with_product_id(WORKER_PRODUCT_ID)
        .with_max_age(24 * 3600);
    let at =
        enigma_attestation::parse_ias_timestamp(inner["timestamp"].as_str().unwrap()).unwrap() + 60;
    (kind, bytes, policy, v["signer_address"].as_str().unwrap().to_string(), at)
}

/// Everything that does not depend on randomness, from the fixed inputs.
fn known(user: &KeyPair, worker: &KeyPair) -> Value {
    let contract: ContractAddress = format!("0x{}", "5a".repeat(32)).parse().unwrap();
    let task: TaskId = format!("0x{}", "7c".repeat(32)).parse().unwrap();
    let args = hex::decode("0000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000002a").unwrap();
    let digest = enigma_types::keccak256(b"enigma js vectors");
    let query_id = [0x33u8; 32];
    let seed = enigma_types::keccak256(b"epoch seed");
    let workers: Vec<SignerAddress> =
        (1u8..=4).map(|i| format!("0x{}", hex::encode([i; 20])).parse().unwrap()).collect();
    let stakes = [100u128, 0, 300, 250];
    let principal: enigma_types::Address = format!("0x{}", "99".repeat(20)).parse().unwrap();
    let io_key = key(0x44);
    let (ias_kind, ias_evidence, ias_policy, ias_signer, ias_at) = ias();
    let verdict = enigma_attestation::check_worker_evidence(
        &onchain::decode_evidence(ias_kind, &ias_evidence).unwrap(),
        &ias_policy,
        ias_signer.parse().unwrap(),
        ias_at,
    )
    .unwrap();
    let io_digest = enigma_types::messages::worker_key_digest(io_key.public_key().as_bytes());
    json!({
        "worker_address": worker.address().to_string(),
        "principal": principal.to_string(),
        "io_key": hex0x(io_key.public_key().as_bytes()),
        "io_key_signature": hex0x(worker.sign_digest(&io_digest).as_bytes()),
        "answer_code_hash": ANSWER_CODE_HASH,
        "answer_delta_count": 7,
        "answer_delta_hash": ANSWER_DELTA_HASH,
        "answer_gas": 123_456,
        "ias_kind": ias_kind,
        "ias_evidence": hex0x(&ias_evidence),
        "ias_policy": serde_json::to_string(&ias_policy).unwrap(),
        "ias_signer": ias_signer,
        "ias_at": ias_at,
        "ias_verdict": serde_json::to_string(&verdict).unwrap(),
        "user_secret": hex0x(&*user.secret_bytes()),
        "user_public": hex0x(user.public_key().as_bytes()),
        "user_address": user.address().to_string(),
        "worker_secret": hex0x(&*worker.secret_bytes()),
        "worker_public": hex0x(worker.public_key().as_bytes()),
        "contract": contract.to_string(),
        "task": task.to_string(),
        "value": "1234567890123456789012345",
        "callable": CALLABLE,
        "args": hex0x(&args),
        "field_ad_callable": hex0x(&task_field_ad(&contract, &task, 1_234_567_890_123_456_789_012_345, TaskField::Callable)),
        "keccak_input": hex0x(b"enigma"),
        "keccak": hex0x(&enigma_types::keccak256(b"enigma")),
        "digest": hex0x(&digest),
        "signature": hex0x(user.sign_digest(&digest).as_bytes()),
        "query_id": hex0x(&query_id),
        "query_task_id": query_task_id(&query_id).to_string(),
        "seed": hex0x(&seed),
        "workers": workers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "stakes": stakes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "group_size": 2,
        "selected": select_workers(&seed, &contract, &workers, &stakes, 2)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    })
}

/// What depends on the ciphertexts (made once, with random IVs).
fn derived(v: &Value, user: &KeyPair, worker: &KeyPair) -> Value {
    let enc_fn = unhex(&v["encrypted_fn"]);
    let enc_args = unhex(&v["encrypted_args"]);
    let contract: ContractAddress = v["contract"].as_str().unwrap().parse().unwrap();
    let user_public: [u8; 64] = unhex(&v["user_public"]).try_into().unwrap();
    let query_id: [u8; 32] = unhex(&v["query_id"]).try_into().unwrap();
    let query = query_hash(&contract, &query_id, &enc_fn, &enc_args, &user_public);
    let principal: enigma_types::Address = v["principal"].as_str().unwrap().parse().unwrap();
    let query_signature =
        user.sign_digest(&enigma_types::caller::query_digest(&principal, &contract, &query));
    let answer =
        enigma_types::messages::query_answer_digest(&enigma_types::messages::QueryAnswerFields {
            contract: &contract,
            code_hash: &ANSWER_CODE_HASH.parse().unwrap(),
            delta_count: 7,
            delta_hash: &ANSWER_DELTA_HASH.parse().unwrap(),
            query_hash: &query,
            output_hash: &enigma_types::output_hash(&unhex(&v["encrypted_output"])),
            success: true,
            gas_used: 123_456,
            caller: user.address(),
        });
    json!({
        "inputs_hash": hex0x(&enigma_types::inputs_hash_compute(&enc_fn, &enc_args, &contract, &user_public).0),
        "query_hash": hex0x(&query),
        "query_digest": hex0x(&enigma_types::caller::query_digest(&principal, &contract, &query)),
        "query_caller_field": hex0x(&enigma_types::caller::QueryCaller::Signature(query_signature.as_bytes().to_vec()).encode()),
        "anonymous_caller_field": hex0x(&enigma_types::caller::QueryCaller::Nobody.encode()),
        "output_hash": hex0x(&enigma_types::output_hash(&unhex(&v["encrypted_output"])).0),
        "answer_signature": hex0x(worker.sign_digest(&answer).as_bytes()),
    })
}

#[test]
fn the_javascript_vectors_are_what_the_rust_crates_compute() {
    let (user, worker) = (key(0x11), key(0x22));
    let mut want = known(&user, &worker);
    let contract: ContractAddress = want["contract"].as_str().unwrap().parse().unwrap();
    let task: TaskId = want["task"].as_str().unwrap().parse().unwrap();
    let value: u128 = want["value"].as_str().unwrap().parse().unwrap();
    let ad = |field| task_field_ad(&contract, &task, value, field);
    // The worker's side of the shared key: what the user encrypts, the enclave opens.
    let at_worker = worker.derive_key(user.public_key());

    if std::env::var_os("ENIGMA_WRITE_VECTORS").is_some() || !path().exists() {
        let at_user =
            user.derive_key(&PublicKey::from_bytes(worker.public_key().as_bytes()).unwrap());
        let enc = |plain: &[u8], field| hex0x(&at_user.encrypt_with_ad(plain, &ad(field)).unwrap());
        let output = b"the richest is 0x1111";
        let made = [
            ("encrypted_fn", enc(CALLABLE.as_bytes(), TaskField::Callable)),
            ("encrypted_args", enc(&unhex(&want["args"]), TaskField::Arguments)),
            ("output", hex0x(output)),
            (
                "encrypted_output",
                hex0x(&at_worker.encrypt_with_ad(output, &ad(TaskField::Output)).unwrap()),
            ),
        ];
        for (name, value) in made {
            want[name] = value.into();
        }
        let more = derived(&want, &user, &worker);
        want.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        std::fs::write(path(), serde_json::to_string_pretty(&want).unwrap() + "\n").unwrap();
    }

    let file: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    for (name, value) in known(&user, &worker).as_object().unwrap() {
        assert_eq!(&file[name], value, "{name}");
    }
    for (name, value) in derived(&file, &user, &worker).as_object().unwrap() {
        assert_eq!(&file[name], value, "{name}");
    }
    // The Rust-made ciphertexts open at the worker (and the output at the user) to the plain
    // values, under their own field only.
    let open = |key: &enigma_crypto::SymmetricKey, name: &str, field| {
        key.decrypt_with_ad(&unhex(&file[name]), &ad(field)).unwrap()
    };
    assert_eq!(open(&at_worker, "encrypted_fn", TaskField::Callable), CALLABLE.as_bytes());
    assert_eq!(open(&at_worker, "encrypted_args", TaskField::Arguments), unhex(&file["args"]));
    let at_user = user.derive_key(worker.public_key());
    assert_eq!(open(&at_user, "encrypted_output", TaskField::Output), unhex(&file["output"]));
    assert!(
        at_worker
            .decrypt_with_ad(&unhex(&file["encrypted_fn"]), &ad(TaskField::Arguments))
            .is_err()
    );
    let signature = Signature::from_bytes(&unhex(&file["signature"])).unwrap();
    let digest: [u8; 32] = unhex(&file["digest"]).try_into().unwrap();
    assert_eq!(signature.recover_address(&digest).unwrap(), user.address());
}
