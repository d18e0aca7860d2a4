//! Sync peers for the sync test and benchmark: a store filled with a contract's encrypted-looking
//! deltas, the chain's view of them in memory, and p2p nodes that serve the store (honestly, or
//! with every delta response tampered).

#![allow(dead_code, reason = "each user takes what it needs")]

use std::sync::Arc;

use enigma_node::sync::{DeltaHashes, MemoryHashes, Verified, serve};
use enigma_p2p::{Event, Handle, Multiaddr, PeerId, SyncResponse};
use enigma_store::{ContractInfo, Store};
use enigma_types::{CodeHash, ContractAddress, DeltaHash, code_hash, delta_hash};

pub(crate) const CONTRACT: ContractAddress = ContractAddress([7; 32]);

/// `n` deltas of `size` bytes each (distinct), and a module.
pub(crate) fn history(n: u64, size: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let code = b"\0asm\x01\0\0\0 a module".to_vec();
    let deltas = (0..n)
        .map(|i| {
            let mut d = vec![0u8; size];
            for (j, b) in d.iter_mut().enumerate() {
                *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
            }
            d[..8].copy_from_slice(&i.to_be_bytes());
            d
        })
        .collect();
    (code, deltas)
}

/// What the chain holds for the history.
pub(crate) fn chain_of(code: &[u8], deltas: &[Vec<u8>]) -> Arc<MemoryHashes> {
    let mut hashes = MemoryHashes::default();
    hashes
        .contracts
        .insert(CONTRACT, (code_hash(code), deltas.iter().map(|d| delta_hash(d)).collect()));
    Arc::new(hashes)
}

/// A store holding the history.
pub(crate) fn filled_store(dir: &std::path::Path, code: &[u8], deltas: &[Vec<u8>]) -> Store {
    let store = Store::open(dir.join("provider.redb")).unwrap();
    let mut b = store.batch().unwrap();
    b.put_code(&code_hash(code), code).unwrap();
    for (i, d) in deltas.iter().enumerate() {
        b.put_delta(&CONTRACT, i as u64, d).unwrap();
    }
    b.put_contract(
        &CONTRACT,
        &ContractInfo {
            code_hash: code_hash(code),
            next_index: deltas.len() as u64,
            tip: deltas.last().map_or(DeltaHash::ZERO, |d| delta_hash(d)),
        },
    )
    .unwrap();
    b.commit().unwrap();
    store
}

/// A p2p node serving `store`; with `tamper`, every delta response has one byte flipped.
pub(crate) async fn provider<H: DeltaHashes + 'static>(
    store: Store,
    chain: Arc<H>,
    tamper: bool,
    bootstrap: Vec<Multiaddr>,
) -> (Handle, Vec<Multiaddr>) {
    let (handle, mut events) =
        enigma_p2p::spawn(enigma_p2p::Config { bootstrap, ..Default::default() }).await.unwrap();
    let addrs = handle.dialable_addrs().await.unwrap();
    let store = Arc::new(store);
    tokio::spawn(async move {
        let verified = Arc::new(Verified::default());
        while let Some(event) = events.recv().await {
            if let Event::Sync { request, reply, .. } = event {
                let (store, chain, verified) = (store.clone(), chain.clone(), verified.clone());
                tokio::spawn(async move {
                    let mut answer = serve(&store, &*chain, &verified, &request).await;
                    if tamper
                        && let SyncResponse::Deltas { deltas, .. } = &mut answer
                        && let Some(d) = deltas.last_mut()
                        && let Some(b) = d.first_mut()
                    {
                        *b ^= 1;
                    }
                    reply.send(answer).await;
                });
            }
        }
    });
    (handle, addrs)
}

/// A receiving node connected to `peers`.
pub(crate) async fn receiver(peers: &[Vec<Multiaddr>]) -> Handle {
    let bootstrap = peers.iter().flatten().cloned().collect();
    let (handle, _events) =
        enigma_p2p::spawn(enigma_p2p::Config { bootstrap, ..Default::default() }).await.unwrap();
    // Keep the event stream drained so the service never drops anything for lack of a reader.
    let mut events = _events;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    for _ in 0..100 {
        if handle.connected().await.unwrap().len() >= peers.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    handle
}

/// The peer id in a dialable address.
pub(crate) fn peer_of(addrs: &[Multiaddr]) -> PeerId {
    addrs
        .iter()
        .find_map(|a| match a.iter().last() {
            Some(enigma_p2p::Protocol::P2p(p)) => Some(p),
            _ => None,
        })
        .unwrap()
}

pub(crate) fn code_hash_of(code: &[u8]) -> CodeHash {
    code_hash(code)
}
