//! The whole lifecycle against real anvil: registration, stakes, epochs, task records, every
//! receipt kind, callbacks, timeouts, withdrawals — and the fees to the grain.

use crate::common::*;
use alloy::{primitives::U256, sol_types::SolCall};
use enigma_chain::{bindings::VotingETH, *};
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, Grains, InputsHash, OutputHash, keccak256,
    messages::{
        BatchEntry, ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt, batch_digest,
    },
    payouts::Payout,
    task_id,
};

pub(crate) const PX: u64 = 3;
pub(crate) const LIMIT: u64 = 1_000_000;
pub(crate) const USER: usize = 5;

pub(crate) fn h(text: &str) -> [u8; 32] {
    keccak256(text.as_bytes())
}

pub(crate) struct Scenario {
    pub(crate) net: TestNet,
    pub(crate) user: Chain,
    pub(crate) epoch: EpochInfo,
    pub(crate) contract: ContractAddress,
    pub(crate) code_hash: CodeHash,
}

/// Two workers, an epoch, a user with a prepaid balance, and a deployed contract.
pub(crate) async fn scenario() -> Scenario {
    let mut net = TestNet::new(1).await;
    net.add_worker(1, 1_000 * ENG).await;
    net.add_worker(2, 3_000 * ENG).await;
    let epoch = net.new_epoch().await;
    assert_eq!(epoch.workers.len(), 2);
    net.fund(USER, 10_000 * ENG).await;
    let user = net.chain(USER).await;
    user.deposit_balance(1_000 * ENG).await.unwrap();
    let user_address = net.address(USER);

    // Deploy: the record's id is the contract's address, computed by the user in advance.
    let nonce = user.task_nonce(user_address).await.unwrap();
    let inputs = InputsHash(h("deploy inputs"));
    let (id, _) = user
        .create_deployment_task_record(inputs, LIMIT, PX, epoch.first_block, nonce)
        .await
        .unwrap();
    assert_eq!(id, task_id(&user_address, nonce));
    assert_eq!(
        user.prepaid_balance(user_address).await.unwrap(),
        1_000 * ENG - u128::from(LIMIT * PX)
    );
    let contract = ContractAddress::from(id);

    let cache = EpochCache::load(&net.deployer).await.unwrap();
    let group = cache.group(cache.current().unwrap(), &contract);
    assert_eq!(
        group,
        net.deployer.worker_group(epoch.first_block, &contract).await.unwrap(),
        "Rust and Solidity agree"
    );
    let w = net.worker_of(group[0]);

    let code_hash = CodeHash(h("code"));
    let init = DeltaHash(h("delta 0"));
    let gas_used = 123_456;
    let digest = DeployReceipt {
        task_id: id,
        inputs_hash: inputs,
        code_hash,
        init_delta_hash: init,
        gas_limit: LIMIT,
        gas_used,
        eth_call: EthCallRef::default(),
    }
    .digest();
    let before =
        net.deployer.worker(net.address(net.workers[w].account)).await.unwrap().unwrap().balance;
    net.workers[w]
        .chain
        .commit_deploy(&DeployReceiptTx {
            task_id: id,
            pre_code_hash: code_hash,
            code_hash,
            init_delta_hash: init,
            gas_used,
            eth_payload: vec![],
            eth_address: Address::ZERO,
            signature: net.workers[w].enclave.sign_digest(&digest),
        })
        .await
        .unwrap();
    let sc = net.deployer.secret_contract(&contract).await.unwrap().unwrap();
    assert_eq!(
        (sc.owner, sc.code_hash, sc.delta_count, sc.last_delta_hash),
        (user_address, code_hash, 1, init)
    );
    assert_eq!(net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::Verified);
    let after =
        net.deployer.worker(net.address(net.workers[w].account)).await.unwrap().unwrap().balance;
    assert_eq!(after - before, u128::from(gas_used * PX), "the worker earns gasUsed · gasPx");
    assert_eq!(
        user.prepaid_balance(user_address).await.unwrap(),
        1_000 * ENG - u128::from(gas_used * PX),
        "the user pays exactly gasUsed · gasPx"
    );
    Scenario { net, user, epoch, contract, code_hash }
}

impl Scenario {
    pub(crate) fn selected(&self) -> usize {
        let cache_group = enigma_types::selection::select_workers(
            &self.epoch.seed,
            &self.contract,
            &self.epoch.workers,
            &self.epoch.stakes,
            1,
        );
        self.net.worker_of(cache_group[0])
    }

    pub(crate) async fn record(&self, label: &str) -> (enigma_types::TaskId, InputsHash) {
        let inputs = InputsHash(h(label));
        let (id, _) = record(&self.user, self.contract, inputs, LIMIT, PX, self.epoch.first_block)
            .await
            .unwrap();
        (id, inputs)
    }

    async fn tip(&self) -> DeltaHash {
        self.net.deployer.secret_contract(&self.contract).await.unwrap().unwrap().last_delta_hash
    }

    /// The contract's delta count and tip: what a receipt builds on.
    pub(crate) async fn base(&self) -> (u64, DeltaHash) {
        let sc = self.net.deployer.secret_contract(&self.contract).await.unwrap().unwrap();
        (sc.delta_count, sc.last_delta_hash)
    }

    pub(crate) async fn prepaid(&self) -> u128 {
        self.user.prepaid_balance(self.net.address(USER)).await.unwrap()
    }

