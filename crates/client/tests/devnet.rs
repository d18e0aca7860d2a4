//! The client against a devnet started by the test: deploy and run the millionaires example,
//! with every check of the client on the way, and the errors a dApp acts on.

use std::{path::PathBuf, time::Duration};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_client::{Client, ClientConfig, ClientError, Policy};
use enigma_crypto::KeyPair;
use enigma_node::{DevnetConfig, start_devnet};

fn millionaires() -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = enigma_client::build::BuildOptions::examples(&root);
    let built = enigma_client::build::build(&options).unwrap();
    std::fs::read(&enigma_client::build::find(&built, "millionaires").unwrap().wasm).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_millionaires_example_runs_end_to_end_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_devnet(
        DevnetConfig {
            epoch_size: 10_000,
            ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
        },
        |_| {},
    )
    .await
    .unwrap();
    let s = &devnet.summary;
    let account = KeyPair::from_slice(
        &hex::decode(s.accounts[0].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let config = |account: KeyPair, policy: Policy| ClientConfig {
        gateway_url: s.gateway_url.clone(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account,
        gas_px: 1,
        policy,
        result_timeout: Duration::from_secs(30),
    };
    let client = Client::connect(config(
        account,
        enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
    ))
    .await
    .unwrap();

    let wasm = millionaires();
    assert!(matches!(
        client.deploy(&wasm, "construct()", &[], 50_000_000).await,
        Err(ClientError::InsufficientBalance { .. })
    ));
    client.deposit(10_000 * 100_000_000).await.unwrap();
    let deployed = client.deploy(&wasm, "construct()", &[], 50_000_000).await.unwrap();
    let contract = deployed.contract;
    for (who, worth) in [(1u8, 10u64), (2, 30), (3, 20)] {
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        client
            .compute(contract, "add_millionaire(address,uint256)", &args, 50_000_000)
            .await
            .unwrap();
    }
    let richest = client.compute(contract, "compute_richest()", &[], 50_000_000).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );

    // Many tasks at once from one account: from one client (it takes turns recording them) and
    // from a second client of the same account, as another process would be (their records race
    // for the account's task nonce; the loser prepares its task again).
    let account_again = KeyPair::from_slice(
        &hex::decode(s.accounts[0].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let client = std::sync::Arc::new(client);
    let twin = std::sync::Arc::new(
        Client::connect(config(
            account_again,
            enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
        ))
        .await
        .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12u8 {
        let c = if i % 3 == 0 { twin.clone() } else { client.clone() };
        tasks.spawn(async move {
            let args = (AlloyAddress::repeat_byte(0x40 + i), U256::from(1 + u64::from(i)))
                .abi_encode_params();
            c.compute(contract, "add_millionaire(address,uint256)", &args, 50_000_000).await
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(done) = tasks.join_next().await {
        ids.insert(done.unwrap().expect("every concurrent task succeeds").task_id);
    }
    assert_eq!(ids.len(), 12, "twelve distinct tasks");
    let richest = client.compute(contract, "compute_richest()", &[], 50_000_000).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(2),
        "30 is still the most"
    );

    // The contract's own failure comes back as text the dApp can show.
    match client.compute(contract, "no_such_function()", &[], 50_000_000).await {
        Err(ClientError::TaskFailed { message, .. }) => {
            assert!(message.contains("no function `no_such_function`"), "{message}")
        }
        other => panic!("expected a task failure, got {other:?}"),
    }

    // A client whose policy does not trust the devnet's authority refuses to send secrets.
    let other = KeyPair::from_slice(
        &hex::decode(s.accounts[1].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let other_authority = enigma_node::devnet_policy(s.simulation_authority.parse().unwrap())
        .with_simulation_authority(KeyPair::from_bytes(&[0x31; 32]).unwrap().address());
    let strict = Client::connect(config(other, other_authority)).await.unwrap();
    strict.deposit(1_000 * 100_000_000).await.unwrap();
    assert!(matches!(
        strict.compute(contract, "compute_richest()", &[], 50_000_000).await,
        Err(ClientError::NotAttested { reason, .. }) if reason.contains("not by the configured authority")
    ));
    // Nor to a worker of another enclave build (the measurement is pinned).
    let other_build = enigma_node::devnet_policy(s.simulation_authority.parse().unwrap())
        .with_mr_enclaves(vec![[7; 32]]);
    let other = KeyPair::from_slice(
        &hex::decode(s.accounts[1].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let pinned = Client::connect(config(other, other_build)).await.unwrap();
    assert!(matches!(
        pinned.compute(contract, "compute_richest()", &[], 50_000_000).await,
        Err(ClientError::NotAttested { reason, .. }) if reason.contains("allow-list")
    ));
    // Nor once the worker's evidence is older than the policy allows (it was made at start).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let other = KeyPair::from_slice(
        &hex::decode(s.accounts[1].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let aged = Client::connect(config(
        other,
        enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()).with_max_age(1),
    ))
    .await
    .unwrap();
    assert!(matches!(
        aged.compute(contract, "compute_richest()", &[], 50_000_000).await,
        Err(ClientError::NotAttested { reason, .. }) if reason.contains("older than the allowed")
    ));
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_started_with_keep_resumes_its_chain_contracts_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = |keep: bool| DevnetConfig {
        epoch_size: 10_000,
        keep,
        ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
    };
    let connect = |s: &enigma_node::DevnetSummary| {
        let account = KeyPair::from_slice(
            &hex::decode(s.accounts[0].private_key.trim_start_matches("0x")).unwrap(),
        )
        .unwrap();
        Client::connect(ClientConfig {
            gateway_url: s.gateway_url.clone(),
            chain_url: s.chain_url.clone(),
            enigma: s.deployment.enigma,
            token: s.deployment.token,
            account,
            gas_px: 1,
            policy: enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
            result_timeout: Duration::from_secs(30),
        })
    };
    let add = |who: u8, worth: u64| {
        (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params()
    };

    let devnet = start_devnet(config(false), |_| {}).await.unwrap();
    let first = devnet.summary.clone();
    let client = connect(&first).await.unwrap();
    client.deposit(10_000 * 100_000_000).await.unwrap();
    let contract =
        client.deploy(&millionaires(), "construct()", &[], 50_000_000).await.unwrap().contract;
    for (who, worth) in [(1u8, 10u64), (2, 30)] {
        let done = client
            .compute(contract, "add_millionaire(address,uint256)", &add(who, worth), 50_000_000)
            .await
            .unwrap();
        client.wait_final(done.task_id).await.unwrap();
    }
    devnet.stop().await;

    let devnet = start_devnet(config(true), |_| {}).await.unwrap();
    let s = &devnet.summary;
    assert_eq!(s.deployment, first.deployment, "the same contracts");
    assert_eq!(s.worker_signers, first.worker_signers, "the same enclave identities");
    assert_eq!(s.km_signer, first.km_signer);
    let client = connect(s).await.unwrap();
    client
        .compute(contract, "add_millionaire(address,uint256)", &add(3, 20), 50_000_000)
        .await
        .unwrap();
    let richest = client.compute(contract, "compute_richest()", &[], 50_000_000).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(2),
        "the state from before the restart is still there"
    );
    devnet.stop().await;

    // Without keep, the next start is a fresh network.
    let devnet = start_devnet(config(false), |_| {}).await.unwrap();
    let client = connect(&devnet.summary).await.unwrap();
    assert!(client.chain().secret_contract(&contract).await.unwrap().is_none());
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_recorded_in_one_transaction_run_in_their_order_and_each_lands() {
    for as_batch in [false, true] {
        recorded_together(as_batch).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computes_started_together_are_recorded_as_one_batch_and_a_lone_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = crate::common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let client = Client::connect(crate::common::config(s, &s.gateway_url, 0))
        .await
        .unwrap()
        .batch_records(Duration::from_millis(300));
    let (a, b) = two_ledgers(&client).await;
    let amount = |n: u64| (U256::from(n),).abi_encode_params();
    let (one, two, nine) = (amount(1), amount(2), amount(9));

    // Three computes at once: one record batch (one root, one block), each its own result.
    let (x, y, z) = tokio::join!(
        client.compute(a, "record(uint256)", &one, 50_000_000),
        client.compute(a, "record(uint256)", &two, 50_000_000),
        client.compute(b, "record(uint256)", &nine, 50_000_000),
    );
    let outcomes = [x.unwrap(), y.unwrap(), z.unwrap()];
    let roots: std::collections::BTreeSet<_> = outcomes
        .iter()
        .map(|o| client.chain().proven_task(&o.task_id).expect("recorded in a batch").root)
        .collect();
    assert_eq!(roots.len(), 1, "one record batch for the three");
    let totals: Vec<u64> = outcomes
        .iter()
        .map(|o| <(U256, U256)>::abi_decode_params(&o.output).unwrap().0.to::<u64>())
        .collect();
    assert_eq!(totals[2], 9, "contract b saw only its own task");
    assert_eq!(totals[..2].iter().max(), Some(&3), "the later of a's two saw both");
    for o in &outcomes {
        let receipt = client.confirm(o).await.unwrap();
        assert_eq!(receipt.status, enigma_chain::TaskStatus::Verified);
    }

    // A compute alone in its window is recorded alone (a record of its own).
    let alone = client.compute(a, "record(uint256)", &one, 50_000_000).await.unwrap();
    assert!(client.chain().proven_task(&alone.task_id).is_none(), "no batch for one task");
    let record = client.chain().task(&alone.task_id).await.unwrap().unwrap();
    assert_eq!(record.seq, 2, "a's third task");
    devnet.stop().await;
}

/// Funds `client` and deploys two `ledger` contracts with it.
async fn two_ledgers(
    client: &Client,
) -> (enigma_types::ContractAddress, enigma_types::ContractAddress) {
    client.deposit(10_000 * 100_000_000).await.unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built =
        enigma_client::build::build(&enigma_client::build::BuildOptions::examples(&root)).unwrap();
    let ledger =
        std::fs::read(&enigma_client::build::find(&built, "ledger").unwrap().wasm).unwrap();
    let a = client.deploy(&ledger, "construct()", &[], 50_000_000).await.unwrap().contract;
    let b = client.deploy(&ledger, "construct()", &[], 50_000_000).await.unwrap().contract;
    (a, b)
}

/// Four tasks recorded in one transaction (`record_many`, or `record_batch`: one Merkle root)
/// run in their order, and each receipt lands.
async fn recorded_together(as_batch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = crate::common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let client = Client::connect(crate::common::config(s, &s.gateway_url, 0)).await.unwrap();
    let (a, b) = two_ledgers(&client).await;

    assert!(matches!(client.record_many(&[]).await, Err(ClientError::BadInput(_))));
    let amount = |n: u64| (U256::from(n),).abi_encode_params();
    let (one, two, three, nine) = (amount(1), amount(2), amount(3), amount(9));
    let user = client.chain().account().unwrap();
    let before = client.chain().task_nonce(user).await.unwrap();
    let calls = [
        (a, "record(uint256)", one.as_slice(), 50_000_000),
        (a, "record(uint256)", two.as_slice(), 50_000_000),
        (b, "record(uint256)", nine.as_slice(), 50_000_000),
        (a, "record(uint256)", three.as_slice(), 50_000_000),
    ];
    let tasks = if as_batch {
        client.record_batch(&calls).await.unwrap()
    } else {
        client.record_many(&calls).await.unwrap()
    };
    // Four consecutive ids, recorded in one transaction (one block); as a record batch, with no
    // record of their own, each found through its batch and its proof.
    assert_eq!(client.chain().task_nonce(user).await.unwrap(), before + 4);
    let roots: std::collections::BTreeSet<_> =
        tasks.iter().filter_map(|t| client.chain().proven_task(&t.id()).map(|p| p.root)).collect();
    assert_eq!(roots.len(), usize::from(as_batch), "one record batch, or none");
    let mut blocks = std::collections::BTreeSet::new();
    for (n, t) in tasks.iter().enumerate() {
        assert_eq!(t.id(), enigma_types::task_id(&user, before + n as u64));
        blocks.insert(client.chain().task(&t.id()).await.unwrap().unwrap().created_at);
    }
    assert_eq!(blocks.len(), 1, "one record transaction");

    // Each sent (the gateway answers once its worker took it), then the results collected.
    let mut handles = Vec::new();
    for t in tasks {
        handles.push(client.send(t).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.result().await.unwrap());
    }
    let entries: Vec<u64> = outcomes
        .iter()
        .map(|o| <(U256, U256)>::abi_decode_params(&o.output).unwrap().1.to::<u64>())
        .collect();
    assert_eq!(entries, [1, 2, 1, 3], "the entry count each task saw");
    for o in &outcomes {
        let receipt = client.confirm(o).await.unwrap();
        assert_eq!(receipt.status, enigma_chain::TaskStatus::Verified);
    }
    if let Some(root) = roots.first() {
        let batch = client.chain().record_batch(*root).await.unwrap().unwrap();
        assert!((0..4).all(|i| !batch.is_open(i)), "every task of the batch closed by its receipt");
        // The same account's client started again (a fresh chain handle that never saw the
        // batch) finds its batch tasks: their status and their results.
        let again = Client::connect(crate::common::config(s, &s.gateway_url, 0)).await.unwrap();
        for o in &outcomes {
            assert_eq!(
                again.task_status(o.task_id).await.unwrap(),
                enigma_chain::TaskStatus::Verified
            );
            assert!(again.task_result(o.task_id).await.unwrap().is_some());
        }
        // An id nobody recorded stays unknown, and asking again reads no block twice.
        let unknown = enigma_types::TaskId([0x5a; 32]);
        for _ in 0..2 {
            assert_eq!(
                again.task_status(unknown).await.unwrap(),
                enigma_chain::TaskStatus::Undefined
            );
        }
    }
    devnet.stop().await;
}
