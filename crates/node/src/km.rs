//! The key-management node: runs epochs and serves state keys to attested, selected workers.
//!
//! Every `poll_interval` it checks whether the next epoch is due; if so it reads the active
//! workers at the current block, has its enclave draw and sign a seed (the enclave signs one
//! worker list per epoch, so a submission that fails is retried with the same snapshot block),
//! and submits `setWorkersParams`. It serves `getStateKeys {request, signature, evidence}` over
//! JSON-RPC: it hands its enclave the request, the requesting enclave's attestation evidence (as
//! the worker sent it, or else as the chain recorded it) and the chain's parameters of the
//! request's epoch; the enclave verifies the evidence and the epoch itself and releases the keys
//! only to an attested worker enclave the epoch selects; otherwise the error says why.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use enigma_attestation::Evidence;
use enigma_chain::Chain;
use enigma_crypto::KeyPair;
use enigma_enclave::{
    CarriedEvidence, EnclaveBuild, EnclaveProxy, EnclaveReport, EpochInput, EpochParams,
    KeyRequestInput, KmEnclave, KmInit, NodeSecret, SimulationBackend, StateKeyRequest,
};
pub use enigma_p2p::rpc::StateKeysMessage;
use enigma_p2p::rpc::{self, StateKeysCall};
use enigma_store::Store;
use enigma_types::{Address, SignerAddress, messages::bytes_digest};
use jsonrpsee::{
    RpcModule,
    server::{ServerBuilder, ServerConfig, ServerHandle},
    types::ErrorObjectOwned,
};

use tokio::sync::Mutex;

use crate::{NodeError, Result};

const SEALED: &str = "km-state";
/// The epoch being submitted: `u64be nonce ‖ u64be snapshot block`, so a retry signs (and
/// submits) the same list.
const PENDING_EPOCH: &str = "pending-epoch";

/// How the KM node runs.
#[derive(Debug)]
pub struct KmConfig {
    /// Where its database and sealing secret live.
    pub data_dir: PathBuf,
    /// The Ethereum JSON-RPC URL.
    pub chain_url: String,
    /// The Enigma contract.
    pub enigma: Address,
    /// The ENG token.
    pub token: Address,
    /// The account that pays for `setWorkersParams` (and registers the principal).
    pub operator: KeyPair,
    /// Where `getStateKeys` is served.
    pub rpc_listen: SocketAddr,
    /// How often it checks whether an epoch is due.
    pub poll_interval: Duration,
    /// The simulation attestation service (a devnet's) that attests the KM enclave at start,
    /// if the chain has no attestation of it yet.
    pub attestation_url: Option<String>,
    /// The simulation attestation authority the enclave build trusts (a devnet's; part of the
    /// enclave's measurement).
    pub simulation_authority: Address,
}

/// A running KM node.
#[derive(Debug)]
pub struct KmNode {
    /// The KM enclave's signer (the chain's `principal`).
    pub signer: SignerAddress,
    /// Where `getStateKeys` is served.
    pub rpc_addr: SocketAddr,
    server: ServerHandle,
    epochs: tokio::task::JoinHandle<()>,
    km: std::sync::Weak<Km>,
}

impl KmNode {
    /// Stops serving and running epochs. Returns once its store is closed, so the same data
    /// directory can be opened again (its sealed master secret and the chain's epoch counter
    /// carry over).
    pub async fn stop(self) {
        self.epochs.abort();
        let _ = self.epochs.await;
        let _ = self.server.stop();
        self.server.stopped().await;
        for _ in 0..300 {
            if self.km.upgrade().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!("the key manager's store is still in use after stopping");
    }
}

struct Km {
    enclave: Mutex<EnclaveProxy<SimulationBackend>>,
    store: Store,
    chain: Chain,
}

/// Parameters given by name (`{"taskId": …}`, as Discovery's clients send them) or as a
/// one-element array holding that object ([`rpc::one`]).
pub(crate) fn one<T: serde::de::DeserializeOwned>(
    params: &jsonrpsee::types::Params<'_>,
) -> std::result::Result<T, ErrorObjectOwned> {
    rpc::one(json(params)).map_err(invalid)
}

/// The parameters of a call as their JSON text (none: `null`), for [`enigma_p2p::rpc`] to parse.
pub(crate) fn json<'a>(params: &'a jsonrpsee::types::Params<'_>) -> &'a str {
    params.as_str().unwrap_or("null")
}

/// Parameters that did not parse: JSON-RPC's `-32602`, with what was wrong.
pub(crate) fn invalid(e: rpc::InvalidParams) -> ErrorObjectOwned {
    rpc_error(-32602, e.0)
}

pub(crate) fn rpc_error(code: i32, message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, None::<()>)
}

