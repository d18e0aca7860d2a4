//! The enigma client's protocol logic for JavaScript, compiled to WebAssembly with wasm-bindgen:
//! the same Rust code the Rust client runs (`enigma-types`, `enigma-crypto`), so a JavaScript
//! client encrypts, hashes, selects and verifies exactly as the Rust one does — one
//! implementation, not a second one in JavaScript.
//!
//! Byte strings cross as `Uint8Array`; addresses, contract addresses and task ids as `0x` hex
//! strings; ENG amounts (grains, up to 2^128) as decimal strings. Every function that can fail on
//! its input throws an `Error` saying what was wrong.
//!
//! Built by `clients/js/build.mjs` (`cargo build --target wasm32-unknown-unknown` and the pinned
//! `wasm-bindgen`); its JavaScript tests check it against `testdata/js-vectors.json`, which the
//! Rust test `tests/vectors.rs` checks against the Rust crates.

use std::{fmt::Display, str::FromStr};

use enigma_crypto::{KeyPair, PublicKey, Signature, SymmetricKey};
use enigma_types::{
    ContractAddress, SignerAddress, TaskId,
    messages::{TaskField, task_field_ad},
};
use wasm_bindgen::prelude::*;

fn fail(what: &str, e: impl Display) -> JsError {
    JsError::new(&format!("{what}: {e}"))
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, JsError>
where
    T::Err: Display,
{
    text.parse().map_err(|e| fail(what, e))
}

fn bytes32(what: &str, bytes: &[u8]) -> Result<[u8; 32], JsError> {
    bytes
        .try_into()
        .map_err(|_| JsError::new(&format!("{what} must be 32 bytes, not {}", bytes.len())))
}

fn public64(key: &[u8]) -> Result<[u8; 64], JsError> {
    key.try_into().map_err(|_| {
        JsError::new(&format!("the user's public key must be 64 bytes, not {}", key.len()))
    })
}

fn grains(text: &str) -> Result<u128, JsError> {
    text.parse().map_err(|e| fail("the value (a decimal number of grains)", e))
}

fn field(name: &str) -> Result<TaskField, JsError> {
    match name {
        "callable" => Ok(TaskField::Callable),
        "arguments" => Ok(TaskField::Arguments),
        "output" => Ok(TaskField::Output),
        "caller" => Ok(TaskField::Caller),
        other => Err(JsError::new(&format!(
            "unknown task field {other:?}: use callable, arguments, output or caller"
        ))),
    }
}

/// A secp256k1 key pair: the user's per-task (or per-query) key, or an account key.
#[wasm_bindgen]
pub struct Keys(KeyPair);

impl std::fmt::Debug for Keys {
    /// The address only: the secret never shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("address", &self.0.address()).finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Keys {
    /// A fresh random key pair (Web Crypto's randomness).
    pub fn generate() -> Result<Keys, JsError> {
        KeyPair::generate().map(Keys).map_err(|e| fail("generating a key", e))
    }

    /// The key pair of a 32-byte secret.
    #[wasm_bindgen(js_name = fromSecret)]
    pub fn from_secret(secret: &[u8]) -> Result<Keys, JsError> {
        KeyPair::from_slice(secret).map(Keys).map_err(|e| fail("the secret key", e))
    }

    /// The 64-byte uncompressed public key (x ‖ y), as the protocol sends it.
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.0.public_key().as_bytes().to_vec()
    }

    /// The Ethereum address of the key, checksummed.
    pub fn address(&self) -> String {
        self.0.address().to_string()
    }

    /// `r ‖ s ‖ v` (65 bytes) over a 32-byte digest.
    #[wasm_bindgen(js_name = signDigest)]
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, JsError> {
        Ok(self.0.sign_digest(&bytes32("the digest", digest)?).as_bytes().to_vec())
    }

    /// The key shared with `peer` (a worker's 64-byte IO key): ECDH, then the protocol's KDF.
    #[wasm_bindgen(js_name = sharedKey)]
    pub fn shared_key(&self, peer: &[u8]) -> Result<SharedKey, JsError> {
        let peer = PublicKey::from_bytes(peer).map_err(|e| fail("the peer's public key", e))?;
        Ok(SharedKey(self.0.derive_key(&peer)))
    }
}

/// A symmetric key shared with a worker's enclave: the AES-256-GCM envelope of a task's fields,
/// each bound to its contract, task, value and field name.
#[wasm_bindgen]
pub struct SharedKey(SymmetricKey);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

