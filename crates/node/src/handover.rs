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
        let gate = self.gate(contract)?;
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
        self.catch_up(contract, holders).await
    }

    /// Reconciles the local copy of `contract` with the chain and syncs what is missing, asking
    /// `first` before Kademlia's providers and the connected peers.
    async fn catch_up(&self, contract: ContractAddress, first: Vec<PeerId>) -> Result<()> {
        let head = self.reconcile(contract).await?;
        let local = self.store.contract(&contract)?;
        let behind = local.is_none_or(|l| l.next_index < head.delta_count)
            || self.store.code(&head.code_hash)?.is_none();
        if behind {
            let mut providers = first;
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
                me = %self.signer,
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

    /// Keeps a copy of a contract this worker is not selected for, so the network holds its
    /// state in more than one place: if its holder goes down, the next one syncs from here.
    pub(crate) async fn replicate(&self, contract: ContractAddress) -> Result<()> {
        let gate = self.gate(contract)?;
        let _gate = gate.lock().await;
        if let Some(epoch) = self.current_epoch().await
            && (self.group(epoch, &contract).await.contains(&self.signer)
                || self.is_ready(&contract, epoch))
        {
            return Ok(()); // selected: the task path keeps it current
        }
        self.catch_up(contract, Vec::new()).await
    }

    fn gate(&self, contract: ContractAddress) -> Result<Arc<Mutex<()>>> {
        Ok(self
            .gates
            .lock()
            .map_err(|_| NodeError::Io("a lock was poisoned".into()))?
            .entry(contract)
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone())
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
    async fn reconcile(&self, contract: ContractAddress) -> Result<enigma_chain::SecretContract> {
        // Pending receipts first, then the chain: a receipt that lands in between is then on
        // the chain read, never mistaken for a local delta the chain did not take.
        let pending = self.store.pending_for(&contract)?;
        let head =
            self.chain.secret_contract(&contract).await?.ok_or_else(|| {
                NodeError::Refused(format!("contract {contract} is not deployed"))
            })?;
        let (code_hash, chain_count) = (head.code_hash, head.delta_count);
        let Some(local) = self.store.contract(&contract)? else { return Ok(head) };
        let mut keep = local.next_index;
        if keep > chain_count && pending == 0 {
            keep = chain_count;
        }
        let common = keep.min(chain_count);
        // The longest prefix of what is kept that equals the chain. Deltas are ciphertexts under
        // fresh nonces, so once a local copy leaves the chain no later delta matches it again:
        // checking the last common index settles the usual case, a binary search finds a fork.
        let known = self.verified.get(&contract).min(common);
        let matching = if common == known || self.matches_chain(&contract, common - 1).await? {
            common
        } else {
            let (mut lo, mut hi) = (known, common - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.matches_chain(&contract, mid).await? {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        self.verified.raise(&contract, matching);
        if matching < common {
            keep = matching;
        }
        if keep == local.next_index && local.code_hash == code_hash {
            return Ok(head);
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
        Ok(head)
    }

    /// Whether the local delta `index` of `contract` is the chain's.
    async fn matches_chain(&self, contract: &ContractAddress, index: u64) -> Result<bool> {
        let Some(local) = self.store.delta(contract, index)? else { return Ok(false) };
        let chain = self.chain.delta_hashes(contract, index, index + 1).await?;
        Ok(chain.first() == Some(&delta_hash(&local)))
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
        let mut others = Vec::new();
        let mut start = 0;
        while start < count {
            let stop = (start + CONTRACT_PAGE).min(count);
            match self.chain.secret_contracts(start, stop).await {
                Ok(list) => {
                    for c in list {
                        if self.group(epoch, &c).await.contains(&self.signer) {
                            mine.insert(c);
                        } else {
                            others.push(c);
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
        self.mark_dirty(others);
        for contract in mine {
            if self.current_epoch().await != Some(epoch) {
                return;
            }
            if let Err(e) = self.ensure_ready(contract, epoch).await {
                tracing::warn!(%contract, error = %e, "taking over a contract failed; its next task retries");
            }
        }
    }

    /// Queues contracts whose chain moved for replication.
    pub(crate) fn mark_dirty(&self, contracts: impl IntoIterator<Item = ContractAddress>) {
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(contracts);
        }
    }

    /// Replicates the contracts queued since the last round.
    pub(crate) async fn replicate_dirty(&self) {
        let dirty: Vec<ContractAddress> =
            self.dirty.lock().map(|mut d| d.drain().collect()).unwrap_or_default();
        for contract in dirty {
            if let Err(e) = self.replicate(contract).await {
                tracing::debug!(%contract, error = %e, "replicating a contract failed; retrying later");
                self.mark_dirty([contract]);
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
