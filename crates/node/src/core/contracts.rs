//! Each contract's life on this worker, decided without I/O: whether it is prepared for the
//! current epoch, which of its tasks runs next (in the chain's record order, one at a time), and
//! when it has been handed over. The shell (`worker.rs`, `handover.rs`) feeds it facts — a task
//! arrived, the chain's receipt count, a preparation ended, a run ended, an epoch turned — and
//! carries out the [`Step`] it returns.
//!
//! ```text
//!            epoch turns, selected            preparation ok
//!   Idle ───────────────────────► Syncing ───────────────────► Ready ──┐ a run at a time,
//!    ▲  ◄──────────────────────────  │    preparation failed     │  ◄──┘ in record order
//!    │                               │                           │ epoch turns, not selected
//!    └──── receipts all confirmed ── HandingOver ◄───────────────┘
//! ```

use std::collections::{BTreeSet, HashMap};

use enigma_types::{ContractAddress, TaskId};

/// Where a contract stands on this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not prepared for the current epoch: the next task prepares it.
    Idle,
    /// Being prepared for the epoch starting at `epoch`: its local copy checked against the
    /// chain, the previous holder's hand-over awaited, what it lacks synced.
    Syncing {
        /// The epoch (its first block).
        epoch: u64,
    },
    /// Current for `epoch`: its tasks run.
    Ready {
        /// The epoch (its first block).
        epoch: u64,
    },
    /// This worker held it in `epoch` and is not selected in the next: no new task runs, its
    /// receipts still go to the chain, and the next holder waits until none is pending.
    HandingOver {
        /// The epoch it held it in.
        epoch: u64,
    },
}

/// What a task should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run now: the task holds the contract until [`Contracts::ran`] or [`Contracts::left`].
    Run,
    /// Prepare the contract for `epoch` first (this task does it), then ask again with
    /// [`Contracts::prepared`].
    Prepare {
        /// The epoch to prepare for.
        epoch: u64,
    },
    /// Wait for a change (a run or a preparation to end, an earlier task to arrive) and ask
    /// again.
    Wait(Waiting),
    /// Do not run it; the text goes to the client.
    Refuse(String),
}

/// Why a task waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Another task prepares the contract.
    Preparation,
    /// Another task of the contract runs.
    Run,
    /// A task recorded before it has not run yet.
    Order,
    /// A task before it called Ethereum: its receipt, and so whether the chain kept its state,
    /// is not settled yet.
    Callback,
}

/// How a task's arrival went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It waits in line.
    InLine,
    /// It was already in line or running (a retry): the first arrival carries it.
    AlreadyHere,
}

/// A task as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// The task.
    pub task: TaskId,
    /// Its record's sequence number among the contract's tasks (deploys: 0).
    pub seq: u64,
    /// Whether it deploys the contract.
    pub deploy: bool,
}

#[derive(Debug)]
struct Line {
    phase: Phase,
    /// The lowest record sequence number that may still run: past the last run here and past
    /// what the chain has committed.
    next: u64,
    /// Tasks waiting here, by sequence number.
    queue: BTreeSet<(u64, TaskId)>,
    /// The task that holds the contract (running, or preparing it).
    holder: Option<TaskId>,
    /// A task that ran and calls Ethereum, whose receipt is not settled: the next task runs
    /// once the chain says whether it kept that task's state.
    barrier: Option<TaskId>,
    /// The local copy was found off the chain while a preparation ran: that preparation may
    /// have kept what the chain dropped, so it does not make the contract ready.
    invalidated: bool,
    /// Tasks that ran in turn (each the next in record order, none passed over): a task
    /// waiting for earlier ones waits on while this moves.
    in_order: u64,
}

impl Line {
    fn new() -> Self {
        Self {
            phase: Phase::Idle,
            next: 0,
            queue: BTreeSet::new(),
            holder: None,
            barrier: None,
            invalidated: false,
            in_order: 0,
        }
    }

    fn idle(&self) -> bool {
        self.phase == Phase::Idle
            && self.queue.is_empty()
            && self.holder.is_none()
            && self.barrier.is_none()
    }
}

