//! What the network tests share: the millionaires example, anvil's keys, ABI arguments, and a
//! bounded wait.

#![allow(dead_code, reason = "each test takes what it needs")]

use std::{future::Future, path::PathBuf, sync::OnceLock, time::Duration};

use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_crypto::KeyPair;

/// The millionaires example's module (built once per test binary).
pub(crate) fn millionaires() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = enigma_contract_build::BuildOptions::examples(&root);
        let built = enigma_contract_build::build(&options).unwrap();
        std::fs::read(&enigma_contract_build::find(&built, "millionaires").unwrap().wasm).unwrap()
    })
    .clone()
}

/// anvil's `i`th development key.
pub(crate) fn key(anvil: &alloy::node_bindings::AnvilInstance, i: usize) -> KeyPair {
    KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap()
}

/// The arguments of `add_millionaire(address,uint256)`.
pub(crate) fn add(who: u8, worth: u64) -> Vec<u8> {
    (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params()
}

/// Polls `f` every 100 ms until it gives a value; fails the test after a minute.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A chain with the contracts deployed and the test's simulation attestation service (the test
/// plays Intel: it holds the authority's key); the key manager prepared in `km_dir`, not started.
pub(crate) struct ChainBase {
    pub(crate) anvil: alloy::node_bindings::AnvilInstance,
    pub(crate) url: String,
    /// The chain as the deployer (anvil's account 0), who holds the ENG.
    pub(crate) chain: enigma_chain::Chain,
    pub(crate) deployment: enigma_chain::Deployment,
    pub(crate) attestation: enigma_node::AttestationService,
    pub(crate) km_dir: tempfile::TempDir,
}

/// Starts a [`ChainBase`] with epochs of `epoch_size` blocks and tasks refundable after
/// `timeout_blocks`; one worker per contract; the KM's operator is anvil's account 9.
pub(crate) async fn chain_base(epoch_size: u64, timeout_blocks: u64) -> ChainBase {
    chain_base_with(epoch_size, timeout_blocks, 1).await
}

/// [`chain_base`] whose epochs select `group_size` workers per contract (the first runs its
/// tasks; the key manager gives the state key to all of them).
pub(crate) async fn chain_base_with(
    epoch_size: u64,
    timeout_blocks: u64,
    group_size: u64,
) -> ChainBase {
    use enigma_node::*;
    let anvil = enigma_chain::spawn_anvil().unwrap();
    let url = anvil.endpoint_url().to_string();
    let deployer = key(&anvil, 0);
    let attestation =
        serve_devnet_attestation("127.0.0.1:0".parse().unwrap(), KeyPair::generate().unwrap())
            .await
            .unwrap();
    let km_dir = tempfile::tempdir().unwrap();
    let principal =
        prepare_km(km_dir.path(), key(&anvil, 9).address(), attestation.authority).unwrap().signer;
    let p = enigma_chain::provider(&url, Some(&deployer)).await.unwrap();
    let deployment = enigma_chain::deploy(
        &p,
        &enigma_chain::DeployConfig {
            epoch_size,
            timeout_blocks,
            principal,
            group_size,
            simulation: Some(devnet_simulation_policy(attestation.authority)),
            ias: None,
            task_limits: enigma_chain::DEFAULT_TASK_LIMITS,
        },
    )
    .await
    .unwrap();
    let chain =
        enigma_chain::Chain::new(p, deployment.enigma, deployment.token, Some(deployer.address()));
    ChainBase { anvil, url, chain, deployment, attestation, km_dir }
}

/// The key manager of `base`, started (its RPC on `rpc_listen`, following the chain every
/// `poll_interval`).
pub(crate) async fn start_base_km(
    base: &ChainBase,
    rpc_listen: std::net::SocketAddr,
    poll_interval: Duration,
) -> enigma_node::KmNode {
    enigma_node::start_km(enigma_node::KmConfig {
        data_dir: base.km_dir.path().to_path_buf(),
        chain_url: base.url.clone(),
        enigma: base.deployment.enigma,
        token: base.deployment.token,
        operator: key(&base.anvil, 9),
        rpc_listen,
        poll_interval,
        attestation_url: Some(base.attestation.url.clone()),
        simulation_authority: base.attestation.authority,
    })
    .await
    .unwrap()
}

/// A [`ChainBase`] and its key manager, running — what a network of workers joins.
pub(crate) struct Base {
    pub(crate) base: ChainBase,
    pub(crate) km: enigma_node::KmNode,
}

/// Starts a [`Base`] with epochs of `epoch_size` blocks and tasks refundable after
/// `timeout_blocks`; one worker per contract.
pub(crate) async fn base(epoch_size: u64, timeout_blocks: u64) -> Base {
    let base = chain_base(epoch_size, timeout_blocks).await;
    let km = start_base_km(&base, "127.0.0.1:0".parse().unwrap(), Duration::from_millis(200)).await;
    Base { base, km }
}