#[wasm_bindgen]
impl SharedKey {
    /// Encrypts `plaintext` as `field` ("callable", "arguments", "output", "caller") of `task`
    /// of `contract`, sent with `value` grains (for a deployment the contract is the task id; for
    /// a query the task is `queryTaskId(queryId)` and the value 0).
    #[wasm_bindgen(js_name = encryptField)]
    pub fn encrypt_field(
        &self,
        plaintext: &[u8],
        contract: &str,
        task: &str,
        value: &str,
        field_name: &str,
    ) -> Result<Vec<u8>, JsError> {
        let ad = field_ad(contract, task, value, field_name)?;
        self.0.encrypt_with_ad(plaintext, &ad).map_err(|e| fail("encrypting", e))
    }

    /// Opens what [`encrypt_field`](Self::encrypt_field) sealed (a worker's output, say); throws
    /// if the ciphertext was altered or belongs to another field, task, contract or value.
    #[wasm_bindgen(js_name = decryptField)]
    pub fn decrypt_field(
        &self,
        ciphertext: &[u8],
        contract: &str,
        task: &str,
        value: &str,
        field_name: &str,
    ) -> Result<Vec<u8>, JsError> {
        let ad = field_ad(contract, task, value, field_name)?;
        self.0.decrypt_with_ad(ciphertext, &ad).map_err(|_| {
            JsError::new(
                "the ciphertext does not open under this key for this field, task, contract and \
                 value: it was altered, or it is another's",
            )
        })
    }
}

#[wasm_bindgen]
impl SharedKey {
    /// Opens a worker's output (a task's result or a query's answer, field "output") and removes
    /// the padding the enclave adds to hide its length: the contract's ABI-encoded output, or its
    /// error text when the task or query failed.
    #[wasm_bindgen(js_name = openOutput)]
    pub fn open_output(
        &self,
        ciphertext: &[u8],
        contract: &str,
        task: &str,
        value: &str,
    ) -> Result<Vec<u8>, JsError> {
        let padded = self.decrypt_field(ciphertext, contract, task, value, "output")?;
        enigma_types::padding::unpad(&padded).map(<[u8]>::to_vec).map_err(|e| fail("the output", e))
    }
}

fn field_ad(
    contract: &str,
    task: &str,
    value: &str,
    field_name: &str,
) -> Result<[u8; 32], JsError> {
    Ok(task_field_ad(
        &parse::<ContractAddress>("the contract address", contract)?,
        &parse::<TaskId>("the task id", task)?,
        grains(value)?,
        field(field_name)?,
    ))
}

/// Keccak-256.
#[wasm_bindgen]
pub fn keccak256(data: &[u8]) -> Vec<u8> {
    enigma_types::keccak256(data).to_vec()
}

/// The address that signed `digest` (32 bytes) with `signature` (`r ‖ s ‖ v`, 65 bytes).
#[wasm_bindgen(js_name = recoverAddress)]
pub fn recover_address(digest: &[u8], signature: &[u8]) -> Result<String, JsError> {
    let signature = Signature::from_bytes(signature).map_err(|e| fail("the signature", e))?;
    signature
        .recover_address(&bytes32("the digest", digest)?)
        .map(|a| a.to_string())
        .map_err(|e| fail("recovering the signer", e))
}

/// The inputs hash a compute task's record carries: `H(enc(encryptedFn, encryptedArgs,
/// contract, userPubKey))`.
#[wasm_bindgen(js_name = inputsHashCompute)]
pub fn inputs_hash_compute(
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    contract: &str,
    user_public_key: &[u8],
) -> Result<Vec<u8>, JsError> {
    let key = public64(user_public_key)?;
    Ok(enigma_types::inputs_hash_compute(
        encrypted_fn,
        encrypted_args,
        &parse("the contract address", contract)?,
        &key,
    )
    .0
    .to_vec())
}

/// The id a query's fields are encrypted under (as a task id): `queryTaskId(queryId)`.
#[wasm_bindgen(js_name = queryTaskId)]
pub fn query_task_id(query_id: &[u8]) -> Result<String, JsError> {
    Ok(enigma_types::messages::query_task_id(&bytes32("the query id", query_id)?).to_string())
}

/// A query's hash, which its signed answer names: it binds the contract, the query id, both
/// encrypted fields and the key the answer is encrypted to.
#[wasm_bindgen(js_name = queryHash)]
pub fn query_hash(
    contract: &str,
    query_id: &[u8],
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    user_public_key: &[u8],
) -> Result<Vec<u8>, JsError> {
    Ok(enigma_types::messages::query_hash(
        &parse("the contract address", contract)?,
        &bytes32("the query id", query_id)?,
        encrypted_fn,
        encrypted_args,
        &public64(user_public_key)?,
    )
    .to_vec())
}

