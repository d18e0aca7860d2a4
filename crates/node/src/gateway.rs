//! The gateway JSON-RPC (PROTOCOL.md section 9): HTTP and WebSocket on one port.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use base64::Engine as _;
use enigma_p2p::{ResultMessage, TaskRequest, messages::ResultView as TaskResultView};
use enigma_types::{ContractAddress, SignerAddress, TaskId};
use jsonrpsee::{
    PendingSubscriptionSink, RpcModule, SubscriptionMessage,
    server::{ServerBuilder, ServerConfig, ServerHandle},
    types::ErrorObjectOwned,
};
use serde::Deserialize;

use crate::{
    NodeError, Result,
    core::{NotAdmitted, Source},
    km::{one, rpc_error},
    worker::{Worker, is_strike},
};

/// Largest accepted request body (a deploy carries the module, base64).
pub const MAX_REQUEST_BYTES: u32 = 4 * 1024 * 1024;
/// Most concurrent connections.
pub const MAX_CONNECTIONS: u32 = 512;
/// Most concurrent connections from one address (or IPv6 /64).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 64;

fn hexed(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn unhex(text: &str, what: &str) -> std::result::Result<Vec<u8>, ErrorObjectOwned> {
    hex::decode(text.trim_start_matches("0x"))
        .map_err(|e| rpc_error(-32602, format!("`{what}` is not hex: {e}")))
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> std::result::Result<T, ErrorObjectOwned>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| rpc_error(-32602, format!("`{what}`: {e}")))
}

/// `getWorkerEncryptionKey` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyParams {
    worker_address: String,
    #[allow(dead_code)]
    user_pub_key: Option<String>,
}

/// `deploySecretContract` parameters (Discovery's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployParams {
    worker_address: String,
    pre_code: String,
    encrypted_args: String,
    encrypted_fn: String,
    #[serde(rename = "userDHKey")]
    user_dh_key: String,
    contract_address: String,
}

/// `sendTaskInput` parameters (Discovery's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskParams {
    task_id: String,
    worker_address: String,
    encrypted_fn: String,
    encrypted_args: String,
    contract_address: String,
    #[serde(rename = "userDHKey")]
    user_dh_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskIdParams {
    task_id: String,
}

async fn result_of(w: &Worker, task: &TaskId) -> Option<ResultMessage> {
    if let Some(r) = w.results.read().await.get(task) {
        return Some(r.clone());
    }
    w.store
        .result(task)
        .ok()
        .flatten()
        .and_then(|b| enigma_p2p::messages::decode(&b, usize::MAX).ok())
}

/// A task was not executed and will not be (-32010), or it may be running and its result is
/// to be awaited ([`UNANSWERED`]).
fn refused(e: NodeError) -> ErrorObjectOwned {
    match e {
        NodeError::P2p(enigma_p2p::Error::Unanswered { .. }) => {
            rpc_error(UNANSWERED, e.to_string())
        }
        e => rpc_error(-32010, e.to_string()),
    }
}

/// The error code of a task request its worker received but did not answer in time: the task
/// may still run, so the client waits for its result instead of reporting "not executed".
pub const UNANSWERED: i32 = -32012;

