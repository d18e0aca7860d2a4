//! What the measuring examples share: a client of a devnet, and fresh funded accounts.

use std::{sync::Arc, time::Duration};

use alloy::providers::Provider as _;
use enigma_client::{Client, ClientConfig};
use enigma_crypto::KeyPair;
use enigma_node::DevnetSummary;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// One ENG in grains.
pub(crate) const ENG: u128 = 100_000_000;

/// A client of the devnet `s` for `account`, waiting up to `result_timeout` for results.
pub(crate) fn client_config(
    s: &DevnetSummary,
    account: KeyPair,
    result_timeout: Duration,
) -> Result<ClientConfig, Error> {
    Ok(ClientConfig {
        gateway_url: s.gateway_url.clone(),
        chain_url: s.chain_url.clone(),
        enigma: s.deployment.enigma,
        token: s.deployment.token,
        account,
        gas_px: 1,
        policy: enigma_node::devnet_policy(s.simulation_authority.parse()?),
        result_timeout,
    })
}

/// The devnet's first account (the funder) and `n` fresh accounts, each with 100 ETH from
/// anvil, 1,000 ENG from the funder and all of it deposited as its prepaid balance.
pub(crate) async fn funded_clients(
    s: &DevnetSummary,
    n: usize,
    result_timeout: Duration,
    record_window: Option<Duration>,
) -> Result<(Client, Vec<Arc<Client>>), Error> {
    let funder = Client::connect(client_config(
        s,
        KeyPair::from_slice(&hex::decode(s.accounts[0].private_key.trim_start_matches("0x"))?)?,
        result_timeout,
    )?)
    .await?;
    let mut clients = Vec::new();
    for _ in 0..n {
        let key = KeyPair::generate()?;
        let address = key.address();
        let _: serde_json::Value = funder
            .chain()
            .provider()
            .raw_request(
                "anvil_setBalance".into(),
                (format!("{address}"), "0x56bc75e2d63100000"), // 100 ETH
            )
            .await?;
        funder.chain().transfer_token(address, 1_000 * ENG).await?;
        let mut c = Client::connect(client_config(s, key, result_timeout)?).await?;
        if let Some(window) = record_window {
            c = c.batch_records(window);
        }
        c.deposit(1_000 * ENG).await?;
        clients.push(Arc::new(c));
    }
    Ok((funder, clients))
}
