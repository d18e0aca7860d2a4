//! Every message a peer can send: gossip (announcements, results), task requests and responses,
//! sync requests and responses, queries and answers — decoded with the node's size bounds, then
//! judged as the node judges them (signatures recovered). Nothing may panic.
#![no_main]

use enigma_crypto::SignedResult as _;
use enigma_p2p::messages::{
    GossipMessage, QueryAnswerMessage, QueryMessage, SyncRequest, SyncResponse, TaskRequest,
    TaskResponse, decode,
};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(GossipMessage::Worker(a)) = decode::<GossipMessage>(data, MAX) {
        let _ = a.is_signed();
    }
    if let Ok(GossipMessage::Result(r)) = decode::<GossipMessage>(data, MAX) {
        let _ = r.signer();
        let _ = enigma_p2p::messages::ResultView::from(r.as_ref());
    }
    let _ = decode::<TaskRequest>(data, MAX);
    let _ = decode::<TaskResponse>(data, MAX);
    let _ = decode::<SyncRequest>(data, MAX);
    let _ = decode::<SyncResponse>(data, MAX);
    let _ = decode::<QueryMessage>(data, MAX);
    if let Ok(a) = decode::<QueryAnswerMessage>(data, MAX) {
        let _ = a.signer(enigma_types::Address([0; 20]));
    }
});
