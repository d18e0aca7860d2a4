//! The worker's protocol decisions, without I/O: is a task valid for this worker, where each
//! contract stands and which of its tasks runs next ([`Contracts`]), when receipts go to the
//! chain ([`ReceiptQueue`]), who is admitted ([`Admission`]). The shell feeds it facts and
//! carries out what it returns.

mod contracts;

pub use contracts::{Arrival, Contracts, Phase, Queued, Step, Waiting};

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    hash::Hash,
    net::IpAddr,
};

use enigma_chain::{EpochCache, TaskRecord, TaskStatus};
use enigma_types::{ContractAddress, InputsHash, SignerAddress, TaskId};
use serde::{Deserialize, Serialize};

/// Why a task is refused before execution. The text goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No task record on chain (yet).
    #[error(
        "task {0} has no record on chain; create the task record first (or wait for it to be mined)"
    )]
    NoRecord(TaskId),
    /// The record is no longer open.
    #[error("task {task} is {status:?} on chain, not open")]
    NotOpen {
        /// The task.
        task: TaskId,
        /// Its status.
        status: TaskStatus,
    },
    /// The inputs do not hash to the record's inputs hash.
    #[error(
        "the task's inputs hash to {computed}, but its record on chain says {recorded}: the inputs were altered or belong to another task"
    )]
    InputsMismatch {
        /// From the inputs received.
        computed: InputsHash,
        /// From the chain.
        recorded: InputsHash,
    },
    /// A deploy sent as a compute or the reverse.
    #[error("task {0} is recorded as a {1}, not as what was sent")]
    WrongKind(TaskId, &'static str),
    /// The record names another contract.
    #[error("task {task} is recorded for another contract than {contract}")]
    OtherContract {
        /// The task.
        task: TaskId,
        /// The contract it was sent for.
        contract: ContractAddress,
    },
    /// The epoch of the record is not known.
    #[error("the epoch starting at block {0} is not known to this worker yet; retry shortly")]
    UnknownEpoch(u64),
    /// The record's gas price or limit is outside the task limits this worker holds to.
    #[error(
        "task {task} pays {gas_px} per gas with a limit of {gas_limit}; this worker runs tasks at {min_gas_price} per gas or more with limits up to {max_gas_limit}"
    )]
    OutsideLimits {
        /// The task.
        task: TaskId,
        /// Its gas price.
        gas_px: u64,
        /// Its gas limit.
        gas_limit: u64,
        /// The lowest price run.
        min_gas_price: u64,
        /// The highest limit run.
        max_gas_limit: u64,
    },
    /// Another worker is selected.
    #[error(
        "this worker ({me}) is not selected for contract {contract} in the task's epoch; selected: {selected:?}"
    )]
    NotSelected {
        /// This worker.
        me: SignerAddress,
        /// The contract.
        contract: ContractAddress,
        /// Who is.
        selected: Vec<SignerAddress>,
    },
}

/// Checks a task against its record and the epoch's selection.
pub fn check_task(
    task: TaskId,
    contract: ContractAddress,
    is_deploy: bool,
    computed: InputsHash,
    record: Option<&TaskRecord>,
    epochs: &EpochCache,
    me: SignerAddress,
) -> Result<u64, Refusal> {
    let record = record.ok_or(Refusal::NoRecord(task))?;
    if record.status != TaskStatus::Created {
        return Err(Refusal::NotOpen { task, status: record.status });
    }
    if record.is_deploy != is_deploy {
        return Err(Refusal::WrongKind(
            task,
            if record.is_deploy { "deployment" } else { "compute task" },
        ));
    }
    if !record.names(&contract) {
        return Err(Refusal::OtherContract { task, contract });
    }
    if record.inputs_hash != computed {
        return Err(Refusal::InputsMismatch { computed, recorded: record.inputs_hash });
    }
    let epoch = epochs
        .by_first_block(record.first_block)
        .ok_or(Refusal::UnknownEpoch(record.first_block))?;
    let selected = epochs.group(epoch, &contract);
    if !selected.contains(&me) {
        return Err(Refusal::NotSelected { me, contract, selected });
    }
    Ok(record.first_block)
}

