//! The worker's protocol decisions, without I/O: is a task valid for this worker, and when do
//! receipts go to the chain. The shell feeds it facts and carries out what it returns.

use std::collections::BTreeMap;

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
    batch_size: usize,
}

impl ReceiptQueue {
    /// A queue that commits batches of up to `batch_size`.
    #[must_use]
    pub fn new(batch_size: usize) -> Self {
        Self { pending: BTreeMap::new(), batch_size: batch_size.max(1) }
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

    /// Forgets a receipt (committed by someone, or its task ended).
    pub fn forget(&mut self, task: &TaskId) {
        for list in self.pending.values_mut() {
            list.retain(|p| p.task != *task);
        }
        self.pending.retain(|_, l| !l.is_empty());
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
        let later = TaskRecord { first_block: 200, ..record };
        assert_eq!(
            check_task(t, c, false, InputsHash([5; 32]), Some(&later), &epochs, me),
            Err(Refusal::UnknownEpoch(200))
        );
    }
}
