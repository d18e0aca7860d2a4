//! `enigma deploy`, `enigma call` and `enigma account` against a devnet started by the test,
//! reading its `devnet.json`: the millionaires example from the command line, with `--json`.

use std::{path::PathBuf, process::Command};

use enigma_node::{DevnetConfig, start_devnet};

fn millionaires_wasm() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_contract_build::BuildOptions::examples(&root);
    let built = enigma_contract_build::build(&options).unwrap();
    enigma_contract_build::find(&built, "millionaires").unwrap().wasm.clone()
}

/// Runs `enigma ARGS --devnet SUMMARY --json`; returns the JSON it printed, or its stderr.
async fn enigma(summary: &std::path::Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_enigma"));
    cmd.args(args).arg("--devnet").arg(summary).arg("--json");
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}")))
}

/// A devnet in `data_dir` mining every 100 ms (`enigma devnet --block-ms 100`) rather than a
/// block per transaction: every command the tests run waits for blocks it did not ask for.
async fn devnet(data_dir: &std::path::Path) -> enigma_node::Devnet {
    start_devnet(
        DevnetConfig {
            epoch_size: 10_000,
            block_time: Some(std::time::Duration::from_millis(100)),
            ..DevnetConfig::on_free_ports(data_dir.to_path_buf())
        },
        |_| {},
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_millionaires_example_runs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("devnet");
    let devnet = devnet(&data_dir).await;
    let summary = data_dir.join("devnet.json");
    let wasm = millionaires_wasm();
    let wasm = wasm.to_str().unwrap();

    // Nothing prepaid yet: the error says so and what to do.
    let err = enigma(&summary, &["deploy", wasm]).await.unwrap_err();
    assert!(err.contains("prepaid balance is 0 grains"), "{err}");
    let account = enigma(&summary, &["account", "deposit", "1000000000000"]).await.unwrap();
    assert_eq!(account["prepaid_grains"], "1000000000000");

    let deployed = enigma(&summary, &["deploy", wasm]).await.unwrap();
    let contract = deployed["contract"].as_str().unwrap().to_string();
    for (who, worth) in [
        ("0x1111111111111111111111111111111111111111", "10"),
        ("0x2222222222222222222222222222222222222222", "30"),
        ("0x3333333333333333333333333333333333333333", "20"),
    ] {
        enigma(&summary, &["call", &contract, "add_millionaire(address,uint256)", who, worth])
            .await
            .unwrap();
    }
    let richest =
        enigma(&summary, &["call", &contract, "compute_richest()", "--returns", "(address)"])
            .await
            .unwrap();
    assert_eq!(richest["decoded"][0], "0x2222222222222222222222222222222222222222");
    assert!(richest["gas_used"].as_u64().unwrap() > 0);
    // Receipts go in batches: a result is usually provisional when it arrives.
    assert!(["provisional", "confirmed"].contains(&richest["finality"].as_str().unwrap()));
    let confirmed = enigma(
        &summary,
        &["call", &contract, "compute_richest()", "--returns", "(address)", "--confirm"],
    )
    .await
    .unwrap();
    assert_eq!(confirmed["finality"], "confirmed", "--confirm waits for the receipt");

    // A wrong argument is refused before anything is recorded or paid: no task record.
    let s = &devnet.summary;
    let chain = enigma_chain::Chain::new(
        enigma_chain::provider(&s.chain_url, None).await.unwrap(),
        s.deployment.enigma,
        s.deployment.token,
        None,
    );
    let user = s.accounts[0].address;
    let tasks_before = chain.task_nonce(user).await.unwrap();
    let err =
        enigma(&summary, &["call", &contract, "add_millionaire(address,uint256)", "0x12", "1"])
            .await
            .unwrap_err();
    assert!(err.contains("argument 1"), "{err}");
    assert_eq!(chain.task_nonce(user).await.unwrap(), tasks_before);

    // Withdrawing moves grains from the prepaid balance back to the account's ENG. (Fees settle
    // as receipt batches commit, which changes the prepaid balance but not the account's ENG.)
    let before = enigma(&summary, &["account", "balance"]).await.unwrap();
    let after = enigma(&summary, &["account", "withdraw", "1000"]).await.unwrap();
    let grains = |v: &serde_json::Value| v["eng_grains"].as_str().unwrap().parse::<u128>().unwrap();
    assert_eq!(grains(&after), grains(&before) + 1000);

    // A new contract from the template, built and used from the command line.
    let project = dir.path().join("counter");
    let out = Command::new(env!("CARGO_BIN_EXE_enigma"))
        .args(["contract", "new", "counter", "--path"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = Command::new(env!("CARGO_BIN_EXE_enigma"));
    build
        .args(["contract", "build", "--json", "--target-dir"])
        .arg(root.join("target/contracts"))
        .arg(&project)
        // Everything it needs is in the local registry (the examples use the same crates).
        .env("CARGO_NET_OFFLINE", "true");
    let out = tokio::task::spawn_blocking(move || build.output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counter_wasm = built[0]["wasm"].as_str().unwrap().to_string();
    assert!(counter_wasm.ends_with("counter.wasm"), "{built}");
    let counter =
        enigma(&summary, &["deploy", &counter_wasm, "--constructor", "construct(uint256)", "5"])
            .await
            .unwrap();
    let counter = counter["contract"].as_str().unwrap().to_string();
    let added =
        enigma(&summary, &["call", &counter, "add(uint256)", "7", "--returns", "(uint256)"])
            .await
            .unwrap();
    assert_eq!(added["decoded"][0], "12");

    // Sixteen `enigma call`s at once from the same account: separate processes whose
    // transactions and task records race for the account's nonces. Each gets through.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (summary, counter) = (summary.clone(), counter.clone());
        calls.spawn(async move {
            enigma(&summary, &["call", &counter, "add(uint256)", "1", "--returns", "(uint256)"])
                .await
        });
    }
    while let Some(done) = calls.join_next().await {
        let out = done.unwrap();
        assert!(out.is_ok(), "a concurrent call failed: {}", out.unwrap_err());
    }
    let value =
        enigma(&summary, &["call", &counter, "value()", "--returns", "(uint256)"]).await.unwrap();
    assert_eq!(value["decoded"][0], "28", "12 and sixteen ones");
    // Only its owner (the deployer, the verified caller of the deployment) resets it.
    let other = &s.accounts[3].private_key;
    enigma(&summary, &["account", "deposit", "100000000000", "--key", other]).await.unwrap();
    let err = enigma(&summary, &["call", &counter, "reset()", "--key", other]).await.unwrap_err();
    assert!(err.contains("only the counter's owner"), "{err}");
    enigma(&summary, &["call", &counter, "reset()"]).await.unwrap();
    let value =
        enigma(&summary, &["call", &counter, "value()", "--returns", "(uint256)"]).await.unwrap();
    assert_eq!(value["decoded"][0], "0", "reset by its owner");
    // The same read as a query: no task recorded (so no fee). On the worker's latest state (the
    // reset's receipt may still be in a batch; the chain's state can lag it).
    let before = enigma(&summary, &["account", "balance"]).await.unwrap();
    let asked =
        enigma(&summary, &["query", &counter, "value()", "--returns", "(uint256)", "--latest"])
            .await
            .unwrap();
    assert_eq!(asked["decoded"][0], "0");
    let after = enigma(&summary, &["account", "balance"]).await.unwrap();
    assert_eq!(before["tasks_recorded"], after["tasks_recorded"], "a query records nothing");
    // With a permit instead of a signature per query.
    let permit =
        enigma(&summary, &["permit", "--contract", &counter, "--expires-in", "600"]).await.unwrap();
    assert_eq!(permit["contracts"][0], counter.as_str());
    let permit_file = dir.path().join("permit.json");
    std::fs::write(&permit_file, permit.to_string()).unwrap();
    let query_with_permit = [
        "query",
        &counter,
        "value()",
        "--returns",
        "(uint256)",
        "--latest",
        "--permit",
        permit_file.to_str().unwrap(),
    ];
    let asked = enigma(&summary, &query_with_permit).await.unwrap();
    assert_eq!(asked["decoded"][0], "0");
    // Revoked (its default name): the same permit is refused from then on.
    let revoked = enigma(&summary, &["permit", "--revoke", "--contract", &counter]).await.unwrap();
    assert_eq!(revoked["revoked"], "enigma cli");
    assert!(revoked["task_id"].as_str().unwrap().starts_with("0x"), "{revoked}");
    let err = enigma(&summary, &query_with_permit).await.unwrap_err();
    assert!(err.contains("revoked"), "{err}");
    // A function the contract does not mark #[query] is tasks only.
    let err = enigma(&summary, &["query", &counter, "add(uint256)", "1"]).await.unwrap_err();
    assert!(err.contains("does not answer queries"), "{err}");

    // The task commands: its status on chain (once its receipt batch lands), its signed result,
    // and a refund refused for a task that has a receipt.
    let task = richest["task_id"].as_str().unwrap().to_string();
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = enigma(&summary, &["task", "status", &task]).await.unwrap();
        if status["status"] != "Created" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "Verified", "{status}");
    assert_eq!(status["refundable"], false);
    let result = enigma(&summary, &["task", "result", &task]).await.unwrap();
    assert_eq!(result["status"], "SUCCESS");
    assert_eq!(result["taskId"], task);
    let err = enigma(&summary, &["task", "refund", &task]).await.unwrap_err();
    assert!(err.contains("returning the fee of task"), "{err}");
    let err =
        enigma(&summary, &["task", "status", &format!("0x{}", "ab".repeat(32))]).await.unwrap_err();
    assert!(err.contains("has no record on chain"), "{err}");

    // A new worker: registered and staked, logged in, logged out — without running it.
    let operator = &s.accounts[2];
    let worker_dir = dir.path().join("new-worker");
    let node = |action: &'static str| {
        let mut args = vec![
            "worker".to_string(),
            action.to_string(),
            "--data-dir".into(),
            worker_dir.display().to_string(),
            "--chain-url".into(),
            s.chain_url.clone(),
            "--enigma".into(),
            s.deployment.enigma.to_string(),
            "--token".into(),
            s.deployment.token.to_string(),
            "--operator-key".into(),
            operator.private_key.clone(),
            "--attestation-url".into(),
            s.attestation_url.clone(),
            "--sim-authority".into(),
            s.simulation_authority.clone(),
            "--json".into(),
        ];
        if action == "register" {
            args.extend(["--stake".into(), "500000000000".into()]);
        }
        args
    };
    let run = |args: Vec<String>| async move {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_enigma"));
        cmd.args(&args);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let registered = run(node("register")).await;
    assert_eq!(registered["stake_grains"], "500000000000");
    assert_eq!(registered["operator"], operator.address.to_string());
    let signer = registered["signer"].clone();
    let logged_in = run(node("login")).await;
    assert_eq!(logged_in["status"], "LoggedIn");
    assert_eq!(logged_in["signer"], signer, "the same enclave identity from its data directory");
    let logged_out = run(node("logout")).await;
    assert_eq!(logged_out["status"], "LoggedOut");
    devnet.stop().await;
}

#[test]
fn a_gateway_refuses_a_workers_flags_and_asks_for_its_address() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_enigma")).arg("gateway").args(args).output();
        let out = out.unwrap();
        assert!(!out.status.success(), "enigma gateway {args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--stake", "5", "--gateway-listen", "127.0.0.1:0"]);
    assert!(e.contains("runs no task and sends no transaction: --stake"), "{e}");
    let e = run(&["--operator-key", "@key", "--gateway-listen", "127.0.0.1:0"]);
    assert!(e.contains("--operator-key is for a worker or the key manager"), "{e}");
    let e = run(&["--data-dir", "gw"]);
    assert!(e.contains("--gateway-listen is required"), "{e}");
}

