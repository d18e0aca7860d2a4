//! The network dashboard: what the chain says of the network — workers, the epoch and its
//! selection, secret contracts, recent tasks — as one JSON snapshot (`getNetwork` on the
//! gateway, pushed on change by `subscribeNetwork`) and the page that shows it live
//! (`GET /dashboard` on the gateway's port).
//!
//! Everything here is public chain data: the dashboard shows nothing a chain explorer would not.

use alloy::{providers::Provider as _, rpc::types::Filter, sol_types::SolEvent};
use enigma_chain::{
    Chain, ChainError, TaskStatus, WorkerStatus,
    bindings::{Enigma, EnigmaBatches},
};
use enigma_types::{ContractAddress, TaskId, selection::select_workers};
use serde_json::{Value, json};

use crate::{NodeError, Result};

/// The page, with its script: it subscribes to `subscribeNetwork` over the gateway's WebSocket.
pub(crate) const PAGE: &str = include_str!("dashboard.html");

/// The most contracts and tasks a snapshot lists (the newest).
const SHOWN: u64 = 50;
/// How far back (blocks) a snapshot looks for task records and receipts.
const TASK_WINDOW: u64 = 5_000;

fn chain_err(e: impl Into<ChainError>) -> NodeError {
    NodeError::Chain(e.into())
}

fn hexed(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn status_name(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Undefined => "Undefined",
        TaskStatus::Created => "Created",
        TaskStatus::Verified => "Verified",
        TaskStatus::Failed => "Failed",
        TaskStatus::FailedEth => "FailedEth",
        TaskStatus::FailedReturn => "FailedReturn",
        TaskStatus::Closed => "Closed",
    }
}

/// The network as the chain shows it now.
pub(crate) async fn snapshot(chain: &Chain) -> Result<Value> {
    let head = chain.block_number().await?;
    let group_size = usize::try_from(chain.enigma().groupSize().call().await.map_err(chain_err)?)
        .unwrap_or(1)
        .max(1);
    let epoch = chain.current_epoch().await?;

    let mut workers = Vec::new();
    if let Some(e) = &epoch {
        for (signer, stake) in e.workers.iter().zip(&e.stakes) {
            let Some(w) = chain.worker_by_signer(*signer).await? else { continue };
            workers.push(json!({
                "signer": signer.to_string(),
                "operator": w.operator.to_string(),
                "stake": stake.to_string(),
                "status": match w.status {
                    WorkerStatus::LoggedIn => "LoggedIn",
                    WorkerStatus::LoggedOut => "LoggedOut",
                    WorkerStatus::Unregistered => "Unregistered",
                },
                "attestation": match w.evidence_kind {
                    0 => "simulation",
                    1 => "ias",
                    2 => "dcap",
                    _ => "unknown",
                },
                "measurement": hexed(&w.mr_enclave),
                "registeredAt": w.registered_at,
            }));
        }
    }

    let count: u64 = chain
        .enigma()
        .secretContractCount()
        .call()
        .await
        .map_err(chain_err)?
        .try_into()
        .unwrap_or(u64::MAX);
    let addresses = chain.secret_contracts(count.saturating_sub(SHOWN), count).await?;
    let mut contracts = Vec::new();
    for address in addresses.iter().rev() {
        let Some(c) = chain.secret_contract(address).await? else { continue };
        let group = epoch.as_ref().map(|e| {
            select_workers(&e.seed, address, &e.workers, &e.stakes, group_size)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        });
        contracts.push(json!({
            "address": address.to_string(),
            "owner": c.owner.to_string(),
            "codeHash": c.code_hash.to_string(),
            "deltas": c.delta_count,
            "tasks": c.task_count,
            "balance": c.balance.to_string(),
            "holder": group.as_ref().and_then(|g| g.first().cloned()),
            "group": group,
        }));
    }

    Ok(json!({
        "block": head,
        "enigma": chain.enigma_address().to_string(),
        "epoch": epoch.as_ref().map(|e| json!({
            "nonce": e.nonce,
            "seed": hexed(&e.seed),
            "firstBlock": e.first_block,
            "workers": e.workers.len(),
        })),
        "groupSize": group_size,
        "workers": workers,
        "contractCount": count,
        "contracts": contracts,
        "tasks": tasks(chain, head).await?,
    }))
}

