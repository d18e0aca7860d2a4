//! The Ethereum gas of every operation, measured on anvil, and the batching target: a task's
//! receipt in a batch of 64 costs at most a third of a single compute receipt.
//!
//! `cargo test -p enigma-chain --test gas -- --nocapture` prints the table recorded in
//! BENCHMARKS.md.

use crate::common::*;
use alloy::providers::Provider;
use enigma_chain::*;
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, Grains, InputsHash, OutputHash, TaskId,
    keccak256,
    messages::{
        BatchEntry, ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt, batch_digest,
    },
    payouts::Payout,
};

const PX: u64 = 1;
const LIMIT: u64 = 1_000_000;

fn h(label: String) -> [u8; 32] {
    keccak256(label.as_bytes())
}

struct Measured {
    rows: Vec<(String, u64)>,
}

impl Measured {
    fn add(&mut self, what: &str, gas: u64) {
        self.rows.push((what.to_string(), gas));
    }

    fn get(&self, what: &str) -> u64 {
        self.rows.iter().find(|(w, _)| w == what).map(|(_, g)| *g).unwrap()
    }
}

async fn deploy_contract(
    net: &TestNet,
    user: &Chain,
    epoch: &EpochInfo,
    m: &mut Measured,
) -> (ContractAddress, CodeHash, usize) {
    let nonce = user.task_nonce(user.account().unwrap()).await.unwrap();
    let inputs = InputsHash(h("deploy".into()));
    let (id, mined) = user
        .create_deployment_task_record(inputs, LIMIT, PX, epoch.first_block, nonce)
        .await
        .unwrap();
    m.add("createDeploymentTaskRecord", mined.gas_used);
    let contract = ContractAddress::from(id);
    let selected = net.deployer.worker_group(epoch.first_block, &contract).await.unwrap()[0];
    let w = net.worker_of(selected);
    let code_hash = CodeHash(h("code".into()));
    let init = DeltaHash(h("delta 0".into()));
    let digest = DeployReceipt {
        task_id: id,
        inputs_hash: inputs,
        code_hash,
        init_delta_hash: init,
        gas_limit: LIMIT,
        gas_used: 1000,
        eth_call: EthCallRef::default(),
    }
    .digest();
    let mined = net.workers[w]
        .chain
        .commit_deploy(&DeployReceiptTx {
            task_id: id,
            pre_code_hash: code_hash,
            code_hash,
            init_delta_hash: init,
            gas_used: 1000,
            eth_payload: vec![],
            eth_address: Address::ZERO,
            signature: net.workers[w].enclave.sign_digest(&digest),
        })
        .await
        .unwrap();
    m.add("deploySecretContract", mined.gas_used);
    (contract, code_hash, w)
}

#[allow(clippy::too_many_arguments)]
async fn single_compute(
    net: &TestNet,
    user: &Chain,
    epoch: &EpochInfo,
    contract: ContractAddress,
    code_hash: CodeHash,
    w: usize,
    label: &str,
    with_delta: bool,
    money: (u128, &[Payout]),
) -> (u64, u64) {
    let inputs = InputsHash(h(format!("inputs {label}")));
    let nonce = user.task_nonce(user.account().unwrap()).await.unwrap();
    let (id, recorded) = user
        .create_task_record(contract, inputs, LIMIT, PX, epoch.first_block, nonce, money.0)
        .await
        .unwrap();
    let payouts = enigma_types::payouts::encode(money.1);
    let sc = net.deployer.secret_contract(&contract).await.unwrap().unwrap();
    let delta = if with_delta { DeltaHash(h(format!("delta {label}"))) } else { DeltaHash::ZERO };
    let output = OutputHash(h(format!("output {label}")));
    let digest = ComputeReceipt {
        task_id: id,
        contract,
        code_hash,
        inputs_hash: inputs,
        delta_count: sc.delta_count,
        prev_delta_hash: sc.last_delta_hash,
        delta_hash: delta,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: 500,
        eth_call: EthCallRef::default(),
        value: money.0,
        payouts: &payouts,
    }
    .digest();
    let receipt = ComputeReceiptTx {
        contract,
        task_id: id,
        delta_hash: delta,
        output_hash: output,
        gas_used: 500,
        eth_payload: vec![],
        eth_address: Address::ZERO,
        payouts,
        signature: net.workers[w].enclave.sign_digest(&digest),
    };
    (recorded.gas_used, net.workers[w].chain.commit_receipt(&receipt).await.unwrap().gas_used)
}

