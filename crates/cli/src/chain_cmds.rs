//! Running against a chain other than the devnet's: how this process reaches the node (TLS
//! roots, fee cap), the network's chain file (`chain.toml`) that nodes read, and the commands an
//! operator runs once: deploy the contracts, print the key manager's signer, serve simulation
//! attestation.

use std::{
    io::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::providers::Provider as _;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use enigma_chain::{ChainOptions, DeployConfig, Deployment, IasPolicy, TaskLimits};
use enigma_types::Address;
use serde::{Deserialize, Serialize};

use crate::{SecretArg, key};

/// How this process talks to the Ethereum node (any command).
#[derive(Debug, Args, Default)]
pub(crate) struct ChainFlags {
    /// A PEM file of certificate authorities to trust for an `https`/`wss` RPC URL besides the
    /// system's (a private node's own CA). SSL_CERT_FILE is read too.
    #[arg(long, global = true, env = "ENIGMA_CHAIN_CA", value_name = "PEM")]
    pub(crate) chain_ca: Option<PathBuf>,
    /// The most a transaction may pay per gas, base fee and tip (gwei); while the chain's base
    /// fee is above it, transactions are refused, never sent.
    #[arg(long, global = true, env = "ENIGMA_MAX_FEE_GWEI", value_name = "GWEI")]
    pub(crate) max_fee_gwei: Option<String>,
    /// The tip per gas (gwei); default: the node's suggestion.
    #[arg(long, global = true, env = "ENIGMA_PRIORITY_FEE_GWEI", value_name = "GWEI")]
    pub(crate) priority_fee_gwei: Option<String>,
}

/// The same settings as a node's config file holds them (`chain-ca`, `max-fee-gwei`,
/// `priority-fee-gwei`).
#[derive(Debug, Default, Clone)]
pub(crate) struct ChainFileFlags {
    pub(crate) chain_ca: Option<PathBuf>,
    pub(crate) max_fee_gwei: Option<String>,
    pub(crate) priority_fee_gwei: Option<String>,
}

impl ChainFlags {
    /// Sets this process's chain options from the flags, then `file` where a flag is absent.
    pub(crate) fn apply(&self, file: &ChainFileFlags) -> Result<()> {
        let mut options = ChainOptions::default();
        if let Some(path) = self.chain_ca.as_ref().or(file.chain_ca.as_ref()) {
            options.trust_pem_file(path).context("--chain-ca")?;
        }
        let gwei = |v: Option<&String>, flag: &str| -> Result<Option<u128>> {
            v.map(|t| enigma_chain::parse_gwei(t).with_context(|| format!("--{flag}"))).transpose()
        };
        options.max_fee_per_gas =
            gwei(self.max_fee_gwei.as_ref().or(file.max_fee_gwei.as_ref()), "max-fee-gwei")?;
        options.priority_fee_per_gas = gwei(
            self.priority_fee_gwei.as_ref().or(file.priority_fee_gwei.as_ref()),
            "priority-fee-gwei",
        )?;
        enigma_chain::configure(options).context("the chain settings")?;
        Ok(())
    }
}

/// A network's chain file: where its contracts are, written by `enigma contracts deploy` and read
/// by nodes (`--chain-config`). Settings given to a node itself win over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ChainFile {
    /// The RPC URL the contracts were deployed through (a node may use its own).
    pub(crate) chain_url: String,
    /// The chain's id: a node refuses to start against another chain.
    pub(crate) chain_id: u64,
    /// The Enigma contract.
    pub(crate) enigma: Address,
    /// The ENG token.
    pub(crate) token: Address,
    /// The block of the Enigma contract's deployment.
    pub(crate) deployed_block: u64,
    /// Blocks a node waits under before acting on a record or event.
    pub(crate) confirmations: u64,
    /// The simulation verifier, if the network accepts simulated enclaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) simulation_verifier: Option<Address>,
    /// The simulation attestation authority those enclaves are attested by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) simulation_authority: Option<Address>,
    /// The IAS verifier, if the network accepts Intel-attested enclaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ias_verifier: Option<Address>,
}

impl ChainFile {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the chain file {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "parsing the chain file {} (written by `enigma contracts deploy`)",
                path.display()
            )
        })
    }
}

/// Refuses a node whose RPC URL leads to another chain than its chain file names.
pub(crate) async fn check_chain_id(full_url: &str, expected: u64) -> Result<()> {
    let url = enigma_chain::public_url(full_url);
    let p = enigma_chain::provider(full_url, None)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let id = p.get_chain_id().await.with_context(|| format!("reading the chain id from {url}"))?;
    if id != expected {
        bail!(
            "{url} serves chain {id}, but the chain file is for chain {expected}: point \
             --chain-url at the right network or use that network's chain file"
        );
    }
    Ok(())
}

/// The chain id of anvil and hardhat, the devnet's chains.
const LOCAL_CHAIN_ID: u64 = 31_337;