    pub(crate) async fn stake(&self, w: usize) -> u128 {
        self.net
            .deployer
            .worker(self.net.address(self.net.workers[w].account))
            .await
            .unwrap()
            .unwrap()
            .balance
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compute_receipt(
        &self,
        w: usize,
        id: enigma_types::TaskId,
        inputs: InputsHash,
        base: (u64, DeltaHash),
        delta: DeltaHash,
        gas_used: u64,
        eth: (Vec<u8>, Address),
    ) -> ComputeReceiptTx {
        self.paid_receipt(w, id, inputs, base, delta, gas_used, eth, (0, &[]))
    }

    /// A compute receipt of a task that escrowed `money.0` and pays out `money.1`.
    #[allow(clippy::too_many_arguments)]
    fn paid_receipt(
        &self,
        w: usize,
        id: enigma_types::TaskId,
        inputs: InputsHash,
        base: (u64, DeltaHash),
        delta: DeltaHash,
        gas_used: u64,
        eth: (Vec<u8>, Address),
        money: (u128, &[Payout]),
    ) -> ComputeReceiptTx {
        let output = OutputHash(h(&format!("output {id}")));
        let payouts = enigma_types::payouts::encode(money.1);
        let digest = ComputeReceipt {
            task_id: id,
            contract: self.contract,
            code_hash: self.code_hash,
            inputs_hash: inputs,
            delta_count: base.0,
            prev_delta_hash: base.1,
            delta_hash: delta,
            output_hash: output,
            gas_limit: LIMIT,
            gas_used,
            eth_call: EthCallRef { payload: &eth.0, address: eth.1 },
            value: money.0,
            payouts: &payouts,
        }
        .digest();
        ComputeReceiptTx {
            contract: self.contract,
            task_id: id,
            delta_hash: delta,
            output_hash: output,
            gas_used,
            eth_payload: eth.0,
            eth_address: eth.1,
            payouts,
            signature: self.net.workers[w].enclave.sign_digest(&digest),
        }
    }
}

#[tokio::test]
async fn compute_receipts_single_batched_and_failed_settle_to_the_grain() {
    let s = scenario().await;
    let w = s.selected();

    // A single compute receipt with a delta.
    let (id, inputs) = s.record("task 1").await;
    let (prepaid, stake) = (s.prepaid().await, s.stake(w).await);
    let delta1 = DeltaHash(h("delta 1"));
    s.net.workers[w]
        .chain
        .commit_receipt(&s.compute_receipt(
            w,
            id,
            inputs,
            s.base().await,
            delta1,
            40_000,
            (vec![], Address::ZERO),
        ))
        .await
        .unwrap();
    assert_eq!(s.tip().await, delta1);
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::Verified);
    assert_eq!(s.prepaid().await, prepaid + u128::from((LIMIT - 40_000) * PX));
    assert_eq!(s.stake(w).await, stake + u128::from(40_000 * PX));

    // A batch of three: success with a delta, a failure, a success without a delta.
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    let (ids, _) = s
        .user
        .create_task_records(
            &[
                (s.contract, InputsHash(h("b1")), LIMIT, 0),
                (s.contract, InputsHash(h("b2")), LIMIT, 0),
                (s.contract, InputsHash(h("b3")), LIMIT, 0),
            ],
            PX,
            s.epoch.first_block,
            nonce,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let (prepaid, stake) = (s.prepaid().await, s.stake(w).await);
    let (count, prev) = s.base().await;
    let entries = vec![
        BatchEntry {
            task_id: ids[0],
            inputs_hash: InputsHash(h("b1")),
            delta_hash: DeltaHash(h("delta 2")),
            output_hash: OutputHash(h("o1")),
            value: 0,
            payouts_hash: enigma_types::payouts::hash(&[]),
            gas_limit: LIMIT,
            gas_used: 10_000,
            status: 1,
        },
        BatchEntry {
            task_id: ids[1],
            inputs_hash: InputsHash(h("b2")),
            delta_hash: DeltaHash::ZERO,
            output_hash: OutputHash(h("o2")),
            value: 0,
            payouts_hash: enigma_types::payouts::hash(&[]),
            gas_limit: LIMIT,
            gas_used: 20_000,
            status: 0,
        },
        BatchEntry {
            task_id: ids[2],
            inputs_hash: InputsHash(h("b3")),
            delta_hash: DeltaHash::ZERO,
            output_hash: OutputHash(h("o3")),
            value: 0,
            payouts_hash: enigma_types::payouts::hash(&[]),
            gas_limit: LIMIT,
            gas_used: 30_000,
            status: 1,
        },
    ];
    let signature = s.net.workers[w].enclave.sign_digest(&batch_digest(
        &s.contract,
        &s.code_hash,
        count,
        &prev,
        &entries,
    ));
    let items: Vec<BatchItemTx> = ids
        .iter()
        .zip(&entries)
        .map(|(id, e)| BatchItemTx {
            task_id: *id,
            delta_hash: e.delta_hash,
            output_hash: e.output_hash,
            gas_used: e.gas_used,
            status: e.status,
            payouts: Vec::new(),
        })
        .collect();
    s.net.workers[w].chain.commit_receipts(s.contract, &items, &signature).await.unwrap();
    let statuses: Vec<TaskStatus> = futures_status(&s, &ids).await;
    assert_eq!(statuses, vec![TaskStatus::Verified, TaskStatus::Failed, TaskStatus::Verified]);
    assert_eq!(s.tip().await, DeltaHash(h("delta 2")));
    let sc = s.net.deployer.secret_contract(&s.contract).await.unwrap().unwrap();
    assert_eq!(sc.delta_count, 3, "delta 0, delta 1 and the batch's one non-zero delta");
    assert_eq!(
        s.net.deployer.delta_hashes(&s.contract, 0, 10).await.unwrap(),
        vec![DeltaHash(h("delta 0")), DeltaHash(h("delta 1")), DeltaHash(h("delta 2"))]
    );
    assert_eq!(s.prepaid().await, prepaid + u128::from((3 * LIMIT - 60_000) * PX));
    assert_eq!(s.stake(w).await, stake + u128::from(60_000 * PX));

    // A single failure: the user pays the gas used, nothing else changes.
    let (id, inputs) = s.record("fails").await;
    let (prepaid, stake) = (s.prepaid().await, s.stake(w).await);
    let output = OutputHash(h("error text"));
    let digest = FailureReceipt {
        task_id: id,
        contract: s.contract,
        inputs_hash: inputs,
        code_hash: s.code_hash,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: LIMIT,
        value: 0,
    }
    .digest();
    s.net.workers[w]
        .chain
        .commit_failure(
            s.contract,
            id,
            output,
            LIMIT,
            &s.net.workers[w].enclave.sign_digest(&digest),
        )
        .await
        .unwrap();
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::Failed);
    assert_eq!(s.prepaid().await, prepaid, "out of gas: the whole escrow goes to the worker");
    assert_eq!(s.stake(w).await, stake + u128::from(LIMIT * PX));
}

