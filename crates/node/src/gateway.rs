//! The gateway JSON-RPC (PROTOCOL.md section 9): HTTP and WebSocket on one port.

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc};

use enigma_chain::TaskStatus;
use enigma_enclave::WorkerKey;
use enigma_p2p::{
    QueryAnswerMessage, QueryMessage, ResultMessage, TaskRequest,
    messages::{QueryAnswerView, ResultView as TaskResultView},
    rpc,
};
use enigma_types::{Address, SignerAddress, TaskId};
use jsonrpsee::{
    PendingSubscriptionSink, RpcModule, SubscriptionMessage,
    server::{ServerBuilder, ServerConfig, ServerHandle},
    types::ErrorObjectOwned,
};

use crate::{
    NodeError, Result,
    core::{Admission, AdmissionLimits, Source},
    km::{invalid, json, rpc_error},
    worker::{Worker, is_strike, settle},
};

/// Who a gateway's node is and where the network stands.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    /// The node's enclave signer.
    pub signer: SignerAddress,
    /// Its p2p identity.
    pub peer_id: String,
    /// The current epoch: nonce and first block.
    pub epoch: Option<(u64, u64)>,
    /// The Enigma contract.
    pub enigma: Address,
    /// The ENG token.
    pub token: Address,
}

/// What a gateway needs of the worker node it runs in, and nothing more: the gateway keeps its
/// own per-client limits, and every task it takes goes through [`GatewayNode::submit`].
pub(crate) trait GatewayNode: Send + Sync + 'static {
    /// Who the node is and where the network stands.
    fn info(&self) -> impl Future<Output = NodeInfo> + Send;
    /// The signed IO key of `signer` for the current epoch, as announced.
    fn worker_key(&self, signer: SignerAddress) -> impl Future<Output = Option<WorkerKey>> + Send;
    /// A task's verified result, if the node has it.
    fn result(&self, task: &TaskId) -> impl Future<Output = Option<ResultMessage>> + Send;
    /// Verified results as they arrive.
    fn watch_results(&self) -> tokio::sync::broadcast::Receiver<ResultMessage>;
    /// A task's status on chain.
    fn chain_status(
        &self,
        task: &TaskId,
    ) -> impl Future<Output = Result<Option<TaskStatus>>> + Send;
    /// Checks `request` against its record and the selection of `signer`, then hands it to
    /// `signer` (the node itself or a peer). An error for which [`is_strike`] holds counts
    /// against the client.
    /// `checked` is called once the request has passed its record's checks, before it is
    /// handed on; an error from it refuses the request there.
    fn submit(
        &self,
        signer: SignerAddress,
        request: TaskRequest,
        checked: &mut (dyn FnMut() -> Result<()> + Send),
    ) -> impl Future<Output = Result<()>> + Send;
    /// Hands a read-only query to `signer` (the node itself or a peer) and returns its answer.
    fn query(
        &self,
        signer: SignerAddress,
        query: QueryMessage,
    ) -> impl Future<Output = Result<QueryAnswerMessage>> + Send;
    /// The network as the chain shows it (the dashboard's snapshot, `crate::dashboard`).
    fn network(&self) -> impl Future<Output = Result<serde_json::Value>> + Send;
}

impl GatewayNode for Arc<Worker> {
    async fn network(&self) -> Result<serde_json::Value> {
        crate::dashboard::snapshot(&self.chain).await
    }

    async fn info(&self) -> NodeInfo {
        NodeInfo {
            signer: self.signer,
            peer_id: self.peer_id.to_string(),
            epoch: self.epochs.read().await.current().map(|e| (e.nonce, e.first_block)),
            enigma: self.chain.enigma_address(),
            token: self.chain.token_address(),
        }
    }

    async fn worker_key(&self, signer: SignerAddress) -> Option<WorkerKey> {
        Worker::worker_key(self, signer).await
    }

    async fn result(&self, task: &TaskId) -> Option<ResultMessage> {
        if let Some(r) = self.results.read().await.get(task) {
            return Some(r.clone());
        }
        self.store
            .result(task)
            .ok()
            .flatten()
            .and_then(|b| enigma_p2p::messages::decode(&b, usize::MAX).ok())
    }

    fn watch_results(&self) -> tokio::sync::broadcast::Receiver<ResultMessage> {
        self.result_events.subscribe()
    }

    async fn chain_status(&self, task: &TaskId) -> Result<Option<TaskStatus>> {
        Ok(self.chain.task(task).await?.map(|r| r.status))
    }

    async fn submit(
        &self,
        signer: SignerAddress,
        request: TaskRequest,
        checked: &mut (dyn FnMut() -> Result<()> + Send),
    ) -> Result<()> {
        self.precheck(&request, signer, false).await?;
        checked()?;
        self.route(signer, request).await
    }

