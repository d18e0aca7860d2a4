//! The host → worker enclave boundary: any bytes as an ECALL. The enclave must answer every one
//! (an error at worst) and never panic — a panic is caught at the boundary and answered as
//! `Panicked`, which this target counts as a crash.
#![no_main]

use std::sync::OnceLock;

use enigma_enclave::{Backend, EnclaveError, EnclaveResponse, SimulationBackend};
use libfuzzer_sys::fuzz_target;

static ENCLAVE: OnceLock<SimulationBackend> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let enclave = ENCLAVE.get_or_init(|| SimulationBackend::worker([7; 32], false));
    let response = enclave.ecall(data);
    let decoded = postcard::from_bytes::<EnclaveResponse>(&response);
    assert!(decoded.is_ok(), "the enclave's response does not decode");
    assert!(
        !matches!(decoded, Ok(EnclaveResponse::Error(EnclaveError::Panicked))),
        "the worker enclave panicked"
    );
});
