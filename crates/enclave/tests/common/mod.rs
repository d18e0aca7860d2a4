//! A KM, workers and a client around the simulation backend, for the enclave tests and bench.

#![allow(dead_code, unreachable_pub)]

use std::{path::PathBuf, sync::OnceLock};

use enigma_attestation::{Evidence, SimulationAuthority};
use enigma_crypto::{KeyPair, PublicKey, SymmetricKey};
use enigma_enclave::*;
use enigma_types::{
    Address, CodeHash, ContractAddress, SignerAddress, TaskId, code_hash, delta_hash,
    inputs_hash_compute, inputs_hash_deploy,
    messages::{
        ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt, TaskField, task_field_ad,
        worker_key_digest,
    },
    selection::select_worker,
    task_id,
};

pub type Enclave = EnclaveProxy<SimulationBackend>;

pub const EPOCH: u64 = 100;
pub const GAS: u64 = 50_000_000;
/// The hosts' clock in these tests (Unix seconds).
pub const TIME: u64 = 1_800_000_000;

pub fn millionaires() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_contract_build::BuildOptions::examples(&root);
        let built =
            enigma_contract_build::build(&options).expect("the millionaires example builds");
        std::fs::read(&enigma_contract_build::find(&built, "millionaires").unwrap().wasm).unwrap()
    })
    .clone()
}

pub fn millionaires_hash() -> CodeHash {
    code_hash(&millionaires())
}

/// The test harness plays Intel: it holds the simulation authority's key. No enclave's host does.
pub fn authority() -> SimulationAuthority {
    SimulationAuthority::new(KeyPair::from_bytes(&[0x5a; 32]).unwrap())
}

/// What the enclaves in these tests are built to trust: the harness's authority.
pub fn build() -> EnclaveBuild {
    EnclaveBuild::simulation(Some(authority().address()))
}

/// The harness's attestation of an enclave's report (as IAS or a quoting enclave would give).
pub fn attest(report: &EnclaveReport) -> Evidence {
    Evidence::Simulation(authority().attest(
        report.mr_enclave,
        report.isv_prod_id,
        report.debug,
        report.report_data,
    ))
}

pub fn carried(report: &EnclaveReport) -> CarriedEvidence {
    CarriedEvidence::new(&attest(report))
}

pub struct Node {
    pub enclave: Enclave,
    pub signer: SignerAddress,
    pub sealed: Vec<u8>,
    pub secret: [u8; 32],
    pub operator: Address,
    /// Its attestation evidence, as it registered with.
    pub evidence: CarriedEvidence,
}

pub fn operator(n: u8) -> Address {
    Address([0xe0 ^ n; 20])
}

pub fn km(secret: [u8; 32]) -> Node {
    let enclave = EnclaveProxy::new(SimulationBackend::km_built(
        build(),
        &NodeSecret::from_bytes(secret),
        false,
    ));
    let op = operator(0);
    let init =
        KmEnclave::init(&enclave, KmInit { sealed_state: None, operator: op, time: TIME }).unwrap();
    Node {
        enclave,
        signer: init.report.signer,
        sealed: init.sealed,
        secret,
        operator: op,
        evidence: carried(&init.report),
    }
}

pub fn worker_enclave(secret: [u8; 32]) -> Enclave {
    EnclaveProxy::new(SimulationBackend::worker_built(
        build(),
        &NodeSecret::from_bytes(secret),
        false,
    ))
}

pub fn worker(secret: [u8; 32], km: &Node, op: Address) -> Node {
    let enclave = worker_enclave(secret);
    let init = WorkerEnclave::init(
        &enclave,
        WorkerInit {
            sealed_identity: None,
            principal_evidence: Some(km.evidence.clone()),
            operator: op,
            time: TIME,
        },
    )
    .unwrap();
    let rotated = enclave.rotate_io_key(EPOCH).unwrap();
    Node {
        enclave,
        signer: init.report.signer,
        sealed: rotated.sealed_identity,
        secret,
        operator: op,
        evidence: carried(&init.report),
    }
}

/// A KM with workers and one epoch drawn.
pub struct Net {
    pub km: Node,
    pub workers: Vec<Node>,
    pub epoch: EpochParams,
}

