//! Worker selection: the Rust mirror (`enigma_types::selection`) and the contract's
//! `getWorkerGroup` agree on random seeds, stakes and contract addresses (through one anvil).

use crate::common::*;
use enigma_chain::EpochCache;
use enigma_types::{ContractAddress, selection::select_workers};
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};

fn run(group_size: u64, cases: u32, workers: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut net = rt.block_on(TestNet::with(group_size, 1));
    for i in 0..workers {
        rt.block_on(net.add_worker(1 + i, (1 + i as u128) * 100 * ENG));
    }
    for i in 0..workers {
        rt.block_on(net.fund(1 + i, 1_000_000 * ENG));
    }
    let net = net;
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (
        any::<[u8; 32]>(),
        proptest::collection::vec(0u64..5_000, workers),
        proptest::collection::vec(any::<[u8; 32]>(), 4),
    );
    let checked = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(seed, extra, contracts)| {
            rt.block_on(async {
                // Random stake changes (a deposit while logged in moves the selection weight).
                for (w, amount) in net.workers.iter().zip(&extra) {
                    if *amount > 0 {
                        w.chain.deposit_stake(u128::from(*amount) * 1_000_000).await.unwrap();
                    }
                }
                let epoch = net.new_epoch_with(seed).await;
                let cache = {
                    let mut c = EpochCache::new(group_size as usize);
                    c.insert(epoch.clone());
                    c
                };
                for c in contracts {
                    let contract = ContractAddress(c);
                    let on_chain =
                        net.deployer.worker_group(epoch.first_block, &contract).await.unwrap();
                    let mirrored = select_workers(
                        &epoch.seed,
                        &contract,
                        &epoch.workers,
                        &epoch.stakes,
                        group_size as usize,
                    );
                    assert_eq!(
                        on_chain, mirrored,
                        "seed {:?} stakes {:?} contract {contract}",
                        epoch.seed, epoch.stakes
                    );
                    assert_eq!(cache.group(&epoch, &contract), on_chain);
                }
            });
            checked.set(checked.get() + 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(checked.get(), cases, "every case ran against the chain");
}

#[test]
fn rust_and_solidity_select_the_same_worker_on_200_random_epochs() {
    run(1, 200, 4);
}

#[test]
fn rust_and_solidity_select_the_same_groups_of_three() {
    run(3, 40, 5);
}
