//! The commands a user of the network runs: `deploy`, `call` and `account`, through
//! `enigma-client`. Endpoints and the account come from a devnet's `devnet.json` by default, or
//! from flags for any other network.

use std::{path::PathBuf, time::Duration};

use alloy::dyn_abi::DynSolType;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use enigma_client::{Client, ClientConfig, Finality, Policy, TaskOptions, TaskOutcome};
use enigma_crypto::SignedResult as _;
use enigma_node::{DevnetSummary, devnet_measurements};
use enigma_types::{Address, ContractAddress, TaskId};

use crate::{
    SecretArg,
    abi::{decode_output, encode_args},
    key,
};

/// Where to connect and as whom.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// A devnet summary to take the endpoints, addresses and account from (flags override it).
    #[arg(long, default_value = ".devnet/devnet.json")]
    devnet: PathBuf,
    /// The gateway's JSON-RPC URL.
    #[arg(long)]
    gateway_url: Option<String>,
    /// The Ethereum JSON-RPC URL.
    #[arg(long, env = "ENIGMA_CHAIN_URL")]
    chain_url: Option<String>,
    /// The Enigma contract's address.
    #[arg(long)]
    enigma: Option<Address>,
    /// The ENG token's address.
    #[arg(long)]
    token: Option<Address>,
    /// The account's private key: hex, or @FILE (default with a devnet: its first dev account).
    #[arg(long, env = "ENIGMA_ACCOUNT_KEY", hide_env_values = true)]
    key: Option<SecretArg>,
    /// Accept simulated enclaves attested by this authority (a devnet's own is accepted anyway).
    #[arg(long)]
    sim_authority: Option<Address>,
    /// Also accept worker enclaves with this measurement (MRENCLAVE, or a TD's measurement
    /// digest), hex; repeat for several. The devnet build's worker is accepted with a devnet or
    /// a simulation authority.
    #[arg(long = "measurement", value_name = "HEX")]
    measurements: Vec<String>,
    /// Accept hardware worker enclaves signed by this MRSIGNER (hex).
    #[arg(long, value_name = "HEX")]
    mr_signer: Option<String>,
    /// Oldest worker attestation accepted, in seconds (default: any age).
    #[arg(long, value_name = "SECONDS")]
    max_attestation_age: Option<u64>,
    /// Seconds to wait for a result.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print the outcome as JSON (for scripts).
    #[arg(long)]
    json: bool,
}

/// `enigma deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The contract's WebAssembly (from `cargo build --release --target wasm32-unknown-unknown`).
    wasm: PathBuf,
    /// The constructor's signature.
    #[arg(long, default_value = "construct()")]
    constructor: String,
    /// The constructor's arguments, one per parameter of the signature.
    args: Vec<String>,
    /// The gas limit (the fee charged is at most this times the gas price).
    #[arg(long, default_value_t = 50_000_000)]
    gas: u64,
    #[command(flatten)]
    connection: Connection,
}