async fn batch(
    net: &TestNet,
    user: &Chain,
    epoch: &EpochInfo,
    contract: ContractAddress,
    code_hash: CodeHash,
    w: usize,
    n: usize,
) -> (u64, u64) {
    let tasks: Vec<(ContractAddress, InputsHash, u64, u128)> = (0..n)
        .map(|i| (contract, InputsHash(h(format!("batch {n} task {i}"))), LIMIT, 0))
        .collect();
    let nonce = user.task_nonce(user.account().unwrap()).await.unwrap();
    let (ids, records): (Vec<TaskId>, Mined) =
        user.create_task_records(&tasks, PX, epoch.first_block, nonce).await.unwrap();
    let sc = net.deployer.secret_contract(&contract).await.unwrap().unwrap();
    let entries: Vec<BatchEntry> = tasks
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, ((_, inputs, _, _), id))| BatchEntry {
            task_id: *id,
            inputs_hash: *inputs,
            delta_hash: DeltaHash(h(format!("batch {n} delta {i}"))),
            output_hash: OutputHash(h(format!("batch {n} output {i}"))),
            value: 0,
            payouts_hash: enigma_types::payouts::hash(&[]),
            gas_limit: LIMIT,
            gas_used: 500,
            status: 1,
        })
        .collect();
    let signature = net.workers[w].enclave.sign_digest(&batch_digest(
        &contract,
        &code_hash,
        sc.delta_count,
        &sc.last_delta_hash,
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
    let mined = net.workers[w].chain.commit_receipts(contract, &items, &signature).await.unwrap();
    (records.gas_used, mined.gas_used)
}

/// Records `n` tasks of each of `senders` as one record batch per sender, then commits all their
/// receipts (each with a delta when `with_delta`) in one receipt batch: (records, receipts) gas.
#[allow(clippy::too_many_arguments)]
async fn root_batches(
    net: &TestNet,
    senders: &[&Chain],
    epoch: &EpochInfo,
    contract: ContractAddress,
    code_hash: CodeHash,
    w: usize,
    n: usize,
    with_delta: bool,
) -> (u64, u64) {
    let mut records = 0;
    let mut proven = Vec::new();
    for (k, user) in senders.iter().enumerate() {
        let tasks: Vec<(ContractAddress, InputsHash, u64, u128)> = (0..n)
            .map(|i| (contract, InputsHash(h(format!("root {n} sender {k} task {i}"))), LIMIT, 0))
            .collect();
        let nonce = user.task_nonce(user.account().unwrap()).await.unwrap();
        let (batch, mined) =
            user.create_task_batch(&tasks, PX, epoch.first_block, nonce).await.unwrap();
        records += mined.gas_used;
        proven.extend(batch.all_proven());
    }
    let sc = net.deployer.secret_contract(&contract).await.unwrap().unwrap();
    let items: Vec<(ProvenTask, BatchItemTx)> = proven
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let delta = if with_delta {
                DeltaHash(h(format!("root {n} delta {i} of {}", t.task.task_id)))
            } else {
                DeltaHash::ZERO
            };
            let o = BatchItemTx {
                task_id: t.task.task_id,
                delta_hash: delta,
                output_hash: OutputHash(h(format!("root output {}", t.task.task_id))),
                gas_used: 500,
                status: 1,
                payouts: Vec::new(),
            };
            (t, o)
        })
        .collect();
    let entries = batch_entries(&items);
    let signature = net.workers[w].enclave.sign_digest(&batch_digest(
        &contract,
        &code_hash,
        sc.delta_count,
        &sc.last_delta_hash,
        &entries,
    ));
    let mined =
        net.workers[w].chain.commit_batch_receipts(contract, &items, &signature).await.unwrap();
    (records, mined.gas_used)
}

