//! A contract carried through many epochs and across workers, on loopback with real anvil, a KM
//! and four workers (each its own store, p2p port, gateway and enclave), with small epochs:
//! every task's result is checked against a reference execution of the same task sequence, a
//! worker is killed with receipts pending and restarted, the KM is restarted, a new worker joins,
//! syncs the contract's whole history and serves it, and at the end every task of the run is
//! accounted for on chain (verified, failed or refunded).

#![allow(
    clippy::print_stderr,
    reason = "the test reports what it saw, for whoever reads a failure"
)]

use std::{collections::HashSet, path::PathBuf, sync::OnceLock, time::Duration};

use crate::common;
use crate::support;
use alloy::providers::Provider as _;
use alloy_primitives::U256;
use alloy_sol_types::SolValue;
use enigma_chain::{Chain, TaskStatus};
use enigma_client::{Client, ClientConfig, ClientError, QueryOptions};
use enigma_crypto::KeyPair;

use enigma_node::*;
use enigma_p2p::{SyncRequest, SyncResponse};
use enigma_runtime::{ContractCode, ContractState, Limits, Runtime, Task};
use enigma_types::{ContractAddress, DeltaHash, GasLimit, SignerAddress, TaskId};

const ENG: u128 = 100_000_000;
const GAS: u64 = 5_000_000;
const EPOCH_BLOCKS: u64 = 20;
const TIMEOUT_BLOCKS: u64 = 60;

fn ledger() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_contract_build::BuildOptions::examples(&root);
        let built = enigma_contract_build::build(&options).unwrap();
        std::fs::read(&enigma_contract_build::find(&built, "ledger").unwrap().wasm).unwrap()
    })
    .clone()
}

fn key(anvil: &alloy::node_bindings::AnvilInstance, i: usize) -> KeyPair {
    KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap()
}

/// The same task sequence run directly on the runtime: what the contract's state must be.
struct Reference {
    runtime: Runtime,
    wasm: Vec<u8>,
    state: ContractState,
}

struct NoRandomness;

impl enigma_runtime::Randomness for NoRandomness {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }

    fn fill_iv(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
}

impl Reference {
    fn deploy(wasm: Vec<u8>) -> Self {
        let mut r =
            Self { runtime: Runtime::new(Limits::default()), wasm, state: ContractState::new() };
        let outcome = r.run(Task::deploy("construct()", &[], GasLimit(GAS)));
        r.apply(&outcome.result.unwrap().delta);
        r
    }

    fn run(&mut self, task: Task<'_>) -> enigma_runtime::Outcome {
        let code = ContractCode::new(&self.wasm);
        self.runtime.execute(&code, task, &self.state, &mut NoRandomness)
    }

    fn apply(&mut self, delta: &enigma_types::delta::Delta) {
        if !delta.is_empty() {
            let hash = DeltaHash(enigma_types::keccak256(delta.encode()));
            self.state.apply(delta, hash).unwrap();
        }
    }