/// The workers selected for `contract` in an epoch (its 32-byte `seed`, its `workers` and their
/// `stakes` in grains, in the chain's order), the first of which runs its tasks.
#[wasm_bindgen(js_name = selectWorkers)]
pub fn select_workers(
    seed: &[u8],
    contract: &str,
    workers: Vec<String>,
    stakes: Vec<String>,
    group_size: usize,
) -> Result<Vec<String>, JsError> {
    if workers.len() != stakes.len() {
        return Err(JsError::new(&format!(
            "{} workers but {} stakes: give one stake per worker",
            workers.len(),
            stakes.len()
        )));
    }
    let workers = workers
        .iter()
        .map(|w| parse::<SignerAddress>("a worker's address", w))
        .collect::<Result<Vec<_>, _>>()?;
    let stakes = stakes.iter().map(|s| grains(s)).collect::<Result<Vec<_>, _>>()?;
    Ok(enigma_types::selection::select_workers(
        &bytes32("the seed", seed)?,
        &parse("the contract address", contract)?,
        &workers,
        &stakes,
        group_size,
    )
    .iter()
    .map(ToString::to_string)
    .collect())
}

/// A number of seconds, gas or deltas given as a JavaScript number: a whole number in range.
fn whole(what: &str, n: f64) -> Result<u64, JsError> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked above")]
        Ok(n as u64)
    } else {
        Err(JsError::new(&format!("{what} must be a whole number from 0 to 2^53 - 1, not {n}")))
    }
}

/// Judges a worker's attestation evidence as the chain's `Registered` event carries it (`kind`
/// and its ABI encoding) under `policy` (JSON, `enigma_attestation::Policy`) at `at` (Unix
/// seconds): it must verify and vouch for `worker`, and — given `operator` and `principal` —
/// bind that operator and the network's key manager. Returns the verdict as JSON; throws naming
/// the check that failed. Do this before encrypting anything to a worker. This module verifies
/// simulation evidence; hardware (IAS, DCAP) evidence needs the hardware-attestation module
/// (`crates/wasm-attestation`), which enigma-js loads when it meets such a worker.
#[wasm_bindgen(js_name = checkWorker)]
pub fn check_worker(
    kind: u8,
    evidence: &[u8],
    policy: &str,
    worker: &str,
    at: f64,
    operator: Option<String>,
    principal: Option<String>,
) -> Result<String, JsError> {
    enigma_attestation::onchain::judge_registered(
        kind,
        evidence,
        policy,
        worker,
        whole("at", at)?,
        operator.as_deref(),
        principal.as_deref(),
    )
    .map_err(|e| JsError::new(&e))
}

/// The signer of a worker's IO key (`getWorkerEncryptionKey`'s `workerSig` over the 64-byte
/// key): it must be the worker's enclave.
#[wasm_bindgen(js_name = workerKeySigner)]
pub fn worker_key_signer(io_key: &[u8], signature: &[u8]) -> Result<String, JsError> {
    recover_address(&enigma_types::messages::worker_key_digest(&public64(io_key)?), signature)
}

/// The EIP-712 digest a user signs to ask a query as itself: `EnigmaQuery(contract, query)` in
/// the network's domain (its key manager `principal`).
#[wasm_bindgen(js_name = queryDigest)]
pub fn query_digest(
    principal: &str,
    contract: &str,
    query_hash: &[u8],
) -> Result<Vec<u8>, JsError> {
    Ok(enigma_types::caller::query_digest(
        &parse("the key manager's address", principal)?,
        &parse("the contract address", contract)?,
        &bytes32("the query hash", query_hash)?,
    )
    .to_vec())
}

/// A query's caller field before encryption (padded to one size): the user's signature over
/// [`query_digest`], or — with no signature — anonymous.
#[wasm_bindgen(js_name = queryCallerField)]
pub fn query_caller_field(signature: Option<Vec<u8>>) -> Vec<u8> {
    use enigma_types::caller::QueryCaller;
    match signature {
        Some(s) => QueryCaller::Signature(s).encode(),
        None => QueryCaller::Nobody.encode(),
    }
}

