//! What the client's devnet tests share: a devnet on free ports and clients of its accounts.

use std::{path::Path, time::Duration};

use enigma_client::ClientConfig;
use enigma_crypto::KeyPair;
use enigma_node::{Devnet, DevnetConfig, DevnetSummary, start_devnet};

/// A devnet on free ports under `dir`, with epochs long enough that none turns by itself.
pub(crate) async fn devnet(dir: &Path) -> Devnet {
    start_devnet(
        DevnetConfig { epoch_size: 10_000, ..DevnetConfig::on_free_ports(dir.join("devnet")) },
        |_| {},
    )
    .await
    .unwrap()
}

/// The key of the devnet's funded account `i`.
pub(crate) fn account(s: &DevnetSummary, i: usize) -> KeyPair {
    KeyPair::from_slice(&hex::decode(s.accounts[i].private_key.trim_start_matches("0x")).unwrap())
        .unwrap()
}

/// A client configuration for account `i` through `gateway`, trusting the devnet's enclaves.
pub(crate) fn config(s: &DevnetSummary, gateway: &str, i: usize) -> ClientConfig {
    ClientConfig {
        gateway_url: gateway.to_string(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account: account(s, i),
        gas_px: 1,
        policy: enigma_node::devnet_policy(s.simulation_authority.parse().unwrap()),
        result_timeout: Duration::from_secs(30),
    }
}
