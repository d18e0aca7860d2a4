//! Epoch hand-over: before a worker executes for a contract in an epoch it checks its local copy
//! against the chain, waits for the previous holder to commit its receipts, and syncs what it
//! lacks. Tasks that arrive meanwhile wait (a bounded number); the rest are refused as busy.

use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use enigma_p2p::{PeerId, SyncRequest, SyncResponse};
use enigma_store::ContractInfo;
use enigma_types::{ContractAddress, DeltaHash, SignerAddress, delta_hash};
use tokio::sync::Mutex;

use crate::{NodeError, Result, sync, worker::Worker};

/// Contracts read from the chain per call when listing them.
const CONTRACT_PAGE: u64 = 500;

struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Worker {
    /// Runs `f` in the background until it ends or the node stops.
    pub(crate) fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(f).abort_handle();
        if let Ok(mut v) = self.spawned.lock() {
            v.retain(|h| !h.is_finished());
            v.push(handle);
        }
    }

    pub(crate) fn abort_spawned(&self) {
        if let Ok(v) = self.spawned.lock() {
            for h in v.iter() {
                h.abort();
            }
        }
    }

    pub(crate) async fn current_epoch(&self) -> Option<u64> {
        self.epochs.read().await.current().map(|e| e.first_block)
    }

    /// The workers selected for `contract` in the epoch starting at `first_block`.
    pub(crate) async fn group(
        &self,
        first_block: u64,
        contract: &ContractAddress,
    ) -> Vec<SignerAddress> {
        let epochs = self.epochs.read().await;
        epochs.by_first_block(first_block).map(|e| epochs.group(e, contract)).unwrap_or_default()
    }

    /// The workers selected for `contract` in the epoch before the one starting at `first_block`.
    async fn previous_group(
        &self,
        first_block: u64,
        contract: &ContractAddress,
    ) -> Vec<SignerAddress> {
        let epochs = self.epochs.read().await;
        first_block
            .checked_sub(1)
            .and_then(|b| epochs.for_block(b))
            .map(|e| epochs.group(e, contract))
            .unwrap_or_default()
    }

    pub(crate) fn is_ready(&self, contract: &ContractAddress, epoch: u64) -> bool {
        self.ready.lock().is_ok_and(|r| r.get(contract) == Some(&epoch))
    }

    /// Forgets that `contract` is ready: the next task prepares it again.
    pub(crate) fn unready(&self, contract: &ContractAddress) {
        if let Ok(mut r) = self.ready.lock() {
            r.remove(contract);
        }
    }

    /// Makes sure this worker's copy of `contract` is complete and current for `epoch`,
    /// waiting behind a preparation already under way.
    pub(crate) async fn ensure_ready(&self, contract: ContractAddress, epoch: u64) -> Result<()> {
        if self.is_ready(&contract, epoch) {
            return Ok(());
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(NodeError::Refused(format!(
                "the worker is taking over contract {contract} and already has {} tasks waiting; retry shortly",
                self.max_waiting
            )));
        }
        let _waiting = Waiting(&self.waiting);
        let gate = self
            .gates
            .lock()
            .map_err(|_| NodeError::Io("a lock was poisoned".into()))?
            .entry(contract)
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone();
        let _gate = gate.lock().await;
        if self.is_ready(&contract, epoch) {
            return Ok(());
        }
        self.prepare(contract, epoch).await?;
        if let Ok(mut r) = self.ready.lock() {
            r.insert(contract, epoch);
        }
        Ok(())
    }

    async fn prepare(&self, contract: ContractAddress, epoch: u64) -> Result<()> {
        let previous = self.previous_group(epoch, &contract).await;
        tracing::debug!(me = %self.signer, %contract, epoch, ?previous, "preparing contract");
        let mut holders = Vec::new();
        if !previous.contains(&self.signer) {
            for signer in &previous {
                if let Some(peer) = self.wait_for_handover(*signer, contract, epoch).await {
                    holders.push(peer);
                }
            }
        }
        let head =
            self.chain.secret_contract(&contract).await?.ok_or_else(|| {
                NodeError::Refused(format!("contract {contract} is not deployed"))
            })?;
        self.reconcile(contract, head.code_hash, head.delta_count).await?;
        let local = self.store.contract(&contract)?;
        let behind = local.is_none_or(|l| l.next_index < head.delta_count)
            || self.store.code(&head.code_hash)?.is_none();
        if behind {
            let mut providers = holders;
            for p in self.p2p.find_providers(contract).await? {
                if !providers.contains(&p) {
                    providers.push(p);
                }
            }
            // Anyone connected may hold it too (they answer Unavailable if not).
            for p in self.p2p.connected().await? {
                if !providers.contains(&p) {
                    providers.push(p);
                }
            }
            let report = sync::sync_contract(
                &self.p2p,
                &self.store,
                &self.chain,
                &self.verified,
                contract,
                &providers,
            )
            .await?;
            tracing::info!(
                %contract,
                deltas = report.deltas,
                bytes = report.bytes,
                code = report.code,
                rejected = report.rejected.len(),
                "synced contract"
            );
        }
        self.p2p.provide(contract).await?;
        Ok(())
    }

    /// Waits (bounded) until the previous holder has entered `epoch` and committed every receipt
    /// of `contract`. Returns its peer, a provider to sync from.
    async fn wait_for_handover(
        &self,
        signer: SignerAddress,
        contract: ContractAddress,
        epoch: u64,
    ) -> Option<PeerId> {
        let deadline = tokio::time::Instant::now() + self.handover_wait;
        let mut peer = None;
        loop {
            if peer.is_none() {
                peer = self.workers.read().await.get(&signer).map(|(p, _)| *p);
            }
            if let Some(p) = peer {
                let asked = tokio::time::timeout(
                    Duration::from_secs(2),
                    self.p2p.send_sync(p, &SyncRequest::Status { contract }),
                )
                .await;
                tracing::debug!(me = %self.signer, %signer, %contract, epoch, ?asked, "hand-over status");
                match asked {
                    Ok(Ok(SyncResponse::Status { epoch: e, pending_receipts: 0, .. }))
                        if e >= epoch =>
                    {
                        return Some(p);
                    }
                    Ok(Ok(SyncResponse::Status { .. })) => {}
                    Ok(Ok(_)) => return Some(p),
                    // Unreachable: it cannot commit anything either; take over from the chain.
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!(%signer, %contract, "the previous holder is unreachable; taking over from the chain");
                        return None;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(%signer, %contract, "the previous holder did not finish in time; taking over from the chain");
                return peer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes the local copy of `contract` a prefix of the chain's: deltas the chain did not take
    /// (receipts that never landed) are removed, unless receipts for them are still pending.
    async fn reconcile(
        &self,
        contract: ContractAddress,
        code_hash: enigma_types::CodeHash,
        chain_count: u64,
    ) -> Result<()> {
        let Some(local) = self.store.contract(&contract)? else { return Ok(()) };
        let mut keep = local.next_index;
        if keep > chain_count && self.store.pending_for(&contract)? == 0 {
            keep = chain_count;
        }
        // The longest prefix of what is kept that equals the chain.
        let common = keep.min(chain_count);
        let start = self.verified.get(&contract).min(common);
        let mut matching = start;
        if matching < common {
            let hashes = self.chain.delta_hashes(&contract, start, common).await?;
            let local = self.store.deltas(&contract, start, common, usize::MAX)?;
            for ((index, bytes), want) in local.iter().zip(&hashes) {
                if *index != matching || delta_hash(bytes) != *want {
                    break;
                }
                matching += 1;
            }
            self.verified.raise(&contract, matching);
        }
        if matching < common {
            keep = matching;
        }
        if keep == local.next_index && local.code_hash == code_hash {
            return Ok(());
        }
        let tip = match keep {
            0 => DeltaHash::ZERO,
            k => self.store.delta(&contract, k - 1)?.map_or(DeltaHash::ZERO, |d| delta_hash(&d)),
        };
        tracing::warn!(
            %contract,
            from = keep,
            to = local.next_index,
            "dropping local deltas the chain does not have"
        );
        let mut b = self.store.batch()?;
        b.truncate_deltas(&contract, keep)?;
        b.remove_snapshot(&contract)?;
        b.put_contract(&contract, &ContractInfo { code_hash, next_index: keep, tip })?;
        b.commit()?;
        self.verified.lower(&contract, keep);
        Ok(())
    }

    /// At the start of an epoch (or of the node): prepares, in the background, every deployed
    /// contract this worker is selected for, so its first task does not wait for a sync.
    pub(crate) async fn take_over(self: Arc<Self>, epoch: u64) {
        let count = match self.chain.enigma().secretContractCount().call().await {
            Ok(c) => u64::try_from(c).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list contracts to take over");
                return;
            }
        };
        let mut mine = HashSet::new();
        let mut start = 0;
        while start < count {
            let stop = (start + CONTRACT_PAGE).min(count);
            match self.chain.secret_contracts(start, stop).await {
                Ok(list) => {
                    for c in list {
                        if self.group(epoch, &c).await.contains(&self.signer) {
                            mine.insert(c);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list contracts to take over");
                    return;
                }
            }
            start = stop;
        }
        for contract in mine {
            if self.current_epoch().await != Some(epoch) {
                return;
            }
            if let Err(e) = self.ensure_ready(contract, epoch).await {
                tracing::warn!(%contract, error = %e, "taking over a contract failed; its next task retries");
            }
        }
    }

    /// Answers a sync request.
    pub(crate) async fn serve_sync(&self, request: SyncRequest) -> SyncResponse {
        if let SyncRequest::Status { contract } = request {
            // Under the execution lock: no task of the contract is half done.
            let _serial = self.execution.lock().await;
            let epoch = self.current_epoch().await.unwrap_or(0);
            let local = self.store.contract(&contract).ok().flatten();
            let pending = self.store.pending_for(&contract).unwrap_or(u64::MAX);
            return match local {
                Some(l) => SyncResponse::Status {
                    epoch,
                    next_index: l.next_index,
                    tip: l.tip,
                    pending_receipts: pending,
                },
                None => SyncResponse::Unavailable("this node does not hold the contract".into()),
            };
        }
        sync::serve(&self.store, &self.chain, &self.verified, &request).await
    }
}
