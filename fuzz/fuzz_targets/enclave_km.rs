//! The host → key-manager enclave boundary: any bytes as an ECALL, on an initialized key
//! manager (so epoch and state-key requests reach their checks). No call may panic it.
#![no_main]

use std::sync::OnceLock;

use enigma_enclave::{
    Backend, EnclaveError, EnclaveProxy, EnclaveResponse, KmEnclave, KmInit, SimulationBackend,
};
use enigma_types::Address;
use libfuzzer_sys::fuzz_target;

static KM: OnceLock<EnclaveProxy<SimulationBackend>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let km = KM.get_or_init(|| {
        let km = EnclaveProxy::new(SimulationBackend::km([9; 32], false));
        km.init(KmInit { sealed_state: None, operator: Address([1; 20]), time: 1_700_000_000 })
            .expect("a fresh key manager initializes");
        km
    });
    let response = km.backend().ecall(data);
    let decoded = postcard::from_bytes::<EnclaveResponse>(&response);
    assert!(decoded.is_ok(), "the enclave's response does not decode");
    assert!(
        !matches!(decoded, Ok(EnclaveResponse::Error(EnclaveError::Panicked))),
        "the key-manager enclave panicked"
    );
});
