//! Read-only queries against a devnet: answered by the selected worker's enclave without a
//! record, a fee or a block, verified (signer, query, code, state) and decrypted by the client;
//! the contract knows who asks; a query that writes is refused; confirmed and latest state.

use crate::common;

use std::path::PathBuf;

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_client::{Client, ClientError, QueryOptions};

const GAS: u64 = 20_000_000;

fn wasm(name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages = vec![name.into()];
    let built = enigma_client::build::build(&options).unwrap();
    std::fs::read(&enigma_client::build::find(&built, name).unwrap().wasm).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_answer_from_the_enclave_without_a_record_and_know_who_asks() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let alice = Client::connect(common::config(s, &s.gateway_url, 0)).await.unwrap();
    alice.deposit(100_000_000).await.unwrap();
    let me = alice.chain().account().unwrap();

    // A contract with state written by tasks.
    let millionaires = alice.deploy(&wasm("millionaires"), "construct()", &[], GAS).await.unwrap();
    let m = millionaires.contract;
    for (who, worth) in [(1u8, 10u64), (2, 30), (3, 20)] {
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        let o = alice.compute(m, "add_millionaire(address,uint256)", &args, GAS).await.unwrap();
        alice.confirm(&o).await.unwrap();
    }
    let task = alice.compute(m, "compute_richest()", &[], GAS).await.unwrap();
    let nonce = alice.chain().task_nonce(me).await.unwrap();
    let prepaid = alice.chain().prepaid_balance(me).await.unwrap();

    // The same answer as a query: no record, no fee; on the chain's state.
    let q = alice.query(m, "compute_richest()", &[]).await.unwrap();
    assert_eq!(q.output, task.output);
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&q.output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
    assert!(q.on_chain);
    let on_chain = alice.chain().secret_contract(&m).await.unwrap().unwrap();
    assert_eq!((q.delta_count, q.delta_hash), (on_chain.delta_count, on_chain.last_delta_hash));
    assert_eq!(alice.chain().task_nonce(me).await.unwrap(), nonce, "nothing was recorded");
    assert_eq!(alice.chain().prepaid_balance(me).await.unwrap(), prepaid, "nothing was paid");
    // Latest state is the chain's here (everything is committed).
    let latest = QueryOptions { latest: true, ..QueryOptions::default() };
    assert_eq!(
        alice.query_with(m, "compute_richest()", &[], &latest).await.unwrap().output,
        q.output
    );

    // A function the contract does not mark #[query] answers tasks only (a free query must not
    // probe it), and changes nothing. (A marked function that writes fails as read-only: the
    // runtime's tests.)
    let args = (AlloyAddress::repeat_byte(9), U256::from(99u64)).abi_encode_params();
    match alice.query(m, "add_millionaire(address,uint256)", &args).await {
        Err(ClientError::QueryFailed { message, .. }) => {
            assert!(message.contains("does not answer queries"), "{message}")
        }
        other => panic!("a query of a task-only function: {other:?}"),
    }
    assert_eq!(alice.query(m, "compute_richest()", &[]).await.unwrap().delta_count, q.delta_count);

    // The contract knows who asks: a holder reads its own balance, and nobody else's.
    let erc20 = alice
        .deploy(
            &wasm("private-erc20"),
            "construct(address,uint256)",
            &(AlloyAddress::from(me.0), U256::from(1_000u64)).abi_encode_params(),
            GAS,
        )
        .await
        .unwrap()
        .contract;
    let mine = alice.query(erc20, "my_balance()", &[]).await.unwrap();
    assert_eq!(mine.caller, me);
    assert_eq!(<(U256,)>::abi_decode_params(&mine.output).unwrap().0, U256::from(1_000u64));
    let bob = Client::connect(common::config(s, &s.gateway_url, 1)).await.unwrap();
    let bobs = bob.query(erc20, "my_balance()", &[]).await.unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&bobs.output).unwrap().0, U256::ZERO);
    // A permit, signed once, answers for its signer on the contracts it names until it expires.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let permit = alice.sign_permit("test dapp", &[erc20], now + 3_600).await.unwrap();
    let with = |p| QueryOptions { permit: Some(p), ..QueryOptions::default() };
    let by_permit =
        bob.query_with(erc20, "my_balance()", &[], &with(permit.clone())).await.unwrap();
    assert_eq!(by_permit.caller, me, "whoever holds the permit asks as its signer");
    assert_eq!(<(U256,)>::abi_decode_params(&by_permit.output).unwrap().0, U256::from(1_000u64));
    let refused = |got: Result<enigma_client::QueryOutcome, ClientError>, why: &str| {
        let text = format!("{got:?}");
        assert!(got.is_err() && text.contains(why), "{why}: {text}");
    };
    refused(
        alice.query_with(m, "compute_richest()", &[], &with(permit.clone())).await,
        "does not cover",
    );
    let expired = alice.sign_permit("old", &[erc20], now - 1).await.unwrap();
    refused(alice.query_with(erc20, "my_balance()", &[], &with(expired)).await, "expired");

    // Revoked before it expires, by a signed task of its signer to the contract. Someone else's
    // revocation of that name revokes their own permits, not hers.
    let other = alice.sign_permit("other dapp", &[erc20], now + 3_600).await.unwrap();
    bob.deposit(1_000_000).await.unwrap();
    bob.revoke_permit(erc20, "test dapp").await.unwrap();
    bob.query_with(erc20, "my_balance()", &[], &with(permit.clone())).await.unwrap();
    let revoked = alice.revoke_permit(erc20, "test dapp").await.unwrap();
    // The worker's latest state has it at once; the chain's, once the receipt lands.
    let latest = |p| QueryOptions { permit: Some(p), latest: true, ..QueryOptions::default() };
    refused(bob.query_with(erc20, "my_balance()", &[], &latest(permit.clone())).await, "revoked");
    alice.confirm(&revoked).await.unwrap();
    refused(bob.query_with(erc20, "my_balance()", &[], &with(permit.clone())).await, "revoked");
    let still = bob.query_with(erc20, "my_balance()", &[], &with(other)).await.unwrap();
    assert_eq!(still.caller, me, "her permits of other names still answer");
    // Nobody can revoke anonymously (whose permits would it be?).
    let args = ("other dapp".to_string(),).abi_encode_params();
    let anonymous_task = enigma_client::TaskOptions { anonymous: true, ..Default::default() };
    let unsigned = alice
        .record_compute_with(
            erc20,
            enigma_types::caller::REVOKE_PERMIT,
            &args,
            20_000,
            &anonymous_task,
        )
        .await
        .unwrap();
    match alice.send(unsigned).await.unwrap().result().await {
        Err(ClientError::TaskFailed { message, .. }) => {
            assert!(message.contains("signed by its sender"), "{message}")
        }
        other => panic!("an unsigned revocation: {other:?}"),
    }

    let anonymous = QueryOptions { anonymous: true, ..QueryOptions::default() };
    match alice.query_with(erc20, "my_balance()", &[], &anonymous).await {
        Err(ClientError::QueryFailed { message, .. }) => {
            assert!(message.contains("verified caller"), "{message}")
        }
        other => panic!("an anonymous balance query: {other:?}"),
    }
}
