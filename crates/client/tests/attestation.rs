//! The client's checks of a worker's attestation on real evidence — Discovery's Intel IAS reports
//! and the DCAP SGX and TDX quotes in testdata — taken through the chain's encoding, as a client
//! reads them from a `Registered` event. Each is accepted under a matching policy and rejected,
//! naming the check, under a wrong measurement, with debug disallowed, when stale, or tampered.

use enigma_attestation::{
    DcapEvidence, Evidence, IasEvidence, Policy, WORKER_PRODUCT_ID, parse_ias_timestamp,
};
use enigma_chain::{decode_evidence, encode_evidence};
use enigma_client::{check_binding, check_worker_evidence};
use enigma_types::{Address, SignerAddress};
use serde_json::Value;

fn testdata(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("testdata is in the repository")
}

/// The evidence as the client gets it back from the chain's event.
fn through_chain(evidence: &Evidence) -> Evidence {
    let (kind, bytes) = encode_evidence(evidence).unwrap();
    decode_evidence(kind, &bytes).unwrap()
}

struct Ias {
    evidence: Evidence,
    signer: SignerAddress,
    at: u64,
}

fn ias_worker(n: u8) -> Ias {
    let v: Value =
        serde_json::from_slice(&testdata(&format!("ias/discovery-worker{n}.json"))).unwrap();
    let report = v["report"].as_str().unwrap().to_string();
    let inner: Value = serde_json::from_str(&report).unwrap();
    Ias {
        evidence: through_chain(&Evidence::Ias(IasEvidence {
            report,
            signature: hex::decode(v["signature_hex"].as_str().unwrap()).unwrap(),
            signing_certificate: v["signing_cert_pem"].as_str().unwrap().into(),
        })),
        signer: v["signer_address"].as_str().unwrap().parse().unwrap(),
        at: parse_ias_timestamp(inner["timestamp"].as_str().unwrap()).unwrap(),
    }
}

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

/// Discovery's worker enclave: its MRENCLAVE, a debug build, group out of date.
fn discovery_policy() -> Policy {
    Policy::default()
        .allow_status("GROUP_OUT_OF_DATE")
        .allow_debug(true)
        .with_mr_enclaves(vec![hex32(
            "26a0c230e56c6412b505349d298480acb88fc512f456471372aff7950f742574",
        )])
        .with_product_id(WORKER_PRODUCT_ID)
        .with_max_age(24 * 3600)
}

#[track_caller]
fn rejected(result: Result<impl std::fmt::Debug, String>, naming: &str) {
    match result {
        Err(why) => assert!(why.contains(naming), "expected `{naming}` in: {why}"),
        Ok(v) => panic!("accepted, expected a rejection naming `{naming}`: {v:?}"),
    }
}

#[test]
fn real_ias_reports_pass_a_matching_policy_and_fail_naming_the_check() {
    for n in 0..3 {
        let w = ias_worker(n);
        let verdict = check_worker_evidence(&w.evidence, &discovery_policy(), w.signer, w.at + 60)
            .unwrap_or_else(|e| panic!("worker{n}: {e}"));
        assert_eq!(verdict.signer, w.signer);
        assert!(verdict.debug);
    }
    let w = ias_worker(0);
    let at = w.at + 60;
    rejected(
        check_worker_evidence(
            &w.evidence,
            &discovery_policy().with_mr_enclaves(vec![[1; 32]]),
            w.signer,
            at,
        ),
        "is not in the allow-list",
    );
    rejected(
        check_worker_evidence(&w.evidence, &discovery_policy().allow_debug(false), w.signer, at),
        "debug mode",
    );
    rejected(
        check_worker_evidence(&w.evidence, &discovery_policy(), w.signer, w.at + 2 * 86_400),
        "s old, older than the allowed",
    );
    // Judged today, Intel's IAS signing certificate (valid until 2026-11-20) has expired.
    let today = parse_ias_timestamp("2026-11-26T00:00:00").unwrap();
    rejected(
        check_worker_evidence(
            &w.evidence,
            &Policy { max_age_secs: None, ..discovery_policy() },
            w.signer,
            today,
        ),
        "certificate is valid from",
    );
    let Evidence::Ias(ias) = &w.evidence else { unreachable!() };
    let tampered =
        Evidence::Ias(IasEvidence { report: ias.report.replace("GROUP", "GRAUP"), ..ias.clone() });
    rejected(
        check_worker_evidence(&tampered, &discovery_policy(), w.signer, at),
        "was the report altered",
    );
    rejected(
        check_worker_evidence(&w.evidence, &discovery_policy(), SignerAddress([9; 20]), at),
        "vouches for",
    );
    rejected(
        check_worker_evidence(&w.evidence, &Policy::default().allow_debug(true), w.signer, at),
        "not allowed",
    );
    // Discovery's enclaves bound no operator or key manager into their report data: a client of
    // this network refuses to send them secrets.
    let verdict = check_worker_evidence(&w.evidence, &discovery_policy(), w.signer, at).unwrap();
    rejected(check_binding(&verdict, Address([1; 20]), Address([2; 20])), "does not bind");
}

