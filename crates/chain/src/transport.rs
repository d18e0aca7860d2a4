//! How this process reaches the Ethereum node: `http`, `https`, `ws` or `wss` (rustls, with the
//! system's and Mozilla's roots plus any the operator adds), retries with backoff on rate limits
//! and dropped connections, and the cap on what a transaction may pay per gas.
//!
//! The settings are the process's ([`configure`], once, at start): a node or a CLI command talks
//! to one chain under one operator's policy. Unset, they are [`ChainOptions::default`].

use std::{
    path::Path,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    providers::Provider,
    pubsub::{ConnectionHandle, PubSubConnect},
    rpc::{
        client::{ClientBuilder, RpcClient},
        json_rpc::{
            Id, Request, RequestPacket, Response, ResponsePacket, ResponsePayload,
            SerializedRequest,
        },
    },
    transports::{
        TransportError, TransportErrorKind, TransportFut,
        http::Http,
        layers::{RateLimitRetryPolicy, RetryPolicy},
        ws::WsBackend,
    },
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::{ChainError, Result};

/// How this process talks to the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainOptions {
    /// PEM certificates trusted as roots besides the system's and Mozilla's (a private RPC's
    /// own authority). `SSL_CERT_FILE` and `SSL_CERT_DIR` are read as well.
    pub ca_certs: Vec<Vec<u8>>,
    /// The most a transaction pays per gas, base fee and tip together (wei). A transaction is
    /// refused rather than sent while the chain's base fee is above it. `None`: no cap.
    pub max_fee_per_gas: Option<u128>,
    /// The tip per gas (wei); `None`: the node's suggestion, within the cap.
    pub priority_fee_per_gas: Option<u128>,
    /// Times a request is sent again after a rate limit, an unavailable node or a dropped
    /// connection, with doubling pauses from 250 ms up to 8 s (or the node's `Retry-After`).
    pub retries: u32,
}

impl Default for ChainOptions {
    fn default() -> Self {
        Self { ca_certs: Vec::new(), max_fee_per_gas: None, priority_fee_per_gas: None, retries: 6 }
    }
}

impl ChainOptions {
    /// Adds the certificates of a PEM file as trusted roots.
    pub fn trust_pem_file(&mut self, path: &Path) -> Result<()> {
        let pem = std::fs::read(path)
            .map_err(|e| ChainError::Config(format!("reading {}: {e}", path.display())))?;
        let certs =
            parse_pem(&pem).map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ChainError::Config(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            )));
        }
        self.ca_certs.push(pem);
        Ok(())
    }
}

fn parse_pem(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))
}

static OPTIONS: OnceLock<ChainOptions> = OnceLock::new();
static TLS: OnceLock<std::result::Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();

/// Sets this process's chain options. Call it once, before the first connection; a second call
/// with other options is refused (connections made already would not follow them).
pub fn configure(options: ChainOptions) -> Result<()> {
    for pem in &options.ca_certs {
        parse_pem(pem).map_err(ChainError::Config)?;
    }
    if let (Some(cap), Some(tip)) = (options.max_fee_per_gas, options.priority_fee_per_gas)
        && tip > cap
    {
        return Err(ChainError::Config(format!(
            "the priority fee ({tip} wei) is above the fee cap ({cap} wei)"
        )));
    }
    let set = OPTIONS.get_or_init(|| options.clone());
    if *set == options {
        Ok(())
    } else {
        Err(ChainError::Config("the chain options were set already, to other values".into()))
    }
}

/// This process's chain options.
#[must_use]
pub fn options() -> &'static ChainOptions {
    OPTIONS.get_or_init(ChainOptions::default)
}

