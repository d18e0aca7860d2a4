//! The enclaves against their own host. Each test is one attack a hostile worker or key-manager
//! host can make through the real serialized boundary — it controls every call, every argument
//! and every byte it stores — and asserts that the secret does not come out (no state value,
//! argument or key in any response, `Debug` or error) and that honest work still succeeds.
//! docs/threat-model.md lists each attack with the test that shows it fails.

use crate::common::*;
use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_attestation::{Evidence, SimulationAuthority};
use enigma_crypto::KeyPair;
use enigma_enclave::*;
use enigma_types::{
    Address, CodeHash, ContractAddress, SignerAddress, code_hash, delta_hash,
    enc::Encoder,
    messages::{ReportData, bytes_digest},
};

/// A secret net worth no response may carry: its ABI bytes and its decimal text (the contract
/// stores it as JSON).
const SECRET_WORTH: u64 = 0x5ec2_e7ab_cd12;

/// Everything the host saw: responses (as the boundary serialized them), their `Debug`, errors.
#[derive(Default)]
struct Seen(Vec<u8>);

impl Seen {
    fn response<T: std::fmt::Debug>(&mut self, r: &Result<T, EnclaveError>) {
        self.0.extend(format!("{r:?}").into_bytes());
        if let Err(e) = r {
            self.0.extend(e.to_string().into_bytes());
        }
    }

