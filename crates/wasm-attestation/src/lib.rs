//! enigma-js's hardware-attestation module: judges a worker's Intel IAS report or DCAP quote
//! (X.509 chains to Intel's roots, RSA and ECDSA signatures, TCB collateral) — the same
//! `enigma-attestation` code the Rust client runs. It is a module of its own so that the core
//! (`crates/wasm`), which every page loads, stays small: a client loads this one only when a
//! worker it is about to trust registered hardware evidence.

use wasm_bindgen::prelude::*;

/// Judges a worker's attestation evidence as the chain's `Registered` event carries it (`kind`
/// and its ABI encoding) under `policy` (JSON, `enigma_attestation::Policy`) at `at` (Unix
/// seconds, a whole number): it must verify and vouch for `worker`, and — given `operator` and
/// `principal` — bind that operator and the network's key manager. Returns the verdict as JSON;
/// throws naming the check that failed.
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
    if !(at.is_finite() && at >= 0.0 && at.fract() == 0.0 && at <= 9_007_199_254_740_991.0) {
        return Err(JsError::new(&format!("at must be a whole number of seconds, not {at}")));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked above")]
    let at = at as u64;
    enigma_attestation::onchain::judge_registered(
        kind,
        evidence,
        policy,
        worker,
        at,
        operator.as_deref(),
        principal.as_deref(),
    )
    .map_err(|e| JsError::new(&e))
}