pub(crate) async fn serve(
    worker: Arc<Worker>,
    addr: SocketAddr,
) -> Result<(SocketAddr, ServerHandle)> {
    let mut m = RpcModule::new(worker);
    let reg = |e: jsonrpsee::core::RegisterMethodError| NodeError::Rpc(e.to_string());
    m.register_async_method("getInfo", |_, w, _| async move {
        let epoch = w.epochs.read().await.current().map(|e| (e.nonce, e.first_block));
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "signer": w.signer.to_string(),
            "peerId": w.peer_id.to_string(),
            "epoch": epoch.map(|e| e.0),
            "epochBlock": epoch.map(|e| e.1),
            "version": env!("CARGO_PKG_VERSION"),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getNetworkInfo", |_, w, _| async move {
        let epoch = w.epochs.read().await.current().map(|e| (e.nonce, e.first_block));
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "enigmaContract": w.chain.enigma_address().to_string(),
            "tokenContract": w.chain.token_address().to_string(),
            "epoch": epoch.map(|e| e.0),
            "epochBlock": epoch.map(|e| e.1),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getWorkerEncryptionKey", |params, w, _| async move {
        let p: KeyParams = one(&params)?;
        let signer: SignerAddress = parse(&p.worker_address, "workerAddress")?;
        let key = w.worker_key(signer).await.ok_or_else(|| {
            rpc_error(
                -32011,
                format!(
                    "no encryption key of worker {signer} is known; is it selected and online?"
                ),
            )
        })?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "workerEncryptionKey": hexed(key.public_key.as_bytes()),
            "workerSig": key.signature.to_string(),
            "epochBlock": key.epoch,
        }))
    })
    .map_err(reg)?;
    m.register_async_method("deploySecretContract", |params, w, ext| async move {
        let p: DeployParams = one(&params)?;
        let signer: SignerAddress = parse(&p.worker_address, "workerAddress")?;
        let contract: ContractAddress = parse(&p.contract_address, "contractAddress")?;
        let code = base64::engine::general_purpose::STANDARD
            .decode(&p.pre_code)
            .map_err(|e| rpc_error(-32602, format!("`preCode` is not base64: {e}")))?;
        let request = TaskRequest::Deploy {
            task_id: TaskId(contract.0),
            code,
            encrypted_fn: unhex(&p.encrypted_fn, "encryptedFn")?,
            encrypted_args: unhex(&p.encrypted_args, "encryptedArgs")?,
            user_public_key: unhex(&p.user_dh_key, "userDHKey")?,
        };
        submit(&w, &ext, signer, request).await?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({ "deploySentResult": true }))
    })
    .map_err(reg)?;
    m.register_async_method("sendTaskInput", |params, w, ext| async move {
        let p: TaskParams = one(&params)?;
        let signer: SignerAddress = parse(&p.worker_address, "workerAddress")?;
        let request = TaskRequest::Compute {
            task_id: parse(&p.task_id, "taskId")?,
            contract: parse(&p.contract_address, "contractAddress")?,
            encrypted_fn: unhex(&p.encrypted_fn, "encryptedFn")?,
            encrypted_args: unhex(&p.encrypted_args, "encryptedArgs")?,
            user_public_key: unhex(&p.user_dh_key, "userDHKey")?,
        };
        submit(&w, &ext, signer, request).await?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({ "sendTaskResult": true }))
    })
    .map_err(reg)?;
    m.register_async_method("getTaskStatus", |params, w, _| async move {
        let p: TaskIdParams = one(&params)?;
        let task: TaskId = parse(&p.task_id, "taskId")?;
        let record = w.chain.task(&task).await.map_err(|e| rpc_error(-32000, e.to_string()))?;
        let result = result_of(&w, &task).await;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "chainStatus": record.map(|r| format!("{:?}", r.status)),
            "result": result.map(|r| if r.success { "SUCCESS" } else { "FAILED" }),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getTaskResult", |params, w, _| async move {
        let p: TaskIdParams = one(&params)?;
        let task: TaskId = parse(&p.task_id, "taskId")?;
        Ok::<_, ErrorObjectOwned>(result_of(&w, &task).await.as_ref().map(TaskResultView::from))
    })
    .map_err(reg)?;
    m.register_subscription(
        "subscribeTaskResult",
        "taskResult",
        "unsubscribeTaskResult",
        |params, pending: PendingSubscriptionSink, w, _| async move {
            let p: TaskIdParams = match one(&params) {
                Ok(p) => p,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let task: TaskId = match parse(&p.task_id, "taskId") {
                Ok(t) => t,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            // Subscribe before looking, so a result arriving in between is not missed.
            let mut events = w.result_events.subscribe();
            let sink = pending.accept().await?;
            let wait = async {
                if let Some(r) = result_of(&w, &task).await {
                    return Some(r);
                }
                loop {
                    match events.recv().await {
                        Ok(r) if r.task_id == task => return Some(r),
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if let Some(r) = result_of(&w, &task).await {
                                return Some(r);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            };
            // A subscriber that goes away (or a server that stops) ends the wait.
            let found = tokio::select! {
                found = wait => found,
                () = sink.closed() => None,
            };
            let Some(found) = found else { return Ok(()) };
            let message = SubscriptionMessage::from(serde_json::value::to_raw_value(
                &TaskResultView::from(&found),
            )?);
            sink.send(message).await?;
            Ok(())
        },
    )
    .map_err(reg)?;

    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_connections(MAX_CONNECTIONS)
        .build();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Rpc(format!("cannot serve the gateway on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let builder = ServerBuilder::default().set_config(config).to_service_builder();
    let methods: jsonrpsee::Methods = m.into();
    // Its own accept loop, so that each request carries its client's address (per-IP limits).
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS as usize));
    let per_client: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            // At most MAX_CONNECTIONS open at once: beyond it, accepting waits.
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = stop.clone().shutdown() => break,
            };
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, say: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a gateway connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = stop.clone().shutdown() => break,
            };
            // At most MAX_CONNECTIONS_PER_CLIENT from one address (or IPv6 /64).
            let network = client_network(remote.ip());
            let admitted = per_client.lock().is_ok_and(|mut m| {
                let n = m.entry(network).or_insert(0);
                *n += 1;
                *n <= MAX_CONNECTIONS_PER_CLIENT
            });
            let release = {
                let per_client = per_client.clone();
                move || {
                    if let Ok(mut m) = per_client.lock()
                        && let Some(n) = m.get_mut(&network)
                    {
                        *n -= 1;
                        if *n == 0 {
                            m.remove(&network);
                        }
                    }
                }
            };
            if !admitted {
                release();
                drop(socket);
                continue;
            }
            let client = ClientIp(remote.ip());
            let (builder, methods, stop2) = (builder.clone(), methods.clone(), stop.clone());
            let service =
                tower::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(client);
                    let mut service = builder.clone().build(methods.clone(), stop2.clone());
                    async move {
                        tower::Service::call(&mut service, request)
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    }
                });
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                let _ =
                    jsonrpsee::server::serve_with_graceful_shutdown(socket, service, stopped).await;
                release();
                drop(permit);
            });
        }
    });
    Ok((local, handle))
}