impl Net {
    pub fn new(stakes: &[u128]) -> Self {
        let km = km([1; 32]);
        let workers: Vec<Node> = (0..stakes.len())
            .map(|i| worker([10 + i as u8; 32], &km, operator(1 + i as u8)))
            .collect();
        let signers: Vec<SignerAddress> = workers.iter().map(|w| w.signer).collect();
        let epoch = EpochParams {
            seed: [0; 32],
            nonce: 0,
            snapshot_block: EPOCH - 1,
            workers: signers,
            stakes: stakes.to_vec(),
            group_size: 1,
        };
        let mut net = Self { km, workers, epoch };
        net.draw(0, stakes.to_vec());
        net
    }

    /// The KM draws epoch `nonce` over the same workers with `stakes`; it becomes the net's epoch.
    pub fn draw(&mut self, nonce: u64, stakes: Vec<u128>) -> EpochSeed {
        let input = EpochInput {
            nonce,
            snapshot_block: EPOCH - 1 + nonce,
            group_size: 1,
            workers: self.epoch.workers.clone(),
            stakes: stakes.clone(),
        };
        let seed = self.km.enclave.new_epoch(input.clone()).unwrap();
        self.km.sealed = seed.sealed_state.clone();
        self.epoch = EpochParams {
            seed: seed.seed,
            nonce,
            snapshot_block: input.snapshot_block,
            workers: input.workers,
            stakes,
            group_size: 1,
        };
        seed
    }

    pub fn selected(&self, contract: &ContractAddress) -> usize {
        let s = select_worker(&self.epoch.seed, contract, &self.epoch.workers, &self.epoch.stakes)
            .unwrap();
        self.workers.iter().position(|w| w.signer == s).unwrap()
    }

    /// The key request input a worker's host would hand its KM.
    pub fn key_input(&self, worker: usize, request: StateKeyRequest) -> KeyRequestInput {
        KeyRequestInput {
            request,
            evidence: self.workers[worker].evidence.clone(),
            epoch: self.epoch.clone(),
            time: TIME,
        }
    }

    /// The worker obtains the key of the contract with the millionaires code from the KM.
    pub fn provision(
        &mut self,
        worker: usize,
        contract: ContractAddress,
    ) -> Result<(), EnclaveError> {
        self.provision_code(worker, contract, millionaires_hash())
    }

    /// The worker obtains the key of `(contract, code_hash)` from the KM.
    pub fn provision_code(
        &mut self,
        worker: usize,
        contract: ContractAddress,
        code_hash: CodeHash,
    ) -> Result<(), EnclaveError> {
        let id = ContractKeyId { contract, code_hash };
        let request = self.workers[worker].enclave.request_state_keys(EPOCH, vec![id])?;
        let response = self.km.enclave.get_state_keys(self.key_input(worker, request))?;
        let accepted = self.workers[worker].enclave.accept_state_keys(response)?;
        assert_eq!(accepted, vec![id]);
        Ok(())
    }
}

/// The client side of one task: a fresh key, the worker's verified key, the inputs encrypted as
/// the fields of this task of this contract.
pub struct ClientTask {
    pub user: KeyPair,
    pub key: SymmetricKey,
    pub contract: ContractAddress,
    pub task: TaskId,
    pub encrypted_fn: Vec<u8>,
    pub encrypted_args: Vec<u8>,
}

impl ClientTask {
    pub fn new(
        worker_key: &WorkerKey,
        worker_signer: SignerAddress,
        contract: ContractAddress,
        task: TaskId,
        function: &str,
        args: &[u8],
    ) -> Self {
        // The client checks the worker's key is signed by the worker's enclave signer.
        let digest = worker_key_digest(worker_key.public_key.as_bytes());
        assert_eq!(
            worker_key.signature.recover_address(&digest).unwrap(),
            Address::from(worker_signer)
        );
        let user = KeyPair::generate().unwrap();
        let key = user.derive_key(&worker_key.public_key);
        let ad = |field| task_field_ad(&contract, &task, 0, field);
        let encrypted_fn =
            key.encrypt_with_ad(function.as_bytes(), &ad(TaskField::Callable)).unwrap();
        let encrypted_args = key.encrypt_with_ad(args, &ad(TaskField::Arguments)).unwrap();
        Self { user, key, contract, task, encrypted_fn, encrypted_args }
    }

    /// A deploy: the contract is the task id.
    pub fn deploy(
        worker_key: &WorkerKey,
        worker_signer: SignerAddress,
        task: TaskId,
        function: &str,
        args: &[u8],
    ) -> Self {
        Self::new(worker_key, worker_signer, ContractAddress::from(task), task, function, args)
    }

