//! A worker killed with SIGKILL between executing tasks and committing their receipts commits
//! them after it restarts, once, and loses no result or state.

use std::{
    future::Future,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use alloy::providers::Provider as _;
use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use base64::Engine as _;
use enigma_chain::{
    Chain, ChainEvent, DeployConfig, TaskStatus, Watcher, deploy, provider, spawn_anvil,
};
use enigma_crypto::{KeyPair, PublicKey, Signature};
use enigma_node::{
    KmConfig, TaskResultView, devnet_simulation_policy, prepare_km, serve_devnet_attestation,
    start_km,
};
use enigma_types::{
    ContractAddress, TaskId, code_hash, inputs_hash_compute, inputs_hash_deploy,
    messages::{TaskField, task_field_ad, worker_key_digest},
    task_id,
};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};

const ENG: u128 = 100_000_000;

fn millionaires() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_contract_build::BuildOptions::examples(&root);
        let built = enigma_contract_build::build(&options).unwrap();
        std::fs::read(&enigma_contract_build::find(&built, "millionaires").unwrap().wasm).unwrap()
    })
    .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_key(dir: &Path, name: &str, key: &KeyPair) -> String {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode(key.secret_bytes().as_ref())).unwrap();
    format!("@{}", path.display())
}

struct Setup {
    data_dir: PathBuf,
    chain_url: String,
    enigma: String,
    token: String,
    operator: String,
    attestation_url: String,
    authority: String,
    km_url: String,
    gateway_port: u16,
}