    async fn query(
        &self,
        signer: SignerAddress,
        query: QueryMessage,
    ) -> Result<QueryAnswerMessage> {
        self.route_query(signer, query).await
    }
}

/// Checked task requests the gateway carries to workers at once, whoever sent them (each holds
/// its body: at most 4 MiB).
const MAX_FORWARDED: usize = 512;

/// A task being delivered: its id is in the gateway's set until this is dropped.
struct Delivering<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<TaskId>>,
    id: TaskId,
}

impl<'a> Delivering<'a> {
    /// `None` if the task is being delivered already.
    fn start(
        set: &'a std::sync::Mutex<std::collections::HashSet<TaskId>>,
        id: TaskId,
    ) -> Option<Self> {
        // The lock is let go before a `Self` exists (its drop takes the lock).
        let fresh = set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id);
        fresh.then(|| Self { set, id })
    }
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

/// A gateway: its node and its own per-client admission.
struct Gateway<N> {
    node: N,
    admission: std::sync::Mutex<Admission>,
    /// Places for checked requests on their way to a worker ([`MAX_FORWARDED`]).
    forwarding: tokio::sync::Semaphore,
    /// The tasks being delivered (at most one delivery of each at a time; bounded by the
    /// admission limits, since each holds a slot or a forwarding place).
    delivering: std::sync::Mutex<std::collections::HashSet<TaskId>>,
    network: Arc<NetworkFeed>,
}

/// How often the dashboard's snapshot is taken at most (and pushed to subscribers on change).
const NETWORK_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest a snapshot may take (a chain that hangs leaves the last one standing).
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a `getNetwork` keeps the feed running after it asked.
const NETWORK_INTEREST: std::time::Duration = std::time::Duration::from_secs(10);
/// Network subscriptions one client (IP address or IPv6 /64) may hold at once.
pub(crate) const NETWORK_WATCHERS_PER_CLIENT: usize = 4;
/// Subscriptions one connection may hold at once (task results and the network together).
pub(crate) const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;
/// The error code of `getNetwork` when no snapshot of the chain could be taken.
pub(crate) const NETWORK_UNREADABLE: i32 = -32014;

/// The dashboard's snapshot of the network, taken by one background task while anyone watches
/// (a subscriber, or a `getNetwork` within [`NETWORK_INTEREST`]): one snapshot a second at most
/// however many viewers there are, none without any, and a failed or slow one costs nobody a
/// wait (the last one stands). Subscribers wake on a change and share one serialized copy.
struct NetworkFeed {
    latest: tokio::sync::watch::Sender<Option<Arc<serde_json::value::RawValue>>>,
    /// When the newest snapshot was taken and when a `getNetwork` last asked, in milliseconds
    /// since `epoch`.
    taken_ms: std::sync::atomic::AtomicU64,
    asked_ms: std::sync::atomic::AtomicU64,
    epoch: tokio::time::Instant,
    /// Network subscriptions per client.
    watchers: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
}

