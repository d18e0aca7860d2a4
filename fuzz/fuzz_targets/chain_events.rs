//! The Enigma contract's logs as a chain RPC returns them (the RPC provider is the adversary):
//! decoded into the events nodes act on (`enigma_chain::decode`). The first byte picks the
//! event signature (so every event's decoder is reached at once) and the topic count; the rest
//! are the topics and the data. Nothing may panic, and a batch of task records gives one event
//! per task at most.
#![no_main]

use alloy::{
    primitives::{Address, B256, Bytes, Log as Primitive, LogData},
    rpc::types::Log,
    sol_types::SolEvent,
};
use enigma_chain::{ChainEvent, bindings::Enigma, decode};
use libfuzzer_sys::fuzz_target;

const SIGNATURES: [B256; 15] = [
    Enigma::TaskRecordCreated::SIGNATURE_HASH,
    Enigma::TaskRecordsCreated::SIGNATURE_HASH,
    Enigma::SecretContractDeployed::SIGNATURE_HASH,
    Enigma::ReceiptVerified::SIGNATURE_HASH,
    Enigma::ReceiptsVerified::SIGNATURE_HASH,
    Enigma::ReceiptFailed::SIGNATURE_HASH,
    Enigma::ReceiptFailedETH::SIGNATURE_HASH,
    Enigma::TaskFeeReturned::SIGNATURE_HASH,
    Enigma::WorkersParameterized::SIGNATURE_HASH,
    Enigma::Registered::SIGNATURE_HASH,
    Enigma::LoggedIn::SIGNATURE_HASH,
    Enigma::LoggedOut::SIGNATURE_HASH,
    Enigma::PrincipalRegistered::SIGNATURE_HASH,
    Enigma::Paid::SIGNATURE_HASH,
    Enigma::Unregistered::SIGNATURE_HASH,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let extra = usize::from(pick >> 4) % 4;
    let mut topics = vec![SIGNATURES[usize::from(pick & 0x0f) % SIGNATURES.len()]];
    let mut rest = rest;
    for _ in 0..extra {
        let Some((topic, tail)) = rest.split_first_chunk::<32>() else { return };
        topics.push(B256::from(*topic));
        rest = tail;
    }
    let log = Log {
        inner: Primitive {
            address: Address::ZERO,
            data: LogData::new_unchecked(topics, Bytes::copy_from_slice(rest)),
        },
        ..Log::default()
    };
    if let Ok(events) = decode(&log) {
        let records =
            events.iter().filter(|e| matches!(e, ChainEvent::TaskRecordCreated { .. })).count();
        assert!(events.len() == 1 || records == events.len(), "{events:?}");
    }
});
