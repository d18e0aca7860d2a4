//! One KM and three workers as separate node instances (each its own store, p2p port and
//! enclave) on loopback, with real anvil: tasks sent to a gateway that is not the selected worker
//! reach the selected one, results come back by HTTP poll and WebSocket push, receipts land on
//! chain and settle fees, malformed RPC requests get errors while the node keeps serving, and a
//! host without an attested enclave gets no state key from the key manager, and a contract's
//! tasks run in their record order whatever order they arrive in.

use crate::common::*;

use std::time::Duration;

use alloy::providers::Provider as _;
use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use base64::Engine as _;
use enigma_chain::{Chain, TaskStatus};
use enigma_crypto::{KeyPair, PublicKey, Signature, SignedResult as _};
use enigma_node::*;
use enigma_types::{
    ContractAddress, SignerAddress, code_hash, inputs_hash_compute, inputs_hash_deploy,
    messages::{TaskField, task_field_ad, worker_key_digest},
    selection::select_worker,
    task_id,
};
use jsonrpsee::{
    core::client::{ClientT, SubscriptionClientT},
    http_client::HttpClientBuilder,
    rpc_params,
    ws_client::WsClientBuilder,
};

const ENG: u128 = 100_000_000;

struct Net {
    anvil: alloy::node_bindings::AnvilInstance,
    chain: Chain,
    workers: Vec<WorkerNode>,
    _km: KmNode,
    attestation: AttestationService,
    _dirs: Vec<tempfile::TempDir>,
}

async fn network() -> Net {
    network_with(None).await
}

/// The network, its workers waiting `order_wait` (if given) for a contract's earlier tasks.
async fn network_with(order_wait: Option<Duration>) -> Net {
    // Long epochs: the test's own transactions must not start a new epoch (a new IO key) between
    // fetching a worker's key and recording the task.
    let Base { base: ChainBase { anvil, url, chain, deployment: d, attestation, km_dir }, km } =
        base(1_000, 200).await;
    let mut dirs = vec![km_dir];
    let mut workers: Vec<WorkerNode> = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        chain.transfer_token(key(&anvil, 1 + i).address(), 10_000 * ENG).await.unwrap();
        let mut config = WorkerConfig::devnet(
            dir.path().to_path_buf(),
            url.clone(),
            d.enigma,
            d.token,
            key(&anvil, 1 + i),
            format!("http://{}", km.rpc_addr),
        );
        config.attestation_url = Some(attestation.url.clone());
        config.simulation_authority = attestation.authority;
        config.stake = Some(1_000 * ENG * (i as u128 + 1));
        config.batch_size = 4;
        config.batch_wait = Duration::from_millis(500);
        if let Some(wait) = order_wait {
            config.order_wait = wait;
        }
        config.bootstrap = workers.first().map(|w| w.p2p_addrs.clone()).unwrap_or_default();
        if i == 0 {
            config.gateway_listen = Some("127.0.0.1:0".parse().unwrap());
        }
        workers.push(start_worker(config).await.unwrap());
        dirs.push(dir);
    }
    // Move to the next epoch so the KM draws one with the three workers.
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (1_000u64,)).await.unwrap();
    eventually("an epoch with three workers", || async {
        chain.current_epoch().await.ok().flatten().filter(|e| e.workers.len() == 3).map(|_| ())
    })
    .await;
    Net { anvil, chain, workers, _km: km, attestation, _dirs: dirs }
}

/// The client side of one task, through the gateway.
struct Client {
    chain: Chain,
    gateway: String,
}

