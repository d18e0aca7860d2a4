//! The enclave → host boundary, as a node sees it: any bytes as an enclave's response (a
//! hardware enclave's output is untrusted memory to the host). Decoding and the proxy's typed
//! calls must fail cleanly.
#![no_main]

use enigma_enclave::{Backend, EnclaveProxy, EnclaveResponse, KmEnclave, WorkerEnclave};
use libfuzzer_sys::fuzz_target;

struct Replay(Vec<u8>);

impl Backend for Replay {
    fn ecall(&self, _: &[u8]) -> Vec<u8> {
        self.0.clone()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = postcard::from_bytes::<EnclaveResponse>(data);
    let proxy = EnclaveProxy::new(Replay(data.to_vec()));
    let _ = WorkerEnclave::report(&proxy, 1_700_000_000);
    let _ = KmEnclave::report(&proxy, 1_700_000_000);
});
