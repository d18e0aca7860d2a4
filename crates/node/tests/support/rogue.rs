//! A worker whose host is the attacker: a genuine enclave of the devnet's build, attested by the
//! devnet's service, registered, staked and logged in like any worker — and driven by hand, so
//! the test decides what it announces, which state it runs tasks on and what it publishes.

#![allow(dead_code, reason = "each test takes what it needs")]

use std::time::Duration;

use enigma_chain::{Chain, ComputeReceiptTx, DeployReceiptTx};
use enigma_crypto::{KeyPair, Signature};
use enigma_enclave::{
    AnnouncementInput, CarriedEvidence, ChainPosition, ComputeTask, ContractKeyId, DeployTask,
    EnclaveBuild, EnclaveProxy, EncryptedDelta, EncryptedState, NodeSecret, SimulationBackend,
    StateKeyResponse, TaskResult, WorkerEnclave, WorkerInit,
};
use enigma_node::{DevnetSummary, StateKeysMessage, obtain_evidence};
use enigma_p2p::{Event, GossipMessage, Handle, TaskRequest, WorkerAnnouncement};
use enigma_types::{Address, CodeHash, ContractAddress, SignerAddress};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};
use tokio::sync::mpsc;

/// The attacker's worker.
pub(crate) struct Rogue {
    pub(crate) enclave: EnclaveProxy<SimulationBackend>,
    pub(crate) signer: SignerAddress,
    pub(crate) operator: KeyPair,
    /// The chain, as the rogue's operator.
    pub(crate) chain: Chain,
    pub(crate) evidence: enigma_attestation::Evidence,
    pub(crate) p2p: Handle,
    pub(crate) events: mpsc::Receiver<Event>,
    /// The value the host tells its enclave a compute task brought, instead of the record's.
    pub(crate) value_lie: Option<u128>,
    km_url: String,
}

impl Rogue {
    /// Starts a genuine worker enclave under `operator` (which holds ETH and ENG) and has it
    /// attested by the devnet's service, bound to the operator and the key manager; joins the
    /// p2p network. It is not registered yet: see [`register`](Self::register).
    pub(crate) async fn attest(summary: &DevnetSummary, operator: KeyPair) -> Rogue {
        let authority: Address = summary.simulation_authority.parse().unwrap();
        let chain = Chain::connect(
            &summary.chain_url,
            Some(&operator),
            summary.deployment.enigma,
            summary.deployment.token,
        )
        .await
        .unwrap();
        let secret = NodeSecret::from_bytes(*KeyPair::generate().unwrap().secret_bytes());
        let backend = SimulationBackend::worker_built(
            EnclaveBuild::simulation(Some(authority)),
            &secret,
            false,
        );
        let enclave = EnclaveProxy::new(backend);
        let principal = chain.principal_evidence().await.unwrap().unwrap();
        let init = WorkerEnclave::init(
            &enclave,
            WorkerInit {
                sealed_identity: None,
                principal_evidence: Some(CarriedEvidence::new(&principal.evidence)),
                operator: operator.address(),
                time: now_s(),
            },
        )
        .unwrap();
        let evidence = obtain_evidence(&summary.attestation_url, &init.report).await.unwrap();
        let (p2p, events) = enigma_p2p::spawn(enigma_p2p::Config {
            bootstrap: summary.p2p_bootstrap.iter().map(|a| a.parse().unwrap()).collect(),
            ..enigma_p2p::Config::default()
        })
        .await
        .unwrap();
        Rogue {
            enclave,
            signer: init.report.signer,
            operator,
            chain,
            evidence,
            p2p,
            events,
            value_lie: None,
            km_url: summary.km_url.clone(),
        }
    }

    /// Registers the enclave, stakes `stake` grains and logs in: it takes part from the next
    /// epoch the key manager draws.
    pub(crate) async fn register(&self, stake: u128) {
        self.chain.register(self.signer, &self.evidence).await.unwrap();
        self.chain.deposit_stake(stake).await.unwrap();
        self.chain.login().await.unwrap();
    }

    /// Enters `epoch` (a new IO key) and announces `addresses` as where it is, signed by its
    /// enclave. Returns the announcement.
    pub(crate) async fn announce(
        &mut self,
        epoch: u64,
        addresses: Vec<String>,
    ) -> WorkerAnnouncement {
        self.enclave.rotate_io_key(epoch).unwrap();
        let key = self.enclave.io_key(epoch).unwrap();
        let issued_at = now_ms();
        let peer_id = self.p2p.peer_id().to_bytes();
        let signature = self
            .enclave
            .sign_announcement(AnnouncementInput {
                peer_id: peer_id.clone(),
                addresses: addresses.clone(),
                epoch,
                issued_at,
            })
            .unwrap();
        let a = WorkerAnnouncement {
            signer: self.signer,
            peer_id,
            addresses,
            epoch,
            io_public_key: key.public_key.as_bytes().to_vec(),
            signature: key.signature.as_bytes().to_vec(),
            issued_at,
            announcement_signature: signature.as_bytes().to_vec(),
        };
        publish(&self.p2p, &GossipMessage::Worker(a.clone())).await;
        a
    }

    /// Asks the key manager for the state key of `(contract, code_hash)`, as any worker does.
    pub(crate) async fn state_key(
        &mut self,
        epoch: u64,
        contract: ContractAddress,
        code_hash: CodeHash,
    ) {
        let request = self
            .enclave
            .request_state_keys(epoch, vec![ContractKeyId { contract, code_hash }])
            .unwrap();
        let client = HttpClientBuilder::default().build(&self.km_url).unwrap();
        let answer: StateKeysMessage = client
            .request(
                "getStateKeys",
                rpc_params![StateKeysMessage {
                    request: format!("0x{}", hex::encode(&request.request)),
                    signature: request.signature.to_string(),
                    evidence: Some(serde_json::to_value(&self.evidence).unwrap()),
                }],
            )
            .await
            .unwrap();
        self.enclave
            .accept_state_keys(StateKeyResponse {
                response: hex::decode(answer.request.trim_start_matches("0x")).unwrap(),
                signature: answer.signature.parse().unwrap(),
            })
            .unwrap();
    }