/// Checks a record against the task limits this worker holds to (the chain's, as it read them
/// at start): a second fence behind the chain's own check at recording.
pub fn check_limits(
    task: TaskId,
    record: &TaskRecord,
    limits: &enigma_chain::TaskLimits,
) -> Result<(), Refusal> {
    if record.gas_px < limits.min_gas_price || record.gas_limit > limits.max_gas_limit {
        return Err(Refusal::OutsideLimits {
            task,
            gas_px: record.gas_px,
            gas_limit: record.gas_limit,
            min_gas_price: limits.min_gas_price,
            max_gas_limit: limits.max_gas_limit,
        });
    }
    Ok(())
}

/// How a receipt must be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// A deployment (always alone).
    Deploy,
    /// A deployment that failed (always alone).
    DeployFailure,
    /// A compute task with an Ethereum callback (always alone, at once).
    Callback,
    /// A compute success or failure that may join a batch.
    Batchable,
}

/// A receipt waiting for the chain, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Execution order on this worker.
    pub seq: u64,
    /// The task's sequence number in its contract's records (0 for a deployment).
    #[serde(default)]
    pub record_seq: u64,
    /// The contract.
    pub contract: ContractAddress,
    /// The task.
    pub task: TaskId,
    /// The epoch (first block) of its record.
    pub epoch: u64,
    /// How it commits.
    pub kind: ReceiptKind,
    /// The signed result, encoded (a `ResultMessage`).
    pub result: Vec<u8>,
    /// For a task recorded in a record batch: the batch and the task's proof, kept with the
    /// receipt so it can be committed whatever the node forgot since (a restart, an index that
    /// moved on).
    #[serde(default)]
    pub batch: Option<Box<enigma_chain::ProvenTask>>,
}

/// What to send to the chain now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// One receipt alone.
    Single(Pending),
    /// Several receipts of one contract and epoch, in order.
    Batch(Vec<Pending>),
}

/// Receipts by contract, in execution order; decides when they commit.
#[derive(Debug, Default)]
pub struct ReceiptQueue {
    pending: BTreeMap<ContractAddress, Vec<Pending>>,
    /// Sent to the chain at a block, kept until the chain confirms them (its events at the
    /// confirmation depth) or shows them gone (a reorg), when they are queued again.
    awaiting: BTreeMap<TaskId, (Pending, u64)>,
    batch_size: usize,
}

impl ReceiptQueue {
    /// A queue that commits batches of up to `batch_size`.
    #[must_use]
    pub fn new(batch_size: usize) -> Self {
        Self { pending: BTreeMap::new(), awaiting: BTreeMap::new(), batch_size: batch_size.max(1) }
    }

    /// Queues a receipt.
    pub fn push(&mut self, p: Pending) {
        let list = self.pending.entry(p.contract).or_default();
        list.push(p);
        list.sort_by_key(|p| p.seq);
    }

    /// Receipts queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What to commit now. `flush` commits everything (a timer fired, or the epoch ended);
    /// otherwise only what must go at once and full batches. Receipts of one contract leave in
    /// execution order: the chain checks each against the contract's current delta tip.
    pub fn take(&mut self, flush: bool) -> Vec<Commit> {
        let mut out = Vec::new();
        for list in self.pending.values_mut() {
            while let Some(first) = list.first() {
                if first.kind != ReceiptKind::Batchable {
                    out.push(Commit::Single(list.remove(0)));
                    continue;
                }
                let run = list
                    .iter()
                    .take_while(|p| p.kind == ReceiptKind::Batchable && p.epoch == first.epoch)
                    .count();
                let ends_run = run < list.len();
                if run >= self.batch_size || flush || ends_run {
                    let take = run.min(self.batch_size);
                    let group: Vec<Pending> = list.drain(..take).collect();
                    out.push(if group.len() == 1 {
                        Commit::Single(group.into_iter().next().unwrap_or_else(|| unreachable!()))
                    } else {
                        Commit::Batch(group)
                    });
                    continue;
                }
                break;
            }
        }
        self.pending.retain(|_, l| !l.is_empty());
        out
    }

