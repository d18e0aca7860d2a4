//! Payable tasks end to end on a devnet: the sealed-bid auction takes a deposit with every bid,
//! keeps the bids secret, and at the close pays the seller the price, the winner its deposit
//! less the price and every other bidder its deposit — to the grain, on chain. A bid the
//! contract refuses fails its task and the chain returns its deposit.

use crate::common;

use std::path::PathBuf;

use alloy_primitives::{Address as AlloyAddress, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use enigma_chain::TaskStatus;
use enigma_client::{Client, ClientError, TaskOptions, TaskOutcome};
use enigma_types::{Address, Grains, payouts::Payout};

const GAS: u64 = 20_000_000;
/// What every bid brings (grains).
const DEPOSIT: u128 = 5_000_000;

fn auction_wasm() -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = enigma_client::build::BuildOptions::examples(&root);
    options.packages = vec!["auction".into()];
    let built = enigma_client::build::build(&options).unwrap();
    std::fs::read(&enigma_client::build::find(&built, "auction").unwrap().wasm).unwrap()
}

fn me(client: &Client) -> Address {
    client.chain().account().unwrap()
}

async fn prepaid(client: &Client) -> u128 {
    client.chain().prepaid_balance(me(client)).await.unwrap()
}

/// Sends `callable` with `value` grains, waits for its receipt on chain, and returns the
/// outcome with the fee it cost (gas used · gas price).
async fn paid_call(
    client: &Client,
    contract: enigma_types::ContractAddress,
    callable: &str,
    args: &[u8],
    value: u128,
) -> Result<(TaskOutcome, u128), ClientError> {
    let options = TaskOptions { value, ..TaskOptions::default() };
    let task = client.record_compute_with(contract, callable, args, GAS, &options).await?;
    let outcome = client.send(task).await?.result().await?;
    client.confirm(&outcome).await?;
    let fee = u128::from(outcome.gas_used);
    Ok((outcome, fee))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_bid_auction_takes_deposits_and_settles_to_the_grain() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path()).await;
    let s = &devnet.summary;
    let mut clients = Vec::new();
    for i in 0..5 {
        let client = Client::connect(common::config(s, &s.gateway_url, i)).await.unwrap();
        client.deposit(100_000_000).await.unwrap();
        clients.push(client);
    }
    let (seller, bidders, latecomer) = (&clients[0], &clients[1..4], &clients[4]);
    let address = |c: &Client| AlloyAddress::from(me(c).0);

    let secret = B256::repeat_byte(0x5e);
    let args = (address(seller), U256::from(100u64), keccak256(secret), U256::from(DEPOSIT))
        .abi_encode_params();
    let auction = seller
        .deploy(&auction_wasm(), "construct(address,uint256,bytes32,uint256)", &args, GAS)
        .await
        .unwrap()
        .contract;

    // Three sealed bids, each with the deposit: the value leaves the bidder's prepaid balance
    // with the fee, and the contract holds it.
    let mut after_bid = Vec::new();
    for (bidder, amount) in bidders.iter().zip([1_500_000u64, 4_000_000, 2_500_000]) {
        let before = prepaid(bidder).await;
        // The bidder is the task's verified caller: the client signs every task.
        let bid = (U256::from(amount),).abi_encode_params();
        let (outcome, fee) =
            paid_call(bidder, auction, "bid(uint256)", &bid, DEPOSIT).await.unwrap();
        assert_eq!(outcome.value, DEPOSIT, "the enclave ran the bid with the escrowed deposit");
        assert!(outcome.payouts.is_empty());
        assert_eq!(prepaid(bidder).await, before - fee - DEPOSIT, "fee and deposit, to the grain");
        after_bid.push(prepaid(bidder).await);
    }
    let held = |c: enigma_types::ContractAddress| async move {
        seller.chain().secret_contract(&c).await.unwrap().unwrap().balance
    };
    assert_eq!(held(auction).await, 3 * DEPOSIT);
    // Each bidder can read back its own sealed bid (a query: free, unrecorded), and nobody's
    // else; anyone can ask whether the auction has closed.
    let latest = enigma_client::QueryOptions { latest: true, ..Default::default() };
    for (bidder, amount) in bidders.iter().zip([1_500_000u64, 4_000_000, 2_500_000]) {
        let mine = bidder.query_with(auction, "my_bid()", &[], &latest).await.unwrap();
        assert_eq!(<(U256,)>::abi_decode_params(&mine.output).unwrap().0, U256::from(amount));
    }
    let none = latecomer.query_with(auction, "my_bid()", &[], &latest).await.unwrap();
    assert_eq!(<(U256,)>::abi_decode_params(&none.output).unwrap().0, U256::ZERO);
    let anonymous =
        enigma_client::QueryOptions { anonymous: true, latest: true, ..Default::default() };
    let closed = latecomer.query_with(auction, "closed()", &[], &anonymous).await.unwrap();
    assert!(!<(bool,)>::abi_decode_params(&closed.output).unwrap().0);
    // my_bid answers queries only: as a task it fails (and would have cost a fee).
    match bidders[0].compute(auction, "my_bid()", &[], GAS).await {
        Err(ClientError::TaskFailed { message, task_id, gas_used }) => {
            assert!(message.contains("queries only"), "{message}");
            assert_eq!(bidders[0].wait_final(task_id).await.unwrap(), TaskStatus::Failed);
            after_bid[0] -= u128::from(gas_used);
        }
        other => panic!("my_bid as a task: {other:?}"),
    }

    // A bid without the whole deposit fails, and the chain gives the value back.
    let before = prepaid(latecomer).await;
    let bid = (U256::from(1u64),).abi_encode_params();
    let refused = paid_call(latecomer, auction, "bid(uint256)", &bid, DEPOSIT - 1).await;
    let Err(ClientError::TaskFailed { task_id, message, gas_used }) = refused else {
        panic!("a short deposit must fail the bid: {refused:?}")
    };
    assert!(message.contains("deposit"), "{message}");
    assert_eq!(latecomer.wait_final(task_id).await.unwrap(), TaskStatus::Failed);
    assert_eq!(prepaid(latecomer).await, before - u128::from(gas_used), "only the fee is gone");
    assert_eq!(held(auction).await, 3 * DEPOSIT, "the refused deposit never reached the contract");

    // The close: the second price (2,500,000) to the seller, the rest of every deposit back.
    let before_close = prepaid(seller).await;
    let (closed, fee) =
        paid_call(seller, auction, "close(bytes32)", &(secret,).abi_encode_params(), 0)
            .await
            .unwrap();
    let (winner, price) = <(AlloyAddress, U256)>::abi_decode_params(&closed.output).unwrap();
    assert_eq!((winner, price), (address(&bidders[1]), U256::from(2_500_000u64)));
    let price = 2_500_000u128;
    let to = me;
    assert_eq!(
        closed.payouts,
        vec![
            Payout { to: to(seller), amount: Grains(price) },
            Payout { to: to(&bidders[0]), amount: Grains(DEPOSIT) },
            Payout { to: to(&bidders[1]), amount: Grains(DEPOSIT - price) },
            Payout { to: to(&bidders[2]), amount: Grains(DEPOSIT) },
        ]
    );
    assert_eq!(prepaid(seller).await, before_close - fee + price, "the seller is paid the price");
    assert_eq!(prepaid(&bidders[0]).await, after_bid[0] + DEPOSIT, "a loser gets it all back");
    assert_eq!(prepaid(&bidders[1]).await, after_bid[1] + DEPOSIT - price, "the winner pays");
    assert_eq!(prepaid(&bidders[2]).await, after_bid[2] + DEPOSIT);
    assert_eq!(held(auction).await, 0, "the contract keeps nothing");
}