/// `enigma call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The secret contract's address.
    contract: ContractAddress,
    /// The function's signature, e.g. 'add_millionaire(address,uint256)'.
    signature: String,
    /// Its arguments, one per parameter: addresses as 0x…, numbers in decimal or 0x hex,
    /// booleans as true/false, bytes as 0x…, strings as they are.
    args: Vec<String>,
    /// The output's types, to decode it, e.g. '(address)'; without it the output is printed as hex.
    #[arg(long)]
    returns: Option<String>,
    /// The gas limit.
    #[arg(long, default_value_t = 50_000_000)]
    gas: u64,
    /// ENG (in grains, 10^-8 ENG) to send to the contract with the task, from the prepaid
    /// balance like the fee: the contract sees it, it keeps it if the task succeeds, and it
    /// returns to you if the task fails. The amount is public on chain.
    #[arg(long, default_value_t = 0, value_name = "GRAINS")]
    value: u128,
    /// Wait until the task's receipt is on chain (the result is then confirmed, not just
    /// provisional: signed by the selected enclave, its receipt still in a batch).
    #[arg(long)]
    confirm: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `enigma query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The secret contract's address.
    contract: ContractAddress,
    /// The function's signature, e.g. 'compute_richest()'.
    signature: String,
    /// Its arguments, one per parameter (as for `enigma call`).
    args: Vec<String>,
    /// The output's types, to decode it, e.g. '(address)'; without it the output is printed as hex.
    #[arg(long)]
    returns: Option<String>,
    /// Run on the selected worker's latest state, its results not yet on chain included
    /// (default: the chain's state).
    #[arg(long)]
    latest: bool,
    /// Ask without saying who asks (the contract's `sender()` is then none).
    #[arg(long, conflicts_with = "permit")]
    anonymous: bool,
    /// Ask with this permit (from `enigma permit`) instead of signing the query.
    #[arg(long, value_name = "FILE")]
    permit: Option<PathBuf>,
    #[command(flatten)]
    connection: Connection,
}

/// `enigma permit`.
#[derive(Debug, Args)]
pub(crate) struct PermitArgs {
    /// A contract the permit may ask; repeat for several (at most 16).
    #[arg(long = "contract", required = true)]
    contracts: Vec<ContractAddress>,
    /// How long it works, in seconds from now.
    #[arg(long, default_value_t = 86_400)]
    expires_in: u64,
    /// Its name (a label shown by wallets).
    #[arg(long, default_value = "enigma cli")]
    name: String,
    /// Revoke your permits of this name at each listed contract instead (a signed task each,
    /// with its fee): their queries are refused on the contract's new state and every later one.
    #[arg(long)]
    revoke: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `enigma task`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// The task's status on chain.
    Status {
        /// The task id.
        task: TaskId,
        #[command(flatten)]
        connection: Connection,
    },
    /// The task's signed result as the network holds it: status, gas used, hashes, and the
    /// output encrypted to the key of the call that sent it (`enigma call` printed it decrypted).
    Result {
        /// The task id.
        task: TaskId,
        #[command(flatten)]
        connection: Connection,
    },
    /// Return the whole fee of a task nobody committed, once the chain's timeout has passed.
    Refund {
        /// The task id.
        task: TaskId,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `enigma account`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Show the account's ENG and its prepaid balance for task fees.
    Balance(Connection),
    /// Move ENG (in grains, 10^8 per ENG) into the prepaid balance.
    Deposit {
        /// Grains to deposit.
        grains: u128,
        #[command(flatten)]
        connection: Connection,
    },
    /// Take grains back out of the prepaid balance.
    Withdraw {
        /// Grains to withdraw.
        grains: u128,
        #[command(flatten)]
        connection: Connection,
    },
    /// Send ENG (grains) to another account: a worker operator's stake, a user's fees.
    Transfer {
        /// Who receives it.
        to: Address,
        /// Grains to send.
        grains: u128,
        #[command(flatten)]
        connection: Connection,
    },
}

impl Connection {
    /// What a worker's attestation must show: with a devnet (or a simulation authority), the
    /// devnet build's worker; plus any measurement or MRSIGNER given.
    fn policy(&self, devnet: Option<&DevnetSummary>) -> Result<Policy> {
        let mut policy = match devnet {
            Some(s) => enigma_node::devnet_policy(
                s.simulation_authority
                    .parse()
                    .context("the devnet summary's simulation_authority")?,
            ),
            None => Policy::default().with_product_id(enigma_attestation::WORKER_PRODUCT_ID),
        };
        if let Some(a) = self.sim_authority {
            policy = policy.with_simulation_authority(a);
            let mut allowed = policy.mr_enclaves.take().unwrap_or_default();
            allowed.push(devnet_measurements(a).0);
            policy.mr_enclaves = Some(allowed);
        }
        for m in &self.measurements {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(m.trim_start_matches("0x"), &mut bytes)
                .with_context(|| format!("--measurement {m} is not 32 bytes of hex"))?;
            let mut allowed = policy.mr_enclaves.take().unwrap_or_default();
            allowed.push(bytes);
            policy.mr_enclaves = Some(allowed);
        }
        if let Some(m) = &self.mr_signer {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(m.trim_start_matches("0x"), &mut bytes)
                .with_context(|| format!("--mr-signer {m} is not 32 bytes of hex"))?;
            policy = policy.with_mr_signer(bytes);
        }
        if let Some(age) = self.max_attestation_age {
            policy = policy.with_max_age(age);
        }
        if policy.mr_enclaves.is_none() && policy.mr_signer.is_none() {
            bail!(
                "no worker enclave would be accepted: without a devnet, give --measurement or --mr-signer (and --sim-authority for simulated enclaves)"
            );
        }
        Ok(policy)
    }

    async fn connect(&self) -> Result<Client> {
        let summary: Option<DevnetSummary> =
            match std::fs::read_to_string(&self.devnet) {
                Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a devnet summary", self.devnet.display())
                })?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).context(format!("reading {}", self.devnet.display())),
            };
        let missing = |flag: &str| {
            anyhow::anyhow!(
                "--{flag} is required: no devnet summary at {} (start one with `enigma devnet`, \
                 or give --devnet FILE)",
                self.devnet.display()
            )
        };
        let s = summary.as_ref();
        let account = match (&self.key, s) {
            (Some(k), _) => key(k, "account key")?,
            (None, Some(s)) => key(
                &SecretArg(
                    s.accounts
                        .first()
                        .context("the devnet summary lists no account")?
                        .private_key
                        .clone(),
                ),
                "devnet account key",
            )?,
            (None, None) => return Err(missing("key")),
        };
        let policy = self.policy(s)?;
        let config = ClientConfig {
            gateway_url: self
                .gateway_url
                .clone()
                .or_else(|| s.map(|s| s.gateway_url.clone()))
                .ok_or_else(|| missing("gateway-url"))?,
            chain_url: self
                .chain_url
                .clone()
                .or_else(|| s.map(|s| s.chain_url.clone()))
                .ok_or_else(|| missing("chain-url"))?,
            enigma: self
                .enigma
                .or_else(|| s.map(|s| s.deployment.enigma))
                .ok_or_else(|| missing("enigma"))?,
            token: self
                .token
                .or_else(|| s.map(|s| s.deployment.token))
                .ok_or_else(|| missing("token"))?,
            account,
            gas_px: 1,
            policy,
            result_timeout: Duration::from_secs(self.timeout),
        };
        Client::connect(config).await.context("connecting to the network")
    }
}

fn outcome_json(o: &TaskOutcome, decoded: Option<&[String]>) -> serde_json::Value {
    serde_json::json!({
        "task_id": o.task_id.to_string(),
        "contract": o.contract.to_string(),
        "worker": o.worker.to_string(),
        "gas_used": o.gas_used,
        "output": format!("0x{}", hex::encode(&o.output)),
        "decoded": decoded,
        "value": o.value.to_string(),
        "payouts": o.payouts.iter().map(|p| serde_json::json!({
            "to": p.to.to_string(),
            "amount": p.amount.0.to_string(),
        })).collect::<Vec<_>>(),
        "finality": finality(o.finality),
    })
}

/// How final a result is, as printed.
fn finality(f: Finality) -> &'static str {
    match f {
        Finality::Provisional => "provisional",
        Finality::Confirmed => "confirmed",
    }
}

/// The line after a result: who ran it, its gas, and whether the chain holds its receipt.
fn outcome_line(o: &TaskOutcome) -> String {
    let how = match o.finality {
        Finality::Provisional => {
            "provisional: signed by the selected enclave, receipt not on chain yet"
        }
        Finality::Confirmed => "confirmed: its receipt is on chain",
    };
    let mut line =
        format!("  task {}  worker {}  gas used {}  ({how})", o.task_id, o.worker, o.gas_used);
    if o.value != 0 {
        line.push_str(&format!("\n  sent {} grains to the contract", o.value));
    }
    let when = match o.finality {
        Finality::Provisional => " once the receipt is on chain",
        Finality::Confirmed => "",
    };
    for p in &o.payouts {
        line.push_str(&format!(
            "\n  the contract pays {} grains to {} (into its prepaid balance{when})",
            p.amount.0, p.to
        ));
    }
    line
}

/// `enigma deploy`.
pub(crate) async fn deploy(a: DeployArgs) -> Result<()> {
    let wasm = std::fs::read(&a.wasm)
        .with_context(|| format!("reading the contract {}", a.wasm.display()))?;
    let args = encode_args(&a.constructor, &a.args)?;
    let client = a.connection.connect().await?;
    let spinner = indicatif::ProgressBar::new_spinner();
    if !a.connection.json {
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner.set_message(format!(
            "deploying {} ({} bytes): recording the task, running the constructor, awaiting the receipt",
            a.wasm.display(),
            wasm.len()
        ));
    }
    let deployed = client.deploy(&wasm, &a.constructor, &args, a.gas).await;
    spinner.finish_and_clear();
    let o = deployed.context("deploying the contract")?;
    if a.connection.json {
        say!("{}", outcome_json(&o, None));
    } else {
        say!("deployed {}", o.contract);
        say!("{}", outcome_line(&o));
    }
    Ok(())
}

/// `enigma call`.
pub(crate) async fn call(a: CallArgs) -> Result<()> {
    let args = encode_args(&a.signature, &a.args)?;
    if let Some(types) = &a.returns {
        DynSolType::parse(types).with_context(|| {
            format!("--returns {types:?} does not parse; write it like '(address)'")
        })?;
    }
    let client = a.connection.connect().await?;
    let options = TaskOptions { value: a.value, ..TaskOptions::default() };
    let mut o = async {
        let task =
            client.record_compute_with(a.contract, &a.signature, &args, a.gas, &options).await?;
        client.send(task).await?.result().await
    }
    .await
    .with_context(|| format!("calling {} on {}", a.signature, a.contract))?;
    let mut callback_failed = false;
    if a.confirm && o.finality == Finality::Provisional {
        let receipt = client.confirm(&o).await.with_context(|| {
            format!(
                "waiting for the receipt of task {} (see `enigma task status {}`)",
                o.task_id, o.task_id
            )
        })?;
        o.finality = Finality::Confirmed;
        if receipt.status == enigma_chain::TaskStatus::FailedEth {
            // The chain kept nothing of the task but its fee: no delta, no value, no payouts.
            callback_failed = true;
            o.value = 0;
            o.payouts.clear();
        }
    }
    let decoded = a.returns.as_deref().map(|t| decode_output(t, &o.output)).transpose()?;
    if a.connection.json {
        let mut json = outcome_json(&o, decoded.as_deref());
        json["callback_failed"] = callback_failed.into();
        say!("{json}");
    } else {
        match &decoded {
            Some(values) => say!("{}", values.join(" ")),
            None if o.output.is_empty() => say!("(no output)"),
            None => say!("0x{}", hex::encode(&o.output)),
        }
        say!("{}", outcome_line(&o));
        if callback_failed {
            say!(
                "  its Ethereum callback failed on chain: the state change was not kept, any value \
                 went back to you and nothing was paid out"
            );
        }
    }
    Ok(())
}

/// `enigma query`.
pub(crate) async fn query(a: QueryArgs) -> Result<()> {
    let args = encode_args(&a.signature, &a.args)?;
    if let Some(types) = &a.returns {
        DynSolType::parse(types).with_context(|| {
            format!("--returns {types:?} does not parse; write it like '(address)'")
        })?;
    }
    let client = a.connection.connect().await?;
    let permit = match &a.permit {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the permit {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a permit (make one with `enigma permit`)", path.display())
            })?)
        }
    };
    let options = enigma_client::QueryOptions {
        latest: a.latest,
        anonymous: a.anonymous,
        permit,
        ..enigma_client::QueryOptions::default()
    };
    let o = client
        .query_with(a.contract, &a.signature, &args, &options)
        .await
        .with_context(|| format!("querying {} on {}", a.signature, a.contract))?;
    let decoded = a.returns.as_deref().map(|t| decode_output(t, &o.output)).transpose()?;
    let state = if o.on_chain {
        "the chain's state"
    } else {
        "the worker's latest state, past the chain's"
    };
    if a.connection.json {
        say!(
            "{}",
            serde_json::json!({
                "contract": o.contract.to_string(),
                "worker": o.worker.to_string(),
                "output": format!("0x{}", hex::encode(&o.output)),
                "decoded": decoded,
                "delta_count": o.delta_count,
                "delta_hash": o.delta_hash.to_string(),
                "on_chain": o.on_chain,
                "gas_used": o.gas_used,
                "caller": o.caller.to_string(),
            })
        );
    } else {
        match &decoded {
            Some(values) => say!("{}", values.join(" ")),
            None if o.output.is_empty() => say!("(no output)"),
            None => say!("0x{}", hex::encode(&o.output)),
        }
        say!(
            "  answered by {} on {state} (delta {}), gas used {}; nothing recorded or paid",
            o.worker,
            o.delta_count,
            o.gas_used
        );
    }
    Ok(())
}

/// `enigma permit`: the signed permit as JSON on standard output.
pub(crate) async fn permit(a: PermitArgs) -> Result<()> {
    let client = a.connection.connect().await?;
    if a.revoke {
        for contract in &a.contracts {
            let outcome = client
                .revoke_permit(*contract, &a.name)
                .await
                .with_context(|| format!("revoking permits named {:?} at {contract}", a.name))?;
            if a.connection.json {
                say!(
                    "{}",
                    serde_json::json!({
                        "revoked": a.name,
                        "contract": contract.to_string(),
                        "task_id": outcome.task_id.to_string(),
                    })
                );
            } else {
                say!(
                    "revoked your permits named {:?} at {contract} (task {})",
                    a.name,
                    outcome.task_id
                );
            }
        }
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let permit = client
        .sign_permit(&a.name, &a.contracts, now.saturating_add(a.expires_in))
        .await
        .context("signing the permit")?;
    say!("{}", serde_json::to_string_pretty(&permit)?);
    Ok(())
}

/// `enigma task …`.
pub(crate) async fn task(command: TaskCommand) -> Result<()> {
    match command {
        TaskCommand::Status { task, connection } => {
            let client = connection.connect().await?;
            let record = client.task_record(task).await?;
            let Some(r) = record else {
                bail!(
                    "task {task} has no record on chain; check the id (it is printed by `enigma call`)"
                )
            };
            let now = client.chain().block_number().await?;
            let timeout = enigma_chain::convert::u64_of(
                client
                    .chain()
                    .enigma()
                    .timeoutBlocks()
                    .call()
                    .await
                    .map_err(enigma_chain::ChainError::from)?,
                "timeout blocks",
            )?;
            let refundable_at = r.created_at + timeout;
            let refundable = r.status == enigma_chain::TaskStatus::Created && now >= refundable_at;
            if connection.json {
                say!(
                    "{}",
                    serde_json::json!({
                        "task_id": task.to_string(),
                        "status": format!("{:?}", r.status),
                        "sender": r.sender.to_string(),
                        "deploy": r.is_deploy,
                        "gas_limit": r.gas_limit,
                        "gas_px": r.gas_px,
                        "value": r.value.to_string(),
                        "created_at": r.created_at,
                        "refundable_at": refundable_at,
                        "refundable": refundable,
                    })
                );
            } else {
                say!("task {task}: {:?}", r.status);
                say!("  sender {}  gas limit {}  gas price {}", r.sender, r.gas_limit, r.gas_px);
                if r.value != 0 {
                    say!("  value {} grains for the contract (escrowed with the fee)", r.value);
                }
                say!("  recorded at block {}  (chain at {now})", r.created_at);
                if r.status == enigma_chain::TaskStatus::Created {
                    if refundable {
                        say!(
                            "  no receipt yet; its fee can be returned now: enigma task refund {task}"
                        );
                    } else {
                        say!(
                            "  no receipt yet; if none comes, its fee can be returned from block {refundable_at}"
                        );
                    }
                }
            }
        }
        TaskCommand::Result { task, connection } => {
            let client = connection.connect().await?;
            let Some(m) = client.task_result(task).await? else {
                bail!(
                    "the gateway has no result for task {task} (yet); see `enigma task status {task}`"
                )
            };
            let on_chain = client.task_status(task).await?;
            let confirmed = client.finality(&m).await.with_context(|| {
                format!("the gateway's result of task {task} does not stand against the chain")
            })? == Finality::Confirmed;
            if connection.json {
                let view = enigma_p2p::messages::ResultView::from(&m);
                let mut value = serde_json::to_value(&view)?;
                value["finality"] = (if confirmed { "confirmed" } else { "provisional" }).into();
                say!("{value}");
            } else {
                say!(
                    "task {task}: {} ({})",
                    if m.success { "SUCCESS" } else { "FAILED" },
                    if confirmed {
                        format!("confirmed: {on_chain:?} on chain")
                    } else {
                        "provisional: its receipt is not on chain yet".to_string()
                    }
                );
                say!("  contract     {}", m.contract);
                let signer = m.signer().map_or_else(|| "nobody".to_string(), |s| s.to_string());
                say!("  signed by    {signer} (a worker selected for the task)");
                say!("  gas used     {} of {}", m.gas_used, m.gas_limit);
                say!("  output hash  {}", m.output_hash);
                say!("  delta hash   {}", m.delta_hash);
                say!(
                    "  output       {} bytes, encrypted to the caller's task key",
                    m.encrypted_output.len()
                );
            }
        }
        TaskCommand::Refund { task, connection } => {
            let client = connection.connect().await?;
            client.refund(task).await.with_context(|| {
                format!("returning the fee of task {task} (see `enigma task status {task}` for when it can be)")
            })?;
            let status = client.task_status(task).await?;
            if connection.json {
                say!(
                    "{}",
                    serde_json::json!({"task_id": task.to_string(), "status": format!("{status:?}")})
                );
            } else {
                say!("task {task}: fee returned to the sender's prepaid balance ({status:?})");
            }
        }
    }
    Ok(())
}

/// `enigma account …`.
pub(crate) async fn account(command: AccountCommand) -> Result<()> {
    let connection = match &command {
        AccountCommand::Balance(c)
        | AccountCommand::Deposit { connection: c, .. }
        | AccountCommand::Withdraw { connection: c, .. }
        | AccountCommand::Transfer { connection: c, .. } => c,
    };
    let client = connection.connect().await?;
    let chain = client.chain();
    match &command {
        AccountCommand::Deposit { grains, .. } => {
            client.deposit(*grains).await.context("depositing")?;
        }
        AccountCommand::Withdraw { grains, .. } => {
            chain.withdraw_balance(*grains).await.context("withdrawing")?;
        }
        AccountCommand::Transfer { to, grains, .. } => {
            chain
                .transfer_token(*to, *grains)
                .await
                .with_context(|| format!("sending {grains} grains to {to}"))?;
        }
        AccountCommand::Balance(_) => {}
    }
    let user = chain.account().context("the client has no account")?;
    let eng = chain.token_balance(user).await?;
    let prepaid = chain.prepaid_balance(user).await?;
    let tasks = chain.task_nonce(user).await?;
    if connection.json {
        say!(
            "{}",
            serde_json::json!({
                "account": user.to_string(),
                "eng_grains": eng.to_string(),
                "prepaid_grains": prepaid.to_string(),
                "tasks_recorded": tasks,
            })
        );
    } else {
        say!("account {user}");
        say!("  tasks    {tasks} recorded (the next one's nonce)");
        say!("  ENG      {} grains ({} ENG)", eng, eng / 100_000_000);
        say!(
            "  prepaid  {} grains (pays task fees and values; payouts from contracts arrive here)",
            prepaid
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_argument_does_not_show_in_debug_output() {
        let k: SecretArg =
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".parse().unwrap();
        assert!(!format!("{k:?}").contains("59c6"));
        assert!(key(&k, "account key").is_ok());
    }
}