/// One TLS configuration for every connection: aws-lc-rs, TLS 1.2 and 1.3, roots from
/// webpki-roots, the system (`SSL_CERT_FILE`/`SSL_CERT_DIR` or the distribution's store) and
/// [`ChainOptions::ca_certs`].
fn tls() -> Result<Arc<rustls::ClientConfig>> {
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system certificate could not be read");
        }
        roots.add_parsable_certificates(native.certs);
        for pem in &options().ca_certs {
            for cert in parse_pem(pem)? {
                roots.add(cert).map_err(|e| format!("a trusted certificate: {e}"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    })
    .clone()
    .map_err(ChainError::Config)
}

/// `url` without what may be a secret (credentials, path, query: providers put API keys there),
/// for files, messages and logs: `https://host:port/…`.
#[must_use]
pub fn public_url(url: &str) -> String {
    match url.parse::<url::Url>() {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() { "/…" } else { "" };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "<an unparsable URL>".into(),
    }
}

/// An RPC client for `url` (`http`, `https`, `ws` or `wss`) with retries.
pub(crate) async fn rpc_client(url: &str) -> Result<RpcClient> {
    let parsed: url::Url =
        url.parse().map_err(|e| ChainError::Config(format!("RPC URL {}: {e}", public_url(url))))?;
    let retry = RetryLayer { retries: options().retries };
    let local = alloy::transports::utils::guess_local_url(url);
    match parsed.scheme() {
        "http" | "https" => {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(rustls::ClientConfig::clone(&*tls()?))
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| ChainError::Config(format!("HTTP client: {e}")))?;
            Ok(ClientBuilder::default()
                .layer(retry)
                .transport(Http::with_client(client, parsed), local))
        }
        "ws" | "wss" => {
            let connect = WsTls { url: url.to_owned(), tls: tls()? };
            ClientBuilder::default()
                .layer(retry)
                .pubsub(connect)
                .await
                .map_err(|e| ChainError::Rpc(format!("connecting to {}: {e}", public_url(url))))
        }
        other => Err(ChainError::Config(format!(
            "RPC URL {}: the scheme is {other}; use http, https, ws or wss",
            public_url(url)
        ))),
    }
}

/// A WebSocket connection (`ws`/`wss`) through this process's TLS configuration, reconnected
/// by alloy's pub-sub service when it drops.
#[derive(Clone)]
struct WsTls {
    url: String,
    tls: Arc<rustls::ClientConfig>,
}

impl PubSubConnect for WsTls {
    fn is_local(&self) -> bool {
        alloy::transports::utils::guess_local_url(&self.url)
    }

    async fn connect(&self) -> alloy::transports::TransportResult<ConnectionHandle> {
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            self.url.as_str(),
            None,
            true,
            Some(connector),
        );
        let (socket, _) = tokio::time::timeout(Duration::from_secs(15), connecting)
            .await
            .map_err(|_| TransportErrorKind::custom_str("the WebSocket handshake took over 15 s"))?
            .map_err(TransportErrorKind::custom)?;
        let (handle, interface) = ConnectionHandle::new();
        WsBackend::from_socket(socket, interface, Duration::from_secs(10)).spawn();
        // A node outlives any outage of its RPC: reconnect for ever, pausing up to alloy's cap.
        Ok(handle.with_max_retries(u32::MAX).with_retry_interval(Duration::from_secs(1)))
    }
}

/// Sends a request again after a rate limit (HTTP 429, the node's own codes), an unavailable
/// node (502, 503, 504) or a connection that failed, pausing 250 ms, 500 ms, … up to 8 s (or as
/// long as the node's `Retry-After` asks, at most a minute).
///
/// A transaction sent again may have reached the node the first time: when the retry is
/// refused as already known (or its nonce as used), the transaction is looked up by its hash
/// and, if the node has it, that is the answer — never a second transaction.
#[derive(Debug, Clone, Copy)]
struct RetryLayer {
    retries: u32,
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry { inner, retries: self.retries }
    }
}

#[derive(Debug, Clone)]
struct Retry<S> {
    inner: S,
    retries: u32,
}

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(8);
const LONGEST_HINT: Duration = Duration::from_secs(60);