impl NetworkFeed {
    fn new() -> Self {
        Self {
            latest: tokio::sync::watch::channel(None).0,
            taken_ms: std::sync::atomic::AtomicU64::new(0),
            asked_ms: std::sync::atomic::AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            watchers: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn wanted(&self) -> bool {
        let asked = self.asked_ms.load(std::sync::atomic::Ordering::Relaxed);
        self.latest.receiver_count() > 0
            || (asked > 0
                && self.now_ms().saturating_sub(asked)
                    < u64::try_from(NETWORK_INTEREST.as_millis()).unwrap_or(u64::MAX))
    }

    /// Takes snapshots while wanted, until `stopped`.
    async fn run<N: GatewayNode>(&self, node: N, stopped: impl Future<Output = ()>) {
        let feed = async {
            loop {
                if self.wanted() {
                    match tokio::time::timeout(SNAPSHOT_TIMEOUT, node.network()).await {
                        Ok(Ok(v)) => match serde_json::value::to_raw_value(&v) {
                            Ok(raw) => {
                                let raw: Arc<serde_json::value::RawValue> = Arc::from(raw);
                                self.latest.send_if_modified(|current| {
                                    let changed =
                                        current.as_ref().is_none_or(|c| c.get() != raw.get());
                                    if changed {
                                        *current = Some(raw);
                                    }
                                    changed
                                });
                                self.taken_ms.store(
                                    self.now_ms().max(1),
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "the network snapshot does not serialize")
                            }
                        },
                        Ok(Err(e)) => tracing::debug!(error = %e, "the network snapshot failed"),
                        Err(_) => tracing::debug!("the network snapshot timed out"),
                    }
                }
                tokio::time::sleep(NETWORK_REFRESH).await;
            }
        };
        tokio::select! {
            () = feed => {}
            () = stopped => {}
        }
    }

    /// The newest snapshot, taken within the last few seconds: waits for the feed (woken by
    /// this request) up to [`SNAPSHOT_TIMEOUT`].
    async fn current(
        &self,
    ) -> std::result::Result<Box<serde_json::value::RawValue>, ErrorObjectOwned> {
        let asked = self.now_ms().max(1);
        self.asked_ms.store(asked, std::sync::atomic::Ordering::Relaxed);
        let fresh = |taken: u64| {
            taken > 0
                && asked.saturating_sub(taken)
                    < 3 * u64::try_from(NETWORK_REFRESH.as_millis()).unwrap_or(u64::MAX)
        };
        let deadline = tokio::time::Instant::now() + SNAPSHOT_TIMEOUT + NETWORK_REFRESH;
        while !fresh(self.taken_ms.load(std::sync::atomic::Ordering::Relaxed))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match self.latest.borrow().as_ref() {
            Some(v) => Ok(v.as_ref().to_owned()),
            None => Err(rpc_error(
                NETWORK_UNREADABLE,
                "the gateway could not read the network from its chain yet; retry shortly".into(),
            )),
        }
    }
}

/// Largest accepted request body (a deploy carries the module, base64).
pub const MAX_REQUEST_BYTES: u32 = 4 * 1024 * 1024;
/// Most concurrent connections.
pub const MAX_CONNECTIONS: u32 = 512;
/// Most concurrent connections from one address (or IPv6 /64).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// What a gateway allows one client (one IP address, or IPv6 /64): by default
/// [`MAX_CONNECTIONS_PER_CLIENT`] connections and [`AdmissionLimits::GATEWAY`]'s requests in
/// flight. A gateway that only serves clients it trusts to share an address (a load generator
/// on one machine, many users behind one proxy) may allow more; the totals stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLimits {
    /// Connections one client may hold at once.
    pub connections_per_client: usize,
    /// Requests of one client in flight at once.
    pub requests_per_client: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        Self {
            connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
            requests_per_client: AdmissionLimits::GATEWAY.per_source,
        }
    }
}