fn open_enclave(
    data_dir: &std::path::Path,
    operator: Address,
    authority: Address,
) -> Result<(Store, EnclaveProxy<SimulationBackend>, enigma_enclave::Initialized)> {
    let store = Store::open(data_dir.join("km.redb"))?;
    let secret = NodeSecret::load_or_create(&data_dir.join("sealing.secret"))
        .map_err(|e| NodeError::Io(e.to_string()))?;
    let build = EnclaveBuild::simulation(Some(authority));
    let enclave = EnclaveProxy::new(SimulationBackend::km_built(build, &secret, false));
    let init = enclave.init(KmInit {
        sealed_state: store.sealed(SEALED)?,
        operator,
        time: crate::attest::now(),
    })?;
    let mut batch = store.batch()?;
    batch.put_sealed(SEALED, &init.sealed)?;
    batch.commit()?;
    Ok((store, enclave, init))
}

/// Creates (or loads) the KM enclave's identity in `data_dir` and returns its report: its
/// signer is the `principal` the Enigma contract is deployed with, and the report is what an
/// attestation service turns into the evidence of `registerPrincipal`.
pub fn prepare_km(
    data_dir: &std::path::Path,
    operator: Address,
    authority: Address,
) -> Result<EnclaveReport> {
    Ok(open_enclave(data_dir, operator, authority)?.2.report)
}

/// Starts the KM node (its enclave, the epoch loop and the RPC server).
pub async fn start_km(config: KmConfig) -> Result<KmNode> {
    let (store, enclave, init) =
        open_enclave(&config.data_dir, config.operator.address(), config.simulation_authority)?;
    let chain =
        Chain::connect(&config.chain_url, Some(&config.operator), config.enigma, config.token)
            .await?;
    if let Some(url) = &config.attestation_url
        && !chain
            .enigma()
            .principalRegistered()
            .call()
            .await
            .map_err(enigma_chain::ChainError::from)?
    {
        let evidence = crate::attest::obtain_evidence(url, &init.report).await?;
        chain.register_principal(&evidence).await?;
    }
    let km = Arc::new(Km { enclave: Mutex::new(enclave), store, chain });

    let mut module = RpcModule::new(km.clone());
    module
        .register_async_method("getStateKeys", |params, km, _| async move {
            let call = rpc::state_keys(json(&params)).map_err(invalid)?;
            km.serve(call).await
        })
        .map_err(|e| NodeError::Rpc(e.to_string()))?;
    let server = ServerBuilder::default()
        .set_config(
            ServerConfig::builder().max_request_body_size(256 * 1024).max_connections(256).build(),
        )
        .build(config.rpc_listen)
        .await
        .map_err(|e| NodeError::Rpc(format!("cannot serve on {}: {e}", config.rpc_listen)))?;
    let rpc_addr = server.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    let server = server.start(module);

    let looping = km.clone();
    let interval = config.poll_interval;
    let epochs = tokio::spawn(async move {
        loop {
            if let Err(e) = looping.maybe_new_epoch().await {
                tracing::warn!(error = %e, "epoch round failed; retrying");
            }
            tokio::time::sleep(interval).await;
        }
    });
    tracing::info!(signer = %init.report.signer, %rpc_addr, "key manager ready");
    let km = Arc::downgrade(&km);
    Ok(KmNode { signer: init.report.signer, rpc_addr, server, epochs, km })
}