    /// Forgets a receipt (its commit is confirmed, someone else's is, or its task ended).
    pub fn forget(&mut self, task: &TaskId) {
        for list in self.pending.values_mut() {
            list.retain(|p| p.task != *task);
        }
        self.pending.retain(|_, l| !l.is_empty());
        self.awaiting.remove(task);
    }

    /// Records that `commit` reached the chain in block `block` (not yet confirmed).
    pub fn sent(&mut self, commit: Commit, block: u64) {
        let list = match commit {
            Commit::Single(p) => vec![p],
            Commit::Batch(ps) => ps,
        };
        for p in list {
            self.awaiting.insert(p.task, (p, block));
        }
    }

    /// Receipts sent at least `depth` blocks before `head` whose confirmation has not come:
    /// the shell asks the chain whether each landed (then forgets it) or was reorged away
    /// (then [`resend`](Self::resend)s it).
    #[must_use]
    pub fn overdue(&self, head: u64, depth: u64) -> Vec<Pending> {
        self.awaiting
            .iter()
            .filter(|(_, (_, block))| block.saturating_add(depth) <= head)
            .map(|(_, (p, _))| p.clone())
            .collect()
    }

    /// Queues a sent receipt again: the block that held it was replaced.
    pub fn resend(&mut self, task: &TaskId) {
        if let Some((p, _)) = self.awaiting.remove(task) {
            self.push(p);
        }
    }

    /// Receipts sent and not yet confirmed.
    #[must_use]
    pub fn unconfirmed(&self) -> usize {
        self.awaiting.len()
    }
}

/// Keys remembered with the time they were last seen, the oldest forgotten beyond a cap.
#[derive(Debug)]
pub struct Recent<K> {
    seen: HashMap<K, u64>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Copy + Eq + Hash> Recent<K> {
    /// Remembers at most `cap` keys.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self { seen: HashMap::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    /// Remembers `key` as seen at `now`.
    pub fn insert(&mut self, key: K, now: u64) {
        if self.seen.insert(key, now).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// Whether `key` was seen at or after `since`.
    #[must_use]
    pub fn seen_since(&self, key: &K, since: u64) -> bool {
        self.seen.get(key).is_some_and(|t| *t >= since)
    }

    /// How many keys are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Where a task request came from, for per-source limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A peer of the p2p network (a gateway forwarding a user's task).
    Peer(enigma_p2p::PeerId),
    /// A gateway client's IP address.
    Ip(IpAddr),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Peer(p) => write!(f, "peer {p}"),
            Self::Ip(ip) => write!(f, "address {ip}"),
        }
    }
}

/// Limits on task requests per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Requests of one source in flight at once.
    pub per_source: usize,
    /// Requests in flight from all sources.
    pub total: usize,
    /// Bad requests (an unrecorded task, inputs that do not match their record) a source may
    /// send within `window_ms` before it is banned.
    pub strikes: u32,
    /// The window strikes are counted in.
    pub window_ms: u64,
    /// How long a ban lasts.
    pub ban_ms: u64,
    /// Sources tracked at once (strikes and bans); beyond it the oldest entries go.
    pub max_sources: usize,
}

impl AdmissionLimits {
    /// A gateway's limits on its clients' IP addresses.
    pub const GATEWAY: Self = Self {
        per_source: 32,
        total: 512,
        strikes: 32,
        window_ms: 60_000,
        ban_ms: 600_000,
        max_sources: 100_000,
    };
    /// A worker's limits on the peers that forward tasks to it (gateways: more traffic each).
    pub const PEERS: Self = Self {
        per_source: 32,
        total: 512,
        strikes: 256,
        window_ms: 60_000,
        ban_ms: 600_000,
        max_sources: 10_000,
    };
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    /// The source sent too many bad requests.
    #[error(
        "{from} is banned for {seconds} s more after repeated requests for unrecorded or altered tasks"
    )]
    Banned {
        /// Who.
        from: Source,
        /// Seconds left.
        seconds: u64,
    },
    /// The source has too many requests in flight.
    #[error("{from} has {limit} task requests in flight already; wait for their answers")]
    SourceBusy {
        /// Who.
        from: Source,
        /// The limit.
        limit: usize,
    },
    /// The node has too many requests in flight.
    #[error("the node is busy ({limit} task requests in flight); retry shortly")]
    Busy {
        /// The limit.
        limit: usize,
    },
}

