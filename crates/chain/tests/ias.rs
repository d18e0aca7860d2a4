//! Registration with Discovery's real Intel IAS reports (testdata/ias): the on-chain verifier
//! accepts Intel's signature, the report and the quote, and the principal's report registers the
//! key manager; a worker's report registers only the operator its report data binds (Discovery's
//! bind none); any changed byte, another MRENCLAVE or MRSIGNER, or the wrong product id is
//! refused.

use crate::common::{account_key, assert_rejected};
use alloy::node_bindings::AnvilInstance;
use enigma_attestation::{Evidence, IasEvidence, Policy, parse_ias_timestamp, verify};
use enigma_chain::*;
use enigma_types::SignerAddress;
use serde_json::Value;

struct Report {
    role: String,
    signer: SignerAddress,
    evidence: IasEvidence,
    mr_enclave: [u8; 32],
    mr_signer: [u8; 32],
}

fn reports() -> Vec<Report> {
    ["principal", "worker0", "worker1", "worker2"]
        .iter()
        .map(|name| {
            let path =
                format!("{}/../../testdata/ias/discovery-{name}.json", env!("CARGO_MANIFEST_DIR"));
            let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let evidence = IasEvidence {
                report: v["report"].as_str().unwrap().into(),
                signature: hex::decode(v["signature_hex"].as_str().unwrap()).unwrap(),
                signing_certificate: v["signing_cert_pem"].as_str().unwrap().into(),
            };
            let inner: Value = serde_json::from_str(&evidence.report).unwrap();
            let at = parse_ias_timestamp(inner["timestamp"].as_str().unwrap()).unwrap();
            // Discovery's enclaves, pinned by their MRSIGNER.
            let mr_signer: [u8; 32] =
                hex::decode("83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e")
                    .unwrap()
                    .try_into()
                    .unwrap();
            let lenient = Policy::default()
                .allow_status("GROUP_OUT_OF_DATE")
                .allow_debug(true)
                .with_mr_signer(mr_signer);
            let verdict = verify(&Evidence::Ias(evidence.clone()), &lenient, at).unwrap();
            Report {
                role: v["role"].as_str().unwrap().into(),
                signer: v["signer_address"].as_str().unwrap().parse().unwrap(),
                evidence,
                mr_enclave: verdict.mr_enclave,
                mr_signer: verdict.mr_signer,
            }
        })
        .collect()
}

fn policy(reports: &[Report]) -> IasPolicy {
    let (modulus, exponent) = IasPolicy::intel_signing_key().unwrap();
    IasPolicy {
        modulus,
        exponent,
        mr_signer: reports[0].mr_signer,
        min_isv_svn: 0,
        debug_allowed: true,
        allowed_statuses: vec!["OK".into(), "GROUP_OUT_OF_DATE".into()],
        worker_enclaves: reports[1..].iter().map(|r| r.mr_enclave).collect(),
        km_enclaves: vec![reports[0].mr_enclave],
    }
}

async fn chain_with(policy: IasPolicy, principal: SignerAddress) -> (AnvilInstance, Chain) {
    let anvil = spawn_anvil().unwrap();
    let key = account_key(&anvil, 0);
    let provider = provider(anvil.endpoint_url().as_ref(), Some(&key)).await.unwrap();
    let config = DeployConfig {
        epoch_size: 5,
        timeout_blocks: 20,
        principal,
        group_size: 1,
        simulation: None,
        ias: Some(policy),
        task_limits: DEFAULT_TASK_LIMITS,
    };
    let d = deploy(&provider, &config).await.unwrap();
    let chain = Chain::new(provider, d.enigma, d.token, Some(key.address()));
    (anvil, chain)
}

