//! State-sync throughput: 10,000 encrypted deltas (200 bytes each, about what a small contract's
//! task writes) fetched from a provider node by a receiving node over loopback libp2p, each
//! checked against the chain's hash and stored durably in redb. The chain's hashes come from
//! memory here (on a real chain they are one `getDeltas` call per 1,000-delta window, and one log
//! query for the chunks in it).

#![allow(missing_docs, reason = "criterion generates the entry point")]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enigma_node::sync::{Verified, sync_contract};
use enigma_store::Store;
use support::*;

const DELTAS: u64 = 10_000;

fn sync(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, deltas) = history(DELTAS, 200);
    let chain = chain_of(&code, &deltas);
    let (me, provider_peer, _provider) = rt.block_on(async {
        let (provider_handle, addrs) =
            provider(filled_store(dir.path(), &code, &deltas), chain.clone(), false, Vec::new())
                .await;
        let me = receiver(std::slice::from_ref(&addrs)).await;
        (me, peer_of(&addrs), provider_handle)
    });
    let mut group = c.benchmark_group("sync");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DELTAS));
    group.bench_function("10k deltas over loopback, verified and stored", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = tempfile::tempdir().unwrap();
                let store = Store::open(target.path().join("receiver.redb")).unwrap();
                let verified = Verified::default();
                let start = Instant::now();
                let report = rt
                    .block_on(sync_contract(
                        &me,
                        &store,
                        &*chain,
                        &verified,
                        CONTRACT,
                        &[provider_peer],
                    ))
                    .unwrap();
                total += start.elapsed();
                assert_eq!(report.deltas, DELTAS);
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, sync);
criterion_main!(benches);
