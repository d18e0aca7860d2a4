//! The simulation backend: the enclave runs in this process, behind the same serialized calls.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{
    boundary::{Backend, Enclave, EnclaveError, EnclaveResponse, encode_response},
    build::EnclaveBuild,
    km::KmState,
    seal::NodeSecret,
    worker::WorkerState,
};

/// An enclave in this process. Calls still cross as bytes, and a panic inside becomes an
/// [`EnclaveError::Panicked`] response.
#[derive(Debug)]
pub struct SimulationBackend {
    enclave: Enclave,
}

impl SimulationBackend {
    /// A worker enclave of `build` sealing with `secret` (see [`NodeSecret::load_or_create`]).
    /// Choosing the build is choosing which enclave binary to load: it is part of the
    /// enclave's measurement, and nothing changes it afterwards.
    #[must_use]
    pub fn worker_built(build: EnclaveBuild, secret: &NodeSecret, debug: bool) -> Self {
        Self { enclave: Enclave::Worker(Box::new(WorkerState::new(secret, debug, build))) }
    }

    /// A key-management enclave of `build` sealing with `secret`.
    #[must_use]
    pub fn km_built(build: EnclaveBuild, secret: &NodeSecret, debug: bool) -> Self {
        Self {
            enclave: Enclave::Km(std::sync::Mutex::new(Box::new(KmState::new(
                secret, debug, build,
            )))),
        }
    }

    /// A worker enclave of a build that trusts no peer evidence, sealing with the given secret
    /// bytes (for tests of the boundary itself).
    #[must_use]
    pub fn worker(secret: [u8; 32], debug: bool) -> Self {
        Self::worker_built(EnclaveBuild::simulation(None), &NodeSecret::from_bytes(secret), debug)
    }

    /// A key-management enclave of a build that trusts no peer evidence, sealing with the given
    /// secret bytes (for tests of the boundary itself).
    #[must_use]
    pub fn km(secret: [u8; 32], debug: bool) -> Self {
        Self::km_built(EnclaveBuild::simulation(None), &NodeSecret::from_bytes(secret), debug)
    }
}

impl Backend for SimulationBackend {
    fn ecall(&self, call: &[u8]) -> Vec<u8> {
        let enclave = &self.enclave;
        catch_unwind(AssertUnwindSafe(|| enclave.dispatch(call)))
            .unwrap_or_else(|_| encode_response(&EnclaveResponse::Error(EnclaveError::Panicked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EnclaveCall, EnclaveProxy, WorkerEnclave};

    #[test]
    fn a_panic_inside_becomes_an_error_response() {
        let proxy = EnclaveProxy::new(SimulationBackend { enclave: Enclave::Panicking });
        assert_eq!(proxy.io_key(1), Err(EnclaveError::Panicked));
        let bytes = postcard::to_allocvec(&EnclaveCall::IoKey { epoch: 1 }).unwrap();
        let backend = SimulationBackend { enclave: Enclave::Panicking };
        let response: EnclaveResponse = postcard::from_bytes(&backend.ecall(&bytes)).unwrap();
        assert_eq!(response, EnclaveResponse::Error(EnclaveError::Panicked));
    }
}