async fn futures_status(s: &Scenario, ids: &[enigma_types::TaskId]) -> Vec<TaskStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.push(s.net.deployer.task(id).await.unwrap().unwrap().status);
    }
    out
}

#[tokio::test]
async fn callbacks_run_after_verification_and_their_failure_is_recorded() {
    let s = scenario().await;
    let w = s.selected();
    let voting = deploy_voting(s.net.deployer.provider(), s.net.deployment.enigma).await.unwrap();
    let v = VotingETH::new(convert::eth(voting), s.net.deployer.provider().clone());
    v.createPoll(U256::from(50), "fund the park".into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let poll = U256::ZERO;

    let (id, inputs) = s.record("tally").await;
    let payload =
        VotingETH::finalizePollCall { pollId: poll, talliedQuorum: U256::from(75) }.abi_encode();
    let delta = DeltaHash(h("tally delta"));
    let receipt =
        s.compute_receipt(w, id, inputs, s.base().await, delta, 50_000, (payload, voting));
    s.net.workers[w].chain.commit_receipt(&receipt).await.unwrap();
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::Verified);
    let tallied = v.getPoll(poll).call().await.unwrap();
    assert_eq!(tallied.talliedQuorum, U256::from(75), "the callback ran");
    assert_eq!(s.tip().await, delta);

    // A callback that reverts: verified, recorded as ReceiptFailedETH, delta not appended.
    let (id, inputs) = s.record("bad callback").await;
    let payload = VotingETH::revertWithCall { reason: "no".into() }.abi_encode();
    let prepaid = s.prepaid().await;
    let receipt = s.compute_receipt(
        w,
        id,
        inputs,
        s.base().await,
        DeltaHash(h("lost delta")),
        50_000,
        (payload, voting),
    );
    s.net.workers[w].chain.commit_receipt(&receipt).await.unwrap();
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::FailedEth);
    assert_eq!(s.tip().await, delta, "the failed callback's delta is not appended");
    assert_eq!(s.prepaid().await, prepaid + u128::from((LIMIT - 50_000) * PX), "fees still settle");
}

#[tokio::test]
async fn a_timed_out_task_returns_its_whole_fee() {
    let s = scenario().await;
    let (id, _) = s.record("never answered").await;
    let prepaid = s.prepaid().await;
    assert_rejected(s.user.return_fees(id).await, "TaskNotTimedOut");
    s.net.mine(TIMEOUT).await;
    s.user.return_fees(id).await.unwrap();
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::FailedReturn);
    assert_eq!(s.prepaid().await, prepaid + u128::from(LIMIT * PX));
    assert_rejected(s.user.return_fees(id).await, "TaskNotOpen");
}

#[tokio::test]
async fn logout_and_withdraw_only_in_a_later_epoch() {
    let s = scenario().await;
    let worker = &s.net.workers[0];
    assert_rejected(worker.chain.withdraw_stake(1).await, "WorkerLoggedIn");
    worker.chain.logout().await.unwrap();
    assert_rejected(worker.chain.withdraw_stake(1).await, "StakeLocked");
    s.net.new_epoch().await;
    let operator = s.net.address(worker.account);
    let stake = s.stake(0).await;
    let tokens = s.net.deployer.token_balance(operator).await.unwrap();
    worker.chain.withdraw_stake(stake).await.unwrap();
    assert_eq!(s.net.deployer.token_balance(operator).await.unwrap(), tokens + stake);
    assert_eq!(s.stake(0).await, 0);
    let u = s.user.withdraw_balance(s.prepaid().await).await;
    assert!(u.is_ok());
}

