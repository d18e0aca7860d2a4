//! Enigma Discovery's five example contracts, built against a reproduction of Discovery's
//! `eng-wasm` API (examples/contracts/eng-wasm: the same host calls and conventions — JSON state
//! where a missing key reads as `null`, ABI arguments, `ret`, panics as traps, the Ethereum
//! bridge), run through the client against a devnet: Discovery's integration cases — deploys,
//! deploy failures (not wasm, out of gas, a missing constructor argument), executes with their
//! expected outputs, execute failures (out of gas, wrong arguments, an unknown function or
//! contract), and the voting callback failing while the poll is open and succeeding once it
//! has closed.

use crate::common;

use std::path::PathBuf;

use alloy::providers::Provider as _;
use alloy_primitives::{Address as AlloyAddress, B256, U256};
use alloy_sol_types::SolValue;
use enigma_chain::{Chain, TaskStatus, bindings::VotingETH, deploy_voting};
use enigma_client::{Client, ClientError, TaskOutcome};
use enigma_crypto::KeyPair;
use enigma_types::ContractAddress;

const GAS: u64 = 50_000_000;

fn discovery_wasm() -> impl Fn(&str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages =
        ["simple-calculator", "flip-coin", "millionaires-problem", "voting-demo", "erc20"]
            .iter()
            .map(|p| format!("discovery-{p}"))
            .collect();
    let built = enigma_client::build::build(&options).unwrap();
    move |name: &str| {
        let found = enigma_client::build::find(&built, &format!("discovery-{name}")).unwrap();
        std::fs::read(&found.wasm).unwrap()
    }
}

fn failed(what: &str, got: Result<TaskOutcome, ClientError>) {
    match got {
        Err(ClientError::TaskFailed { .. }) => {}
        other => panic!("{what}: expected the task to fail, got {other:?}"),
    }
}

/// A key's account as `bytes32`, as Discovery's tests passed addresses.
fn account(key: &KeyPair) -> B256 {
    AlloyAddress::from(key.address().0).into_word()
}

