//! The JSON-RPC parameters a gateway and a key manager take from anyone (`enigma_p2p::rpc`):
//! every method's parser on the same bytes. Nothing may panic; what parses is a request the
//! worker's p2p decoder takes back unchanged, and a state-key request names the epoch its
//! bytes hold.
#![no_main]

use enigma_p2p::{
    messages::{QueryMessage, TaskRequest, decode, encode},
    rpc,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parameters' JSON text, as the servers hand it on (`Params::as_str`).
    let Ok(params) = std::str::from_utf8(data) else { return };
    let _ = rpc::worker_key(params);
    let _ = rpc::task_id(params);
    for parsed in [rpc::task(params), rpc::deploy(params)] {
        if let Ok((_, request)) = parsed {
            let bytes = encode(&request);
            assert_eq!(decode::<TaskRequest>(&bytes, usize::MAX).as_ref(), Ok(&request));
        }
    }
    if let Ok((_, query)) = rpc::query(params) {
        let bytes = encode(&query);
        assert_eq!(decode::<QueryMessage>(&bytes, usize::MAX).as_ref(), Ok(&query));
    }
    if let Ok(call) = rpc::state_keys(params) {
        assert!(call.request.len() <= rpc::MAX_STATE_KEY_REQUEST);
        if let Some(evidence) = call.evidence {
            let _ = serde_json::from_value::<enigma_attestation::Evidence>(evidence);
        }
    }
});