#[tokio::test]
async fn forged_wrong_replayed_and_late_receipts_are_rejected() {
    let s = scenario().await;
    let w = s.selected();
    let other = 1 - w;
    let (id, inputs) = s.record("target").await;
    let prev = s.base().await;
    let delta = DeltaHash(h("d"));

    // Signed by a key that is no registered enclave.
    let mut forged = s.compute_receipt(w, id, inputs, prev, delta, 1, (vec![], Address::ZERO));
    let stranger = enigma_crypto::KeyPair::from_bytes(&[0x33; 32]).unwrap();
    let digest = ComputeReceipt {
        task_id: id,
        contract: s.contract,
        code_hash: s.code_hash,
        inputs_hash: inputs,
        delta_count: prev.0,
        prev_delta_hash: prev.1,
        delta_hash: delta,
        output_hash: forged.output_hash,
        gas_limit: LIMIT,
        gas_used: 1,
        eth_call: EthCallRef::default(),
        value: 0,
        payouts: &[],
    }
    .digest();
    forged.signature = stranger.sign_digest(&digest);
    assert_rejected(s.net.workers[w].chain.commit_receipt(&forged).await, "WorkerNotSelected");
    // Signed by the registered worker that is not selected for this contract.
    let wrong = s.compute_receipt(other, id, inputs, prev, delta, 1, (vec![], Address::ZERO));
    assert_rejected(s.net.workers[w].chain.commit_receipt(&wrong).await, "WorkerNotSelected");
    // Signed over another value than the one submitted (gas).
    let mut altered = s.compute_receipt(w, id, inputs, prev, delta, 1, (vec![], Address::ZERO));
    altered.gas_used = 2;
    assert_rejected(s.net.workers[w].chain.commit_receipt(&altered).await, "WorkerNotSelected");
    // Gas above the limit.
    let greedy = s.compute_receipt(w, id, inputs, prev, delta, LIMIT + 1, (vec![], Address::ZERO));
    assert_rejected(s.net.workers[w].chain.commit_receipt(&greedy).await, "GasUsedAboveLimit");
    // The real one lands once; a replay and a receipt for the finished task fail.
    let good = s.compute_receipt(w, id, inputs, prev, delta, 1, (vec![], Address::ZERO));
    s.net.workers[w].chain.commit_receipt(&good).await.unwrap();
    assert_rejected(s.net.workers[w].chain.commit_receipt(&good).await, "TaskNotOpen");
    let output = OutputHash(h("late failure"));
    let digest = FailureReceipt {
        task_id: id,
        contract: s.contract,
        inputs_hash: inputs,
        code_hash: s.code_hash,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: 5,
        value: 0,
    }
    .digest();
    assert_rejected(
        s.net.workers[w]
            .chain
            .commit_failure(
                s.contract,
                id,
                output,
                5,
                &s.net.workers[w].enclave.sign_digest(&digest),
            )
            .await,
        "TaskNotOpen",
    );

    // A record naming an epoch that is not the current one.
    assert_rejected(
        record(&s.user, s.contract, InputsHash(h("x")), LIMIT, PX, s.epoch.first_block + 1).await,
        "WrongEpoch",
    );
    // A deployment record with the wrong nonce.
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    assert_rejected(
        s.user
            .create_deployment_task_record(
                InputsHash(h("y")),
                LIMIT,
                PX,
                s.epoch.first_block,
                nonce + 1,
            )
            .await,
        "WrongTaskNonce",
    );
}

#[tokio::test]
async fn only_the_principal_sets_epochs_and_a_receipt_is_judged_in_its_own_epoch() {
    let s = scenario().await;
    let w = s.selected();
    let (id, inputs) = s.record("old epoch task").await;
    // An epoch signed by someone else is refused.
    s.net.mine(EPOCH_SIZE).await;
    let snapshot = s.net.deployer.block_number().await.unwrap();
    let (workers, stakes) = s.net.deployer.active_workers(snapshot).await.unwrap();
    let nonce = s.net.deployer.epoch_count().await.unwrap();
    let impostor = enigma_crypto::KeyPair::from_bytes(&[0x66; 32]).unwrap();
    let bad = impostor.sign_digest(&enigma_types::messages::epoch_digest(
        &[1; 32],
        nonce,
        snapshot,
        s.net.group_size,
        &workers,
        &stakes,
    ));
    assert_rejected(
        s.net.deployer.set_workers_params(snapshot, [1; 32], &bad).await,
        "InvalidPrincipalSignature",
    );
    // A real new epoch; the old task is still judged by the epoch it was recorded in.
    let next = s.net.new_epoch().await;
    assert_eq!(next.nonce, s.epoch.nonce + 1);
    assert_rejected(
        record(&s.user, s.contract, InputsHash(h("stale")), LIMIT, PX, s.epoch.first_block).await,
        "WrongEpoch",
    );
    let receipt = s.compute_receipt(
        w,
        id,
        inputs,
        s.base().await,
        DeltaHash::ZERO,
        7,
        (vec![], Address::ZERO),
    );
    s.net.workers[w].chain.commit_receipt(&receipt).await.unwrap();
    assert_eq!(s.net.deployer.task(&id).await.unwrap().unwrap().status, TaskStatus::Verified);
}

#[tokio::test]
async fn the_watcher_reports_events_in_order_with_confirmations() {
    let s = scenario().await;
    let mut watcher = Watcher::new(
        s.net.deployer.provider().clone(),
        s.net.deployment.enigma,
        s.net.deployment.block,
        2,
    );
    let mut events = Vec::new();
    let poll = watcher.poll().await.unwrap();
    events.extend(poll.events);
    let head = s.net.deployer.block_number().await.unwrap();
    assert_eq!(watcher.next_block(), head - 2 + 1, "stops at the confirmation depth");
    s.net.mine(2).await;
    events.extend(watcher.poll().await.unwrap().events);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.event {
            ChainEvent::Registered { .. } => "registered",
            ChainEvent::LoggedIn { .. } => "login",
            ChainEvent::WorkersParameterized { .. } => "epoch",
            ChainEvent::TaskRecordCreated { is_deploy: true, .. } => "deploy record",
            ChainEvent::SecretContractDeployed { .. } => "deployed",
            ChainEvent::ReceiptVerified { .. } => "receipt",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "login",
            "registered",
            "login",
            "epoch",
            "deploy record",
            "deployed",
            "receipt"
        ]
    );
    assert!(events.windows(2).all(|p| (p[0].block, p[0].log_index) < (p[1].block, p[1].log_index)));
    assert!(watcher.poll().await.unwrap().events.is_empty(), "nothing is reported twice");
}