fn permit_contracts(contracts: &[String]) -> Result<Vec<ContractAddress>, JsError> {
    use enigma_types::caller::MAX_PERMIT_CONTRACTS;
    if contracts.is_empty() || contracts.len() > MAX_PERMIT_CONTRACTS {
        return Err(JsError::new(&format!(
            "a permit names 1 to {MAX_PERMIT_CONTRACTS} contracts, not {}",
            contracts.len()
        )));
    }
    contracts.iter().map(|c| parse("a permit's contract", c)).collect()
}

fn permit_name(name: &str) -> Result<(), JsError> {
    use enigma_types::caller::MAX_PERMIT_NAME;
    if name.len() > MAX_PERMIT_NAME {
        return Err(JsError::new(&format!(
            "a permit's name is at most {MAX_PERMIT_NAME} bytes, not {}",
            name.len()
        )));
    }
    Ok(())
}

/// The EIP-712 digest a user signs to issue a query permit (`EnigmaPermit(name, contracts,
/// expiry)` in the network's domain): whoever holds the permit may ask these contracts as the
/// user until `expiry` (Unix seconds).
#[wasm_bindgen(js_name = permitDigest)]
pub fn permit_digest(
    principal: &str,
    name: &str,
    contracts: Vec<String>,
    expiry: f64,
) -> Result<Vec<u8>, JsError> {
    permit_name(name)?;
    Ok(enigma_types::caller::permit_digest(
        &parse("the key manager's address", principal)?,
        name,
        &permit_contracts(&contracts)?,
        whole("the expiry", expiry)?,
    )
    .to_vec())
}

/// A query's caller field before encryption for a query asked with a permit (its name,
/// contracts, expiry and the user's signature over [`permit_digest`]).
#[wasm_bindgen(js_name = queryPermitField)]
pub fn query_permit_field(
    name: &str,
    contracts: Vec<String>,
    expiry: f64,
    signature: &[u8],
) -> Result<Vec<u8>, JsError> {
    permit_name(name)?;
    Ok(enigma_types::caller::QueryCaller::Permit(enigma_types::caller::Permit {
        name: name.to_string(),
        contracts: permit_contracts(&contracts)?,
        expiry: whole("the expiry", expiry)?,
        signature: signature.to_vec(),
    })
    .encode())
}

/// `H(ciphertext)`: the output hash a result or an answer signs.
#[wasm_bindgen(js_name = outputHash)]
pub fn output_hash(ciphertext: &[u8]) -> Vec<u8> {
    enigma_types::output_hash(ciphertext).0.to_vec()
}

/// The enclave that signed a query's answer over these fields and the caller it told the
/// contract (the zero address: anonymous). The client compares it with the worker it asked.
#[wasm_bindgen(js_name = queryAnswerSigner)]
#[allow(clippy::too_many_arguments, reason = "the answer's signed fields, one by one")]
pub fn query_answer_signer(
    contract: &str,
    code_hash: &str,
    delta_count: f64,
    delta_hash: &str,
    query_hash: &[u8],
    output_hash: &[u8],
    success: bool,
    gas_used: f64,
    caller: &str,
    signature: &[u8],
) -> Result<String, JsError> {
    let digest =
        enigma_types::messages::query_answer_digest(&enigma_types::messages::QueryAnswerFields {
            contract: &parse("the contract address", contract)?,
            code_hash: &parse("the code hash", code_hash)?,
            delta_count: whole("the delta count", delta_count)?,
            delta_hash: &parse("the delta hash", delta_hash)?,
            query_hash: &bytes32("the query hash", query_hash)?,
            output_hash: &enigma_types::OutputHash(bytes32("the output hash", output_hash)?),
            success,
            gas_used: whole("the gas used", gas_used)?,
            caller: parse("the caller", caller)?,
        });
    recover_address(&digest, signature)
}

/// The id of the task `sender` records with task nonce `nonce` (a deployment's contract address
/// is this id too).
#[wasm_bindgen(js_name = taskId)]
pub fn task_id(sender: &str, nonce: f64) -> Result<String, JsError> {
    Ok(enigma_types::task_id(
        &parse("the sender's address", sender)?,
        whole("the task nonce", nonce)?,
    )
    .to_string())
}

/// The code hash of a contract's WebAssembly module (`H(module)`).
#[wasm_bindgen(js_name = codeHash)]
pub fn code_hash(module: &[u8]) -> String {
    enigma_types::code_hash(module).to_string()
}

