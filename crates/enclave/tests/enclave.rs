//! The enclaves through the simulation backend: the full round trip from client encryption to
//! a verified, decrypted result, with state keys from the KM; every rejection path; restarts.

use crate::common::*;
use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_enclave::*;
use enigma_types::{Address, ContractAddress, DeltaHash, OutputHash, SignerAddress, delta_hash};

struct Deployed {
    net: Net,
    contract: ContractAddress,
    worker: usize,
    code_hash: enigma_types::CodeHash,
    position: ChainPosition,
    deltas: Vec<EncryptedDelta>,
    nonce: u64,
}

fn deploy_millionaires() -> Deployed {
    let mut net = Net::new(&[100, 300]);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    let w = net.selected(&contract);
    net.provision(w, contract).unwrap();
    let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
    let client = ClientTask::deploy(&key, net.workers[w].signer, id, "construct()", &[]);
    let code = millionaires();
    let result = net.workers[w].enclave.deploy(deploy_task(id, code.clone(), &client)).unwrap();
    assert_eq!(
        result.status,
        TaskStatus::Success,
        "{:?}",
        String::from_utf8(client.open(&result.encrypted_output))
    );
    let digest = receipt_digest(&result, &client, deploy_inputs_hash(&client, &code), true);
    assert_eq!(
        result.signature.recover_address(&digest).unwrap(),
        Address::from(net.workers[w].signer)
    );
    assert_eq!(result.output_hash, OutputHash(result.code_hash.0));
    let delta = result.delta.clone().unwrap();
    let position = ChainPosition { next_index: 1, tip: delta_hash(&delta.bytes) };
    Deployed {
        net,
        contract,
        worker: w,
        code_hash: result.code_hash,
        position,
        deltas: vec![delta],
        nonce: 1,
    }
}

impl Deployed {
    /// Runs a compute task on the selected worker as a client would, verifying the receipt.
    fn call(&mut self, function: &str, args: &[u8]) -> (TaskResult, Vec<u8>) {
        let w = self.worker;
        let key = self.net.workers[w].enclave.io_key(EPOCH).unwrap();
        let id = next_task(self.nonce);
        self.nonce += 1;
        let client =
            ClientTask::new(&key, self.net.workers[w].signer, self.contract, id, function, args);
        let mut task = compute_task(id, self.contract, self.code_hash, self.position, &client);
        let result = match self.net.workers[w].enclave.compute(task.clone()) {
            Err(EnclaveError::CodeNotLoaded { .. }) => {
                task.code = Some(millionaires());
                self.net.workers[w].enclave.compute(task).unwrap()
            }
            other => other.unwrap(),
        };
        let digest =
            receipt_digest(&result, &client, compute_inputs_hash(&client, &self.contract), false);
        assert_eq!(
            result.signature.recover_address(&digest).unwrap(),
            Address::from(self.net.workers[w].signer),
            "receipt signature"
        );
        assert_eq!(result.prev_delta_hash, self.position.tip);
        if let Some(d) = &result.delta {
            self.position = ChainPosition {
                next_index: self.position.next_index + 1,
                tip: delta_hash(&d.bytes),
            };
            self.deltas.push(d.clone());
        }
        let output = client.open(&result.encrypted_output);
        (result, output)
    }
}

fn add(d: &mut Deployed, who: u8, worth: u64) -> TaskResult {
    let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
    let (result, output) = d.call("add_millionaire(address,uint256)", &args);
    assert_eq!(result.status, TaskStatus::Success);
    assert!(output.is_empty());
    result
}

fn richest(d: &mut Deployed) -> AlloyAddress {
    let (result, output) = d.call("compute_richest()", &[]);
    assert_eq!(result.status, TaskStatus::Success, "{}", String::from_utf8_lossy(&output));
    assert!(result.delta.is_none(), "a read-only task changes no state");
    <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0
}

#[test]
fn round_trip_deploy_compute_decrypt_and_verify() {
    let mut d = deploy_millionaires();
    add(&mut d, 1, 1_000_000);
    add(&mut d, 2, 7_000_000);
    add(&mut d, 3, 2_000_000);
    assert_eq!(richest(&mut d), AlloyAddress::repeat_byte(2));
    assert_eq!(d.position.next_index, 4);
}