/// The address of the client a gateway request came from.
#[derive(Debug, Clone, Copy)]
struct ClientIp(std::net::IpAddr);

/// Admits a task request of the client that sent it (per-IP limits and bans), checks it
/// against its record (so a request for an unrecorded or altered task costs no peer anything,
/// and counts against its sender), and routes it to the selected worker.
async fn submit(
    w: &Arc<Worker>,
    ext: &http::Extensions,
    signer: SignerAddress,
    request: TaskRequest,
) -> std::result::Result<(), ErrorObjectOwned> {
    let ip = ext.get::<ClientIp>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0);
    let source = Source::Ip(client_network(ip));
    let admitted = w
        .gateway_admission
        .lock()
        .map_err(|_| NotAdmitted::Busy { limit: 0 })
        .and_then(|mut a| a.admit(source, crate::attest::now_ms()));
    if let Err(e) = admitted {
        return Err(rpc_error(NOT_ADMITTED, e.to_string()));
    }
    // A request counts as a strike until it is known not to be one: a client that hangs up
    // mid-request (dropping this future) is not spared.
    let mut guard = Admitted { worker: w, source, strike: true };
    let outcome = async {
        w.precheck(&request, signer, false).await?;
        w.route(signer, request).await
    }
    .await;
    guard.strike = outcome.as_ref().err().is_some_and(is_strike);
    drop(guard);
    outcome.map_err(refused)
}

/// Where a client's requests count against limits: its IPv4 address, or the /64 network of
/// its IPv6 address (one subscriber holds a whole /64).
fn client_network(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The error code of a request refused by the gateway's per-client limits.
pub const NOT_ADMITTED: i32 = -32013;

/// An admitted request: released when dropped (also when its client goes away mid-request).
struct Admitted<'a> {
    worker: &'a Worker,
    source: Source,
    strike: bool,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.worker.settle(&self.worker.gateway_admission, self.source, self.strike);
    }
}
