//! A real chain for the tests: anvil spawned per test, the compiled contracts deployed, workers
//! whose "enclaves" are plain key pairs, a key manager key and a simulation authority.

#![allow(dead_code, unreachable_pub)]

use alloy::{node_bindings::AnvilInstance, providers::Provider};
use enigma_attestation::{
    Evidence, KM_PRODUCT_ID, SimulationAuthority, WORKER_PRODUCT_ID, simulation_measurement,
};
use enigma_chain::*;
use enigma_crypto::KeyPair;
use enigma_types::{
    Address, SignerAddress,
    messages::{ReportData, epoch_digest},
};

/// The simulated measurements these tests allow-list.
pub fn measurement(role: &str) -> [u8; 32] {
    simulation_measurement(role, &[0; 32])
}

pub const ENG: u128 = 100_000_000;
pub const EPOCH_SIZE: u64 = 10;
pub const TIMEOUT: u64 = 30;

pub struct Worker {
    pub account: usize,
    pub chain: Chain,
    pub enclave: KeyPair,
}

impl Worker {
    pub fn signer(&self) -> SignerAddress {
        self.enclave.address().into()
    }
}

pub struct TestNet {
    pub anvil: AnvilInstance,
    pub deployer: Chain,
    pub deployment: Deployment,
    pub authority: SimulationAuthority,
    pub km: KeyPair,
    pub workers: Vec<Worker>,
    pub group_size: u64,
    seed_counter: std::cell::Cell<u64>,
}

pub fn account_key(anvil: &AnvilInstance, i: usize) -> KeyPair {
    KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap()
}

impl TestNet {
    pub async fn new(group_size: u64) -> Self {
        Self::with(group_size, EPOCH_SIZE).await
    }

    pub async fn with(group_size: u64, epoch_size: u64) -> Self {
        let anvil = spawn_anvil().expect("anvil starts (npm ci in contracts/ installs it)");
        let url = anvil.endpoint_url().to_string();
        let deployer_key = account_key(&anvil, 0);
        let provider = provider(&url, Some(&deployer_key)).await.unwrap();
        let authority = SimulationAuthority::new(KeyPair::from_bytes(&[0xa7; 32]).unwrap());
        let km = KeyPair::from_bytes(&[0x4b; 32]).unwrap();
        let config = DeployConfig {
            epoch_size,
            timeout_blocks: TIMEOUT,
            principal: km.address().into(),
            group_size,
            simulation: Some(SimulationPolicy {
                authority: authority.address(),
                debug_allowed: false,
                worker_enclaves: vec![measurement("worker")],
                km_enclaves: vec![measurement("km")],
            }),
            ias: None,
            task_limits: DEFAULT_TASK_LIMITS,
        };
        let deployment = deploy(&provider, &config).await.expect("the contracts deploy");
        let deployer =
            Chain::new(provider, deployment.enigma, deployment.token, Some(deployer_key.address()));
        let evidence = authority.attest(
            measurement("km"),
            KM_PRODUCT_ID,
            false,
            ReportData::new(km.address().into(), &Address::ZERO, &km.address(), 0).to_bytes(),
        );
        deployer
            .register_principal(&Evidence::Simulation(evidence))
            .await
            .expect("the KM registers");
        Self {
            anvil,
            deployer,
            deployment,
            authority,
            km,
            workers: Vec::new(),
            group_size,
            seed_counter: std::cell::Cell::new(1),
        }
    }

    pub fn url(&self) -> String {
        self.anvil.endpoint_url().to_string()
    }

    /// A chain handle signing as anvil account `i`.
    pub async fn chain(&self, i: usize) -> Chain {
        let key = account_key(&self.anvil, i);
        Chain::connect(&self.url(), Some(&key), self.deployment.enigma, self.deployment.token)
            .await
            .unwrap()
    }

    pub fn address(&self, i: usize) -> Address {
        account_key(&self.anvil, i).address()
    }

    pub async fn fund(&self, i: usize, amount: u128) {
        self.deployer.transfer_token(self.address(i), amount).await.unwrap();
    }

    /// Registers anvil account `i` as a worker with a fresh enclave key, stakes and logs in.
    pub async fn add_worker(&mut self, i: usize, stake: u128) -> usize {
        self.fund(i, stake).await;
        let chain = self.chain(i).await;
        let enclave = KeyPair::generate().unwrap();
        let evidence = self.worker_evidence(&enclave, self.address(i));
        chain.register(enclave.address().into(), &evidence).await.unwrap();
        chain.deposit_stake(stake).await.unwrap();
        chain.login().await.unwrap();
        self.workers.push(Worker { account: i, chain, enclave });
        self.workers.len() - 1
    }