/// Every contract's line on this worker, with one bound on the tasks waiting across them.
#[derive(Debug)]
pub struct Contracts {
    lines: HashMap<ContractAddress, Line>,
    waiting: usize,
    max_waiting: usize,
}

impl Contracts {
    /// No contract prepared; at most `max_waiting` tasks wait at once (over all contracts).
    #[must_use]
    pub fn new(max_waiting: usize) -> Self {
        Self { lines: HashMap::new(), waiting: 0, max_waiting: max_waiting.max(1) }
    }

    /// Where `contract` stands.
    #[must_use]
    pub fn phase(&self, contract: &ContractAddress) -> Phase {
        self.lines.get(contract).map_or(Phase::Idle, |l| l.phase)
    }

    /// Tasks waiting, over all contracts.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Whether a task of `contract` is running (or preparing it): its results are not all
    /// persisted yet.
    #[must_use]
    pub fn busy(&self, contract: &ContractAddress) -> bool {
        self.lines.get(contract).is_some_and(|l| l.holder.is_some())
    }

    /// A task arrives. Refused when as many tasks already wait as the bound allows, or when a
    /// task with its sequence number (or a later one) already ran; otherwise it waits in line
    /// until [`Contracts::step`] says it runs, and leaves with [`Contracts::ran`] or
    /// [`Contracts::left`]. A task already in line (a retry) is [`Arrival::AlreadyHere`]: the
    /// one in line answers.
    pub fn arrive(&mut self, contract: ContractAddress, t: Queued) -> Result<Arrival, String> {
        let line = self.lines.entry(contract).or_insert_with(Line::new);
        if line.queue.contains(&(t.seq, t.task)) || line.holder == Some(t.task) {
            return Ok(Arrival::AlreadyHere);
        }
        if !t.deploy && t.seq < line.next {
            let refusal = already_ran(&t, &contract, line.next);
            if line.idle() {
                self.lines.remove(&contract);
            }
            return Err(refusal);
        }
        if self.waiting >= self.max_waiting {
            if line.idle() {
                self.lines.remove(&contract);
            }
            return Err(format!(
                "the worker already has {} tasks waiting; retry shortly",
                self.max_waiting
            ));
        }
        line.queue.insert((t.seq, t.task));
        self.waiting += 1;
        Ok(Arrival::InLine)
    }

    /// What task `t` (which arrived) does now, in the epoch starting at `current`. `waited_out`:
    /// it has waited as long as it may for tasks recorded before it, which then lose their turn
    /// (the chain skips them; their fees return after its timeout).
    pub fn step(
        &mut self,
        contract: ContractAddress,
        t: Queued,
        current: u64,
        waited_out: bool,
    ) -> Step {
        let Some(line) = self.lines.get_mut(&contract) else {
            return Step::Refuse(format!("task {} is not in line here", t.task));
        };
        if let Some(holder) = line.holder {
            return if holder == t.task {
                Step::Refuse(format!("task {} already holds contract {contract}", t.task))
            } else {
                Step::Wait(Waiting::Run)
            };
        }
        if !t.deploy {
            if t.seq < line.next {
                let refusal = already_ran(&t, &contract, line.next);
                Self::dequeue(&mut self.waiting, line, &t);
                return Step::Refuse(refusal);
            }
            if line.barrier.is_some() {
                return Step::Wait(Waiting::Callback);
            }
            match line.phase {
                Phase::Ready { epoch } if epoch == current => {}
                Phase::Syncing { epoch } if epoch == current => {
                    return Step::Wait(Waiting::Preparation);
                }
                _ => {
                    line.phase = Phase::Syncing { epoch: current };
                    line.invalidated = false;
                    line.holder = Some(t.task);
                    return Step::Prepare { epoch: current };
                }
            }
            let earlier_here =
                line.queue.first().is_some_and(|(seq, task)| (*seq, *task) < (t.seq, t.task));
            if t.seq > line.next && (earlier_here || !waited_out) {
                return Step::Wait(Waiting::Order);
            }
        }
        line.holder = Some(t.task);
        Step::Run
    }