/// The inputs hash a deployment's record carries: `H(enc(encryptedFn, encryptedArgs,
/// codeHash, userPubKey))`.
#[wasm_bindgen(js_name = inputsHashDeploy)]
pub fn inputs_hash_deploy(
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    code_hash: &str,
    user_public_key: &[u8],
) -> Result<Vec<u8>, JsError> {
    Ok(enigma_types::inputs_hash_deploy(
        encrypted_fn,
        encrypted_args,
        &parse("the code hash", code_hash)?,
        &public64(user_public_key)?,
    )
    .0
    .to_vec())
}

/// The EIP-712 digest a user signs to call a task as itself (the contract's `sender()`): the
/// network's key manager `principal`, the contract, the sender and its task nonce, the inputs
/// hash and the value sent.
#[wasm_bindgen(js_name = callerDigest)]
pub fn caller_digest(
    principal: &str,
    contract: &str,
    sender: &str,
    nonce: f64,
    inputs_hash: &[u8],
    value: &str,
) -> Result<Vec<u8>, JsError> {
    Ok(enigma_types::caller::caller_digest(
        &parse("the key manager's address", principal)?,
        &parse("the contract address", contract)?,
        &parse("the sender's address", sender)?,
        whole("the task nonce", nonce)?,
        &enigma_types::InputsHash(bytes32("the inputs hash", inputs_hash)?),
        grains(value)?,
    )
    .to_vec())
}

fn result_message(view: &str) -> Result<enigma_types::result::ResultMessage, JsError> {
    let view: enigma_types::result::ResultView =
        serde_json::from_str(view).map_err(|e| fail("the result (JSON)", e))?;
    enigma_types::result::ResultMessage::try_from(&view).map_err(|e| fail("the result", e))
}

/// Verifies a task's result as the gateway returns it (`getTaskResult`'s JSON) against the task
/// the client sent — its id, inputs hash, contract, kind, value (grains), caller (the zero
/// address: anonymous), the contract's code hash — and the worker the epoch selected: the same
/// checks as the Rust client's, then the enclave's two signatures. Returns the result's fields
/// as JSON (`success`, `gasUsed`, `prevDeltaCount`, `prevDeltaHash`, `deltaHash`, `outputHash`,
/// `encryptedOutput`, `payouts`); throws saying what did not check out.
#[wasm_bindgen(js_name = verifyResult)]
#[allow(clippy::too_many_arguments, reason = "what the client knows of the task, one by one")]
pub fn verify_result(
    view: &str,
    task_id: &str,
    inputs_hash: &[u8],
    contract: &str,
    is_deploy: bool,
    value: &str,
    caller: &str,
    code_hash: &str,
    worker: &str,
) -> Result<String, JsError> {
    use enigma_crypto::SignedResult as _;
    let message = result_message(view)?;
    let expected = enigma_types::result::Expected {
        task_id: parse("the task id", task_id)?,
        inputs_hash: enigma_types::InputsHash(bytes32("the inputs hash", inputs_hash)?),
        contract: parse("the contract address", contract)?,
        is_deploy,
        value: grains(value)?,
        caller: parse("the caller", caller)?,
        code_hash: parse("the code hash", code_hash)?,
    };
    let payouts = message.check(&expected).map_err(|e| fail("the result", e))?;
    let worker = parse::<SignerAddress>("the worker's address", worker)?;
    // The enclave signed over the task id, the contract and the inputs: a result relabelled for
    // another task or contract does not verify.
    if message.signer() != Some(worker) {
        return Err(JsError::new(&format!(
            "the result: it is not signed by the selected worker {worker} over this task and contract"
        )));
    }
    let payouts: Vec<_> = payouts
        .iter()
        .map(|p| serde_json::json!({"to": p.to.to_string(), "amount": p.amount.to_string()}))
        .collect();
    Ok(serde_json::json!({
        "success": message.success,
        "gasUsed": message.gas_used,
        "prevDeltaCount": message.prev_delta_count,
        "prevDeltaHash": message.prev_delta_hash.to_string(),
        "deltaHash": message.delta_hash.to_string(),
        "outputHash": message.output_hash.to_string(),
        "value": message.value.to_string(),
        "payouts": payouts,
    })
    .to_string())
}

/// Whether a result whose task is not yet final on chain can still land, given the contract's
/// delta count and last delta hash on chain: throws if the chain has moved past the state it was
/// computed on (it can never be committed).
#[wasm_bindgen(js_name = resultStanding)]
pub fn result_standing(view: &str, chain_delta_count: f64, chain_tip: &str) -> Result<(), JsError> {
    result_message(view)?
        .standing(
            whole("the chain's delta count", chain_delta_count)?,
            &parse("the chain's last delta hash", chain_tip)?,
        )
        .map_err(|e| fail("the result", e))
}