/// Admission of task requests: per-source and total in-flight caps, and bans for sources
/// that keep sending bad requests. Every map is bounded.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    in_flight: HashMap<Source, usize>,
    total: usize,
    /// Strikes in the current window: source → (window start, count).
    strikes: HashMap<Source, (u64, u32)>,
    banned: HashMap<Source, u64>,
}

impl Admission {
    /// Admission under `limits`.
    #[must_use]
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            limits,
            in_flight: HashMap::new(),
            total: 0,
            strikes: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    /// Admits a request of `source` at `now` (ms); [`release`](Self::release) it when answered.
    ///
    /// # Errors
    ///
    /// When the source is banned, or it or the node has too many requests in flight.
    pub fn admit(&mut self, source: Source, now: u64) -> Result<(), NotAdmitted> {
        if let Some(until) = self.banned.get(&source).copied() {
            if until > now {
                return Err(NotAdmitted::Banned {
                    from: source,
                    seconds: (until - now).div_ceil(1000),
                });
            }
            self.banned.remove(&source);
        }
        let mine = self.in_flight.get(&source).copied().unwrap_or(0);
        if mine >= self.limits.per_source {
            return Err(NotAdmitted::SourceBusy { from: source, limit: self.limits.per_source });
        }
        if self.total >= self.limits.total {
            return Err(NotAdmitted::Busy { limit: self.limits.total });
        }
        self.in_flight.insert(source, mine + 1);
        self.total += 1;
        Ok(())
    }