    /// The preparation task `t` asked for ended (`ok`: the contract is current for `epoch`).
    pub fn prepared(&mut self, contract: ContractAddress, t: &Queued, epoch: u64, ok: bool) {
        if let Some(line) = self.lines.get_mut(&contract) {
            if line.holder == Some(t.task) {
                line.holder = None;
            }
            if line.phase == (Phase::Syncing { epoch }) {
                line.phase =
                    if ok && !line.invalidated { Phase::Ready { epoch } } else { Phase::Idle };
            }
        }
    }

    /// Task `t`, given [`Step::Run`], does not run after all (the epoch turned just then): it
    /// lets go of the contract and stays in line.
    pub fn release(&mut self, contract: ContractAddress, t: &Queued) {
        if let Some(line) = self.lines.get_mut(&contract)
            && line.holder == Some(t.task)
        {
            line.holder = None;
        }
    }

    /// Whether task `task` of `contract` is in line or holds it.
    #[must_use]
    pub fn holds(&self, contract: &ContractAddress, task: &TaskId) -> bool {
        self.lines
            .get(contract)
            .is_some_and(|l| l.holder == Some(*task) || l.queue.iter().any(|(_, t)| t == task))
    }

    /// The task the contract's next task waits on (one that calls Ethereum), if any.
    #[must_use]
    pub fn barrier(&self, contract: &ContractAddress) -> Option<TaskId> {
        self.lines.get(contract).and_then(|l| l.barrier)
    }

    /// Contracts being handed over.
    #[must_use]
    pub fn handing_over(&self) -> Vec<ContractAddress> {
        self.lines
            .iter()
            .filter(|(_, l)| matches!(l.phase, Phase::HandingOver { .. }))
            .map(|(c, _)| *c)
            .collect()
    }

    /// Task `t` ran (its result is persisted): the next one may go — after its receipt is
    /// settled if it `calls_ethereum` ([`Contracts::receipt_settled`]). A deploy that succeeded
    /// leaves its contract ready for `epoch`.
    pub fn ran(
        &mut self,
        contract: ContractAddress,
        t: &Queued,
        deployed_in: Option<u64>,
        calls_ethereum: bool,
    ) {
        let Some(line) = self.lines.get_mut(&contract) else { return };
        if line.holder == Some(t.task) {
            line.holder = None;
        }
        if calls_ethereum && !t.deploy {
            line.barrier = Some(t.task);
        }
        if !t.deploy {
            if t.seq == line.next {
                line.in_order += 1;
            }
            line.next = line.next.max(t.seq + 1);
        }
        if let Some(epoch) = deployed_in {
            line.phase = Phase::Ready { epoch };
        }
        Self::dequeue(&mut self.waiting, line, t);
    }

    /// Task `t` leaves without having run (refused, failed, or its requester gone).
    pub fn left(&mut self, contract: ContractAddress, t: &Queued) {
        let Some(line) = self.lines.get_mut(&contract) else { return };
        if line.holder == Some(t.task) {
            line.holder = None;
            if matches!(line.phase, Phase::Syncing { .. }) {
                line.phase = Phase::Idle;
            }
        }
        Self::dequeue(&mut self.waiting, line, t);
        if line.idle() {
            self.lines.remove(&contract);
        }
    }

    /// The lowest sequence number that may still run, as the shell learned it: the chain's next
    /// receipt number, or what this worker's store says it ran last (plus one).
    pub fn observe_next(&mut self, contract: ContractAddress, next: u64) {
        if let Some(line) = self.lines.get_mut(&contract) {
            line.next = line.next.max(next);
        }
    }

    /// The lowest sequence number that may still run, as far as the machine knows.
    #[must_use]
    pub fn next(&self, contract: &ContractAddress) -> Option<u64> {
        self.lines.get(contract).map(|l| l.next)
    }

    /// How many of the contract's tasks ran in turn (the next in record order, none passed
    /// over) while it had a line here: what a task waiting for earlier ones watches.
    #[must_use]
    pub fn in_order_runs(&self, contract: &ContractAddress) -> Option<u64> {
        self.lines.get(contract).map(|l| l.in_order)
    }