#[tokio::test]
async fn a_watcher_far_behind_catches_up_in_bounded_ranges_and_says_when_it_has() {
    let s = scenario().await;
    let mut watcher = Watcher::new(
        s.net.deployer.provider().clone(),
        s.net.deployment.enigma,
        s.net.deployment.block,
        0,
    );
    // Three ranges' worth (anvil takes about 5 ms to mine a block: 10,000 take 49 s).
    let behind = 4_100;
    s.net.mine(behind).await;
    let head = s.net.deployer.block_number().await.unwrap();
    let started = std::time::Instant::now();
    let (mut polls, mut events) = (0u64, 0usize);
    loop {
        let poll = watcher.poll().await.unwrap();
        polls += 1;
        events += poll.events.len();
        if poll.caught_up {
            break;
        }
        assert!(watcher.next_block() <= head, "not caught up means blocks remain");
    }
    let blocks = head + 1 - s.net.deployment.block;
    assert_eq!(watcher.next_block(), head + 1);
    assert_eq!(polls, blocks.div_ceil(2_000), "one log query per 2,000 blocks");
    assert_eq!(events, 8, "the scenario's events, each once");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "caught up on {blocks} blocks in {polls} polls, {secs:.2} s ({:.0} blocks/s)",
        blocks as f64 / secs
    );
    assert!(watcher.poll().await.unwrap().caught_up);
}

#[tokio::test]
async fn simulation_registration_checks_authority_product_measurement_and_report_data() {
    use enigma_attestation::{Evidence, SimulationAuthority, WORKER_PRODUCT_ID};
    use enigma_crypto::KeyPair;
    use enigma_types::messages::ReportData;

    let net = TestNet::new(1).await;
    net.fund(3, 100 * ENG).await;
    let chain = net.chain(3).await;
    let enclave = KeyPair::generate().unwrap();
    let signer = enclave.address().into();
    let data = |who: enigma_types::SignerAddress| {
        ReportData::new(who, &net.address(3), &net.km.address(), 0).to_bytes()
    };
    let sim = |authority: &SimulationAuthority, mr, product, report| {
        Evidence::Simulation(authority.attest(mr, product, false, report))
    };
    let other_authority = SimulationAuthority::new(KeyPair::from_bytes(&[0x31; 32]).unwrap());
    let cases = [
        // Report data naming another enclave: the evidence is not of this signer.
        (
            sim(&net.authority, measurement("worker"), WORKER_PRODUCT_ID, data([7; 20].into())),
            "ReportDataMismatch",
        ),
        (
            sim(&other_authority, measurement("worker"), WORKER_PRODUCT_ID, data(signer)),
            "InvalidAuthoritySignature",
        ),
        (sim(&net.authority, measurement("km"), 2, data(signer)), "WrongProductId"),
        (sim(&net.authority, [9; 32], WORKER_PRODUCT_ID, data(signer)), "EnclaveNotAllowed"),
    ];
    for (evidence, error) in cases {
        assert_rejected(chain.register(signer, &evidence).await, error);
    }
    let garbage = chain
        .enigma()
        .register(convert::eth_signer(signer), EVIDENCE_SIMULATION, vec![1, 2, 3].into())
        .send()
        .await;
    assert!(garbage.is_err(), "malformed evidence is refused");
    let good = sim(&net.authority, measurement("worker"), WORKER_PRODUCT_ID, data(signer));
    chain.register(signer, &good).await.unwrap();
    // The event gives the evidence back, whole, for clients and the key manager to judge.
    let recorded = chain.worker_evidence(signer).await.unwrap().unwrap();
    assert_eq!(recorded.evidence, good);
    assert!(net.deployer.principal_evidence().await.unwrap().unwrap().block > 0);
}

#[tokio::test]
async fn the_epoch_signature_covers_the_snapshot_block_and_the_group_size() {
    let mut net = TestNet::new(1).await;
    net.add_worker(1, 100 * ENG).await;
    net.mine(EPOCH_SIZE).await;
    let snapshot = net.deployer.block_number().await.unwrap();
    let (workers, stakes) = net.deployer.active_workers(snapshot).await.unwrap();
    let nonce = net.deployer.epoch_count().await.unwrap();
    let seed = [5; 32];
    let sign = |snapshot: u64, group: u64| {
        net.km.sign_digest(&enigma_types::messages::epoch_digest(
            &seed, nonce, snapshot, group, &workers, &stakes,
        ))
    };
    // Signed for another group size (a KM host that widens the selection) or another snapshot.
    assert_rejected(
        net.deployer.set_workers_params(snapshot, seed, &sign(snapshot, 2)).await,
        "InvalidPrincipalSignature",
    );
    assert_rejected(
        net.deployer.set_workers_params(snapshot, seed, &sign(snapshot - 1, 1)).await,
        "InvalidPrincipalSignature",
    );
    net.deployer.set_workers_params(snapshot, seed, &sign(snapshot, 1)).await.unwrap();
}

