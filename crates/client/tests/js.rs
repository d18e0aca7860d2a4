//! enigma-js against a devnet: the JavaScript client (clients/js: the Rust client's protocol
//! logic as WebAssembly, the chain through viem) selects the worker, checks its attestation and
//! its key, encrypts and signs a query, and verifies and decrypts the answer — which equals what
//! the Rust client gets for the same query. Needs `clients/js` built (`npm ci` and
//! `node build.mjs` there; `scripts/test` does both first).

use crate::common;

use std::path::PathBuf;

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_client::Client;

const GAS: u64 = 20_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_client_asks_a_query_and_gets_the_answer_the_rust_client_gets() {
    let js = built_js();
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let alice = Client::connect(common::config(s, &s.gateway_url, 0)).await.unwrap();
    alice.deposit(400_000_000).await.unwrap();
    let wasm = std::fs::read(millionaires_wasm()).unwrap();
    let m = alice.deploy(&wasm, "construct()", &[], GAS).await.unwrap().contract;
    for (who, worth) in [(1u8, 10u64), (2, 30), (3, 20)] {
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        let o = alice.compute(m, "add_millionaire(address,uint256)", &args, GAS).await.unwrap();
        alice.confirm(&o).await.unwrap();
    }
    // Eight more at once: the worker commits their receipts together, and a receipt batch of
    // four or more deltas keeps them on chain as a chunk (a commitment, the hashes in its event).
    let more = (10u8..18).map(|who| {
        let args = (AlloyAddress::repeat_byte(who), U256::from(who)).abi_encode_params();
        let alice = &alice;
        async move {
            let o = alice.compute(m, "add_millionaire(address,uint256)", &args, GAS).await?;
            alice.confirm(&o).await
        }
    });
    for done in futures::future::join_all(more).await {
        done.unwrap();
    }
    let rust = alice.query(m, "compute_richest()", &[]).await.unwrap();
    let deltas = alice.chain().delta_hashes(&m, 0, u64::MAX).await.unwrap();
    assert_eq!(deltas.len(), 12, "the constructor's delta and one per task");
    // (The eight run within the worker's one-second receipt window, so at least four of them
    // share a receipt batch.)
    let kept = enigma_chain::bindings::EnigmaBatches::new(
        enigma_chain::convert::eth(s.deployment.enigma),
        alice.chain().provider().clone(),
    )
    .getDeltas(enigma_chain::convert::b256(m), U256::ZERO, U256::from(deltas.len()))
    .call()
    .await
    .unwrap();
    assert!(!kept.chunks.is_empty(), "some delta hashes are kept as a chunk");

    let config = serde_json::json!({
        "connect": js_connect(s, 1),
        "contract": m.to_string(),
        "callable": "compute_richest()",
        "args": "0x",
        "taskOnly": "add_millionaire(address,uint256)",
        "deltaCount": deltas.len(),
    });
    let got = run_js(&js, &config).await;
    let js_deltas: Vec<String> = serde_json::from_value(got["deltaHashes"].clone()).unwrap();
    let rust_deltas: Vec<String> =
        deltas.iter().map(|h| format!("0x{}", hex::encode(h.0))).collect();
    assert_eq!(js_deltas, rust_deltas, "enigma-js reads every delta hash the Rust client reads");
    let rust_output = format!("0x{}", hex::encode(&rust.output));
    assert_eq!(got["output"], rust_output.as_str(), "the same answer as the Rust client");
    assert_eq!(got["anonymousOutput"], rust_output.as_str());
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&rust.output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
    assert_eq!(got["worker"], rust.worker.to_string().as_str());
    assert_eq!(got["deltaCount"], rust.delta_count);
    assert_eq!(got["address"], s.accounts[1].address.to_string().as_str());
    let refused = got["refused"].as_str().unwrap();
    assert!(refused.contains("does not answer queries"), "{refused}");
    // Asked with a permit (signed once): the same answer, as the permit's signer; a permit for
    // other contracts, or one revoked by a task, is refused.
    assert_eq!(got["permitOutput"], rust_output.as_str());
    assert_eq!(got["permitCaller"], s.accounts[1].address.to_string().as_str());
    let refused = got["permitRefused"].as_str().unwrap();
    assert!(refused.contains("the permit does not cover contract"), "{refused}");
    let refused = got["revokedRefused"].as_str().unwrap();
    assert!(refused.contains("the permit was revoked by its signer"), "{refused}");

    // Through a hostile gateway, enigma-js refuses what the Rust client refuses: another
    // query's genuine, signed answer served for its own; a worker key signed by another enclave;
    // an answer whose fields are not of their types.
    let (hostile, proxy, _server) = crate::adversarial::hostile_gateway(&s.gateway_url).await;
    let mut config = config;
    config["connect"]["gatewayUrl"] = hostile.clone().into();
    config["expectRefusal"] = true.into();
    let via = Client::connect(common::config(s, &hostile, 0)).await.unwrap();
    via.query(m, "compute_richest()", &[]).await.unwrap();
    let other = proxy.last_answer.lock().unwrap().clone();
    *proxy.tamper.lock().unwrap() = crate::adversarial::Tamper::ServeAnswer(other);
    let got = run_js(&js, &config).await;
    assert!(got["refused"].as_str().unwrap().contains("answers another query"), "{got}");
    let upstream =
        jsonrpsee::http_client::HttpClientBuilder::default().build(&s.gateway_url).unwrap();
    let someone_else = s
        .worker_signers
        .iter()
        .find(|w| !w.eq_ignore_ascii_case(&rust.worker.to_string()))
        .expect("the devnet has several workers");
    let foreign: serde_json::Value = jsonrpsee::core::client::ClientT::request(
        &upstream,
        "getWorkerEncryptionKey",
        jsonrpsee::rpc_params![serde_json::json!({ "workerAddress": someone_else })],
    )
    .await
    .unwrap();
    *proxy.tamper.lock().unwrap() = crate::adversarial::Tamper::ForeignKey(foreign);
    let got = run_js(&js, &config).await;
    assert!(got["refused"].as_str().unwrap().contains("not signed by its enclave"), "{got}");
    // The genuine answer with a field of the wrong type (a number as a string).
    *proxy.tamper.lock().unwrap() = crate::adversarial::Tamper::QuotedCount;
    let got = run_js(&js, &config).await;
    assert!(got["refused"].as_str().unwrap().contains("deltaCount is not a whole number"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_client_deploys_computes_and_confirms_tasks_the_rust_client_reads() {
    let js = built_js();
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let wasm = millionaires_wasm();
    let (a, b, c) = (
        "0x1111111111111111111111111111111111111111",
        "0x2222222222222222222222222222222222222222",
        "0x3333333333333333333333333333333333333333",
    );
    let (d, e) = (
        "0x4444444444444444444444444444444444444444",
        "0x5555555555555555555555555555555555555555",
    );
    let config = serde_json::json!({
        "connect": js_connect(s, 2),
        "wasm": wasm,
        "deposit": "100000000",
        "millionaires": [[a, 10], [b, 30], [c, 20]],
        "many": [[d, 50], [e, 40]],
    });
    let got = run_script(&js, "devnet/tasks.mjs", &config).await;

    // JS encrypted and recorded the tasks, a Rust worker ran them, and JS verified and decrypted
    // the Rust enclave's results: the richest is the one worth 50, added with `computeMany`.
    let richest = hex::decode(got["richest"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest).unwrap().0,
        d.parse::<AlloyAddress>().unwrap()
    );
    // `computeMany` recorded its two tasks in one transaction, and both ran and settled.
    let many = got["many"].as_array().unwrap();
    assert_eq!(many.len(), 2, "{got}");
    assert_eq!(many[0]["recordTx"], many[1]["recordTx"], "one record transaction: {got}");
    assert_ne!(many[0]["recordTx"], serde_json::Value::Null, "{got}");
    for task in many {
        assert_eq!(task["status"], "Verified", "{task}");
    }
    assert_eq!(got["address"], s.accounts[2].address.to_string().as_str());
    let stages: Vec<&str> =
        got["stages"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for stage in [
        "checking",
        "selecting",
        "encrypting",
        "recording",
        "sending",
        "waiting",
        "verifying",
        "registering",
        "done",
    ] {
        assert!(stages.contains(&stage), "stage {stage} was reported: {stages:?}");
    }
    // The chain holds every task's receipt, with the hashes the JS client verified.
    let rust = Client::connect(common::config(s, &s.gateway_url, 0)).await.unwrap();
    for task in got["tasks"].as_array().unwrap() {
        assert_eq!(task["status"], "Verified", "{task}");
        let id: enigma_types::TaskId = task["taskId"].as_str().unwrap().parse().unwrap();
        assert_eq!(rust.task_status(id).await.unwrap(), enigma_chain::TaskStatus::Verified);
        let result = rust.task_result(id).await.unwrap().expect("the gateway holds the result");
        assert_eq!(result.delta_hash.to_string(), task["deltaHash"].as_str().unwrap());
    }
    assert_eq!(got["richestStatus"], "Verified");
    // The contract JS deployed is one the Rust client uses: it answers the same.
    let contract: enigma_types::ContractAddress =
        got["contract"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        contract.to_string(),
        got["deployTask"].as_str().unwrap(),
        "a deployment's contract is its task id"
    );
    rust.deposit(100_000_000).await.unwrap();
    let answer = rust.query(contract, "compute_richest()", &[]).await.unwrap();
    assert_eq!(answer.output, richest);

    // Through a hostile gateway, enigma-js refuses what the Rust client refuses: a deployment
    // relabelled as a look-alike contract, another task's genuine result, an altered output, a
    // task passed on without its caller proof.
    let (hostile, proxy, _server) = crate::adversarial::hostile_gateway(&s.gateway_url).await;
    let mut config = config;
    config["connect"]["gatewayUrl"] = hostile.clone().into();
    config["expect"] = "refusal".into();
    config["contract"] = got["contract"].clone();
    let first: enigma_types::TaskId = got["tasks"][0]["taskId"].as_str().unwrap().parse().unwrap();
    let other =
        enigma_p2p::messages::ResultView::from(&rust.task_result(first).await.unwrap().unwrap());
    use crate::adversarial::Tamper;
    for (tamper, action, expected) in [
        (Tamper::Relabel(format!("0x{}", "ab".repeat(32))), "deploy", "names contract"),
        (Tamper::Serve(Box::new(other)), "compute", "another task"),
        (Tamper::FlipOutput, "compute", "not signed by the selected worker"),
        (Tamper::StripCaller, "compute", "caller"),
    ] {
        *proxy.tamper.lock().unwrap() = tamper;
        config["action"] = action.into();
        let got = run_script(&js, "devnet/tasks.mjs", &config).await;
        let refused = got["refused"].as_str().unwrap();
        assert!(
            refused.contains(expected) && !refused.starts_with("ACCEPTED"),
            "{action}: {refused}"
        );
    }
    // A gateway that cannot hand the task on at first (-32015): enigma-js sends it again, as
    // the Rust client does, and gets its result.
    *proxy.tamper.lock().unwrap() = Tamper::NotDelivered;
    proxy.refusals_left.store(2, std::sync::atomic::Ordering::SeqCst);
    config["action"] = "compute".into();
    let got = run_script(&js, "devnet/tasks.mjs", &config).await;
    let outcome = got["refused"].as_str().unwrap();
    assert!(outcome.starts_with("ACCEPTED"), "a task not delivered at first: {outcome}");
    assert_eq!(proxy.refusals_left.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_runs_the_template_dapp_and_the_dashboard_shows_its_tasks() {
    built_js();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dapp = root.join("examples/dapp");
    assert!(
        dapp.join("node_modules/vite").exists()
            && dapp.join("node_modules/playwright-core").exists(),
        "the template dApp's packages are missing: run `npm ci` in examples/dapp (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (scripts/test does), or set CHROMIUM"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    // The contracts the page deploys, built where its server looks for them.
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages = vec!["millionaires".into(), "auction".into()];
    enigma_client::build::build(&options).unwrap();

    let artifacts = root.join("target/browser-artifacts");
    let devnet_json = dir.path().join("devnet/devnet.json");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("test/browser.mjs")
            .current_dir(&dapp)
            .env("ENIGMA_DEVNET", &devnet_json)
            .env("ENIGMA_ARTIFACTS", &artifacts)
            .env("CHROMIUM", &chromium)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs (Node.js 20 or later)");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in target/browser-artifacts): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The page showed the decrypted answer: the account worth 5,000 is richest, by task and by
    // query; every task it ran is verified on chain.
    let richest = s.accounts[2].address.to_string();
    assert_eq!(got["richestByTask"], richest.as_str(), "{got}");
    assert_eq!(got["richestByQuery"], richest.as_str(), "{got}");
    assert!(got["taskRows"].as_u64().unwrap() >= 5, "{got}");
    let rust = Client::connect(common::config(s, &s.gateway_url, 0)).await.unwrap();
    let id: enigma_types::TaskId = got["richestTask"].as_str().unwrap().parse().unwrap();
    assert_eq!(rust.task_status(id).await.unwrap(), enigma_chain::TaskStatus::Verified);
    let contract: enigma_types::ContractAddress =
        got["millionaires"].as_str().unwrap().parse().unwrap();
    assert!(rust.chain().secret_contract(&contract).await.unwrap().is_some());
    // The auction: bids of 30 and 50 over a reserve of 10; the bidder of 50 wins at 30, and a
    // bidder's own bid is shown only to it.
    assert_eq!(got["myBid"], "your bid: 30", "{got}");
    let winner = s.accounts[2].address.to_string();
    assert_eq!(got["auctionResult"], format!("{winner} wins at 30").as_str(), "{got}");
    // Through a browser wallet (anvil's own EIP-1193 and EIP-712): its account deployed,
    // computed and asked; the enclave took its typed-data signatures as the caller's.
    let wallet = &got["wallet"];
    assert_eq!(wallet["richest"], s.accounts[4].address.to_string().as_str(), "{got}");
    assert!(wallet["contract"].as_str().unwrap().starts_with("0x"), "{got}");
    assert!(
        !s.accounts.iter().any(|a| a.address.to_string() == wallet["account"].as_str().unwrap()),
        "the wallet's account is its own, not a devnet account the page holds a key of: {got}"
    );
    // The page loaded enigma-js's core and the contracts it deployed, never the
    // hardware-attestation module (the devnet's workers are simulation enclaves).
    let fetched: Vec<&str> =
        got["wasmFetched"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(fetched.iter().any(|f| f.contains("enigma_wasm_bg")), "{fetched:?}");
    assert!(!fetched.iter().any(|f| f.contains("attestation")), "{fetched:?}");
    // Results were pushed over the gateway's WebSocket (subscribeTaskResult).
    let gateway_ws = s.gateway_url.replacen("http", "ws", 1);
    assert!(
        got["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().starts_with(&gateway_ws)),
        "{got}"
    );
    // The dashboard, live over the gateway's WebSocket, listed the workers, the contract and the
    // task with its final status.
    assert_eq!(got["dashboard"]["taskStatus"], "Verified", "{got}");
    assert_eq!(got["dashboard"]["workers"].as_u64(), Some(s.worker_signers.len() as u64), "{got}");
    assert!(got["dashboard"]["state"].as_str().unwrap().starts_with("live"), "{got}");
}

/// What enigma-js connects with to the devnet, as account `i`: the devnet summary's endpoints and
/// client policy (what the template dApp reads from devnet.json).
fn js_connect(s: &enigma_node::DevnetSummary, i: usize) -> serde_json::Value {
    serde_json::json!({
        "chainUrl": s.chain_url,
        "gatewayUrl": s.gateway_url,
        "enigma": s.deployment.enigma.to_string(),
        "secret": s.accounts[i].private_key,
        "policy": s.policy.as_ref().expect("the devnet names its client policy"),
    })
}

fn built_js() -> PathBuf {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/js");
    assert!(
        js.join("pkg/enigma_wasm_bg.wasm").exists() && js.join("node_modules/viem").exists(),
        "enigma-js is not built: run `npm ci && node build.mjs` in clients/js (scripts/test does)"
    );
    js
}

/// The millionaires example, built; its module's path.
fn millionaires_wasm() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages = vec!["millionaires".into()];
    let built = enigma_client::build::build(&options).unwrap();
    enigma_client::build::find(&built, "millionaires").unwrap().wasm.clone()
}

async fn run_js(js: &std::path::Path, config: &serde_json::Value) -> serde_json::Value {
    run_script(js, "devnet/query.mjs", config).await
}

/// Runs one of enigma-js's devnet scripts with `config` (the account's key included) on stdin,
/// not on the command line; returns what it printed.
async fn run_script(
    js: &std::path::Path,
    script: &'static str,
    config: &serde_json::Value,
) -> serde_json::Value {
    let (js, config) = (js.to_path_buf(), config.to_string());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut node = std::process::Command::new("node")
            .arg(script)
            .current_dir(&js)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        node.stdin.take().expect("piped").write_all(config.as_bytes())?;
        node.wait_with_output()
    })
    .await
    .unwrap()
    .expect("node runs (Node.js 20 or later)");
    assert!(out.status.success(), "enigma-js failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
