//! The network against hostile peers and a hostile worker host, on a real devnet (anvil, the key
//! manager and three workers on libp2p over loopback). Each attack of docs/threat-model.md's
//! network section is made as an attacker would make it — through the p2p network, the gateway
//! or the chain — and each test asserts that honest tasks still complete, verified, with the
//! right output, and that the attacker gains nothing.

use crate::common::*;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use crate::rogue::{Rogue, publish};
use alloy::providers::Provider as _;
use alloy_primitives::Address as AlloyAddress;
use alloy_sol_types::SolValue;
use enigma_chain::{Chain, EpochInfo, TaskLimits};
use enigma_client::{Client, ClientConfig, ClientError, TaskOptions, TaskOutcome};
use enigma_crypto::KeyPair;
use enigma_enclave::ChainPosition;
use enigma_node::{Devnet, DevnetConfig, DevnetSummary, start_devnet};
use enigma_p2p::{GossipMessage, ResultMessage, TaskRequest, TaskResponse, messages::ResultView};
use enigma_types::{ContractAddress, InputsHash, SignerAddress, TaskId, selection::select_worker};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};

const ENG: u128 = 100_000_000;
const GAS: u64 = 50_000_000;

fn richest(outcome: &TaskOutcome) -> AlloyAddress {
    <(AlloyAddress,)>::abi_decode_params(&outcome.output).unwrap().0
}

async fn devnet(dir: &tempfile::TempDir, epoch_size: u64) -> Devnet {
    start_devnet(
        DevnetConfig { epoch_size, ..DevnetConfig::on_free_ports(dir.path().join("devnet")) },
        |_| {},
    )
    .await
    .unwrap()
}

fn account(s: &DevnetSummary, i: usize) -> KeyPair {
    KeyPair::from_slice(&hex::decode(s.accounts[i].private_key.trim_start_matches("0x")).unwrap())
        .unwrap()
}