    /// Registers a fresh operator account (given ETH through anvil) as a worker.
    pub async fn add_fresh_worker(&mut self, stake: u128) -> usize {
        let operator = KeyPair::generate().unwrap();
        let _: serde_json::Value = self
            .deployer
            .provider()
            .raw_request(
                "anvil_setBalance".into(),
                (convert::eth(operator.address()), "0x56BC75E2D63100000"),
            )
            .await
            .unwrap();
        self.deployer.transfer_token(operator.address(), stake).await.unwrap();
        let chain = Chain::connect(
            &self.url(),
            Some(&operator),
            self.deployment.enigma,
            self.deployment.token,
        )
        .await
        .unwrap();
        let enclave = KeyPair::generate().unwrap();
        let evidence = self.worker_evidence(&enclave, operator.address());
        chain.register(enclave.address().into(), &evidence).await.unwrap();
        chain.deposit_stake(stake).await.unwrap();
        chain.login().await.unwrap();
        self.workers.push(Worker { account: usize::MAX, chain, enclave });
        self.workers.len() - 1
    }

    /// The authority's attestation of a (key pair) worker enclave operated by `operator`.
    pub fn worker_evidence(&self, enclave: &KeyPair, operator: Address) -> Evidence {
        let data =
            ReportData::new(enclave.address().into(), &operator, &self.km.address(), 0).to_bytes();
        Evidence::Simulation(self.authority.attest(
            measurement("worker"),
            WORKER_PRODUCT_ID,
            false,
            data,
        ))
    }

    pub async fn mine(&self, blocks: u64) {
        let _: serde_json::Value =
            self.deployer.provider().raw_request("anvil_mine".into(), (blocks,)).await.unwrap();
    }

    /// Signs an epoch as the KM over `(seed, nonce, snapshot, groupSize, workers, stakes)`.
    pub fn sign_epoch(
        &self,
        seed: [u8; 32],
        nonce: u64,
        snapshot: u64,
        workers: &[SignerAddress],
        stakes: &[u128],
    ) -> enigma_crypto::Signature {
        self.km.sign_digest(&epoch_digest(&seed, nonce, snapshot, self.group_size, workers, stakes))
    }

    /// Runs the KM's epoch round with `seed` (mining to the next epoch block first).
    pub async fn new_epoch_with(&self, seed: [u8; 32]) -> EpochInfo {
        let next = self.deployer.next_epoch_block().await.unwrap();
        let now = self.deployer.block_number().await.unwrap();
        if next > now + 1 {
            self.mine(next - now - 1).await;
        }
        let snapshot = self.deployer.block_number().await.unwrap();
        let (workers, stakes) = self.deployer.active_workers(snapshot).await.unwrap();
        let nonce = self.deployer.epoch_count().await.unwrap();
        let signature = self.sign_epoch(seed, nonce, snapshot, &workers, &stakes);
        self.deployer
            .set_workers_params(snapshot, seed, &signature)
            .await
            .expect("the epoch is accepted");
        let epoch = self.deployer.current_epoch().await.unwrap().unwrap();
        assert_eq!((epoch.nonce, epoch.seed, epoch.workers.clone()), (nonce, seed, workers));
        epoch
    }

    pub async fn new_epoch(&self) -> EpochInfo {
        let n = self.seed_counter.get();
        self.seed_counter.set(n + 1);
        self.new_epoch_with(enigma_types::keccak256(n.to_be_bytes())).await
    }

    /// The index of the worker whose enclave signer is `signer`.
    pub fn worker_of(&self, signer: SignerAddress) -> usize {
        self.workers.iter().position(|w| w.signer() == signer).expect("a known worker")
    }
}

/// Records a compute task of the user `chain` signs as (its next nonce).
pub async fn record(
    chain: &Chain,
    contract: enigma_types::ContractAddress,
    inputs: enigma_types::InputsHash,
    gas_limit: u64,
    gas_px: u64,
    first_block: u64,
) -> Result<(enigma_types::TaskId, Mined)> {
    let nonce = chain.task_nonce(chain.account().unwrap()).await?;
    chain.create_task_record(contract, inputs, gas_limit, gas_px, first_block, nonce, 0).await
}

/// Asserts a chain error names `what`.
#[track_caller]
pub fn assert_rejected<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(ChainError::Reverted(text)) => {
            assert!(text.contains(what), "expected {what}, got {text}")
        }
        other => panic!("expected a revert naming {what}, got {other:?}"),
    }
}

/// The batch-message entries of receipts of batch-recorded tasks (what a worker's enclave signs
/// for `commitBatchReceipts`).
pub fn batch_entries(
    items: &[(ProvenTask, BatchItemTx)],
) -> Vec<enigma_types::messages::BatchEntry> {
    items
        .iter()
        .map(|(t, o)| enigma_types::messages::BatchEntry {
            task_id: t.task.task_id,
            inputs_hash: t.task.inputs_hash,
            delta_hash: o.delta_hash,
            output_hash: o.output_hash,
            value: t.task.value,
            payouts_hash: enigma_types::keccak256(&o.payouts),
            gas_limit: t.task.gas_limit,
            gas_used: o.gas_used,
            status: o.status,
        })
        .collect()
}
