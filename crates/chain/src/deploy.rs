//! Deploying the contracts: token, verifiers, Enigma, with their configuration.

use alloy::{
    primitives::{B256, Bytes, U256},
    providers::{DynProvider, Provider},
};
use enigma_types::{Address, SignerAddress};
use serde::{Deserialize, Serialize};

use crate::{
    ChainError, Result, TaskLimits,
    bindings::{Enigma, EnigmaToken, IasVerifier, SimulationVerifier, VotingETH},
    convert::{address, eth, eth_signer},
};

/// Policy of the simulation verifier (evidence kind 0): devnets only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationPolicy {
    /// The attestation authority's address.
    pub authority: Address,
    /// Whether debug enclaves may register.
    pub debug_allowed: bool,
    /// Allowed worker MRENCLAVEs (product 1).
    pub worker_enclaves: Vec<[u8; 32]>,
    /// Allowed key-manager MRENCLAVEs (product 2).
    pub km_enclaves: Vec<[u8; 32]>,
}

/// Policy of the IAS verifier (evidence kind 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IasPolicy {
    /// Intel's report-signing RSA modulus, big-endian.
    pub modulus: Vec<u8>,
    /// Its public exponent, big-endian.
    pub exponent: Vec<u8>,
    /// The required MRSIGNER.
    pub mr_signer: [u8; 32],
    /// The lowest accepted ISVSVN.
    pub min_isv_svn: u16,
    /// Whether debug enclaves may register.
    pub debug_allowed: bool,
    /// Accepted `isvEnclaveQuoteStatus` values.
    pub allowed_statuses: Vec<String>,
    /// Allowed worker MRENCLAVEs.
    pub worker_enclaves: Vec<[u8; 32]>,
    /// Allowed key-manager MRENCLAVEs.
    pub km_enclaves: Vec<[u8; 32]>,
}

impl IasPolicy {
    /// Intel's report-signing key (`contracts/ias-intel-signing-key.json`): `(modulus, exponent)`.
    pub fn intel_signing_key() -> Result<(Vec<u8>, Vec<u8>)> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../../../contracts/ias-intel-signing-key.json"))
                .map_err(|e| ChainError::Config(format!("ias-intel-signing-key.json: {e}")))?;
        let field = |name: &str| -> Result<Vec<u8>> {
            let text = json[name].as_str().ok_or_else(|| {
                ChainError::Config(format!("ias-intel-signing-key.json has no {name}"))
            })?;
            hex::decode(text.trim_start_matches("0x"))
                .map_err(|e| ChainError::Config(format!("{name}: {e}")))
        };
        Ok((field("modulus")?, field("exponent")?))
    }
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployConfig {
    /// Blocks between epochs, at least.
    pub epoch_size: u64,
    /// Blocks after which an open task's fee can be returned.
    pub timeout_blocks: u64,
    /// The key-manager enclave's signer address.
    pub principal: SignerAddress,
    /// Workers selected per contract.
    pub group_size: u64,
    /// Accept simulation evidence under this policy.
    pub simulation: Option<SimulationPolicy>,
    /// Accept IAS evidence under this policy.
    pub ias: Option<IasPolicy>,
    /// The lowest gas price and highest gas limit a task may carry (the owner, the deployer,
    /// may change them later).
    pub task_limits: TaskLimits,
}

/// A devnet's task limits: at least 1 grain per gas, at most 1,000,000,000 gas per task.
pub const DEFAULT_TASK_LIMITS: TaskLimits =
    TaskLimits { min_gas_price: 1, max_gas_limit: 1_000_000_000 };

/// Where the contracts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The ENG token.
    pub token: Address,
    /// The Enigma contract.
    pub enigma: Address,
    /// The simulation verifier, if deployed.
    pub simulation_verifier: Option<Address>,
    /// The IAS verifier, if deployed.
    pub ias_verifier: Option<Address>,
    /// The block of the Enigma contract's deployment (where watchers start).
    pub block: u64,
}

/// Deploys a contract from its deployment call with fees under this process's cap; its address.
macro_rules! fees {
    ($provider:expr, $builder:expr) => {{
        let (max_fee, tip) = crate::transport::fees($provider).await?;
        $builder.max_fee_per_gas(max_fee).max_priority_fee_per_gas(tip).deploy().await?
    }};
}

fn hashes(list: &[[u8; 32]]) -> Vec<B256> {
    list.iter().map(|h| B256::from(*h)).collect()
}

/// Deploys the token, the configured verifiers and Enigma from the provider's default account,
/// which receives the whole ENG supply.
pub async fn deploy(provider: &DynProvider, config: &DeployConfig) -> Result<Deployment> {
    if config.epoch_size == 0 || config.timeout_blocks == 0 || config.group_size == 0 {
        return Err(ChainError::Config(
            "epoch size, timeout and group size must be at least 1".into(),
        ));
    }
    if config.task_limits.max_gas_limit == 0 {
        return Err(ChainError::Config(
            "the maximum gas limit of a task must be at least 1".into(),
        ));
    }
    let token = fees!(provider, EnigmaToken::deploy_builder(provider.clone()));
    let simulation = match &config.simulation {
        Some(p) => Some(fees!(
            provider,
            SimulationVerifier::deploy_builder(
                provider.clone(),
                eth(p.authority),
                p.debug_allowed,
                hashes(&p.worker_enclaves),
                hashes(&p.km_enclaves),
            )
        )),
        None => None,
    };
    let ias = match &config.ias {
        Some(p) => Some(fees!(
            provider,
            IasVerifier::deploy_builder(
                provider.clone(),
                Bytes::from(p.modulus.clone()),
                Bytes::from(p.exponent.clone()),
                B256::from(p.mr_signer),
                p.min_isv_svn,
                p.debug_allowed,
                p.allowed_statuses.clone(),
                hashes(&p.worker_enclaves),
                hashes(&p.km_enclaves),
            )
        )),
        None => None,
    };
    let enigma = fees!(
        provider,
        Enigma::deploy_builder(
            provider.clone(),
            token,
            U256::from(config.epoch_size),
            U256::from(config.timeout_blocks),
            eth_signer(config.principal),
            U256::from(config.group_size),
            simulation.unwrap_or_default(),
            ias.unwrap_or_default(),
            config.task_limits.min_gas_price,
            config.task_limits.max_gas_limit,
        )
    );
    let block = provider.get_block_number().await?;
    Ok(Deployment {
        token: address(token),
        enigma: address(enigma),
        simulation_verifier: simulation.map(address),
        ias_verifier: ias.map(address),
        block,
    })
}

/// Deploys the sample `VotingETH` contract bound to `enigma` (examples and tests).
pub async fn deploy_voting(provider: &DynProvider, enigma: Address) -> Result<Address> {
    Ok(address(fees!(provider, VotingETH::deploy_builder(provider.clone(), eth(enigma)))))
}
