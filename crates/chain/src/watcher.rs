//! Following the Enigma contract's events with a confirmation depth that makes reorgs safe.

use alloy::{
    primitives::B256,
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, SignerAddress, TaskId,
};
use serde::{Deserialize, Serialize};

use crate::{
    Result,
    bindings::{Enigma, EnigmaBatches},
    convert::{address, contract, eth, signer, task_id, u64_of, u128_of},
};

/// An event of the Enigma contract, decoded into protocol types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainEvent {
    /// A task was recorded.
    TaskRecordCreated {
        /// The task.
        task_id: TaskId,
        /// Its inputs hash.
        inputs_hash: InputsHash,
        /// Its gas limit.
        gas_limit: u64,
        /// Its gas price.
        gas_px: u64,
        /// Who pays.
        sender: Address,
        /// Its epoch's first block.
        first_block: u64,
        /// A deployment?
        is_deploy: bool,
    },
    /// A record batch (`EnigmaBatches`), its root checked against its tasks; each of its tasks
    /// follows as a `TaskRecordCreated`.
    TaskBatchCreated {
        /// The batch.
        batch: crate::RecordBatch,
    },
    /// A secret contract was deployed.
    SecretContractDeployed {
        /// Its address.
        contract: ContractAddress,
        /// Its code hash.
        code_hash: CodeHash,
        /// Delta 0's hash.
        init_delta_hash: DeltaHash,
    },
    /// A single success receipt.
    ReceiptVerified {
        /// The task.
        task_id: TaskId,
        /// The contract.
        contract: ContractAddress,
        /// Its delta hash (zero if none).
        delta_hash: DeltaHash,
        /// The chain tip's index after it.
        delta_index: u64,
        /// The output hash.
        output_hash: OutputHash,
        /// Gas used.
        gas_used: u64,
        /// The enclave that signed.
        signer: SignerAddress,
    },
    /// A batch of receipts of one contract.
    ReceiptsVerified {
        /// The contract.
        contract: ContractAddress,
        /// The tasks.
        task_ids: Vec<TaskId>,
        /// Their delta hashes.
        delta_hashes: Vec<DeltaHash>,
        /// Their output hashes.
        output_hashes: Vec<OutputHash>,
        /// Their gas.
        gas_used: Vec<u64>,
        /// 1 success, 0 failure.
        statuses: Vec<u8>,
        /// The index of the first appended delta.
        first_delta_index: u64,
        /// The enclave that signed.
        signer: SignerAddress,
    },
    /// A single failure receipt.
    ReceiptFailed {
        /// The task.
        task_id: TaskId,
        /// The contract.
        contract: ContractAddress,
        /// The encrypted error's hash.
        output_hash: OutputHash,
        /// Gas used.
        gas_used: u64,
    },
    /// Verified, but its Ethereum callback failed.
    ReceiptFailedEth {
        /// The task.
        task_id: TaskId,
        /// The contract.
        contract: ContractAddress,
    },
    /// A timed-out task's fee was returned.
    TaskFeeReturned {
        /// The task.
        task_id: TaskId,
        /// The refund in grains.
        fee: u128,
    },
    /// A new epoch.
    WorkersParameterized {
        /// Its nonce.
        nonce: u64,
        /// Its seed.
        seed: [u8; 32],
        /// Its first block.
        first_block: u64,
        /// Worker signers.
        workers: Vec<SignerAddress>,
        /// Their stakes.
        stakes: Vec<u128>,
    },
    /// A worker registered.
    Registered {
        /// Its operating address.
        operator: Address,
        /// Its enclave signer.
        signer: SignerAddress,
    },
    /// A worker logged in.
    LoggedIn {
        /// Its operating address.
        operator: Address,
    },
    /// A worker logged out.
    LoggedOut {
        /// Its operating address.
        operator: Address,
    },
}

