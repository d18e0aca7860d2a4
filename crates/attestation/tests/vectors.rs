//! Real evidence: Discovery's four Intel IAS reports and a DCAP SGX and TDX quote
//! (testdata/ias, testdata/dcap), plus simulation evidence from a devnet authority.

use enigma_attestation::{
    DcapEvidence, Evidence, IasEvidence, KM_PRODUCT_ID, Policy, Rejection, SimulationAuthority,
    Tee, WORKER_PRODUCT_ID, parse_ias_timestamp, quote_tee, simulation_measurement, verify,
};
use enigma_crypto::KeyPair;
use enigma_types::SignerAddress;
use serde_json::Value;

const DISCOVERY_MR_SIGNER: &str =
    "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e";

fn testdata(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("testdata is in the repository")
}

struct Report {
    role: String,
    signer: SignerAddress,
    evidence: IasEvidence,
    timestamp: u64,
}

fn ias_reports() -> Vec<Report> {
    ["principal", "worker0", "worker1", "worker2"]
        .iter()
        .map(|name| {
            let v: Value =
                serde_json::from_slice(&testdata(&format!("ias/discovery-{name}.json"))).unwrap();
            let report = v["report"].as_str().unwrap().to_string();
            let inner: Value = serde_json::from_str(&report).unwrap();
            Report {
                role: v["role"].as_str().unwrap().to_string(),
                signer: v["signer_address"].as_str().unwrap().parse().unwrap(),
                timestamp: parse_ias_timestamp(inner["timestamp"].as_str().unwrap()).unwrap(),
                evidence: IasEvidence {
                    report,
                    signature: hex::decode(v["signature_hex"].as_str().unwrap()).unwrap(),
                    signing_certificate: v["signing_cert_pem"].as_str().unwrap().to_string(),
                },
            }
        })
        .collect()
}

fn mr_signer() -> [u8; 32] {
    hex::decode(DISCOVERY_MR_SIGNER).unwrap().try_into().unwrap()
}

fn discovery_policy(product: u16) -> Policy {
    Policy::default()
        .allow_status("GROUP_OUT_OF_DATE")
        .allow_debug(true)
        .with_mr_signer(mr_signer())
        .with_product_id(product)
}

fn product_of(role: &str) -> u16 {
    if role == "principal" { KM_PRODUCT_ID } else { WORKER_PRODUCT_ID }
}