/// `enigma bench load` against a devnet the test started: every kind of call of its mix is
/// sent and answered, every recorded task is Verified on chain, and the ledgers hold exactly
/// the writes it counts (asked with `enigma query`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_load_sends_its_mix_to_a_running_devnet_and_counts_every_task_on_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("devnet");
    let devnet = devnet(&data_dir).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_contract_build::BuildOptions::examples(&root);
    options.packages = vec!["ledger".into()];
    let built = enigma_contract_build::build(&options).unwrap();
    let ledger = enigma_contract_build::find(&built, "ledger").unwrap().wasm.clone();
    let bench = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_enigma"));
        cmd.args(["bench", "load", "--contract"]).arg(&ledger).args(args);
        async move { tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap() }
    };

    // No devnet there: the error says what was looked for.
    let missing = dir.path().join("nothing");
    let out = bench(&["--devnet", missing.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a devnet running there?"), "{err}");

    let out = bench(&[
        "--devnet",
        data_dir.to_str().unwrap(),
        "--clients",
        "3",
        "--contracts",
        "2",
        "--seconds",
        "8",
        "--mix",
        "write=3,read=1,query=1,deploy=1",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["failures"], serde_json::json!({}), "{s}");
    let count = |v: &serde_json::Value| v.as_u64().unwrap();
    let recorded = count(&s["recorded"]);
    assert!(recorded > 0, "{s}");
    assert_eq!(s["chain_status"], serde_json::json!({ "Verified": recorded }), "{s}");
    let mut tasks = 0;
    for kind in ["write", "read", "query", "deploy"] {
        let k = &s["by_kind"][kind];
        assert!(count(&k["calls"]) > 0, "no {kind} call was sent: {s}");
        assert_eq!(k["answered"], k["calls"], "{kind}: {s}");
        assert_eq!(k["completed"], k["calls"], "{kind}: {s}");
        if kind != "query" {
            tasks += count(&k["calls"]);
        }
    }
    assert_eq!(tasks, recorded, "every task sent was recorded, and nothing else: {s}");
    assert_eq!(count(&s["completed"]), recorded, "{s}");
    assert_eq!(s["queries_answered"], s["by_kind"]["query"]["calls"], "{s}");
    assert!(count(&s["gas_per_task"]["all_in"]) > 0, "{s}");
    assert!(count(&s["gas_per_task"]["receipt_transactions"]) > 0, "{s}");
    // The devnet runs in this test's process, the clients in the command's: both are measured.
    for process in ["devnet_process", "anvil", "load_clients"] {
        assert!(s["cpu_ms_per_completed_call"][process].is_number(), "{process}: {s}");
    }

    // The ledgers hold exactly the writes the load counted.
    let summary = data_dir.join("devnet.json");
    let mut entries = 0;
    for contract in s["contract_addresses"].as_array().unwrap() {
        let held = enigma(
            &summary,
            &["query", contract.as_str().unwrap(), "summary()", "--returns", "(uint256,uint256)"],
        )
        .await
        .unwrap();
        entries += held["decoded"][1].as_str().unwrap().parse::<u64>().unwrap();
    }
    assert_eq!(entries, count(&s["by_kind"]["write"]["completed"]), "{s}");
    devnet.stop().await;
}
