//! Epoch hand-over: before a worker executes for a contract in an epoch it checks its local copy
//! against the chain, waits for the previous holder to commit its receipts, and syncs what it
//! lacks. Tasks that arrive meanwhile wait (a bounded number); the rest are refused as busy.

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use enigma_p2p::{PeerId, SyncRequest, SyncResponse};
use enigma_store::ContractInfo;
use enigma_types::{ContractAddress, DeltaHash, SignerAddress, delta_hash};
use tokio::sync::Mutex;

use crate::{
    NodeError, Result,
    core::{Arrival, Contracts, Phase, Queued, Step, Waiting},
    sync,
    worker::{Worker, ended},
};

/// Contracts read from the chain per call when listing them.
const CONTRACT_PAGE: u64 = 500;

/// Times a task prepares its contract before giving up (the epoch kept turning meanwhile).
const MAX_PREPARATIONS: u32 = 3;
/// How long a task waits for the receipt of a task before it that calls Ethereum.
const CALLBACK_WAIT: Duration = Duration::from_secs(120);
/// How often a task waiting on a receipt of a task that calls Ethereum asks the chain for it.
const CALLBACK_ASK_EVERY: Duration = Duration::from_secs(1);
/// How often a waiting task reads the chain's receipt count of its contract.
const CHAIN_SEQ_EVERY: Duration = Duration::from_millis(500);
/// A task waits for the tasks recorded before it at most this many times `order_wait` from its
/// arrival, however steadily its contract's line moves meanwhile.
const MAX_ORDER_WAITS: u32 = 6;

/// A task's place in its contract's line. Dropping it without [`Turn::ran`] takes the task out
/// of line (refused, failed, or stopped).
pub(crate) struct Turn<'a> {
    worker: &'a Worker,
    contract: ContractAddress,
    queued: Queued,
    done: bool,
}

impl Turn<'_> {
    /// Waits for the task's turn: the contract prepared for the current epoch, no other task of
    /// it running, and the tasks recorded before it run (or waited for until the contract's
    /// line has not moved for `order_wait`, at most six times that). Returns the current epoch;
    /// the task then holds the contract.
    pub(crate) async fn wait(&self, epoch: u64) -> Result<u64> {
        let w = self.worker;
        let (contract, q) = (self.contract, self.queued);
        // The wait for earlier tasks ends when the line stalls, not at a fixed time: while the
        // contract's tasks keep running in turn the missing ones are on their way — clients
        // sending a batch's tasks one after another, several clients' batches on one contract —
        // and passing them over would lose them. Only a run in turn starts the wait again (a
        // run that passed over a missing task does not, so gaps left by tasks recorded and never
        // sent cost one `order_wait` together, not one each), and never past
        // `MAX_ORDER_WAITS` times `order_wait` from the task's arrival: a client that sends its
        // recorded tasks slowly holds the contract no longer than that.
        let arrived = tokio::time::Instant::now();
        let order_cap = arrived + w.order_wait * MAX_ORDER_WAITS;
        let mut order_deadline = arrived + w.order_wait;
        let mut runs_seen = w.contracts().in_order_runs(&contract);
        let mut changed = w.contracts_changed.subscribe();
        let mut chain_seq: Option<(u64, tokio::time::Instant)> = None;
        let mut preparations = 0;
        let mut callback_since: Option<tokio::time::Instant> = None;
        let mut last_asked: Option<tokio::time::Instant> = None;
        loop {
            changed.borrow_and_update();
            let current = w.current_epoch().await.unwrap_or(epoch);
            if !q.deploy {
                if epoch != current && !w.group(current, &contract).await.contains(&w.signer) {
                    return Err(ended(q.task, epoch));
                }
                // The chain's count moves only with commits: read at most every 500 ms.
                let on_chain = match chain_seq {
                    Some((n, at)) if at.elapsed() < CHAIN_SEQ_EVERY => n,
                    _ => {
                        let n = w
                            .chain
                            .secret_contract(&contract)
                            .await?
                            .map_or(0, |c| c.next_receipt_seq);
                        chain_seq = Some((n, tokio::time::Instant::now()));
                        n
                    }
                };
                let next = w.next_seq_after(&contract, on_chain)?;
                w.contracts().observe_next(contract, next);
                let runs = w.contracts().in_order_runs(&contract);
                if runs != runs_seen {
                    runs_seen = runs;
                    order_deadline = (tokio::time::Instant::now() + w.order_wait).min(order_cap);
                }
            }
            let waited_out = tokio::time::Instant::now() >= order_deadline;
            let step = w.contracts().step(contract, q, current, waited_out);
            match step {
                Step::Run => {
                    // The epoch may have turned while this task looked: a worker that answered
                    // the next holder's hand-over question meanwhile ("nothing pending") must
                    // not run it now.
                    if w.current_epoch().await.unwrap_or(epoch) == current {
                        return Ok(current);
                    }
                    w.contracts().release(contract, &q);
                    w.contracts_moved();
                }
                Step::Refuse(why) => return Err(NodeError::Refused(why)),
                Step::Prepare { epoch: e } => {
                    preparations += 1;
                    let prepared = if preparations > MAX_PREPARATIONS {
                        Err(NodeError::Refused(format!(
                            "contract {contract} is changing hands; retry shortly"
                        )))
                    } else {
                        w.prepare(contract, e).await
                    };
                    w.contracts().prepared(contract, &q, e, prepared.is_ok());
                    w.contracts_moved();
                    prepared?;
                }
                Step::Wait(waiting) => {
                    if waiting == Waiting::Callback {
                        if callback_since.get_or_insert_with(tokio::time::Instant::now).elapsed()
                            > CALLBACK_WAIT
                        {
                            return Err(NodeError::Refused(format!(
                                "contract {contract} waits for the receipt of a task that calls \
                                 Ethereum to land on chain; retry shortly"
                            )));
                        }
                        // The chain's word settles it too, whatever events were missed: asked
                        // now and then (the watcher's event usually comes first), not by every
                        // waiting task at every look.
                        let ask = last_asked.is_none_or(|at| at.elapsed() >= CALLBACK_ASK_EVERY);
                        let barrier = w.contracts().barrier(&contract).filter(|_| ask);
                        if barrier.is_some() {
                            last_asked = Some(tokio::time::Instant::now());
                        }
                        if let Some(task) = barrier
                            && let Some(r) = w.chain.task(&task).await?
                            && r.status != enigma_chain::TaskStatus::Created
                        {
                            // As their events would have: receipts the chain has settled go
                            // first, so the preparation that follows drops a delta the chain did
                            // not keep.
                            w.forget_settled(&contract).await?;
                            w.settle_callback(
                                &task,
                                r.status == enigma_chain::TaskStatus::Verified,
                            );
                            continue;
                        }
                    }
                    let _ = tokio::time::timeout(CHAIN_SEQ_EVERY, changed.changed()).await;
                }
            }
        }
    }

    /// The task ran and its result is persisted; a deploy that succeeded made its contract
    /// current for `deployed_in`; one that `calls_ethereum` holds back the contract's next
    /// tasks until its receipt is settled.
    pub(crate) fn ran(mut self, deployed_in: Option<u64>, calls_ethereum: bool) {
        self.worker.contracts().ran(self.contract, &self.queued, deployed_in, calls_ethereum);
        self.done = true;
        self.worker.contracts_moved();
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.worker.contracts().left(self.contract, &self.queued);
            self.worker.contracts_moved();
        }
    }
}

