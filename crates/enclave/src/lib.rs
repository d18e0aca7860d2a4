//! The trusted code of enigma and its one boundary.
//!
//! Everything that holds a plaintext secret — the worker's signing and IO keys, contract state
//! keys and decrypted state, the KM's master secret — lives in an enclave, reached only through
//! one serialized call: [`EnclaveCall`] in, [`EnclaveResponse`] out, with a single dispatcher
//! (MobileCoin's pattern). The host holds an [`EnclaveProxy`] that implements the
//! [`WorkerEnclave`] and [`KmEnclave`] traits by serializing each call to a [`Backend`]. The
//! [`SimulationBackend`] runs the enclave in-process but still goes through the same bytes, so
//! nothing crosses by reference and a hardware backend (an ECALL, or a separate process) is a
//! drop-in.
//!
//! ```no_run
//! use enigma_enclave::{CarriedEvidence, EnclaveProxy, SimulationBackend, WorkerEnclave, WorkerInit};
//! use enigma_types::Address;
//!
//! # let km_evidence: enigma_attestation::Evidence = todo!();
//! let backend = SimulationBackend::worker([7u8; 32], false);
//! let mut worker = EnclaveProxy::new(backend);
//! let init = worker.init(WorkerInit {
//!     sealed_identity: None,
//!     // The key manager's evidence, as the chain's PrincipalRegistered event carries it.
//!     principal_evidence: Some(CarriedEvidence::new(&km_evidence)),
//!     operator: Address([1; 20]),
//!     time: 1_700_000_000,
//! })?;
//! println!("worker enclave signer {}", init.report.signer);
//! # Ok::<(), enigma_enclave::EnclaveError>(())
//! ```
//!
//! Nothing in an [`EnclaveResponse`] is a secret in plaintext: docs/architecture.md reviews each
//! variant.

mod api;
mod boundary;
mod build;
mod km;
mod seal;
mod sim;
mod worker;

pub use api::*;
pub use boundary::{
    Backend, EnclaveCall, EnclaveError, EnclaveProxy, EnclaveResponse, KmEnclave, MAX_CALL_BYTES,
    WorkerEnclave, limits,
};
pub use build::EnclaveBuild;
pub use seal::{NodeSecret, Sealer};
pub use sim::SimulationBackend;