/// Whether the request may be sent again: a rate limit or unavailable node as alloy knows them,
/// a gateway error, or a connection that failed or timed out.
fn retryable(error: &TransportError) -> bool {
    if RateLimitRetryPolicy::default().should_retry(error) {
        return true;
    }
    match error {
        TransportError::Transport(TransportErrorKind::HttpError(e)) => {
            matches!(e.status, 429 | 502 | 503 | 504)
        }
        TransportError::Transport(TransportErrorKind::BackendGone) => true,
        TransportError::Transport(TransportErrorKind::Custom(e)) => e
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|e| (e.is_connect() || e.is_timeout()) && !about_certificates(e)),
        TransportError::ErrorResp(e) => {
            // Rate limits and overloads as nodes and providers word them.
            matches!(e.code, -32005 | -32098 | -32099 | 429)
                || e.message.to_ascii_lowercase().contains("rate limit")
        }
        _ => false,
    }
}

/// Whether a connection failed on the server's certificate (no retry mends that).
fn about_certificates(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.to_string().to_ascii_lowercase().contains("certificate") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The hash of a raw transaction a request sends (`eth_sendRawTransaction`), if it is one.
fn sent_transaction(request: &RequestPacket) -> Option<(Id, alloy::primitives::B256)> {
    let RequestPacket::Single(req) = request else { return None };
    if req.method() != "eth_sendRawTransaction" {
        return None;
    }
    let params: (alloy::primitives::Bytes,) = serde_json::from_str(req.params()?.get()).ok()?;
    Some((req.id().clone(), alloy::primitives::keccak256(&params.0)))
}

impl<S> Service<RequestPacket> for Retry<S>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Clone
        + Send
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let mut inner = self.inner.clone();
        let retries = self.retries;
        Box::pin(async move {
            let sends = sent_transaction(&request);
            let mut pause = FIRST_PAUSE;
            let mut attempt = 0;
            loop {
                let call = tokio::time::timeout(CALL_TIMEOUT, inner.call(request.clone())).await;
                let timed_out = call.is_err();
                let (error, response) = match call {
                    Ok(Ok(response)) => match response.as_error().cloned() {
                        None => return Ok(response),
                        Some(e) => (TransportError::ErrorResp(e), Some(response)),
                    },
                    Ok(Err(error)) => (without_url(error), None),
                    Err(_) => (
                        TransportErrorKind::custom_str(&format!(
                            "the node did not answer within {} s",
                            CALL_TIMEOUT.as_secs()
                        )),
                        None,
                    ),
                };
                // The transaction may be in the node already: sent by an earlier attempt, or
                // sent again by the WebSocket service after it reconnected. Ask first.
                if let Some((id, hash)) = &sends
                    && (attempt > 0 || refused_as_known(&error))
                {
                    match known(&mut inner, hash).await {
                        Some(true) => return Ok(sent(id.clone(), *hash)),
                        Some(false) => {}
                        None => {
                            return Err(TransportErrorKind::custom_str(&format!(
                                "transaction {hash} may have reached the node but could not be \
                                 looked up: its outcome is unknown; look it up before sending \
                                 again"
                            )));
                        }
                    }
                }
                if !(timed_out || retryable(&error)) {
                    return response.ok_or(error);
                }
                if attempt >= retries {
                    return Err(TransportErrorKind::custom_str(&format!(
                        "{error} (after {attempt} retries)"
                    )));
                }
                attempt += 1;
                let wait = RateLimitRetryPolicy::default()
                    .backoff_hint(&error)
                    .map_or(pause, |hint| hint.min(LONGEST_HINT));
                tracing::debug!(%error, attempt, wait_ms = wait.as_millis(), "retrying an RPC request");
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        })
    }
}