/// Contracts a worker prepares at once when it takes over at an epoch's start.
const TAKE_OVER_AT_ONCE: usize = 8;

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

    /// Whether this worker keeps a copy of `contract` in the epoch starting at `first_block`
    /// (`WorkerConfig::replicas`): always without a replica count, or when the epoch is unknown.
    pub(crate) async fn keeps(&self, first_block: u64, contract: &ContractAddress) -> bool {
        let Some(k) = self.replicas else { return true };
        let epochs = self.epochs.read().await;
        epochs.by_first_block(first_block).is_none_or(|e| {
            epochs
                .replicas(e, contract, usize::try_from(k).unwrap_or(usize::MAX))
                .contains(&self.signer)
        })
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

    /// The contracts' lines, to decide on (never held across an await).
    pub(crate) fn contracts(&self) -> std::sync::MutexGuard<'_, Contracts> {
        self.contracts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the tasks waiting for their turn.
    pub(crate) fn contracts_moved(&self) {
        self.contracts_changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Puts a task in its contract's line. `None`: it is in line already (a retry).
    pub(crate) fn join_line(
        &self,
        contract: ContractAddress,
        queued: Queued,
    ) -> Result<Option<Turn<'_>>> {
        match self.contracts().arrive(contract, queued).map_err(NodeError::Refused)? {
            Arrival::AlreadyHere => Ok(None),
            Arrival::InLine => Ok(Some(Turn { worker: self, contract, queued, done: false })),
        }
    }

    /// Prepares `contract` for `epoch` in the background (taking over at an epoch's start),
    /// unless it is current or being prepared.
    pub(crate) async fn prepare_in_background(
        &self,
        contract: ContractAddress,
        epoch: u64,
    ) -> Result<()> {
        if !self.contracts().begin_preparing(contract, epoch) {
            return Ok(());
        }
        let prepared = self.prepare(contract, epoch).await;
        self.contracts().prepared_outside(contract, epoch, prepared.is_ok());
        self.contracts_moved();
        prepared
    }

    /// Checks the local copy of `contract` against the chain, waits for the previous holder's
    /// hand-over and syncs what is missing, for `epoch`.
    async fn prepare(&self, contract: ContractAddress, epoch: u64) -> Result<()> {
        let gate = self.gate(contract)?;
        let _gate = gate.lock().await;
        if self.current_epoch().await != Some(epoch) {
            // The epoch ended while this waited for the gate: the next one prepares anew.
            return Ok(());
        }
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
        // The group's first runs its tasks, and the task path keeps it current. The rest of a
        // group hold the state key and answer queries, so they replicate too — holding the
        // contract's line meanwhile (a task sent to one after all waits, and cannot persist a
        // delta while the copy is reconciled), and not while results of their own wait for
        // their receipts.
        if let Some(epoch) = self.current_epoch().await {
            if self.group(epoch, &contract).await.first() == Some(&self.signer) {
                return Ok(());
            }
            if !self.keeps(epoch, &contract).await {
                return Ok(()); // other workers keep this one
            }
            if self.contracts().phase(&contract) == (Phase::Ready { epoch }) {
                if !self.contracts().begin_replicating(contract, epoch) {
                    return Ok(()); // a task holds it
                }
                let pending = self.store.pending_for(&contract);
                let done = match pending {
                    Ok(0) => self.catch_up(contract, Vec::new()).await,
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.into()),
                };
                self.contracts().prepared_outside(contract, epoch, done.is_ok());
                self.contracts_moved();
                return done;
            }
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
                    // Too busy to answer, or slow (many contracts change hands at an epoch's
                    // start): asked again, until the deadline.
                    Ok(Ok(r)) if r.is_busy() => {}
                    Err(_elapsed) => {}
                    Ok(Ok(_)) => return Some(p),
                    // Unreachable: it cannot commit anything either; take over from the chain.
                    Ok(Err(_)) => {
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
        let started = std::time::Instant::now();
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
                        } else if self.keeps(epoch, &c).await {
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
        let (led, kept) = (mine.len(), others.len());
        self.mark_dirty(others);
        // Several at once: a preparation mostly waits (on the previous holder's status, the
        // chain, a sync), and one at a time a worker leading 2,800 contracts took 300 s to be
        // ready for all of them (10,000 contracts; BENCHMARKS.md).
        let failed = std::sync::atomic::AtomicUsize::new(0);
        let ended = std::sync::atomic::AtomicBool::new(false);
        futures::StreamExt::for_each_concurrent(
            futures::stream::iter(mine),
            TAKE_OVER_AT_ONCE,
            |contract| {
                let (this, failed, ended) = (&self, &failed, &ended);
                async move {
                    use std::sync::atomic::Ordering::Relaxed;
                    if ended.load(Relaxed) {
                        return;
                    }
                    if this.current_epoch().await != Some(epoch) {
                        ended.store(true, Relaxed);
                        return;
                    }
                    if let Err(e) = this.prepare_in_background(contract, epoch).await {
                        failed.fetch_add(1, Relaxed);
                        tracing::warn!(%contract, error = %e, "taking over a contract failed; its next task retries");
                    }
                }
            },
        )
        .await;
        let failed = failed.into_inner();
        if ended.into_inner() || self.current_epoch().await != Some(epoch) {
            tracing::info!(
                me = %self.signer,
                epoch,
                led,
                failed,
                seconds = started.elapsed().as_secs_f64(),
                "the epoch ended while this worker took over its contracts; the rest wait for their tasks"
            );
            return;
        }
        tracing::info!(
            me = %self.signer,
            epoch,
            led,
            failed,
            replicas_queued = kept,
            seconds = started.elapsed().as_secs_f64(),
            "took over the contracts this worker leads"
        );
    }

    /// Queues contracts whose chain moved for replication.
    pub(crate) fn mark_dirty(&self, contracts: impl IntoIterator<Item = ContractAddress>) {
        if self.gateway_only {
            return; // a gateway holds no contract's state
        }
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(contracts);
        }
    }

    /// Replicates the contracts queued since the last round.
    pub(crate) async fn replicate_dirty(&self) {
        let dirty: Vec<ContractAddress> =
            self.dirty.lock().map(|mut d| d.drain().collect()).unwrap_or_default();
        if dirty.is_empty() {
            return;
        }
        let (started, count, mut failed) = (std::time::Instant::now(), dirty.len(), 0);
        for contract in dirty {
            if let Err(e) = self.replicate(contract).await {
                tracing::debug!(%contract, error = %e, "replicating a contract failed; retrying later");
                self.mark_dirty([contract]);
                failed += 1;
            }
        }
        tracing::debug!(
            me = %self.signer,
            count,
            failed,
            seconds = started.elapsed().as_secs_f64(),
            "replicated the contracts whose chain moved"
        );
    }

    /// Answers a sync request.
    pub(crate) async fn serve_sync(&self, request: SyncRequest) -> SyncResponse {
        if let SyncRequest::Status { contract } = request {
            // A task of the contract under way counts as a pending receipt: its result is not
            // persisted yet. Looked at before the store, so a run that ends in between is
            // counted there.
            // The epoch first: a task that gets its turn after this read sees the new epoch
            // (and lets go), one that got it before shows as busy.
            let epoch = self.current_epoch().await.unwrap_or(0);
            let busy = self.contracts().busy(&contract);
            let local = self.store.contract(&contract).ok().flatten();
            let pending = self
                .store
                .pending_for(&contract)
                .unwrap_or(u64::MAX)
                .saturating_add(u64::from(busy));
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