    pub fn public_key(&self) -> PublicKey {
        *self.user.public_key()
    }

    /// Decrypts the task's output and removes the enclave's length padding.
    pub fn open(&self, blob: &[u8]) -> Vec<u8> {
        let ad = task_field_ad(&self.contract, &self.task, 0, TaskField::Output);
        let padded = self.key.decrypt_with_ad(blob, &ad).expect("the output decrypts");
        enigma_types::padding::unpad(&padded).expect("the output is padded").to_vec()
    }
}

pub fn deploy_task(id: TaskId, code: Vec<u8>, c: &ClientTask) -> DeployTask {
    assert_eq!(id, c.task, "the inputs are bound to the task they are for");
    DeployTask {
        task_id: id,
        epoch: EPOCH,
        code,
        encrypted_fn: c.encrypted_fn.clone(),
        encrypted_args: c.encrypted_args.clone(),
        user_public_key: c.public_key(),
        gas_limit: GAS,
        caller: None,
        time_budget_ms: 0,
    }
}

pub fn compute_task(
    id: TaskId,
    contract: ContractAddress,
    code_hash: CodeHash,
    position: ChainPosition,
    c: &ClientTask,
) -> ComputeTask {
    ComputeTask {
        task_id: id,
        epoch: EPOCH,
        contract,
        code_hash,
        code: None,
        position,
        state: None,
        encrypted_fn: c.encrypted_fn.clone(),
        encrypted_args: c.encrypted_args.clone(),
        user_public_key: c.public_key(),
        gas_limit: GAS,
        value: 0,
        caller: None,
        time_budget_ms: 0,
        want_snapshot: false,
    }
}

/// What a verifier (client or chain) recomputes from public data — the task it asked for, the
/// inputs it sent — and the result: the receipt digest.
pub fn receipt_digest(
    r: &TaskResult,
    c: &ClientTask,
    client_inputs_hash: enigma_types::InputsHash,
    deploy: bool,
) -> [u8; 32] {
    let eth = r
        .eth_call
        .as_ref()
        .map_or(EthCallRef::default(), |c| EthCallRef { payload: &c.payload, address: c.address });
    match (r.status, deploy) {
        (TaskStatus::Success, true) => DeployReceipt {
            task_id: c.task,
            inputs_hash: client_inputs_hash,
            code_hash: r.code_hash,
            init_delta_hash: r.delta.as_ref().map(|d| delta_hash(&d.bytes)).unwrap(),
            gas_limit: GAS,
            gas_used: r.gas_used,
            eth_call: eth,
        }
        .digest(),
        (TaskStatus::Success, false) => ComputeReceipt {
            task_id: c.task,
            contract: c.contract,
            code_hash: r.code_hash,
            inputs_hash: client_inputs_hash,
            delta_count: r.prev_delta_count,
            prev_delta_hash: r.prev_delta_hash,
            delta_hash: r
                .delta
                .as_ref()
                .map_or(enigma_types::DeltaHash::ZERO, |d| delta_hash(&d.bytes)),
            output_hash: enigma_types::output_hash(&r.encrypted_output),
            gas_limit: GAS,
            gas_used: r.gas_used,
            eth_call: eth,
            value: r.value,
            payouts: &r.payouts,
        }
        .digest(),
        (TaskStatus::Failure, _) => FailureReceipt {
            task_id: c.task,
            contract: c.contract,
            inputs_hash: client_inputs_hash,
            code_hash: r.code_hash,
            output_hash: enigma_types::output_hash(&r.encrypted_output),
            gas_limit: GAS,
            gas_used: r.gas_used,
            value: r.value,
        }
        .digest(),
    }
}

pub fn deploy_inputs_hash(c: &ClientTask, code: &[u8]) -> enigma_types::InputsHash {
    inputs_hash_deploy(
        &c.encrypted_fn,
        &c.encrypted_args,
        &code_hash(code),
        c.public_key().as_bytes(),
    )
}

pub fn compute_inputs_hash(c: &ClientTask, contract: &ContractAddress) -> enigma_types::InputsHash {
    inputs_hash_compute(&c.encrypted_fn, &c.encrypted_args, contract, c.public_key().as_bytes())
}

pub fn sender() -> Address {
    Address([0x5e; 20])
}

pub fn next_task(n: u64) -> TaskId {
    task_id(&sender(), n)
}