impl Client {
    async fn worker_key(&self, worker: SignerAddress) -> PublicKey {
        let http = HttpClientBuilder::default().build(&self.gateway).unwrap();
        let answer: serde_json::Value = eventually("the worker's key at the gateway", || {
            let http = &http;
            async move {
                http.request::<serde_json::Value, _>("getWorkerEncryptionKey", rpc_params![serde_json::json!({"workerAddress": worker.to_string(), "userPubKey": "0x00"})])
                    .await
                    .ok()
            }
        })
        .await;
        let key: PublicKey = answer["workerEncryptionKey"].as_str().unwrap().parse().unwrap();
        let sig: Signature = answer["workerSig"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            sig.recover_address(&worker_key_digest(key.as_bytes())).unwrap(),
            worker.into(),
            "the key is signed by the worker's enclave"
        );
        key
    }
}

fn hexed(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Encrypts a task's field as the client does: bound to the task and contract.
fn seal(
    shared: &enigma_crypto::SymmetricKey,
    contract: &ContractAddress,
    task: &enigma_types::TaskId,
    field: TaskField,
    plain: &[u8],
) -> Vec<u8> {
    shared.encrypt_with_ad(plain, &task_field_ad(contract, task, 0, field)).unwrap()
}

/// Decrypts a task's output and removes its padding.
fn open(
    shared: &enigma_crypto::SymmetricKey,
    contract: &ContractAddress,
    task: &enigma_types::TaskId,
    blob: &[u8],
) -> Vec<u8> {
    let padded = shared
        .decrypt_with_ad(blob, &task_field_ad(contract, task, 0, TaskField::Output))
        .expect("the output decrypts");
    enigma_types::padding::unpad(&padded).unwrap().to_vec()
}

/// A millionaires contract deployed through worker 0's gateway, served by another worker.
struct Deployed {
    client: Client,
    http: jsonrpsee::http_client::HttpClient,
    user_key: KeyPair,
    contract: ContractAddress,
    selected: SignerAddress,
    worker_key: PublicKey,
    epoch: enigma_chain::EpochInfo,
}

/// A compute task recorded on chain, not yet sent.
struct Recorded {
    id: enigma_types::TaskId,
    shared: enigma_crypto::SymmetricKey,
    params: serde_json::Value,
}

impl Deployed {
    async fn new(net: &Net) -> Self {
        let gateway = format!("http://{}", net.workers[0].gateway_addr.unwrap());
        let epoch = net.chain.current_epoch().await.unwrap().unwrap();

        // A user whose next deployment is served by a worker other than the gateway.
        let (user_index, nonce, contract, selected) = {
            let mut found = None;
            for i in 4..9 {
                let user = key(&net.anvil, i).address();
                let nonce = net.chain.task_nonce(user).await.unwrap();
                let contract = ContractAddress::from(task_id(&user, nonce));
                let s =
                    select_worker(&epoch.seed, &contract, &epoch.workers, &epoch.stakes).unwrap();
                if s != net.workers[0].signer {
                    found = Some((i, nonce, contract, s));
                    break;
                }
            }
            found.expect("some user's contract lands on another worker")
        };
        let user_key = key(&net.anvil, user_index);
        let user_chain = Chain::connect(
            net.anvil.endpoint_url().as_ref(),
            Some(&user_key),
            net.chain.enigma_address(),
            net.chain.token_address(),
        )
        .await
        .unwrap();
        net.chain.transfer_token(user_key.address(), 10_000 * ENG).await.unwrap();
        user_chain.deposit_balance(1_000 * ENG).await.unwrap();
        let client = Client { chain: user_chain, gateway: gateway.clone() };
        let worker_key = client.worker_key(selected).await;

        // Deploy through the gateway.
        let code = millionaires();
        let task_key = KeyPair::generate().unwrap();
        let shared = task_key.derive_key(&worker_key);
        let deploy = task_id(&user_key.address(), nonce);
        let enc_fn = seal(&shared, &contract, &deploy, TaskField::Callable, b"construct()");
        let enc_args = seal(&shared, &contract, &deploy, TaskField::Arguments, &[]);
        let inputs = inputs_hash_deploy(
            &enc_fn,
            &enc_args,
            &code_hash(&code),
            task_key.public_key().as_bytes(),
        );
        let (id, _) = client
            .chain
            .create_deployment_task_record(inputs, 50_000_000, 1, epoch.first_block, nonce)
            .await
            .unwrap();
        assert_eq!(ContractAddress::from(id), contract);
        let http = HttpClientBuilder::default().build(&gateway).unwrap();
        let sent: serde_json::Value = http
            .request(
                "deploySecretContract",
                rpc_params![serde_json::json!({
                    "workerAddress": selected.to_string(),
                    "preCode": base64::engine::general_purpose::STANDARD.encode(&code),
                    "encryptedArgs": hexed(&enc_args),
                    "encryptedFn": hexed(&enc_fn),
                    "userDHKey": hexed(task_key.public_key().as_bytes()),
                    "contractAddress": contract.to_string(),
                })],
            )
            .await
            .unwrap();
        assert_eq!(sent["deploySentResult"], true);
        let view = result_at(&http, &id).await;
        let deploy_output = String::from_utf8_lossy(&open(
            &shared,
            &contract,
            &id,
            &hex::decode(view.output.trim_start_matches("0x")).unwrap(),
        ))
        .into_owned();
        assert_eq!(view.status, "SUCCESS", "the deploy failed: {deploy_output:?}");
        eventually("the deployment receipt on chain", || async {
            net.chain.secret_contract(&contract).await.ok().flatten()
        })
        .await;
        Self { client, http, user_key, contract, selected, worker_key, epoch }
    }

    /// Records a compute task on chain; it is sent with [`Deployed::send`].
    async fn record(&self, function: &str, args: &[u8]) -> Recorded {
        let (contract, user) = (self.contract, self.user_key.address());
        let task_key = KeyPair::generate().unwrap();
        let shared = task_key.derive_key(&self.worker_key);
        let nonce = self.client.chain.task_nonce(user).await.unwrap();
        let id = task_id(&user, nonce);
        let enc_fn = seal(&shared, &contract, &id, TaskField::Callable, function.as_bytes());
        let enc_args = seal(&shared, &contract, &id, TaskField::Arguments, args);
        let inputs =
            inputs_hash_compute(&enc_fn, &enc_args, &contract, task_key.public_key().as_bytes());
        let (recorded, _) = self
            .client
            .chain
            .create_task_record(contract, inputs, 50_000_000, 1, self.epoch.first_block, nonce, 0)
            .await
            .unwrap();
        assert_eq!(recorded, id);
        let params = serde_json::json!({
            "taskId": id.to_string(),
            "workerAddress": self.selected.to_string(),
            "encryptedFn": hexed(&enc_fn),
            "encryptedArgs": hexed(&enc_args),
            "contractAddress": contract.to_string(),
            "userDHKey": hexed(task_key.public_key().as_bytes()),
        });
        Recorded { id, shared, params }
    }

    /// Sends a recorded task's inputs through the gateway.
    async fn send(&self, task: &Recorded) -> Result<serde_json::Value, String> {
        self.http
            .request("sendTaskInput", rpc_params![task.params.clone()])
            .await
            .map_err(|e| e.to_string())
    }

    /// The task's output, decrypted.
    fn open(&self, task: &Recorded, view: &TaskResultView) -> Vec<u8> {
        let blob = hex::decode(view.output.trim_start_matches("0x")).unwrap();
        open(&task.shared, &self.contract, &task.id, &blob)
    }
}

/// Waits until each task's receipt is on chain and asserts it verified.
async fn verified(chain: &Chain, ids: &[enigma_types::TaskId]) {
    for id in ids {
        let status = eventually("the receipt on chain", || async {
            chain
                .task(id)
                .await
                .ok()
                .flatten()
                .map(|r| r.status)
                .filter(|s| *s != TaskStatus::Created)
        })
        .await;
        assert_eq!(status, TaskStatus::Verified, "task {id}");
    }
}

/// The task's result at the gateway, once it is there.
async fn result_at(
    http: &jsonrpsee::http_client::HttpClient,
    id: &enigma_types::TaskId,
) -> TaskResultView {
    eventually("the result at the gateway", || async move {
        http.request::<Option<TaskResultView>, _>(
            "getTaskResult",
            rpc_params![serde_json::json!({"taskId": id.to_string()})],
        )
        .await
        .ok()
        .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_through_a_gateway_reach_the_selected_worker_and_settle_on_chain() {
    let net = network().await;
    let d = Deployed::new(&net).await;
    let (contract, selected) = (d.contract, d.selected);

    // Compute tasks: two additions (HTTP poll) and the richest (WebSocket push).
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", net.workers[0].gateway_addr.unwrap()))
        .await
        .unwrap();
    let mut outputs = Vec::new();
    let mut ids = Vec::new();
    for (function, args) in [
        (
            "add_millionaire(address,uint256)",
            (AlloyAddress::repeat_byte(1), U256::from(100u64)).abi_encode_params(),
        ),
        (
            "add_millionaire(address,uint256)",
            (AlloyAddress::repeat_byte(2), U256::from(900u64)).abi_encode_params(),
        ),
        ("compute_richest()", Vec::new()),
    ] {
        let task = d.record(function, &args).await;
        let id = task.id;
        let mut sub = ws
            .subscribe::<TaskResultView, _>(
                "subscribeTaskResult",
                rpc_params![serde_json::json!({"taskId": id.to_string()})],
                "unsubscribeTaskResult",
            )
            .await
            .unwrap();
        d.send(&task).await.unwrap();
        let pushed = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("pushed in time")
            .unwrap()
            .unwrap();
        assert_eq!(pushed.status, "SUCCESS", "{function}");
        // The signature is the selected worker's, over the public fields.
        let message = enigma_p2p::ResultMessage {
            task_id: pushed.task_id.parse().unwrap(),
            contract: pushed.contract_address.parse().unwrap(),
            success: true,
            is_deploy: false,
            inputs_hash: pushed.inputs_hash.parse().unwrap(),
            code_hash: pushed.code_hash.parse().unwrap(),
            encrypted_output: hex::decode(pushed.output.trim_start_matches("0x")).unwrap(),
            output_hash: pushed.output_hash.parse().unwrap(),
            prev_delta_count: pushed.prev_delta_count,
            prev_delta_hash: pushed.prev_delta_hash.parse().unwrap(),
            delta_hash: pushed.delta_hash.parse().unwrap(),
            gas_limit: pushed.gas_limit,
            gas_used: pushed.gas_used,
            eth_address: [0; 20],
            eth_payload: Vec::new(),
            value: 0,
            payouts: Vec::new(),
            caller: enigma_types::Address::ZERO,
            signature: hex::decode(pushed.signature.trim_start_matches("0x")).unwrap(),
            result_signature: hex::decode(pushed.result_signature.trim_start_matches("0x"))
                .unwrap(),
        };
        let signer = Signature::from_bytes(&message.signature)
            .unwrap()
            .recover_address(&message.receipt_digest())
            .unwrap();
        assert_eq!(SignerAddress::from(signer), selected);
        assert_eq!(message.signer(), Some(selected), "the seal is the same enclave's");
        outputs.push(open(&task.shared, &contract, &id, &message.encrypted_output));
        ids.push(id);
    }
    let richest = <(AlloyAddress,)>::abi_decode_params(&outputs[2]).unwrap().0;
    assert_eq!(richest, AlloyAddress::repeat_byte(2));

    // The receipts land on chain (batched) and settle the fees.
    verified(&net.chain, &ids).await;
    let worker = net.chain.worker_by_signer(selected).await.unwrap().unwrap();
    assert!(worker.balance > worker.weight, "the worker earned fees beyond its stake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contracts_tasks_run_in_record_order_and_one_sent_after_a_later_ran_is_refused() {
    let net = network().await;
    let d = Deployed::new(&net).await;
    let add = |who: u8, amount: u64| {
        (AlloyAddress::repeat_byte(who), U256::from(amount)).abi_encode_params()
    };
    let first = d.record("add_millionaire(address,uint256)", &add(1, 100)).await;
    let second = d.record("add_millionaire(address,uint256)", &add(2, 900)).await;

    // The second arrives first. It waits for the first (recorded before it), which then runs
    // before it even though it arrived later.
    let (sent_second, sent_first) = tokio::join!(d.send(&second), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        d.send(&first).await
    });
    sent_second.unwrap();
    sent_first.unwrap();
    let (a, b) = (result_at(&d.http, &first.id).await, result_at(&d.http, &second.id).await);
    assert_eq!((a.status.as_str(), b.status.as_str()), ("SUCCESS", "SUCCESS"));
    assert_eq!(
        b.prev_delta_count,
        a.prev_delta_count + 1,
        "the second ran on the state the first left"
    );
    assert_eq!(b.prev_delta_hash, a.delta_hash);

    // A task sent only after a later one has run (the later one waited for it as long as the
    // worker waits, then went) is refused: the chain would not take its receipt.
    let skipped = d.record("add_millionaire(address,uint256)", &add(3, 5_000)).await;
    let later = d.record("compute_richest()", &[]).await;
    d.send(&later).await.unwrap();
    let richest = result_at(&d.http, &later.id).await;
    assert_eq!(richest.status, "SUCCESS");
    let output = d.open(&later, &richest);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0,
        AlloyAddress::repeat_byte(2),
        "the richest without the skipped task's 5,000"
    );
    let refused = d.send(&skipped).await.expect_err("a task sent after a later one ran");
    assert!(refused.contains("already ran"), "{refused}");

    // The chain takes the receipts in the order they ran; the skipped task stays open (its fee
    // returns after the timeout).
    verified(&net.chain, &[first.id, second.id, later.id]).await;
    assert_eq!(net.chain.task(&skipped.id).await.unwrap().unwrap().status, TaskStatus::Created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_past_the_order_wait_while_the_tasks_before_it_keep_running() {
    // An order wait of 10 s: each send below has seconds of room on either side.
    let net = network_with(Some(Duration::from_secs(10))).await;
    let d = Deployed::new(&net).await;
    let add = |who: u8, amount: u64| {
        (AlloyAddress::repeat_byte(who), U256::from(amount)).abi_encode_params()
    };
    let first = d.record("add_millionaire(address,uint256)", &add(1, 100)).await;
    let second = d.record("add_millionaire(address,uint256)", &add(2, 900)).await;
    let third = d.record("compute_richest()", &[]).await;
    // The third arrives first; the first 6 s later and the second 6 s after that: 12 s after
    // the third arrived, past the worker's order wait (10 s), but only 6 s after the line last
    // moved (the first ran, in turn). Every task runs, in record order.
    let (sent_third, sent_first, sent_second) = tokio::join!(
        d.send(&third),
        async {
            tokio::time::sleep(Duration::from_secs(6)).await;
            d.send(&first).await
        },
        async {
            tokio::time::sleep(Duration::from_secs(12)).await;
            d.send(&second).await
        }
    );
    sent_first.unwrap();
    sent_second.expect("the second is not passed over while the line moves");
    sent_third.unwrap();
    let results = [
        result_at(&d.http, &first.id).await,
        result_at(&d.http, &second.id).await,
        result_at(&d.http, &third.id).await,
    ];
    for r in &results {
        assert_eq!(r.status, "SUCCESS");
    }
    assert_eq!(results[1].prev_delta_hash, results[0].delta_hash, "the second ran after the first");
    let output = d.open(&third, &results[2]);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0,
        AlloyAddress::repeat_byte(2),
        "the third ran on the state both left"
    );
    verified(&net.chain, &[first.id, second.id, third.id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_trickles_the_tasks_before_another_holds_it_no_longer_than_six_order_waits() {
    // An order wait of 3 s, so a task waits at most 18 s from its arrival however steadily the
    // line before it moves.
    let net = network_with(Some(Duration::from_secs(3))).await;
    let d = Deployed::new(&net).await;
    let mut before = Vec::new();
    for i in 0..14u8 {
        let args = (AlloyAddress::repeat_byte(i + 1), U256::from(100 + u64::from(i)));
        before.push(d.record("add_millionaire(address,uint256)", &args.abi_encode_params()).await);
    }
    let last = d.record("compute_richest()", &[]).await;
    // The last is sent first; the fourteen before it trickle in 1.5 s apart, each in turn (so
    // each run restarts the last one's wait), the fourteenth 21 s after the last arrived.
    let gap = Duration::from_millis(1_500);
    let d = &d;
    let (sent_last, sent_before) = tokio::join!(
        d.send(&last),
        futures::future::join_all(before.iter().zip(1u32..).map(|(t, i)| async move {
            tokio::time::sleep(gap * i).await;
            d.send(t).await
        }))
    );
    sent_last.expect("the last runs once it has waited six order waits");
    assert_eq!(result_at(&d.http, &last.id).await.status, "SUCCESS");
    // It ran at its cap (18 s), passing over the tasks still to come: the fourteenth, sent at
    // 21 s, can no longer run in order. (Without the cap the last would have waited for it.)
    let refused = sent_before.last().unwrap();
    assert!(refused.is_err(), "the fourteenth still ran: the last waited past its cap");
    assert!(sent_before[0].is_ok(), "the first ran in turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_waiting_for_an_earlier_one_hold_no_admission_slot() {
    let net = network().await;
    let d = Deployed::new(&net).await;
    // More tasks of one contract than a client may have in flight at the gateway, or the
    // gateway at the worker (32 each), recorded in order.
    let mut tasks = Vec::new();
    for i in 0..41u8 {
        let args = (AlloyAddress::repeat_byte(i + 1), U256::from(100 + u64::from(i)));
        tasks.push(d.record("add_millionaire(address,uint256)", &args.abi_encode_params()).await);
    }
    let (first, later) = tasks.split_first().unwrap();
    // The later 40 are sent one after another (each once the one before has passed its
    // checks) and wait in their contract's line for the first: before, the 33rd found every
    // slot held by a waiting task and was refused. The first is sent last, and then every one
    // of them runs.
    // Each well after the one before passed its checks (a few ms), all well within the
    // worker's 5 s wait for the first.
    let gap = Duration::from_millis(25);
    let d = &d;
    let (sent_later, sent_first) = tokio::join!(
        futures::future::join_all(later.iter().zip(0u32..).map(|(t, i)| async move {
            tokio::time::sleep(gap * i).await;
            d.send(t).await
        })),
        async {
            tokio::time::sleep(gap * 40 + Duration::from_millis(300)).await;
            d.send(first).await
        }
    );
    sent_first.unwrap();
    for (t, sent) in later.iter().zip(sent_later) {
        sent.unwrap_or_else(|e| panic!("task {} was refused: {e}", t.id));
    }
    let ids: Vec<_> = tasks.iter().map(|t| t.id).collect();
    verified(&net.chain, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_rpc_requests_get_errors_and_the_node_keeps_serving() {
    let net = network().await;
    let addr = net.workers[0].gateway_addr.unwrap();
    let url = format!("http://{addr}");
    let client = reqwest::Client::new();
    let garbage = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = garbage.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "a parse error: {body}");
    let wrong = client
        .post(&url)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "getTaskResult", "params": [{"taskId": "0x12"}]}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("task id is 32 bytes"), "{body}");
    let huge = "x".repeat(MAX_REQUEST_BYTES as usize + 10);
    // The server answers 413 and closes; a client still writing may see the close first.
    match reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
    {
        Ok(response) => assert_eq!(response.status(), 413, "an oversized body is refused"),
        Err(e) => assert!(e.is_request(), "the server cut the oversized request off: {e}"),
    }
    // A peer that sends garbage over p2p gets an error, and everyone else is still served.
    let (rogue, _events) = enigma_p2p::spawn(enigma_p2p::Config {
        bootstrap: net.workers[0].p2p_addrs.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let answer = eventually("the rogue peer's garbage is answered", || {
        let rogue = &rogue;
        let target = net.workers[0].peer_id;
        async move { rogue.send_raw_task(target, vec![0xba; 64]).await.ok() }
    })
    .await;
    assert!(matches!(answer, enigma_p2p::TaskResponse::Rejected(why) if why.contains("malformed")));
    let http = HttpClientBuilder::default().build(&url).unwrap();
    let info: serde_json::Value = http.request("getInfo", rpc_params![]).await.unwrap();
    assert_eq!(info["signer"], net.workers[0].signer.to_string());
}

/// A state-key request for `contract` signed by `signer`, as a host with a plain key pair (no
/// enclave) would make it.
fn plain_request(
    signer: &KeyPair,
    epoch_block: u64,
    contract: ContractAddress,
) -> (String, String) {
    let eph = KeyPair::generate().unwrap();
    let request = enigma_types::enc::Encoder::new()
        .bytes(b"enigma-state-key-request-v2")
        .bytes(eph.public_key().as_bytes())
        .bytes(&[1; 12])
        .u64(epoch_block)
        .bytes(signer.address().as_bytes())
        .list([contract], |e, c| e.bytes(c.as_bytes()))
        .list([code_hash(&millionaires())], |e, h| e.bytes(h.as_bytes()))
        .into_bytes();
    let signature = signer.sign_digest(&enigma_types::messages::bytes_digest(&request));
    (hexed(&request), signature.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_an_attested_enclave_gets_no_state_key_from_the_key_manager() {
    let net = network().await;
    let epoch = net.chain.current_epoch().await.unwrap().unwrap();
    let km = HttpClientBuilder::default().build(format!("http://{}", net._km.rpc_addr)).unwrap();
    let host = KeyPair::from_bytes(&[0x71; 32]).unwrap();
    // Whichever contract the host is after, and whether or not any worker is selected for it.
    let contract = ContractAddress::from(task_id(&host.address(), 0));
    let (request, signature) = plain_request(&host, epoch.first_block, contract);
    let genuine = net.chain.worker_evidence(net.workers[0].signer).await.unwrap().unwrap();
    let forged = enigma_attestation::Evidence::Simulation(
        enigma_attestation::SimulationAuthority::new(KeyPair::from_bytes(&[0x72; 32]).unwrap())
            .attest(
                devnet_measurements(net.attestation.authority).0,
                1,
                false,
                enigma_types::messages::ReportData::new(
                    host.address().into(),
                    &host.address(),
                    &net._km.signer.into(),
                    0,
                )
                .to_bytes(),
            ),
    );
    let attempts = [
        (None, "is not registered and sent no evidence"),
        (Some(serde_json::to_value(&genuine.evidence).unwrap()), "but the request is signed by"),
        (Some(serde_json::to_value(&forged).unwrap()), "not by the configured authority"),
        (Some(serde_json::json!({"kind": "simulation"})), "is not attestation evidence"),
    ];
    for (evidence, why) in attempts {
        let mut params = serde_json::json!({"request": request, "signature": signature});
        if let Some(e) = evidence {
            params["evidence"] = e;
        }
        let answer: Result<serde_json::Value, _> =
            km.request("getStateKeys", rpc_params![params]).await;
        let error = answer.expect_err("no key for a host without an attested enclave");
        assert!(error.to_string().contains(why), "expected `{why}`: {error}");
    }
}