    fn result(&mut self, r: &Result<TaskResult, EnclaveError>) {
        self.response(r);
        if let Ok(t) = r {
            self.0.extend(
                postcard::to_allocvec(&EnclaveResponse::TaskResult(Box::new(t.clone()))).unwrap(),
            );
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    fn assert_no_secret(&self) {
        let abi = U256::from(SECRET_WORTH).to_be_bytes::<32>();
        assert!(!self.0.windows(abi.len()).any(|w| w == abi), "the secret leaked (ABI bytes)");
        let text = SECRET_WORTH.to_string();
        assert!(
            !String::from_utf8_lossy(&self.0).contains(&text),
            "the secret leaked (decimal text)"
        );
    }
}

/// A deployed millionaires contract holding one secret entry, on the selected worker.
struct Victim {
    net: Net,
    contract: ContractAddress,
    worker: usize,
    position: ChainPosition,
    deltas: Vec<EncryptedDelta>,
}

fn victim() -> Victim {
    let mut net = Net::new(&[100, 300]);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    let w = net.selected(&contract);
    net.provision(w, contract).unwrap();
    let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
    let c = ClientTask::deploy(&key, net.workers[w].signer, id, "construct()", &[]);
    let deployed = net.workers[w].enclave.deploy(deploy_task(id, millionaires(), &c)).unwrap();
    assert_eq!(deployed.status, TaskStatus::Success);
    let d0 = deployed.delta.unwrap();
    let mut v = Victim {
        net,
        contract,
        worker: w,
        position: ChainPosition { next_index: 1, tip: delta_hash(&d0.bytes) },
        deltas: vec![d0],
    };
    let args = (AlloyAddress::repeat_byte(0x11), U256::from(SECRET_WORTH)).abi_encode_params();
    let r = v.honest("add_millionaire(address,uint256)", &args, 1);
    assert_eq!(r.status, TaskStatus::Success);
    v
}

impl Victim {
    /// An honest task by a user, as the selected worker runs it; returns the result.
    fn honest(&mut self, function: &str, args: &[u8], n: u64) -> TaskResult {
        let w = self.worker;
        let key = self.net.workers[w].enclave.io_key(EPOCH).unwrap();
        let c = ClientTask::new(
            &key,
            self.net.workers[w].signer,
            self.contract,
            next_task(n),
            function,
            args,
        );
        let mut task =
            compute_task(next_task(n), self.contract, millionaires_hash(), self.position, &c);
        task.code = Some(millionaires());
        let r = self.net.workers[w].enclave.compute(task).unwrap();
        if let Some(d) = &r.delta {
            self.position =
                ChainPosition { next_index: self.position.next_index + 1, tip: r.delta_hash };
            self.deltas.push(d.clone());
        }
        r
    }

    /// The richest, asked honestly: the state is intact and the contract still works.
    fn richest(&mut self, n: u64) -> AlloyAddress {
        let w = self.worker;
        let key = self.net.workers[w].enclave.io_key(EPOCH).unwrap();
        let c = ClientTask::new(
            &key,
            self.net.workers[w].signer,
            self.contract,
            next_task(n),
            "compute_richest()",
            &[],
        );
        let task =
            compute_task(next_task(n), self.contract, millionaires_hash(), self.position, &c);
        let r = self.net.workers[w].enclave.compute(task).unwrap();
        assert_eq!(r.status, TaskStatus::Success);
        <(AlloyAddress,)>::abi_decode_params(&c.open(&r.encrypted_output)).unwrap().0
    }
}

/// A module the host wrote: it reads the victim's first entry and returns it as its output and
/// as the payload of an Ethereum call (which the chain would publish in plaintext).
fn thief() -> Vec<u8> {
    wat::parse_str(
        r#"(module
          (import "env" "read_state_len" (func $len (param i32 i32) (result i32)))
          (import "env" "read_state" (func $read (param i32 i32 i32)))
          (import "env" "ret" (func $ret (param i32 i32)))
          (import "env" "write_eth_bridge" (func $bridge (param i32 i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "millionaire/0")
          (data (i32.const 100) "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10\11\12\13\14")
          (func (export "deploy"))
          (func (export "call")
            (local $n i32)
            (local.set $n (call $len (i32.const 0) (i32.const 13)))
            (call $read (i32.const 0) (i32.const 13) (i32.const 1024))
            (call $ret (i32.const 1024) (local.get $n))
            (call $bridge (i32.const 1024) (local.get $n) (i32.const 100))))"#,
    )
    .unwrap()
}

#[test]
fn code_the_host_sends_for_a_contract_opens_none_of_its_state() {
    let mut v = victim();
    let w = v.worker;
    let evil = thief();
    let evil_hash = code_hash(&evil);
    let mut seen = Seen::default();
    // The host encrypts its own inputs to the worker's key, as any user can.
    let key = v.net.workers[w].enclave.io_key(EPOCH).unwrap();
    let signer = v.net.workers[w].signer;
    let as_user = |n: u64| ClientTask::new(&key, signer, v.contract, next_task(n), "steal()", &[]);
    let host_user = as_user(90);

    // 1. Its module under the contract's own code hash. A warm enclave runs the module it
    // cached under that hash (the genuine one, which knows no `steal`); a cold one (restarted
    // from its sealed identity) hashes the bytes it is given and refuses them.
    let mut lying =
        compute_task(next_task(90), v.contract, millionaires_hash(), v.position, &host_user);
    lying.code = Some(evil.clone());
    let r = v.net.workers[w].enclave.compute(lying.clone());
    seen.result(&r);
    let r = r.unwrap();
    assert_eq!(r.status, TaskStatus::Failure);
    seen.bytes(&host_user.open(&r.encrypted_output));
    let cold = worker_enclave(v.net.workers[w].secret);
    WorkerEnclave::init(
        &cold,
        WorkerInit {
            sealed_identity: Some(v.net.workers[w].sealed.clone()),
            principal_evidence: None,
            operator: v.net.workers[w].operator,
            time: TIME,
        },
    )
    .unwrap();
    let warm = std::mem::replace(&mut v.net.workers[w].enclave, cold);
    v.net.provision(w, v.contract).unwrap();
    lying.state = Some(EncryptedState { snapshot: None, deltas: v.deltas.clone() });
    let r = v.net.workers[w].enclave.compute(lying);
    assert!(matches!(&r, Err(EnclaveError::CodeHashMismatch { .. })), "{r:?}");
    seen.result(&r);
    v.net.workers[w].enclave = warm;

    // 2. Its module under its own hash, with the victim's state: no key for that pair.
    let host_user = as_user(91);
    let mut task = compute_task(next_task(91), v.contract, evil_hash, v.position, &host_user);
    task.code = Some(evil.clone());
    task.state = Some(EncryptedState { snapshot: None, deltas: v.deltas.clone() });
    let r = v.net.workers[w].enclave.compute(task.clone());
    assert!(
        matches!(&r, Err(EnclaveError::NoStateKey { code_hash, .. }) if *code_hash == evil_hash),
        "{r:?}"
    );
    seen.result(&r);

    // 3. The host obtains the KM's key for (victim, its code) — the worker is selected for the
    // victim, so the KM releases it — and tries again: that key decrypts none of the deltas.
    v.net.provision_code(w, v.contract, evil_hash).unwrap();
    let r = v.net.workers[w].enclave.compute(task.clone());
    assert!(
        matches!(&r, Err(EnclaveError::BadState(why)) if why.contains("does not decrypt")),
        "{r:?}"
    );
    seen.result(&r);

    // 4. Without state the enclave will not use its cached copy of the victim for other code.
    task.state = None;
    let r = v.net.workers[w].enclave.compute(task.clone());
    assert!(matches!(&r, Err(EnclaveError::StateNotLoaded { have: None, .. })), "{r:?}");
    seen.result(&r);

    // 5. From an empty state it runs, and finds nothing.
    task.position = ChainPosition::default();
    task.state = Some(EncryptedState::default());
    let r = v.net.workers[w].enclave.compute(task);
    seen.result(&r);
    let r = r.unwrap();
    assert_eq!(r.status, TaskStatus::Success);
    // A key that is not set reads as the JSON `null` (eng-wasm's convention): nothing.
    assert_eq!(host_user.open(&r.encrypted_output), b"null");
    seen.bytes(&host_user.open(&r.encrypted_output));

    // 6. A deploy of its module at the victim's address gets a key of its own, and fresh state.
    let deployer = ClientTask::deploy(&key, signer, next_task(0), "construct()", &[]);
    let r = v.net.workers[w].enclave.deploy(deploy_task(next_task(0), evil, &deployer));
    seen.result(&r);

    seen.assert_no_secret();
    // The victim's state is intact and honest work goes on.
    assert_eq!(v.richest(95), AlloyAddress::repeat_byte(0x11));
}

#[test]
fn a_second_init_is_refused_and_no_foreign_state_key_can_be_injected() {
    let mut v = victim();
    let w = v.worker;
    let mut seen = Seen::default();
    // The host re-initializes the running enclave with another principal: refused.
    let rogue_km = km([0x99; 32]);
    let (sealed, op) = (v.net.workers[w].sealed.clone(), v.net.workers[w].operator);
    let r = WorkerEnclave::init(
        &v.net.workers[w].enclave,
        WorkerInit {
            sealed_identity: None,
            principal_evidence: Some(rogue_km.evidence.clone()),
            operator: op,
            time: TIME,
        },
    );
    assert_eq!(r, Err(EnclaveError::AlreadyInitialized));
    seen.response(&r);
    // Or with its sealed identity and the rogue KM's evidence: refused too.
    let r = WorkerEnclave::init(
        &v.net.workers[w].enclave,
        WorkerInit {
            sealed_identity: Some(sealed.clone()),
            principal_evidence: Some(rogue_km.evidence.clone()),
            operator: op,
            time: TIME,
        },
    );
    assert_eq!(r, Err(EnclaveError::AlreadyInitialized));
    seen.response(&r);
    // A restart (a new instance) loading the sealed identity under the rogue KM: refused, since
    // the identity serves the KM it was created for.
    let restarted = worker_enclave(v.net.workers[w].secret);
    let r = WorkerEnclave::init(
        &restarted,
        WorkerInit {
            sealed_identity: Some(sealed),
            principal_evidence: Some(rogue_km.evidence),
            operator: op,
            time: TIME,
        },
    );
    assert!(
        matches!(&r, Err(EnclaveError::InitRefused(why)) if why.contains("serves the key manager")),
        "{r:?}"
    );
    // Nor under another operator.
    let r = WorkerEnclave::init(
        &restarted,
        WorkerInit {
            sealed_identity: Some(v.net.workers[w].sealed.clone()),
            principal_evidence: None,
            operator: operator(0x42),
            time: TIME,
        },
    );
    assert!(matches!(&r, Err(EnclaveError::InitRefused(why)) if why.contains("operator")), "{r:?}");

    // The host injects a state key it knows, in a response it signs itself (as the rogue KM
    // would): rejected, whatever it answers.
    let id = ContractKeyId { contract: v.contract, code_hash: millionaires_hash() };
    let request = v.net.workers[w].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let mut rogue_input = v.net.key_input(w, request.clone());
    let rogue_seed = {
        let k = km([0x98; 32]);
        let s = k
            .enclave
            .new_epoch(EpochInput {
                nonce: 0,
                snapshot_block: v.net.epoch.snapshot_block,
                group_size: 1,
                workers: v.net.epoch.workers.clone(),
                stakes: v.net.epoch.stakes.clone(),
            })
            .unwrap();
        rogue_input.epoch.seed = s.seed;
        k.enclave.get_state_keys(rogue_input)
    };
    assert!(matches!(rogue_seed, Err(EnclaveError::Refused(_))));
    let forged = forged_response(&request, &KeyPair::from_bytes(&[0x31; 32]).unwrap());
    let r = v.net.workers[w].enclave.accept_state_keys(forged);
    assert!(
        matches!(&r, Err(EnclaveError::KeyResponseRejected(why)) if why.contains("not by the key manager")),
        "{r:?}"
    );
    seen.response(&r);
    seen.assert_no_secret();
    assert_eq!(v.richest(96), AlloyAddress::repeat_byte(0x11));
}

/// A state-key response to `request` signed by `signer`, carrying a key the host chose.
fn forged_response(request: &StateKeyRequest, signer: &KeyPair) -> StateKeyResponse {
    let mut d = enigma_types::enc::Decoder::new(&request.request);
    d.bytes().unwrap();
    let worker_public = enigma_crypto::PublicKey::from_bytes(&d.fixed::<64>().unwrap()).unwrap();
    let id: [u8; 12] = d.fixed().unwrap();
    let epoch = d.u64().unwrap();
    d.fixed::<20>().unwrap();
    let n = d.list_len(10).unwrap();
    let contracts: Vec<[u8; 32]> = (0..n).map(|_| d.fixed::<32>().unwrap()).collect();
    let n = d.list_len(10).unwrap();
    let hashes: Vec<[u8; 32]> = (0..n).map(|_| d.fixed::<32>().unwrap()).collect();
    let eph = KeyPair::generate().unwrap();
    let shared = eph.derive_key(&worker_public);
    let keys: Vec<Vec<u8>> =
        contracts.iter().map(|_| shared.encrypt(&[0x42; 32]).unwrap()).collect();
    let response = Encoder::new()
        .bytes(b"enigma-state-key-response-v2")
        .bytes(&id)
        .bytes(eph.public_key().as_bytes())
        .u64(epoch)
        .list(&contracts, |e, c| e.bytes(c))
        .list(&hashes, |e, h| e.bytes(h))
        .list(&keys, |e, k| e.bytes(k))
        .into_bytes();
    StateKeyResponse { signature: signer.sign_digest(&bytes_digest(&response)), response }
}

fn init_under(evidence: Option<Evidence>) -> Result<Initialized, EnclaveError> {
    let w = worker_enclave([0x55; 32]);
    WorkerEnclave::init(
        &w,
        WorkerInit {
            sealed_identity: None,
            principal_evidence: evidence.as_ref().map(CarriedEvidence::new),
            operator: operator(9),
            time: TIME,
        },
    )
}

#[test]
fn a_genuine_worker_cannot_be_pointed_at_a_fake_key_manager() {
    let genuine = km([1; 32]);
    let fake = KeyPair::from_bytes(&[0x66; 32]).unwrap();
    let fake_signer = SignerAddress::from(fake.address());
    let report = ReportData::new(fake_signer, &operator(0), &fake.address(), TIME).to_bytes();
    let km_measurement = build().measurement(Role::KeyManager);
    let reasons: Vec<(&str, Option<Evidence>)> = vec![
        ("new identity needs", None),
        // The host's own "authority" vouches for its own key.
        (
            "signed by",
            Some(Evidence::Simulation(
                SimulationAuthority::new(KeyPair::from_bytes(&[0x67; 32]).unwrap()).attest(
                    km_measurement,
                    2,
                    false,
                    report,
                ),
            )),
        ),
        // A genuine KM enclave of another build (one that trusts another authority).
        ("not in the allow-list", {
            let other = EnclaveBuild::simulation(Some(authority().address()));
            let other = EnclaveBuild { allow_debug_peers: true, ..other };
            Some(attest_as(other.measurement(Role::KeyManager), 2, report))
        }),
        // A genuine worker enclave presented as the KM.
        ("not in the allow-list", Some(attest_as(build().measurement(Role::Worker), 1, report))),
        // The KM's measurement under the worker's product id.
        ("product id", Some(attest_as(km_measurement, 1, report))),
        // A debug KM.
        ("debug", {
            let e = authority().attest(km_measurement, 2, true, report);
            Some(Evidence::Simulation(e))
        }),
        // Report data that is not an enigma enclave's.
        ("not an enigma enclave", Some(attest_as(km_measurement, 2, [0xff; 64]))),
    ];
    for (why, evidence) in reasons {
        let r = init_under(evidence);
        assert!(
            matches!(&r, Err(EnclaveError::InitRefused(text)) if text.contains(why)),
            "{why}: {r:?}"
        );
    }
    // The genuine KM's evidence is accepted, and binds the worker to it.
    let genuine = genuine;
    let init =
        init_under(Some(attest(&KmEnclave::report(&genuine.enclave, TIME).unwrap()))).unwrap();
    let data = ReportData::parse(&init.report.report_data).unwrap();
    assert!(data.binds(&operator(9), &Address::from(genuine.signer)));
    assert_eq!(data.signer, init.report.signer);
}

fn attest_as(mr_enclave: [u8; 32], product: u16, report_data: [u8; 64]) -> Evidence {
    Evidence::Simulation(authority().attest(mr_enclave, product, false, report_data))
}

/// A request signed by `signer` (a plain key pair of the host's) for `contract`'s key.
fn plain_request(signer: &KeyPair, contract: ContractAddress, op: Address) -> StateKeyRequest {
    let eph = KeyPair::generate().unwrap();
    let request = Encoder::new()
        .bytes(b"enigma-state-key-request-v2")
        .bytes(eph.public_key().as_bytes())
        .bytes(&[7; 12])
        .u64(EPOCH)
        .bytes(op.as_bytes())
        .list([contract], |e, c| e.bytes(c.as_bytes()))
        .list([millionaires_hash()], |e, h| e.bytes(h.as_bytes()))
        .into_bytes();
    StateKeyRequest { signature: signer.sign_digest(&bytes_digest(&request)), request }
}

#[test]
fn the_km_releases_no_key_to_an_unattested_requester_whatever_the_selection() {
    let mut v = victim();
    let plain = KeyPair::from_bytes(&[0x71; 32]).unwrap();
    let plain_signer = SignerAddress::from(plain.address());
    // The KM host draws a new epoch whose only worker is its own plain key (the KM signs lists
    // for new nonces; the chain would not take this one, but the KM enclave remembers it).
    v.net.epoch.workers = vec![plain_signer];
    v.net.draw(1, vec![1]);
    let mut seen = Seen::default();
    let request = plain_request(&plain, v.contract, operator(0x70));
    let forged_report =
        ReportData::new(plain_signer, &operator(0x70), &Address::from(v.net.km.signer), TIME)
            .to_bytes();
    let evidences: Vec<(&str, CarriedEvidence)> = vec![
        // A genuine worker's evidence: it is of another signer.
        ("but the request is signed by", v.net.workers[0].evidence.clone()),
        // Evidence the host's own authority signed.
        (
            "not accepted",
            CarriedEvidence::new(&Evidence::Simulation(
                SimulationAuthority::new(KeyPair::from_bytes(&[0x72; 32]).unwrap()).attest(
                    build().measurement(Role::Worker),
                    1,
                    false,
                    forged_report,
                ),
            )),
        ),
        // The KM's own evidence.
        ("not accepted", v.net.km.evidence.clone()),
        // Garbage.
        ("does not parse", CarriedEvidence(b"{\"kind\":\"simulation\"}".to_vec())),
        ("more than the limit", CarriedEvidence(vec![b' '; limits::MAX_EVIDENCE_BYTES + 1])),
    ];
    for (why, evidence) in evidences {
        let r = v.net.km.enclave.get_state_keys(KeyRequestInput {
            request: request.clone(),
            evidence,
            epoch: v.net.epoch.clone(),
            time: TIME,
        });
        assert!(
            matches!(&r, Err(EnclaveError::Refused(text)) if text.contains(why)),
            "{why}: {r:?}"
        );
        seen.response(&r);
    }
    seen.assert_no_secret();
}

#[test]
fn a_genuine_worker_bound_to_another_key_manager_or_operator_is_refused() {
    let mut v = victim();
    // A genuine worker enclave whose host started it under a rogue KM (of the same build).
    let rogue = km([0x44; 32]);
    let misbound = worker([0x45; 32], &rogue, operator(0x45));
    v.net.epoch.workers.push(misbound.signer);
    v.net.workers.push(misbound);
    v.net.draw(1, vec![0, 0, 1]);
    let w = v.net.workers.len() - 1;
    let r = v.net.provision(w, v.contract);
    assert!(
        matches!(&r, Err(EnclaveError::Refused(why)) if why.contains("not bound to this key manager")),
        "{r:?}"
    );
    // A genuine, well-bound worker whose host claims another operator in the request is
    // refused the same way (its enclave signs its sealed operator; a plain edit breaks the
    // signature, so the host would have to forge the request, which fails attestation).
    let honest = 0;
    let id = ContractKeyId { contract: v.contract, code_hash: millionaires_hash() };
    let request = v.net.workers[honest].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let mut input = v.net.key_input(honest, request);
    let at = 8 + 27 + 8 + 64 + 8 + 12 + 8 + 8 + 8;
    input.request.request[at] ^= 1;
    assert!(matches!(
        v.net.km.enclave.get_state_keys(input),
        Err(EnclaveError::Refused(why)) if why.contains("signed by") || why.contains("not bound")
    ));
}

#[test]
fn the_km_signs_one_list_per_epoch_and_releases_only_under_recent_signed_epochs() {
    let mut v = victim();
    let w = v.worker;
    let first = v.net.epoch.clone();
    // A second list for the drawn nonce: refused (the host cannot shop for a selection).
    let r = v.net.km.enclave.new_epoch(EpochInput {
        nonce: 0,
        snapshot_block: first.snapshot_block,
        group_size: 1,
        workers: first.workers.clone(),
        stakes: vec![1, 1_000_000],
    });
    assert!(matches!(r, Err(EnclaveError::BadEpoch(why)) if why.contains("already drawn")));
    // The host raises the group size at release, so every worker is "selected": the digest
    // covers it.
    let other = 1 - w;
    let id = ContractKeyId { contract: v.contract, code_hash: millionaires_hash() };
    let request = v.net.workers[other].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let mut input = v.net.key_input(other, request);
    input.epoch.group_size = 2;
    assert!(matches!(
        v.net.km.enclave.get_state_keys(input),
        Err(EnclaveError::Refused(why)) if why.contains("not those the key manager signed")
    ));
    // Epochs two behind the newest decide nothing any more.
    v.net.draw(1, first.stakes.clone());
    v.net.draw(2, first.stakes.clone());
    let request = v.net.workers[w].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let mut input = v.net.key_input(w, request);
    input.epoch = first;
    assert!(matches!(
        v.net.km.enclave.get_state_keys(input),
        Err(EnclaveError::Refused(why)) if why.contains("is over")
    ));
}

#[test]
fn a_km_host_cannot_turn_its_clock_back_to_pass_stale_evidence() {
    // A build whose KM accepts worker evidence at most an hour old.
    let strict = EnclaveBuild { max_evidence_age_secs: Some(3600), ..build() };
    let secret = NodeSecret::from_bytes([0x21; 32]);
    let mut km = EnclaveProxy::new(SimulationBackend::km_built(strict.clone(), &secret, false));
    let init =
        KmEnclave::init(&km, KmInit { sealed_state: None, operator: operator(0), time: TIME })
            .unwrap();
    let mut w = EnclaveProxy::new(SimulationBackend::worker_built(
        strict,
        &NodeSecret::from_bytes([0x22; 32]),
        false,
    ));
    let winit = WorkerEnclave::init(
        &w,
        WorkerInit {
            sealed_identity: None,
            principal_evidence: Some(carried(&init.report)),
            operator: operator(1),
            time: TIME,
        },
    )
    .unwrap();
    let evidence = carried(&winit.report);
    let seed = km
        .new_epoch(EpochInput {
            nonce: 0,
            snapshot_block: 1,
            group_size: 1,
            workers: vec![winit.report.signer],
            stakes: vec![1],
        })
        .unwrap();
    let epoch = EpochParams {
        seed: seed.seed,
        nonce: 0,
        snapshot_block: 1,
        workers: vec![winit.report.signer],
        stakes: vec![1],
        group_size: 1,
    };
    let id = ContractKeyId { contract: ContractAddress([3; 32]), code_hash: CodeHash([4; 32]) };
    let ask = |km: &mut Enclave, w: &mut Enclave, time: u64| {
        let request = w.request_state_keys(EPOCH, vec![id]).unwrap();
        km.get_state_keys(KeyRequestInput {
            request,
            evidence: evidence.clone(),
            epoch: epoch.clone(),
            time,
        })
    };
    assert!(ask(&mut km, &mut w, TIME + 60).is_ok(), "fresh evidence is accepted");
    let r = ask(&mut km, &mut w, TIME + 7200);
    assert!(matches!(&r, Err(EnclaveError::Refused(why)) if why.contains("old")), "{r:?}");
    // The host turns its clock back: the enclave's time does not go back.
    let r = ask(&mut km, &mut w, TIME + 60);
    assert!(matches!(&r, Err(EnclaveError::Refused(why)) if why.contains("old")), "{r:?}");
}

#[test]
fn replayed_or_misdirected_key_responses_are_rejected() {
    let v = victim();
    let w = v.worker;
    let id = ContractKeyId { contract: v.contract, code_hash: millionaires_hash() };
    let request = v.net.workers[w].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let response = v.net.km.enclave.get_state_keys(v.net.key_input(w, request)).unwrap();
    assert_eq!(v.net.workers[w].enclave.accept_state_keys(response.clone()).unwrap(), vec![id]);
    let r = v.net.workers[w].enclave.accept_state_keys(response.clone());
    assert!(
        matches!(&r, Err(EnclaveError::KeyResponseRejected(why)) if why.contains("no pending"))
    );
    // Given to the other worker (which has a pending request of its own): no match.
    let other = 1 - w;
    v.net.workers[other].enclave.request_state_keys(EPOCH, vec![id]).unwrap();
    let r = v.net.workers[other].enclave.accept_state_keys(response);
    assert!(matches!(r, Err(EnclaveError::KeyResponseRejected(_))));
}

#[test]
fn re_running_a_task_draws_the_same_randomness() {
    let mut net = Net::new(&[100]);
    let coin = coin_flip();
    let hash = code_hash(&coin);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    net.provision_code(0, contract, hash).unwrap();
    let key = net.workers[0].enclave.io_key(EPOCH).unwrap();
    let signer = net.workers[0].signer;
    let c = ClientTask::deploy(&key, signer, id, "construct()", &[]);
    let d = net.workers[0].enclave.deploy(deploy_task(id, coin, &c)).unwrap();
    assert_eq!(
        d.status,
        TaskStatus::Success,
        "{}",
        String::from_utf8_lossy(&c.open(&d.encrypted_output))
    );
    let mut position = ChainPosition { next_index: 1, tip: d.delta_hash };
    let mut deltas = vec![d.delta.unwrap()];
    // 40 games, each committed with a guess of heads.
    for n in 1..=40 {
        let args = (AlloyAddress::repeat_byte(1), true).abi_encode_params();
        let c =
            ClientTask::new(&key, signer, contract, next_task(n), "commit(address,bool)", &args);
        let r = net.workers[0]
            .enclave
            .compute(compute_task(next_task(n), contract, hash, position, &c))
            .unwrap();
        assert_eq!(r.status, TaskStatus::Success);
        position = ChainPosition { next_index: position.next_index + 1, tip: r.delta_hash };
        deltas.push(r.delta.unwrap());
    }
    // Each flip runs on the state after the commits: the host feeds it again each time.
    let flip_inputs = |game: u64, task: u64| {
        let args = (U256::from(game), AlloyAddress::repeat_byte(2)).abi_encode_params();
        ClientTask::new(&key, signer, contract, next_task(task), "flip(uint256,address)", &args)
    };
    let run = |net: &mut Net, c: &ClientTask| {
        let mut t = compute_task(c.task, contract, hash, position, c);
        t.state = Some(EncryptedState { snapshot: None, deltas: deltas.clone() });
        let r = net.workers[0].enclave.compute(t).unwrap();
        assert_eq!(r.status, TaskStatus::Success);
        <(AlloyAddress, bool)>::abi_decode_params(&c.open(&r.encrypted_output)).unwrap().1
    };
    // The host re-runs the user's flip of game 0 (the same task, the same inputs, the same state)
    // twenty times, fishing for tails: every run shows the same coin.
    let users_flip = flip_inputs(0, 500);
    let coins: Vec<bool> = (0..20).map(|_| run(&mut net, &users_flip)).collect();
    assert!(coins.iter().all(|c| *c == coins[0]), "re-runs drew different coins: {coins:?}");
    // The host encrypts inputs of its own under the user's task id, to read the user's coin in
    // advance: its runs draw other coins (40 runs all showing the user's coin: 2^-40).
    let own: Vec<bool> = (0..40).map(|_| run(&mut net, &flip_inputs(0, 500))).collect();
    assert!(own.contains(&!coins[0]), "the host's own inputs draw the user's coin: {own:?}");
    // Different tasks do draw different coins (40 flips all alike: probability 2^-39).
    let many: Vec<bool> = (0..40).map(|g| run(&mut net, &flip_inputs(g, 600 + g))).collect();
    assert!(many.contains(&true) && many.contains(&false), "{many:?}");
}

#[test]
fn a_debug_instance_cannot_load_a_production_identity() {
    let net = Net::new(&[100]);
    let w = &net.workers[0];
    let debug = EnclaveProxy::new(SimulationBackend::worker_built(
        build(),
        &NodeSecret::from_bytes(w.secret),
        true,
    ));
    let r = WorkerEnclave::init(
        &debug,
        WorkerInit {
            sealed_identity: Some(w.sealed.clone()),
            principal_evidence: None,
            operator: w.operator,
            time: TIME,
        },
    );
    assert!(matches!(r, Err(EnclaveError::Sealing(_))), "{r:?}");
}

#[test]
fn the_km_draws_epochs_only_in_order() {
    let mut v = victim();
    let last = v.net.epoch.clone();
    for nonce in [5, 2, u64::MAX] {
        let r = v.net.km.enclave.new_epoch(EpochInput {
            nonce,
            snapshot_block: last.snapshot_block,
            group_size: 1,
            workers: last.workers.clone(),
            stakes: last.stakes.clone(),
        });
        assert!(
            matches!(&r, Err(EnclaveError::BadEpoch(why)) if why.contains("expects epoch 1")),
            "{nonce}: {r:?}"
        );
    }
    v.net.draw(1, last.stakes);
    assert_eq!(v.richest(97), AlloyAddress::repeat_byte(0x11));
}

fn coin_flip() -> Vec<u8> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_contract_build::BuildOptions::examples(&root);
    let built = enigma_contract_build::build(&options).unwrap();
    std::fs::read(&enigma_contract_build::find(&built, "coin_flip").unwrap().wasm).unwrap()
}

/// Whether `len` bytes of ciphertext hold a plaintext padded to one of the default buckets.
fn is_bucket(ciphertext_len: usize) -> bool {
    let padded = ciphertext_len - 28;
    enigma_types::padding::Padding::default().bucket(padded - 1) == padded
}

#[test]
fn outputs_and_deltas_are_padded_to_buckets() {
    let mut v = victim();
    // Net worths of one and of two hex digits give deltas of the same length.
    let one = (AlloyAddress::repeat_byte(0x21), U256::from(1u64)).abi_encode_params();
    let two = (AlloyAddress::repeat_byte(0x22), U256::from(255u64)).abi_encode_params();
    let a = v.honest("add_millionaire(address,uint256)", &one, 10);
    let b = v.honest("add_millionaire(address,uint256)", &two, 11);
    let (da, db) = (a.delta.as_ref().unwrap(), b.delta.as_ref().unwrap());
    assert_eq!(da.bytes.len(), db.bytes.len(), "the net worth's length does not show");
    assert!(is_bucket(da.bytes.len()), "{}", da.bytes.len());
    // An empty output and an error text are padded too (the smallest bucket is 64 bytes).
    assert_eq!(a.encrypted_output.len(), 64 + 28);
    let short = v.honest("f()", &[], 12);
    let long = v.honest("a_much_longer_function_name_than_f()", &[], 13);
    assert_eq!(short.status, TaskStatus::Failure);
    assert!(is_bucket(short.encrypted_output.len()) && is_bucket(long.encrypted_output.len()));
    // And the state stays readable through the padding.
    assert_eq!(v.richest(14), AlloyAddress::repeat_byte(0x11));
}

/// A network whose selected worker is about to deploy a module whose constructor never ends,
/// with all the gas there is (only the wall clock stops it) and `budget_ms` to run: the net,
/// the worker, the contract, the deploying user and the task.
fn endless_deploy(budget_ms: u64) -> (Net, usize, ContractAddress, ClientTask, DeployTask) {
    let mut net = Net::new(&[100, 300]);
    let id = next_task(0);
    let contract = ContractAddress::from(id);
    let w = net.selected(&contract);
    let endless = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "deploy") (loop $l (br $l)))
             (func (export "call")))"#,
    )
    .unwrap();
    net.provision_code(w, contract, code_hash(&endless)).unwrap();
    let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
    let c = ClientTask::deploy(&key, net.workers[w].signer, id, "construct()", &[]);
    let mut task = deploy_task(id, endless, &c);
    task.gas_limit = u64::MAX;
    task.time_budget_ms = budget_ms;
    (net, w, contract, c, task)
}