/// A decoded event and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located {
    /// The block.
    pub block: u64,
    /// Its index in the block.
    pub log_index: u64,
    /// The event.
    pub event: ChainEvent,
}

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Poll {
    /// Events in confirmed blocks, in chain order.
    pub events: Vec<Located>,
    /// Set when a block already reported was replaced (a reorg deeper than the confirmation
    /// depth): events from this block on are reported again and must be handled idempotently.
    pub rewound_to: Option<u64>,
    /// Whether it read up to the confirmed head; when not (a node that was down, or a jump of
    /// more than one range), poll again at once rather than after the poll interval.
    pub caught_up: bool,
}

/// Follows the Enigma contract's logs, `confirmations` blocks behind the head.
#[derive(Debug, Clone)]
pub struct Watcher {
    provider: DynProvider,
    enigma: Address,
    next_block: u64,
    confirmations: u64,
    max_range: u64,
    last_seen: Option<(u64, B256)>,
}

impl Watcher {
    /// A watcher starting at `from_block`.
    #[must_use]
    pub fn new(
        provider: DynProvider,
        enigma: Address,
        from_block: u64,
        confirmations: u64,
    ) -> Self {
        Self {
            provider,
            enigma,
            next_block: from_block,
            confirmations,
            max_range: 2_000,
            last_seen: None,
        }
    }

    /// The next block it will read (persist this to resume after a restart).
    #[must_use]
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// Reads the confirmed blocks not read yet: at most 2,000 per call (one bounded log query);
    /// [`Poll::caught_up`] says whether more remain.
    pub async fn poll(&mut self) -> Result<Poll> {
        let mut poll = Poll::default();
        if let Some((number, hash)) = self.last_seen {
            let now = self.provider.get_block_by_number(number.into()).await?;
            if now.map(|b| b.header.hash) != Some(hash) {
                let back = number.saturating_sub(self.confirmations.max(1) * 2);
                tracing::warn!(
                    block = number,
                    rewind_to = back,
                    "a confirmed block was replaced; rereading"
                );
                self.next_block = back;
                self.last_seen = None;
                poll.rewound_to = Some(back);
            }
        }
        let head = self.provider.get_block_number().await?;
        poll.caught_up = true;
        let Some(confirmed) = head.checked_sub(self.confirmations) else { return Ok(poll) };
        if confirmed < self.next_block {
            return Ok(poll);
        }
        let to = confirmed.min(self.next_block + self.max_range - 1);
        poll.caught_up = to == confirmed;
        let filter =
            Filter::new().address(eth(self.enigma)).from_block(self.next_block).to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        for log in &logs {
            for event in decode(log)? {
                poll.events.push(Located {
                    block: log.block_number.unwrap_or(to),
                    log_index: log.log_index.unwrap_or(0),
                    event,
                });
            }
        }
        let end = self.provider.get_block_by_number(to.into()).await?;
        self.last_seen = end.map(|b| (to, b.header.hash));
        self.next_block = to + 1;
        Ok(poll)
    }
}