    /// Ends an admitted request.
    pub fn release(&mut self, source: Source) {
        if let Some(n) = self.in_flight.get_mut(&source) {
            *n -= 1;
            self.total = self.total.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&source);
            }
        }
    }

    /// Counts a bad request of `source`; returns whether it is now banned.
    pub fn strike(&mut self, source: Source, now: u64) -> bool {
        let window = self.limits.window_ms;
        let entry = self.strikes.entry(source).or_insert((now, 0));
        if now.saturating_sub(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let banned = entry.1 >= self.limits.strikes;
        if banned {
            self.strikes.remove(&source);
            self.banned.insert(source, now.saturating_add(self.limits.ban_ms));
        }
        // Bounded: drop expired windows and bans, then the oldest, beyond the cap.
        if self.strikes.len() > self.limits.max_sources {
            self.strikes.retain(|_, (start, _)| now.saturating_sub(*start) < window);
            while self.strikes.len() > self.limits.max_sources {
                let oldest = self.strikes.iter().min_by_key(|(_, (t, _))| *t).map(|(s, _)| *s);
                oldest.map(|s| self.strikes.remove(&s));
            }
        }
        if self.banned.len() > self.limits.max_sources {
            self.banned.retain(|_, until| *until > now);
            while self.banned.len() > self.limits.max_sources {
                let first = self.banned.iter().min_by_key(|(_, t)| **t).map(|(s, _)| *s);
                first.map(|s| self.banned.remove(&s));
            }
        }
        banned
    }

    /// Requests in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use enigma_chain::EpochInfo;

    use super::*;

    fn p(seq: u64, contract: u8, epoch: u64, kind: ReceiptKind) -> Pending {
        Pending {
            seq,
            record_seq: seq,
            contract: ContractAddress([contract; 32]),
            task: TaskId([seq as u8; 32]),
            epoch,
            kind,
            result: Vec::new(),
            batch: None,
        }
    }

    #[test]
    fn singles_go_at_once_and_batches_when_full_or_flushed() {
        let mut q = ReceiptQueue::new(3);
        q.push(p(1, 1, 10, ReceiptKind::Deploy));
        q.push(p(2, 1, 10, ReceiptKind::Batchable));
        q.push(p(3, 1, 10, ReceiptKind::Batchable));
        let out = q.take(false);
        assert_eq!(out, vec![Commit::Single(p(1, 1, 10, ReceiptKind::Deploy))]);
        assert_eq!(q.len(), 2);
        q.push(p(4, 1, 10, ReceiptKind::Batchable));
        let out = q.take(false);
        assert!(
            matches!(&out[..], [Commit::Batch(b)] if b.iter().map(|p| p.seq).collect::<Vec<_>>() == [2, 3, 4])
        );
        q.push(p(5, 1, 10, ReceiptKind::Batchable));
        assert!(q.take(false).is_empty());
        assert_eq!(q.take(true), vec![Commit::Single(p(5, 1, 10, ReceiptKind::Batchable))]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_callback_or_a_new_epoch_closes_the_run_before_it() {
        let mut q = ReceiptQueue::new(10);
        q.push(p(1, 1, 10, ReceiptKind::Batchable));
        q.push(p(2, 1, 10, ReceiptKind::Batchable));
        q.push(p(3, 1, 10, ReceiptKind::Callback));
        q.push(p(4, 1, 20, ReceiptKind::Batchable));
        let out = q.take(false);
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Commit::Batch(b) if b.len() == 2));
        assert_eq!(out[1], Commit::Single(p(3, 1, 10, ReceiptKind::Callback)));
        assert_eq!(q.len(), 1, "the next epoch's receipt waits for its batch");
        q.forget(&TaskId([4; 32]));
        assert!(q.is_empty());
    }

    #[test]
    fn sent_receipts_wait_for_confirmation_and_go_again_after_a_reorg() {
        let mut q = ReceiptQueue::new(2);
        q.push(p(1, 1, 10, ReceiptKind::Batchable));
        q.push(p(2, 1, 10, ReceiptKind::Batchable));
        let out = q.take(false);
        assert_eq!(out.len(), 1);
        q.sent(out.into_iter().next().unwrap(), 50);
        assert!(q.is_empty());
        assert_eq!(q.unconfirmed(), 2);
        assert!(q.overdue(51, 2).is_empty(), "not yet deep enough to expect the confirmation");
        let overdue: Vec<TaskId> = q.overdue(52, 2).iter().map(|p| p.task).collect();
        assert_eq!(overdue, vec![TaskId([1; 32]), TaskId([2; 32])]);
        // Task 1's confirmation came; task 2's block was replaced: it goes again, in order.
        q.forget(&TaskId([1; 32]));
        q.resend(&TaskId([2; 32]));
        assert_eq!(q.unconfirmed(), 0);
        q.push(p(3, 1, 10, ReceiptKind::Batchable));
        assert!(
            matches!(&q.take(false)[..], [Commit::Batch(b)] if b.iter().map(|p| p.seq).collect::<Vec<_>>() == [2, 3])
        );
    }

    #[test]
    fn recent_keys_are_bounded_and_dated() {
        let mut r = Recent::new(2);
        r.insert(TaskId([1; 32]), 10);
        r.insert(TaskId([2; 32]), 20);
        r.insert(TaskId([3; 32]), 30);
        assert_eq!(r.len(), 2);
        assert!(!r.seen_since(&TaskId([1; 32]), 0), "the oldest went");
        assert!(r.seen_since(&TaskId([2; 32]), 20));
        assert!(!r.seen_since(&TaskId([2; 32]), 21));
    }

    #[test]
    fn admission_caps_each_source_and_bans_repeat_offenders() {
        let limits = AdmissionLimits {
            per_source: 2,
            total: 3,
            strikes: 3,
            window_ms: 1_000,
            ban_ms: 5_000,
            max_sources: 2,
        };
        let mut a = Admission::new(limits);
        let ip = |n: u8| Source::Ip(IpAddr::from([10, 0, 0, n]));
        assert_eq!(a.admit(ip(1), 0), Ok(()));
        assert_eq!(a.admit(ip(1), 0), Ok(()));
        assert_eq!(a.admit(ip(1), 0), Err(NotAdmitted::SourceBusy { from: ip(1), limit: 2 }));
        assert_eq!(a.admit(ip(2), 0), Ok(()));
        assert_eq!(a.admit(ip(3), 0), Err(NotAdmitted::Busy { limit: 3 }));
        a.release(ip(1));
        assert_eq!(a.admit(ip(3), 0), Ok(()), "a released slot is free again");
        assert_eq!(a.in_flight(), 3);
        for s in [ip(1), ip(1), ip(2), ip(3)] {
            a.release(s);
        }
        assert_eq!(a.in_flight(), 0);
        // Strikes within the window ban; spread over windows they do not.
        assert!(!a.strike(ip(4), 0));
        assert!(!a.strike(ip(4), 1_500));
        assert!(!a.strike(ip(4), 1_600));
        assert!(a.strike(ip(4), 1_700));
        assert!(matches!(a.admit(ip(4), 2_000), Err(NotAdmitted::Banned { seconds: 5, .. })));
        assert_eq!(a.admit(ip(4), 6_700), Ok(()), "the ban ends");
        // Bounded: many offenders keep at most `max_sources` entries.
        for n in 10..100 {
            a.strike(ip(n), 7_000);
        }
        assert!(a.strikes.len() <= 2);
    }

    #[test]
    fn task_checks_name_what_is_wrong() {
        let me = SignerAddress([1; 20]);
        let other = SignerAddress([2; 20]);
        let mut epochs = EpochCache::new(1);
        epochs.insert(EpochInfo {
            nonce: 0,
            seed: [0; 32],
            first_block: 100,
            snapshot_block: 99,
            workers: vec![me, other],
            stakes: vec![1, 0],
        });
        let record = TaskRecord {
            sender: enigma_types::Address([0; 20]),
            is_deploy: false,
            status: TaskStatus::Created,
            inputs_hash: InputsHash([5; 32]),
            gas_limit: 1,
            gas_px: 1,
            epoch: 0,
            first_block: 100,
            created_at: 101,
            seq: 0,
            contract_tag: [3; 12],
            value: 0,
        };
        let c = ContractAddress([3; 32]);
        let t = TaskId([4; 32]);
        assert_eq!(
            check_task(t, c, false, InputsHash([5; 32]), Some(&record), &epochs, me),
            Ok(100)
        );
        assert_eq!(
            check_task(t, c, false, InputsHash([5; 32]), None, &epochs, me),
            Err(Refusal::NoRecord(t))
        );
        assert!(matches!(
            check_task(t, c, false, InputsHash([6; 32]), Some(&record), &epochs, me),
            Err(Refusal::InputsMismatch { .. })
        ));
        assert!(matches!(
            check_task(t, c, true, InputsHash([5; 32]), Some(&record), &epochs, me),
            Err(Refusal::WrongKind(..))
        ));
        assert!(matches!(
            check_task(t, c, false, InputsHash([5; 32]), Some(&record), &epochs, other),
            Err(Refusal::NotSelected { .. })
        ));
        assert_eq!(
            check_task(
                t,
                ContractAddress([7; 32]),
                false,
                InputsHash([5; 32]),
                Some(&record),
                &epochs,
                me
            ),
            Err(Refusal::OtherContract { task: t, contract: ContractAddress([7; 32]) })
        );
        let done = TaskRecord { status: TaskStatus::Verified, ..record };
        assert!(matches!(
            check_task(t, c, false, InputsHash([5; 32]), Some(&done), &epochs, me),
            Err(Refusal::NotOpen { .. })
        ));
        let limits = enigma_chain::TaskLimits { min_gas_price: 1, max_gas_limit: 1 };
        assert_eq!(check_limits(t, &record, &limits), Ok(()));
        let free = TaskRecord { gas_px: 0, ..record };
        assert!(matches!(check_limits(t, &free, &limits), Err(Refusal::OutsideLimits { .. })));
        let big = TaskRecord { gas_limit: 2, ..record };
        assert!(matches!(check_limits(t, &big, &limits), Err(Refusal::OutsideLimits { .. })));
        let later = TaskRecord { first_block: 200, ..record };
        assert_eq!(
            check_task(t, c, false, InputsHash([5; 32]), Some(&later), &epochs, me),
            Err(Refusal::UnknownEpoch(200))
        );
    }
}
