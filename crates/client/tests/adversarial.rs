//! The client against a hostile gateway: a proxy in front of a real devnet's gateway that passes
//! requests through and tampers with what comes back — another worker's key, a deployment
//! result naming a look-alike contract, another task's (genuine, signed) result, an altered
//! output, a result from a previous run of the same contract. The client refuses each before a
//! dApp sees it, and the honest path through the same proxy still works.

use crate::common;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_client::{Client, ClientError};
use enigma_crypto::KeyPair;
use enigma_p2p::messages::ResultView;
use jsonrpsee::{
    RpcModule, SubscriptionMessage,
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    server::ServerBuilder,
    types::ErrorObjectOwned,
};

const GAS: u64 = 50_000_000;

fn millionaires() -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_client::build::BuildOptions::examples(&root);
    let built = enigma_client::build::build(&options).unwrap();
    std::fs::read(&enigma_client::build::find(&built, "millionaires").unwrap().wasm).unwrap()
}

fn add(who: u8, worth: u64) -> Vec<u8> {
    (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params()
}

/// What the proxy does to the answers it passes on.
#[derive(Clone, Default)]
pub(crate) enum Tamper {
    /// Nothing.
    #[default]
    Honest,
    /// A deployment result names this contract instead.
    Relabel(String),
    /// Every result is this one (another task's, genuine and signed).
    Serve(Box<ResultView>),
    /// The output's last byte is flipped.
    FlipOutput,
    /// The result claims the task brought a value it did not.
    Inflate,
    /// Task requests are passed on without the sender's caller proof (the contract then runs
    /// with no caller).
    StripCaller,
    /// Task requests are passed on with the caller proof of the account's previous task.
    ReplayCaller(serde_json::Value),
    /// Every query is answered with this answer (another query's, genuine and signed).
    ServeAnswer(serde_json::Value),
    /// Query answers pass with their delta count as a string ("5" for 5): a loosely typed
    /// client could then skip comparing counts.
    QuotedCount,
    /// The worker key is another key, signed by another enclave.
    ForeignKey(serde_json::Value),
    /// Task requests are passed on, but answered at once with "no answer in time" (-32012),
    /// as a gateway whose worker is slow to answer does.
    LateAnswer,
    /// Task requests are answered "not delivered" (-32015) without being passed on while
    /// [`Proxy::refusals_left`] lasts, as a gateway that does not know the worker yet does.
    NotDelivered,
}

pub(crate) struct Proxy {
    upstream: HttpClient,
    pub(crate) tamper: Mutex<Tamper>,
    /// The last task request passed on.
    last_request: Mutex<serde_json::Value>,
    /// The last query answer passed on.
    pub(crate) last_answer: Mutex<serde_json::Value>,
    /// How many more task requests [`Tamper::NotDelivered`] answers "not delivered".
    pub(crate) refusals_left: std::sync::atomic::AtomicU32,
}

impl Proxy {
    fn tamper(&self, view: ResultView) -> ResultView {
        match self.tamper.lock().unwrap().clone() {
            Tamper::Honest
            | Tamper::ForeignKey(_)
            | Tamper::LateAnswer
            | Tamper::NotDelivered
            | Tamper::StripCaller
            | Tamper::ReplayCaller(_)
            | Tamper::ServeAnswer(_)
            | Tamper::QuotedCount => view,
            Tamper::Relabel(contract) => ResultView { contract_address: contract, ..view },
            Tamper::Serve(other) => *other,
            Tamper::Inflate => ResultView { value: "1000000".into(), ..view },
            Tamper::FlipOutput => {
                let mut bytes = hex::decode(view.output.trim_start_matches("0x")).unwrap();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                }
                ResultView { output: format!("0x{}", hex::encode(bytes)), ..view }
            }
        }
    }

    async fn result(&self, params: &serde_json::Value) -> Option<ResultView> {
        let found: Option<ResultView> = self
            .upstream
            .request("getTaskResult", jsonrpsee::rpc_params![params.clone()])
            .await
            .ok()
            .flatten();
        found.map(|v| self.tamper(v))
    }
}

fn upstream_error(e: jsonrpsee::core::ClientError) -> ErrorObjectOwned {
    match e {
        jsonrpsee::core::ClientError::Call(e) => e,
        other => ErrorObjectOwned::owned(-32000, other.to_string(), None::<()>),
    }
}