/// The error without the request's URL (reqwest names it, and providers put API keys in it).
fn without_url(error: TransportError) -> TransportError {
    match error {
        TransportError::Transport(TransportErrorKind::Custom(e)) => TransportError::Transport(
            TransportErrorKind::Custom(match e.downcast::<reqwest::Error>() {
                Ok(e) => Box::new(e.without_url()),
                Err(e) => e,
            }),
        ),
        other => other,
    }
}

/// How long one request may take before it is sent again (a node that accepted the connection
/// and went silent).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a node refused a transaction as one it has, or whose nonce is used.
fn refused_as_known(error: &TransportError) -> bool {
    let TransportError::ErrorResp(e) = error else { return false };
    let text = e.message.to_ascii_lowercase();
    ["already known", "nonce too low", "already imported", "nonce has already been used"]
        .iter()
        .any(|m| text.contains(m))
}

/// Whether the node knows the transaction `hash` (pending or mined); `None` when it could not
/// be asked (after three tries).
async fn known<S>(inner: &mut S, hash: &alloy::primitives::B256) -> Option<bool>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        >,
{
    static LOOKUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut pause = FIRST_PAUSE;
    for _ in 0..3 {
        let n = LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request: Request<(alloy::primitives::B256,)> = Request::new(
            "eth_getTransactionByHash",
            Id::String(format!("enigma-lookup-{n}")),
            (*hash,),
        );
        let serialized = SerializedRequest::try_from(request).ok()?;
        let answer =
            tokio::time::timeout(CALL_TIMEOUT, inner.call(RequestPacket::Single(serialized))).await;
        if let Ok(Ok(ResponsePacket::Single(Response {
            payload: ResponsePayload::Success(v),
            ..
        }))) = answer
        {
            return Some(v.get() != "null");
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    None
}

/// A successful `eth_sendRawTransaction` answer: the transaction's hash.
fn sent(id: Id, hash: alloy::primitives::B256) -> ResponsePacket {
    let value = serde_json::value::to_raw_value(&hash).unwrap_or_else(|_| {
        serde_json::value::RawValue::from_string("null".into()).unwrap_or_default()
    });
    ResponsePacket::Single(Response { id, payload: ResponsePayload::Success(value) })
}

/// The fees of an EIP-1559 transaction under this process's cap: the node's suggestion with the
/// tip and the cap applied, or a refusal naming the base fee while it is above the cap.
pub(crate) async fn fees<P: Provider + ?Sized>(provider: &P) -> Result<(u128, u128)> {
    let o = options();
    let suggested = provider.estimate_eip1559_fees().await?;
    let tip = o.priority_fee_per_gas.unwrap_or(suggested.max_priority_fee_per_gas);
    // The node's suggestion carries its own tip: swap in ours over the same base-fee headroom.
    let max = suggested
        .max_fee_per_gas
        .saturating_sub(suggested.max_priority_fee_per_gas)
        .saturating_add(tip);
    let Some(cap) = o.max_fee_per_gas else { return Ok((max, tip)) };
    if max <= cap {
        return Ok((max, tip.min(max)));
    }
    let base = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .and_then(|b| b.header.base_fee_per_gas)
        .map_or(0, u128::from);
    cap_fees(base, tip, cap)
}

/// Fits a tip under a fee cap at a base fee, or says why it cannot.
fn cap_fees(base: u128, tip: u128, cap: u128) -> Result<(u128, u128)> {
    if base >= cap {
        return Err(ChainError::FeeCap(format!(
            "the chain's base fee is {} gwei and this node pays at most {} gwei per gas; raise \
             max-fee-gwei or wait for the fee to fall",
            gwei(base),
            gwei(cap)
        )));
    }
    Ok((cap, tip.min(cap - base)))
}

fn gwei(wei: u128) -> String {
    let whole = wei / 1_000_000_000;
    let frac = wei % 1_000_000_000;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:09}").trim_end_matches('0'))
    }
}

