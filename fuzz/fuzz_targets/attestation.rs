//! Attestation evidence as the chain's `Registered` events carry it (a hostile registrant writes
//! any bytes there): simulation reports, Intel IAS reports (JSON, RSA signature, X.509
//! certificates) and DCAP quotes with their collateral — decoded by kind and verified with debug
//! allowed, so every check runs. Nothing may panic. The policy pins no measurement, so nothing
//! can be accepted: what is fuzzed is the parsing and verifying on the way there.
#![no_main]

use enigma_attestation::{Policy, onchain::decode_evidence, quote_tee, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, evidence)) = data.split_first() else { return };
    let _ = quote_tee(evidence);
    if let Ok(evidence) = decode_evidence(kind % 4, evidence) {
        let policy = Policy { allow_debug: true, ..Policy::default() }
            .with_simulation_authority(enigma_types::Address([5; 20]));
        let _ = verify(&evidence, &policy, 1_700_000_000);
    }
});