/// Serves the gateway methods the client uses, forwarding to `upstream`.
pub(crate) async fn hostile_gateway(
    upstream: &str,
) -> (String, Arc<Proxy>, jsonrpsee::server::ServerHandle) {
    let proxy = Arc::new(Proxy {
        upstream: HttpClientBuilder::default().build(upstream).unwrap(),
        tamper: Mutex::new(Tamper::Honest),
        last_request: Mutex::new(serde_json::Value::Null),
        last_answer: Mutex::new(serde_json::Value::Null),
        refusals_left: std::sync::atomic::AtomicU32::new(0),
    });
    let mut m = RpcModule::from_arc(proxy.clone());
    for method in ["deploySecretContract", "sendTaskInput", "getTaskStatus"] {
        m.register_async_method(method, move |params, p, _| async move {
            let mut params: serde_json::Value = params.one()?;
            let tamper = p.tamper.lock().unwrap().clone();
            if let (Some(fields), Tamper::StripCaller | Tamper::ReplayCaller(_)) =
                (params.as_object_mut(), &tamper)
            {
                for key in ["sender", "callerNonce", "callerSignature"] {
                    fields.remove(key);
                }
                if let Tamper::ReplayCaller(old) = &tamper {
                    for key in ["sender", "callerNonce", "callerSignature"] {
                        fields.insert(key.into(), old[key].clone());
                    }
                }
            }
            *p.last_request.lock().unwrap() = params.clone();
            if matches!(tamper, Tamper::NotDelivered)
                && method != "getTaskStatus"
                && p.refusals_left
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
            {
                return Err(ErrorObjectOwned::owned(
                    enigma_node::NOT_DELIVERED,
                    "worker 0x… is not known on the network yet; retry in a moment",
                    None::<()>,
                ));
            }
            let late = matches!(tamper, Tamper::LateAnswer);
            let forward = {
                let p = p.clone();
                async move {
                    p.upstream
                        .request::<serde_json::Value, _>(method, jsonrpsee::rpc_params![params])
                        .await
                        .map_err(upstream_error)
                }
            };
            if late && method != "getTaskStatus" {
                tokio::spawn(forward);
                return Err(ErrorObjectOwned::owned(
                    enigma_node::UNANSWERED,
                    "the worker got no answer in time; the task may still run",
                    None::<()>,
                ));
            }
            forward.await
        })
        .unwrap();
    }
    m.register_async_method("queryContract", |params, p, _| async move {
        let params: serde_json::Value = params.one()?;
        let answer: serde_json::Value = p
            .upstream
            .request("queryContract", jsonrpsee::rpc_params![params])
            .await
            .map_err(upstream_error)?;
        *p.last_answer.lock().unwrap() = answer.clone();
        Ok::<_, ErrorObjectOwned>(match p.tamper.lock().unwrap().clone() {
            Tamper::ServeAnswer(other) => other,
            Tamper::QuotedCount => {
                let mut quoted = answer;
                quoted["deltaCount"] = quoted["deltaCount"].to_string().into();
                quoted
            }
            _ => answer,
        })
    })
    .unwrap();
    m.register_async_method("getWorkerEncryptionKey", |params, p, _| async move {
        let params: serde_json::Value = params.one()?;
        let answer: serde_json::Value = p
            .upstream
            .request("getWorkerEncryptionKey", jsonrpsee::rpc_params![params])
            .await
            .map_err(upstream_error)?;
        Ok::<_, ErrorObjectOwned>(match p.tamper.lock().unwrap().clone() {
            Tamper::ForeignKey(mut other) => {
                other["epochBlock"] = answer["epochBlock"].clone();
                other
            }
            _ => answer,
        })
    })
    .unwrap();
    m.register_async_method("getTaskResult", |params, p, _| async move {
        let params: serde_json::Value = params.one()?;
        Ok::<_, ErrorObjectOwned>(p.result(&params).await)
    })
    .unwrap();
    m.register_subscription(
        "subscribeTaskResult",
        "taskResult",
        "unsubscribeTaskResult",
        |params, pending, p, _| async move {
            let params: serde_json::Value = params.one()?;
            let sink = pending.accept().await?;
            loop {
                if let Some(view) = p.result(&params).await {
                    let message =
                        SubscriptionMessage::from(serde_json::value::to_raw_value(&view)?);
                    sink.send(message).await?;
                    return Ok(());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = sink.closed() => return Ok(()),
                }
            }
        },
    )
    .unwrap();
    let server = ServerBuilder::default().build("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    (url, proxy, server.start(m))
}

fn bad(result: Result<impl std::fmt::Debug, ClientError>, what: &str) -> String {
    match result {
        Err(ClientError::BadResult(why)) => why,
        other => panic!("{what}: expected the client to refuse the result, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_gateway_cannot_relabel_swap_alter_or_replay_results_nor_fake_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = devnet.summary.clone();
    let (gateway, proxy, _server) = hostile_gateway(&s.gateway_url).await;
    let set = |t: Tamper| *proxy.tamper.lock().unwrap() = t;
    let client = Client::connect(common::config(&s, &gateway, 0)).await.unwrap();
    client.deposit(10_000 * 100_000_000).await.unwrap();
    let wasm = millionaires();

    // Honest through the proxy: the baseline.
    let contract = client.deploy(&wasm, "construct()", &[], GAS).await.unwrap().contract;
    let first = client
        .compute(contract, "add_millionaire(address,uint256)", &add(1, 10), GAS)
        .await
        .unwrap();
    // On chain before the queries below, which run on the chain's state (a receipt waits up to
    // the worker's batch wait).
    client.confirm(&first).await.unwrap();

    // 1. A deployment result naming a look-alike contract (where the user's next secrets
    //    would go): refused, the client does not hand out the look-alike address.
    set(Tamper::Relabel(format!("0x{}", "ab".repeat(32))));
    let why = bad(client.deploy(&wasm, "construct()", &[], GAS).await, "a relabelled deployment");
    assert!(why.contains("contract") || why.contains("signed"), "{why}");

    // 2. Another task's genuine, signed result served for this one.
    set(Tamper::Honest);
    let other = ResultView::from(&client.task_result(first.task_id).await.unwrap().unwrap());
    set(Tamper::Serve(Box::new(other)));
    bad(
        client.compute(contract, "add_millionaire(address,uint256)", &add(2, 30), GAS).await,
        "another task's result",
    );

    // 3. An altered output: the enclave's signature no longer covers it.
    set(Tamper::FlipOutput);
    bad(client.compute(contract, "compute_richest()", &[], GAS).await, "an altered output");
    // ...or a value the task did not bring (as a rogue host's enclave would sign it).
    set(Tamper::Inflate);
    let why = bad(client.compute(contract, "compute_richest()", &[], GAS).await, "a made-up value");
    assert!(why.contains("value"), "{why}");

    // A task passed on without its caller proof runs anonymously: the client, which signed it,
    // refuses the result (the seal names no caller).
    set(Tamper::StripCaller);
    let why =
        bad(client.compute(contract, "compute_richest()", &[], GAS).await, "a dropped caller");
    assert!(why.contains("caller"), "{why}");
    // With the proof of the account's previous task the enclave refuses to run it at all.
    set(Tamper::Honest);
    client.compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    let previous = proxy.last_request.lock().unwrap().clone();
    set(Tamper::ReplayCaller(previous));
    match client.compute(contract, "compute_richest()", &[], GAS).await {
        Err(ClientError::NotExecuted { reason, .. }) => {
            assert!(reason.contains("caller proof"), "{reason}")
        }
        other => panic!("a replayed caller proof: expected the task refused, got {other:?}"),
    }

    // A query answered with another query's genuine answer (a gateway swapping two users'
    // answers): the answer names its query, whose hash binds the asker's key.
    set(Tamper::Honest);
    client.query(contract, "compute_richest()", &[]).await.unwrap();
    let other = proxy.last_answer.lock().unwrap().clone();
    set(Tamper::ServeAnswer(other));
    let why = bad(client.query(contract, "compute_richest()", &[]).await, "another query's answer");
    assert!(why.contains("another query"), "{why}");
    set(Tamper::Honest);

    // 4. A worker key signed by another enclave: no secret is encrypted to it.
    let foreign = KeyPair::generate().unwrap();
    let forged_key = KeyPair::generate().unwrap();
    let signature = foreign.sign_digest(&enigma_types::messages::worker_key_digest(
        forged_key.public_key().as_bytes(),
    ));
    set(Tamper::ForeignKey(serde_json::json!({
        "workerEncryptionKey": forged_key.public_key().to_string(),
        "workerSig": signature.to_string(),
    })));
    let fresh = Client::connect(common::config(&s, &gateway, 1)).await.unwrap();
    fresh.deposit(1_000 * 100_000_000).await.unwrap();
    match fresh.compute(contract, "compute_richest()", &[], GAS).await {
        Err(ClientError::NotAttested { reason, .. }) => {
            assert!(reason.contains("not by its enclave"), "{reason}")
        }
        other => panic!("a key signed by another enclave was used: {other:?}"),
    }

    // 5. A gateway that says its worker did not answer in time (the task may still run): the
    //    client does not report "not executed", it waits for the result, which comes.
    set(Tamper::LateAnswer);
    let entry = add(3, 20);
    let late = client
        .compute(contract, "add_millionaire(address,uint256)", &entry, GAS)
        .await
        .expect("a task whose request got no answer in time still gives its result");
    assert!(late.output.is_empty());

    // 6. A gateway that cannot hand the task on yet (it does not know the worker): the client
    //    sends the same task again until it is taken, and gets its result.
    set(Tamper::NotDelivered);
    proxy.refusals_left.store(2, std::sync::atomic::Ordering::SeqCst);
    let entry = add(4, 10);
    let user = client.chain().account().unwrap();
    let before = client.chain().task_nonce(user).await.unwrap();
    client
        .compute(contract, "add_millionaire(address,uint256)", &entry, GAS)
        .await
        .expect("a task the gateway could not deliver at first is sent again and runs");
    assert_eq!(proxy.refusals_left.load(std::sync::atomic::Ordering::SeqCst), 0);
    let after = client.chain().task_nonce(user).await.unwrap();
    assert_eq!(after, before + 1, "sent three times, recorded and paid once");

    // The honest path through the same proxy still gives the right, verified answer. (The
    // tasks above ran: the gateway withheld their true answers, it could not change them; the
    // second entry is in.)
    set(Tamper::Honest);
    let richest = client.compute(contract, "compute_richest()", &[], GAS).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
    let confirmed = client.confirm(&richest).await.unwrap();
    assert_eq!(confirmed.status, enigma_chain::TaskStatus::Verified);
    assert_eq!(confirmed.output_hash, richest.output_hash, "the chain took this very result");
    devnet.stop().await;
}