/// A node sends transactions unattended, and the RPC provider suggests their fees: on any chain
/// but a local one it runs only under a fee cap.
pub(crate) async fn require_fee_cap(full_url: &str) -> Result<()> {
    if enigma_chain::options().max_fee_per_gas.is_some() {
        return Ok(());
    }
    let url = enigma_chain::public_url(full_url);
    let p = enigma_chain::provider(full_url, None)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let id = p.get_chain_id().await.with_context(|| format!("reading the chain id from {url}"))?;
    fee_cap_for(id)
}

fn fee_cap_for(chain_id: u64) -> Result<()> {
    if chain_id == LOCAL_CHAIN_ID {
        return Ok(());
    }
    bail!(
        "chain {chain_id} is not a local devnet chain: give the node a fee cap (--max-fee-gwei, or \
         max-fee-gwei in its config file). It sends transactions unattended, and without a cap \
         the RPC provider's fee suggestion decides what they cost"
    )
}

/// `enigma contracts`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContractsCommand {
    /// Deploy the ENG token, the attestation verifiers and the Enigma contract to a chain, and
    /// write the chain file its nodes read.
    ///
    /// The deployer receives the whole ENG supply and owns the task limits. The key manager's
    /// enclave signer comes from `enigma km signer` on the key manager's machine.
    ///
    /// Examples:
    ///   enigma contracts deploy --rpc https://sepolia.example.org/v3/KEY --deployer-key @deployer.key \
    ///       --principal 0x5c…e1 --simulation-authority 0x9a…3f --out chain.toml
    ///   enigma contracts deploy --rpc http://127.0.0.1:8545 --deployer-key @k --principal 0x5c…e1 \
    ///       --ias-mr-signer 83d7…e1 --worker-enclave 1a2b… --km-enclave 3c4d… --json
    #[command(verbatim_doc_comment)]
    Deploy(Box<DeployArgs>),
}

/// `enigma contracts deploy` options.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The Ethereum JSON-RPC URL (http, https, ws or wss).
    #[arg(long)]
    rpc: String,
    /// The deploying account's private key: hex, or @FILE holding it.
    #[arg(long, env = "ENIGMA_DEPLOYER_KEY", hide_env_values = true)]
    deployer_key: SecretArg,
    /// The key manager enclave's signer (`enigma km signer`).
    #[arg(long)]
    principal: Address,
    /// Accept simulated enclaves attested by this authority (`enigma attestation serve` prints
    /// it): for test networks only.
    #[arg(long)]
    simulation_authority: Option<Address>,
    /// Accept Intel (IAS) attested enclaves signed by this MRSIGNER (hex).
    #[arg(long)]
    ias_mr_signer: Option<String>,
    /// IAS: the lowest accepted ISVSVN.
    #[arg(long, default_value_t = 0)]
    ias_min_svn: u16,
    /// IAS: an accepted worker MRENCLAVE (hex; repeat for several).
    #[arg(long)]
    worker_enclave: Vec<String>,
    /// IAS: an accepted key-manager MRENCLAVE (hex; repeat for several).
    #[arg(long)]
    km_enclave: Vec<String>,
    /// Blocks per epoch, at least.
    #[arg(long, default_value_t = 300)]
    epoch_size: u64,
    /// Blocks after which an unanswered task's fee can be returned.
    #[arg(long, default_value_t = 600)]
    timeout_blocks: u64,
    /// Workers selected per contract.
    #[arg(long, default_value_t = 1)]
    group_size: u64,
    /// The lowest gas price a task may offer (grains per gas).
    #[arg(long, default_value_t = enigma_chain::DEFAULT_TASK_LIMITS.min_gas_price)]
    min_gas_price: u64,
    /// The highest gas limit a task may ask for.
    #[arg(long, default_value_t = enigma_chain::DEFAULT_TASK_LIMITS.max_gas_limit)]
    max_gas_limit: u64,
    /// Blocks nodes wait under before acting (written to the chain file; at least 1 outside
    /// a devnet).
    #[arg(long, default_value_t = 2)]
    confirmations: u64,
    /// Where to write the chain file (refused if it exists: it names a live network).
    #[arg(long, default_value = "chain.toml")]
    out: PathBuf,
    /// Print the deployment as JSON.
    #[arg(long)]
    json: bool,
}

