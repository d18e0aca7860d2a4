//! Record batches (`EnigmaBatches`; docs/api.md, section 7, "Record batches"): compute tasks
//! recorded as one Merkle root per batch, and the proofs their receipts and refunds carry.
//!
//! A task's leaf is `keccak256(abi.encode(taskId, scAddr, inputsHash, gasLimit, gasPx, seq,
//! value))`; each level of the tree pairs neighbours as `keccak256(left ‖ right)`, a zero hash
//! standing in for a missing right neighbour, until one node is left: the root. A proof is the
//! sibling at each level, leaf first.

use enigma_types::{Address, ContractAddress, InputsHash, TaskId, keccak256, task_id};

/// The most tasks in one record batch (the contract's `MAX_RECORD_BATCH`).
pub const MAX_RECORD_BATCH: usize = 255;

/// One task of a record batch, as its leaf commits to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchedTask {
    /// `keccak256(sender ‖ uint256(nonce))`, as for any task.
    pub task_id: TaskId,
    /// The contract it runs on.
    pub contract: ContractAddress,
    /// The hash of its encrypted inputs.
    pub inputs_hash: InputsHash,
    /// Its gas limit.
    pub gas_limit: u64,
    /// Its gas price (grains per unit of gas; the batch's).
    pub gas_px: u64,
    /// Its place in its contract's order.
    pub seq: u64,
    /// ENG escrowed with it for the contract.
    pub value: u128,
}

impl BatchedTask {
    /// The task's leaf.
    #[must_use]
    pub fn leaf(&self) -> [u8; 32] {
        let mut words = [0u8; 7 * 32];
        words[..32].copy_from_slice(&self.task_id.0);
        words[32..64].copy_from_slice(&self.contract.0);
        words[64..96].copy_from_slice(&self.inputs_hash.0);
        words[120..128].copy_from_slice(&self.gas_limit.to_be_bytes());
        words[152..160].copy_from_slice(&self.gas_px.to_be_bytes());
        words[184..192].copy_from_slice(&self.seq.to_be_bytes());
        words[208..224].copy_from_slice(&self.value.to_be_bytes());
        keccak256(words)
    }
}

/// A record batch: its sender and its tasks in order (what `TaskBatchCreated` says), from which
/// the root and every task's proof follow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordBatch {
    /// Who recorded (and pays for) the tasks.
    pub sender: Address,
    /// The first block of the epoch the tasks were recorded in.
    pub first_block: u64,
    /// The tasks, in the order recorded.
    pub tasks: Vec<BatchedTask>,
}

impl RecordBatch {
    /// The batch of `sender`'s tasks with nonces from `nonce`: `(contract, inputs hash, gas limit,
    /// value)` each, at the given sequence numbers. None unless there are 1 to
    /// [`MAX_RECORD_BATCH`] tasks, as many sequence numbers, and nonces that fit in 64 bits.
    #[must_use]
    pub fn new(
        sender: Address,
        first_block: u64,
        nonce: u64,
        gas_px: u64,
        tasks: &[(ContractAddress, InputsHash, u64, u128)],
        seqs: &[u64],
    ) -> Option<Self> {
        if tasks.is_empty() || tasks.len() > MAX_RECORD_BATCH || seqs.len() != tasks.len() {
            return None;
        }
        nonce.checked_add(tasks.len() as u64 - 1)?;
        let tasks = tasks
            .iter()
            .zip(seqs)
            .enumerate()
            .map(|(i, (&(contract, inputs_hash, gas_limit, value), &seq))| BatchedTask {
                task_id: task_id(&sender, nonce + i as u64),
                contract,
                inputs_hash,
                gas_limit,
                gas_px,
                seq,
                value,
            })
            .collect();
        Some(Self { sender, first_block, tasks })
    }

    /// The batch's root, its key on chain.
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        self.levels().last().and_then(|top| top.first().copied()).unwrap_or([0; 32])
    }

    /// Task `index` with its proof, as a receipt or refund shows it (None past the end).
    #[must_use]
    pub fn proven(&self, index: usize) -> Option<ProvenTask> {
        let levels = self.levels();
        Some(ProvenTask {
            root: levels.last()?[0],
            index,
            task: *self.tasks.get(index)?,
            proof: proof_in(&levels, index),
        })
    }

    /// Every task with its proof, in order (the tree built once).
    #[must_use]
    pub fn all_proven(&self) -> Vec<ProvenTask> {
        let levels = self.levels();
        let Some(&[root, ..]) = levels.last().map(Vec::as_slice) else { return Vec::new() };
        self.tasks
            .iter()
            .enumerate()
            .map(|(index, &task)| ProvenTask { root, index, task, proof: proof_in(&levels, index) })
            .collect()
    }

    /// The tree, leaves first, up to the root (empty for no tasks).
    fn levels(&self) -> Vec<Vec<[u8; 32]>> {
        let mut levels = vec![self.tasks.iter().map(BatchedTask::leaf).collect::<Vec<_>>()];
        if levels[0].is_empty() {
            return Vec::new();
        }
        while levels.last().is_some_and(|l| l.len() > 1) {
            let up = levels.last().map_or_else(Vec::new, |l| {
                l.chunks(2).map(|p| node(&p[0], p.get(1).unwrap_or(&[0; 32]))).collect()
            });
            levels.push(up);
        }
        levels
    }
}

