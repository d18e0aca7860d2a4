//! The enigma contracts on Ethereum, from Rust.
//!
//! - [`bindings`]: alloy `sol!` bindings generated from the committed artifacts
//!   (`contracts/artifacts/*.json`), so building this crate needs no Solidity compiler.
//! - [`deploy`]: the token, the attestation verifiers and Enigma, with their configuration.
//! - [`Chain`]: a typed reader and (with a key) writer: workers, stakes, epochs, selection,
//!   task records, receipts, fees.
//! - [`RecordBatch`]: compute tasks recorded as one Merkle root (`createTaskBatch`), and the
//!   proofs their receipts carry (`commitBatchReceipts`).
//! - [`Watcher`]: follows the contract's events `confirmations` blocks behind the head and
//!   reports a rewind when a reported block was replaced.
//! - [`EpochCache`]: the latest epochs, and worker selection in Rust, byte-identical to the
//!   contract's `getWorkerGroup` (`enigma_types::selection`).
//! - [`configure`]: how this process reaches the node (`http`, `https`, `ws`, `wss`; trusted
//!   roots, retries with backoff, the EIP-1559 fee cap).
//! - [`spawn_anvil`]: the local chain for devnets and tests (the pinned npm install, or PATH).
//!
//! ```no_run
//! # async fn run() -> enigma_chain::Result<()> {
//! use enigma_chain::Chain;
//! # let (enigma, token) = (enigma_types::Address::ZERO, enigma_types::Address::ZERO);
//! let chain = Chain::connect("http://127.0.0.1:8545", None, enigma, token).await?;
//! if let Some(epoch) = chain.current_epoch().await? {
//!     println!("epoch {} since block {} with {} workers", epoch.nonce, epoch.first_block, epoch.workers.len());
//! }
//! # Ok(()) }
//! ```

mod anvil;
mod batch;
pub mod bindings;
mod client;
pub mod convert;
mod deploy;
mod epochs;
mod error;
mod evidence;
mod transport;
mod watcher;

pub use anvil::{ANVIL_ARGS, ensure_anvil, find_anvil, spawn_anvil};
pub use batch::{
    BatchIndex, BatchedTask, MAX_RECORD_BATCH, PackedOutcome, ProvenTask, RecordBatch,
    RecordBatchInfo, pack_receipts, proves,
};
pub use client::{
    BatchItemTx, Chain, ComputeReceiptTx, DeployReceiptTx, EpochInfo, Mined, SecretContract,
    TaskLimits, TaskRecord, TaskStatus, WorkerInfo, WorkerStatus, chunk_commitment,
    describe_revert, pack_batch_receipts, provider, record_batch,
};
pub use deploy::{
    DEFAULT_TASK_LIMITS, DeployConfig, Deployment, IasPolicy, SimulationPolicy, deploy,
    deploy_voting,
};
pub use epochs::{EPOCHS_LOADED, EpochCache};
pub use error::{ChainError, Result};
pub use evidence::{
    EVIDENCE_DCAP, EVIDENCE_IAS, EVIDENCE_SIMULATION, RecordedEvidence, decode_evidence,
    encode_evidence,
};
pub use transport::{ChainOptions, configure, options, parse_gwei, public_url};
pub use watcher::{ChainEvent, Located, Poll, Watcher, decode};