    /// Records `amount`: the output on success, the error text on failure.
    fn record(&mut self, amount: u64) -> Result<Vec<u8>, String> {
        let args = (U256::from(amount),).abi_encode_params();
        let task = Task::call("record(uint256)", &args, GasLimit(GAS)).after(&self.state);
        let outcome = self.run(task);
        match outcome.result {
            Ok(s) => {
                self.apply(&s.delta);
                Ok(s.output)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

struct Net {
    /// The chain, the attestation service, the KM's data directory.
    base: common::ChainBase,
    enigma: enigma_types::Address,
    token: enigma_types::Address,
    km: Option<KmNode>,
    km_addr: std::net::SocketAddr,
    workers: Vec<Option<WorkerNode>>,
    dirs: Vec<tempfile::TempDir>,
    /// Workers keeping each contract (`WorkerConfig::replicas`).
    replicas: Option<u32>,
}

impl Net {
    async fn start() -> Self {
        Self::start_with(1).await
    }

    /// Three workers, in epochs that select `group_size` of them per contract.
    async fn start_with(group_size: u64) -> Self {
        Self::start_replicated(group_size, None).await
    }

    /// Three workers, in epochs that select `group_size` of them per contract, each contract
    /// kept by `replicas` of them.
    async fn start_replicated(group_size: u64, replicas: Option<u32>) -> Self {
        let base = common::chain_base_with(EPOCH_BLOCKS, TIMEOUT_BLOCKS, group_size).await;
        let d = base.deployment;
        let mut net = Self {
            km: None,
            km_addr: "127.0.0.1:0".parse().unwrap(),
            enigma: d.enigma,
            token: d.token,
            base,
            workers: Vec::new(),
            dirs: Vec::new(),
            replicas,
        };
        net.start_km().await;
        for i in 0..3 {
            net.add_worker(i, 1_000 * ENG).await;
        }
        net.next_epoch_with(3).await;
        net
    }

    async fn start_km(&mut self) {
        let km = common::start_base_km(&self.base, self.km_addr, Duration::from_millis(100)).await;
        self.km_addr = km.rpc_addr;
        self.km = Some(km);
    }

    fn worker_config(&self, i: usize, stake: u128) -> WorkerConfig {
        let mut config = WorkerConfig::devnet(
            self.dirs[i].path().to_path_buf(),
            self.base.url.clone(),
            self.enigma,
            self.token,
            key(&self.base.anvil, 1 + i),
            format!("http://{}", self.km_addr),
        );
        config.attestation_url = Some(self.base.attestation.url.clone());
        config.simulation_authority = self.base.attestation.authority;
        config.stake = Some(stake);
        config.batch_size = 8;
        config.batch_wait = Duration::from_millis(1_500);
        config.poll_interval = Duration::from_millis(100);
        config.handover_wait = Duration::from_secs(5);
        // Every hand-over loads the contract's state into the new holder's enclave in parts
        // of 2 deltas, as a contract of more than 10,000 deltas is loaded.
        config.load_chunk_deltas = 2;
        config.gateway_listen = Some("127.0.0.1:0".parse().unwrap());
        config.replicas = self.replicas;
        config.bootstrap =
            self.workers.iter().flatten().next().map(|w| w.p2p_addrs.clone()).unwrap_or_default();
        config
    }

    async fn add_worker(&mut self, i: usize, stake: u128) {
        self.base
            .chain
            .transfer_token(key(&self.base.anvil, 1 + i).address(), 10 * stake)
            .await
            .unwrap();
        self.dirs.push(tempfile::tempdir().unwrap());
        let node = start_worker(self.worker_config(i, stake)).await.unwrap();
        self.workers.push(Some(node));
    }

    /// Mines up to the next epoch and waits until the KM has started one with `workers` workers.
    async fn next_epoch_with(&self, workers: usize) -> u64 {
        let before = self.base.chain.epoch_count().await.unwrap();
        let next = self.base.chain.next_epoch_block().await.unwrap();
        let now = self.base.chain.block_number().await.unwrap();
        if next > now {
            let _: serde_json::Value = self
                .base
                .chain
                .provider()
                .raw_request("anvil_mine".into(), (next - now,))
                .await
                .unwrap();
        }
        for _ in 0..300 {
            if let Ok(Some(e)) = self.base.chain.current_epoch().await
                && e.nonce >= before
                && e.workers.len() == workers
            {
                return e.first_block;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no epoch with {workers} workers started");
    }

    fn gateway(&self, avoid: Option<usize>) -> String {
        let (_, w) = self
            .workers
            .iter()
            .enumerate()
            .find(|(i, w)| w.is_some() && Some(*i) != avoid)
            .unwrap();
        format!("http://{}", w.as_ref().unwrap().gateway_addr.unwrap())
    }

    async fn client(&self, user: &KeyPair, gateway: String) -> Client {
        Client::connect(ClientConfig {
            gateway_url: gateway,
            chain_url: self.base.url.clone(),
            enigma: self.enigma,
            token: self.token,
            account: KeyPair::from_bytes(&user.secret_bytes()).unwrap(),
            gas_px: 1,
            policy: devnet_policy(self.base.attestation.authority),
            result_timeout: Duration::from_secs(30),
        })
        .await
        .unwrap()
    }

    /// Asks worker `i` over `/enigma/sync/1` where it stands on `contract`: (epoch, deltas held).
    async fn status(&self, i: usize, contract: ContractAddress) -> Option<(u64, u64)> {
        let w = self.workers[i].as_ref()?;
        let (probe, _events) = enigma_p2p::spawn(enigma_p2p::Config {
            bootstrap: w.p2p_addrs.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut answer = None;
        for _ in 0..50 {
            match probe.send_sync(w.peer_id, &SyncRequest::Status { contract }).await {
                Ok(SyncResponse::Status { epoch, next_index, .. }) => {
                    answer = Some((epoch, next_index));
                    break;
                }
                Ok(SyncResponse::Unavailable(_)) => {
                    answer = Some((0, 0));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        probe.shutdown().await;
        answer
    }

    /// Waits until every running worker holds all of `contract`'s deltas on chain.
    async fn replicated(&self, contract: ContractAddress) {
        let count = self.base.chain.secret_contract(&contract).await.unwrap().unwrap().delta_count;
        for i in 0..self.workers.len() {
            for attempt in 0.. {
                assert!(attempt < 200, "worker {i} never replicated the contract");
                match self.status(i, contract).await {
                    Some((_, held)) if held < count => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => break,
                }
            }
        }
    }

    /// Waits until worker `i` has seen the epoch starting at `first_block`.
    async fn noticed(&self, i: usize, contract: ContractAddress, first_block: u64) {
        for _ in 0..200 {
            if self.status(i, contract).await.is_some_and(|(e, _)| e >= first_block) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("worker {i} never saw the epoch starting at block {first_block}");
    }

    fn index_of(&self, signer: SignerAddress) -> Option<usize> {
        self.workers.iter().position(|w| w.as_ref().is_some_and(|w| w.signer == signer))
    }

    async fn holder(&self, contract: &ContractAddress) -> SignerAddress {
        let epoch = self.base.chain.current_epoch().await.unwrap().unwrap();
        enigma_types::selection::select_worker(&epoch.seed, contract, &epoch.workers, &epoch.stakes)
            .unwrap()
    }
}

/// What the test saw of every task it sent.
#[derive(Default)]
struct Ledger {
    verified: Vec<TaskId>,
    /// The amount each verified task recorded, in order.
    amounts: Vec<u64>,
    failed: Vec<TaskId>,
    unexecuted: Vec<TaskId>,
    workers: HashSet<SignerAddress>,
    epochs: HashSet<u64>,
}

impl Ledger {
    /// Sends `record(amount)` and checks the answer against the reference.
    async fn record(
        &mut self,
        client: &Client,
        reference: &mut Reference,
        contract: ContractAddress,
        amount: u64,
    ) {
        let args = (U256::from(amount),).abi_encode_params();
        let got = client.compute(contract, "record(uint256)", &args, GAS).await;
        match got {
            Ok(outcome) => {
                let want = reference.record(amount).expect("the reference succeeds too");
                assert_eq!(
                    outcome.output, want,
                    "task {} (amount {amount}) answers as the reference does",
                    outcome.task_id
                );
                self.verified.push(outcome.task_id);
                self.amounts.push(amount);
                self.workers.insert(outcome.worker);
            }
            Err(ClientError::TaskFailed { task_id, message, .. }) => {
                let want = reference.record(amount).expect_err("the reference fails too");
                assert!(message.contains("an entry must be positive"), "{message} / {want}");
                self.failed.push(task_id);
            }
            Err(ClientError::NotExecuted { task_id, reason }) => {
                eprintln!("task {task_id} not executed: {reason}");
                self.unexecuted.push(task_id);
            }
            Err(e) => panic!("task of amount {amount}: {e}"),
        }
    }

    /// Tasks whose results were delivered but whose receipts will never land: they end refunded,
    /// and the reference is rebuilt without them.
    fn lose(&mut self, lost: &[TaskId], reference: &mut Reference) {
        let mut kept = (Vec::new(), Vec::new());
        for (id, amount) in self.verified.iter().zip(&self.amounts) {
            if lost.contains(id) {
                self.unexecuted.push(*id);
            } else {
                kept.0.push(*id);
                kept.1.push(*amount);
            }
        }
        (self.verified, self.amounts) = kept;
        *reference = Reference::deploy(ledger());
        for amount in &self.amounts {
            reference.record(*amount).unwrap();
        }
    }

    fn total(&self) -> usize {
        self.verified.len() + self.failed.len() + self.unexecuted.len()
    }
}

async fn settled(chain: &Chain, ids: &[TaskId]) {
    for _ in 0..300 {
        let mut open = 0;
        for id in ids {
            if chain.task(id).await.unwrap().is_none_or(|r| r.status == TaskStatus::Created) {
                open += 1;
            }
        }
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("receipts did not land");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_moves_across_epochs_and_workers_without_losing_a_delta_or_a_task() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut net = Net::start().await;
    let user = key(&net.base.anvil, 8);
    net.base.chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    let client = net.client(&user, net.gateway(None)).await;
    client.deposit(5_000 * ENG).await.unwrap();
    let deployed = client.deploy(&ledger(), "construct()", &[], GAS).await.unwrap();
    let contract = deployed.contract;
    let mut reference = Reference::deploy(ledger());
    let mut seen = Ledger::default();
    let mut amount = 0u64;
    let mut next_amount = || {
        amount += 1;
        // Every 17th entry is zero, which the contract refuses: a failed task.
        if amount.is_multiple_of(17) { 0 } else { amount }
    };

    // 1. Tasks through several epochs until the contract has moved between workers.
    while seen.total() < 220 || seen.workers.len() < 2 {
        assert!(seen.total() < 400, "the contract never moved to another worker");
        let epoch = net.base.chain.current_epoch().await.unwrap().unwrap().first_block;
        seen.epochs.insert(epoch);
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    assert!(seen.epochs.len() >= 3, "the run spans several epochs: {:?}", seen.epochs);

    // 2. In a fresh epoch, kill the worker that holds the contract right after a few tasks
    //    (receipts pending), and restart it from its store within the same epoch.
    let epoch_at_kill = net.next_epoch_with(3).await;
    let holder = net.index_of(net.holder(&contract).await).unwrap();
    let client = net.client(&user, net.gateway(Some(holder))).await;
    let before_kill = seen.verified.len();
    for _ in 0..4 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    net.workers[holder].take().unwrap().stop().await;
    let mut open_at_kill = 0;
    for id in &seen.verified[before_kill..] {
        if net.base.chain.task(id).await.unwrap().unwrap().status == TaskStatus::Created {
            open_at_kill += 1;
        }
    }
    eprintln!("killed worker {holder} with {open_at_kill} receipts pending");
    // While it is down, its tasks cannot run: recorded, refused, refundable.
    let refused = seen.unexecuted.len();
    seen.record(&client, &mut reference, contract, next_amount()).await;
    assert_eq!(seen.unexecuted.len(), refused + 1, "a task for a stopped worker is not executed");
    let config = net.worker_config(holder, 1_000 * ENG);
    net.workers[holder] = Some(start_worker(config).await.unwrap());
    // The restarted worker commits what it had pending, and serves from its store.
    settled(&net.base.chain, &seen.verified[before_kill..]).await;
    for _ in 0..3 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    assert_eq!(
        net.base.chain.current_epoch().await.unwrap().unwrap().first_block,
        epoch_at_kill,
        "the kill and restart happened within one epoch"
    );
    assert!(seen.workers.contains(&net.workers[holder].as_ref().unwrap().signer));

    // 3. Kill the holder again with receipts pending, and let the epoch move the contract while
    //    it is down: the next holder cannot reach it and takes over from the chain's state (synced
    //    from the replicas). The tasks the dead worker ran but never committed are lost to the
    //    chain: its receipts no longer fit when it returns, it drops them (they are refunded) and
    //    its local copy, which left the chain, is cut back and synced.
    net.next_epoch_with(3).await;
    // Every deployed delta is replicated before the holder goes down with more.
    let everything: Vec<TaskId> = seen.verified.iter().chain(&seen.failed).copied().collect();
    settled(&net.base.chain, &everything).await;
    net.replicated(contract).await;
    let dead_signer = net.holder(&contract).await;
    let holder = net.index_of(dead_signer).unwrap();
    // A receipt committed in the last second before the crash reaches the chain before any
    // replica has pulled its delta (replicas follow the chain), and then only the dead holder can
    // supply it. To kill it with every receipt of the next tasks still pending, restart it first
    // with a batch it never flushes on its own.
    net.workers[holder].take().unwrap().stop().await;
    let mut config = net.worker_config(holder, 1_000 * ENG);
    config.batch_wait = Duration::from_secs(3_600);
    net.workers[holder] = Some(start_worker(config).await.unwrap());
    let client = net.client(&user, net.gateway(Some(holder))).await;
    let before_kill = seen.verified.len();
    for _ in 0..3 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    net.workers[holder].take().unwrap().stop().await;
    let mut lost = Vec::new();
    for id in &seen.verified[before_kill..] {
        if net.base.chain.task(id).await.unwrap().unwrap().status == TaskStatus::Created {
            lost.push(*id);
        }
    }
    eprintln!("killed worker {holder} again, {} receipts will never land", lost.len());
    seen.lose(&lost, &mut reference);
    let dead = holder;
    let mut turns = 0;
    while net.holder(&contract).await == dead_signer {
        turns += 1;
        assert!(turns < 30, "the contract never changed hands");
        net.next_epoch_with(3).await;
    }
    let before_takeover = seen.verified.len();
    let client = net.client(&user, net.gateway(Some(dead))).await;
    for _ in 0..6 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    assert!(seen.verified.len() > before_takeover, "the next holder took over from the chain");
    settled(&net.base.chain, &seen.verified[before_takeover..]).await;
    let config = net.worker_config(dead, 1_000 * ENG);
    net.workers[dead] = Some(start_worker(config).await.unwrap());
    // When the contract comes back to it, it answers from a copy equal to the chain's.
    let mut turns = 0;
    while net.holder(&contract).await != dead_signer {
        turns += 1;
        assert!(turns < 40, "the contract never came back");
        net.next_epoch_with(3).await;
    }
    let back = seen.verified.len();
    let client = net.client(&user, net.gateway(None)).await;
    for _ in 0..4 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    assert!(seen.verified.len() > back, "the returning worker serves the contract again");

    // 4. A task recorded in one epoch and sent only after the epoch moved the contract to
    //    another worker is refused unexecuted; its fee comes back after the timeout.
    let late = next_amount();
    let recorded = client
        .record_compute(contract, "record(uint256)", &(U256::from(late),).abi_encode_params(), GAS)
        .await
        .unwrap();
    let mut turns = 0;
    let mut epoch = 0;
    while net.holder(&contract).await == recorded.worker() {
        turns += 1;
        assert!(turns < 30, "the contract never changed hands");
        epoch = net.next_epoch_with(3).await;
    }
    // Sent once the worker it was recorded for knows its epoch is over.
    net.noticed(net.index_of(recorded.worker()).unwrap(), contract, epoch).await;
    let id = recorded.id();
    match client.send(recorded).await {
        Err(ClientError::NotExecuted { task_id, reason }) => {
            assert_eq!(task_id, id);
            assert!(reason.contains("ended before it ran"), "{reason}");
            seen.unexecuted.push(id);
        }
        other => panic!("a task of an ended epoch was not refused: {other:?}"),
    }

    // 5. Restart the KM: the next epochs and state keys come from the same master secret.
    net.km.take().unwrap().stop().await;
    net.start_km().await;

    // 6. A new worker with a large stake joins; it syncs the contract's whole history from its
    //    peers and serves it.
    net.add_worker(3, 30_000 * ENG).await;
    let newcomer = net.workers[3].as_ref().unwrap().signer;
    net.next_epoch_with(4).await;
    let client = net.client(&user, net.gateway(None)).await;
    let mut rounds = 0;
    while !seen.workers.contains(&newcomer) {
        rounds += 1;
        assert!(rounds < 200, "the new worker never served the contract");
        if rounds % 20 == 0 && net.holder(&contract).await != newcomer {
            net.next_epoch_with(4).await;
        }
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }
    for _ in 0..20 {
        seen.record(&client, &mut reference, contract, next_amount()).await;
    }

    // 7. A peer that copied the contract's history (verified against the chain) and serves it
    //    tampered is caught: a fresh node syncing from it and an honest worker gets every delta
    //    right, and the tamperer is penalized.
    let everything: Vec<TaskId> = seen.verified.iter().chain(&seen.failed).copied().collect();
    settled(&net.base.chain, &everything).await;
    net.replicated(contract).await;
    let chain = std::sync::Arc::new(net.base.chain.clone());
    let honest: Vec<_> = net.workers.iter().flatten().map(|w| w.peer_id).collect();
    let bootstrap: Vec<_> =
        net.workers.iter().flatten().flat_map(|w| w.p2p_addrs.clone()).collect();
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = enigma_store::Store::open(copy_dir.path().join("copy.redb")).unwrap();
    let copier = support::receiver(std::slice::from_ref(&bootstrap)).await;
    let copied =
        sync::sync_contract(&copier, &copy, &*chain, &sync::Verified::default(), contract, &honest)
            .await
            .unwrap();
    let on_chain = net.base.chain.secret_contract(&contract).await.unwrap().unwrap();
    assert_eq!(
        copied.next_index, on_chain.delta_count,
        "a plain copy from the workers is complete"
    );
    copier.shutdown().await;
    let (_tamperer, tamperer_addrs) =
        support::provider(copy, chain.clone(), true, bootstrap.clone()).await;
    let tamperer = support::peer_of(&tamperer_addrs);
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = enigma_store::Store::open(fresh_dir.path().join("fresh.redb")).unwrap();
    let me = support::receiver(&[tamperer_addrs, bootstrap]).await;
    let mut providers = vec![tamperer];
    providers.extend(&honest);
    let report =
        sync::sync_contract(&me, &fresh, &*chain, &sync::Verified::default(), contract, &providers)
            .await
            .unwrap();
    assert_eq!(report.rejected, vec![tamperer]);
    assert_eq!(report.next_index, on_chain.delta_count);
    let hashes = net.base.chain.delta_hashes(&contract, 0, on_chain.delta_count).await.unwrap();
    let stored = fresh.deltas(&contract, 0, on_chain.delta_count, usize::MAX).unwrap();
    assert_eq!(stored.len() as u64, on_chain.delta_count);
    for ((i, d), h) in stored.iter().zip(&hashes) {
        assert_eq!(enigma_types::delta_hash(d), *h, "delta {i}");
    }
    me.shutdown().await;

    // 8. Everything settles: receipts land, and after the timeout unexecuted tasks are refunded.
    let mut finished: Vec<TaskId> = seen.verified.clone();
    finished.extend(&seen.failed);
    settled(&net.base.chain, &finished).await;
    let _: serde_json::Value = net
        .base
        .chain
        .provider()
        .raw_request("anvil_mine".into(), (TIMEOUT_BLOCKS + 1,))
        .await
        .unwrap();
    for id in &seen.unexecuted {
        net.base.chain.return_fees(*id).await.unwrap();
    }
    let (mut verified, mut failed, mut refunded) = (0, 0, 0);
    for id in seen.verified.iter().chain(&seen.failed).chain(&seen.unexecuted) {
        match net.base.chain.task(id).await.unwrap().unwrap().status {
            TaskStatus::Verified => verified += 1,
            TaskStatus::Failed => failed += 1,
            TaskStatus::FailedReturn => refunded += 1,
            other => panic!("task {id} ended {other:?}"),
        }
    }
    assert_eq!(
        (verified, failed, refunded),
        (seen.verified.len(), seen.failed.len(), seen.unexecuted.len()),
        "the chain agrees with what every task's sender saw"
    );
    // Every successful record appended one delta after the deployment's.
    let on_chain = net.base.chain.secret_contract(&contract).await.unwrap().unwrap();
    assert_eq!(on_chain.delta_count, 1 + seen.verified.len() as u64);
    assert_eq!(on_chain.delta_count, reference.state.next_index());
    eprintln!(
        "{} tasks: {verified} verified, {failed} failed, {refunded} refunded, over {} epochs and {} workers",
        seen.total(),
        seen.epochs.len(),
        seen.workers.len()
    );
    for w in net.workers.into_iter().flatten() {
        w.stop().await;
    }
    if let Some(km) = net.km.take() {
        km.stop().await;
    }
}

/// A replica (a worker of the contract's group, which the key manager gives the state key, and
/// which syncs the contract's deltas like every worker) answers queries from its synced state
/// like the holder does, signed by its own enclave. Cut off from its peers while the contract
/// moves on, it refuses the chain's state itself (it lacks deltas), and the client refuses its
/// own older state as stale; back among its peers it catches up and answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_queries_from_synced_state_and_a_stale_one_is_refused() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut net = Net::start_with(2).await;
    let user = key(&net.base.anvil, 8);
    net.base.chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    let setup = net.client(&user, net.gateway(None)).await;
    setup.deposit(5_000 * ENG).await.unwrap();
    let contract = setup.deploy(&ledger(), "construct()", &[], GAS).await.unwrap().contract;
    // All of it in one fresh epoch (the group is the epoch's).
    let epoch_block = net.next_epoch_with(3).await;
    let epoch = net.base.chain.current_epoch().await.unwrap().unwrap();
    let group = enigma_types::selection::select_workers(
        &epoch.seed,
        &contract,
        &epoch.workers,
        &epoch.stakes,
        2,
    );
    let (holder, replica) = (net.index_of(group[0]).unwrap(), net.index_of(group[1]).unwrap());
    let replica_signer = group[1];
    let ask_replica =
        |latest| QueryOptions { worker: Some(replica_signer), latest, ..QueryOptions::default() };
    let client = net.client(&user, net.gateway(Some(replica))).await;
    let mut reference = Reference::deploy(ledger());
    let mut seen = Ledger::default();
    for amount in 1..=3 {
        seen.record(&client, &mut reference, contract, amount).await;
    }
    assert_eq!(seen.verified.len(), 3, "{:?}", seen.unexecuted);
    settled(&net.base.chain, &seen.verified).await;
    net.replicated(contract).await;

    let from_holder = client.query(contract, "summary()", &[]).await.unwrap();
    let from_replica =
        client.query_with(contract, "summary()", &[], &ask_replica(false)).await.unwrap();
    assert_eq!(from_holder.worker, group[0]);
    assert_eq!(from_replica.worker, replica_signer);
    assert_eq!(from_replica.output, from_holder.output, "the replica answers from synced state");
    assert_eq!(from_replica.delta_count, reference.state.next_index());

    // Cut off: restarted with no peers to find (and on a new port nobody knows).
    net.workers[replica].take().unwrap().stop().await;
    let mut isolated = net.worker_config(replica, 1_000 * ENG);
    isolated.bootstrap = Vec::new();
    net.workers[replica] = Some(start_worker(isolated).await.unwrap());
    for amount in 4..=5 {
        seen.record(&client, &mut reference, contract, amount).await;
    }
    assert_eq!(seen.verified.len(), 5, "{:?}", seen.unexecuted);
    settled(&net.base.chain, &seen.verified).await;
    let replica_gateway =
        format!("http://{}", net.workers[replica].as_ref().unwrap().gateway_addr.unwrap());
    let direct = net.client(&user, replica_gateway).await;
    let behind = direct.query_with(contract, "summary()", &[], &ask_replica(false)).await;
    assert!(format!("{behind:?}").contains("deltas yet"), "{behind:?}");
    let stale = direct.query_with(contract, "summary()", &[], &ask_replica(true)).await;
    assert!(
        matches!(&stale, Err(ClientError::BadResult(why)) if why.contains("a stale state")),
        "{stale:?}"
    );

    // Back among its peers.
    net.workers[replica].take().unwrap().stop().await;
    let config = net.worker_config(replica, 1_000 * ENG);
    net.workers[replica] = Some(start_worker(config).await.unwrap());
    net.replicated(contract).await;
    // Its peers learn its new address from its next announcement: until then a query routed to
    // it cannot be delivered (and says so).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let caught_up = loop {
        match client.query_with(contract, "summary()", &[], &ask_replica(false)).await {
            Err(ClientError::Gateway(why))
                if why.contains("dial") && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(caught_up.delta_count, reference.state.next_index());
    assert_eq!(caught_up.output, client.query(contract, "summary()", &[]).await.unwrap().output);
    assert_eq!(
        net.base.chain.current_epoch().await.unwrap().unwrap().first_block,
        epoch_block,
        "it all happened within one epoch (one group)"
    );
    let _ = holder;
}

/// With one keeper per contract, only the worker selected for a contract keeps its state up to
/// date — the others do not follow its deltas — and when an epoch selects another worker, that
/// one takes the state over from the previous holder (nobody else has it) and answers right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_keeper_only_the_holder_follows_a_contract_and_the_next_takes_it_over() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = Net::start_replicated(1, Some(1)).await;
    let user = key(&net.base.anvil, 8);
    net.base.chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    let client = net.client(&user, net.gateway(None)).await;
    client.deposit(5_000 * ENG).await.unwrap();
    let contract = client.deploy(&ledger(), "construct()", &[], GAS).await.unwrap().contract;
    net.next_epoch_with(3).await;
    let first = net.index_of(net.holder(&contract).await).unwrap();
    let mut reference = Reference::deploy(ledger());
    let mut seen = Ledger::default();
    for amount in 1..=3 {
        seen.record(&client, &mut reference, contract, amount).await;
    }
    assert_eq!(seen.verified.len(), 3, "{:?}", seen.unexecuted);
    settled(&net.base.chain, &seen.verified).await;
    let count = net.base.chain.secret_contract(&contract).await.unwrap().unwrap().delta_count;
    assert_eq!(count, 4);
    assert_eq!(net.status(first, contract).await.map(|s| s.1), Some(count));
    // Replication runs once a second after the chain moves: three rounds pass, and the other
    // workers still hold at most delta 0 (the deployment's executor and the keeper of the
    // deployment's epoch keep that one).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in (0..3).filter(|&i| i != first) {
        let held = net.status(i, contract).await.unwrap().1;
        assert!(held <= 1, "worker {i}, not a keeper, followed the contract to {held} deltas");
    }

    // Epochs until another worker is selected: it can only take the state from the first.
    let mut next = first;
    for _ in 0..12 {
        net.next_epoch_with(3).await;
        next = net.index_of(net.holder(&contract).await).unwrap();
        if next != first {
            break;
        }
    }
    assert_ne!(next, first, "twelve epochs never moved the contract");
    seen.record(&client, &mut reference, contract, 4).await;
    assert_eq!(
        seen.verified.len(),
        4,
        "the new holder ran on the whole state: {:?}",
        seen.unexecuted
    );
    assert!(seen.workers.contains(&net.workers[next].as_ref().unwrap().signer));
    settled(&net.base.chain, &seen.verified).await;
    assert_eq!(net.status(next, contract).await.map(|s| s.1), Some(count + 1));
}

/// A worker stopped with the receipts of batch-recorded tasks pending commits them once it
/// starts again: each pending receipt kept its task's proof (the tasks have no record of their
/// own, and a receipt without the proof could never land).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_commits_receipts_of_batch_tasks_with_the_proofs_it_kept() {
    let mut net = Net::start().await;
    let user = key(&net.base.anvil, 8);
    net.base.chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    let setup = net.client(&user, net.gateway(None)).await;
    setup.deposit(5_000 * ENG).await.unwrap();
    let contract = setup.deploy(&ledger(), "construct()", &[], GAS).await.unwrap().contract;
    net.next_epoch_with(3).await;
    let holder = net.index_of(net.holder(&contract).await).unwrap();
    // The holder again, holding its receipts until stopped.
    net.workers[holder].take().unwrap().stop().await;
    let mut patient = net.worker_config(holder, 1_000 * ENG);
    patient.batch_wait = Duration::from_secs(600);
    net.workers[holder] = Some(start_worker(patient).await.unwrap());
    let client = net.client(&user, net.gateway(Some(holder))).await;
    let amount = |n: u64| (U256::from(n),).abi_encode_params();
    let (one, two, three) = (amount(1), amount(2), amount(3));
    let recorded = loop {
        // The restarted holder's key reaches the gateway with its next announcement.
        match client
            .record_many(&[
                (contract, "record(uint256)", &one, GAS),
                (contract, "record(uint256)", &two, GAS),
                (contract, "record(uint256)", &three, GAS),
            ])
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                eprintln!("recording: {e}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let ids: Vec<TaskId> = recorded.iter().map(|t| t.id()).collect();
    let mut handles = Vec::new();
    for t in recorded {
        handles.push(client.send(t).await.unwrap());
    }
    for h in handles {
        h.result().await.unwrap();
    }
    net.workers[holder].take().unwrap().stop().await;
    for id in &ids {
        let r = client.chain().task(id).await.unwrap().unwrap();
        assert_eq!(r.status, TaskStatus::Created, "receipts were pending when it stopped");
    }
    let config = net.worker_config(holder, 1_000 * ENG);
    net.workers[holder] = Some(start_worker(config).await.unwrap());
    settled(client.chain(), &ids).await;
    for id in &ids {
        assert_eq!(client.chain().task(id).await.unwrap().unwrap().status, TaskStatus::Verified);
    }
}