/// The sibling of `index`'s path at each level below the root.
fn proof_in(levels: &[Vec<[u8; 32]>], index: usize) -> Vec<[u8; 32]> {
    levels[..levels.len().saturating_sub(1)]
        .iter()
        .enumerate()
        .map(|(k, level)| level.get((index >> k) ^ 1).copied().unwrap_or([0; 32]))
        .collect()
}

/// A task of a record batch with what proves it: its batch's root, its place and the siblings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProvenTask {
    /// The batch's root.
    pub root: [u8; 32],
    /// The task's place in the batch.
    pub index: usize,
    /// The task, as recorded.
    pub task: BatchedTask,
    /// Its sibling at each level, leaf first.
    pub proof: Vec<[u8; 32]>,
}

/// A record batch as the chain keeps it (`getRecordBatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchInfo {
    /// Who recorded it.
    pub sender: Address,
    /// The epoch it was recorded in.
    pub epoch: u64,
    /// The block it was recorded in.
    pub created_at: u64,
    /// Its number of tasks.
    pub count: usize,
    /// Bit i set: task i awaits its receipt or refund (bit 255 is always set).
    pub open: [u8; 32],
}

impl RecordBatchInfo {
    /// Whether task `index` awaits its receipt or refund.
    #[must_use]
    pub fn is_open(&self, index: usize) -> bool {
        index < self.count && self.open[31 - index / 8] >> (index % 8) & 1 == 1
    }
}

/// The record batches a process knows (its own, or those its chain watcher saw): each task's
/// batch, so its record and proof can be found without a record per task on chain. Bounded: past
/// [`BatchIndex::MAX_TASKS`] tasks the earliest batches are forgotten (their tasks are long
/// past their timeout, or the process is behind by more than that many tasks).
#[derive(Debug)]
pub struct BatchIndex {
    batches: std::collections::HashMap<[u8; 32], RecordBatch>,
    tasks: std::collections::HashMap<TaskId, ([u8; 32], usize)>,
    order: std::collections::VecDeque<[u8; 32]>,
    max_tasks: usize,
}

impl Default for BatchIndex {
    fn default() -> Self {
        Self::with_bound(Self::MAX_TASKS)
    }
}

impl BatchIndex {
    /// The most tasks kept by default (about 75 MB at most, more if they come in batches of one).
    pub const MAX_TASKS: usize = 262_144;

    /// An index keeping at most `max_tasks` tasks (the latest batch is always kept whole).
    #[must_use]
    pub fn with_bound(max_tasks: usize) -> Self {
        Self {
            batches: std::collections::HashMap::new(),
            tasks: std::collections::HashMap::new(),
            order: std::collections::VecDeque::new(),
            max_tasks,
        }
    }

    /// Remembers `batch` (again: nothing changes).
    pub fn insert(&mut self, batch: RecordBatch) {
        let root = batch.root();
        if self.batches.contains_key(&root) {
            return;
        }
        for (i, t) in batch.tasks.iter().enumerate() {
            self.tasks.insert(t.task_id, (root, i));
        }
        self.batches.insert(root, batch);
        self.order.push_back(root);
        while self.tasks.len() > self.max_tasks && self.order.len() > 1 {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(b) = self.batches.remove(&oldest) {
                for t in &b.tasks {
                    if self.tasks.get(&t.task_id).is_some_and(|(r, _)| *r == oldest) {
                        self.tasks.remove(&t.task_id);
                    }
                }
            }
        }
    }

    /// The batch a task was recorded in, with the task's place in it.
    #[must_use]
    pub fn find(&self, task: &TaskId) -> Option<(&RecordBatch, usize)> {
        let (root, index) = self.tasks.get(task)?;
        Some((self.batches.get(root)?, *index))
    }