fn hash32(text: &str, flag: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text.trim_start_matches("0x"))
        .with_context(|| format!("--{flag} {text} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("--{flag} {text} is not 32 bytes"))
}

pub(crate) async fn contracts(command: ContractsCommand) -> Result<()> {
    let ContractsCommand::Deploy(a) = command;
    if a.out.exists() {
        bail!(
            "{} exists: it may name a live network; move it away or choose --out",
            a.out.display()
        );
    }
    if a.simulation_authority.is_none() && a.ias_mr_signer.is_none() {
        bail!(
            "no enclave could register: give --simulation-authority (test networks) or \
             --ias-mr-signer with --worker-enclave and --km-enclave"
        );
    }
    let ias = match &a.ias_mr_signer {
        Some(signer) => {
            let (modulus, exponent) = IasPolicy::intel_signing_key()?;
            let list = |v: &[String], flag: &str| -> Result<Vec<[u8; 32]>> {
                v.iter().map(|h| hash32(h, flag)).collect()
            };
            Some(IasPolicy {
                modulus,
                exponent,
                mr_signer: hash32(signer, "ias-mr-signer")?,
                min_isv_svn: a.ias_min_svn,
                debug_allowed: false,
                allowed_statuses: vec!["OK".into()],
                worker_enclaves: list(&a.worker_enclave, "worker-enclave")?,
                km_enclaves: list(&a.km_enclave, "km-enclave")?,
            })
        }
        None => None,
    };
    let deployer = key(&a.deployer_key, "deployer key")?;
    let config = DeployConfig {
        epoch_size: a.epoch_size,
        timeout_blocks: a.timeout_blocks,
        principal: a.principal.into(),
        group_size: a.group_size,
        simulation: a.simulation_authority.map(enigma_node::devnet_simulation_policy),
        ias,
        task_limits: TaskLimits { min_gas_price: a.min_gas_price, max_gas_limit: a.max_gas_limit },
    };
    // Providers put API keys in the URL: only its public part is written, printed or logged.
    let rpc = enigma_chain::public_url(&a.rpc);
    let provider = enigma_chain::provider(&a.rpc, Some(&deployer))
        .await
        .with_context(|| format!("connecting to {rpc}"))?;
    let chain_id = provider.get_chain_id().await.with_context(|| format!("reading {rpc}"))?;
    if !a.json {
        say!("deploying to chain {chain_id} from {} …", deployer.address());
    }
    let d: Deployment = enigma_chain::deploy(&provider, &config)
        .await
        .with_context(|| format!("deploying the contracts through {rpc}"))?;
    // The addresses first: the contracts are paid for whatever happens to the file.
    let _ = writeln!(
        std::io::stderr(),
        "deployed on chain {chain_id} at block {}: enigma {} token {}{}{}",
        d.block,
        d.enigma,
        d.token,
        d.simulation_verifier.map(|v| format!(" simulation verifier {v}")).unwrap_or_default(),
        d.ias_verifier.map(|v| format!(" IAS verifier {v}")).unwrap_or_default(),
    );
    let file = ChainFile {
        chain_url: if rpc == a.rpc.trim_end_matches('/') {
            a.rpc.clone()
        } else {
            rpc.trim_end_matches("/…").to_owned()
        },
        chain_id,
        enigma: d.enigma,
        token: d.token,
        deployed_block: d.block,
        confirmations: a.confirmations,
        simulation_verifier: d.simulation_verifier,
        simulation_authority: a.simulation_authority,
        ias_verifier: d.ias_verifier,
    };
    let text = format!(
        "# The enigma contracts on chain {chain_id}, deployed by {} (`enigma contracts deploy`).\n\
         # Nodes read it with --chain-config; their own settings win over it.\n{}",
        deployer.address(),
        toml::to_string(&file).context("writing the chain file")?
    );
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&a.out)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().with_context(|| {
        format!("writing {} (the addresses are above; write it by hand)", a.out.display())
    })?;
    if rpc != a.rpc.trim_end_matches('/') {
        let _ = writeln!(
            std::io::stderr(),
            "the chain file names {rpc}: the path and credentials of --rpc stay out of it; each \
             node gives its own --chain-url"
        );
    }
    if a.json {
        say!("{}", serde_json::json!({ "chain_file": a.out, "chain": file }));
    } else {
        say!("chain file written to {}: start nodes with --chain-config {0}", a.out.display());
    }
    Ok(())
}

/// `enigma attestation`.
#[derive(Debug, Subcommand)]
pub(crate) enum AttestationCommand {
    /// Serve simulation attestation for a test network: sign the reports of simulated enclaves
    /// built to trust this authority. Its key is the network's root of trust: keep the file
    /// private. Hardware networks are attested by Intel instead.
    ///
    /// Example:
    ///   enigma attestation serve --key-file authority.key --listen 0.0.0.0:3041
    #[command(verbatim_doc_comment)]
    Serve {
        /// The authority's key: read, or created (mode 0600) if the file does not exist.
        #[arg(long)]
        key_file: PathBuf,
        /// Where to serve.
        #[arg(long, default_value = "127.0.0.1:3041")]
        listen: SocketAddr,
    },
}

pub(crate) async fn attestation(command: AttestationCommand) -> Result<()> {
    let AttestationCommand::Serve { key_file, listen } = command;
    let authority = enigma_node::key_file(&key_file)
        .with_context(|| format!("the authority key in {}", key_file.display()))?;
    let service = enigma_node::serve_devnet_attestation(listen, authority)
        .await
        .context("starting the attestation service")?;
    say!("attestation authority {} ready: {}", service.authority, service.url);
    crate::shutdown_signal().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_on_a_public_chain_needs_a_fee_cap_and_a_devnet_does_not() {
        assert!(fee_cap_for(LOCAL_CHAIN_ID).is_ok());
        for public in [1, 11_155_111, 17_000, 8453] {
            let e = fee_cap_for(public).unwrap_err().to_string();
            assert!(e.contains("--max-fee-gwei") && e.contains(&public.to_string()), "{e}");
        }
    }
}