#[test]
fn a_run_past_the_hosts_time_budget_has_no_result_and_the_enclave_goes_on() {
    let (mut net, w, contract, c, task) = endless_deploy(200);
    let id = task.task_id;
    let r = net.workers[w].enclave.deploy(task);
    match r {
        Err(EnclaveError::TimeBudgetExceeded { budget_ms: 200, gas_used }) => {
            assert!(gas_used > 0, "it ran before it was stopped");
        }
        other => panic!("expected the time budget to stop the run, got {other:?}"),
    }
    // Nothing of the stopped run remains: the same contract deploys honestly afterwards.
    net.provision(w, contract).unwrap();
    let mut honest = deploy_task(id, millionaires(), &c);
    honest.time_budget_ms = 60_000;
    let r = net.workers[w].enclave.deploy(honest).unwrap();
    assert_eq!(r.status, TaskStatus::Success);
}

/// Runs `during` while `stuck` (a deploy that loops until its 5 s time budget stops it) holds
/// its task runtime, and checks that `during` returned before the stuck run ended.
fn while_a_run_is_stuck(enclave: &Enclave, stuck: DeployTask, what: &str, during: impl FnOnce()) {
    let run_ended = std::sync::atomic::AtomicBool::new(false);
    let started = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            started.wait();
            let r = enclave.deploy(stuck);
            run_ended.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        });
        started.wait();
        // Give the run a moment to take its runtime.
        std::thread::sleep(std::time::Duration::from_millis(200));
        during();
        assert!(
            !run_ended.load(std::sync::atomic::Ordering::SeqCst),
            "{what} returned only after the stuck run ended"
        );
        match run.join().unwrap() {
            Err(EnclaveError::TimeBudgetExceeded { budget_ms: 5_000, .. }) => {}
            other => panic!("expected the time budget to stop the run, got {other:?}"),
        }
    });
}