    /// A preparation outside any task (taking over at an epoch's start, replicating): returns
    /// whether the caller should prepare `contract` for `epoch` now (nobody else does, and it
    /// is not current yet). The caller ends it with [`Contracts::prepared_outside`].
    pub fn begin_preparing(&mut self, contract: ContractAddress, epoch: u64) -> bool {
        let line = self.lines.entry(contract).or_insert_with(Line::new);
        if line.holder.is_some()
            || line.phase == (Phase::Ready { epoch })
            || line.phase == (Phase::Syncing { epoch })
        {
            return false;
        }
        line.phase = Phase::Syncing { epoch };
        line.invalidated = false;
        true
    }

    /// Holds a contract this worker is ready for, but whose tasks another member of its group
    /// runs, while it replicates it: its tasks wait as during any preparation, so none persists
    /// a delta while the copy is reconciled with the chain. False if a task holds it (or it is
    /// not ready for `epoch`). Ended with [`Contracts::prepared_outside`].
    pub fn begin_replicating(&mut self, contract: ContractAddress, epoch: u64) -> bool {
        match self.lines.get_mut(&contract) {
            Some(line) if line.holder.is_none() && line.phase == (Phase::Ready { epoch }) => {
                line.phase = Phase::Syncing { epoch };
                line.invalidated = false;
                true
            }
            _ => false,
        }
    }

    /// A preparation begun with [`Contracts::begin_preparing`] ended.
    pub fn prepared_outside(&mut self, contract: ContractAddress, epoch: u64, ok: bool) {
        if let Some(line) = self.lines.get_mut(&contract)
            && line.phase == (Phase::Syncing { epoch })
        {
            line.phase = if ok && !line.invalidated { Phase::Ready { epoch } } else { Phase::Idle };
        }
    }

    /// An epoch starting at `current` began. A contract this worker stays `selected` for is
    /// prepared again by its next task (the previous holder may have been another worker for a
    /// while, and the chain may have moved); one it leaves is handed over once its receipts are
    /// all on chain ([`Contracts::receipts_settled`]).
    pub fn epoch_turned(&mut self, current: u64, selected: impl Fn(&ContractAddress) -> bool) {
        for (contract, line) in &mut self.lines {
            line.phase = match line.phase {
                Phase::Ready { epoch } | Phase::HandingOver { epoch } if epoch != current => {
                    if selected(contract) {
                        Phase::Idle
                    } else {
                        Phase::HandingOver { epoch }
                    }
                }
                Phase::Syncing { epoch } if epoch != current && line.holder.is_none() => {
                    Phase::Idle
                }
                other => other,
            };
        }
        self.lines.retain(|_, l| !l.idle());
    }

    /// The receipt of `contract`'s task `task` that calls Ethereum is pending (found at a
    /// restart): its next task waits for it as for one that just ran.
    pub fn await_callback(&mut self, contract: ContractAddress, task: TaskId) {
        self.lines.entry(contract).or_insert_with(Line::new).barrier = Some(task);
    }

    /// `task`'s receipt is settled on chain: `kept` if the chain took its state (verified),
    /// not if it did not (its Ethereum call failed, or the task timed out and was refunded). A
    /// contract waiting on it goes on — prepared again first if the chain did not keep what
    /// this worker ran ahead to. Returns whether a contract was waiting on it.
    pub fn receipt_settled(&mut self, task: &TaskId, kept: bool) -> bool {
        let Some(line) = self.lines.values_mut().find(|l| l.barrier == Some(*task)) else {
            return false;
        };
        line.barrier = None;
        if !kept {
            Self::invalidate(line);
        }
        true
    }

    /// The local copy is not the chain's any more: a ready contract is prepared again, and a
    /// preparation under way does not make it ready.
    fn invalidate(line: &mut Line) {
        match line.phase {
            Phase::Ready { .. } => line.phase = Phase::Idle,
            Phase::Syncing { .. } => line.invalidated = true,
            _ => {}
        }
    }

