//! Discovery's integration matrix, through the client against a devnet started by the test:
//! every example contract deployed and run (voting with its Ethereum callback), then every kind
//! of failed deployment and execution. Each task ends on chain as the test expects — verified,
//! failed, failed in its callback, or (never executed) refunded after the timeout — or, where no
//! task can be recorded, as a clear client error; and the user's prepaid balance ends right to the
//! grain: the deposit less the gas every committed task used.

#![allow(
    clippy::print_stderr,
    reason = "the test reports what it saw, for whoever reads a failure"
)]

use std::{collections::HashMap, path::PathBuf, sync::OnceLock, time::Duration};

use alloy::providers::Provider as _;
use alloy_primitives::{Address as AlloyAddress, B256, Bytes, U256, keccak256};
use alloy_sol_types::SolValue;
use enigma_chain::{Chain, TaskStatus, bindings::VotingETH, deploy_voting};
use enigma_client::{Client, ClientConfig, ClientError, TaskOptions, TaskOutcome};
use enigma_crypto::KeyPair;
use enigma_node::{DevnetConfig, start_devnet};
use enigma_types::{ContractAddress, TaskId};

const GAS: u64 = 20_000_000;
const TIMEOUT_BLOCKS: u64 = 30;

fn wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Vec<enigma_client::build::Built>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_client::build::BuildOptions::examples(&root);
        enigma_client::build::build(&options).unwrap()
    });
    std::fs::read(&enigma_client::build::find(built, name).unwrap().wasm).unwrap()
}

/// What the test expects of each task it recorded, and the gas the worker reported.
#[derive(Default)]
struct Expect {
    tasks: Vec<(TaskId, TaskStatus, &'static str)>,
    gas: HashMap<TaskId, u64>,
}

impl Expect {
    fn ok(&mut self, what: &'static str, outcome: &TaskOutcome) {
        self.tasks.push((outcome.task_id, TaskStatus::Verified, what));
        self.gas.insert(outcome.task_id, outcome.gas_used);
    }

    /// A task that must fail with a message containing `needle`.
    fn failed(&mut self, what: &'static str, got: Result<TaskOutcome, ClientError>, needle: &str) {
        match got {
            Err(ClientError::TaskFailed { task_id, message, gas_used }) => {
                assert!(message.contains(needle), "{what}: {message}");
                self.tasks.push((task_id, TaskStatus::Failed, what));
                self.gas.insert(task_id, gas_used);
            }
            other => panic!("{what}: expected a failure, got {other:?}"),
        }
    }