#[test]
fn no_response_carries_a_plaintext_secret() {
    let mut d = deploy_millionaires();
    let secret_worth = U256::from(0x5ec2e7_u64 * 1_000_003);
    let args = (AlloyAddress::repeat_byte(0x77), secret_worth).abi_encode_params();
    let (result, _) = d.call("add_millionaire(address,uint256)", &args);
    let bytes =
        postcard::to_allocvec(&EnclaveResponse::TaskResult(Box::new(result.clone()))).unwrap();
    let needle = secret_worth.to_be_bytes::<32>();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the argument leaked in plaintext");
    let json_needle = secret_worth.to_string();
    assert!(
        !String::from_utf8_lossy(&bytes).contains(&json_needle),
        "the state value leaked in plaintext"
    );
    let debug = format!("{result:?}");
    assert!(!debug.contains(&json_needle));
}

#[test]
fn a_worker_the_epoch_does_not_select_is_refused_its_key() {
    let mut net = Net::new(&[100, 300]);
    let contract = ContractAddress::from(next_task(0));
    let other = 1 - net.selected(&contract);
    match net.provision(other, contract) {
        Err(EnclaveError::Refused(why)) => {
            assert!(why.contains("is not selected for contract"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // And the unselected worker cannot deploy without the key.
    let key = net.workers[other].enclave.io_key(EPOCH).unwrap();
    let client =
        ClientTask::deploy(&key, net.workers[other].signer, next_task(0), "construct()", &[]);
    assert_eq!(
        net.workers[other].enclave.deploy(deploy_task(next_task(0), millionaires(), &client)),
        Err(EnclaveError::NoStateKey { contract, code_hash: millionaires_hash() })
    );
}

#[test]
fn the_km_refuses_epochs_it_did_not_draw() {
    let net = Net::new(&[100, 300]);
    let contract = ContractAddress::from(next_task(0));
    let w = net.selected(&contract);
    let id = ContractKeyId { contract, code_hash: millionaires_hash() };
    let request = net.workers[w].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let input = net.key_input(w, request);
    // The KM's host lies about any field of the epoch to get a different selection.
    let lies: [fn(&mut EpochParams); 5] = [
        |e| e.stakes = vec![1, 1],
        |e| e.group_size = 2,
        |e| e.snapshot_block = 7,
        |e| e.seed[0] ^= 1,
        |e| e.nonce = 5,
    ];
    for lie in lies {
        let mut forged = input.clone();
        lie(&mut forged.epoch);
        assert!(matches!(
            net.km.enclave.get_state_keys(forged),
            Err(EnclaveError::Refused(why)) if why.contains("did not draw") || why.contains("not those the key manager signed")
        ));
    }
    let mut tampered = input.clone();
    let last = tampered.request.request.len() - 1;
    tampered.request.request[last] ^= 1;
    assert!(matches!(net.km.enclave.get_state_keys(tampered), Err(EnclaveError::Refused(_))));
    assert!(net.km.enclave.get_state_keys(input).is_ok());
}

#[test]
fn a_key_response_under_the_wrong_key_or_altered_is_rejected() {
    let net = Net::new(&[100, 300]);
    let contract = ContractAddress::from(next_task(0));
    let w = net.selected(&contract);
    let id = ContractKeyId { contract, code_hash: millionaires_hash() };
    let request = net.workers[w].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let response = net.km.enclave.get_state_keys(net.key_input(w, request.clone())).unwrap();

    // A second KM (not the principal) is asked the same request: the worker's attestation binds
    // it to its own KM, so the rogue refuses.
    let rogue = km([9; 32]);
    let seed = rogue
        .enclave
        .new_epoch(EpochInput {
            nonce: 0,
            snapshot_block: net.epoch.snapshot_block,
            group_size: 1,
            workers: net.epoch.workers.clone(),
            stakes: net.epoch.stakes.clone(),
        })
        .unwrap();
    let mut rogue_input = net.key_input(w, request);
    rogue_input.epoch.seed = seed.seed;
    assert!(matches!(
        rogue.enclave.get_state_keys(rogue_input),
        Err(EnclaveError::Refused(why)) if why.contains("not bound to this key manager")
    ));
    // The rogue signs the genuine response bytes with its own key: rejected for the signer.
    let resigned = StateKeyResponse {
        response: response.response.clone(),
        signature: enigma_crypto::KeyPair::from_bytes(&[3; 32])
            .unwrap()
            .sign_digest(&enigma_types::messages::bytes_digest(&response.response)),
    };
    assert!(matches!(
        net.workers[w].enclave.accept_state_keys(resigned),
        Err(EnclaveError::KeyResponseRejected(why)) if why.contains("not by the key manager")
    ));
    let mut altered = response.clone();
    let n = altered.response.len();
    altered.response[n - 5] ^= 1;
    assert!(matches!(
        net.workers[w].enclave.accept_state_keys(altered),
        Err(EnclaveError::KeyResponseRejected(_))
    ));
    // The genuine one is accepted once; a replay answers no pending request.
    assert_eq!(net.workers[w].enclave.accept_state_keys(response.clone()).unwrap(), vec![id]);
    assert!(
        matches!(net.workers[w].enclave.accept_state_keys(response), Err(EnclaveError::KeyResponseRejected(why)) if why.contains("no pending"))
    );
}

#[test]
fn changing_any_signed_field_breaks_the_receipt_signature() {
    let d = deploy_millionaires();
    let w = d.worker;
    let key = d.net.workers[w].enclave.io_key(EPOCH).unwrap();
    let args = (AlloyAddress::repeat_byte(4), U256::from(5u64)).abi_encode_params();
    let client = ClientTask::new(
        &key,
        d.net.workers[w].signer,
        d.contract,
        next_task(9),
        "add_millionaire(address,uint256)",
        &args,
    );
    let mut task = compute_task(next_task(9), d.contract, d.code_hash, d.position, &client);
    task.code = Some(millionaires());
    let result = d.net.workers[w].enclave.compute(task).unwrap();
    let signer = Address::from(d.net.workers[w].signer);
    let inputs = compute_inputs_hash(&client, &d.contract);
    assert_eq!(
        result.signature.recover_address(&receipt_digest(&result, &client, inputs, false)).unwrap(),
        signer
    );
    let mut variants = Vec::new();
    let mut r = result.clone();
    r.gas_used += 1;
    variants.push(r);
    let mut r = result.clone();
    r.encrypted_output[0] ^= 1;
    variants.push(r);
    let mut r = result.clone();
    r.delta.as_mut().unwrap().bytes[0] ^= 1;
    variants.push(r);
    let mut r = result.clone();
    r.prev_delta_hash = DeltaHash([1; 32]);
    variants.push(r);
    let mut r = result.clone();
    r.code_hash.0[0] ^= 1;
    variants.push(r);
    let mut r = result.clone();
    r.eth_call = Some(EthCall { address: Address([1; 20]), payload: vec![1] });
    variants.push(r);
    for v in variants {
        assert_ne!(
            v.signature.recover_address(&receipt_digest(&v, &client, inputs, false)).ok(),
            Some(signer)
        );
    }
    let mut other_inputs = inputs;
    other_inputs.0[0] ^= 1;
    assert_ne!(
        result
            .signature
            .recover_address(&receipt_digest(&result, &client, other_inputs, false))
            .ok(),
        Some(signer)
    );
    // Nor does it stand for another task or contract (a relabelled result).
    for (task, contract) in [(next_task(10), d.contract), (next_task(9), ContractAddress([3; 32]))]
    {
        let relabelled = ClientTask {
            task,
            contract,
            ..ClientTask::new(&key, d.net.workers[w].signer, d.contract, next_task(9), "x", &[])
        };
        assert_ne!(
            result
                .signature
                .recover_address(&receipt_digest(&result, &relabelled, inputs, false))
                .ok(),
            Some(signer)
        );
    }
}

#[test]
fn inputs_encrypted_to_another_key_end_in_a_signed_failure() {
    let d = deploy_millionaires();
    let w = d.worker;
    let other_key = d.net.workers[1 - w].enclave.io_key(EPOCH).unwrap();
    let client = ClientTask::new(
        &other_key,
        d.net.workers[1 - w].signer,
        d.contract,
        next_task(9),
        "compute_richest()",
        &[],
    );
    let mut task = compute_task(next_task(9), d.contract, d.code_hash, d.position, &client);
    task.code = Some(millionaires());
    let result = d.net.workers[w].enclave.compute(task).unwrap();
    assert_eq!(result.status, TaskStatus::Failure);
    assert!(result.delta.is_none());
    let digest = receipt_digest(&result, &client, compute_inputs_hash(&client, &d.contract), false);
    assert_eq!(
        result.signature.recover_address(&digest).unwrap(),
        Address::from(d.net.workers[w].signer)
    );
}

#[test]
fn contract_failures_are_signed_with_the_encrypted_error() {
    let mut d = deploy_millionaires();
    let (result, output) = d.call("compute_richest()", &[]);
    assert_eq!(result.status, TaskStatus::Failure);
    assert_eq!(
        String::from_utf8(output).unwrap(),
        "the contract failed: no millionaires yet: call add_millionaire first"
    );
    let (result, output) = d.call("no_such_function()", &[]);
    assert_eq!(result.status, TaskStatus::Failure);
    assert!(String::from_utf8(output).unwrap().contains("no function `no_such_function`"));
}

#[test]
fn another_worker_takes_over_from_the_encrypted_deltas() {
    let mut d = deploy_millionaires();
    add(&mut d, 1, 10);
    add(&mut d, 2, 30);
    // The other worker gets the key (as if a new epoch selected it) and the encrypted deltas.
    let other = 1 - d.worker;
    d.net.draw(1, if other == 0 { vec![100, 0] } else { vec![0, 100] });
    d.net.provision(other, d.contract).unwrap();
    d.worker = other;
    let key = d.net.workers[other].enclave.io_key(EPOCH).unwrap();
    let client = ClientTask::new(
        &key,
        d.net.workers[other].signer,
        d.contract,
        next_task(50),
        "compute_richest()",
        &[],
    );
    let mut task = compute_task(next_task(50), d.contract, d.code_hash, d.position, &client);
    task.code = Some(millionaires());
    assert!(matches!(
        d.net.workers[other].enclave.compute(task.clone()),
        Err(EnclaveError::StateNotLoaded { have: None, .. })
    ));
    // A tampered delta is caught before anything runs.
    let mut bad = d.deltas.clone();
    let last = bad[1].bytes.len() - 1;
    bad[1].bytes[last] ^= 1;
    task.state = Some(EncryptedState { snapshot: None, deltas: bad });
    assert!(matches!(
        d.net.workers[other].enclave.compute(task.clone()),
        Err(EnclaveError::BadState(_))
    ));
    // Deltas out of order too.
    let mut swapped = d.deltas.clone();
    swapped.swap(1, 2);
    task.state = Some(EncryptedState { snapshot: None, deltas: swapped });
    assert!(matches!(
        d.net.workers[other].enclave.compute(task.clone()),
        Err(EnclaveError::BadState(_))
    ));
    task.state = Some(EncryptedState { snapshot: None, deltas: d.deltas.clone() });
    let result = d.net.workers[other].enclave.compute(task).unwrap();
    let output = client.open(&result.encrypted_output);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
}

#[test]
fn a_state_longer_than_one_call_is_loaded_in_parts_each_checked() {
    let mut d = deploy_millionaires();
    for (who, worth) in [(1, 10), (2, 70), (3, 20), (4, 40), (5, 60), (6, 30), (7, 50)] {
        add(&mut d, who, worth);
    }
    assert_eq!(d.deltas.len(), 8);
    let other = 1 - d.worker;
    d.net.draw(1, if other == 0 { vec![100, 0] } else { vec![0, 100] });
    d.net.provision(other, d.contract).unwrap();
    let enclave = &d.net.workers[other].enclave;
    let id = ContractKeyId { contract: d.contract, code_hash: d.code_hash };
    let part = |range: std::ops::Range<usize>| EncryptedState {
        snapshot: None,
        deltas: d.deltas[range].to_vec(),
    };
    // Parts of three deltas: each continues what the enclave holds.
    assert_eq!(enclave.load_state(id, part(0..3)).unwrap().next_index, 3);
    // A part that skips deltas, or is tampered with, is refused and changes nothing.
    assert!(matches!(enclave.load_state(id, part(4..6)), Err(EnclaveError::BadState(_))));
    let mut tampered = part(3..6);
    tampered.deltas[1].bytes[0] ^= 1;
    assert!(matches!(enclave.load_state(id, tampered), Err(EnclaveError::BadState(_))));
    assert_eq!(enclave.load_state(id, part(3..6)).unwrap().next_index, 6);
    // Without the contract's key nothing loads.
    let stranger = ContractKeyId { contract: ContractAddress([0xee; 32]), code_hash: d.code_hash };
    assert!(matches!(
        enclave.load_state(stranger, part(0..1)),
        Err(EnclaveError::NoStateKey { .. })
    ));
    // The task brings the last part and runs on the whole state.
    let key = enclave.io_key(EPOCH).unwrap();
    let client = ClientTask::new(
        &key,
        d.net.workers[other].signer,
        d.contract,
        next_task(60),
        "compute_richest()",
        &[],
    );
    let mut task = compute_task(next_task(60), d.contract, d.code_hash, d.position, &client);
    task.code = Some(millionaires());
    task.state = Some(part(6..8));
    let result = enclave.compute(task).unwrap();
    assert_eq!(result.status, TaskStatus::Success);
    let output = client.open(&result.encrypted_output);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0,
        AlloyAddress::repeat_byte(2),
        "the richest is in the first part"
    );
}

#[test]
fn a_batch_of_its_own_results_is_signed_and_a_foreign_item_is_refused() {
    let mut d = deploy_millionaires();
    let start = d.position.tip;
    let start_count = d.position.next_index;
    let items: Vec<BatchItem> = (0..4u8)
        .map(|i| {
            let r = add(&mut d, i + 1, u64::from(i) * 100);
            BatchItem {
                task_id: r.task_id,
                inputs_hash: r.inputs_hash,
                status: r.status,
                delta_hash: r.delta_hash,
                output_hash: r.output_hash,
                value: r.value,
                payouts: r.payouts.clone(),
                gas_limit: r.gas_limit,
                gas_used: r.gas_used,
                signature: r.signature,
            }
        })
        .collect();
    let w = d.worker;
    let batch = BatchRequest {
        contract: d.contract,
        code_hash: d.code_hash,
        delta_count: start_count,
        prev_delta_hash: start,
        items: items.clone(),
    };
    let signature = d.net.workers[w].enclave.sign_batch(batch).unwrap();
    let entries: Vec<_> = items
        .iter()
        .map(|i| enigma_types::messages::BatchEntry {
            task_id: i.task_id,
            inputs_hash: i.inputs_hash,
            delta_hash: i.delta_hash,
            output_hash: i.output_hash,
            value: i.value,
            payouts_hash: enigma_types::payouts::hash(&i.payouts),
            gas_limit: i.gas_limit,
            gas_used: i.gas_used,
            status: 1,
        })
        .collect();
    let digest = enigma_types::messages::batch_digest(
        &d.contract,
        &d.code_hash,
        start_count,
        &start,
        &entries,
    );
    assert_eq!(signature.recover_address(&digest).unwrap(), Address::from(d.net.workers[w].signer));

    let mut forged = items.clone();
    forged[2].gas_used += 1;
    let batch = BatchRequest {
        contract: d.contract,
        code_hash: d.code_hash,
        delta_count: start_count,
        prev_delta_hash: start,
        items: forged,
    };
    assert!(
        matches!(d.net.workers[w].enclave.sign_batch(batch), Err(EnclaveError::BadBatch(why)) if why.contains("item 2"))
    );
    let mut reordered = items;
    reordered.swap(0, 1);
    let batch = BatchRequest {
        contract: d.contract,
        code_hash: d.code_hash,
        delta_count: start_count,
        prev_delta_hash: start,
        items: reordered,
    };
    assert!(matches!(d.net.workers[w].enclave.sign_batch(batch), Err(EnclaveError::BadBatch(_))));
}

fn reload(secret: [u8; 32], sealed: &[u8], operator: Address) -> Result<Enclave, EnclaveError> {
    let e = worker_enclave(secret);
    WorkerEnclave::init(
        &e,
        WorkerInit {
            sealed_identity: Some(sealed.to_vec()),
            principal_evidence: None,
            operator,
            time: TIME,
        },
    )?;
    Ok(e)
}

#[test]
fn restarts_reload_sealed_keys() {
    let net = Net::new(&[100, 300]);
    let w = &net.workers[0];
    let key_before = reload(w.secret, &w.sealed, w.operator).unwrap().io_key(EPOCH).unwrap();
    // Restart: a new enclave instance on the same node, with the sealed identity.
    let restarted = worker_enclave(w.secret);
    let init = WorkerEnclave::init(
        &restarted,
        WorkerInit {
            sealed_identity: Some(w.sealed.clone()),
            principal_evidence: Some(net.km.evidence.clone()),
            operator: w.operator,
            time: TIME,
        },
    )
    .unwrap();
    assert_eq!(init.report.signer, w.signer);
    assert_eq!(
        restarted.io_key(EPOCH).unwrap(),
        key_before,
        "the epoch's IO key survives a restart"
    );
    // Another node cannot unseal it.
    assert!(matches!(reload([0xee; 32], &w.sealed, w.operator), Err(EnclaveError::Sealing(_))));
    // A worker's blob is not a KM's.
    let km_elsewhere = EnclaveProxy::new(SimulationBackend::km_built(
        build(),
        &NodeSecret::from_bytes(w.secret),
        false,
    ));
    assert!(matches!(
        KmEnclave::init(
            &km_elsewhere,
            KmInit { sealed_state: Some(w.sealed.clone()), operator: operator(0), time: TIME }
        ),
        Err(EnclaveError::Sealing(_))
    ));
}

#[test]
fn a_restarted_km_keeps_its_secret_counter_and_epochs() {
    let mut d = deploy_millionaires();
    add(&mut d, 1, 10);
    // Restart the KM from its sealed state.
    let sealed = d.net.km.sealed.clone();
    let km = EnclaveProxy::new(SimulationBackend::km_built(
        build(),
        &NodeSecret::from_bytes(d.net.km.secret),
        false,
    ));
    let init = KmEnclave::init(
        &km,
        KmInit { sealed_state: Some(sealed), operator: d.net.km.operator, time: TIME },
    )
    .unwrap();
    assert_eq!(init.report.signer, d.net.km.signer);
    d.net.km.enclave = km;
    // It still serves keys for the epoch drawn before the restart, and the key is the same one:
    // a fresh worker enclave with that key decrypts the existing state.
    let w = d.worker;
    let enclave =
        reload(d.net.workers[w].secret, &d.net.workers[w].sealed, d.net.workers[w].operator)
            .unwrap();
    d.net.workers[w].enclave = enclave;
    d.net.provision(w, d.contract).unwrap();
    let key = d.net.workers[w].enclave.io_key(EPOCH).unwrap();
    let client = ClientTask::new(
        &key,
        d.net.workers[w].signer,
        d.contract,
        next_task(70),
        "compute_richest()",
        &[],
    );
    let mut task = compute_task(next_task(70), d.contract, d.code_hash, d.position, &client);
    task.code = Some(millionaires());
    task.state = Some(EncryptedState { snapshot: None, deltas: d.deltas.clone() });
    let result = d.net.workers[w].enclave.compute(task).unwrap();
    assert_eq!(result.status, TaskStatus::Success);
    // One seed and one list per nonce: the same epoch again gets the same seed and signature
    // (a submission that did not land is retried), another list for it is refused, and an
    // epoch before the last one drawn is refused.
    let same = EpochInput {
        nonce: 0,
        snapshot_block: d.net.epoch.snapshot_block,
        group_size: 1,
        workers: d.net.epoch.workers.clone(),
        stakes: d.net.epoch.stakes.clone(),
    };
    assert_eq!(d.net.km.enclave.new_epoch(same.clone()).unwrap().seed, d.net.epoch.seed);
    let other_list = EpochInput { workers: vec![SignerAddress([1; 20])], stakes: vec![1], ..same };
    assert!(matches!(
        d.net.km.enclave.new_epoch(other_list),
        Err(EnclaveError::BadEpoch(why)) if why.contains("already drawn")
    ));
    let first = d.net.epoch.seed;
    let next = d.net.draw(1, d.net.epoch.stakes.clone());
    assert_ne!(next.seed, first, "a new epoch draws a new seed");
    assert!(matches!(
        d.net.km.enclave.new_epoch(EpochInput {
            nonce: 0,
            snapshot_block: 1,
            group_size: 1,
            workers: vec![],
            stakes: vec![]
        }),
        Err(EnclaveError::BadEpoch(_))
    ));
}

#[test]
fn the_boundary_rejects_garbage_oversize_and_wrong_roles() {
    let backend = SimulationBackend::worker([1; 32], false);
    let decode = |bytes: Vec<u8>| postcard::from_bytes::<EnclaveResponse>(&bytes).unwrap();
    assert!(matches!(
        decode(backend.ecall(b"\xff\xff\xff garbage")),
        EnclaveResponse::Error(EnclaveError::BadCall(_))
    ));
    assert!(matches!(decode(backend.ecall(&[])), EnclaveResponse::Error(EnclaveError::BadCall(_))));
    let big = vec![0u8; MAX_CALL_BYTES + 1];
    assert!(matches!(
        decode(backend.ecall(&big)),
        EnclaveResponse::Error(EnclaveError::TooLarge { .. })
    ));
    let proxy = EnclaveProxy::new(backend);
    assert_eq!(proxy.io_key(1), Err(EnclaveError::NotInitialized));
    assert_eq!(
        KmEnclave::init(&proxy, KmInit { sealed_state: None, operator: Address::ZERO, time: TIME }),
        Err(EnclaveError::WrongRole { wanted: Role::KeyManager, actual: Role::Worker })
    );
    let proxy = worker_enclave([1; 32]);
    let km = km([2; 32]);
    WorkerEnclave::init(
        &proxy,
        WorkerInit {
            sealed_identity: None,
            principal_evidence: Some(km.evidence),
            operator: operator(1),
            time: TIME,
        },
    )
    .unwrap();
    assert_eq!(proxy.io_key(1), Err(EnclaveError::NoIoKey { epoch: 1 }));
    let many =
        vec![
            ContractKeyId { contract: ContractAddress::ZERO, code_hash: millionaires_hash() };
            limits::MAX_CONTRACTS_PER_REQUEST + 1
        ];
    assert!(matches!(proxy.request_state_keys(1, many), Err(EnclaveError::TooLarge { .. })));
}

#[test]
fn inputs_encrypted_to_the_previous_epochs_key_still_run() {
    let d = deploy_millionaires();
    let w = d.worker;
    let old_key = d.net.workers[w].enclave.io_key(EPOCH).unwrap();
    // The epoch turns; the client had fetched the key just before.
    d.net.workers[w].enclave.rotate_io_key(EPOCH + 50).unwrap();
    let client = ClientTask::new(
        &old_key,
        d.net.workers[w].signer,
        d.contract,
        next_task(80),
        "compute_richest()",
        &[],
    );
    let mut task = compute_task(next_task(80), d.contract, d.code_hash, d.position, &client);
    task.epoch = EPOCH + 50;
    task.code = Some(millionaires());
    let result = d.net.workers[w].enclave.compute(task).unwrap();
    let output = String::from_utf8(client.open(&result.encrypted_output)).unwrap();
    assert!(
        output.contains("no millionaires yet"),
        "it ran (and failed for the contract's own reason): {output}"
    );
}

#[test]
fn a_task_runs_as_its_verified_caller_and_a_forged_replayed_or_altered_proof_is_refused() {
    use enigma_types::caller::{CallerProof, caller_digest};
    let mut d = deploy_millionaires();
    add(&mut d, 9, 1);
    let w = d.worker;
    let enclave = &d.net.workers[w].enclave;
    let user = enigma_crypto::KeyPair::from_bytes(&[0x77; 32]).unwrap();
    let me = user.address();
    let principal = Address::from(d.net.km.signer);
    let key = enclave.io_key(EPOCH).unwrap();
    // A task of `me` with task nonce `nonce`, and a proof of `signer` for (principal, nonce,
    // value) as given.
    let task = |nonce: u64, function: &str, args: &[u8]| {
        let id = enigma_types::task_id(&me, nonce);
        let client = ClientTask::new(&key, d.net.workers[w].signer, d.contract, id, function, args);
        let mut t = compute_task(id, d.contract, d.code_hash, d.position, &client);
        t.state = Some(EncryptedState { snapshot: None, deltas: d.deltas.clone() });
        t.code = Some(millionaires());
        (t, compute_inputs_hash(&client, &d.contract), client)
    };
    let proof = |signer: &enigma_crypto::KeyPair, p: &Address, nonce: u64, inputs, value| {
        let digest = caller_digest(p, &d.contract, &me, nonce, &inputs, value);
        CallerProof {
            sender: me,
            nonce,
            signature: signer.sign_digest(&digest).as_bytes().to_vec(),
        }
    };
    let refused = |t: ComputeTask, why: &str| match enclave.compute(t) {
        Err(EnclaveError::BadCaller(reason)) => assert!(reason.contains(why), "{why}: {reason}"),
        other => panic!("{why}: expected a refused caller proof, got {other:?}"),
    };

    // Without a proof the contract runs with no caller (and the seal says so).
    let (t, _, client) = task(1, "compute_richest()", &[]);
    let r = enclave.compute(t).unwrap();
    assert_eq!(
        (r.status, r.caller),
        (TaskStatus::Success, Address::ZERO),
        "{}",
        String::from_utf8_lossy(&client.open(&r.encrypted_output))
    );

    let entry = (AlloyAddress::repeat_byte(1), U256::from(5u64)).abi_encode_params();
    let (mut t, inputs, _) = task(2, "add_millionaire(address,uint256)", &entry);
    // Signed by another key than the sender's.
    let stranger = enigma_crypto::KeyPair::from_bytes(&[0x78; 32]).unwrap();
    t.caller = Some(proof(&stranger, &principal, 2, inputs, 0));
    refused(t.clone(), "does not verify");
    // For another network (another key manager).
    t.caller = Some(proof(&user, &Address([9; 20]), 2, inputs, 0));
    refused(t.clone(), "does not verify");
    // Replayed from another task of the same sender (its nonce gives another task id).
    let mut replayed = proof(&user, &principal, 2, inputs, 0);
    replayed.nonce = 1;
    t.caller = Some(replayed);
    refused(t.clone(), "another task");
    // A value other than the one signed (the host's word against the sender's).
    t.caller = Some(proof(&user, &principal, 2, inputs, 0));
    t.value = 5;
    refused(t.clone(), "does not verify");
    // Garbage for a signature.
    t.value = 0;
    t.caller = Some(CallerProof { sender: me, nonce: 2, signature: vec![1; 3] });
    refused(t.clone(), "does not verify");

    // The sender's own proof: the contract runs as `me`, and the seal names it.
    t.caller = Some(proof(&user, &principal, 2, inputs, 0));
    let r = enclave.compute(t).unwrap();
    assert_eq!((r.status, r.caller), (TaskStatus::Success, me));
}

/// A module whose constructor writes `mib` state values of 1 MiB each (keys "0", "1", …).
fn writer(mib: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (import "env" "write_state" (func $write (param i32 i32 i32 i32)))
          (memory (export "memory") 18)
          (func (export "deploy")
            (local $i i32)
            (loop $l
              (i32.store8 (i32.const 0) (i32.add (i32.const 48) (local.get $i)))
              (call $write (i32.const 0) (i32.const 1) (i32.const 65536) (i32.const 1048576))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const {mib})))))
          (func (export "call")))"#
    ))
    .unwrap()
}

