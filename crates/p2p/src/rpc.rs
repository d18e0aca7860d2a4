//! The JSON-RPC parameters a gateway and a key manager take from anyone, parsed into the typed
//! requests they forward: one place for the rules, fuzzed as bytes (`fuzz/`, target `rpc_params`).
//!
//! Parameters come by name (`{"taskId": …}`, as Discovery's clients send them) or as a
//! one-element array holding that object. Every failure is an [`InvalidParams`] naming the field
//! and what was wrong, answered with JSON-RPC's `-32602`.

use base64::Engine as _;
use enigma_crypto::Signature;
use enigma_types::{ContractAddress, SignerAddress, TaskId, caller::CallerProof, enc::Decoder};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::messages::{QueryMessage, TaskRequest};

/// The largest state-key request a key manager reads (a worker's requests are a few hundred
/// bytes).
pub const MAX_STATE_KEY_REQUEST: usize = 64 * 1024;

/// Parameters that do not parse: what was wrong, for the caller (JSON-RPC `-32602`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidParams(pub String);

type Parsed<T> = Result<T, InvalidParams>;

/// Parameters given by name, or as a one-element array holding them, read from their JSON
/// text straight into `T`: nothing is built beforehand, so a large body costs no more than its
/// bytes, and a field given twice is refused.
///
/// # Errors
///
/// The parse error of the parameters as given.
pub fn one<T: DeserializeOwned>(params: &str) -> Parsed<T> {
    match serde_json::from_str::<T>(params) {
        Ok(v) => Ok(v),
        Err(by_name) => serde_json::from_str::<(T,)>(params).map(|(v,)| v).map_err(|_| by_name),
    }
    .map_err(|e| InvalidParams(format!("invalid parameters: {e}")))
}

fn unhex(text: &str, what: &str) -> Parsed<Vec<u8>> {
    hex::decode(text.trim_start_matches("0x"))
        .map_err(|e| InvalidParams(format!("`{what}` is not hex: {e}")))
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Parsed<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| InvalidParams(format!("`{what}`: {e}")))
}

/// `getWorkerEncryptionKey` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyParams {
    worker_address: String,
    /// Discovery's clients send it; the key is the worker's whatever it is.
    #[serde(rename = "userPubKey")]
    _user_pub_key: Option<String>,
}

/// `deploySecretContract` parameters (Discovery's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployParams {
    worker_address: String,
    pre_code: String,
    encrypted_args: String,
    encrypted_fn: String,
    #[serde(rename = "userDHKey")]
    user_dh_key: String,
    contract_address: String,
    #[serde(flatten)]
    caller: CallerParams,
}

/// `sendTaskInput` parameters (Discovery's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskParams {
    task_id: String,
    worker_address: String,
    encrypted_fn: String,
    encrypted_args: String,
    contract_address: String,
    #[serde(rename = "userDHKey")]
    user_dh_key: String,
    #[serde(flatten)]
    caller: CallerParams,
}

/// `queryContract` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryParams {
    contract_address: String,
    worker_address: String,
    query_id: String,
    epoch_block: u64,
    encrypted_fn: String,
    encrypted_args: String,
    #[serde(default)]
    encrypted_caller: Option<String>,
    #[serde(rename = "userDHKey")]
    user_dh_key: String,
    /// `"confirmed"` (the default: the chain's delta tip) or `"latest"`.
    #[serde(default)]
    freshness: Option<String>,
}

/// The optional proof that the task's sender calls (an extension to Discovery's parameters):
/// `sender`, `callerNonce` and `callerSignature` (65 bytes, hex), all or none.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallerParams {
    sender: Option<String>,
    caller_nonce: Option<u64>,
    caller_signature: Option<String>,
}