/// 2025-06-25, inside the DCAP collateral's validity.
const IN_WINDOW: u64 = 1_750_809_600;

fn dcap(name: &str) -> Evidence {
    through_chain(&Evidence::Dcap(DcapEvidence {
        quote: testdata(&format!("dcap/{name}_quote.bin")),
        collateral: serde_json::from_slice(&testdata(&format!(
            "dcap/{name}_quote_collateral.json"
        )))
        .unwrap(),
    }))
}

fn quote_signer(evidence: &Evidence) -> SignerAddress {
    let Evidence::Dcap(d) = evidence else { unreachable!() };
    // The v3 quote's report data starts at byte 368 (48-byte header + 320 into the body); for a
    // v4 TD quote at 568. The signer address is its first 20 bytes.
    let at = if d.quote[0] == 3 { 368 } else { 48 + 520 };
    SignerAddress(d.quote[at..at + 20].try_into().unwrap())
}

#[test]
fn a_real_sgx_dcap_quote_passes_a_matching_policy_and_fails_naming_the_check() {
    let e = dcap("sgx");
    let signer = quote_signer(&e);
    let policy =
        Policy::default().allow_status("ConfigurationAndSWHardeningNeeded").with_mr_enclaves(vec![
            hex32("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"),
        ]);
    let verdict = check_worker_evidence(&e, &policy, signer, IN_WINDOW).unwrap();
    assert!(!verdict.debug);
    rejected(
        check_worker_evidence(
            &e,
            &policy.clone().with_mr_enclaves(vec![[3; 32]]),
            signer,
            IN_WINDOW,
        ),
        "is not in the allow-list",
    );
    // Stale: five years on, its collateral has long expired.
    rejected(
        check_worker_evidence(&e, &policy, signer, IN_WINDOW + 5 * 365 * 86_400),
        "DCAP quote verification failed",
    );
    // A policy with a maximum age needs a dated report; this sample's report data has no time.
    rejected(
        check_worker_evidence(&e, &policy.clone().with_max_age(3600), signer, IN_WINDOW),
        "carries no time",
    );
    let Evidence::Dcap(mut tampered) = e else { unreachable!() };
    tampered.quote[130] ^= 1;
    rejected(
        check_worker_evidence(&Evidence::Dcap(tampered), &policy, signer, IN_WINDOW),
        "DCAP quote verification failed",
    );
    rejected(check_binding(&verdict, Address([1; 20]), Address([2; 20])), "does not bind");
}

#[test]
fn a_real_tdx_quote_is_judged_by_its_whole_measurement() {
    let e = dcap("tdx");
    let signer = quote_signer(&e);
    // H(MRTD ‖ RTMR0..3) of the sample quote, computed independently with `cast keccak` over
    // bytes 184..232 and 376..568 of its TD report (MRTD and the four RTMRs).
    let digest = "a8ae609a0a7e82e306a02f2b04cdeb621d1e27a57dad680150f49b3b2492de0b";
    let probe = Policy::default().with_mr_enclaves(vec![[0; 32]]);
    rejected(check_worker_evidence(&e, &probe, signer, IN_WINDOW), digest);
    let policy = Policy::default().with_mr_enclaves(vec![hex32(digest)]);
    let verdict = check_worker_evidence(&e, &policy, signer, IN_WINDOW).unwrap();
    let td = verdict.td.clone().unwrap();
    assert_eq!(verdict.mr_enclave, td.digest());
    // A TD whose MRTD agrees on its first 32 bytes but not the last 16 is another TD.
    let mut cut = td;
    cut.mr_td[47] ^= 1;
    assert_ne!(cut.digest(), verdict.mr_enclave);
    rejected(
        check_worker_evidence(&e, &policy.clone().with_max_age(60), signer, IN_WINDOW),
        "carries no time",
    );
    rejected(
        check_worker_evidence(&e, &policy, signer, IN_WINDOW + 5 * 365 * 86_400),
        "DCAP quote verification failed",
    );
}