fn start(s: &Setup, batch_wait_ms: u64) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_enigma"))
        .args(["worker", "--data-dir"])
        .arg(&s.data_dir)
        .args(["--chain-url", &s.chain_url, "--enigma", &s.enigma, "--token", &s.token])
        .args([
            "--operator-key",
            &s.operator,
            "--attestation-url",
            &s.attestation_url,
            "--sim-authority",
            &s.authority,
            "--km-url",
            &s.km_url,
        ])
        .args(["--gateway-listen", &format!("127.0.0.1:{}", s.gateway_port)])
        .args([
            "--stake",
            &(1_000 * ENG).to_string(),
            "--batch-size",
            "100",
            "--batch-wait-ms",
            &batch_wait_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.contains("ready"), "{ready}");
    // Keep reading, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn hexed(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Encrypts a task's field as the client does: bound to the task and contract.
fn seal(
    shared: &enigma_crypto::SymmetricKey,
    contract: &ContractAddress,
    task: &TaskId,
    field: TaskField,
    plain: &[u8],
) -> Vec<u8> {
    shared.encrypt_with_ad(plain, &task_field_ad(contract, task, 0, field)).unwrap()
}

/// Decrypts a task's output and removes its padding.
fn open(
    shared: &enigma_crypto::SymmetricKey,
    contract: &ContractAddress,
    task: &TaskId,
    hex_output: &str,
) -> Vec<u8> {
    let blob = hex::decode(hex_output.trim_start_matches("0x")).unwrap();
    let padded = shared
        .decrypt_with_ad(&blob, &task_field_ad(contract, task, 0, TaskField::Output))
        .expect("the output decrypts");
    enigma_types::padding::unpad(&padded).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_committing_commits_once_after_restart_and_loses_nothing() {
    let anvil = spawn_anvil().unwrap();
    let url = anvil.endpoint_url().to_string();
    let account = |i: usize| KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The test plays Intel: it runs the attestation service with the authority's key.
    let attestation =
        serve_devnet_attestation("127.0.0.1:0".parse().unwrap(), KeyPair::generate().unwrap())
            .await
            .unwrap();
    let principal = prepare_km(&dir.path().join("km"), account(9).address(), attestation.authority)
        .unwrap()
        .signer;
    let p = provider(&url, Some(&account(0))).await.unwrap();
    let config = DeployConfig {
        // Long epochs: the test's own transactions must not rotate the worker's IO key between
        // fetching it and recording the tasks.
        epoch_size: 1_000,
        timeout_blocks: 500,
        principal,
        group_size: 1,
        simulation: Some(devnet_simulation_policy(attestation.authority)),
        ias: None,
        task_limits: enigma_chain::DEFAULT_TASK_LIMITS,
    };
    let d = deploy(&p, &config).await.unwrap();
    let chain = Chain::new(p, d.enigma, d.token, Some(account(0).address()));
    let km = start_km(KmConfig {
        data_dir: dir.path().join("km"),
        chain_url: url.clone(),
        enigma: d.enigma,
        token: d.token,
        operator: account(9),
        rpc_listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_millis(200),
        attestation_url: Some(attestation.url.clone()),
        simulation_authority: attestation.authority,
    })
    .await
    .unwrap();
    chain.transfer_token(account(1).address(), 2_000 * ENG).await.unwrap();
    let setup = Setup {
        data_dir: dir.path().join("worker"),
        chain_url: url.clone(),
        enigma: d.enigma.to_string(),
        token: d.token.to_string(),
        operator: write_key(dir.path(), "operator.key", &account(1)),
        attestation_url: attestation.url.clone(),
        authority: attestation.authority.to_string(),
        km_url: format!("http://{}", km.rpc_addr),
        gateway_port: free_port(),
    };
    // Receipts wait an hour: the kill comes after execution and before any batch commit.
    let mut worker = start(&setup, 3_600_000);
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (1_000u64,)).await.unwrap();
    let epoch = eventually("an epoch with the worker", || async {
        chain.current_epoch().await.ok().flatten().filter(|e| e.workers.len() == 1)
    })
    .await;
    let signer = epoch.workers[0];

    let gateway = format!("http://127.0.0.1:{}", setup.gateway_port);
    let http = HttpClientBuilder::default().build(&gateway).unwrap();
    let key_answer: serde_json::Value = eventually("the worker key", || {
        let http = &http;
        async move {
            http.request::<serde_json::Value, _>(
                "getWorkerEncryptionKey",
                rpc_params![serde_json::json!({"workerAddress": signer.to_string()})],
            )
            .await
            .ok()
        }
    })
    .await;
    let worker_key: PublicKey =
        key_answer["workerEncryptionKey"].as_str().unwrap().parse().unwrap();
    let sig: Signature = key_answer["workerSig"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        sig.recover_address(&worker_key_digest(worker_key.as_bytes())).unwrap(),
        signer.into()
    );

    let user = account(5);
    let user_chain = Chain::connect(&url, Some(&user), d.enigma, d.token).await.unwrap();
    chain.transfer_token(user.address(), 10_000 * ENG).await.unwrap();
    user_chain.deposit_balance(1_000 * ENG).await.unwrap();

    // Deploy (its receipt commits at once) and two computes (their receipts wait).
    let code = millionaires();
    let t = KeyPair::generate().unwrap();
    let shared = t.derive_key(&worker_key);
    let deploy = task_id(&user.address(), 0);
    let at = ContractAddress::from(deploy);
    let f = seal(&shared, &at, &deploy, TaskField::Callable, b"construct()");
    let a = seal(&shared, &at, &deploy, TaskField::Arguments, &[]);
    let inputs = inputs_hash_deploy(&f, &a, &code_hash(&code), t.public_key().as_bytes());
    let (deploy_id, _) = user_chain
        .create_deployment_task_record(inputs, 50_000_000, 1, epoch.first_block, 0)
        .await
        .unwrap();
    let contract = ContractAddress::from(deploy_id);
    assert_eq!(deploy_id, task_id(&user.address(), 0));
    let _: serde_json::Value = http
        .request(
            "deploySecretContract",
            rpc_params![serde_json::json!({
                "workerAddress": signer.to_string(), "preCode": base64::engine::general_purpose::STANDARD.encode(&code),
                "encryptedArgs": hexed(&a), "encryptedFn": hexed(&f), "userDHKey": hexed(t.public_key().as_bytes()),
                "contractAddress": contract.to_string(),
            })],
        )
        .await
        .unwrap();
    let view: TaskResultView = eventually("the deploy result", || {
        let http = &http;
        async move {
            http.request::<Option<TaskResultView>, _>(
                "getTaskResult",
                rpc_params![serde_json::json!({"taskId": deploy_id.to_string()})],
            )
            .await
            .ok()
            .flatten()
        }
    })
    .await;
    let text =
        String::from_utf8_lossy(&open(&shared, &contract, &deploy_id, &view.output)).into_owned();
    assert_eq!(view.status, "SUCCESS", "the deploy failed: {text:?}");
    eventually("the deployment on chain", || async {
        chain.secret_contract(&contract).await.ok().flatten()
    })
    .await;

    let mut ids: Vec<TaskId> = Vec::new();
    for (who, worth) in [(1u8, 100u64), (2, 900)] {
        let t = KeyPair::generate().unwrap();
        let shared = t.derive_key(&worker_key);
        let nonce = user_chain.task_nonce(user.address()).await.unwrap();
        let id = task_id(&user.address(), nonce);
        let f =
            seal(&shared, &contract, &id, TaskField::Callable, b"add_millionaire(address,uint256)");
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        let a = seal(&shared, &contract, &id, TaskField::Arguments, &args);
        let inputs = inputs_hash_compute(&f, &a, &contract, t.public_key().as_bytes());
        let (recorded, _) = user_chain
            .create_task_record(contract, inputs, 50_000_000, 1, epoch.first_block, nonce, 0)
            .await
            .unwrap();
        assert_eq!(recorded, id);
        let _: serde_json::Value = http
            .request(
                "sendTaskInput",
                rpc_params![serde_json::json!({
                    "taskId": id.to_string(), "workerAddress": signer.to_string(), "encryptedFn": hexed(&f),
                    "encryptedArgs": hexed(&a), "contractAddress": contract.to_string(), "userDHKey": hexed(t.public_key().as_bytes()),
                })],
            )
            .await
            .unwrap();
        ids.push(id);
    }
    for id in &ids {
        let view: TaskResultView = eventually("a result", || {
            let http = &http;
            async move {
                http.request::<Option<TaskResultView>, _>(
                    "getTaskResult",
                    rpc_params![serde_json::json!({"taskId": id.to_string()})],
                )
                .await
                .ok()
                .flatten()
            }
        })
        .await;
        assert_eq!(view.status, "SUCCESS");
        assert_eq!(
            chain.task(id).await.unwrap().unwrap().status,
            TaskStatus::Created,
            "executed, not committed"
        );
    }

    // SIGKILL: no shutdown, no flush.
    worker.kill().unwrap();
    worker.wait().unwrap();
    let stake_before = chain.worker_by_signer(signer).await.unwrap().unwrap().balance;
    let start_block = chain.block_number().await.unwrap();

    // Restart on the same data: the pending receipts go to the chain.
    let mut worker = start(&setup, 300);
    for id in &ids {
        let status = eventually("the receipt after restart", || async {
            chain
                .task(id)
                .await
                .ok()
                .flatten()
                .map(|r| r.status)
                .filter(|s| *s != TaskStatus::Created)
        })
        .await;
        assert_eq!(status, TaskStatus::Verified);
    }
    // Once: each task appears in exactly one receipt event, and the fees were credited once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut watcher = Watcher::new(chain.provider().clone(), d.enigma, start_block, 0);
    let mut seen = Vec::new();
    for _ in 0..3 {
        for e in watcher.poll().await.unwrap().events {
            match e.event {
                ChainEvent::ReceiptsVerified { task_ids, .. } => seen.extend(task_ids),
                ChainEvent::ReceiptVerified { task_id, .. } => seen.push(task_id),
                _ => {}
            }
        }
    }
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want, "each receipt committed exactly once");
    let gas: u64 = {
        let mut total = 0;
        for id in &ids {
            let v: TaskResultView = http
                .request(
                    "getTaskResult",
                    rpc_params![serde_json::json!({"taskId": id.to_string()})],
                )
                .await
                .unwrap();
            total += v.gas_used;
        }
        total
    };
    assert_eq!(
        chain.worker_by_signer(signer).await.unwrap().unwrap().balance - stake_before,
        u128::from(gas),
        "paid once, to the grain"
    );

    // Nothing lost: the state carries on from the stored deltas.
    let t = KeyPair::generate().unwrap();
    let shared = t.derive_key(&worker_key);
    let nonce = user_chain.task_nonce(user.address()).await.unwrap();
    let id = task_id(&user.address(), nonce);
    let f = seal(&shared, &contract, &id, TaskField::Callable, b"compute_richest()");
    let a = seal(&shared, &contract, &id, TaskField::Arguments, &[]);
    let inputs = inputs_hash_compute(&f, &a, &contract, t.public_key().as_bytes());
    let (id, _) = user_chain
        .create_task_record(contract, inputs, 50_000_000, 1, epoch.first_block, nonce, 0)
        .await
        .unwrap();
    let _: serde_json::Value = http
        .request(
            "sendTaskInput",
            rpc_params![serde_json::json!({
                "taskId": id.to_string(), "workerAddress": signer.to_string(), "encryptedFn": hexed(&f),
                "encryptedArgs": hexed(&a), "contractAddress": contract.to_string(), "userDHKey": hexed(t.public_key().as_bytes()),
            })],
        )
        .await
        .unwrap();
    let view: TaskResultView = eventually("the richest", || {
        let http = &http;
        async move {
            http.request::<Option<TaskResultView>, _>(
                "getTaskResult",
                rpc_params![serde_json::json!({"taskId": id.to_string()})],
            )
            .await
            .ok()
            .flatten()
        }
    })
    .await;
    let output = open(&shared, &contract, &id, &view.output);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
    km.stop().await;
}
