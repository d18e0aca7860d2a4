//! Attestation evidence as the Enigma contract takes it (`register`, `registerPrincipal`) and as
//! its events carry it back (ABI-encoded, by kind): shared by the chain client, which registers
//! and reads it, and the JavaScript client's WebAssembly core, which judges it again.

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::SolValue;
use enigma_crypto::Signature;

use crate::{DcapEvidence, Evidence, IasEvidence, SimulationEvidence};

/// Evidence kinds the contract verifies (`register`'s `evidenceKind`): simulation.
pub const EVIDENCE_SIMULATION: u8 = 0;
/// Intel IAS (EPID) reports.
pub const EVIDENCE_IAS: u8 = 1;
/// DCAP quotes with their collateral. The contract has no verifier for them (it refuses the
/// kind); clients and the key manager verify them off chain.
pub const EVIDENCE_DCAP: u8 = 2;

/// Encodes evidence for the chain:
/// - simulation: `abi.encode(bytes32 mrEnclave, uint16 isvProdId, bool debug, bytes32
///   reportData[0..32], bytes32 reportData[32..64], bytes signature)`;
/// - IAS: `abi.encode(bytes report, bytes signature, bytes signingCertificatePem)` (the chain
///   reads the first two; the certificate lets off-chain verifiers check the chain to Intel's
///   root);
/// - DCAP: `abi.encode(bytes quote, bytes collateralJson)`.
pub fn encode_evidence(evidence: &Evidence) -> Result<(u8, Vec<u8>), String> {
    Ok(match evidence {
        Evidence::Simulation(e) => {
            let (rd0, rd1) = e.report_data.split_at(32);
            (
                EVIDENCE_SIMULATION,
                (
                    B256::from(e.mr_enclave),
                    e.isv_prod_id,
                    e.debug,
                    B256::from_slice(rd0),
                    B256::from_slice(rd1),
                    Bytes::from(e.signature.as_bytes().to_vec()),
                )
                    .abi_encode_params(),
            )
        }
        Evidence::Ias(e) => (
            EVIDENCE_IAS,
            (
                Bytes::from(e.report.clone().into_bytes()),
                Bytes::from(e.signature.clone()),
                Bytes::from(e.signing_certificate.clone().into_bytes()),
            )
                .abi_encode_params(),
        ),
        Evidence::Dcap(e) => {
            let collateral = serde_json::to_vec(&e.collateral)
                .map_err(|err| format!("DCAP collateral: {err}"))?;
            (
                EVIDENCE_DCAP,
                (Bytes::from(e.quote.clone()), Bytes::from(collateral)).abi_encode_params(),
            )
        }
    })
}

/// Decodes evidence of `kind` as the chain's events carry it; the error says what is wrong.
pub fn decode_evidence(kind: u8, bytes: &[u8]) -> Result<Evidence, String> {
    let bad = |e: alloy_sol_types::Error| format!("malformed evidence of kind {kind}: {e}");
    match kind {
        EVIDENCE_SIMULATION => {
            let (mr, prod, debug, rd0, rd1, sig) =
                <(B256, u16, bool, B256, B256, Bytes)>::abi_decode_params(bytes).map_err(bad)?;
            let mut report_data = [0u8; 64];
            report_data[..32].copy_from_slice(rd0.as_slice());
            report_data[32..].copy_from_slice(rd1.as_slice());
            Ok(Evidence::Simulation(SimulationEvidence {
                mr_enclave: mr.0,
                isv_prod_id: prod,
                debug,
                report_data,
                signature: Signature::from_bytes(&sig).map_err(|e| e.to_string())?,
            }))
        }
        EVIDENCE_IAS => {
            let (report, signature, certificate) =
                <(Bytes, Bytes, Bytes)>::abi_decode_params(bytes).map_err(|e| {
                    format!(
                        "{} (IAS evidence must carry the signing certificate as a third field)",
                        bad(e)
                    )
                })?;
            Ok(Evidence::Ias(IasEvidence {
                report: String::from_utf8(report.to_vec())
                    .map_err(|_| "the IAS report is not UTF-8".to_string())?,
                signature: signature.to_vec(),
                signing_certificate: String::from_utf8(certificate.to_vec())
                    .map_err(|_| "the IAS signing certificate is not UTF-8 PEM".to_string())?,
            }))
        }
        EVIDENCE_DCAP => {
            let (quote, collateral) = <(Bytes, Bytes)>::abi_decode_params(bytes).map_err(bad)?;
            Ok(Evidence::Dcap(DcapEvidence {
                quote: quote.to_vec(),
                collateral: serde_json::from_slice(&collateral)
                    .map_err(|e| format!("the DCAP collateral does not parse: {e}"))?,
            }))
        }
        other => Err(format!("unknown evidence kind {other}")),
    }
}

/// Judges a worker's evidence as the chain's `Registered` event carries it (`kind` and its ABI
/// encoding) under `policy` (JSON, [`Policy`](crate::Policy)) at `at` (Unix seconds): it must
/// verify and vouch for `worker`, and — given `operator` and `principal` (both, or neither) —
/// bind that operator and the network's key manager. Addresses are text, as JavaScript passes
/// them. Returns the verdict as JSON; the error names the check that failed. What enigma-js's
/// WebAssembly modules call.
pub fn judge_registered(
    kind: u8,
    evidence: &[u8],
    policy: &str,
    worker: &str,
    at: u64,
    operator: Option<&str>,
    principal: Option<&str>,
) -> Result<String, String> {
    let address = |what: &str, text: &str| -> Result<enigma_types::Address, String> {
        text.parse().map_err(|e| format!("{what}: {e}"))
    };
    let binding = match (operator, principal) {
        (Some(o), Some(p)) => {
            Some((address("the operator's address", o)?, address("the key manager's address", p)?))
        }
        (None, None) => None,
        _ => return Err("give both the operator and the key manager, or neither".into()),
    };
    let worker = crate::SignerAddress::from(address("the worker's address", worker)?);
    let evidence = decode_evidence(kind, evidence).map_err(|e| format!("the evidence: {e}"))?;
    let policy: crate::Policy =
        serde_json::from_str(policy).map_err(|e| format!("the policy (JSON): {e}"))?;
    let verdict = crate::check_worker_evidence(&evidence, &policy, worker, at)
        .map_err(|e| format!("the worker's attestation: {e}"))?;
    if let Some((operator, principal)) = binding {
        crate::check_binding(&verdict, operator, principal)
            .map_err(|e| format!("the worker's attestation: {e}"))?;
    }
    serde_json::to_string(&verdict).map_err(|e| format!("the verdict: {e}"))
}

#[cfg(test)]
mod tests {
    use crate::SimulationAuthority;
    use enigma_crypto::KeyPair;

    use super::*;

    #[test]
    fn evidence_round_trips_through_the_chain_encoding() {
        let sim = Evidence::Simulation(
            SimulationAuthority::new(KeyPair::from_bytes(&[3; 32]).unwrap())
                .attest([1; 32], 1, false, [7; 64]),
        );
        let ias = Evidence::Ias(IasEvidence {
            report: "{\"id\":1}".into(),
            signature: vec![9; 256],
            signing_certificate: "-----BEGIN CERTIFICATE-----".into(),
        });
        for e in [sim, ias] {
            let (kind, bytes) = encode_evidence(&e).unwrap();
            assert_eq!(decode_evidence(kind, &bytes).unwrap(), e);
            assert!(decode_evidence(kind, &bytes[..bytes.len() / 2]).is_err());
        }
        assert!(decode_evidence(9, &[]).unwrap_err().contains("unknown evidence kind 9"));
    }
}
