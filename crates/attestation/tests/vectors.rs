//! Real evidence: Discovery's four Intel IAS reports and a DCAP SGX and TDX quote
//! (testdata/ias, testdata/dcap), plus simulation evidence from a devnet authority.

use enigma_attestation::{
    DcapEvidence, Evidence, IasEvidence, KM_PRODUCT_ID, Policy, Rejection, SimulationAuthority,
    Tee, WORKER_PRODUCT_ID, parse_ias_timestamp, quote_tee, simulation_measurement, verify,
};
use enigma_crypto::KeyPair;
use enigma_types::{Address, SignerAddress, messages::ReportData};
use serde_json::Value;

const DISCOVERY_MR_SIGNER: &str =
    "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e";
const SGX_QUOTE_MR_ENCLAVE: &str =
    "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

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

fn sgx_policy() -> Policy {
    Policy::default()
        .allow_status("ConfigurationAndSWHardeningNeeded")
        .with_mr_enclaves(vec![hex32(SGX_QUOTE_MR_ENCLAVE)])
}

#[test]
fn the_sgx_dcap_quote_verifies_inside_its_collateral_window() {
    let evidence = Evidence::Dcap(dcap("sgx"));
    let verdict = verify(&evidence, &sgx_policy(), IN_WINDOW).unwrap();
    assert_eq!(verdict.tee, Tee::Sgx);
    assert_eq!(verdict.status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(hex::encode(verdict.mr_enclave), SGX_QUOTE_MR_ENCLAVE);
    assert!(!verdict.debug, "the sample enclave is a production build (attributes 0x05)");
    assert_eq!(verdict.timestamp, None, "its report data is not an enigma enclave's");
    assert!(matches!(
        verify(&evidence, &sgx_policy(), IN_WINDOW + FIVE_YEARS),
        Err(Rejection::Dcap(_))
    ));
    let strict = Policy::default().with_mr_enclaves(vec![hex32(SGX_QUOTE_MR_ENCLAVE)]);
    assert!(matches!(
        verify(&evidence, &strict, IN_WINDOW),
        Err(Rejection::StatusNotAllowed { .. })
    ));
    let mut tampered = dcap("sgx");
    tampered.quote[120] ^= 1;
    assert!(matches!(
        verify(&Evidence::Dcap(tampered), &sgx_policy(), IN_WINDOW),
        Err(Rejection::Dcap(_))
    ));
}

#[test]
fn dcap_policies_pin_the_measurement_and_bound_the_age() {
    let evidence = Evidence::Dcap(dcap("sgx"));
    let unpinned = Policy::default().allow_status("ConfigurationAndSWHardeningNeeded");
    assert_eq!(verify(&evidence, &unpinned, IN_WINDOW), Err(Rejection::NoMeasurementPolicy));
    let wrong = unpinned.clone().with_mr_enclaves(vec![[7; 32]]);
    assert_eq!(
        verify(&evidence, &wrong, IN_WINDOW),
        Err(Rejection::MrEnclaveNotAllowed { mr_enclave: SGX_QUOTE_MR_ENCLAVE.into() })
    );
    let signer = unpinned.with_mr_signer([7; 32]);
    assert!(matches!(
        verify(&evidence, &signer, IN_WINDOW),
        Err(Rejection::MrSignerMismatch { .. })
    ));
    // A quote has no time of its own: under a maximum age, only a report that carries one passes.
    assert_eq!(
        verify(&evidence, &sgx_policy().with_max_age(3600), IN_WINDOW),
        Err(Rejection::Undated)
    );
    assert_eq!(
        verify(&evidence, &sgx_policy().with_product_id(WORKER_PRODUCT_ID), IN_WINDOW),
        Err(Rejection::ProductIdMismatch { expected: WORKER_PRODUCT_ID, got: 0 })
    );
}

#[test]
fn the_tdx_quote_verifies_with_its_whole_measurement() {
    let evidence = dcap("tdx");
    assert_eq!(quote_tee(&evidence.quote).unwrap(), Tee::Tdx);
    assert_eq!(quote_tee(&dcap("sgx").quote).unwrap(), Tee::Sgx);
    assert!(matches!(quote_tee(&[0u8; 10]), Err(Rejection::QuoteMalformed(_))));

    // Learn the measurement under an allow-list that names nothing, then pin it.
    let probe = Policy::default().with_mr_enclaves(vec![]);
    let Err(Rejection::MrEnclaveNotAllowed { mr_enclave }) =
        verify(&Evidence::Dcap(evidence.clone()), &probe, IN_WINDOW)
    else {
        panic!("the TDX quote verifies up to the allow-list")
    };
    let policy = Policy::default().with_mr_enclaves(vec![hex32(&mr_enclave)]);
    let verdict = verify(&Evidence::Dcap(evidence.clone()), &policy, IN_WINDOW).unwrap();
    assert_eq!(verdict.tee, Tee::Tdx);
    assert!(!verdict.debug);
    let td = verdict.td.clone().unwrap();
    // The measurement is all 48 bytes of MRTD and of each RTMR: raw bytes of the v4 quote's TD
    // report (a 48-byte header, then TEE_TCB_SVN 16, MRSEAM 48, MRSIGNERSEAM 48, SEAM and TD
    // attributes and XFAM 8 each, MRTD 48, MRCONFIGID, MROWNER, MROWNERCONFIG 48 each, RTMR0-3).
    let body = &evidence.quote[48..];
    let mr_td_at = 16 + 48 + 48 + 24;
    assert_eq!(&td.mr_td[..], &body[mr_td_at..mr_td_at + 48]);
    let rtmr_at = mr_td_at + 48 * 4;
    for (i, r) in td.rtmr.iter().enumerate() {
        assert_eq!(&r.0[..], &body[rtmr_at + 48 * i..rtmr_at + 48 * (i + 1)], "RTMR{i}");
    }
    assert_eq!(verdict.mr_enclave, td.digest());
    assert_eq!(
        hex::encode(verdict.mr_enclave),
        "a8ae609a0a7e82e306a02f2b04cdeb621d1e27a57dad680150f49b3b2492de0b",
        "the known answer (cast keccak of MRTD ‖ RTMR0..3)"
    );
    // The debug bit is bit 0 of the TD attributes; the sample's attributes set only
    // SEPT_VE_DISABLE (bit 28).
    assert!(!enigma_attestation::td_attributes_debug([0, 0, 0, 0x10, 0, 0, 0, 0]));
    assert!(enigma_attestation::td_attributes_debug([1, 0, 0, 0x10, 0, 0, 0, 0]));
    // Changing any of the 240 measured bytes changes the digest, even past MRTD's first 32.
    let mut other = td.clone();
    other.mr_td[40] ^= 1;
    assert_ne!(other.digest(), td.digest());
    let mut other = td.clone();
    other.rtmr[3].0[47] ^= 1;
    assert_ne!(other.digest(), td.digest());
}

#[test]
fn sgx_attributes_other_than_a_64_bit_initialized_enclave_are_rejected() {
    // Changing the flags in real evidence breaks Intel's signature first, so the reader that
    // IAS and DCAP verification share is judged on its own.
    assert_eq!(enigma_attestation::sgx_attributes_debug(0x07), Ok(true));
    assert_eq!(enigma_attestation::sgx_attributes_debug(0x05), Ok(false));
    assert!(matches!(
        enigma_attestation::sgx_attributes_debug(0x06),
        Err(Rejection::BadAttributes(why)) if why.contains("INIT")
    ));
    assert!(matches!(
        enigma_attestation::sgx_attributes_debug(0x03),
        Err(Rejection::BadAttributes(why)) if why.contains("64-bit")
    ));
    assert!(matches!(
        enigma_attestation::sgx_attributes_debug(0x15),
        Err(Rejection::BadAttributes(why)) if why.contains("provisioning")
    ));
}

fn report_data(signer: SignerAddress, at: u64) -> [u8; 64] {
    ReportData::new(signer, &Address([1; 20]), &Address([2; 20]), at).to_bytes()
}

#[test]
fn simulation_evidence_from_the_authority_verifies_and_tampering_fails() {
    let authority = SimulationAuthority::new(KeyPair::from_bytes(&[0x5a; 32]).unwrap());
    let signer = SignerAddress([7; 20]);
    let mr = simulation_measurement("worker", &[0; 32]);
    let evidence = authority.attest(mr, WORKER_PRODUCT_ID, false, report_data(signer, 1000));
    let policy =
        Policy::default().with_simulation_authority(authority.address()).with_mr_enclaves(vec![mr]);
    let verdict = verify(&Evidence::Simulation(evidence.clone()), &policy, 1000).unwrap();
    assert_eq!((verdict.signer, verdict.tee), (signer, Tee::SimulatedSgx));
    assert_eq!(verdict.timestamp, Some(1000));

    assert_eq!(
        verify(&Evidence::Simulation(evidence.clone()), &Policy::default(), 1000),
        Err(Rejection::SimulationNotAccepted)
    );
    let mut other_signer = evidence.clone();
    other_signer.report_data[0] ^= 1;
    assert!(matches!(
        verify(&Evidence::Simulation(other_signer), &policy, 1000),
        Err(Rejection::WrongAuthority { .. })
    ));
    let mut rebound = evidence.clone();
    rebound.report_data[30] ^= 1;
    assert!(matches!(
        verify(&Evidence::Simulation(rebound), &policy, 1000),
        Err(Rejection::WrongAuthority { .. })
    ));
    let mut debug = evidence.clone();
    debug.debug = true;
    assert!(matches!(
        verify(&Evidence::Simulation(debug), &policy, 1000),
        Err(Rejection::WrongAuthority { .. })
    ));
    let km = authority.attest(
        simulation_measurement("km", &[0; 32]),
        KM_PRODUCT_ID,
        false,
        report_data(signer, 1000),
    );
    assert!(matches!(
        verify(&Evidence::Simulation(km), &policy, 1000),
        Err(Rejection::MrEnclaveNotAllowed { .. })
    ));
    // Another build (what the enclave was compiled to trust) is another measurement.
    assert_ne!(simulation_measurement("worker", &[1; 32]), mr);
    // Age: the report's own time.
    let aged = policy.with_max_age(60);
    assert!(verify(&Evidence::Simulation(evidence.clone()), &aged, 1050).is_ok());
    assert_eq!(
        verify(&Evidence::Simulation(evidence.clone()), &aged, 1100),
        Err(Rejection::TooOld { age_secs: 100, max_secs: 60 })
    );
    let json = serde_json::to_string(&Evidence::Simulation(evidence.clone())).unwrap();
    assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), Evidence::Simulation(evidence));
}