    /// Tasks known.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// What the enclave reported for one task of a receipt batch, as the packed format carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedOutcome<'a> {
    /// Its delta hash (zero if none or failed).
    pub delta_hash: [u8; 32],
    /// Its output hash.
    pub output_hash: [u8; 32],
    /// Gas used.
    pub gas_used: u64,
    /// 1 success, 0 failure.
    pub status: u8,
    /// Its payouts, packed.
    pub payouts: &'a [u8],
}

/// The receipts of batch-recorded tasks, in the contract's order, as `commitBatchReceipts` reads
/// them (docs/api.md section 7, "Packed receipt batches"): `u16 n`, then runs of consecutive
/// tasks of one record batch with rising indices, each `root(32) ‖ gasPx(8) ‖ k(1)`, its `k`
/// tasks `index(1) ‖ taskId(32) ‖ inputsHash(32) ‖ gasLimit(8) ‖ seq(4) ‖ value(16) ‖
/// deltaHash(32) ‖ outputHash(32) ‖ gasUsed(8) ‖ status(1) ‖ payoutsLength(2) ‖ payouts`, and
/// the run's multiproof `p(1) ‖ p siblings(32 each)`. Each task's proof supplies the siblings
/// (so a proof that was tampered with yields a multiproof the contract refuses). None if a field
/// does not fit its width (more than 65,535 tasks or payout bytes, a sequence number past
/// 32 bits, an index past 255).
#[must_use]
pub fn pack_receipts(items: &[(&ProvenTask, PackedOutcome<'_>)]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(2 + items.len() * 240);
    out.extend_from_slice(&u16::try_from(items.len()).ok()?.to_be_bytes());
    let mut start = 0;
    while start < items.len() {
        let root = items[start].0.root;
        let mut end = start + 1;
        while end < items.len()
            && end - start < MAX_RECORD_BATCH
            && items[end].0.root == root
            && items[end].0.index > items[end - 1].0.index
        {
            end += 1;
        }
        let run = &items[start..end];
        out.extend_from_slice(&root);
        out.extend_from_slice(&run[0].0.task.gas_px.to_be_bytes());
        out.push(u8::try_from(run.len()).ok()?);
        for (t, o) in run {
            out.push(u8::try_from(t.index).ok()?);
            out.extend_from_slice(&t.task.task_id.0);
            out.extend_from_slice(&t.task.inputs_hash.0);
            out.extend_from_slice(&t.task.gas_limit.to_be_bytes());
            out.extend_from_slice(&u32::try_from(t.task.seq).ok()?.to_be_bytes());
            out.extend_from_slice(&t.task.value.to_be_bytes());
            out.extend_from_slice(&o.delta_hash);
            out.extend_from_slice(&o.output_hash);
            out.extend_from_slice(&o.gas_used.to_be_bytes());
            out.push(o.status);
            out.extend_from_slice(&u16::try_from(o.payouts.len()).ok()?.to_be_bytes());
            out.extend_from_slice(o.payouts);
        }
        let proof = multiproof(run.iter().map(|(t, _)| *t));
        out.push(u8::try_from(proof.len()).ok()?);
        for sibling in &proof {
            out.extend_from_slice(sibling);
        }
        start = end;
    }
    Some(out)
}

/// The siblings that tasks of one batch (rising indices) need together to reach its root, level
/// by level and left to right, as the contract consumes them: a node's sibling is given unless
/// it is the next node of the run or missing (a zero sibling in the task's proof: the level has
/// no right neighbour there).
fn multiproof<'a>(run: impl Iterator<Item = &'a ProvenTask>) -> Vec<[u8; 32]> {
    let mut live: Vec<(usize, &ProvenTask)> = run.map(|t| (t.index, t)).collect();
    let levels = live.iter().map(|(_, t)| t.proof.len()).max().unwrap_or(0);
    let mut proof = Vec::new();
    for k in 0..levels {
        let mut next = Vec::with_capacity(live.len().div_ceil(2));
        let mut j = 0;
        while j < live.len() {
            let (index, t) = live[j];
            let paired = index % 2 == 0 && live.get(j + 1).is_some_and(|n| n.0 == index + 1);
            if paired {
                j += 1;
            } else if let Some(sibling) =
                t.proof.get(k).filter(|s| index % 2 == 1 || **s != [0; 32])
            {
                proof.push(*sibling);
            }
            next.push((index >> 1, t));
            j += 1;
        }
        live = next;
    }
    proof
}

/// Whether `proof` leads from `leaf` at `index` of a batch of `count` tasks to `root` (as the
/// contract checks it).
#[must_use]
pub fn proves(
    leaf: [u8; 32],
    index: usize,
    count: usize,
    proof: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if index >= count || proof.len() != depth(count) {
        return false;
    }
    let h = proof.iter().enumerate().fold(leaf, |h, (k, sibling)| {
        if (index >> k) & 1 == 0 { node(&h, sibling) } else { node(sibling, &h) }
    });
    h == root
}

/// Levels above the leaves in a tree of `count` leaves.
fn depth(count: usize) -> usize {
    let mut d = 0;
    while (1usize << d) < count {
        d += 1;
    }
    d
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(left);
    both[32..].copy_from_slice(right);
    keccak256(both)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> RecordBatch {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                (ContractAddress([i as u8 % 3; 32]), InputsHash([i as u8; 32]), 1_000 + i as u64, 0)
            })
            .collect();
        let seqs: Vec<u64> = (0..n as u64).collect();
        RecordBatch::new(Address([7; 20]), 10, 5, 2, &tasks, &seqs).unwrap()
    }

    #[test]
    fn every_task_of_any_size_proves_against_the_root_and_no_other_place() {
        for n in [1, 2, 3, 5, 8, 16, 17, 64, 255] {
            let b = batch(n);
            let root = b.root();
            let all = b.all_proven();
            assert_eq!(all.len(), n);
            for (i, t) in b.tasks.iter().enumerate() {
                let proof = all[i].proof.clone();
                if i % 17 == 0 {
                    assert_eq!(all[i], b.proven(i).unwrap());
                }
                assert_eq!(proof.len(), depth(n), "batch of {n}");
                assert!(proves(t.leaf(), i, n, &proof, root), "task {i} of {n}");
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(
                        !proves(t.leaf(), other, n, &proof, root),
                        "task {i} at {other} of {n}"
                    );
                }
            }
            assert!(b.proven(n).is_none());
        }
    }

    #[test]
    fn a_changed_field_or_a_truncated_proof_does_not_prove() {
        let b = batch(16);
        let root = b.root();
        let proof = b.proven(3).unwrap().proof;
        let mut t = b.tasks[3];
        t.value = 1;
        assert!(!proves(t.leaf(), 3, 16, &proof, root));
        let mut t = b.tasks[3];
        t.seq += 1;
        assert!(!proves(t.leaf(), 3, 16, &proof, root));
        assert!(!proves(b.tasks[3].leaf(), 3, 16, &proof[..3], root));
        // The same tasks counted as a larger batch need a longer proof.
        assert!(!proves(b.tasks[3].leaf(), 3, 17, &proof, root));
    }

    #[test]
    fn empty_oversized_ragged_and_overflowing_batches_are_none() {
        let task = (ContractAddress([1; 32]), InputsHash([2; 32]), 10, 0);
        let new = |n: usize, seqs: usize, nonce: u64| {
            RecordBatch::new(Address([7; 20]), 1, nonce, 1, &vec![task; n], &vec![0; seqs])
        };
        assert!(new(0, 0, 0).is_none());
        assert!(new(MAX_RECORD_BATCH + 1, MAX_RECORD_BATCH + 1, 0).is_none());
        assert!(new(3, 2, 0).is_none());
        assert!(new(2, 2, u64::MAX).is_none());
        assert!(new(1, 1, u64::MAX).is_some());
        assert!(new(MAX_RECORD_BATCH, MAX_RECORD_BATCH, 0).is_some());
    }

    #[test]
    fn the_index_finds_each_task_and_forgets_the_earliest_batches_past_its_bound() {
        let mut index = BatchIndex::with_bound(1_000);
        let first = batch(3);
        index.insert(first.clone());
        index.insert(first.clone());
        assert_eq!(index.len(), 3);
        let (b, i) = index.find(&first.tasks[2].task_id).unwrap();
        assert_eq!((b.root(), i), (first.root(), 2));
        // Batches of other senders until the bound is passed: the first goes.
        let task = (ContractAddress([1; 32]), InputsHash([2; 32]), 10, 0);
        let tasks = vec![task; MAX_RECORD_BATCH];
        let seqs = vec![0; MAX_RECORD_BATCH];
        for k in 0..4u64 {
            let sender = Address([(k % 251) as u8; 20]);
            let b = RecordBatch::new(sender, 1, k * 1_000, 1, &tasks, &seqs).unwrap();
            index.insert(b);
        }
        assert!(index.len() <= 1_000);
        assert!(index.find(&first.tasks[0].task_id).is_none());
    }

    #[test]
    fn task_ids_follow_the_senders_nonces() {
        let b = batch(3);
        for (i, t) in b.tasks.iter().enumerate() {
            assert_eq!(t.task_id, task_id(&Address([7; 20]), 5 + i as u64));
        }
    }
}
