//! State sync between separate p2p nodes on loopback: thousands of deltas arrive in order,
//! each checked against the chain's hashes; a provider that tampers with a delta is penalized and
//! the data comes from another; a provider serves only deltas it has checked against the chain.

use std::sync::Arc;

use crate::support::*;
use enigma_node::sync::{MemoryHashes, Verified, serve, sync_contract};
use enigma_p2p::{SyncRequest, SyncResponse};
use enigma_store::Store;
use enigma_types::delta_hash;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampering_provider_is_rejected_and_every_delta_arrives_verified() {
    let (code, deltas) = history(2_500, 180);
    let chain = chain_of(&code, &deltas);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (_honest, honest_addrs) =
        provider(filled_store(dirs[0].path(), &code, &deltas), chain.clone(), false, Vec::new())
            .await;
    let (_evil, evil_addrs) =
        provider(filled_store(dirs[1].path(), &code, &deltas), chain.clone(), true, Vec::new())
            .await;
    let me = receiver(&[honest_addrs.clone(), evil_addrs.clone()]).await;
    let store = Store::open(dirs[2].path().join("receiver.redb")).unwrap();
    let verified = Verified::default();
    let (evil, honest) = (peer_of(&evil_addrs), peer_of(&honest_addrs));

    // The tamperer is asked first.
    let report =
        sync_contract(&me, &store, &*chain, &verified, CONTRACT, &[evil, honest]).await.unwrap();
    assert_eq!(report.deltas, 2_500);
    assert!(report.code);
    assert_eq!(report.rejected, vec![evil], "the tampering provider, and only it, is penalized");
    assert_eq!(report.next_index, 2_500);
    let stored = store.deltas(&CONTRACT, 0, 10_000, usize::MAX).unwrap();
    assert_eq!(stored.len(), 2_500);
    for ((i, bytes), want) in stored.iter().zip(&deltas) {
        assert_eq!(bytes, want, "delta {i}");
    }
    let info = store.contract(&CONTRACT).unwrap().unwrap();
    assert_eq!(info.next_index, 2_500);
    assert_eq!(info.tip, delta_hash(deltas.last().unwrap()));
    assert_eq!(store.code(&code_hash_of(&code)).unwrap().unwrap(), code);
    assert_eq!(verified.get(&CONTRACT), 2_500);

    // Synced again: nothing left to fetch.
    let again = sync_contract(&me, &store, &*chain, &verified, CONTRACT, &[honest]).await.unwrap();
    assert_eq!((again.deltas, again.code), (0, false));

    // With only the tamperer to ask, the sync fails and stores nothing wrong.
    let (more_code, more) = history(2_600, 180);
    assert_eq!(more_code, code);
    let longer = chain_of(&code, &more);
    let (_evil2, evil2_addrs) =
        provider(filled_store(dirs[3].path(), &code, &more), longer.clone(), true, Vec::new())
            .await;
    let me2 = receiver(std::slice::from_ref(&evil2_addrs)).await;
    let err = sync_contract(&me2, &store, &*longer, &verified, CONTRACT, &[peer_of(&evil2_addrs)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no provider could supply deltas 2500..2600"), "{err}");
    assert_eq!(store.contract(&CONTRACT).unwrap().unwrap().next_index, 2_500);
}

#[tokio::test]
async fn a_provider_serves_only_deltas_it_has_checked_against_the_chain() {
    let (code, deltas) = history(30, 64);
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path(), &code, &deltas);
    // The chain has only the first 20; local delta 12 differs from the chain's.
    let mut hashes = MemoryHashes::default();
    let mut on_chain: Vec<_> = deltas[..20].iter().map(|d| delta_hash(d)).collect();
    on_chain[12] = enigma_types::DeltaHash([9; 32]);
    hashes.contracts.insert(CONTRACT, (code_hash_of(&code), on_chain));
    let chain = Arc::new(hashes);
    let verified = Verified::default();
    let ask = |from, to| SyncRequest::Deltas { contract: CONTRACT, from, to };
    match serve(&store, &*chain, &verified, &ask(0, 30)).await {
        SyncResponse::Deltas { from: 0, deltas: got } => {
            assert_eq!(got.len(), 12, "up to the fork")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(verified.get(&CONTRACT), 12);
    assert!(matches!(
        serve(&store, &*chain, &verified, &ask(12, 30)).await,
        SyncResponse::Unavailable(_)
    ));
    assert!(matches!(
        serve(&store, &*chain, &verified, &ask(25, 30)).await,
        SyncResponse::Unavailable(_)
    ));
    let other = enigma_types::ContractAddress([1; 32]);
    assert!(matches!(
        serve(&store, &*chain, &verified, &SyncRequest::Code { contract: other }).await,
        SyncResponse::Unavailable(_)
    ));
    assert_eq!(
        serve(&store, &*chain, &verified, &SyncRequest::Code { contract: CONTRACT }).await,
        SyncResponse::Code(code)
    );
}
