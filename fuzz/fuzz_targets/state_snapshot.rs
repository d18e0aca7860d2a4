//! A contract state snapshot as the host's disk holds it (decrypted inside the enclave): it
//! must load or refuse, and a loaded one must encode back to a snapshot that loads the same.
#![no_main]

use enigma_runtime::ContractState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = ContractState::decode_snapshot(data) {
        let again = ContractState::decode_snapshot(&state.encode_snapshot());
        assert_eq!(again.as_ref().ok(), Some(&state), "a snapshot round-trips");
    }
});
