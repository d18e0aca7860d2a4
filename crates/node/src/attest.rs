//! Attestation evidence for a node's enclave, and the simulation attestation service.
//!
//! On hardware a node turns its enclave's report into evidence through Intel (a DCAP quote and
//! collateral, or formerly IAS). In simulation the same step goes to a **simulation attestation
//! service**: a small JSON-RPC server that holds the simulation authority's key and signs
//! enclave reports, standing in for Intel. A devnet (or a test harness) runs it; worker and key
//! manager processes only know its URL — no node's host holds the authority's key.
//!
//! `attest {mrEnclave, isvProdId, debug, reportData}` → the evidence (JSON, `kind:
//! "simulation"`). The service signs only the measurements it was told the network allows, so
//! a misbuilt enclave gets a clear error at registration instead of a refusal later.

use std::net::SocketAddr;

use enigma_attestation::{Evidence, SimulationAuthority};
use enigma_enclave::EnclaveReport;
use jsonrpsee::{
    RpcModule,
    core::client::ClientT,
    http_client::HttpClientBuilder,
    server::{ServerBuilder, ServerConfig, ServerHandle},
};
use serde::{Deserialize, Serialize};

use crate::{
    NodeError, Result,
    km::{one, rpc_error},
};

/// What `attest` takes: an enclave's report, hex with `0x`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestRequest {
    /// The measurement.
    pub mr_enclave: String,
    /// The product id (1 worker, 2 key manager).
    pub isv_prod_id: u16,
    /// Whether the enclave runs in debug mode.
    pub debug: bool,
    /// The 64 bytes of report data.
    pub report_data: String,
}

impl AttestRequest {
    /// The request for `report`.
    #[must_use]
    pub fn of(report: &EnclaveReport) -> Self {
        Self {
            mr_enclave: format!("0x{}", hex::encode(report.mr_enclave)),
            isv_prod_id: report.isv_prod_id,
            debug: report.debug,
            report_data: format!("0x{}", hex::encode(report.report_data)),
        }
    }
}

fn fixed<const N: usize>(text: &str, what: &str) -> std::result::Result<[u8; N], String> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
        .map_err(|e| format!("`{what}` is not {N} bytes of hex: {e}"))?;
    Ok(out)
}

/// A running simulation attestation service.
#[derive(Debug)]
pub struct AttestationService {
    /// Its URL (`http://ip:port`).
    pub url: String,
    /// The authority whose key signs its evidence (what enclave builds and policies trust).
    pub authority: enigma_types::Address,
    handle: ServerHandle,
}

impl AttestationService {
    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// Serves `attest` on `listen`, signing with `authority` reports of the `allowed` measurements.
pub async fn serve_attestation(
    authority: SimulationAuthority,
    allowed: Vec<[u8; 32]>,
    listen: SocketAddr,
) -> Result<AttestationService> {
    let address = authority.address();
    let mut module = RpcModule::new((authority, allowed));
    module
        .register_method("attest", |params, state, _| {
            let (authority, allowed) = state;
            let r: AttestRequest = one(&params)?;
            let bad = |e: String| rpc_error(-32602, e);
            let mr_enclave = fixed::<32>(&r.mr_enclave, "mrEnclave").map_err(bad)?;
            let report_data = fixed::<64>(&r.report_data, "reportData").map_err(bad)?;
            if !allowed.contains(&mr_enclave) {
                return Err(rpc_error(
                    -32003,
                    format!(
                        "measurement 0x{} is not one this network allows (is the node built from the same version as the devnet?)",
                        hex::encode(mr_enclave)
                    ),
                ));
            }
            let evidence = Evidence::Simulation(authority.attest(
                mr_enclave,
                r.isv_prod_id,
                r.debug,
                report_data,
            ));
            serde_json::to_value(&evidence).map_err(|e| rpc_error(-32603, e.to_string()))
        })
        .map_err(|e| NodeError::Rpc(e.to_string()))?;
    let server = ServerBuilder::default()
        .set_config(
            ServerConfig::builder().max_request_body_size(16 * 1024).max_connections(64).build(),
        )
        .build(listen)
        .await
        .map_err(|e| NodeError::Rpc(format!("cannot serve attestation on {listen}: {e}")))?;
    let addr = server.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    Ok(AttestationService {
        url: format!("http://{addr}"),
        authority: address,
        handle: server.start(module),
    })
}

/// Asks the attestation service at `url` for evidence of `report`.
pub async fn obtain_evidence(url: &str, report: &EnclaveReport) -> Result<Evidence> {
    let client = HttpClientBuilder::default()
        .build(url)
        .map_err(|e| NodeError::Rpc(format!("attestation service at {url}: {e}")))?;
    let value: serde_json::Value = client
        .request("attest", jsonrpsee::rpc_params![AttestRequest::of(report)])
        .await
        .map_err(|e| NodeError::Rpc(format!("the attestation service at {url} refused: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        NodeError::Rpc(format!("the attestation service at {url} answered no evidence: {e}"))
    })
}

/// The host's clock, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The host's clock, in Unix seconds (what it tells its enclave: the enclave never lets it run
/// backwards).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