/// Decodes one of the Enigma contract's logs into the events nodes act on (none for others; a
/// batch of task records gives one event per task).
pub fn decode(log: &Log) -> Result<Vec<ChainEvent>> {
    macro_rules! try_decode {
        ($ty:ident, $d:ident => $body:expr) => {
            if let Ok(decoded) = log.log_decode::<Enigma::$ty>() {
                let $d = decoded.inner.data;
                return Ok(vec![$body]);
            }
        };
    }
    try_decode!(TaskRecordCreated, d => ChainEvent::TaskRecordCreated {
        task_id: task_id(d.taskId),
        inputs_hash: InputsHash(d.inputsHash.0),
        gas_limit: d.gasLimit,
        gas_px: d.gasPx,
        sender: address(d.sender),
        first_block: u64_of(d.firstBlockNumber, "block")?,
        is_deploy: d.isDeploy,
    });
    if let Ok(decoded) = log.log_decode::<Enigma::TaskRecordsCreated>() {
        // A batch of records arrives as one event; nodes see one TaskRecordCreated per task.
        let d = decoded.inner.data;
        let first_block = u64_of(d.firstBlockNumber, "block")?;
        return Ok(d
            .taskIds
            .iter()
            .zip(&d.inputsHashes)
            .zip(&d.gasLimits)
            .map(|((id, h), g)| ChainEvent::TaskRecordCreated {
                task_id: task_id(*id),
                inputs_hash: InputsHash(h.0),
                gas_limit: *g,
                gas_px: d.gasPx,
                sender: address(d.sender),
                first_block,
                is_deploy: false,
            })
            .collect());
    }
    if let Ok(decoded) = log.log_decode::<EnigmaBatches::TaskBatchCreated>() {
        // The batch first (a node learns where each task's record is), then each task. One
        // that does not check out (only a lying node can send it) is skipped, not retried.
        let batch = match crate::client::record_batch(&decoded.inner.data) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a record batch event that does not check out");
                return Ok(Vec::new());
            }
        };
        let mut events = Vec::with_capacity(batch.tasks.len() + 1);
        for t in &batch.tasks {
            events.push(ChainEvent::TaskRecordCreated {
                task_id: t.task_id,
                inputs_hash: t.inputs_hash,
                gas_limit: t.gas_limit,
                gas_px: t.gas_px,
                sender: batch.sender,
                first_block: batch.first_block,
                is_deploy: false,
            });
        }
        events.insert(0, ChainEvent::TaskBatchCreated { batch });
        return Ok(events);
    }
    try_decode!(SecretContractDeployed, d => ChainEvent::SecretContractDeployed {
        contract: contract(d.scAddr),
        code_hash: CodeHash(d.codeHash.0),
        init_delta_hash: DeltaHash(d.initDeltaHash.0),
    });
    try_decode!(ReceiptVerified, d => ChainEvent::ReceiptVerified {
        task_id: task_id(d.taskId),
        contract: contract(d.scAddr),
        delta_hash: DeltaHash(d.deltaHash.0),
        delta_index: u64_of(d.deltaIndex, "delta index")?,
        output_hash: OutputHash(d.outputHash.0),
        gas_used: d.gasUsed,
        signer: signer(d.signer),
    });
    try_decode!(ReceiptsVerified, d => ChainEvent::ReceiptsVerified {
        contract: contract(d.scAddr),
        task_ids: d.taskIds.into_iter().map(task_id).collect(),
        delta_hashes: d.deltaHashes.into_iter().map(|h| DeltaHash(h.0)).collect(),
        output_hashes: d.outputHashes.into_iter().map(|h| OutputHash(h.0)).collect(),
        gas_used: d.gasUsed,
        statuses: d.statuses,
        first_delta_index: u64_of(d.firstDeltaIndex, "delta index")?,
        signer: signer(d.signer),
    });
    try_decode!(ReceiptFailed, d => ChainEvent::ReceiptFailed {
        task_id: task_id(d.taskId),
        contract: contract(d.scAddr),
        output_hash: OutputHash(d.outputHash.0),
        gas_used: d.gasUsed,
    });
    try_decode!(ReceiptFailedETH, d => ChainEvent::ReceiptFailedEth { task_id: task_id(d.taskId), contract: contract(d.scAddr) });
    try_decode!(TaskFeeReturned, d => ChainEvent::TaskFeeReturned { task_id: task_id(d.taskId), fee: u128_of(d.fee, "fee")? });
    try_decode!(WorkersParameterized, d => ChainEvent::WorkersParameterized {
        nonce: u64_of(d.nonce, "nonce")?,
        seed: d.seed.to_be_bytes(),
        first_block: u64_of(d.firstBlockNumber, "block")?,
        workers: d.workers.into_iter().map(signer).collect(),
        stakes: d.stakes.into_iter().map(|s| u128_of(s, "stake")).collect::<Result<_>>()?,
    });
    try_decode!(Registered, d => ChainEvent::Registered { operator: address(d.operator), signer: signer(d.signer) });
    try_decode!(LoggedIn, d => ChainEvent::LoggedIn { operator: address(d.operator) });
    try_decode!(LoggedOut, d => ChainEvent::LoggedOut { operator: address(d.operator) });
    Ok(Vec::new())
}