impl CallerParams {
    fn proof(&self) -> Parsed<Option<CallerProof>> {
        match (&self.sender, self.caller_nonce, &self.caller_signature) {
            (None, None, None) => Ok(None),
            (Some(sender), Some(nonce), Some(signature)) => Ok(Some(CallerProof {
                sender: parse(sender, "sender")?,
                nonce,
                signature: unhex(signature, "callerSignature")?,
            })),
            _ => Err(InvalidParams(
                "a caller proof needs all of `sender`, `callerNonce` and `callerSignature`".into(),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskIdParams {
    task_id: String,
}

/// `getWorkerEncryptionKey`: the worker asked about.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn worker_key(params: &str) -> Parsed<SignerAddress> {
    let p: KeyParams = one(params)?;
    parse(&p.worker_address, "workerAddress")
}

/// `deploySecretContract`: the worker and the deployment to hand it.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn deploy(params: &str) -> Parsed<(SignerAddress, TaskRequest)> {
    let p: DeployParams = one(params)?;
    let signer = parse(&p.worker_address, "workerAddress")?;
    let contract: ContractAddress = parse(&p.contract_address, "contractAddress")?;
    let code = base64::engine::general_purpose::STANDARD
        .decode(&p.pre_code)
        .map_err(|e| InvalidParams(format!("`preCode` is not base64: {e}")))?;
    let request = TaskRequest::Deploy {
        task_id: TaskId(contract.0),
        code,
        encrypted_fn: unhex(&p.encrypted_fn, "encryptedFn")?,
        encrypted_args: unhex(&p.encrypted_args, "encryptedArgs")?,
        user_public_key: unhex(&p.user_dh_key, "userDHKey")?,
        caller: p.caller.proof()?,
    };
    Ok((signer, request))
}

/// `sendTaskInput`: the worker and the compute task to hand it.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn task(params: &str) -> Parsed<(SignerAddress, TaskRequest)> {
    let p: TaskParams = one(params)?;
    let signer = parse(&p.worker_address, "workerAddress")?;
    let request = TaskRequest::Compute {
        task_id: parse(&p.task_id, "taskId")?,
        contract: parse(&p.contract_address, "contractAddress")?,
        encrypted_fn: unhex(&p.encrypted_fn, "encryptedFn")?,
        encrypted_args: unhex(&p.encrypted_args, "encryptedArgs")?,
        user_public_key: unhex(&p.user_dh_key, "userDHKey")?,
        caller: p.caller.proof()?,
    };
    Ok((signer, request))
}

/// `queryContract`: the worker and the query to hand it.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn query(params: &str) -> Parsed<(SignerAddress, QueryMessage)> {
    let p: QueryParams = one(params)?;
    let signer = parse(&p.worker_address, "workerAddress")?;
    let query_id: [u8; 32] = unhex(&p.query_id, "queryId")?
        .try_into()
        .map_err(|_| InvalidParams("`queryId` must be 32 bytes".into()))?;
    let confirmed = match p.freshness.as_deref() {
        None | Some("confirmed") => true,
        Some("latest") => false,
        Some(other) => {
            return Err(InvalidParams(format!(
                "`freshness` is \"confirmed\" or \"latest\", not {other:?}"
            )));
        }
    };
    let query = QueryMessage {
        query_id,
        contract: parse(&p.contract_address, "contractAddress")?,
        epoch_block: p.epoch_block,
        encrypted_fn: unhex(&p.encrypted_fn, "encryptedFn")?,
        encrypted_args: unhex(&p.encrypted_args, "encryptedArgs")?,
        encrypted_caller: match &p.encrypted_caller {
            Some(c) => unhex(c, "encryptedCaller")?,
            None => Vec::new(),
        },
        user_public_key: unhex(&p.user_dh_key, "userDHKey")?,
        confirmed,
    };
    Ok((signer, query))
}

/// `getTaskStatus`, `getTaskResult`, `subscribeTaskResult`: the task.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn task_id(params: &str) -> Parsed<TaskId> {
    let p: TaskIdParams = one(params)?;
    parse(&p.task_id, "taskId")
}

/// The key manager's `getStateKeys` parameters and result: hex with `0x`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateKeysMessage {
    /// The request or response bytes.
    #[serde(alias = "response")]
    pub request: String,
    /// The signature.
    pub signature: String,
    /// With a request: the requesting enclave's attestation evidence (JSON). Without it the KM
    /// uses the evidence the chain recorded at the worker's registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// A `getStateKeys` request as the key manager reads it before its enclave does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateKeysCall {
    /// The request bytes (at most [`MAX_STATE_KEY_REQUEST`]), for the KM enclave.
    pub request: Vec<u8>,
    /// The requesting enclave's signature over them.
    pub signature: Signature,
    /// The epoch the keys are asked for (the request's fourth field: its first block).
    pub epoch_block: u64,
    /// The evidence sent with it, if any (JSON, for the attestation verifier).
    pub evidence: Option<serde_json::Value>,
}