    /// The next task request routed to it (answered "accepted").
    pub(crate) async fn next_task(&mut self) -> TaskRequest {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), self.events.recv())
                .await
                .expect("a task reaches the rogue worker in time")
                .expect("the p2p service runs");
            match event {
                Event::Task { request, reply, .. } => {
                    reply.send(enigma_p2p::TaskResponse::Accepted).await;
                    return request;
                }
                Event::Gossip { verdict, .. } => verdict.report(enigma_p2p::Verdict::Ignore),
                _ => {}
            }
        }
    }

    /// Runs a deployment request in its enclave (fetching the state key), publishes the result
    /// and commits the receipt.
    pub(crate) async fn deploy(&mut self, epoch: u64, request: TaskRequest) -> TaskResult {
        let TaskRequest::Deploy {
            task_id,
            code,
            encrypted_fn,
            encrypted_args,
            user_public_key,
            caller,
        } = request
        else {
            panic!("expected a deployment")
        };
        let contract = ContractAddress::from(task_id);
        self.state_key(epoch, contract, enigma_types::code_hash(&code)).await;
        let task = DeployTask {
            task_id,
            epoch,
            code,
            encrypted_fn,
            encrypted_args,
            user_public_key: enigma_crypto::PublicKey::from_bytes(&user_public_key).unwrap(),
            gas_limit: record_gas(&self.chain, &task_id).await,
            caller,
            time_budget_ms: 60_000,
        };
        let r = self.enclave.deploy(task).unwrap();
        publish(&self.p2p, &GossipMessage::Result(Box::new(enigma_node::result_message(&r, true))))
            .await;
        self.chain
            .commit_deploy(&DeployReceiptTx {
                task_id,
                pre_code_hash: r.code_hash,
                code_hash: r.code_hash,
                init_delta_hash: r.delta_hash,
                gas_used: r.gas_used,
                eth_payload: Vec::new(),
                eth_address: Address::ZERO,
                signature: r.signature,
            })
            .await
            .unwrap();
        r
    }

    /// Runs a compute request on the contract's state at `position` (whatever the chain says),
    /// loading `deltas` (every delta up to the position) and publishing the signed result.
    pub(crate) async fn compute_at(
        &mut self,
        epoch: u64,
        request: TaskRequest,
        code_hash: CodeHash,
        position: ChainPosition,
        deltas: &[EncryptedDelta],
    ) -> TaskResult {
        self.try_compute_at(epoch, request, code_hash, position, deltas).await.unwrap()
    }

    /// [`compute_at`](Self::compute_at), with the enclave's refusal (nothing is published then).
    pub(crate) async fn try_compute_at(
        &mut self,
        epoch: u64,
        request: TaskRequest,
        code_hash: CodeHash,
        position: ChainPosition,
        deltas: &[EncryptedDelta],
    ) -> Result<TaskResult, enigma_enclave::EnclaveError> {
        let TaskRequest::Compute {
            task_id,
            contract,
            encrypted_fn,
            encrypted_args,
            user_public_key,
            caller,
        } = request
        else {
            panic!("expected a compute task")
        };
        let task = ComputeTask {
            task_id,
            epoch,
            contract,
            code_hash,
            code: None,
            position,
            state: Some(EncryptedState { snapshot: None, deltas: deltas.to_vec() }),
            encrypted_fn,
            encrypted_args,
            user_public_key: enigma_crypto::PublicKey::from_bytes(&user_public_key).unwrap(),
            gas_limit: record_gas(&self.chain, &task_id).await,
            value: match self.value_lie {
                Some(lie) => lie,
                None => self.chain.task(&task_id).await.unwrap().unwrap().value,
            },
            caller,
            time_budget_ms: 60_000,
            want_snapshot: false,
        };
        let r = self.enclave.compute(task)?;
        publish(
            &self.p2p,
            &GossipMessage::Result(Box::new(enigma_node::result_message(&r, false))),
        )
        .await;
        Ok(r)
    }

    /// Commits a compute task's receipt.
    pub(crate) async fn commit(&self, r: &TaskResult) -> enigma_chain::Result<enigma_chain::Mined> {
        let signature = Signature::from_bytes(r.signature.as_bytes()).unwrap();
        if r.status == enigma_enclave::TaskStatus::Failure {
            return self
                .chain
                .commit_failure(r.contract, r.task_id, r.output_hash, r.gas_used, &signature)
                .await;
        }
        self.chain
            .commit_receipt(&ComputeReceiptTx {
                contract: r.contract,
                task_id: r.task_id,
                delta_hash: r.delta_hash,
                output_hash: r.output_hash,
                gas_used: r.gas_used,
                eth_payload: Vec::new(),
                eth_address: Address::ZERO,
                payouts: r.payouts.clone(),
                signature,
            })
            .await
    }
}

async fn record_gas(chain: &Chain, task: &enigma_types::TaskId) -> u64 {
    chain.task(task).await.unwrap().expect("the task is recorded").gas_limit
}

/// Publishes a gossip message, retrying until a peer is subscribed.
pub(crate) async fn publish(p2p: &Handle, message: &GossipMessage) {
    for _ in 0..100 {
        if p2p.publish(message).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not publish");
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn now_s() -> u64 {
    now_ms() / 1000
}