/// The newest task records of the last [`TASK_WINDOW`] blocks, with their status and, once a
/// receipt landed, the gas it used and the fee it paid.
async fn tasks(chain: &Chain, head: u64) -> Result<Vec<Value>> {
    let base = Filter::new()
        .address(enigma_chain::convert::eth(chain.enigma_address()))
        .from_block(head.saturating_sub(TASK_WINDOW));
    let logs = |signature| {
        let filter = base.clone().event_signature(signature);
        async move { chain.provider().get_logs(&filter).await.map_err(chain_err) }
    };
    let mut recorded: Vec<(TaskId, ContractAddress, u64)> = Vec::new();
    for log in logs(Enigma::TaskRecordCreated::SIGNATURE_HASH).await? {
        let block = log.block_number.unwrap_or_default();
        if let Ok(e) = log.log_decode::<Enigma::TaskRecordCreated>() {
            let e = e.inner.data;
            recorded.push((TaskId(e.taskId.0), ContractAddress(e.scAddr.0), block));
        }
    }
    for log in logs(Enigma::TaskRecordsCreated::SIGNATURE_HASH).await? {
        let block = log.block_number.unwrap_or_default();
        if let Ok(e) = log.log_decode::<Enigma::TaskRecordsCreated>() {
            let e = e.inner.data;
            for (id, contract) in e.taskIds.iter().zip(&e.scAddrs) {
                recorded.push((TaskId(id.0), ContractAddress(contract.0), block));
            }
        }
    }
    for log in logs(EnigmaBatches::TaskBatchCreated::SIGNATURE_HASH).await? {
        let block = log.block_number.unwrap_or_default();
        let Ok(e) = log.log_decode::<EnigmaBatches::TaskBatchCreated>() else { continue };
        let Ok(batch) = enigma_chain::record_batch(&e.inner.data) else { continue };
        for t in &batch.tasks {
            recorded.push((t.task_id, t.contract, block));
        }
        // Its tasks have no record of their own: the chain handle finds them through it.
        chain.remember_batch(batch);
    }
    recorded.sort_by_key(|(_, _, block)| std::cmp::Reverse(*block));
    recorded.truncate(usize::try_from(SHOWN).unwrap_or(usize::MAX));

    let mut gas_used = std::collections::HashMap::new();
    for log in logs(Enigma::ReceiptVerified::SIGNATURE_HASH).await? {
        if let Ok(e) = log.log_decode::<Enigma::ReceiptVerified>() {
            gas_used.insert(e.inner.data.taskId.0, (e.inner.data.gasUsed, log.transaction_hash));
        }
    }
    for log in logs(Enigma::ReceiptFailed::SIGNATURE_HASH).await? {
        if let Ok(e) = log.log_decode::<Enigma::ReceiptFailed>() {
            gas_used.insert(e.inner.data.taskId.0, (e.inner.data.gasUsed, log.transaction_hash));
        }
    }
    for log in logs(Enigma::ReceiptFailedETH::SIGNATURE_HASH).await? {
        if let Ok(e) = log.log_decode::<Enigma::ReceiptFailedETH>() {
            gas_used.insert(e.inner.data.taskId.0, (e.inner.data.gasUsed, log.transaction_hash));
        }
    }
    for log in logs(Enigma::ReceiptsVerified::SIGNATURE_HASH).await? {
        if let Ok(e) = log.log_decode::<Enigma::ReceiptsVerified>() {
            for (id, gas) in e.inner.data.taskIds.iter().zip(&e.inner.data.gasUsed) {
                gas_used.insert(id.0, (*gas, log.transaction_hash));
            }
        }
    }

    let mut out = Vec::new();
    for (id, contract, block) in recorded {
        let Some(r) = chain.task(&id).await? else { continue };
        let receipt = gas_used.get(&id.0);
        out.push(json!({
            "id": id.to_string(),
            "contract": contract.to_string(),
            "sender": r.sender.to_string(),
            "deploy": r.is_deploy,
            "status": status_name(r.status),
            "gasLimit": r.gas_limit,
            "gasPrice": r.gas_px,
            "gasUsed": receipt.map(|(g, _)| *g),
            "fee": receipt.map(|(g, _)| (u128::from(*g) * u128::from(r.gas_px)).to_string()),
            "receiptTx": receipt.and_then(|(_, tx)| tx.map(|t| t.to_string())),
            "value": r.value.to_string(),
            "block": block,
        }));
    }
    Ok(out)
}