async fn client(s: &DevnetSummary, i: usize) -> Client {
    let client = Client::connect(ClientConfig {
        gateway_url: s.gateway_url.clone(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account: account(s, i),
        gas_px: 1,
        policy: enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
        result_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap();
    client.deposit(10_000 * ENG).await.unwrap();
    client
}

/// A millionaires contract with two entries, and the richest (entry 2).
async fn honest_contract(client: &Client) -> ContractAddress {
    let contract = client.deploy(&millionaires(), "construct()", &[], GAS).await.unwrap().contract;
    for (who, worth) in [(1u8, 10u64), (2, 30)] {
        let done = client
            .compute(contract, "add_millionaire(address,uint256)", &add(who, worth), GAS)
            .await
            .unwrap();
        client.wait_final(done.task_id).await.unwrap();
    }
    contract
}

/// An honest task that must still work: the right output, verified by the client.
async fn still_works(client: &Client, contract: ContractAddress) {
    let out = client.compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    assert_eq!(richest(&out), AlloyAddress::repeat_byte(2), "the honest task's output is right");
}

/// A p2p node of the attacker's, joined to the devnet's network.
async fn hostile_peer(
    s: &DevnetSummary,
) -> (enigma_p2p::Handle, tokio::sync::mpsc::Receiver<enigma_p2p::Event>) {
    enigma_p2p::spawn(enigma_p2p::Config {
        bootstrap: s.p2p_bootstrap.iter().map(|a| a.parse().unwrap()).collect(),
        ..enigma_p2p::Config::default()
    })
    .await
    .unwrap()
}

async fn gateway_result(s: &DevnetSummary, task: TaskId) -> Option<ResultView> {
    let http = HttpClientBuilder::default().build(&s.gateway_url).unwrap();
    http.request("getTaskResult", rpc_params![serde_json::json!({"taskId": task.to_string()})])
        .await
        .unwrap()
}

/// The worker 0 (the gateway) peer id, from its bootstrap address.
fn gateway_peer(s: &DevnetSummary) -> enigma_p2p::PeerId {
    let addr: enigma_p2p::Multiaddr = s.p2p_bootstrap[0].parse().unwrap();
    match addr.iter().last() {
        Some(enigma_p2p::Protocol::P2p(peer)) => peer,
        _ => panic!("the bootstrap address ends in /p2p/<id>"),
    }
}

fn compute_request(task: TaskId, contract: ContractAddress) -> TaskRequest {
    TaskRequest::Compute {
        task_id: task,
        contract,
        encrypted_fn: vec![1; 60],
        encrypted_args: vec![2; 60],
        user_public_key: KeyPair::generate().unwrap().public_key().as_bytes().to_vec(),
        caller: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_gain_nothing_from_relabelled_results_replays_forgeries_and_floods() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(&dir, 10_000).await;
    let s = net.summary.clone();
    let alice = client(&s, 0).await;
    let contract = honest_contract(&alice).await;

    // 1. A relabelled result: the genuine result of one task, gossiped under the id of another
    //    (recorded, not sent yet). No node serves it; the real task then runs as usual.
    let (spy, _spy_events) = hostile_peer(&s).await;
    let done = alice.compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    let genuine =
        ResultMessage::try_from(&gateway_result(&s, done.task_id).await.unwrap()).unwrap();
    let pending = alice.record_compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    let mut relabelled = genuine.clone();
    relabelled.task_id = pending.id();
    publish(&spy, &GossipMessage::Result(Box::new(relabelled))).await;
    // The genuine result replayed as is changes nothing either.
    publish(&spy, &GossipMessage::Result(Box::new(genuine.clone()))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        gateway_result(&s, pending.id()).await.is_none(),
        "a result relabelled with another task's id is not served"
    );
    let served = ResultMessage::try_from(&gateway_result(&s, done.task_id).await.unwrap()).unwrap();
    assert_eq!(served, genuine, "the verified result is kept");
    let out = alice.send(pending).await.unwrap().result().await.unwrap();
    assert_eq!(richest(&out), AlloyAddress::repeat_byte(2));

    // 2. Announcements: the genuine announcement of the worker serving the contract, replayed
    //    (stale, and with the attacker's peer id in place of the worker's), routes nothing to
    //    the attacker.
    let epoch = alice.chain().current_epoch().await.unwrap().unwrap();
    let serving = select_worker(&epoch.seed, &contract, &epoch.workers, &epoch.stakes).unwrap();
    let (thief, mut thief_events) = hostile_peer(&s).await;
    let announcement = loop {
        match tokio::time::timeout(Duration::from_secs(30), thief_events.recv()).await {
            Ok(Some(enigma_p2p::Event::Gossip {
                message: GossipMessage::Worker(a),
                verdict,
                ..
            })) => {
                verdict.report(enigma_p2p::Verdict::Ignore);
                if a.signer == serving {
                    break a;
                }
            }
            Ok(Some(_)) => {}
            _ => panic!("no announcement of the serving worker reached the attacker"),
        }
    };
    let mut stolen = announcement.clone();
    stolen.peer_id = thief.peer_id().to_bytes();
    publish(&thief, &GossipMessage::Worker(stolen)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(&thief, &GossipMessage::Worker(announcement)).await;
    still_works(&alice, contract).await;
    still_works(&alice, contract).await;
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(200), thief_events.recv()).await
    {
        assert!(
            !matches!(e, enigma_p2p::Event::Task { .. }),
            "no task is routed to the peer that replayed an announcement"
        );
    }

    // 3. A gossip flood: thousands of well-formed results signed by nobody. The flooding peer
    //    is struck and banned; honest work goes on.
    let (flooder, _flood_events) = hostile_peer(&s).await;
    let started = Instant::now();
    let mut sent = 0u32;
    for i in 0..2_000u32 {
        let mut junk = genuine.clone();
        junk.task_id = TaskId(enigma_types::keccak256(i.to_be_bytes()));
        junk.signature = vec![(i % 251) as u8; 65];
        if flooder.publish(&GossipMessage::Result(Box::new(junk))).await.is_ok() {
            sent += 1;
        }
    }
    eprintln!(
        "gossip flood: {sent} junk results published in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let gateway = gateway_peer(&s);
    eventually("the gateway's worker to ban the flooding peer", || async {
        let connected = flooder.connected().await.unwrap_or_default();
        (!connected.contains(&gateway)).then_some(())
    })
    .await;
    still_works(&alice, contract).await;

    // 4. An unrecorded-id flood over p2p, straight at the gateway's worker: each request costs
    //    the worker one chain read and a wait on its event watcher; the peer's requests beyond
    //    its cap are refused at once, and the honest client is served meanwhile.
    let (pest, _pest_events) = hostile_peer(&s).await;
    let target = gateway_peer(&s);
    pest.dial(s.p2p_bootstrap[0].parse().unwrap()).await.unwrap();
    let started = Instant::now();
    let flood: Vec<_> = (0..400u32)
        .map(|i| {
            let pest = pest.clone();
            tokio::spawn(async move {
                let id = TaskId(enigma_types::keccak256((i + 1_000_000).to_be_bytes()));
                pest.send_task(target, &compute_request(id, contract)).await
            })
        })
        .collect();
    let honest_started = Instant::now();
    still_works(&alice, contract).await;
    let honest_latency = honest_started.elapsed();
    let (mut busy, mut no_record, mut other) = (0, 0, std::collections::BTreeMap::new());
    for f in flood {
        match f.await.unwrap() {
            Ok(TaskResponse::Busy(why)) if why.contains("in flight") => busy += 1,
            Ok(TaskResponse::Rejected(why)) if why.contains("no record") => no_record += 1,
            Ok(TaskResponse::Accepted | TaskResponse::Answer(_)) => {
                panic!("an unrecorded task was accepted")
            }
            Ok(TaskResponse::Rejected(why) | TaskResponse::Busy(why)) => {
                *other.entry(why).or_insert(0) += 1;
            }
            Err(e) => *other.entry(e.to_string()).or_insert(0) += 1,
        }
    }
    eprintln!(
        "p2p unrecorded-id flood: 400 requests answered in {:.2} s ({busy} refused at once as over the peer's cap, {no_record} after the record wait, otherwise {other:?}); an honest task took {:.2} s meanwhile",
        started.elapsed().as_secs_f64(),
        honest_latency.as_secs_f64()
    );
    assert!(busy > 0, "the peer's requests beyond its cap are refused at once");
    assert!(no_record > 0, "unrecorded ids are refused");

    // 5. The same through the gateway's JSON-RPC from another address: the address is capped,
    //    then banned; the honest client (127.0.0.1) is served throughout.
    let attacker =
        reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let started = Instant::now();
    let flood: Vec<_> = (0..64u32)
        .map(|i| {
            let (attacker, url) = (attacker.clone(), s.gateway_url.clone());
            let worker = s.worker_signers[0].clone();
            tokio::spawn(async move {
                let id = TaskId(enigma_types::keccak256((i + 2_000_000).to_be_bytes()));
                let body = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "sendTaskInput", "params": [{
                    "taskId": id.to_string(), "workerAddress": worker,
                    "encryptedFn": "0x01", "encryptedArgs": "0x02",
                    "contractAddress": contract.to_string(),
                    "userDHKey": format!("0x{}", hex::encode(KeyPair::generate().unwrap().public_key().as_bytes())),
                }]});
                let answer: serde_json::Value =
                    attacker.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
                answer["error"]["code"].as_i64().unwrap_or(0)
            })
        })
        .collect();
    still_works(&alice, contract).await;
    let mut codes = Vec::new();
    for f in flood {
        codes.push(f.await.unwrap());
    }
    let refused_at_once =
        codes.iter().filter(|c| **c == i64::from(enigma_node::NOT_ADMITTED)).count();
    assert!(
        refused_at_once > 0,
        "requests beyond the address's cap are refused at once: {codes:?}"
    );
    assert!(codes.iter().all(|c| *c != 0), "no unrecorded task is accepted: {codes:?}");
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "sendTaskInput", "params": [{
        "taskId": TaskId([9; 32]).to_string(), "workerAddress": s.worker_signers[0],
        "encryptedFn": "0x01", "encryptedArgs": "0x02", "contractAddress": contract.to_string(),
        "userDHKey": format!("0x{}", hex::encode(KeyPair::generate().unwrap().public_key().as_bytes())),
    }]});
    let answer: serde_json::Value =
        attacker.post(&s.gateway_url).json(&body).send().await.unwrap().json().await.unwrap();
    assert!(
        answer["error"]["message"].as_str().unwrap_or("").contains("banned"),
        "after its strikes the address is banned: {answer}"
    );
    eprintln!(
        "gateway unrecorded-id flood: 64 requests from one address answered in {:.2} s, {refused_at_once} at once; then banned",
        started.elapsed().as_secs_f64()
    );
    still_works(&alice, contract).await;
    net.stop().await;
}

/// Mines to the next epoch and waits until the key manager has drawn it with `workers`.
async fn next_epoch(chain: &Chain, epoch_size: u64, workers: usize) -> EpochInfo {
    let before = chain.current_epoch().await.unwrap().unwrap().nonce;
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (epoch_size,)).await.unwrap();
    for _ in 0..300 {
        if let Some(e) = chain.current_epoch().await.unwrap()
            && e.nonce > before
            && e.workers.len() == workers
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no epoch with {workers} workers");
}

/// Creates throw-away deployment records for `user` until its next contract is one that the
/// epoch selects `wanted` (or not, with `want = false`) for.
async fn steer(user: &Client, epoch: &EpochInfo, wanted: SignerAddress, want: bool) {
    let me = user.chain().task_nonce(user_address(user)).await.unwrap();
    for nonce in me..me + 40 {
        let contract = ContractAddress::from(enigma_types::task_id(&user_address(user), nonce));
        let s = select_worker(&epoch.seed, &contract, &epoch.workers, &epoch.stakes).unwrap();
        if (s == wanted) == want {
            return;
        }
        user.chain()
            .create_deployment_task_record(InputsHash([7; 32]), GAS, 1, epoch.first_block, nonce)
            .await
            .unwrap();
    }
    panic!("no contract address selects as wanted");
}

fn user_address(user: &Client) -> enigma_types::Address {
    user.chain().account().expect("the client's chain has an account")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_worker_host_cannot_stall_the_network_nor_pass_off_a_rolled_back_or_inflated_result()
 {
    let dir = tempfile::tempdir().unwrap();
    // Epochs of 100 blocks (a block a second): the test mines the next one, and is done long
    // before the one after.
    let net = devnet(&dir, 100).await;
    let s = net.summary.clone();
    let alice = client(&s, 0).await;
    let bob = client(&s, 1).await;

    // The attacker runs a genuine enclave, attested, registered and staked like any worker.
    // Its registration, copied by someone else before it is mined (front-running), claims
    // nothing: the evidence binds the operator the enclave was started for.
    let mut rogue = Rogue::attest(&s, account(&s, 4)).await;
    let front_run = Chain::connect(
        &s.chain_url,
        Some(&account(&s, 3)),
        s.deployment.enigma,
        s.deployment.token,
    )
    .await
    .unwrap()
    .register(rogue.signer, &rogue.evidence)
    .await;
    assert!(
        matches!(&front_run, Err(e) if e.to_string().contains("OperatorNotBound")),
        "a copied registration is refused: {front_run:?}"
    );
    rogue.register(10_000 * ENG).await;
    let epoch = next_epoch(&rogue.chain, s.epoch_size, 4).await;
    assert!(epoch.workers.contains(&rogue.signer));

    // 1. It announces sixteen blackholed addresses (loopback ports that accept connections and
    //    never answer). Peers dial them on the side; tasks keep flowing.
    let holes: Vec<std::net::TcpListener> =
        (0..16).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let hole_addrs: Vec<String> = holes
        .iter()
        .map(|l| {
            let a: SocketAddr = l.local_addr().unwrap();
            format!("/ip4/127.0.0.1/tcp/{}", a.port())
        })
        .collect();
    steer(&bob, &epoch, rogue.signer, false).await;
    let contract = honest_contract(&bob).await;
    let gateway = HttpClientBuilder::default().build(&s.gateway_url).unwrap();
    let rogue_signer = rogue.signer.to_string();
    let mut turns = 0;
    loop {
        rogue.announce(epoch.first_block, hole_addrs.clone()).await;
        let known = gateway
            .request::<serde_json::Value, _>(
                "getWorkerEncryptionKey",
                rpc_params![serde_json::json!({"workerAddress": rogue_signer})],
            )
            .await
            .is_ok();
        if known {
            break;
        }
        turns += 1;
        assert!(turns < 30, "the gateway never took the rogue's (signed) announcement");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for _ in 0..3 {
        still_works(&bob, contract).await;
    }

    // 2. A contract it is selected for: it deploys and runs the first task honestly, then runs
    //    the next one on the state before that task (a rollback) and publishes the signed result.
    steer(&alice, &epoch, rogue.signer, true).await;
    let wasm = millionaires();
    let (deployed, (d0, code_hash)) =
        tokio::join!(alice.deploy(&wasm, "construct()", &[], GAS), async {
            let request = rogue.next_task().await;
            let r = rogue.deploy(epoch.first_block, request).await;
            (r.delta.clone().unwrap(), r.code_hash)
        });
    let victim = deployed.unwrap().contract;
    let at_deploy = ChainPosition { next_index: 1, tip: enigma_types::delta_hash(&d0.bytes) };
    let entry = add(1, 10);
    let (first, d1) = tokio::join!(
        alice.compute(victim, "add_millionaire(address,uint256)", &entry, GAS),
        async {
            let request = rogue.next_task().await;
            let r = rogue
                .compute_at(
                    epoch.first_block,
                    request,
                    code_hash,
                    at_deploy,
                    std::slice::from_ref(&d0),
                )
                .await;
            rogue.commit(&r).await.unwrap();
            r.delta.unwrap()
        }
    );
    first.unwrap();
    // The next entry, run on the state without the first: it succeeds there, and its receipt
    // would drop the first entry from the contract.
    let second = add(2, 30);
    let (rolled_back, stale) = tokio::join!(
        alice.compute(victim, "add_millionaire(address,uint256)", &second, GAS),
        async {
            let request = rogue.next_task().await;
            rogue
                .compute_at(
                    epoch.first_block,
                    request,
                    code_hash,
                    at_deploy,
                    std::slice::from_ref(&d0),
                )
                .await
        }
    );
    match rolled_back {
        Err(ClientError::BadResult(why)) => {
            assert!(why.contains("rolled back"), "the client names the rollback: {why}")
        }
        other => panic!("a result computed on rolled-back state was accepted: {other:?}"),
    }
    assert!(stale.prev_delta_count < 2, "the rogue did compute on the old state");
    assert_eq!(stale.status, enigma_enclave::TaskStatus::Success);
    assert!(
        rogue.commit(&stale).await.is_err(),
        "the chain refuses the receipt of a task run on state it has moved past"
    );

    // 3. It tells its enclave that a task brought ENG it did not (the record escrowed none).
    //    a. A signed task (the client signs by default): the sender's signature covers the
    //       value, so the enclave refuses to run it at all — no result, nothing to publish. Run
    //       honestly, the user gets its result.
    let mut at = ChainPosition { next_index: 2, tip: enigma_types::delta_hash(&d1.bytes) };
    let mut deltas = vec![d0, d1];
    let third = add(3, 5);
    let (served, honest) = tokio::join!(
        alice.compute(victim, "add_millionaire(address,uint256)", &third, GAS),
        async {
            let request = rogue.next_task().await;
            rogue.value_lie = Some(1_000_000);
            let lied = rogue
                .try_compute_at(epoch.first_block, request.clone(), code_hash, at, &deltas)
                .await;
            assert!(
                matches!(&lied, Err(enigma_enclave::EnclaveError::BadCaller(why)) if why.contains("signature")),
                "the enclave refuses a value the sender did not sign: {lied:?}"
            );
            rogue.value_lie = None;
            rogue.compute_at(epoch.first_block, request, code_hash, at, &deltas).await
        }
    );
    assert_eq!(
        {
            let o = served.unwrap();
            (o.value, o.task_id)
        },
        (0, honest.task_id)
    );
    rogue.commit(&honest).await.unwrap();
    at = ChainPosition { next_index: 3, tip: honest.delta_hash };
    deltas.push(honest.delta.clone().unwrap());

    //    b. An anonymous task: its inputs are bound to the value they were sent with, so they
    //       do not open and the contract never runs; the enclave signs a failure over the value
    //       it was told. The rogue publishes it, then the honest result. Nodes drop the first
    //       (its value is not the record's), so the user gets the honest result; had a gateway
    //       served the first, the client would refuse it (client adversarial). The chain
    //       refuses its receipt: the failure digest holds the record's value.
    let anonymous = TaskOptions { anonymous: true, ..TaskOptions::default() };
    let fourth = add(4, 7);
    let (served, (lied, honest)) = tokio::join!(
        async {
            let task = alice
                .record_compute_with(
                    victim,
                    "add_millionaire(address,uint256)",
                    &fourth,
                    GAS,
                    &anonymous,
                )
                .await?;
            alice.send(task).await?.result().await
        },
        async {
            let request = rogue.next_task().await;
            rogue.value_lie = Some(1_000_000);
            let lied =
                rogue.compute_at(epoch.first_block, request.clone(), code_hash, at, &deltas).await;
            rogue.value_lie = None;
            let honest = rogue.compute_at(epoch.first_block, request, code_hash, at, &deltas).await;
            (lied, honest)
        }
    );
    assert_eq!((lied.status, lied.value), (enigma_enclave::TaskStatus::Failure, 1_000_000));
    assert!(lied.delta.is_none() && lied.payouts.is_empty(), "the contract never ran");
    assert_eq!(
        {
            let o = served.expect("the honest result reaches the user, the inflated one never");
            (o.value, o.task_id)
        },
        (0, honest.task_id)
    );
    let refused = rogue.commit(&lied).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("WorkerNotSelected")),
        "the chain refuses a receipt signed over another value than the record's: {refused:?}"
    );
    rogue.commit(&honest).await.unwrap();

    // The network went on serving honest contracts throughout.
    still_works(&bob, contract).await;
    drop(holes);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_and_unbounded_tasks_are_refused_and_a_runaway_contract_pays_its_gas() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(&dir, 10_000).await;
    let s = net.summary.clone();
    let alice = client(&s, 0).await;
    let contract = honest_contract(&alice).await;
    let epoch = alice.chain().current_epoch().await.unwrap().unwrap();

    // The owner (the devnet's deployer, anvil's first account) bounds tasks to 50 M gas.
    let owner = KeyPair::from_slice(
        &hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap(),
    )
    .unwrap();
    let owner = Chain::connect(&s.chain_url, Some(&owner), s.deployment.enigma, s.deployment.token)
        .await
        .unwrap();
    owner.set_task_limits(TaskLimits { min_gas_price: 1, max_gas_limit: GAS }).await.unwrap();

    // Free or unbounded records are refused by the chain itself, whatever a client does.
    let nonce = alice.chain().task_nonce(user_address(&alice)).await.unwrap();
    let free = alice
        .chain()
        .create_task_record(
            contract,
            InputsHash([1; 32]),
            1_000_000,
            0,
            epoch.first_block,
            nonce,
            0,
        )
        .await;
    assert!(matches!(&free, Err(e) if e.to_string().contains("GasPriceTooLow")), "{free:?}");
    let unbounded = alice
        .chain()
        .create_task_record(contract, InputsHash([1; 32]), u64::MAX, 1, epoch.first_block, nonce, 0)
        .await;
    assert!(
        matches!(&unbounded, Err(e) if e.to_string().contains("GasLimitTooHigh")),
        "{unbounded:?}"
    );
    // The client refuses before it spends anything.
    assert!(matches!(
        alice.compute(contract, "compute_richest()", &[], GAS + 1).await,
        Err(ClientError::OutsideTaskLimits { .. })
    ));

    // A contract that loops forever, at the largest gas limit: it runs out of gas, the failure
    // is signed and committed, its sender pays the limit, and the worker goes on.
    let endless = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "deploy") (loop $l (br $l)))
             (func (export "call")))"#,
    )
    .unwrap();
    let before = alice.chain().prepaid_balance(user_address(&alice)).await.unwrap();
    match alice.deploy(&endless, "construct()", &[], GAS).await {
        Err(ClientError::TaskFailed { task_id, message, gas_used }) => {
            assert!(message.contains("gas"), "{message}");
            assert_eq!(gas_used, GAS);
            alice.wait_final(task_id).await.unwrap();
        }
        other => panic!("an endless deploy must run out of gas, got {other:?}"),
    }
    let after = alice.chain().prepaid_balance(user_address(&alice)).await.unwrap();
    assert_eq!(before - after, u128::from(GAS), "the sender paid the whole limit");
    still_works(&alice, contract).await;
    net.stop().await;
}
