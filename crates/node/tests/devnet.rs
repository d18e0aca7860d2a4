//! The devnet starts with everything in place: contracts, a KM, registered workers in an epoch,
//! a gateway, the address pages and a summary written to disk.

use std::time::Duration;

use enigma_node::{DevnetConfig, start_devnet};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_starts_ready_and_says_where_everything_is() {
    let dir = tempfile::tempdir().unwrap();
    // The address pages take a port and the next; another test may take either between picking
    // and binding them: pick again then (in a fresh directory).
    let mut attempt = 0;
    let (devnet, address_port, steps, data_dir) = loop {
        attempt += 1;
        // A fresh directory each attempt: a start that failed leaves part of its own.
        let data_dir = dir.path().join(format!("devnet-{attempt}"));
        let address_port = free_port();
        let mut steps = Vec::new();
        let started = start_devnet(
            DevnetConfig {
                workers: 3,
                address_port: Some(address_port),
                block_interval: Duration::from_millis(200),
                ..DevnetConfig::on_free_ports(data_dir.clone())
            },
            |step| steps.push(step.to_string()),
        )
        .await;
        match started {
            Ok(devnet) => break (devnet, address_port, steps, data_dir),
            Err(e) if attempt < 5 && e.to_string().contains("in use") => continue,
            Err(e) => panic!("the devnet did not start: {e}"),
        }
    };
    assert!(steps.iter().any(|s| s.contains("worker 3 of 3")), "{steps:?}");
    let s = &devnet.summary;
    assert_eq!(s.worker_signers.len(), 3);
    assert_eq!(s.accounts.len(), 5);
    let written: enigma_node::DevnetSummary =
        serde_json::from_slice(&std::fs::read(data_dir.join("devnet.json")).unwrap()).unwrap();
    assert_eq!(written.deployment.enigma, s.deployment.enigma);

    let gateway = HttpClientBuilder::default().build(&s.gateway_url).unwrap();
    let info: serde_json::Value = gateway.request("getNetworkInfo", rpc_params![]).await.unwrap();
    assert_eq!(info["enigmaContract"], s.deployment.enigma.to_string());
    assert!(info["epoch"].as_u64().is_some(), "an epoch is running: {info}");

    let page = reqwest::get(format!("http://127.0.0.1:{address_port}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, s.deployment.enigma.to_string());
    let page = reqwest::get(format!("http://127.0.0.1:{}", address_port + 1))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, s.deployment.token.to_string());

    // Blocks keep coming while idle, so epochs turn.
    let chain =
        enigma_chain::Chain::connect(&s.chain_url, None, s.deployment.enigma, s.deployment.token)
            .await
            .unwrap();
    let before = chain.block_number().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(chain.block_number().await.unwrap() > before);
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_resumed_with_a_worker_more_has_it_in_the_next_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig {
        workers: 2,
        epoch_size: 20,
        block_interval: Duration::from_millis(200),
        ..DevnetConfig::on_free_ports(dir.path().join("devnet"))
    };
    let first = start_devnet(config.clone(), |_| {}).await.expect("a devnet of two workers");
    let deployment = first.summary.deployment;
    let signers = first.summary.worker_signers.clone();
    first.stop().await;

    // Resumed with three: no block comes but the devnet's own (no transactions), so the new
    // worker can only enter an epoch if the devnet keeps mining while it waits for one.
    let mut steps = Vec::new();
    let resumed = start_devnet(DevnetConfig { workers: 3, keep: true, ..config }, |step| {
        steps.push(step.to_string())
    })
    .await
    .expect("resumed with a third worker");
    let s = &resumed.summary;
    assert_eq!(s.deployment.enigma, deployment.enigma, "the same chain and contracts");
    assert_eq!(s.worker_signers[..2], signers[..], "the two workers kept their keys");
    assert_eq!(s.worker_signers.len(), 3);
    assert!(steps.iter().any(|m| m.contains("a new one enters at the next epoch")), "{steps:?}");
    let chain =
        enigma_chain::Chain::connect(&s.chain_url, None, s.deployment.enigma, s.deployment.token)
            .await
            .unwrap();
    let epoch = chain.current_epoch().await.unwrap().expect("an epoch");
    assert_eq!(epoch.workers.len(), 3, "the epoch selects from all three");
    resumed.stop().await;
}