async fn as_account(anvil: &AnvilInstance, chain: &Chain, i: usize) -> Chain {
    Chain::connect(
        anvil.endpoint_url().as_ref(),
        Some(&account_key(anvil, i)),
        chain.enigma_address(),
        chain.token_address(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_real_reports_verify_on_chain_and_register_only_the_operator_they_bind() {
    let reports = reports();
    assert_eq!(reports[0].role, "principal");
    let (anvil, chain) = chain_with(policy(&reports), reports[0].signer).await;
    chain.register_principal(&Evidence::Ias(reports[0].evidence.clone())).await.unwrap();
    assert!(chain.enigma().principalRegistered().call().await.unwrap());
    let verifier = bindings::IasVerifier::new(
        chain.enigma().iasVerifier().call().await.unwrap(),
        chain.provider().clone(),
    );
    for (i, r) in reports[1..].iter().enumerate() {
        // Intel's signature, the JSON and the quote check out on chain...
        let (_, bytes) = encode_evidence(&Evidence::Ias(r.evidence.clone())).unwrap();
        let verdict = verifier
            .verify(convert::eth_signer(r.signer), 1, bytes.into())
            .call()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", r.role));
        assert_eq!(verdict.mrEnclave.0, r.mr_enclave);
        // ...but Discovery's enclaves bound no operator or key manager into their report data,
        // so the evidence registers nobody: a copy of a pending registration is worth nothing.
        assert_eq!(verdict.binding.0, [0; 32], "{}", r.role);
        let account = as_account(&anvil, &chain, i + 1).await;
        assert_rejected(
            account.register(r.signer, &Evidence::Ias(r.evidence.clone())).await,
            "OperatorNotBound",
        );
    }
}

#[tokio::test]
async fn any_changed_byte_another_measurement_or_product_is_refused() {
    let reports = reports();
    let (anvil, chain) = chain_with(policy(&reports), reports[0].signer).await;
    let account = as_account(&anvil, &chain, 1).await;
    let worker = &reports[1];

    for at in [30, worker.evidence.report.len() / 2, worker.evidence.report.len() - 20] {
        let mut bytes = worker.evidence.report.clone().into_bytes();
        bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
        let tampered =
            IasEvidence { report: String::from_utf8(bytes).unwrap(), ..worker.evidence.clone() };
        assert_rejected(
            account.register(worker.signer, &Evidence::Ias(tampered)).await,
            "InvalidReportSignature",
        );
    }
    let mut signature = worker.evidence.clone();
    signature.signature[7] ^= 0x40;
    assert_rejected(
        account.register(worker.signer, &Evidence::Ias(signature)).await,
        "InvalidReportSignature",
    );
    // The evidence vouches for its own signer only.
    assert_rejected(
        account.register(reports[2].signer, &Evidence::Ias(worker.evidence.clone())).await,
        "ReportDataMismatch",
    );
    // The principal's signer cannot be a worker's.
    assert_rejected(
        account.register(reports[0].signer, &Evidence::Ias(reports[0].evidence.clone())).await,
        "SignerIsPrincipal",
    );
    drop(anvil);

    // On a chain with another principal, the KM's report is still product 2, not a worker; and a
    // worker's report cannot attest the principal.
    let mut both = policy(&reports);
    both.worker_enclaves.push(reports[0].mr_enclave);
    both.km_enclaves.push(worker.mr_enclave);
    let (anvil, chain) = chain_with(both, worker.signer).await;
    assert_rejected(
        as_account(&anvil, &chain, 1)
            .await
            .register(reports[0].signer, &Evidence::Ias(reports[0].evidence.clone()))
            .await,
        "WrongProductId",
    );
    assert_rejected(
        chain.register_principal(&Evidence::Ias(worker.evidence.clone())).await,
        "WrongProductId",
    );
    drop(anvil);

    // A verifier whose allow-list lacks this MRENCLAVE.
    let mut other = policy(&reports);
    other.worker_enclaves.retain(|m| *m != worker.mr_enclave);
    let (anvil, chain) = chain_with(other, reports[0].signer).await;
    assert_rejected(
        as_account(&anvil, &chain, 1)
            .await
            .register(worker.signer, &Evidence::Ias(worker.evidence.clone()))
            .await,
        "EnclaveNotAllowed",
    );
    drop(anvil);

    // A verifier requiring another MRSIGNER.
    let mut other = policy(&reports);
    other.mr_signer = [0x42; 32];
    let (anvil, chain) = chain_with(other, reports[0].signer).await;
    assert_rejected(
        as_account(&anvil, &chain, 1)
            .await
            .register(worker.signer, &Evidence::Ias(worker.evidence.clone()))
            .await,
        "WrongEnclaveSigner",
    );
    drop(anvil);

    // A verifier that accepts only the OK status, or no debug enclaves.
    let mut strict = policy(&reports);
    strict.allowed_statuses = vec!["OK".into()];
    let (anvil, chain) = chain_with(strict, reports[0].signer).await;
    assert_rejected(
        as_account(&anvil, &chain, 1)
            .await
            .register(worker.signer, &Evidence::Ias(worker.evidence.clone()))
            .await,
        "QuoteStatusNotAllowed",
    );
    drop(anvil);
    let mut no_debug = policy(&reports);
    no_debug.debug_allowed = false;
    let (anvil, chain) = chain_with(no_debug, reports[0].signer).await;
    assert_rejected(
        as_account(&anvil, &chain, 1)
            .await
            .register(worker.signer, &Evidence::Ias(worker.evidence.clone()))
            .await,
        "DebugEnclaveNotAllowed",
    );
}