/// Parses an amount of gwei ("30", "1.5") into wei.
pub fn parse_gwei(text: &str) -> Result<u128> {
    let bad = || ChainError::Config(format!("{text:?} is not an amount of gwei (e.g. 30 or 1.5)"));
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
        return Err(bad());
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let frac: u128 =
        if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad())? };
    whole.checked_mul(1_000_000_000).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_keeps_no_key() {
        assert_eq!(
            public_url("https://sepolia.infura.io/v3/SECRETKEY"),
            "https://sepolia.infura.io/…"
        );
        assert_eq!(public_url("wss://user:pw@node.example:8546"), "wss://node.example:8546");
        assert_eq!(public_url("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
        assert_eq!(public_url("https://x.example/?apikey=S"), "https://x.example/…");
        assert!(!public_url("not a url SECRET").contains("SECRET"));
    }

    #[test]
    fn gwei_amounts_parse_exactly_and_bad_ones_are_named() {
        assert_eq!(parse_gwei("30").unwrap(), 30_000_000_000);
        assert_eq!(parse_gwei("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_gwei("0.000000001").unwrap(), 1);
        assert_eq!(parse_gwei(".5").unwrap(), 500_000_000);
        for bad in ["", ".", "1.0000000001", "-1", "1e9", "abc", "1.2.3"] {
            let e = parse_gwei(bad).unwrap_err().to_string();
            assert!(e.contains("gwei"), "{bad}: {e}");
        }
        assert_eq!(gwei(1_500_000_000), "1.5");
        assert_eq!(gwei(30_000_000_000), "30");
    }

    #[test]
    fn a_fee_cap_lowers_the_offer_and_refuses_a_base_fee_above_it() {
        // Base 10 gwei, tip 2, cap 11: the offer is the cap, the tip what is left above the base.
        let g = 1_000_000_000;
        assert_eq!(cap_fees(10 * g, 2 * g, 11 * g).unwrap(), (11 * g, g));
        assert_eq!(cap_fees(10 * g, 2 * g, 20 * g).unwrap(), (20 * g, 2 * g));
        let e = cap_fees(12 * g, 2 * g, 11 * g).unwrap_err();
        assert!(matches!(e, ChainError::FeeCap(_)));
        assert!(e.to_string().contains("base fee is 12 gwei"), "{e}");
    }

    #[test]
    fn rate_limits_gateway_errors_and_overloads_are_retried_reverts_are_not() {
        use alloy::rpc::json_rpc::ErrorPayload;
        let resp = |code, message: &str| {
            TransportError::ErrorResp(ErrorPayload {
                code,
                message: message.to_owned().into(),
                data: None,
            })
        };
        assert!(retryable(&resp(-32005, "limit exceeded")));
        assert!(retryable(&resp(-32000, "Your app has exceeded its rate limit")));
        assert!(!retryable(&resp(3, "execution reverted")));
        assert!(!retryable(&resp(-32000, "nonce too low")));
        assert!(retryable(&TransportErrorKind::http_error(503, "unavailable".into())));
        assert!(retryable(&TransportErrorKind::http_error(429, String::new())));
        assert!(!retryable(&TransportErrorKind::http_error(401, "unauthorized".into())));
    }

    #[test]
    fn a_sent_transaction_is_known_by_the_hash_of_its_bytes() {
        let raw = alloy::primitives::Bytes::from(vec![0x02, 0xf8, 0x01]);
        let request: Request<(alloy::primitives::Bytes,)> =
            Request::new("eth_sendRawTransaction", Id::Number(7), (raw.clone(),));
        let packet = RequestPacket::Single(SerializedRequest::try_from(request).unwrap());
        let (id, hash) = sent_transaction(&packet).unwrap();
        assert_eq!(id, Id::Number(7));
        assert_eq!(hash, alloy::primitives::keccak256(&raw));
        let other: Request<()> = Request::new("eth_blockNumber", Id::Number(1), ());
        assert!(sent_transaction(&RequestPacket::Single(other.try_into().unwrap())).is_none());
    }
}