#[test]
fn the_four_ias_reports_verify_at_their_own_time() {
    for r in ias_reports() {
        let verdict = verify(
            &Evidence::Ias(r.evidence.clone()),
            &discovery_policy(product_of(&r.role)),
            r.timestamp,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", r.role));
        assert_eq!(verdict.signer, r.signer, "{}", r.role);
        assert_eq!(verdict.tee, Tee::Sgx);
        assert_eq!(verdict.status, "GROUP_OUT_OF_DATE");
        assert_eq!(verdict.isv_prod_id, product_of(&r.role));
        assert!(verdict.debug, "Discovery's enclaves were debug builds");
        assert_eq!(hex::encode(verdict.mr_signer), DISCOVERY_MR_SIGNER);
        assert_eq!(verdict.timestamp, Some(r.timestamp));
    }
}

#[test]
fn a_stricter_policy_rejects_them_naming_the_check() {
    let r = &ias_reports()[1];
    let evidence = Evidence::Ias(r.evidence.clone());
    let at = r.timestamp;
    let strict_status = Policy::default().allow_debug(true);
    assert!(
        matches!(verify(&evidence, &strict_status, at), Err(Rejection::StatusNotAllowed { status, .. }) if status == "GROUP_OUT_OF_DATE")
    );
    let no_debug = discovery_policy(WORKER_PRODUCT_ID).allow_debug(false);
    assert_eq!(verify(&evidence, &no_debug, at), Err(Rejection::DebugNotAllowed));
    assert_eq!(
        verify(&evidence, &discovery_policy(KM_PRODUCT_ID), at),
        Err(Rejection::ProductIdMismatch { expected: KM_PRODUCT_ID, got: WORKER_PRODUCT_ID })
    );
    let other_signer = discovery_policy(WORKER_PRODUCT_ID).with_mr_signer([1; 32]);
    assert!(matches!(
        verify(&evidence, &other_signer, at),
        Err(Rejection::MrSignerMismatch { .. })
    ));
    let allow_list = discovery_policy(WORKER_PRODUCT_ID).with_mr_enclaves(vec![[2; 32]]);
    assert!(matches!(
        verify(&evidence, &allow_list, at),
        Err(Rejection::MrEnclaveNotAllowed { .. })
    ));
    let mut svn = discovery_policy(WORKER_PRODUCT_ID);
    svn.min_isv_svn = 1;
    assert_eq!(verify(&evidence, &svn, at), Err(Rejection::SvnTooLow { min: 1, got: 0 }));
    let fresh = discovery_policy(WORKER_PRODUCT_ID).with_max_age(3600);
    assert_eq!(
        verify(&evidence, &fresh, at + 7200),
        Err(Rejection::TooOld { age_secs: 7200, max_secs: 3600 })
    );
    assert!(matches!(verify(&evidence, &fresh, at - 3600), Err(Rejection::FromTheFuture { .. })));
}

#[test]
fn any_changed_byte_of_the_report_or_signature_fails() {
    let r = &ias_reports()[0];
    let policy = discovery_policy(KM_PRODUCT_ID);
    let len = r.evidence.report.len();
    for i in (0..len).step_by(len / 40) {
        let mut bytes = r.evidence.report.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let Ok(report) = String::from_utf8(bytes) else { continue };
        let tampered = IasEvidence { report, ..r.evidence.clone() };
        assert_eq!(
            verify(&Evidence::Ias(tampered), &policy, r.timestamp),
            Err(Rejection::ReportSignature),
            "byte {i}"
        );
    }
    let mut signature = r.evidence.signature.clone();
    signature[10] ^= 1;
    let tampered = IasEvidence { signature, ..r.evidence.clone() };
    assert_eq!(
        verify(&Evidence::Ias(tampered), &policy, r.timestamp),
        Err(Rejection::ReportSignature)
    );
}

#[test]
fn a_certificate_not_signed_by_intel_or_out_of_date_is_rejected() {
    let r = &ias_reports()[2];
    let policy = discovery_policy(WORKER_PRODUCT_ID);
    // The signing certificate expired on 2026-11-20.
    let after_expiry = parse_ias_timestamp("2026-11-21T00:00:00").unwrap();
    assert!(matches!(
        verify(&Evidence::Ias(r.evidence.clone()), &policy, after_expiry),
        Err(Rejection::CertificateExpired { which: "IAS signing", .. })
    ));
    // Alter one character of the certificate's signature (near the end of the PEM body).
    let pem = &r.evidence.signing_certificate;
    let end = pem.find("-----END").unwrap();
    let mut bytes = pem.clone().into_bytes();
    let i = end - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = IasEvidence {
        signing_certificate: String::from_utf8(bytes).unwrap(),
        ..r.evidence.clone()
    };
    assert!(matches!(
        verify(&Evidence::Ias(tampered), &policy, r.timestamp),
        Err(Rejection::CertificateNotFromIntel(_) | Rejection::CertificateParse(_))
    ));
    let garbage =
        IasEvidence { signing_certificate: "not a certificate".into(), ..r.evidence.clone() };
    assert!(matches!(
        verify(&Evidence::Ias(garbage), &policy, r.timestamp),
        Err(Rejection::CertificateParse(_))
    ));
}

fn dcap(name: &str) -> DcapEvidence {
    DcapEvidence {
        quote: testdata(&format!("dcap/{name}_quote.bin")),
        collateral: serde_json::from_slice(&testdata(&format!(
            "dcap/{name}_quote_collateral.json"
        )))
        .unwrap(),
    }
}

/// 2025-06-25, inside the collateral's validity (issued 2025-06-19, next update 2025-07-19).
const IN_WINDOW: u64 = 1_750_809_600;
const FIVE_YEARS: u64 = 5 * 365 * 86_400;

#[test]
fn the_sgx_dcap_quote_verifies_inside_its_collateral_window() {
    let evidence = Evidence::Dcap(dcap("sgx"));
    let policy =
        Policy::default().allow_status("ConfigurationAndSWHardeningNeeded").allow_debug(true);
    let verdict = verify(&evidence, &policy, IN_WINDOW).unwrap();
    assert_eq!(verdict.tee, Tee::Sgx);
    assert_eq!(verdict.status, "ConfigurationAndSWHardeningNeeded");
    assert!(
        hex::encode(verdict.mr_enclave).starts_with("33d8736d"),
        "{}",
        hex::encode(verdict.mr_enclave)
    );
    assert!(hex::encode(verdict.mr_enclave).ends_with("2fbb"));
    assert!(matches!(verify(&evidence, &policy, IN_WINDOW + FIVE_YEARS), Err(Rejection::Dcap(_))));
    let strict = Policy::default().allow_debug(true);
    assert!(matches!(
        verify(&evidence, &strict, IN_WINDOW),
        Err(Rejection::StatusNotAllowed { .. })
    ));
    let mut tampered = dcap("sgx");
    tampered.quote[120] ^= 1;
    assert!(matches!(
        verify(&Evidence::Dcap(tampered), &policy, IN_WINDOW),
        Err(Rejection::Dcap(_))
    ));
}

#[test]
fn the_tdx_quote_parses_and_is_reported_as_tdx() {
    let evidence = dcap("tdx");
    assert_eq!(quote_tee(&evidence.quote).unwrap(), Tee::Tdx);
    assert_eq!(quote_tee(&dcap("sgx").quote).unwrap(), Tee::Sgx);
    assert!(matches!(quote_tee(&[0u8; 10]), Err(Rejection::QuoteMalformed(_))));
    let policy = Policy::default().allow_debug(true);
    assert_eq!(
        verify(&Evidence::Dcap(evidence), &policy, IN_WINDOW),
        Err(Rejection::UnsupportedTee(Tee::Tdx))
    );
}

#[test]
fn simulation_evidence_from_the_authority_verifies_and_tampering_fails() {
    let authority = SimulationAuthority::new(KeyPair::from_bytes(&[0x5a; 32]).unwrap());
    let signer = SignerAddress([7; 20]);
    let mr = simulation_measurement("worker");
    let evidence = authority.attest(signer, mr, WORKER_PRODUCT_ID, false);
    let policy =
        Policy::default().with_simulation_authority(authority.address()).with_mr_enclaves(vec![mr]);
    let verdict = verify(&Evidence::Simulation(evidence.clone()), &policy, 0).unwrap();
    assert_eq!((verdict.signer, verdict.tee), (signer, Tee::SimulatedSgx));

    assert_eq!(
        verify(&Evidence::Simulation(evidence.clone()), &Policy::default(), 0),
        Err(Rejection::SimulationNotAccepted)
    );
    let mut other_signer = evidence.clone();
    other_signer.signer = SignerAddress([8; 20]);
    assert!(matches!(
        verify(&Evidence::Simulation(other_signer), &policy, 0),
        Err(Rejection::WrongAuthority { .. })
    ));
    let mut debug = evidence.clone();
    debug.debug = true;
    assert!(matches!(
        verify(&Evidence::Simulation(debug), &policy, 0),
        Err(Rejection::WrongAuthority { .. })
    ));
    let km = authority.attest(signer, simulation_measurement("km"), KM_PRODUCT_ID, false);
    assert!(matches!(
        verify(&Evidence::Simulation(km), &policy, 0),
        Err(Rejection::MrEnclaveNotAllowed { .. })
    ));
    let json = serde_json::to_string(&Evidence::Simulation(evidence.clone())).unwrap();
    assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), Evidence::Simulation(evidence));
}
