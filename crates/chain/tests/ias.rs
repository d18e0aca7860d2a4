//! Registration with Discovery's real Intel IAS reports (testdata/ias): each registers with the
//! signer beside it — and that signer's key then signs receipts the chain accepts — and any
//! changed byte, another MRENCLAVE or MRSIGNER, or the wrong product id is refused.

mod common;

use alloy::node_bindings::AnvilInstance;
use common::{ENG, account_key, assert_rejected};
use enigma_attestation::{Evidence, IasEvidence, Policy, parse_ias_timestamp, verify};
use enigma_chain::*;
use enigma_crypto::KeyPair;
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, SignerAddress, keccak256,
    messages::{DeployReceipt, EthCallRef, epoch_digest},
};
use serde_json::Value;

struct Report {
    role: String,
    signer: SignerAddress,
    key: KeyPair,
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
                key: KeyPair::from_slice(
                    &hex::decode(
                        v["signer_private_key"].as_str().unwrap().trim_start_matches("0x"),
                    )
                    .unwrap(),
                )
                .unwrap(),
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
    let provider = provider(anvil.endpoint_url().as_ref(), Some(&key)).unwrap();
    let config = DeployConfig {
        epoch_size: 5,
        timeout_blocks: 20,
        principal,
        group_size: 1,
        simulation: None,
        ias: Some(policy),
    };
    let d = deploy(&provider, &config).await.unwrap();
    let chain = Chain::new(provider, d.enigma, d.token, Some(key.address()));
    (anvil, chain)
}

fn as_account(anvil: &AnvilInstance, chain: &Chain, i: usize) -> Chain {
    Chain::connect(
        anvil.endpoint_url().as_ref(),
        Some(&account_key(anvil, i)),
        chain.enigma_address(),
        chain.token_address(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_real_reports_register_and_their_signers_sign_accepted_receipts() {
    let reports = reports();
    assert_eq!(reports[0].role, "principal");
    let (anvil, chain) = chain_with(policy(&reports), reports[0].signer).await;
    chain.register_principal(&Evidence::Ias(reports[0].evidence.clone())).await.unwrap();
    let mut workers = Vec::new();
    for (i, r) in reports[1..].iter().enumerate() {
        let account = as_account(&anvil, &chain, i + 1);
        account
            .register(r.signer, &Evidence::Ias(r.evidence.clone()))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", r.role));
        let info = chain.worker_by_signer(r.signer).await.unwrap().unwrap();
        assert_eq!((info.evidence_kind, info.mr_enclave), (EVIDENCE_IAS, r.mr_enclave));
        // The event carries the report, its signature and Intel's certificate: a client
        // re-verifies it all the way to Intel's root.
        let recorded = chain.worker_evidence(r.signer).await.unwrap().unwrap();
        assert_eq!(recorded.evidence, Evidence::Ias(r.evidence.clone()));
        chain.transfer_token(account.account().unwrap(), 100 * ENG).await.unwrap();
        account.deposit_stake(100 * ENG).await.unwrap();
        account.login().await.unwrap();
        workers.push(account);
    }
    // The principal's test key signs the epoch; a worker's test key signs a deploy receipt.
    let snapshot = chain.block_number().await.unwrap();
    let (signers, stakes) = chain.active_workers(snapshot).await.unwrap();
    let seed = keccak256(b"ias epoch");
    let signature =
        reports[0].key.sign_digest(&epoch_digest(&seed, 0, snapshot, 1, &signers, &stakes));
    chain.set_workers_params(snapshot, seed, &signature).await.unwrap();
    let epoch = chain.current_epoch().await.unwrap().unwrap();
    let user = chain.account().unwrap();
    chain.deposit_balance(10 * ENG).await.unwrap();
    let inputs = InputsHash(keccak256(b"inputs"));
    let (id, _) = chain
        .create_deployment_task_record(
            inputs,
            100_000,
            1,
            epoch.first_block,
            chain.task_nonce(user).await.unwrap(),
        )
        .await
        .unwrap();
    let contract = ContractAddress::from(id);
    let selected = chain.worker_group(epoch.first_block, &contract).await.unwrap()[0];
    let report = reports.iter().find(|r| r.signer == selected).unwrap();
    let code_hash = CodeHash(keccak256(b"code"));
    let init = DeltaHash(keccak256(b"delta"));
    let digest = DeployReceipt {
        inputs_hash: inputs,
        code_hash,
        init_delta_hash: init,
        gas_limit: 100_000,
        gas_used: 5_000,
        eth_call: EthCallRef::default(),
    }
    .digest();
    chain
        .commit_deploy(&DeployReceiptTx {
            task_id: id,
            pre_code_hash: code_hash,
            code_hash,
            init_delta_hash: init,
            gas_used: 5_000,
            eth_payload: vec![],
            eth_address: Address::ZERO,
            signature: report.key.sign_digest(&digest),
        })
        .await
        .unwrap();
    assert!(chain.secret_contract(&contract).await.unwrap().is_some());
}

#[tokio::test]
async fn any_changed_byte_another_measurement_or_product_is_refused() {
    let reports = reports();
    let (anvil, chain) = chain_with(policy(&reports), reports[0].signer).await;
    let account = as_account(&anvil, &chain, 1);
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
            .register(worker.signer, &Evidence::Ias(worker.evidence.clone()))
            .await,
        "DebugEnclaveNotAllowed",
    );
}