    /// A task that was recorded but never executed: refundable.
    fn unexecuted(&mut self, what: &'static str, got: Result<TaskOutcome, ClientError>) {
        match got {
            Err(ClientError::NotExecuted { task_id, reason }) => {
                eprintln!("{what}: {reason}");
                self.tasks.push((task_id, TaskStatus::FailedReturn, what));
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
}

fn args<T>(values: T) -> Vec<u8>
where
    T: SolValue,
    for<'a> <<T as SolValue>::SolType as alloy_sol_types::SolType>::Token<'a>:
        alloy_sol_types::abi::TokenSeq<'a>,
{
    values.abi_encode_params()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_and_every_failure_ends_on_chain_with_the_balance_right_to_the_grain() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_devnet(
        DevnetConfig {
            epoch_size: 200,
            timeout_blocks: TIMEOUT_BLOCKS,
            ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
        },
        |_| {},
    )
    .await
    .unwrap();
    let s = &devnet.summary;
    let user = KeyPair::from_slice(
        &hex::decode(s.accounts[1].private_key.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let client = Client::connect(ClientConfig {
        gateway_url: s.gateway_url.clone(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account: KeyPair::from_bytes(&user.secret_bytes()).unwrap(),
        gas_px: 3,
        policy: enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
        result_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    let deposit: u128 = 100_000 * 100_000_000;
    client.deposit(deposit).await.unwrap();
    let before = client.chain().prepaid_balance(user.address()).await.unwrap();
    let mut expect = Expect::default();

    // The on-chain side of the voting example, and a poll on it.
    let operator =
        Chain::connect(&s.chain_url, Some(&user), s.deployment.enigma, s.deployment.token)
            .await
            .unwrap();
    let voting_eth = deploy_voting(operator.provider(), s.deployment.enigma).await.unwrap();
    let poll_contract =
        VotingETH::new(alloy_primitives::Address::from(voting_eth.0), operator.provider().clone());
    poll_contract
        .createPoll(U256::from(50u64), "the matrix".into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // 1. Every example, deployed and run.
    let calculator = client.deploy(&wasm("calculator"), "construct()", &[], GAS).await.unwrap();
    expect.ok("deploy calculator", &calculator);
    let sum = client
        .compute(
            calculator.contract,
            "add(uint256,uint256)",
            &args((U256::from(2u64), U256::from(3u64))),
            GAS,
        )
        .await
        .unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&sum.output).unwrap().0, U256::from(5u64));
    expect.ok("add", &sum);
    let got = client
        .compute(
            calculator.contract,
            "div(uint256,uint256)",
            &args((U256::from(1u64), U256::ZERO)),
            GAS,
        )
        .await;
    expect.failed("a contract error", got, "division by zero");
    let deployed = client.deploy(&wasm("millionaires"), "construct()", &[], GAS).await.unwrap();
    expect.ok("deploy millionaires", &deployed);
    let millionaires = deployed.contract;
    for (who, worth) in [(1u8, 100u64), (2, 900), (3, 500)] {
        let out = client
            .compute(
                millionaires,
                "add_millionaire(address,uint256)",
                &args((AlloyAddress::repeat_byte(who), U256::from(worth))),
                GAS,
            )
            .await
            .unwrap();
        expect.ok("add_millionaire", &out);
    }
    let richest = client.compute(millionaires, "compute_richest()", &[], GAS).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(2)
    );
    expect.ok("compute_richest", &richest);

    let voting = client
        .deploy(
            &wasm("voting"),
            "construct(address)",
            &args((AlloyAddress::from(voting_eth.0),)),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("deploy voting", &voting);
    for (i, vote) in [1u64, 1, 0, 1].into_iter().enumerate() {
        let out = client
            .compute(
                voting.contract,
                "cast_vote(uint256,address,uint256)",
                &args((U256::ZERO, AlloyAddress::repeat_byte(i as u8 + 1), U256::from(vote))),
                GAS,
            )
            .await
            .unwrap();
        expect.ok("cast_vote", &out);
    }
    let tally = client
        .compute(voting.contract, "tally_poll(uint256)", &args((U256::ZERO,)), GAS)
        .await
        .unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&tally.output).unwrap().0, U256::from(75u64));
    expect.ok("tally_poll with its callback", &tally);
    // A task that calls Ethereum is a barrier: the next tasks of its contract run once the
    // chain has taken its receipt and the callback's outcome is known, on the state it kept.
    let next = client
        .compute(
            voting.contract,
            "cast_vote(uint256,address,uint256)",
            &args((U256::from(1u64), AlloyAddress::repeat_byte(1), U256::from(1u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("cast_vote right after a callback that succeeded", &next);
    expect.failed(
        "a vote in the poll the callback closed",
        client
            .compute(
                voting.contract,
                "cast_vote(uint256,address,uint256)",
                &args((U256::ZERO, AlloyAddress::repeat_byte(9), U256::from(1u64))),
                GAS,
            )
            .await,
        "poll 0 is closed",
    );
    let receipt = client.confirm(&tally).await.unwrap();
    assert_eq!(receipt.status, TaskStatus::Verified, "the receipt matches the verified result");
    assert_eq!(client.confirm(&richest).await.unwrap().status, TaskStatus::Verified);
    let poll = poll_contract.getPoll(U256::ZERO).call().await.unwrap();
    assert_eq!(poll.talliedQuorum, U256::from(75u64), "the callback reached VotingETH");

    let flip = client.deploy(&wasm("coin-flip"), "construct()", &[], GAS).await.unwrap();
    expect.ok("deploy coin-flip", &flip);
    let game = client
        .compute(
            flip.contract,
            "commit(address,bool)",
            &args((AlloyAddress::repeat_byte(1), true)),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("commit", &game);
    let id = <(U256,)>::abi_decode_params(&game.output).unwrap().0;
    let flipped = client
        .compute(
            flip.contract,
            "flip(uint256,address)",
            &args((id, AlloyAddress::repeat_byte(2))),
            GAS,
        )
        .await
        .unwrap();
    let (winner, coin) = <(AlloyAddress, bool)>::abi_decode_params(&flipped.output).unwrap();
    assert_eq!(
        winner,
        if coin { AlloyAddress::repeat_byte(1) } else { AlloyAddress::repeat_byte(2) }
    );
    expect.ok("flip", &flipped);

    // The holder is this account: a transfer spends the task's verified caller's tokens.
    let holder_address = AlloyAddress::from(user.address().0);
    let erc20 = client
        .deploy(
            &wasm("private-erc20"),
            "construct(address,uint256)",
            &args((holder_address, U256::from(1_000u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("deploy private-erc20", &erc20);
    let to = AlloyAddress::repeat_byte(7);
    let moved = client
        .compute(erc20.contract, "transfer(address,uint256)", &args((to, U256::from(250u64))), GAS)
        .await
        .unwrap();
    expect.ok("transfer", &moved);
    let sign =
        |message: Vec<u8>| Bytes::from(user.sign_digest(&keccak256(message).0).as_bytes().to_vec());
    let signature = sign(args((String::from("balance"), holder_address, U256::ZERO)));
    let balance = client
        .compute(
            erc20.contract,
            "balance_of(address,bytes)",
            &args((holder_address, signature)),
            GAS,
        )
        .await
        .unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&balance.output).unwrap().0, U256::from(750u64));
    expect.ok("balance_of", &balance);

    let secret = B256::repeat_byte(0x5e);
    let auction = client
        .deploy(
            &wasm("auction"),
            "construct(address,uint256,bytes32,uint256)",
            &args((
                AlloyAddress::repeat_byte(0xff),
                U256::from(100u64),
                keccak256(secret),
                U256::ZERO,
            )),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("deploy auction", &auction);
    // The bidder is the task's verified caller: this account bids, then raises its bid.
    for amount in [150u64, 300] {
        let out = client
            .compute(auction.contract, "bid(uint256)", &args((U256::from(amount),)), GAS)
            .await
            .unwrap();
        expect.ok("bid", &out);
    }
    let closed =
        client.compute(auction.contract, "close(bytes32)", &args((secret,)), GAS).await.unwrap();
    assert_eq!(
        <(AlloyAddress, U256)>::abi_decode_params(&closed.output).unwrap(),
        (AlloyAddress::from(user.address().0), U256::from(100u64)),
        "the only bidder wins at the reserve"
    );
    expect.ok("close", &closed);

    // 2. Deployments that fail.
    let got = client.deploy(b"\0asm not really a module", "construct()", &[], GAS).await;
    expect.failed("bad bytecode", got, "module");
    let got = client
        .deploy(&wasm("auction"), "construct(address,uint256,bytes32,uint256)", &[], GAS)
        .await;
    // The constructor fails: its arguments do not decode.
    expect.failed("wrong constructor parameters", got, "argument");
    let got = client.deploy(&wasm("millionaires"), "construct()", &[], 60_000).await;
    expect.failed("deploy out of gas", got, "gas");
    let stranger = *KeyPair::generate().unwrap().public_key();
    let wrong_key = TaskOptions { encrypt_to: Some(stranger), ..TaskOptions::default() };
    let recorded = client
        .record_deploy_with(&wasm("millionaires"), "construct()", &[], GAS, &wrong_key)
        .await
        .unwrap();
    let id = recorded.id();
    let got = client.send(recorded).await.unwrap().result().await;
    // The enclave's failure is encrypted to the key the user should have used.
    assert!(matches!(got, Err(ClientError::BadResult(_))), "deploy under a wrong key: {got:?}");
    expect.tasks.push((id, TaskStatus::Failed, "deploy under a wrong key"));
    let workers: Vec<enigma_types::SignerAddress> =
        s.worker_signers.iter().map(|w| w.parse().unwrap()).collect();
    let next = ContractAddress::from(enigma_types::task_id(
        &user.address(),
        client.chain().task_nonce(user.address()).await.unwrap(),
    ));
    let recorded = client
        .record_deploy_with(
            &wasm("millionaires"),
            "construct()",
            &[],
            GAS,
            &elsewhere(&client, &workers, &next).await,
        )
        .await
        .unwrap();
    expect.unexecuted(
        "deploy sent to a worker not selected",
        match client.send(recorded).await {
            Ok(h) => h.result().await,
            Err(e) => Err(e),
        },
    );

    // 3. Executions that fail.
    let nowhere = ContractAddress([0x42; 32]);
    let got = client.compute(nowhere, "compute_richest()", &[], GAS).await;
    assert!(matches!(got, Err(ClientError::UnknownContract(c)) if c == nowhere), "{got:?}");
    let got = client
        .compute(
            millionaires,
            "add_millionaire(address,uint256)",
            &args((AlloyAddress::repeat_byte(9), U256::from(1u64))),
            25_000,
        )
        .await;
    expect.failed("compute out of gas", got, "gas");
    let got =
        client.compute(millionaires, "add_millionaire(address,uint256)", &[1, 2, 3], GAS).await;
    expect.failed("wrong parameters", got, "argument");
    let recorded = client
        .record_compute_with(millionaires, "compute_richest()", &[], GAS, &wrong_key)
        .await
        .unwrap();
    let id = recorded.id();
    let got = client.send(recorded).await.unwrap().result().await;
    assert!(matches!(got, Err(ClientError::BadResult(_))), "compute under a wrong key: {got:?}");
    expect.tasks.push((id, TaskStatus::Failed, "compute under a wrong key"));
    let recorded = client
        .record_compute_with(
            millionaires,
            "compute_richest()",
            &[],
            GAS,
            &elsewhere(&client, &workers, &millionaires).await,
        )
        .await
        .unwrap();
    expect.unexecuted(
        "compute sent to a worker not selected",
        match client.send(recorded).await {
            Ok(h) => h.result().await,
            Err(e) => Err(e),
        },
    );
    // A callback to an address with no contract, and one the callee rejects.
    let blind = client
        .deploy(
            &wasm("voting"),
            "construct(address)",
            &args((AlloyAddress::repeat_byte(0x77),)),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("deploy voting bound to no contract", &blind);
    let vote = client
        .compute(
            blind.contract,
            "cast_vote(uint256,address,uint256)",
            &args((U256::ZERO, AlloyAddress::repeat_byte(1), U256::from(1u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("cast_vote", &vote);
    let tally = client
        .compute(blind.contract, "tally_poll(uint256)", &args((U256::ZERO,)), GAS)
        .await
        .unwrap();
    expect.gas.insert(tally.task_id, tally.gas_used);
    expect.tasks.push((
        tally.task_id,
        TaskStatus::FailedEth,
        "callback to a wrong Ethereum address",
    ));
    assert_eq!(client.confirm(&tally).await.unwrap().status, TaskStatus::FailedEth);
    // The chain did not keep the tally's delta (its callback failed): the poll is still open
    // there, and the next task runs on that state, not on the one the worker ran ahead to.
    let after = client
        .compute(
            blind.contract,
            "cast_vote(uint256,address,uint256)",
            &args((U256::ZERO, AlloyAddress::repeat_byte(2), U256::from(1u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("cast_vote after a failed callback, in the poll the chain kept open", &after);
    let vote = client
        .compute(
            voting.contract,
            "cast_vote(uint256,address,uint256)",
            &args((U256::from(9u64), AlloyAddress::repeat_byte(1), U256::from(1u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("cast_vote in a poll VotingETH does not have", &vote);
    let tally = client
        .compute(voting.contract, "tally_poll(uint256)", &args((U256::from(9u64),)), GAS)
        .await
        .unwrap();
    expect.gas.insert(tally.task_id, tally.gas_used);
    expect.tasks.push((
        tally.task_id,
        TaskStatus::FailedEth,
        "callback with a payload the callee rejects",
    ));

    // 4. An epoch turns in the middle; work goes on.
    let chain = client.chain();
    let first = chain.current_epoch().await.unwrap().unwrap().nonce;
    let next_block = chain.next_epoch_block().await.unwrap();
    let now = chain.block_number().await.unwrap();
    let _: serde_json::Value = chain
        .provider()
        .raw_request("anvil_mine".into(), (next_block.saturating_sub(now) + 1,))
        .await
        .unwrap();
    for _ in 0..100 {
        if chain.current_epoch().await.unwrap().unwrap().nonce > first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(chain.current_epoch().await.unwrap().unwrap().nonce > first, "the epoch turned");
    let out = client
        .compute(
            millionaires,
            "add_millionaire(address,uint256)",
            &args((AlloyAddress::repeat_byte(4), U256::from(2_000u64))),
            GAS,
        )
        .await
        .unwrap();
    expect.ok("add_millionaire after the epoch turned", &out);
    let richest = client.compute(millionaires, "compute_richest()", &[], GAS).await.unwrap();
    assert_eq!(
        <(AlloyAddress,)>::abi_decode_params(&richest.output).unwrap().0,
        AlloyAddress::repeat_byte(4)
    );
    expect.ok("compute_richest after the epoch turned", &richest);

    // 5. Everything ends on chain as expected; the never-executed are refunded after the timeout.
    for (id, want, what) in &expect.tasks {
        if *want != TaskStatus::FailedReturn {
            assert_eq!(client.wait_final(*id).await.unwrap(), *want, "{what}");
        }
    }
    let _: serde_json::Value =
        chain.provider().raw_request("anvil_mine".into(), (TIMEOUT_BLOCKS + 1,)).await.unwrap();
    for (id, want, what) in &expect.tasks {
        if *want == TaskStatus::FailedReturn {
            client.refund(*id).await.unwrap();
            assert_eq!(client.task_status(*id).await.unwrap(), TaskStatus::FailedReturn, "{what}");
        }
    }
    // The wrong-key failures' gas comes from their signed results at the gateway (the client
    // could not decrypt them); everything else from the results the client verified.
    let mut charged: u128 = 0;
    for (id, want, _) in &expect.tasks {
        let gas = match expect.gas.get(id) {
            Some(g) => *g,
            None if *want == TaskStatus::FailedReturn => 0,
            None => result_gas(&s.gateway_url, id).await,
        };
        charged += u128::from(gas) * 3;
    }
    let after = chain.prepaid_balance(user.address()).await.unwrap();
    assert_eq!(after, before - charged, "the prepaid balance, to the grain");
    eprintln!("{} tasks; {charged} grains of gas charged", expect.tasks.len());
    devnet.stop().await;
}

/// Options that send a task to a worker other than the one selected for `contract`.
async fn elsewhere(
    client: &Client,
    workers: &[enigma_types::SignerAddress],
    contract: &ContractAddress,
) -> TaskOptions {
    let epoch = client.chain().current_epoch().await.unwrap().unwrap();
    let chosen = enigma_types::selection::select_worker(
        &epoch.seed,
        contract,
        &epoch.workers,
        &epoch.stakes,
    )
    .unwrap();
    TaskOptions { worker: workers.iter().copied().find(|w| *w != chosen), ..TaskOptions::default() }
}

/// The gas a task used, from its signed result at the gateway (a public field, readable even
/// when the output is not).
async fn result_gas(gateway: &str, task: &TaskId) -> u64 {
    use jsonrpsee::core::client::ClientT as _;
    let http = jsonrpsee::http_client::HttpClientBuilder::default().build(gateway).unwrap();
    let view: enigma_node::TaskResultView = http
        .request(
            "getTaskResult",
            jsonrpsee::rpc_params![serde_json::json!({"taskId": task.to_string()})],
        )
        .await
        .unwrap();
    view.gas_used
}