/// A fresh account with ETH and a prepaid ENG balance.
async fn fresh_user(net: &TestNet) -> Chain {
    let key = enigma_crypto::KeyPair::generate().unwrap();
    let _: serde_json::Value = net
        .deployer
        .provider()
        .raw_request(
            "anvil_setBalance".into(),
            (convert::eth(key.address()), "0x56BC75E2D63100000"),
        )
        .await
        .unwrap();
    net.deployer.transfer_token(key.address(), 1_000 * ENG).await.unwrap();
    let user = Chain::connect(&net.url(), Some(&key), net.deployment.enigma, net.deployment.token)
        .await
        .unwrap();
    user.deposit_balance(1_000 * ENG).await.unwrap();
    user
}

#[tokio::test]
#[allow(clippy::print_stdout)]
async fn gas_of_every_operation_and_the_batching_target() {
    let mut m = Measured { rows: Vec::new() };
    let mut net = TestNet::new(1).await;

    // Registration, stake and login of the first worker, measured one by one.
    net.fund(1, 1_000 * ENG).await;
    let chain = net.chain(1).await;
    let enclave = enigma_crypto::KeyPair::generate().unwrap();
    let evidence = net.worker_evidence(&enclave, net.address(1));
    m.add(
        "register (simulation evidence)",
        chain.register(enclave.address().into(), &evidence).await.unwrap().gas_used,
    );
    m.add("deposit (stake)", chain.deposit_stake(1_000 * ENG).await.unwrap().gas_used);
    m.add("login", chain.login().await.unwrap().gas_used);
    net.workers.push(Worker { account: 1, chain, enclave });
    net.add_worker(2, 2_000 * ENG).await;
    net.add_worker(3, 3_000 * ENG).await;

    let epoch = epoch_gas(&net, &mut m, "setWorkersParams (3 workers)").await;
    let user = net.chain(5).await;
    net.fund(5, 1_000_000 * ENG).await;
    m.add(
        "depositBalance (prepaid fees)",
        user.deposit_balance(100_000 * ENG).await.unwrap().gas_used,
    );

    let (contract, code_hash, w) = deploy_contract(&net, &user, &epoch, &mut m).await;
    let (recorded, with_delta) =
        single_compute(&net, &user, &epoch, contract, code_hash, w, "a", true, (0, &[])).await;
    m.add("createTaskRecord", recorded);
    m.add("commitReceipt (with a delta)", with_delta);
    let (_, without) =
        single_compute(&net, &user, &epoch, contract, code_hash, w, "b", false, (0, &[])).await;
    m.add("commitReceipt (no delta)", without);
    // A payable task: its record escrows a value, its receipt pays one fresh account.
    let payout = Payout { to: Address([0x77; 20]), amount: Grains(600) };
    let (recorded, paid) =
        single_compute(&net, &user, &epoch, contract, code_hash, w, "c", true, (1_000, &[payout]))
            .await;
    m.add("createTaskRecord (with a value)", recorded);
    m.add("commitReceipt (a delta, a value, one payout to a new account)", paid);

    let inputs = InputsHash(h("failing".into()));
    let (id, _) = record(&user, contract, inputs, LIMIT, PX, epoch.first_block).await.unwrap();
    let output = OutputHash(h("error".into()));
    let digest = FailureReceipt {
        task_id: id,
        contract,
        inputs_hash: inputs,
        code_hash,
        output_hash: output,
        gas_limit: LIMIT,
        gas_used: 700,
        value: 0,
    }
    .digest();
    m.add(
        "commitTaskFailure",
        net.workers[w]
            .chain
            .commit_failure(contract, id, output, 700, &net.workers[w].enclave.sign_digest(&digest))
            .await
            .unwrap()
            .gas_used,
    );

    for n in [1usize, 16, 64] {
        let (records, receipts) = batch(&net, &user, &epoch, contract, code_hash, w, n).await;
        if n == 16 {
            m.add("createTaskRecords, per task of 16", records / 16);
        }
        m.add(&format!("commitReceipts, per task of {n}"), receipts / n as u64);
    }

    // Record batches (one root per batch) and their proven receipts: all-in gas per task.
    for n in [1usize, 16, 64, 255] {
        let (records, receipts) =
            root_batches(&net, &[&user], &epoch, contract, code_hash, w, n, true).await;
        let n64 = n as u64;
        m.add(&format!("createTaskBatch, per task of {n}"), records / n64);
        m.add(&format!("commitBatchReceipts (deltas), per task of {n}"), receipts / n64);
        m.add(&format!("all-in per task, batches of {n} (deltas)"), (records + receipts) / n64);
    }
    let (records, receipts) =
        root_batches(&net, &[&user], &epoch, contract, code_hash, w, 64, false).await;
    m.add("all-in per task, batches of 64 (no deltas)", (records + receipts) / 64);
    // 16 users' batches of 16 on one contract, committed in one receipt batch of 256: a refund
    // to each sender and a record batch closed per 16 tasks.
    let mut users = Vec::new();
    for _ in 0..16 {
        users.push(fresh_user(&net).await);
    }
    let senders: Vec<&Chain> = users.iter().collect();
    let (records, receipts) =
        root_batches(&net, &senders, &epoch, contract, code_hash, w, 16, true).await;
    m.add(
        "all-in per task, 16 senders' batches of 16, one receipt batch of 256 (deltas)",
        (records + receipts) / 256,
    );
    // The per-task-record path for comparison.
    let per_task =
        m.get("createTaskRecords, per task of 16") + m.get("commitReceipts, per task of 64");
    m.add("all-in per task, per-task records of 16 + receipts of 64 (deltas)", per_task);

    // An epoch over 30 workers.
    for _ in 0..27 {
        net.add_fresh_worker(100 * ENG).await;
    }
    epoch_gas(&net, &mut m, "setWorkersParams (30 workers)").await;

    println!("| operation | Ethereum gas |");
    println!("|---|---|");
    for (what, gas) in &m.rows {
        println!("| {what} | {gas} |");
    }
    let single = m.get("commitReceipt (with a delta)");
    let batched = m.get("commitReceipts, per task of 64");
    println!(
        "\nper task in a batch of 64 / single compute receipt = {batched} / {single} = {:.2}",
        batched as f64 / single as f64
    );
    assert!(
        3 * batched <= single,
        "a task in a batch of 64 ({batched}) must cost at most a third of a single receipt ({single})"
    );
    let all_in = m.get("all-in per task, batches of 64 (deltas)");
    println!("all-in per task with record batches of 64: {all_in} (per-task records: {per_task})");
    assert!(
        all_in <= 20_000,
        "issue 17's goal: a task recorded in a batch of 64 and committed in a receipt batch of 64, \
         each with a fresh delta, costs at most 20,000 gas all in (got {all_in})"
    );
}

async fn epoch_gas(net: &TestNet, m: &mut Measured, label: &str) -> EpochInfo {
    let next = net.deployer.next_epoch_block().await.unwrap();
    let now = net.deployer.block_number().await.unwrap();
    if next > now + 1 {
        net.mine(next - now - 1).await;
    }
    let snapshot = net.deployer.block_number().await.unwrap();
    let (workers, stakes) = net.deployer.active_workers(snapshot).await.unwrap();
    let nonce = net.deployer.epoch_count().await.unwrap();
    let seed = keccak256(label.as_bytes());
    let mined = net
        .deployer
        .set_workers_params(
            snapshot,
            seed,
            &net.sign_epoch(seed, nonce, snapshot, &workers, &stakes),
        )
        .await
        .unwrap();
    m.add(label, mined.gas_used);
    net.deployer.current_epoch().await.unwrap().unwrap()
}