/// `keccak256` of length-prefixed fields, signed (r ‖ s ‖ v) by `key`: the erc20 example's
/// authorization.
fn sign(key: &KeyPair, fields: &[&[u8]]) -> Vec<u8> {
    let mut message = Vec::new();
    for f in fields {
        message.extend_from_slice(&(f.len() as u64).to_be_bytes());
        message.extend_from_slice(f);
    }
    let digest = alloy_primitives::keccak256(&message);
    key.sign_digest(&digest.0).as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discoverys_example_contracts_pass_discoverys_integration_cases() {
    let wasm = discovery_wasm();
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let key = |i: usize| common::account(s, i);
    let client = Client::connect(common::config(s, &s.gateway_url, 2)).await.unwrap();
    client.deposit(100_000 * 100_000_000).await.unwrap();
    let uint = |v: &TaskOutcome| <(U256,)>::abi_decode_params(&v.output).unwrap().0;

    // simple_calculator: its integration cases.
    let calculator =
        client.deploy(&wasm("simple-calculator"), "construct()", &[], GAS).await.unwrap();
    let calc = calculator.contract;
    let two = |a: u64, b: u64| (U256::from(a), U256::from(b)).abi_encode_params();
    let sub = client.compute(calc, "sub(uint256,uint256)", &two(76, 17), GAS).await.unwrap();
    assert_eq!(uint(&sub), U256::from(59u64));
    let mul = client.compute(calc, "mul(uint256,uint256)", &two(76, 17), GAS).await.unwrap();
    assert_eq!(uint(&mul), U256::from(1292u64));
    failed("division by zero", client.compute(calc, "div(uint256,uint256)", &two(1, 0), GAS).await);
    failed(
        "add with one argument",
        client.compute(calc, "add(uint256,uint256)", &U256::from(1u64).abi_encode(), GAS).await,
    );
    failed(
        "an unknown function",
        client.compute(calc, "not_sub(uint256,uint256)", &two(1, 2), GAS).await,
    );
    failed(
        "compute out of gas",
        client.compute(calc, "sub(uint256,uint256)", &two(76, 17), 1).await,
    );
    assert!(matches!(
        client.compute(ContractAddress([0x5a; 32]), "sub(uint256,uint256)", &two(1, 1), GAS).await,
        Err(ClientError::UnknownContract(_))
    ));

    // Deploy failures: not WebAssembly, out of gas, a missing constructor argument.
    failed(
        "deploy of bytes that are not wasm",
        client.deploy(b"not wasm at all", "construct()", &[], GAS).await,
    );
    failed(
        "deploy out of gas",
        client.deploy(&wasm("simple-calculator"), "construct()", &[], 1).await,
    );
    failed(
        "voting deployed without its VotingETH address",
        client.deploy(&wasm("voting-demo"), "construct()", &[], GAS).await,
    );

    // flip_coin: a fair coin, and a commitment guessed.
    let coin = client.deploy(&wasm("flip-coin"), "construct()", &[], GAS).await.unwrap().contract;
    let flip = client.compute(coin, "flip()", &[], GAS).await.unwrap();
    <(bool,)>::abi_decode_params(&flip.output).expect("a bool");
    client.compute(coin, "commit(bool)", &(true,).abi_encode_params(), GAS).await.unwrap();
    let guess =
        client.compute(coin, "guess(bool)", &(true,).abi_encode_params(), GAS).await.unwrap();
    assert!(<(bool,)>::abi_decode_params(&guess.output).unwrap().0);
    failed(
        "a guess with nothing committed",
        client.compute(coin, "guess(bool)", &(true,).abi_encode_params(), GAS).await,
    );

    // millionaires_problem_demo: its first task reads the list before anything is stored — a
    // missing key, which must read as JSON null for eng-wasm.
    let millionaires = client
        .deploy(&wasm("millionaires-problem"), "construct()", &[], GAS)
        .await
        .unwrap()
        .contract;
    let (addr1, addr2) = (B256::repeat_byte(0x01), B256::repeat_byte(0x02));
    for (who, worth) in [(addr1, 1_000_000u64), (addr2, 2_000_000)] {
        client
            .compute(
                millionaires,
                "add_millionaire(bytes32,uint256)",
                &(who, U256::from(worth)).abi_encode_params(),
                GAS,
            )
            .await
            .unwrap();
    }
    let richest = client.compute(millionaires, "compute_richest()", &[], GAS).await.unwrap();
    assert_eq!(<(B256,)>::abi_decode_params(&richest.output).unwrap().0, addr2);

    // erc20: the owner mints (empty output), balances and supply follow; a mint signed by
    // anyone else fails.
    let owner = key(3);
    let holder = key(4);
    let erc20 = client
        .deploy(
            &wasm("erc20"),
            "construct(bytes32,uint256)",
            &(account(&owner), U256::from(1_000_000u64)).abi_encode_params(),
            GAS,
        )
        .await
        .unwrap()
        .contract;
    let to = account(&holder);
    let amount = U256::from(500u64);
    let sig = sign(&owner, &[b"mint", to.as_slice(), &amount.to_be_bytes::<32>()]);
    let minted = client
        .compute(
            erc20,
            "mint(bytes32,bytes32,uint256,bytes)",
            &(account(&owner), to, amount, alloy_primitives::Bytes::from(sig.clone()))
                .abi_encode_params(),
            GAS,
        )
        .await
        .unwrap();
    assert!(minted.output.is_empty(), "a function without a return value calls no ret");
    let supply = client.compute(erc20, "total_supply()", &[], GAS).await.unwrap();
    assert_eq!(uint(&supply), U256::from(1_000_500u64));
    let balance = client
        .compute(erc20, "balance_of(bytes32)", &(to,).abi_encode_params(), GAS)
        .await
        .unwrap();
    assert_eq!(uint(&balance), amount);
    let forged = sign(&holder, &[b"mint", to.as_slice(), &amount.to_be_bytes::<32>()]);
    failed(
        "a mint not signed by the owner",
        client
            .compute(
                erc20,
                "mint(bytes32,bytes32,uint256,bytes)",
                &(account(&owner), to, amount, alloy_primitives::Bytes::from(forged))
                    .abi_encode_params(),
                GAS,
            )
            .await,
    );
    let sig = sign(
        &holder,
        &[b"transfer", account(&owner).as_slice(), &U256::from(200u64).to_be_bytes::<32>()],
    );
    client
        .compute(
            erc20,
            "transfer(bytes32,bytes32,uint256,bytes)",
            &(to, account(&owner), U256::from(200u64), alloy_primitives::Bytes::from(sig))
                .abi_encode_params(),
            GAS,
        )
        .await
        .unwrap();
    let balance = client
        .compute(erc20, "balance_of(bytes32)", &(to,).abi_encode_params(), GAS)
        .await
        .unwrap();
    assert_eq!(uint(&balance), U256::from(300u64));

    // voting_demo with VotingETH on chain: a poll open for an hour.
    let operator =
        Chain::connect(&s.chain_url, Some(&key(1)), s.deployment.enigma, s.deployment.token)
            .await
            .unwrap();
    let voting_eth = deploy_voting(operator.provider(), s.deployment.enigma).await.unwrap();
    let polls = VotingETH::new(AlloyAddress::from(voting_eth.0), operator.provider().clone());
    polls
        .createTimedPoll(U256::from(50u64), "Discovery's poll".into(), U256::from(3_600u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let voting = client
        .deploy(
            &wasm("voting-demo"),
            "construct(address)",
            &(AlloyAddress::from(voting_eth.0),).abi_encode_params(),
            GAS,
        )
        .await
        .unwrap()
        .contract;
    let vote = |voter: u8, yes: u64| {
        (U256::ZERO, B256::repeat_byte(voter), U256::from(yes)).abi_encode_params()
    };
    for (voter, yes) in [(1u8, 1u64), (2, 1), (3, 0)] {
        let cast = client
            .compute(voting, "cast_vote(uint256,bytes32,uint256)", &vote(voter, yes), GAS)
            .await
            .unwrap();
        assert_eq!(
            client.confirm(&cast).await.unwrap().status,
            TaskStatus::Verified,
            "the vote's callback counts it"
        );
    }
    failed(
        "a second vote of the same voter",
        client.compute(voting, "cast_vote(uint256,bytes32,uint256)", &vote(1, 0), GAS).await,
    );
    assert_eq!(polls.getPoll(U256::ZERO).call().await.unwrap().voteCount, 3);
    // Tallied while the poll is open: the callback reverts (ReceiptFailedETH).
    let early = client
        .compute(voting, "tally_poll(uint256)", &(U256::ZERO,).abi_encode_params(), GAS)
        .await
        .unwrap();
    assert_eq!(client.confirm(&early).await.unwrap().status, TaskStatus::FailedEth);
    // Once the hour has passed, the tally goes through and closes the poll: 2 of 3 said yes.
    let chain = client.chain();
    let _: serde_json::Value =
        chain.provider().raw_request("evm_increaseTime".into(), (3_601u64,)).await.unwrap();
    let _: serde_json::Value = chain.provider().raw_request("evm_mine".into(), ()).await.unwrap();
    let tally = client
        .compute(voting, "tally_poll(uint256)", &(U256::ZERO,).abi_encode_params(), GAS)
        .await
        .unwrap();
    assert_eq!(client.confirm(&tally).await.unwrap().status, TaskStatus::Verified);
    let poll = polls.getPoll(U256::ZERO).call().await.unwrap();
    assert_eq!(poll.talliedQuorum, U256::from(66u64));
    devnet.stop().await;
}