#[test]
fn a_task_whose_delta_could_not_be_synced_fails_with_its_gas_charged() {
    let deploy = |mib: u32| {
        let mut net = Net::new(&[100, 300]);
        let id = next_task(0);
        let contract = ContractAddress::from(id);
        let w = net.selected(&contract);
        let code = writer(mib);
        net.provision_code(w, contract, enigma_types::code_hash(&code)).unwrap();
        let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
        let c = ClientTask::deploy(&key, net.workers[w].signer, id, "construct()", &[]);
        let mut task = deploy_task(id, code, &c);
        task.gas_limit = u64::MAX / 2;
        let r = net.workers[w].enclave.deploy(task).unwrap();
        (r, c)
    };
    // 3 MiB of state seals to a delta peers can sync.
    let (fits, _) = deploy(3);
    assert_eq!(fits.status, TaskStatus::Success);
    let delta = fits.delta.expect("a delta");
    assert!(delta.bytes.len() > 3 << 20);
    assert!(delta.bytes.len() <= enigma_types::delta::MAX_ENCRYPTED_DELTA_BYTES);
    // 5 MiB would not: the task fails, says why, charges its gas and leaves no delta.
    let (over, c) = deploy(5);
    assert_eq!(over.status, TaskStatus::Failure);
    assert!(over.delta.is_none() && over.delta_hash == DeltaHash::ZERO);
    assert!(over.gas_used > 0);
    let message = String::from_utf8(c.open(&over.encrypted_output)).unwrap();
    assert!(message.contains("4 MiB") && message.contains("write less state"), "{message}");
}