    /// No receipt of `contract` is pending any more: a contract being handed over is done.
    pub fn receipts_settled(&mut self, contract: &ContractAddress) {
        if let Some(line) = self.lines.get_mut(contract)
            && matches!(line.phase, Phase::HandingOver { .. })
        {
            line.phase = Phase::Idle;
            if line.idle() {
                self.lines.remove(contract);
            }
        }
    }

    /// The local copy of `contract` was found off the chain (receipts the chain would not take):
    /// its next task prepares it again.
    pub fn stale(&mut self, contract: &ContractAddress) {
        if let Some(line) = self.lines.get_mut(contract) {
            Self::invalidate(line);
        }
    }

    fn dequeue(waiting: &mut usize, line: &mut Line, t: &Queued) {
        if line.queue.remove(&(t.seq, t.task)) {
            *waiting = waiting.saturating_sub(1);
        }
    }
}

fn already_ran(t: &Queued, contract: &ContractAddress, next: u64) -> String {
    format!(
        "task {} is number {} of contract {contract}, but number {} already ran: the chain takes a \
         contract's receipts in record order, so this one is not executed and its fee returns \
         after the chain's timeout",
        t.task,
        t.seq,
        next.saturating_sub(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ContractAddress = ContractAddress([7; 32]);
    const E1: u64 = 100;
    const E2: u64 = 200;

    fn task(seq: u64) -> Queued {
        Queued { task: TaskId([seq as u8 + 1; 32]), seq, deploy: false }
    }

    /// Arrives, prepares if asked, and returns the step after.
    fn ready(m: &mut Contracts, t: Queued, epoch: u64) {
        assert_eq!(m.arrive(C, t), Ok(Arrival::InLine));
        assert_eq!(m.step(C, t, epoch, false), Step::Prepare { epoch });
        m.prepared(C, &t, epoch, true);
        assert_eq!(m.phase(&C), Phase::Ready { epoch });
    }

    #[test]
    fn the_first_task_prepares_the_contract_and_the_others_wait_for_it() {
        let mut m = Contracts::new(16);
        let (a, b) = (task(0), task(1));
        m.arrive(C, a).unwrap();
        m.arrive(C, b).unwrap();
        assert_eq!(m.step(C, a, E1, false), Step::Prepare { epoch: E1 });
        assert_eq!(m.phase(&C), Phase::Syncing { epoch: E1 });
        assert!(m.busy(&C), "a preparing contract is busy: its hand-over status says so");
        assert_eq!(m.step(C, b, E1, true), Step::Wait(Waiting::Run));
        m.prepared(C, &a, E1, true);
        assert_eq!(m.step(C, a, E1, false), Step::Run);
        assert_eq!(m.step(C, b, E1, true), Step::Wait(Waiting::Run), "one run at a time");
        m.ran(C, &a, None, false);
        assert_eq!(m.step(C, b, E1, false), Step::Run);
        m.ran(C, &b, None, false);
        assert_eq!(m.waiting(), 0);
        assert_eq!(m.next(&C), Some(2));
    }

    #[test]
    fn a_failed_preparation_leaves_the_contract_idle_for_the_next_task() {
        let mut m = Contracts::new(16);
        let (a, b) = (task(0), task(1));
        m.arrive(C, a).unwrap();
        m.arrive(C, b).unwrap();
        assert_eq!(m.step(C, a, E1, false), Step::Prepare { epoch: E1 });
        m.prepared(C, &a, E1, false);
        m.left(C, &a);
        assert_eq!(m.phase(&C), Phase::Idle);
        assert_eq!(m.step(C, b, E1, false), Step::Prepare { epoch: E1 }, "the next task tries");
    }

    #[test]
    fn tasks_run_in_record_order_and_a_late_one_is_refused() {
        let mut m = Contracts::new(16);
        let (t0, t1, t2) = (task(0), task(1), task(2));
        ready(&mut m, t2, E1);
        m.arrive(C, t1).unwrap();
        // Number 2 arrived first: it waits for 0 and 1, and for 1 as long as 1 is here.
        assert_eq!(m.step(C, t2, E1, false), Step::Wait(Waiting::Order));
        assert_eq!(m.step(C, t2, E1, true), Step::Wait(Waiting::Order), "1 is here: 2 waits");
        // Number 0 never came: 1 runs once it has waited out, then 2.
        assert_eq!(m.step(C, t1, E1, false), Step::Wait(Waiting::Order));
        assert_eq!(m.step(C, t1, E1, true), Step::Run);
        m.ran(C, &t1, None, false);
        // Number 1 passed 0 over: no run in turn yet (what a waiting task watches).
        assert_eq!(m.in_order_runs(&C), Some(0));
        assert_eq!(m.step(C, t2, E1, false), Step::Run);
        m.ran(C, &t2, None, false);
        assert_eq!(m.in_order_runs(&C), Some(1), "number 2 ran in turn");
        // Number 0 turns up after all: the chain would refuse its receipt.
        let late = m.arrive(C, t0).unwrap_err();
        assert!(late.contains("number 0") && late.contains("number 2 already ran"), "{late}");
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn the_chain_moving_past_a_waiting_task_refuses_it() {
        let mut m = Contracts::new(16);
        let t3 = task(3);
        ready(&mut m, t3, E1);
        m.observe_next(C, 5);
        let Step::Refuse(why) = m.step(C, t3, E1, true) else { panic!("expected a refusal") };
        assert!(why.contains("number 4 already ran"), "{why}");
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn a_retry_of_a_task_in_line_is_carried_by_the_first() {
        let mut m = Contracts::new(16);
        let t = task(0);
        ready(&mut m, t, E1);
        assert_eq!(m.arrive(C, t), Ok(Arrival::AlreadyHere));
        assert!(m.holds(&C, &t.task));
        assert_eq!(m.step(C, t, E1, false), Step::Run);
        assert_eq!(m.arrive(C, t), Ok(Arrival::AlreadyHere), "and while it runs");
        assert!(m.holds(&C, &t.task));
        assert_eq!(m.waiting(), 1);
        m.ran(C, &t, None, false);
        assert!(!m.holds(&C, &t.task), "the retry then looks for its result");
    }

    #[test]
    fn waiting_tasks_are_bounded_across_contracts() {
        let mut m = Contracts::new(2);
        m.arrive(C, task(0)).unwrap();
        m.arrive(ContractAddress([8; 32]), task(0)).unwrap();
        let full = m.arrive(ContractAddress([9; 32]), task(0)).unwrap_err();
        assert!(full.contains("2 tasks waiting"), "{full}");
        m.left(C, &task(0));
        m.arrive(ContractAddress([9; 32]), task(0)).unwrap();
        // Lines with nothing in them are forgotten.
        m.left(ContractAddress([8; 32]), &task(0));
        assert_eq!(m.lines.len(), 1);
    }

    #[test]
    fn a_new_epoch_prepares_a_kept_contract_again_and_hands_over_a_lost_one() {
        let mut m = Contracts::new(16);
        let other = ContractAddress([8; 32]);
        ready(&mut m, task(0), E1);
        m.left(C, &task(0));
        assert!(m.begin_preparing(other, E1));
        assert!(!m.begin_preparing(other, E1), "one preparation at a time");
        m.prepared_outside(other, E1, true);
        assert_eq!(m.phase(&other), Phase::Ready { epoch: E1 });
        assert!(!m.begin_preparing(other, E1), "nothing to do when current");
        // E2: this worker keeps C and loses `other`.
        m.epoch_turned(E2, |c| *c == C);
        assert_eq!(m.phase(&C), Phase::Idle);
        assert_eq!(m.phase(&other), Phase::HandingOver { epoch: E1 });
        m.receipts_settled(&other);
        assert_eq!(m.phase(&other), Phase::Idle);
        // A task of C in E2 prepares it again: the chain may have moved meanwhile.
        let t1 = task(1);
        m.arrive(C, t1).unwrap();
        assert_eq!(m.step(C, t1, E2, false), Step::Prepare { epoch: E2 });
    }

    #[test]
    fn a_stale_copy_is_prepared_again_and_a_deploy_leaves_its_contract_ready() {
        let mut m = Contracts::new(16);
        let d = Queued { task: TaskId([0xd; 32]), seq: 0, deploy: true };
        m.arrive(C, d).unwrap();
        assert_eq!(m.step(C, d, E1, false), Step::Run, "a deploy needs no preparation");
        m.ran(C, &d, Some(E1), false);
        assert_eq!(m.phase(&C), Phase::Ready { epoch: E1 });
        m.stale(&C);
        assert_eq!(m.phase(&C), Phase::Idle);
    }

    #[test]
    fn a_task_that_calls_ethereum_holds_back_the_next_until_its_receipt_is_settled() {
        let mut m = Contracts::new(16);
        let (t0, t1, t2) = (task(0), task(1), task(2));
        ready(&mut m, t0, E1);
        m.arrive(C, t1).unwrap();
        assert_eq!(m.step(C, t0, E1, false), Step::Run);
        m.ran(C, &t0, None, true);
        assert_eq!(m.step(C, t1, E1, true), Step::Wait(Waiting::Callback));
        assert!(!m.receipt_settled(&t2.task, true), "another task's receipt changes nothing");
        // The chain kept it: the next runs on the state as it is.
        assert!(m.receipt_settled(&t0.task, true));
        assert_eq!(m.step(C, t1, E1, false), Step::Run);
        m.ran(C, &t1, None, true);
        // The chain did not keep it (its call failed): the next prepares the contract again,
        // which drops what this worker ran ahead to.
        m.arrive(C, t2).unwrap();
        assert_eq!(m.step(C, t2, E1, true), Step::Wait(Waiting::Callback));
        assert!(m.receipt_settled(&t1.task, false));
        assert_eq!(m.step(C, t2, E1, false), Step::Prepare { epoch: E1 });
        // Found pending at a restart: the same.
        let mut restarted = Contracts::new(16);
        restarted.await_callback(C, t1.task);
        restarted.arrive(C, t2).unwrap();
        assert_eq!(restarted.step(C, t2, E1, true), Step::Wait(Waiting::Callback));
        assert!(restarted.receipt_settled(&t1.task, true));
        assert_eq!(restarted.step(C, t2, E1, true), Step::Prepare { epoch: E1 });
    }

    #[test]
    fn a_copy_found_stale_during_a_preparation_is_not_made_ready_by_it() {
        let mut m = Contracts::new(16);
        let t = task(0);
        m.arrive(C, t).unwrap();
        assert_eq!(m.step(C, t, E1, false), Step::Prepare { epoch: E1 });
        m.stale(&C);
        m.prepared(C, &t, E1, true);
        assert_eq!(m.phase(&C), Phase::Idle);
        assert_eq!(m.step(C, t, E1, false), Step::Prepare { epoch: E1 }, "prepared again");
        m.prepared(C, &t, E1, true);
        assert_eq!(m.step(C, t, E1, false), Step::Run);
        // A run given its turn just as the epoch turns lets go and stays in line.
        m.release(C, &t);
        assert!(!m.busy(&C));
        assert_eq!(m.waiting(), 1);
        // A contract handed over is listed until its receipts settle.
        m.ran(C, &t, None, false);
        m.epoch_turned(E2, |_| false);
        assert_eq!(m.handing_over(), vec![C]);
        m.receipts_settled(&C);
        assert!(m.handing_over().is_empty());
        assert!(m.lines.is_empty(), "nothing left of it");
    }

    #[test]
    fn a_preparation_for_an_old_epoch_does_not_make_the_contract_current() {
        let mut m = Contracts::new(16);
        assert!(m.begin_preparing(C, E1));
        let t = task(0);
        m.arrive(C, t).unwrap();
        assert_eq!(m.step(C, t, E1, false), Step::Wait(Waiting::Preparation));
        // The epoch turned while the background preparation ran: the task prepares for E2.
        assert_eq!(m.step(C, t, E2, false), Step::Prepare { epoch: E2 });
        m.prepared_outside(C, E1, true);
        assert_eq!(m.phase(&C), Phase::Syncing { epoch: E2 });
        m.prepared(C, &t, E2, true);
        assert_eq!(m.step(C, t, E2, false), Step::Run);
    }
}
