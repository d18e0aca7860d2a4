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
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/js");
    assert!(
        js.join("pkg/enigma_wasm_bg.wasm").exists() && js.join("node_modules/viem").exists(),
        "enigma-js is not built: run `npm ci && node build.mjs` in clients/js (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let alice = Client::connect(common::config(s, &s.gateway_url, 0)).await.unwrap();
    alice.deposit(100_000_000).await.unwrap();
    let wasm = {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut options = enigma_client::build::BuildOptions::examples(&root);
        options.packages = vec!["millionaires".into()];
        let built = enigma_client::build::build(&options).unwrap();
        std::fs::read(&enigma_client::build::find(&built, "millionaires").unwrap().wasm).unwrap()
    };
    let m = alice.deploy(&wasm, "construct()", &[], GAS).await.unwrap().contract;
    for (who, worth) in [(1u8, 10u64), (2, 30), (3, 20)] {
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        let o = alice.compute(m, "add_millionaire(address,uint256)", &args, GAS).await.unwrap();
        alice.confirm(&o).await.unwrap();
    }
    let rust = alice.query(m, "compute_richest()", &[]).await.unwrap();

    let config = serde_json::json!({
        "chainUrl": s.chain_url,
        "gatewayUrl": s.gateway_url,
        "enigma": s.deployment.enigma.to_string(),
        "secret": s.accounts[1].private_key,
        "policy": enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
        "contract": m.to_string(),
        "callable": "compute_richest()",
        "args": "0x",
        "taskOnly": "add_millionaire(address,uint256)",
    });
    let got = run_js(&js, &config).await;
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

    // Through a hostile gateway, enigma-js refuses what the Rust client refuses: another
    // query's genuine, signed answer served for its own; a worker key signed by another enclave;
    // an answer whose fields are not of their types.
    let (hostile, proxy, _server) = crate::adversarial::hostile_gateway(&s.gateway_url).await;
    let mut config = config;
    config["gatewayUrl"] = hostile.clone().into();
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

/// Runs enigma-js's devnet script with `config` (the account's key included) on stdin, not on
/// the command line; returns what it printed.
async fn run_js(js: &std::path::Path, config: &serde_json::Value) -> serde_json::Value {
    let (js, config) = (js.to_path_buf(), config.to_string());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut node = std::process::Command::new("node")
            .arg("devnet/query.mjs")
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