/// `getStateKeys`: the request, its signature and the epoch it names.
///
/// # Errors
///
/// What is wrong with the parameters.
pub fn state_keys(params: &str) -> Parsed<StateKeysCall> {
    let m: StateKeysMessage = one(params)?;
    let request = unhex(&m.request, "request")?;
    if request.len() > MAX_STATE_KEY_REQUEST {
        return Err(InvalidParams(format!(
            "the request is larger than {} KiB",
            MAX_STATE_KEY_REQUEST / 1024
        )));
    }
    let signature = Signature::from_bytes(&unhex(&m.signature, "signature")?)
        .map_err(|e| InvalidParams(format!("`signature`: {e}")))?;
    let mut d = Decoder::new(&request);
    let epoch_block = (|| {
        d.bytes()?;
        d.bytes()?;
        d.bytes()?;
        d.u64()
    })()
    .map_err(|e| InvalidParams(format!("malformed state-key request: {e}")))?;
    Ok(StateKeysCall { request, signature, epoch_block, evidence: m.evidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_come_by_name_or_as_a_one_element_array() {
        let id = format!("0x{}", "ab".repeat(32));
        let by_name = serde_json::json!({ "taskId": id });
        let wrapped = serde_json::json!([{ "taskId": id }]);
        assert_eq!(task_id(&by_name.to_string()).unwrap(), task_id(&wrapped.to_string()).unwrap());
        assert_eq!(task_id(&by_name.to_string()).unwrap(), TaskId([0xab; 32]));
        let e = task_id(&serde_json::json!([{ "taskId": id }, 1]).to_string()).unwrap_err();
        assert!(e.0.contains("invalid parameters"), "{e}");
        let e = task_id(&serde_json::json!({ "taskId": "0x12" }).to_string()).unwrap_err();
        let twice = format!(r#"{{"taskId":"{id}","taskId":"{id}"}}"#);
        assert!(task_id(&twice).unwrap_err().0.contains("duplicate field"), "a field given twice");
        assert!(e.0.starts_with("`taskId`"), "{e}");
    }

    #[test]
    fn a_partial_caller_proof_and_a_bad_freshness_are_refused_by_name() {
        let hex32 = format!("0x{}", "11".repeat(32));
        let worker = format!("0x{}", "22".repeat(20));
        let mut task_params = serde_json::json!({
            "taskId": hex32, "workerAddress": worker, "encryptedFn": "0x00",
            "encryptedArgs": "0x", "contractAddress": hex32, "userDHKey": "0x01",
            "sender": worker,
        });
        let e = task(&task_params.to_string()).unwrap_err();
        assert!(e.0.contains("all of `sender`, `callerNonce` and `callerSignature`"), "{e}");
        task_params.as_object_mut().unwrap().remove("sender");
        let (signer, request) = task(&task_params.to_string()).unwrap();
        assert_eq!(signer, worker.parse().unwrap());
        assert!(matches!(request, TaskRequest::Compute { caller: None, .. }));

        let query_params = serde_json::json!({
            "contractAddress": hex32, "workerAddress": worker, "queryId": hex32,
            "epochBlock": 7, "encryptedFn": "0x", "encryptedArgs": "0x", "userDHKey": "0x",
            "freshness": "stale",
        });
        let e = query(&query_params.to_string()).unwrap_err();
        assert!(e.0.contains("`freshness` is \"confirmed\" or \"latest\""), "{e}");
    }

    #[test]
    fn a_state_key_request_is_bounded_and_names_its_epoch() {
        let signature = format!("0x{}", "00".repeat(65));
        let big = format!("0x{}", "00".repeat(MAX_STATE_KEY_REQUEST + 1));
        let e =
            state_keys(&serde_json::json!({ "request": big, "signature": signature }).to_string())
                .unwrap_err();
        assert!(e.0.contains("larger than 64 KiB"), "{e}");
        let e = state_keys(
            &serde_json::json!({ "request": "0x0102", "signature": signature }).to_string(),
        )
        .unwrap_err();
        assert!(e.0.contains("malformed state-key request"), "{e}");
    }
}