impl Km {
    async fn maybe_new_epoch(&self) -> Result<()> {
        let block = self.chain.block_number().await?;
        let next = self.chain.next_epoch_block().await?;
        if block < next {
            return Ok(());
        }
        let nonce = self.chain.epoch_count().await?;
        // A nonce gets one worker list: a retry (the last submission did not land) uses the
        // snapshot block the enclave signed.
        let pending = self.store.meta(PENDING_EPOCH)?.and_then(|b| {
            let b: [u8; 16] = b.try_into().ok()?;
            let (n, at) = b.split_at(8);
            Some((u64::from_be_bytes(n.try_into().ok()?), u64::from_be_bytes(at.try_into().ok()?)))
        });
        let snapshot = match pending {
            Some((n, at)) if n == nonce => at,
            _ => {
                let mut marker = [0u8; 16];
                marker[..8].copy_from_slice(&nonce.to_be_bytes());
                marker[8..].copy_from_slice(&block.to_be_bytes());
                let mut batch = self.store.batch()?;
                batch.put_meta(PENDING_EPOCH, &marker)?;
                batch.commit()?;
                block
            }
        };
        let (workers, stakes) = self.chain.active_workers(snapshot).await?;
        let group_size = self.group_size().await?;
        let seed = {
            let enclave = self.enclave.lock().await;
            enclave.new_epoch(EpochInput {
                nonce,
                snapshot_block: snapshot,
                group_size,
                workers: workers.clone(),
                stakes,
            })?
        };
        let mut batch = self.store.batch()?;
        batch.put_sealed(SEALED, &seed.sealed_state)?;
        batch.commit()?;
        self.chain.set_workers_params(snapshot, seed.seed, &seed.signature).await?;
        tracing::info!(epoch = nonce, workers = workers.len(), "new epoch");
        Ok(())
    }

    async fn group_size(&self) -> Result<u64> {
        Ok(enigma_chain::convert::u64_of(
            self.chain.enigma().groupSize().call().await.map_err(enigma_chain::ChainError::from)?,
            "group size",
        )?)
    }

    async fn serve(
        &self,
        call: StateKeysCall,
    ) -> std::result::Result<StateKeysMessage, ErrorObjectOwned> {
        let StateKeysCall { request, signature, epoch_block: block, evidence } = call;
        let evidence = match evidence {
            Some(value) => serde_json::from_value::<Evidence>(value).map_err(|e| {
                rpc_error(-32602, format!("`evidence` is not attestation evidence: {e}"))
            })?,
            None => {
                // The worker's evidence as the chain recorded it at its registration.
                let signer = signature
                    .recover_address(&bytes_digest(&request))
                    .map_err(|e| rpc_error(-32602, format!("the signature is invalid: {e}")))?;
                self.chain
                    .worker_evidence(SignerAddress::from(signer))
                    .await
                    .map_err(|e| rpc_error(-32000, e.to_string()))?
                    .ok_or_else(|| {
                        rpc_error(
                            -32002,
                            format!("worker {signer} is not registered and sent no evidence"),
                        )
                    })?
                    .evidence
            }
        };
        let epoch = self
            .chain
            .epoch_for_block(block)
            .await
            .map_err(|e| rpc_error(-32000, e.to_string()))?
            .filter(|e| e.first_block == block)
            .ok_or_else(|| {
                rpc_error(
                    -32001,
                    format!("no epoch starts at block {block}; request keys for the current epoch"),
                )
            })?;
        let group_size = self.group_size().await.map_err(|e| rpc_error(-32000, e.to_string()))?;
        let params = EpochParams {
            seed: epoch.seed,
            nonce: epoch.nonce,
            snapshot_block: epoch.snapshot_block,
            workers: epoch.workers,
            stakes: epoch.stakes,
            group_size,
        };
        let response = {
            let enclave = self.enclave.lock().await;
            enclave.get_state_keys(KeyRequestInput {
                request: StateKeyRequest { request, signature },
                evidence: CarriedEvidence::new(&evidence),
                epoch: params,
                time: crate::attest::now(),
            })
        }
        .map_err(|e| rpc_error(-32002, e.to_string()))?;
        Ok(StateKeysMessage {
            request: format!("0x{}", hex::encode(response.response)),
            signature: response.signature.to_string(),
            evidence: None,
        })
    }
}