#[test]
fn runs_of_contracts_on_different_task_runtimes_go_on_at_once() {
    // A contract run holds only its contract's task runtime: a deploy of another contract, on
    // another runtime, finishes while the first still runs (the host runs one contract's tasks
    // in turn, and different contracts' at once).
    let (mut net, w, slow, _, task) = endless_deploy(5_000);
    // The runtime is chosen by the address's first 8 bytes (little-endian) modulo their number,
    // 2 to 4: another contract of this worker apart from the slow one whatever that number is.
    let word = |c: &ContractAddress| u64::from_le_bytes(c.0[..8].try_into().unwrap());
    let (id, other) = (1..200)
        .map(|n| (next_task(n), ContractAddress::from(next_task(n))))
        .find(|(_, c)| net.selected(c) == w && (2..=4).all(|n| word(c) % n != word(&slow) % n))
        .expect("some contract of this worker lands apart");
    net.provision(w, other).unwrap();
    let key = net.workers[w].enclave.io_key(EPOCH).unwrap();
    let c = ClientTask::deploy(&key, net.workers[w].signer, id, "construct()", &[]);
    let mut fast = deploy_task(id, millionaires(), &c);
    fast.time_budget_ms = 60_000;
    let enclave = &net.workers[w].enclave;
    while_a_run_is_stuck(enclave, task, "the other contract's deploy", || {
        let r = enclave.deploy(fast).unwrap();
        assert_eq!(r.status, TaskStatus::Success);
    });
}

#[test]
fn signing_and_keys_do_not_wait_behind_a_contract_run() {
    // A contract run holds the enclave's runtime for as long as its budget allows. Signing an
    // announcement, reading or rotating an IO key and fetching state keys must not wait for it:
    // a host whose worker runs one slow task still announces, enters epochs and commits.
    let (net, w, contract, _, task) = endless_deploy(5_000);
    let enclave = &net.workers[w].enclave;
    while_a_run_is_stuck(enclave, task, "the calls", || {
        let signature = enclave
            .sign_announcement(AnnouncementInput {
                peer_id: vec![1; 38],
                addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
                epoch: EPOCH,
                issued_at: 1,
            })
            .unwrap();
        assert_ne!(signature.as_bytes(), &[0u8; 65]);
        let next = enclave.rotate_io_key(EPOCH + 100).unwrap();
        assert_eq!(enclave.io_key(EPOCH + 100).unwrap(), next.key);
        WorkerEnclave::report(enclave, TIME).unwrap();
        enclave
            .request_state_keys(
                EPOCH,
                vec![ContractKeyId { contract, code_hash: CodeHash([3; 32]) }],
            )
            .unwrap();
    });
}
