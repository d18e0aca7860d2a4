//! The enigma nodes: the worker (with its gateway JSON-RPC) and the key manager.
//!
//! - [`start_worker`]: a worker node — enclave, store, p2p, chain follower, the task pipeline
//!   (check the record on chain and the epoch's selection, obtain the state key from the KM,
//!   execute, persist, publish, queue the receipt) and the receipt committer (batches when full,
//!   on a timer or at the end of an epoch; deployments, failures of deployments and callbacks at
//!   once), and the gateway if configured.
//! - [`start_km`]: the key-management node — its enclave, the epoch loop and `getStateKeys`.
//! - [`core`]: the protocol decisions without I/O (task checks, the receipt queue).
//! - [`sync`]: state sync between nodes (`/enigma/sync/1`), checked against the chain.
//! - [`start_devnet`]: anvil, the contracts, a KM, N workers and a gateway in one process.

mod attest;
pub mod core;
mod dashboard;
mod devnet;
mod gateway;
mod handover;
mod km;
mod reads;
pub mod sync;
mod worker;

pub use attest::{AttestRequest, AttestationService, obtain_evidence, serve_attestation};
pub use devnet::{
    DevAccount, Devnet, DevnetConfig, DevnetSummary, devnet_measurements, devnet_policy,
    devnet_simulation_policy, key_file, serve_devnet_attestation, start_devnet,
};
pub use enigma_p2p::messages::ResultView as TaskResultView;
pub use gateway::{
    GatewayLimits, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, MAX_REQUEST_BYTES, NOT_ADMITTED,
    NOT_DELIVERED, UNANSWERED,
};
pub use km::{KmConfig, KmNode, StateKeysMessage, prepare_km, start_km};
pub use worker::{
    DEFAULT_CONFIRMATIONS, DEVNET_CHAIN_ID, LOAD_CHUNK_BYTES, LOAD_CHUNK_DELTAS,
    MAX_QUERIES_IN_FLIGHT, QUERY_GAS_LIMIT, WorkerAction, WorkerConfig, WorkerNode, manage_worker,
    start_worker, to_message as result_message,
};

/// A node failure.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] enigma_store::StoreError),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] enigma_chain::ChainError),
    /// The enclave refused or failed.
    #[error("enclave: {0}")]
    Enclave(#[from] enigma_enclave::EnclaveError),
    /// The network failed.
    #[error(transparent)]
    P2p(#[from] enigma_p2p::Error),
    /// A key or signature failed.
    #[error(transparent)]
    Crypto(#[from] enigma_crypto::Error),
    /// An RPC server or client failed.
    #[error("RPC: {0}")]
    Rpc(String),
    /// A file could not be read or written.
    #[error("I/O: {0}")]
    Io(String),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A task was refused, with the reason for the client.
    #[error("{0}")]
    Refused(String),
    /// A task or query could not be handed to its worker now (not known to this node yet, or
    /// unreachable): nothing was delivered, and the same request may be sent again shortly.
    #[error("{0}")]
    NotDelivered(String),
    /// A task does not match its record or selection.
    #[error(transparent)]
    Task(#[from] core::Refusal),
    /// A task request was not admitted (rate limits, bans).
    #[error(transparent)]
    NotAdmitted(#[from] core::NotAdmitted),
}

/// A result with [`NodeError`].
pub type Result<T, E = NodeError> = std::result::Result<T, E>;