fn hexed(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A task was not executed and will not be (-32010), it may be running and its result is to
/// be awaited ([`UNANSWERED`]), or it could not be handed to its worker now ([`NOT_DELIVERED`]).
fn refused(e: NodeError) -> ErrorObjectOwned {
    match e {
        NodeError::P2p(enigma_p2p::Error::Unanswered { .. }) => {
            rpc_error(UNANSWERED, e.to_string())
        }
        NodeError::NotDelivered(_) | NodeError::P2p(enigma_p2p::Error::Request { .. }) => {
            rpc_error(NOT_DELIVERED, e.to_string())
        }
        e => rpc_error(-32010, e.to_string()),
    }
}

/// The error code of a task request its worker received but did not answer in time: the task
/// may still run, so the client waits for its result instead of reporting "not executed".
pub const UNANSWERED: i32 = -32012;

/// The error code of a task or query the gateway could not hand to its worker now (the worker
/// is not known to it yet, e.g. just after the gateway started, or could not be reached): the
/// client sends the same request again shortly (a worker takes a task it already has as that
/// same task).
pub const NOT_DELIVERED: i32 = -32015;

pub(crate) async fn serve<N: GatewayNode + Clone>(
    node: N,
    addr: SocketAddr,
    limits: GatewayLimits,
) -> Result<(SocketAddr, ServerHandle)> {
    // A client may have everything, not more than everything.
    let limits = GatewayLimits {
        connections_per_client: limits.connections_per_client.min(MAX_CONNECTIONS as usize),
        requests_per_client: limits.requests_per_client.min(AdmissionLimits::GATEWAY.total),
    };
    if limits != GatewayLimits::default() {
        tracing::warn!(
            connections = limits.connections_per_client,
            requests = limits.requests_per_client,
            "the gateway's limits per client (IP address) differ from the defaults"
        );
    }
    let gateway = Gateway {
        node,
        admission: std::sync::Mutex::new(Admission::new(AdmissionLimits {
            per_source: limits.requests_per_client,
            ..AdmissionLimits::GATEWAY
        })),
        forwarding: tokio::sync::Semaphore::new(MAX_FORWARDED),
        delivering: std::sync::Mutex::new(std::collections::HashSet::new()),
        network: Arc::new(NetworkFeed::new()),
    };
    let network = (gateway.network.clone(), gateway.node.clone());
    let mut m = RpcModule::new(gateway);
    let reg = |e: jsonrpsee::core::RegisterMethodError| NodeError::Rpc(e.to_string());
    m.register_async_method("getInfo", |_, g, _| async move {
        let info = g.node.info().await;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "signer": info.signer.to_string(),
            "peerId": info.peer_id,
            "epoch": info.epoch.map(|e| e.0),
            "epochBlock": info.epoch.map(|e| e.1),
            "version": env!("CARGO_PKG_VERSION"),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getNetworkInfo", |_, g, _| async move {
        let info = g.node.info().await;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "enigmaContract": info.enigma.to_string(),
            "tokenContract": info.token.to_string(),
            "epoch": info.epoch.map(|e| e.0),
            "epochBlock": info.epoch.map(|e| e.1),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getWorkerEncryptionKey", |params, g, _| async move {
        let signer = rpc::worker_key(json(&params)).map_err(invalid)?;
        let key = g.node.worker_key(signer).await.ok_or_else(|| {
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
    m.register_async_method("deploySecretContract", |params, g, ext| async move {
        let (signer, request) = rpc::deploy(json(&params)).map_err(invalid)?;
        submit(&g, &ext, signer, request).await?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({ "deploySentResult": true }))
    })
    .map_err(reg)?;
    m.register_async_method("sendTaskInput", |params, g, ext| async move {
        let (signer, request) = rpc::task(json(&params)).map_err(invalid)?;
        submit(&g, &ext, signer, request).await?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({ "sendTaskResult": true }))
    })
    .map_err(reg)?;
    m.register_async_method("queryContract", |params, g, ext| async move {
        let (signer, query) = rpc::query(json(&params)).map_err(invalid)?;
        let answer = ask(&g, &ext, signer, query).await?;
        Ok::<_, ErrorObjectOwned>(QueryAnswerView::from(&answer))
    })
    .map_err(reg)?;
    m.register_async_method("getTaskStatus", |params, g, _| async move {
        let task = rpc::task_id(json(&params)).map_err(invalid)?;
        let status =
            g.node.chain_status(&task).await.map_err(|e| rpc_error(-32000, e.to_string()))?;
        let result = g.node.result(&task).await;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({
            "chainStatus": status.map(|s| format!("{s:?}")),
            "result": result.map(|r| if r.success { "SUCCESS" } else { "FAILED" }),
        }))
    })
    .map_err(reg)?;
    m.register_async_method("getNetwork", |_, g, _| async move { g.network.current().await })
        .map_err(reg)?;
    m.register_subscription(
        "subscribeNetwork",
        "network",
        "unsubscribeNetwork",
        |_, pending: PendingSubscriptionSink, g, ext| async move {
            // A few per client: each is a socket the gateway writes every change to.
            let client = ext.get::<ClientIp>().map(|c| client_network(c.0));
            let admitted = client.is_none_or(|c| {
                g.network.watchers.lock().is_ok_and(|mut m| {
                    let n = m.entry(c).or_insert(0);
                    *n += 1;
                    *n <= NETWORK_WATCHERS_PER_CLIENT
                })
            });
            let release = || {
                if let (Some(c), Ok(mut m)) = (client, g.network.watchers.lock())
                    && let Some(n) = m.get_mut(&c)
                {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&c);
                    }
                }
            };
            if !admitted {
                release();
                pending
                    .reject(rpc_error(
                        NOT_ADMITTED,
                        format!(
                            "at most {NETWORK_WATCHERS_PER_CLIENT} network subscriptions per client"
                        ),
                    ))
                    .await;
                return Ok(());
            }
            let mut changes = g.network.latest.subscribe();
            let watched = async {
                let sink = pending.accept().await?;
                loop {
                    let current = changes.borrow_and_update().clone();
                    if let Some(v) = current {
                        sink.send(SubscriptionMessage::from(v.as_ref().to_owned())).await?;
                    }
                    tokio::select! {
                        changed = changes.changed() => if changed.is_err() { return Ok(()) },
                        () = sink.closed() => return Ok(()),
                    }
                }
            };
            let outcome: std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> =
                watched.await;
            release();
            outcome.map_err(Into::into)
        },
    )
    .map_err(reg)?;
    m.register_async_method("getTaskResult", |params, g, _| async move {
        let task = rpc::task_id(json(&params)).map_err(invalid)?;
        Ok::<_, ErrorObjectOwned>(g.node.result(&task).await.as_ref().map(TaskResultView::from))
    })
    .map_err(reg)?;
    m.register_subscription(
        "subscribeTaskResult",
        "taskResult",
        "unsubscribeTaskResult",
        |params, pending: PendingSubscriptionSink, g, _| async move {
            let task = match rpc::task_id(json(&params)) {
                Ok(t) => t,
                Err(e) => {
                    pending.reject(invalid(e)).await;
                    return Ok(());
                }
            };
            // Subscribe before looking, so a result arriving in between is not missed.
            let mut events = g.node.watch_results();
            let sink = pending.accept().await?;
            let wait = async {
                if let Some(r) = g.node.result(&task).await {
                    return Some(r);
                }
                loop {
                    match events.recv().await {
                        Ok(r) if r.task_id == task => return Some(r),
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if let Some(r) = g.node.result(&task).await {
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
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .build();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Rpc(format!("cannot serve the gateway on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let (feed, node) = network;
    let stopped = stop.clone().shutdown();
    tokio::spawn(async move { feed.run(node, stopped).await });
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
            // At most `connections_per_client` from one address (or IPv6 /64).
            let network = client_network(remote.ip());
            let admitted = per_client.lock().is_ok_and(|mut m| {
                let n = m.entry(network).or_insert(0);
                *n += 1;
                *n <= limits.connections_per_client
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
                    let page = web_page(&request);
                    let mut service = builder.clone().build(methods.clone(), stop2.clone());
                    async move {
                        if let Some(page) = page {
                            return Ok::<_, std::io::Error>(page);
                        }
                        let mut response = tower::Service::call(&mut service, request)
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        allow_any_origin(response.headers_mut());
                        Ok(response)
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

/// What the gateway's port answers besides JSON-RPC: the dashboard page (`GET /dashboard`) and
/// browsers' CORS preflight requests (web pages on any origin call the gateway: it holds no
/// cookies or credentials, so any origin may).
fn web_page<B>(request: &http::Request<B>) -> Option<jsonrpsee::server::HttpResponse> {
    use http::{Method, StatusCode, header};
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = jsonrpsee::server::HttpResponse::new(jsonrpsee::server::HttpBody::from(""));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else if request.method() == Method::GET
        && matches!(request.uri().path(), "/dashboard" | "/dashboard/")
    {
        let mut r = jsonrpsee::server::HttpResponse::new(jsonrpsee::server::HttpBody::from(
            crate::dashboard::PAGE,
        ));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        return None;
    };
    allow_any_origin(response.headers_mut());
    Some(response)
}

fn allow_any_origin(headers: &mut http::HeaderMap) {
    use http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue,
    };
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS"));
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
}

/// The address of the client a gateway request came from.
#[derive(Debug, Clone, Copy)]
struct ClientIp(std::net::IpAddr);

/// Admits a task request of the client that sent it (per-IP limits and bans), checks it
/// against its record (so a request for an unrecorded or altered task costs no peer anything,
/// and counts against its sender), and routes it to the selected worker.
async fn submit<N: GatewayNode>(
    g: &Gateway<N>,
    ext: &http::Extensions,
    signer: SignerAddress,
    request: TaskRequest,
) -> std::result::Result<(), ErrorObjectOwned> {
    // A request counts as a strike until it is known not to be one: a client that hangs up
    // mid-request (dropping this future) is not spared.
    let mut guard = admit(g, ext, true)?;
    let task = match &request {
        TaskRequest::Deploy { task_id, .. } | TaskRequest::Compute { task_id, .. } => {
            Some(*task_id)
        }
        TaskRequest::Query(_) => None,
    };
    // Once its record checks out the request is a paid task. One delivery of a task at a time
    // (claimed only then, so nobody can hold an id they did not record): a copy sent meanwhile
    // (a client resending, or one holding many slots with one paid task) is told to wait and
    // reaches no worker. The task may wait at the worker for its contract's earlier tasks: it
    // then holds a place among the gateway's forwarded requests instead of one of its client's
    // (while places remain).
    let mut delivering = None;
    let mut copy = false;
    let outcome = g
        .node
        .submit(signer, request, &mut || {
            if let Some(id) = task {
                delivering = Delivering::start(&g.delivering, id);
                if delivering.is_none() {
                    copy = true;
                    return Err(NodeError::Refused(format!(
                        "task {id} is being delivered already; wait for its result"
                    )));
                }
            }
            guard.forward(&g.forwarding);
            Ok(())
        })
        .await;
    guard.strike = outcome.as_ref().err().is_some_and(is_strike);
    drop(guard);
    drop(delivering);
    outcome.map_err(|e| if copy { rpc_error(NOT_ADMITTED, e.to_string()) } else { refused(e) })
}

/// Admits a query like a task request (per-client limits; a query is never a strike) and
/// hands it on.
async fn ask<N: GatewayNode>(
    g: &Gateway<N>,
    ext: &http::Extensions,
    signer: SignerAddress,
    query: QueryMessage,
) -> std::result::Result<QueryAnswerMessage, ErrorObjectOwned> {
    let guard = admit(g, ext, false)?;
    let answer = g.node.query(signer, query).await;
    drop(guard);
    answer.map_err(refused)
}

/// Admits a request of the client the request came from under the gateway's per-client
/// limits; the returned guard releases it (counting a strike if `strike` is still set then).
fn admit<'g, N: GatewayNode>(
    g: &'g Gateway<N>,
    ext: &http::Extensions,
    strike: bool,
) -> std::result::Result<Admitted<'g>, ErrorObjectOwned> {
    let ip = ext.get::<ClientIp>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0);
    let source = Source::Ip(client_network(ip));
    crate::worker::admit(&g.admission, source)
        .map_err(|e| rpc_error(NOT_ADMITTED, e.to_string()))?;
    Ok(Admitted { admission: &g.admission, source, strike, forwarded: None })
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

/// An admitted request: released when dropped (also when its client goes away mid-request),
/// or earlier when it moves to a forwarding place.
struct Admitted<'a> {
    admission: &'a std::sync::Mutex<Admission>,
    source: Source,
    strike: bool,
    forwarded: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl<'a> Admitted<'a> {
    /// Gives the client's slot back for a forwarding place, if one is free.
    fn forward(&mut self, forwarding: &'a tokio::sync::Semaphore) {
        if self.forwarded.is_none()
            && let Ok(permit) = forwarding.try_acquire()
        {
            self.forwarded = Some(permit);
            settle(self.admission, self.source, false);
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.forwarded.is_none() {
            settle(self.admission, self.source, self.strike);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The gateway over a stand-in node, on a real HTTP/WebSocket port: what it answers, how it
    //! counts a client's strikes, and that results reach subscribers.

    use std::sync::Mutex;

    use jsonrpsee::{
        core::client::{ClientT, SubscriptionClientT},
        http_client::HttpClientBuilder,
        rpc_params,
        ws_client::WsClientBuilder,
    };

    use enigma_types::ContractAddress;

    use super::*;
    use crate::core::Refusal;

    /// A node that answers each task by the first byte of its id: 1 taken, 2 unrecorded (a
    /// strike), 3 taken but unanswered by its worker, 4 not deliverable yet.
    struct Stand {
        submitted: Mutex<Vec<TaskId>>,
        /// Checked requests (task ids starting with 5) waiting for `open`, as tasks in their
        /// contract's line wait for their turn.
        waiting: std::sync::atomic::AtomicUsize,
        open: tokio::sync::Semaphore,
        results: tokio::sync::broadcast::Sender<ResultMessage>,
        /// Network snapshots taken.
        snapshots: std::sync::atomic::AtomicU64,
    }

    impl Stand {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                submitted: Mutex::new(Vec::new()),
                waiting: std::sync::atomic::AtomicUsize::new(0),
                open: tokio::sync::Semaphore::new(0),
                results: tokio::sync::broadcast::channel(8).0,
                snapshots: std::sync::atomic::AtomicU64::new(0),
            })
        }
    }

    impl GatewayNode for Arc<Stand> {
        async fn network(&self) -> Result<serde_json::Value> {
            let n = self.snapshots.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // The chain moves on every third snapshot.
            Ok(serde_json::json!({ "block": 7 + n / 3 }))
        }

        async fn info(&self) -> NodeInfo {
            NodeInfo {
                signer: SignerAddress::from(Address([5; 20])),
                peer_id: "peer".into(),
                epoch: Some((3, 300)),
                enigma: Address([6; 20]),
                token: Address([7; 20]),
            }
        }

        async fn worker_key(&self, _: SignerAddress) -> Option<WorkerKey> {
            None
        }

        async fn result(&self, _: &TaskId) -> Option<ResultMessage> {
            None
        }

        fn watch_results(&self) -> tokio::sync::broadcast::Receiver<ResultMessage> {
            self.results.subscribe()
        }

        async fn chain_status(&self, _: &TaskId) -> Result<Option<TaskStatus>> {
            Ok(Some(TaskStatus::Created))
        }

        async fn query(&self, _: SignerAddress, _: QueryMessage) -> Result<QueryAnswerMessage> {
            Err(NodeError::Refused("this stand-in answers no queries".into()))
        }

        async fn submit(
            &self,
            _: SignerAddress,
            request: TaskRequest,
            checked: &mut (dyn FnMut() -> Result<()> + Send),
        ) -> Result<()> {
            let TaskRequest::Compute { task_id, .. } = request else { return Ok(()) };
            if task_id.0[0] != 2 {
                checked()?;
            }
            self.submitted.lock().unwrap().push(task_id);
            match task_id.0[0] {
                1 => Ok(()),
                5 => {
                    self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    self.open.acquire().await.unwrap().forget();
                    Ok(())
                }
                2 => Err(Refusal::NoRecord(task_id).into()),
                4 => Err(NodeError::NotDelivered("worker 0x05… is not known yet".into())),
                _ => Err(enigma_p2p::Error::Unanswered {
                    peer: "a peer".into(),
                    reason: "timed out".into(),
                }
                .into()),
            }
        }
    }

    fn task(first: u8) -> serde_json::Value {
        task_n(first, first)
    }

    /// A task whose id starts with `first` (what the stand-in does with it) and goes on with `n`.
    fn task_n(first: u8, n: u8) -> serde_json::Value {
        let mut id = [n; 32];
        id[0] = first;
        serde_json::json!({
            "taskId": TaskId(id).to_string(),
            "workerAddress": SignerAddress::from(Address([5; 20])).to_string(),
            "encryptedFn": "0x01",
            "encryptedArgs": "0x02",
            "contractAddress": ContractAddress([9; 32]).to_string(),
            "userDHKey": "0x03",
        })
    }

    fn code(e: jsonrpsee::core::client::Error) -> i32 {
        match e {
            jsonrpsee::core::client::Error::Call(e) => e.code(),
            other => panic!("expected an error answer, got {other}"),
        }
    }

    #[tokio::test]
    async fn the_gateway_answers_through_its_node_and_bans_a_client_that_keeps_striking() {
        let stand = Stand::new();
        let (addr, handle) =
            serve(stand.clone(), "127.0.0.1:0".parse().unwrap(), GatewayLimits::default())
                .await
                .unwrap();
        let http = HttpClientBuilder::default().build(format!("http://{addr}")).unwrap();

        let info: serde_json::Value = http.request("getNetworkInfo", rpc_params![]).await.unwrap();
        assert_eq!(info["epochBlock"], 300);
        assert_eq!(info["enigmaContract"], Address([6; 20]).to_string());
        let taken: serde_json::Value =
            http.request("sendTaskInput", rpc_params![task(1)]).await.unwrap();
        assert_eq!(taken["sendTaskResult"], true);
        let unanswered = http
            .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(3)])
            .await
            .unwrap_err();
        assert_eq!(code(unanswered), UNANSWERED, "the client is told to wait for the result");
        let undelivered = http
            .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(4)])
            .await
            .unwrap_err();
        assert_eq!(code(undelivered), NOT_DELIVERED, "the client is told to send it again");

        // A result published by the node reaches a subscriber of its task.
        let ws = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
        let id = TaskId([1; 32]);
        let mut sub = ws
            .subscribe::<TaskResultView, _>(
                "subscribeTaskResult",
                rpc_params![serde_json::json!({"taskId": id.to_string()})],
                "unsubscribeTaskResult",
            )
            .await
            .unwrap();
        let mut other = result(TaskId([8; 32]));
        other.gas_used = 1;
        stand.results.send(other).unwrap();
        stand.results.send(result(id)).unwrap();
        let pushed = sub.next().await.unwrap().unwrap();
        assert_eq!(pushed.task_id, id.to_string(), "only its own task's result");

        // Requests for unrecorded tasks count against the client: it is banned, and the node
        // does not hear of its requests any more.
        let strikes = AdmissionLimits::GATEWAY.strikes as usize;
        for _ in 0..strikes {
            let refused = http
                .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(2)])
                .await
                .unwrap_err();
            assert_eq!(code(refused), -32010);
        }
        let heard = stand.submitted.lock().unwrap().len();
        let banned = http
            .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(1)])
            .await
            .unwrap_err();
        assert_eq!(code(banned), NOT_ADMITTED);
        assert_eq!(stand.submitted.lock().unwrap().len(), heard);
        // Malformed parameters never reach the node.
        let malformed = http
            .request::<serde_json::Value, _>(
                "getTaskResult",
                rpc_params![serde_json::json!({"taskId": "0xzz"})],
            )
            .await
            .unwrap_err();
        assert_eq!(code(malformed), -32602);
        handle.stop().unwrap();
    }

    #[tokio::test]
    async fn checked_requests_waiting_at_their_worker_hold_no_client_slot_and_copies_wait() {
        let stand = Stand::new();
        let (addr, handle) =
            serve(stand.clone(), "127.0.0.1:0".parse().unwrap(), GatewayLimits::default())
                .await
                .unwrap();
        let http = Arc::new(HttpClientBuilder::default().build(format!("http://{addr}")).unwrap());
        // More checked tasks than one client may have in flight wait at once (as tasks wait
        // for their contract's earlier tasks), and the client's next task still goes through.
        let many = AdmissionLimits::GATEWAY.per_source + 8;
        let mut sent = Vec::new();
        for n in 0..many {
            let http = http.clone();
            let task = task_n(5, u8::try_from(n).unwrap());
            sent.push(tokio::spawn(async move {
                http.request::<serde_json::Value, _>("sendTaskInput", rpc_params![task]).await
            }));
        }
        for _ in 0..500 {
            if stand.waiting.load(std::sync::atomic::Ordering::SeqCst) == many {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(stand.waiting.load(std::sync::atomic::Ordering::SeqCst), many);
        let taken: serde_json::Value =
            http.request("sendTaskInput", rpc_params![task(1)]).await.unwrap();
        assert_eq!(taken["sendTaskResult"], true);
        // A copy of a task being delivered is told to wait, and never reaches the node.
        let heard = stand.submitted.lock().unwrap().len();
        let copy = http
            .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task_n(5, 0)])
            .await
            .unwrap_err();
        assert_eq!(code(copy), NOT_ADMITTED);
        assert_eq!(stand.submitted.lock().unwrap().len(), heard);
        stand.open.add_permits(many);
        for s in sent {
            assert_eq!(s.await.unwrap().unwrap()["sendTaskResult"], true);
        }
        // Requests that fail their checks still count against the client.
        for _ in 0..AdmissionLimits::GATEWAY.strikes {
            let refused = http
                .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(2)])
                .await
                .unwrap_err();
            assert_eq!(code(refused), -32010);
        }
        let banned = http
            .request::<serde_json::Value, _>("sendTaskInput", rpc_params![task(1)])
            .await
            .unwrap_err();
        assert_eq!(code(banned), NOT_ADMITTED);
        handle.stop().unwrap();
    }

    fn result(task_id: TaskId) -> ResultMessage {
        ResultMessage {
            task_id,
            contract: ContractAddress([9; 32]),
            success: true,
            is_deploy: false,
            inputs_hash: enigma_types::InputsHash([0; 32]),
            code_hash: enigma_types::CodeHash([0; 32]),
            encrypted_output: vec![1, 2, 3],
            output_hash: enigma_types::OutputHash([0; 32]),
            prev_delta_count: 0,
            prev_delta_hash: enigma_types::DeltaHash::ZERO,
            delta_hash: enigma_types::DeltaHash::ZERO,
            gas_limit: 1,
            gas_used: 0,
            eth_address: [0; 20],
            eth_payload: Vec::new(),
            value: 0,
            payouts: Vec::new(),
            caller: Address::ZERO,
            signature: Vec::new(),
            result_signature: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_dashboard_is_served_and_its_feed_is_shared_and_bounded_per_client() {
        let stand = Stand::new();
        let (addr, handle) =
            serve(stand.clone(), "127.0.0.1:0".parse().unwrap(), GatewayLimits::default())
                .await
                .unwrap();
        // Nobody watches: no snapshot is taken.
        tokio::time::sleep(NETWORK_REFRESH * 2).await;
        assert_eq!(stand.snapshots.load(std::sync::atomic::Ordering::SeqCst), 0);

        let http = HttpClientBuilder::default().build(format!("http://{addr}")).unwrap();
        let snapshot: serde_json::Value = http.request("getNetwork", rpc_params![]).await.unwrap();
        assert!(snapshot["block"].as_u64().unwrap() >= 7, "{snapshot}");

        // Subscribers on one connection share the feed: each gets the current snapshot, then
        // every change; a client may hold only a few.
        let ws = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
        let mut subs = Vec::new();
        for _ in 0..NETWORK_WATCHERS_PER_CLIENT {
            let mut sub = ws
                .subscribe::<serde_json::Value, _>(
                    "subscribeNetwork",
                    rpc_params![],
                    "unsubscribeNetwork",
                )
                .await
                .unwrap();
            let first = sub.next().await.unwrap().unwrap();
            assert!(first["block"].is_u64(), "{first}");
            subs.push(sub);
        }
        let refused = ws
            .subscribe::<serde_json::Value, _>(
                "subscribeNetwork",
                rpc_params![],
                "unsubscribeNetwork",
            )
            .await
            .unwrap_err();
        assert_eq!(code(refused), NOT_ADMITTED);
        // The chain moves: every subscriber hears of it, from snapshots taken once for all.
        let before = stand.snapshots.load(std::sync::atomic::Ordering::SeqCst);
        let mut seen = Vec::new();
        for sub in &mut subs {
            seen.push(sub.next().await.unwrap().unwrap()["block"].as_u64().unwrap());
        }
        assert!(seen.iter().all(|b| *b == seen[0]), "one snapshot for all: {seen:?}");
        let taken = stand.snapshots.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(taken <= 6, "{taken} snapshots for one change seen by {} subscribers", subs.len());
        // One unsubscribes: the client may subscribe again.
        subs.pop().unwrap().unsubscribe().await.unwrap();
        let mut again = ws
            .subscribe::<serde_json::Value, _>(
                "subscribeNetwork",
                rpc_params![],
                "unsubscribeNetwork",
            )
            .await
            .unwrap();
        assert!(again.next().await.unwrap().is_ok());

        // The page, and CORS for pages on other origins.
        let page = raw_http(addr, "GET /dashboard HTTP/1.1").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("subscribeNetwork") && page.contains("text/html"), "{page}");
        let preflight = raw_http(addr, "OPTIONS / HTTP/1.1").await;
        assert!(preflight.starts_with("HTTP/1.1 204"), "{preflight}");
        assert!(preflight.to_lowercase().contains("access-control-allow-origin: *"), "{preflight}");
        handle.stop().unwrap();
    }

    /// Sends one bare HTTP request line to the gateway and returns the whole response.
    async fn raw_http(addr: SocketAddr, line: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(format!("{line}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = Vec::new();
        socket.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }
}