impl Scenario {
    /// Deploys another contract (same code) with the selected worker's receipt.
    pub(crate) async fn deploy_another(&self, label: &str) -> ContractAddress {
        let nonce = self.user.task_nonce(self.net.address(USER)).await.unwrap();
        let inputs = InputsHash(h(label));
        let (id, _) = self
            .user
            .create_deployment_task_record(inputs, LIMIT, PX, self.epoch.first_block, nonce)
            .await
            .unwrap();
        let contract = ContractAddress::from(id);
        let group =
            self.net.deployer.worker_group(self.epoch.first_block, &contract).await.unwrap();
        let w = self.net.worker_of(group[0]);
        let init = DeltaHash(h(&format!("{label} delta 0")));
        let digest = DeployReceipt {
            task_id: id,
            inputs_hash: inputs,
            code_hash: self.code_hash,
            init_delta_hash: init,
            gas_limit: LIMIT,
            gas_used: 1,
            eth_call: EthCallRef::default(),
        }
        .digest();
        self.net.workers[w]
            .chain
            .commit_deploy(&DeployReceiptTx {
                task_id: id,
                pre_code_hash: self.code_hash,
                code_hash: self.code_hash,
                init_delta_hash: init,
                gas_used: 1,
                eth_payload: vec![],
                eth_address: Address::ZERO,
                signature: self.net.workers[w].enclave.sign_digest(&digest),
            })
            .await
            .unwrap();
        contract
    }
}

#[tokio::test]
async fn receipts_land_in_record_order_and_only_under_the_recorded_contract() {
    let s = scenario().await;
    let w = s.selected();
    let (first, first_inputs) = s.record("first").await;
    let (second, second_inputs) = s.record("second").await;
    let records = [
        s.net.deployer.task(&first).await.unwrap().unwrap(),
        s.net.deployer.task(&second).await.unwrap().unwrap(),
    ];
    assert_eq!((records[0].seq, records[1].seq), (0, 1), "the contract's own order");
    assert!(records[0].names(&s.contract));
    // The second's receipt lands first (the first was never delivered: it is skipped)...
    let receipt = s.compute_receipt(
        w,
        second,
        second_inputs,
        s.base().await,
        DeltaHash::ZERO,
        9,
        (vec![], Address::ZERO),
    );
    s.net.workers[w].chain.commit_receipt(&receipt).await.unwrap();
    let sc = s.net.deployer.secret_contract(&s.contract).await.unwrap().unwrap();
    assert_eq!((sc.task_count, sc.next_receipt_seq), (2, 2));
    // ...and then the first's can never land: it is refunded after the timeout.
    let late = s.compute_receipt(
        w,
        first,
        first_inputs,
        s.base().await,
        DeltaHash::ZERO,
        9,
        (vec![], Address::ZERO),
    );
    assert_rejected(s.net.workers[w].chain.commit_receipt(&late).await, "ReceiptOutOfOrder");

    // A task recorded for one contract cannot be committed under another, even by an enclave
    // selected for both, and even as a failure.
    let other = s.deploy_another("other").await;
    let (third, inputs) = s.record("third").await;
    let group = s.net.deployer.worker_group(s.epoch.first_block, &other).await.unwrap();
    let wo = s.net.worker_of(group[0]);
    let sc_other = s.net.deployer.secret_contract(&other).await.unwrap().unwrap();
    let output = OutputHash(h("spliced"));
    let digest = FailureReceipt {
        task_id: third,
        contract: other,
        inputs_hash: inputs,
        code_hash: sc_other.code_hash,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: 3,
        value: 0,
    }
    .digest();
    assert_rejected(
        s.net.workers[wo]
            .chain
            .commit_failure(
                other,
                third,
                output,
                3,
                &s.net.workers[wo].enclave.sign_digest(&digest),
            )
            .await,
        "TaskOfAnotherContract",
    );
    // Records of several contracts in one batch each take their own contract's next number.
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    let (ids, _) = s
        .user
        .create_task_records(
            &[
                (s.contract, InputsHash(h("m1")), LIMIT, 0),
                (other, InputsHash(h("m2")), LIMIT, 0),
                (s.contract, InputsHash(h("m3")), LIMIT, 0),
            ],
            PX,
            s.epoch.first_block,
            nonce,
        )
        .await
        .unwrap();
    let mut seqs = Vec::new();
    for id in &ids {
        seqs.push(s.net.deployer.task(id).await.unwrap().unwrap().seq);
    }
    assert_eq!(seqs, vec![3, 0, 4]);
    // A record's nonce must be the sender's counter (its id binds the encrypted inputs).
    assert_rejected(
        s.user
            .create_task_record(
                s.contract,
                InputsHash(h("n")),
                LIMIT,
                PX,
                s.epoch.first_block,
                nonce,
                0,
            )
            .await,
        "WrongTaskNonce",
    );
    // And a record needs a deployed contract.
    assert_rejected(
        record(
            &s.user,
            ContractAddress([5; 32]),
            InputsHash(h("nowhere")),
            LIMIT,
            PX,
            s.epoch.first_block,
        )
        .await,
        "UnknownSecretContract",
    );
}

#[tokio::test]
async fn the_owners_task_limits_refuse_free_and_unbounded_tasks() {
    let s = scenario().await;
    let limits = TaskLimits { min_gas_price: PX, max_gas_limit: LIMIT };
    assert_rejected(s.user.set_task_limits(limits).await, "NotOwner");
    s.net.deployer.set_task_limits(limits).await.unwrap();
    assert_eq!(s.net.deployer.task_limits().await.unwrap(), limits);
    let first = s.epoch.first_block;
    assert_rejected(
        record(&s.user, s.contract, InputsHash(h("free")), LIMIT, PX - 1, first).await,
        "GasPriceTooLow",
    );
    assert_rejected(
        record(&s.user, s.contract, InputsHash(h("endless")), LIMIT + 1, PX, first).await,
        "GasLimitTooHigh",
    );
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    assert_rejected(
        s.user.create_deployment_task_record(InputsHash(h("d")), u64::MAX, PX, first, nonce).await,
        "GasLimitTooHigh",
    );
    assert_rejected(
        s.user
            .create_task_records(&[(s.contract, InputsHash(h("b")), LIMIT, 0)], 0, first, nonce)
            .await,
        "GasPriceTooLow",
    );
    assert!(record(&s.user, s.contract, InputsHash(h("fine")), LIMIT, PX, first).await.is_ok());
    assert_rejected(
        s.net.deployer.set_task_limits(TaskLimits { min_gas_price: 0, max_gas_limit: 0 }).await,
        "maxGasLimit is zero",
    );
}

