//! The protocol's byte formats that arrive from outside: deltas (from peers and the host's
//! disk), packed payouts (in results), a query's caller field (decrypted inside the enclave: a
//! signature or a permit), report data (inside attestation evidence). Each must decode or
//! refuse, never panic, and what decodes must encode back to what was read.
#![no_main]

use enigma_types::{caller::QueryCaller, delta::Delta, messages::ReportData, payouts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(delta) = Delta::decode(data) {
        assert_eq!(Delta::decode(&delta.encode()).as_ref(), Ok(&delta), "a delta round-trips");
    }
    let _ = payouts::decode(data);
    if let Some(caller) = QueryCaller::decode(data) {
        let _ = QueryCaller::decode(&caller.encode());
    }
    if let Ok(bytes) = <&[u8; 64]>::try_from(data) {
        let _ = ReportData::parse(bytes);
    }
});
