//! A chain that replaces its latest blocks (anvil_reorg): a worker following the chain two
//! blocks deep has a task's receipt taken out of the chain with the block that held it, notices,
//! and commits it again — the task is neither lost nor committed twice — and the client waiting
//! on it sees it confirmed. And a task waiting for its record's depth longer than the worker's
//! answer window is answered "accepted" at once, its result following.

use crate::common::*;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use alloy::providers::Provider as _;
use alloy_primitives::Address as AlloyAddress;
use alloy_sol_types::SolValue;
use enigma_chain::TaskStatus;
use enigma_client::{Client, ClientConfig};
use enigma_node::*;

const ENG: u128 = 100_000_000;
const GAS: u64 = 50_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorged_receipt_is_committed_again_once_and_a_task_waiting_for_depth_is_answered_at_once()
 {
    let Base {
        base: ChainBase { anvil, url, chain, deployment: d, attestation, km_dir: _km_dir },
        km: _km,
    } = base(1_000, 5_000).await;
    // Blocks keep coming (a chain that is not a devnet's), except while the test holds them.
    let mining = Arc::new(AtomicBool::new(true));
    let miner = {
        let (chain, mining) = (chain.clone(), mining.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if mining.load(Ordering::SeqCst) {
                    let _: Result<serde_json::Value, _> =
                        chain.provider().raw_request("anvil_mine".into(), (1u64,)).await;
                }
            }
        })
    };

    let dir = tempfile::tempdir().unwrap();
    chain.transfer_token(key(&anvil, 1).address(), 10_000 * ENG).await.unwrap();
    let mut config = WorkerConfig::devnet(
        dir.path().to_path_buf(),
        url.clone(),
        d.enigma,
        d.token,
        key(&anvil, 1),
        format!("http://{}", _km.rpc_addr),
    );
    config.attestation_url = Some(attestation.url.clone());
    config.simulation_authority = attestation.authority;
    config.stake = Some(1_000 * ENG);
    config.gateway_listen = Some("127.0.0.1:0".parse().unwrap());
    config.confirmations = Some(2);
    config.batch_size = 1;
    config.answer_within = Duration::from_secs(1);
    config.poll_interval = Duration::from_millis(100);
    let worker = start_worker(config).await.unwrap();
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (1_000u64,)).await.unwrap();
    eventually("an epoch with the worker", || async {
        chain.current_epoch().await.ok().flatten().filter(|e| e.workers.len() == 1).map(|_| ())
    })
    .await;

    let user = key(&anvil, 4);
    chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    let client = Client::connect(ClientConfig {
        gateway_url: format!("http://{}", worker.gateway_addr.unwrap()),
        chain_url: url.clone(),
        enigma: d.enigma,
        token: d.token,
        account: user,
        gas_px: 1,
        policy: devnet_policy(attestation.authority),
        result_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap();
    client.deposit(1_000 * ENG).await.unwrap();
    let contract = client.deploy(&millionaires(), "construct()", &[], GAS).await.unwrap().contract;
    for (who, worth) in [(1u8, 10u64), (2, 30)] {
        let done = client
            .compute(contract, "add_millionaire(address,uint256)", &add(who, worth), GAS)
            .await
            .unwrap();
        client.wait_final(done.task_id).await.unwrap();
    }

    // The test holds the blocks: the task's record is mined, then two blocks confirm it, the
    // worker runs it and commits its receipt in the next block.
    mining.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let recorded = client
        .record_compute(contract, "add_millionaire(address,uint256)", &add(3, 50), GAS)
        .await
        .unwrap();
    let task = recorded.id();
    let handle = client.send(recorded);
    let confirm = async {
        let _: serde_json::Value =
            chain.provider().raw_request("anvil_mine".into(), (2u64,)).await.unwrap();
        let kept = chain.provider().get_block_number().await.unwrap();
        eventually("the receipt on chain", || async {
            chain.task(&task).await.ok().flatten().filter(|r| r.status == TaskStatus::Verified)
        })
        .await;
        kept
    };
    let (outcome, kept) = tokio::join!(async { handle.await.unwrap().result().await }, confirm);
    let outcome = outcome.unwrap();
    assert_eq!(chain.secret_contract(&contract).await.unwrap().unwrap().delta_count, 4);

    // The blocks after the two confirmations are replaced by empty ones: the receipt is gone.
    let head = chain.provider().get_block_number().await.unwrap();
    assert!(head > kept, "the receipt is in a block after the confirmations");
    let _: serde_json::Value = chain
        .provider()
        .raw_request("anvil_reorg".into(), (head - kept, serde_json::json!([])))
        .await
        .unwrap();
    assert_eq!(chain.task(&task).await.unwrap().unwrap().status, TaskStatus::Created);
    assert_eq!(chain.secret_contract(&contract).await.unwrap().unwrap().delta_count, 3);

    // Blocks come again: the worker finds its receipt gone and commits it again, once.
    mining.store(true, Ordering::SeqCst);
    let receipt = client.confirm(&outcome).await.unwrap();
    assert_eq!(receipt.status, TaskStatus::Verified);
    assert_eq!(receipt.delta_hash, outcome.delta_hash, "the same result landed again");
    assert_eq!(
        chain.secret_contract(&contract).await.unwrap().unwrap().delta_count,
        4,
        "the task's delta is on chain once"
    );

    // A task that cannot run yet (the test holds the blocks its record needs under it) is
    // answered "accepted" once the worker's answer window (1 s here) passes, not held until it
    // runs; its result reaches the client when it does. The contract goes on from the state
    // that includes the reorged task.
    mining.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let recorded = client.record_compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    let task = recorded.id();
    let handle = tokio::time::timeout(Duration::from_secs(60), client.send(recorded))
        .await
        .expect("the gateway answers while the task waits for its record's depth")
        .unwrap();
    assert_eq!(
        chain.task(&task).await.unwrap().unwrap().status,
        TaskStatus::Created,
        "answered before the task ran"
    );
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (2u64,)).await.unwrap();
    mining.store(true, Ordering::SeqCst);
    let richest = handle.result().await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(3)
    );
    miner.abort();
    worker.stop().await;
}