#[tokio::test]
async fn a_copied_registration_registers_nobody_else_and_the_active_set_is_pruned() {
    let mut net = TestNet::new(1).await;
    net.fund(3, 100 * ENG).await;
    net.fund(4, 100 * ENG).await;
    // Account 3's enclave evidence, bound to account 3, front-run by account 4.
    let enclave = enigma_crypto::KeyPair::generate().unwrap();
    let evidence = net.worker_evidence(&enclave, net.address(3));
    assert_rejected(
        net.chain(4).await.register(enclave.address().into(), &evidence).await,
        "OperatorNotBound",
    );
    net.chain(3).await.register(enclave.address().into(), &evidence).await.unwrap();

    // Active set: a worker that logs out leaves it at the next epoch; its old epochs still list it.
    let a = net.add_worker(5, 100 * ENG).await;
    let b = net.add_worker(6, 100 * ENG).await;
    let first = net.new_epoch().await;
    assert_eq!(first.workers.len(), 2);
    net.workers[a].chain.logout().await.unwrap();
    let second = net.new_epoch().await;
    assert_eq!(second.workers, vec![net.workers[b].signer()]);
    let third = net.new_epoch().await;
    assert_eq!(third.workers, vec![net.workers[b].signer()]);
    assert_eq!(net.deployer.epoch(first.nonce).await.unwrap().workers.len(), 2);
    // It comes back by logging in again.
    net.workers[a].chain.login().await.unwrap();
    let fourth = net.new_epoch().await;
    assert_eq!(fourth.workers.len(), 2);
    assert!(fourth.workers.contains(&net.workers[a].signer()));
}

#[tokio::test]
async fn payable_tasks_escrow_their_value_pay_out_and_refund_to_the_grain() {
    let s = scenario().await;
    let w = s.selected();
    let fee = |used: u64| u128::from(used * PX);
    let escrow = u128::from(LIMIT * PX);
    let paid_record = |label: &'static str, value: u128| {
        let s = &s;
        async move {
            let inputs = InputsHash(h(label));
            let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
            let (id, _) = s
                .user
                .create_task_record(
                    s.contract,
                    inputs,
                    LIMIT,
                    PX,
                    s.epoch.first_block,
                    nonce,
                    value,
                )
                .await
                .unwrap();
            (id, inputs)
        }
    };
    let balance_of = |who: Address| {
        let s = &s;
        async move { s.user.prepaid_balance(who).await.unwrap() }
    };
    let contract_balance = || {
        let s = &s;
        async move { s.net.deployer.secret_contract(&s.contract).await.unwrap().unwrap().balance }
    };
    let (alice, bob) = (Address([0xa1; 20]), Address([0xb0; 20]));
    let pays = |to: Address, amount: u128| Payout { to, amount: Grains(amount) };

    // A record escrows fee and value from the prepaid balance; the record shows the value.
    let before = s.prepaid().await;
    let (a, a_inputs) = paid_record("pay 1", 1_000).await;
    assert_eq!(s.prepaid().await, before - escrow - 1_000);
    assert_eq!(s.net.deployer.task(&a).await.unwrap().unwrap().value, 1_000);

    // A receipt signed over another value than the record's does not verify.
    let base = s.base().await;
    let delta = DeltaHash(h("paid delta 1"));
    let mut lie =
        s.paid_receipt(w, a, a_inputs, base, delta, 40_000, (vec![], Address::ZERO), (0, &[]));
    assert_rejected(s.net.workers[w].chain.commit_receipt(&lie).await, "WorkerNotSelected");
    // Nor do payouts other than the signed ones.
    let honest = [pays(alice, 300)];
    let good = s.paid_receipt(
        w,
        a,
        a_inputs,
        base,
        delta,
        40_000,
        (vec![], Address::ZERO),
        (1_000, &honest),
    );
    lie = good.clone();
    lie.payouts[35] ^= 1;
    assert_rejected(s.net.workers[w].chain.commit_receipt(&lie).await, "WorkerNotSelected");

    // Success: the value joins the contract's balance and the payouts leave it.
    let before = s.prepaid().await;
    s.net.workers[w].chain.commit_receipt(&good).await.unwrap();
    assert_eq!(contract_balance().await, 700);
    assert_eq!(balance_of(alice).await, 300);
    assert_eq!(s.prepaid().await, before + escrow - fee(40_000), "the sender gets its gas back");

    // A payout beyond the balance is refused whole, even signed.
    let (b, b_inputs) = paid_record("pay 2", 0).await;
    let greedy = [pays(bob, 500), pays(alice, 201)];
    let receipt = s.paid_receipt(
        w,
        b,
        b_inputs,
        s.base().await,
        DeltaHash(h("paid delta 2")),
        1,
        (vec![], Address::ZERO),
        (0, &greedy),
    );
    assert_rejected(s.net.workers[w].chain.commit_receipt(&receipt).await, "PayoutBeyondBalance");
    assert_eq!((balance_of(bob).await, contract_balance().await), (0, 700));

    // A failure returns the value with the unused gas.
    let before = s.prepaid().await;
    let (c, c_inputs) = paid_record("pay 3", 250).await;
    let output = OutputHash(h("failed"));
    let digest = FailureReceipt {
        task_id: c,
        contract: s.contract,
        inputs_hash: c_inputs,
        code_hash: s.code_hash,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: 7_000,
        value: 250,
    }
    .digest();
    // (b's record is still open ahead of it: its own receipt lands first.)
    let b_ok = s.paid_receipt(
        w,
        b,
        b_inputs,
        s.base().await,
        DeltaHash::ZERO,
        1,
        (vec![], Address::ZERO),
        (0, &[pays(bob, 100)]),
    );
    s.net.workers[w].chain.commit_receipt(&b_ok).await.unwrap();
    s.net.workers[w]
        .chain
        .commit_failure(
            s.contract,
            c,
            output,
            7_000,
            &s.net.workers[w].enclave.sign_digest(&digest),
        )
        .await
        .unwrap();
    assert_eq!(
        s.prepaid().await,
        before + escrow - fee(1) - fee(7_000),
        "b (recorded before) paid its gas, c its gas; c's 250 came back"
    );
    assert_eq!((balance_of(bob).await, contract_balance().await), (100, 600));

    // A failed callback returns the value too, and pays nothing.
    let before = s.prepaid().await;
    let (d, d_inputs) = paid_record("pay 4", 80).await;
    let nowhere = Address([0x99; 20]);
    let receipt = s.paid_receipt(
        w,
        d,
        d_inputs,
        s.base().await,
        DeltaHash(h("paid delta 4")),
        5_000,
        (vec![1], nowhere),
        (80, &[pays(bob, 680)]),
    );
    s.net.workers[w].chain.commit_receipt(&receipt).await.unwrap();
    assert_eq!(s.net.deployer.task(&d).await.unwrap().unwrap().status, TaskStatus::FailedEth);
    assert_eq!(s.prepaid().await, before - fee(5_000));
    assert_eq!((balance_of(bob).await, contract_balance().await), (100, 600));

    // A batch: a success that brings 400 and pays 1,000 out, a failure whose 50 goes back.
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    let before = s.prepaid().await;
    let (ids, _) = s
        .user
        .create_task_records(
            &[
                (s.contract, InputsHash(h("pb1")), LIMIT, 400),
                (s.contract, InputsHash(h("pb2")), LIMIT, 50),
            ],
            PX,
            s.epoch.first_block,
            nonce,
        )
        .await
        .unwrap();
    assert_eq!(s.prepaid().await, before - 2 * escrow - 450);
    let paid = enigma_types::payouts::encode(&[pays(alice, 700), pays(bob, 300)]);
    let (count, prev) = s.base().await;
    let entries = [
        BatchEntry {
            task_id: ids[0],
            inputs_hash: InputsHash(h("pb1")),
            delta_hash: DeltaHash(h("paid batch delta")),
            output_hash: OutputHash(h("pb o1")),
            value: 400,
            payouts_hash: enigma_types::payouts::hash(&paid),
            gas_limit: LIMIT,
            gas_used: 10_000,
            status: 1,
        },
        BatchEntry {
            task_id: ids[1],
            inputs_hash: InputsHash(h("pb2")),
            delta_hash: DeltaHash::ZERO,
            output_hash: OutputHash(h("pb o2")),
            value: 50,
            payouts_hash: enigma_types::payouts::hash(&[]),
            gas_limit: LIMIT,
            gas_used: 20_000,
            status: 0,
        },
    ];
    let signature = s.net.workers[w].enclave.sign_digest(&batch_digest(
        &s.contract,
        &s.code_hash,
        count,
        &prev,
        &entries,
    ));
    let items: Vec<BatchItemTx> = entries
        .iter()
        .zip([paid.clone(), Vec::new()])
        .map(|(e, payouts)| BatchItemTx {
            task_id: e.task_id,
            delta_hash: e.delta_hash,
            output_hash: e.output_hash,
            gas_used: e.gas_used,
            status: e.status,
            payouts,
        })
        .collect();
    // Payouts other than the signed ones break the batch's signature.
    let mut altered = items.clone();
    altered[0].payouts = enigma_types::payouts::encode(&[pays(alice, 1_000)]);
    assert_rejected(
        s.net.workers[w].chain.commit_receipts(s.contract, &altered, &signature).await,
        "WorkerNotSelected",
    );
    s.net.workers[w].chain.commit_receipts(s.contract, &items, &signature).await.unwrap();
    assert_eq!(contract_balance().await, 0, "600 held + 400 brought - 1,000 paid");
    assert_eq!((balance_of(alice).await, balance_of(bob).await), (1_000, 400));
    assert_eq!(s.prepaid().await, before - 450 - fee(10_000) - fee(20_000) + 50);

    // A task nobody answers returns its fee and its value after the timeout.
    let (e, _) = paid_record("pay 5", 321).await;
    let before = s.prepaid().await;
    s.net.mine(TIMEOUT).await;
    s.user.return_fees(e).await.unwrap();
    assert_eq!(s.prepaid().await, before + escrow + 321);

    // The recipients withdraw what they were paid like any prepaid balance.
    assert_eq!(
        s.net.deployer.prepaid_balance(alice).await.unwrap()
            + s.net.deployer.prepaid_balance(bob).await.unwrap(),
        1_400
    );
}
