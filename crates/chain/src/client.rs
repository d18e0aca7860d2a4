//! A typed reader and writer of the Enigma contract.

use alloy::{
    network::EthereumWallet,
    primitives::{Address as EthAddress, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
};
use enigma_attestation::Evidence;
use enigma_crypto::{KeyPair, Signature};
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, SignerAddress, TaskId,
};
use serde::{Deserialize, Serialize};

use crate::{
    ChainError, Result,
    batch::{BatchIndex, MAX_RECORD_BATCH, ProvenTask, RecordBatch, RecordBatchInfo},
    bindings::{Enigma, EnigmaBatches, EnigmaToken},
    convert::{address, b256, contract, eth, eth_signer, signer, task_id, u64_of, u128_of},
    error::revert_text,
    evidence::encode_evidence,
};

/// An epoch as the chain stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// Its index (the KM's epoch counter).
    pub nonce: u64,
    /// The KM's random seed.
    pub seed: [u8; 32],
    /// The block of its `setWorkersParams`: tasks of the epoch name it.
    pub first_block: u64,
    /// The block whose worker list it holds.
    pub snapshot_block: u64,
    /// Worker signer addresses, in order.
    pub workers: Vec<SignerAddress>,
    /// Their stakes (grains).
    pub stakes: Vec<u128>,
}

impl EpochInfo {
    fn from_sol(e: Enigma::EpochInfo) -> Result<Self> {
        Ok(Self {
            nonce: u64_of(e.nonce, "epoch nonce")?,
            seed: e.seed.to_be_bytes(),
            first_block: u64_of(e.firstBlockNumber, "epoch block")?,
            snapshot_block: u64_of(e.snapshotBlock, "snapshot block")?,
            workers: e.workers.into_iter().map(signer).collect(),
            stakes: e.stakes.into_iter().map(|s| u128_of(s, "stake")).collect::<Result<_>>()?,
        })
    }
}

/// A task's status on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// No such record.
    Undefined,
    /// Recorded, fee escrowed, awaiting a receipt.
    Created,
    /// Succeeded.
    Verified,
    /// Failed (the enclave signed the failure).
    Failed,
    /// Verified, but its Ethereum callback failed.
    FailedEth,
    /// Timed out; the fee was returned.
    FailedReturn,
    /// A batch-recorded task that is final (closed in its record batch), whose closing event was
    /// not found (logs pruned or out of the node's reach, or past the search's bound).
    Closed,
}

impl TaskStatus {
    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => Self::Undefined,
            1 => Self::Created,
            2 => Self::Verified,
            3 => Self::Failed,
            4 => Self::FailedEth,
            5 => Self::FailedReturn,
            other => return Err(ChainError::Unexpected(format!("task status {other}"))),
        })
    }

    /// Whether the task is finished (no receipt can change it).
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Undefined | Self::Created)
    }
}

/// A task record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Who created it (and pays).
    pub sender: Address,
    /// A deployment?
    pub is_deploy: bool,
    /// Where it stands.
    pub status: TaskStatus,
    /// The inputs hash.
    pub inputs_hash: InputsHash,
    /// The gas limit.
    pub gas_limit: u64,
    /// The gas price in grains.
    pub gas_px: u64,
    /// The epoch's nonce.
    pub epoch: u64,
    /// The epoch's first block.
    pub first_block: u64,
    /// The block it was created in.
    pub created_at: u64,
    /// Its place in its contract's order (0 for a deployment).
    pub seq: u64,
    /// The first 12 bytes of the contract it names (the task id for a deployment).
    pub contract_tag: [u8; 12],
    /// The ENG escrowed for the contract with the fee (grains; zero for most tasks).
    pub value: u128,
}

impl TaskRecord {
    /// Whether the record names `contract`.
    #[must_use]
    pub fn names(&self, contract: &ContractAddress) -> bool {
        contract.as_bytes()[..12] == self.contract_tag
    }
}

/// The chain's limits on what a task may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// The lowest gas price accepted (grains per gas).
    pub min_gas_price: u64,
    /// The highest gas limit accepted.
    pub max_gas_limit: u64,
}

/// A deployed secret contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretContract {
    /// Who deployed it.
    pub owner: Address,
    /// Its code hash.
    pub code_hash: CodeHash,
    /// Deltas in its chain.
    pub delta_count: u64,
    /// The last delta's hash.
    pub last_delta_hash: DeltaHash,
    /// Tasks recorded for it (the next task's sequence number).
    pub task_count: u64,
    /// The lowest sequence number its next receipt may have.
    pub next_receipt_seq: u64,
    /// The ENG it holds (grains): the values of its successful tasks less its payouts.
    pub balance: u128,
}

/// A worker's registration status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerStatus {
    /// Not registered.
    Unregistered,
    /// In the selection.
    LoggedIn,
    /// Registered, not in the selection.
    LoggedOut,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its operating address (holds the stake).
    pub operator: Address,
    /// Its enclave's signer.
    pub signer: SignerAddress,
    /// Its status.
    pub status: WorkerStatus,
    /// The kind of evidence it registered with.
    pub evidence_kind: u8,
    /// The measurement the evidence showed.
    pub mr_enclave: [u8; 32],
    /// Its stake in grains.
    pub balance: u128,
    /// Its current selection weight.
    pub weight: u128,
    /// When it registered.
    pub registered_at: u64,
    /// When it last logged out.
    pub logged_out_at: u64,
}

/// What a mined transaction cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mined {
    /// The transaction hash.
    pub hash: [u8; 32],
    /// Ethereum gas used.
    pub gas_used: u64,
    /// The block it is in.
    pub block: u64,
}

/// A signed success receipt of a compute task, for `commitReceipt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeReceiptTx {
    /// The contract.
    pub contract: ContractAddress,
    /// The task.
    pub task_id: TaskId,
    /// The new delta's hash (zero if none).
    pub delta_hash: DeltaHash,
    /// The output hash.
    pub output_hash: OutputHash,
    /// Gas used.
    pub gas_used: u64,
    /// Ethereum call payload (empty if none).
    pub eth_payload: Vec<u8>,
    /// Ethereum call target (zero if none).
    pub eth_address: Address,
    /// The payouts, packed (`enigma_types::payouts`).
    pub payouts: Vec<u8>,
    /// The enclave's signature.
    pub signature: Signature,
}

/// A signed deployment receipt, for `deploySecretContract`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReceiptTx {
    /// The deployment task (= the contract address).
    pub task_id: TaskId,
    /// The uploaded code's hash.
    pub pre_code_hash: CodeHash,
    /// The stored code's hash.
    pub code_hash: CodeHash,
    /// Delta 0's hash.
    pub init_delta_hash: DeltaHash,
    /// Gas used.
    pub gas_used: u64,
    /// Ethereum call payload (empty if none).
    pub eth_payload: Vec<u8>,
    /// Ethereum call target (zero if none).
    pub eth_address: Address,
    /// The enclave's signature.
    pub signature: Signature,
}

/// One task of a batch receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItemTx {
    /// The task.
    pub task_id: TaskId,
    /// Its delta hash (zero if none or failed).
    pub delta_hash: DeltaHash,
    /// Its output hash.
    pub output_hash: OutputHash,
    /// Gas used.
    pub gas_used: u64,
    /// 1 success, 0 failure.
    pub status: u8,
    /// Its payouts, packed (empty for a failure).
    pub payouts: Vec<u8>,
}

/// The Enigma contract and the ENG token, read and (with a key) written.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: DynProvider,
    enigma: Enigma::EnigmaInstance<DynProvider>,
    /// Enigma's extension, called at Enigma's address.
    batches: EnigmaBatches::EnigmaBatchesInstance<DynProvider>,
    token: EnigmaToken::EnigmaTokenInstance<DynProvider>,
    from: Option<EthAddress>,
    /// Held while a transaction is handed to the node (shared by clones of this handle).
    sending: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The record batches this process knows (shared by clones of this handle): their tasks
    /// have no record of their own on chain.
    batches_known: std::sync::Arc<std::sync::Mutex<BatchIndex>>,
    /// How closed batch tasks ended, once found (at most [`CLOSED_KEPT`]).
    closed: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<TaskId, TaskStatus>>>,
    /// Delta hashes of chunks already read from their receipt events and checked, by contract,
    /// first index and commitment (at most [`CHUNKS_KEPT`]).
    chunks: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ChunkKey, Vec<DeltaHash>>>>,
}

/// A chunk of delta hashes: its contract, first index and commitment.
type ChunkKey = (ContractAddress, u64, [u8; 19]);

/// Chunks of delta hashes a handle keeps (then it starts over).
const CHUNKS_KEPT: usize = 4_096;
/// The most blocks one log query for chunks' receipt events spans.
const CHUNK_LOG_SPAN: u64 = 2_000;

/// Closed batch tasks whose ending a handle keeps (then it starts over).
const CLOSED_KEPT: usize = 65_536;
/// How far after its batch the event that closed a batch task is looked for (100 log queries
/// of each kind at most).
const CLOSING_SEARCH_BLOCKS: u64 = 200_000;

/// A provider for `url` (`http`, `https`, `ws` or `wss`), signing with `key` if given, under
/// this process's [`ChainOptions`](crate::ChainOptions): trusted roots, retries with backoff,
/// and EIP-1559 fees under its cap (set per transaction by [`Chain`]).
///
/// Nonces are read from the node for every transaction (`pending`): a transaction that fails
/// before it is sent (a revert found by gas estimation) must not leave a gap that would stall
/// every later one, and several handles may sign for the same account.
pub async fn provider(url: &str, key: Option<&KeyPair>) -> Result<DynProvider> {
    let client = crate::transport::rpc_client(url).await?;
    Ok(match key {
        Some(key) => {
            let signer = PrivateKeySigner::from_bytes(&B256::from(*key.secret_bytes()))
                .map_err(|e| ChainError::Config(format!("signing key: {e}")))?;
            ProviderBuilder::new()
                .disable_recommended_fillers()
                .with_gas_estimation()
                .with_simple_nonce_management()
                .fetch_chain_id()
                .wallet(EthereumWallet::from(signer))
                .connect_client(client)
                .erased()
        }
        None => ProviderBuilder::new().connect_client(client).erased(),
    })
}

fn mined(r: &TransactionReceipt) -> Result<Mined> {
    let m = Mined {
        hash: r.transaction_hash.0,
        gas_used: r.gas_used,
        block: r.block_number.unwrap_or_default(),
    };
    if r.status() {
        Ok(m)
    } else {
        Err(ChainError::TransactionFailed(format!("0x{}", hex::encode(m.hash))))
    }
}

/// How long to wait for a sent transaction to be mined before giving up.
const MINING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits for a transaction's receipt, polling fast at first (a devnet mines at once) and backing
/// off to half a second (a real chain takes blocks).
async fn wait_receipt(provider: &DynProvider, hash: B256) -> Result<TransactionReceipt> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await? {
            return Ok(receipt);
        }
        if start.elapsed() > MINING_TIMEOUT {
            return Err(ChainError::Rpc(format!(
                "transaction {hash} was not mined within {} s",
                MINING_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

/// How many times a transaction whose nonce another one took is sent again.
const NONCE_RETRIES: u32 = 40;

/// A pause before sending again after a nonce clash: growing, with jitter, so that processes
/// sending from one account at once spread out.
fn clash_pause(attempt: u32) -> std::time::Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % 100);
    std::time::Duration::from_millis((20 * u64::from(attempt)).min(500) + jitter)
}

/// Sends a contract call and waits for its receipt. Within a process, the handles of one
/// account send one at a time (each reads the pending nonce after the one before is in the
/// node's pool); a nonce taken by another process is retried with a fresh one.
macro_rules! send {
    ($self:ident, $call:expr) => {{
        let (max_fee, tip) = crate::transport::fees(&$self.provider).await?;
        let call = $call.max_fee_per_gas(max_fee).max_priority_fee_per_gas(tip);
        let mut attempt = 0;
        let pending = loop {
            let sent = {
                let _turn = $self.sending.lock().await;
                call.send().await.map_err(ChainError::from)
            };
            match sent {
                Ok(pending) => break pending,
                Err(ChainError::NonceClash(_)) if attempt < NONCE_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(clash_pause(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let receipt = wait_receipt(&$self.provider, *pending.tx_hash()).await?;
        mined(&receipt).map(|m| (m, receipt))
    }};
}

impl Chain {
    /// The contracts at `enigma` and `token` through `provider`. `from` is the account that
    /// signs (the provider's wallet), if any.
    #[must_use]
    pub fn new(
        provider: DynProvider,
        enigma: Address,
        token: Address,
        from: Option<Address>,
    ) -> Self {
        Self {
            enigma: Enigma::new(eth(enigma), provider.clone()),
            batches: EnigmaBatches::new(eth(enigma), provider.clone()),
            token: EnigmaToken::new(eth(token), provider.clone()),
            provider,
            from: from.map(eth),
            sending: std::sync::Arc::default(),
            batches_known: std::sync::Arc::default(),
            closed: std::sync::Arc::default(),
            chunks: std::sync::Arc::default(),
        }
    }

    /// Connects to the node at `url` (`http`, `https`, `ws` or `wss`), signing with `key` if
    /// given.
    pub async fn connect(
        url: &str,
        key: Option<&KeyPair>,
        enigma: Address,
        token: Address,
    ) -> Result<Self> {
        Ok(Self::new(provider(url, key).await?, enigma, token, key.map(KeyPair::address)))
    }

    /// The provider.
    #[must_use]
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The Enigma contract binding (for calls this type does not wrap).
    #[must_use]
    pub fn enigma(&self) -> &Enigma::EnigmaInstance<DynProvider> {
        &self.enigma
    }

    /// The Enigma contract's address.
    #[must_use]
    pub fn enigma_address(&self) -> Address {
        address(*self.enigma.address())
    }

    /// The token's address.
    #[must_use]
    pub fn token_address(&self) -> Address {
        address(*self.token.address())
    }

    /// The signing account.
    #[must_use]
    pub fn account(&self) -> Option<Address> {
        self.from.map(address)
    }

    // ---- reading ----

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The chain's id (31337 for anvil, the devnet's chain).
    pub async fn chain_id(&self) -> Result<u64> {
        Ok(self.provider.get_chain_id().await?)
    }

    /// The number of epochs (the next epoch's nonce).
    pub async fn epoch_count(&self) -> Result<u64> {
        u64_of(self.enigma.epochCount().call().await?, "epoch count")
    }

    /// The first block at which the next epoch may be set.
    pub async fn next_epoch_block(&self) -> Result<u64> {
        u64_of(self.enigma.nextEpochBlock().call().await?, "next epoch block")
    }

    /// An epoch by nonce.
    pub async fn epoch(&self, nonce: u64) -> Result<EpochInfo> {
        EpochInfo::from_sol(self.enigma.getEpoch(U256::from(nonce)).call().await?)
    }

    /// The current epoch, `None` before the first.
    pub async fn current_epoch(&self) -> Result<Option<EpochInfo>> {
        if self.epoch_count().await? == 0 {
            return Ok(None);
        }
        EpochInfo::from_sol(self.enigma.getCurrentEpoch().call().await?).map(Some)
    }

    /// The epoch containing `block`, `None` before the first.
    pub async fn epoch_for_block(&self, block: u64) -> Result<Option<EpochInfo>> {
        match self.enigma.getEpochForBlock(U256::from(block)).call().await {
            Ok(e) => EpochInfo::from_sol(e).map(Some),
            Err(e) => match e.as_decoded_error::<Enigma::NoEpochAtBlock>() {
                Some(_) => Ok(None),
                None => Err(e.into()),
            },
        }
    }

    /// The active workers and their weights as an epoch snapshotted at `block` would hold them.
    pub async fn active_workers(&self, block: u64) -> Result<(Vec<SignerAddress>, Vec<u128>)> {
        let r = self.enigma.getActiveWorkers(U256::from(block)).call().await?;
        let stakes = r.stakes.into_iter().map(|s| u128_of(s, "stake")).collect::<Result<_>>()?;
        Ok((r.signers.into_iter().map(signer).collect(), stakes))
    }

    /// The contract's selection of workers for `contract` at `block`.
    pub async fn worker_group(
        &self,
        block: u64,
        contract: &ContractAddress,
    ) -> Result<Vec<SignerAddress>> {
        Ok(self
            .enigma
            .getWorkerGroup(U256::from(block), b256(*contract))
            .call()
            .await?
            .into_iter()
            .map(signer)
            .collect())
    }

    /// A task record, `None` if unknown. A task recorded in a record batch has no record of its
    /// own: it is found when this handle knows its batch ([`remember_batch`](Self::remember_batch),
    /// which a watcher's node and [`create_task_batch`](Self::create_task_batch) do), and made
    /// from the batch, the chain's `getRecordBatch` and, once closed, the event that closed it.
    pub async fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>> {
        self.task_record(id, true).await
    }

    /// As [`task`](Self::task), but a closed batch task reads as [`TaskStatus::Closed`] without
    /// the log search for how it ended: what checking a result against its task's terms needs
    /// (a peer replaying old results makes no node search its logs).
    pub async fn task_terms(&self, id: &TaskId) -> Result<Option<TaskRecord>> {
        self.task_record(id, false).await
    }

    async fn task_record(&self, id: &TaskId, how_closed: bool) -> Result<Option<TaskRecord>> {
        // A task this handle knows from a batch has no record of its own (its id came from the
        // sender's nonce, which the batch took): one read fewer. Should the batch be gone (its
        // block replaced), the record is looked for as any other.
        if self.proven_task(id).is_some()
            && let Some(r) = self.batch_task(id, how_closed).await?
        {
            return Ok(Some(r));
        }
        let r = self.enigma.getTaskRecord(b256(*id)).call().await?;
        let status = TaskStatus::from_u8(r.status)?;
        if status == TaskStatus::Undefined {
            return self.batch_task(id, how_closed).await;
        }
        Ok(Some(TaskRecord {
            sender: address(r.sender),
            is_deploy: r.isDeploy,
            status,
            inputs_hash: InputsHash(r.inputsHash.0),
            gas_limit: r.gasLimit,
            gas_px: r.gasPx,
            epoch: u64_of(r.epoch, "task epoch")?,
            first_block: u64_of(r.firstBlockNumber, "task epoch block")?,
            created_at: u64_of(r.createdAt, "task block")?,
            seq: u64_of(r.seq, "task sequence number")?,
            contract_tag: r.scTag.0,
            value: u128_of(r.value, "task value")?,
        }))
    }

    /// The limits on a task's gas price and gas limit.
    pub async fn task_limits(&self) -> Result<TaskLimits> {
        Ok(TaskLimits {
            min_gas_price: self.enigma.minGasPrice().call().await?,
            max_gas_limit: self.enigma.maxGasLimit().call().await?,
        })
    }

    /// The nonce of `user`'s next task.
    pub async fn task_nonce(&self, user: Address) -> Result<u64> {
        u64_of(self.enigma.taskNonce(eth(user)).call().await?, "task nonce")
    }

    /// `user`'s prepaid balance in grains.
    pub async fn prepaid_balance(&self, user: Address) -> Result<u128> {
        u128_of(self.enigma.prepaidBalance(eth(user)).call().await?, "prepaid balance")
    }

    /// `owner`'s ENG balance in grains.
    pub async fn token_balance(&self, owner: Address) -> Result<u128> {
        u128_of(self.token.balanceOf(eth(owner)).call().await?, "token balance")
    }

    /// A secret contract, `None` if not deployed.
    pub async fn secret_contract(
        &self,
        contract_address: &ContractAddress,
    ) -> Result<Option<SecretContract>> {
        let r = self.enigma.getSecretContract(b256(*contract_address)).call().await?;
        if r.owner == EthAddress::ZERO {
            return Ok(None);
        }
        Ok(Some(SecretContract {
            owner: address(r.owner),
            code_hash: CodeHash(r.codeHash.0),
            delta_count: u64_of(r.deltaCount, "delta count")?,
            last_delta_hash: DeltaHash(r.lastDeltaHash.0),
            task_count: u64_of(r.taskCount, "task count")?,
            next_receipt_seq: u64_of(r.nextReceiptSeq, "next receipt sequence number")?,
            balance: u128_of(r.balance, "contract balance")?,
        }))
    }

    /// Delta hashes `[start, stop)` of a contract (clamped to its chain). A hash the chain keeps
    /// in a slot is read as it is; one in a chunk (a receipt batch's deltas, kept as a
    /// commitment) is read from that batch's `ReceiptsVerified` event and checked against the
    /// commitment, so a node that serves a wrong event is caught (docs/api.md section 8).
    pub async fn delta_hashes(
        &self,
        contract_address: &ContractAddress,
        start: u64,
        stop: u64,
    ) -> Result<Vec<DeltaHash>> {
        let r = self
            .batches
            .getDeltas(b256(*contract_address), U256::from(start), U256::from(stop))
            .call()
            .await?;
        let mut hashes: Vec<DeltaHash> = r.hashes.into_iter().map(|h| DeltaHash(h.0)).collect();
        let chunks = r
            .chunks
            .iter()
            .map(|c| {
                let list_hash: [u8; 19] = c.listHash.0;
                let block: u64 = c.blockNumber.to();
                ((*contract_address, u64::from(c.first), list_hash), u64::from(c.count), block)
            })
            .collect::<Vec<_>>();
        // Chunks read before are taken from the cache; the rest from their events. Each list is
        // held here until the hashes are filled in, whatever happens to the cache meanwhile.
        let mut lists = std::collections::HashMap::new();
        let mut missing = Vec::new();
        {
            let known = self.chunks.lock().map_err(|_| poisoned())?;
            for chunk in &chunks {
                match known.get(&chunk.0) {
                    Some(list) => {
                        lists.insert(chunk.0, list.clone());
                    }
                    None => missing.push(*chunk),
                }
            }
        }
        lists.extend(self.read_chunks(contract_address, &missing).await?);
        for (key, ..) in &chunks {
            let Some(list) = lists.get(key) else {
                return Err(ChainError::Unexpected(format!(
                    "delta hashes {}.. of contract {} are kept as a chunk, and the chain \
                     returned no receipt event that matches it (an RPC that has pruned old logs \
                     cannot serve them: use one that keeps the chain's logs)",
                    key.1, contract_address
                )));
            };
            for (k, hash) in list.iter().enumerate() {
                let index = key.1 + k as u64;
                if (start..start + hashes.len() as u64).contains(&index) {
                    hashes[(index - start) as usize] = *hash;
                }
            }
        }
        Ok(hashes)
    }

    /// Reads the receipt events of `chunks` (`(key, count, block)`), checks each against its
    /// commitment, and returns (and remembers) the hashes of those that check out.
    async fn read_chunks(
        &self,
        contract_address: &ContractAddress,
        chunks: &[(ChunkKey, u64, u64)],
    ) -> Result<Vec<(ChunkKey, Vec<DeltaHash>)>> {
        let mut all = Vec::new();
        use alloy::{rpc::types::Filter, sol_types::SolEvent};
        let mut at = 0;
        while at < chunks.len() {
            // Chunks in order lie in rising blocks: one query for those within the span.
            let from = chunks[at].2;
            let mut end = at + 1;
            while end < chunks.len() && chunks[end].2 < from.saturating_add(CHUNK_LOG_SPAN) {
                end += 1;
            }
            let to = chunks[at..end].iter().map(|c| c.2).max().unwrap_or(from);
            let filter = Filter::new()
                .address(*self.enigma.address())
                .event_signature(Enigma::ReceiptsVerified::SIGNATURE_HASH)
                .topic1(b256(*contract_address))
                .from_block(from)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await?;
            let mut found = std::collections::HashMap::new();
            for log in logs {
                // (A log of a block that left the chain is not the chunk's.)
                if log.removed {
                    continue;
                }
                let Some(block) = log.block_number else { continue };
                let Ok(e) = log.log_decode::<Enigma::ReceiptsVerified>() else { continue };
                let d = e.inner.data;
                let Ok(first) = u64::try_from(d.firstDeltaIndex) else { continue };
                let appended: Vec<DeltaHash> =
                    d.deltaHashes.iter().filter(|h| !h.is_zero()).map(|h| DeltaHash(h.0)).collect();
                for chunk in &chunks[at..end] {
                    if chunk_matches(chunk, first, block, &appended) {
                        found.insert(chunk.0, appended.clone());
                    }
                }
            }
            let mut known = self.chunks.lock().map_err(|_| poisoned())?;
            if known.len() + found.len() > CHUNKS_KEPT {
                known.clear();
            }
            known.extend(found.iter().map(|(k, v)| (*k, v.clone())));
            all.extend(found);
            at = end;
        }
        Ok(all)
    }

    /// Deployed secret contracts `[start, stop)`.
    pub async fn secret_contracts(&self, start: u64, stop: u64) -> Result<Vec<ContractAddress>> {
        let r = self
            .enigma
            .getSecretContractAddresses(U256::from(start), U256::from(stop))
            .call()
            .await?;
        Ok(r.into_iter().map(contract).collect())
    }

    fn worker_info(w: Enigma::WorkerInfo) -> Result<Option<WorkerInfo>> {
        if w.operator == EthAddress::ZERO {
            return Ok(None);
        }
        Ok(Some(WorkerInfo {
            operator: address(w.operator),
            signer: signer(w.signer),
            status: match w.status {
                1 => WorkerStatus::LoggedIn,
                2 => WorkerStatus::LoggedOut,
                _ => WorkerStatus::Unregistered,
            },
            evidence_kind: w.evidenceKind,
            mr_enclave: w.mrEnclave.0,
            balance: u128_of(w.balance, "worker balance")?,
            weight: u128_of(w.weight, "worker weight")?,
            registered_at: u64_of(w.registeredAt, "registration block")?,
            logged_out_at: u64_of(w.loggedOutAt, "logout block")?,
        }))
    }

    /// A worker by operating address.
    pub async fn worker(&self, operator: Address) -> Result<Option<WorkerInfo>> {
        Self::worker_info(self.enigma.getWorker(eth(operator)).call().await?)
    }

    /// A worker by enclave signer.
    pub async fn worker_by_signer(
        &self,
        signer_address: SignerAddress,
    ) -> Result<Option<WorkerInfo>> {
        Self::worker_info(self.enigma.getWorkerBySigner(eth_signer(signer_address)).call().await?)
    }

    // ---- writing (the provider must sign) ----

    /// Transfers ENG.
    pub async fn transfer_token(&self, to: Address, amount: u128) -> Result<Mined> {
        send!(self, self.token.transfer(eth(to), U256::from(amount))).map(|(m, _)| m)
    }

    async fn approve(&self, amount: u128) -> Result<Mined> {
        send!(self, self.token.approve(*self.enigma.address(), U256::from(amount))).map(|(m, _)| m)
    }

    /// Registers the signing account as a worker operator for enclave `signer`.
    pub async fn register(
        &self,
        signer_address: SignerAddress,
        evidence: &Evidence,
    ) -> Result<Mined> {
        let (kind, bytes) = encode_evidence(evidence)?;
        send!(self, self.enigma.register(eth_signer(signer_address), kind, Bytes::from(bytes)))
            .map(|(m, _)| m)
    }

    /// Records the key manager's attestation.
    pub async fn register_principal(&self, evidence: &Evidence) -> Result<Mined> {
        let (kind, bytes) = encode_evidence(evidence)?;
        send!(self, self.enigma.registerPrincipal(kind, Bytes::from(bytes))).map(|(m, _)| m)
    }

    /// Approves and deposits `amount` grains of stake.
    pub async fn deposit_stake(&self, amount: u128) -> Result<Mined> {
        if amount > 0 {
            self.approve(amount).await?;
        }
        send!(self, self.enigma.deposit(U256::from(amount))).map(|(m, _)| m)
    }

    /// Enters the selection.
    pub async fn login(&self) -> Result<Mined> {
        send!(self, self.enigma.login()).map(|(m, _)| m)
    }

    /// Leaves the selection.
    pub async fn logout(&self) -> Result<Mined> {
        send!(self, self.enigma.logout()).map(|(m, _)| m)
    }

    /// Withdraws stake.
    pub async fn withdraw_stake(&self, amount: u128) -> Result<Mined> {
        send!(self, self.enigma.withdraw(U256::from(amount))).map(|(m, _)| m)
    }

    /// Unregisters the worker.
    pub async fn unregister(&self) -> Result<Mined> {
        send!(self, self.enigma.unregister()).map(|(m, _)| m)
    }

    /// Approves and deposits `amount` grains into the prepaid balance that pays task fees.
    pub async fn deposit_balance(&self, amount: u128) -> Result<Mined> {
        self.approve(amount).await?;
        send!(self, self.enigma.depositBalance(U256::from(amount))).map(|(m, _)| m)
    }

    /// Withdraws prepaid balance.
    pub async fn withdraw_balance(&self, amount: u128) -> Result<Mined> {
        send!(self, self.enigma.withdrawBalance(U256::from(amount))).map(|(m, _)| m)
    }

    /// Commits an epoch: the KM's seed and signature over the workers active at `snapshot_block`.
    pub async fn set_workers_params(
        &self,
        snapshot_block: u64,
        seed: [u8; 32],
        signature: &Signature,
    ) -> Result<Mined> {
        send!(
            self,
            self.enigma.setWorkersParams(
                U256::from(snapshot_block),
                U256::from_be_bytes(seed),
                Bytes::from(signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    fn first_task_id(receipt: &TransactionReceipt) -> Result<Vec<TaskId>> {
        let mut ids = Vec::new();
        for log in receipt.inner.logs() {
            if let Ok(e) = log.log_decode::<Enigma::TaskRecordCreated>() {
                ids.push(task_id(e.inner.data.taskId));
            } else if let Ok(e) = log.log_decode::<Enigma::TaskRecordsCreated>() {
                ids.extend(e.inner.data.taskIds.iter().copied().map(task_id));
            }
        }
        if ids.is_empty() {
            return Err(ChainError::Unexpected("the transaction created no task record".into()));
        }
        Ok(ids)
    }

    /// Records a deployment task (fee from the prepaid balance, else `transferFrom`).
    pub async fn create_deployment_task_record(
        &self,
        inputs_hash: InputsHash,
        gas_limit: u64,
        gas_px: u64,
        first_block: u64,
        nonce: u64,
    ) -> Result<(TaskId, Mined)> {
        let (m, r) = send!(
            self,
            self.enigma.createDeploymentTaskRecord(
                b256(inputs_hash),
                gas_limit,
                gas_px,
                U256::from(first_block),
                U256::from(nonce)
            )
        )?;
        Ok((Self::first_task_id(&r)?.remove(0), m))
    }

    /// Records a compute task on `contract_address` (its next sequence number is the task's);
    /// `nonce` must be the sender's task counter (the task id is `task_id(sender, nonce)`).
    /// `value` grains are escrowed with the fee for the contract (its balance on success, back
    /// to the sender otherwise).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_task_record(
        &self,
        contract_address: ContractAddress,
        inputs_hash: InputsHash,
        gas_limit: u64,
        gas_px: u64,
        first_block: u64,
        nonce: u64,
        value: u128,
    ) -> Result<(TaskId, Mined)> {
        let (m, r) = send!(
            self,
            self.enigma.createTaskRecord(
                b256(contract_address),
                b256(inputs_hash),
                gas_limit,
                gas_px,
                U256::from(first_block),
                U256::from(nonce),
                U256::from(value)
            )
        )?;
        Ok((Self::first_task_id(&r)?.remove(0), m))
    }

    /// Records several compute tasks `(contract, inputs hash, gas limit, value)` in one
    /// transaction, in the order given, with consecutive nonces from `nonce` (the sender's task
    /// counter).
    pub async fn create_task_records(
        &self,
        tasks: &[(ContractAddress, InputsHash, u64, u128)],
        gas_px: u64,
        first_block: u64,
        nonce: u64,
    ) -> Result<(Vec<TaskId>, Mined)> {
        let contracts = tasks.iter().map(|t| b256(t.0)).collect();
        let hashes = tasks.iter().map(|t| b256(t.1)).collect();
        let limits = tasks.iter().map(|t| t.2).collect();
        let values = tasks.iter().map(|t| U256::from(t.3)).collect();
        let (m, r) = send!(
            self,
            self.enigma.createTaskRecords(
                contracts,
                hashes,
                limits,
                gas_px,
                U256::from(first_block),
                U256::from(nonce),
                values
            )
        )?;
        Ok((Self::first_task_id(&r)?, m))
    }

    /// Sets the task limits (the Enigma contract's owner only).
    pub async fn set_task_limits(&self, limits: TaskLimits) -> Result<Mined> {
        send!(self, self.enigma.setTaskLimits(limits.min_gas_price, limits.max_gas_limit))
            .map(|(m, _)| m)
    }

    /// Commits a deployment receipt.
    pub async fn commit_deploy(&self, r: &DeployReceiptTx) -> Result<Mined> {
        send!(
            self,
            self.enigma.deploySecretContract(
                b256(r.task_id),
                b256(r.pre_code_hash),
                b256(r.code_hash),
                b256(r.init_delta_hash),
                r.gas_used,
                Bytes::from(r.eth_payload.clone()),
                eth(r.eth_address),
                Bytes::from(r.signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Commits one compute receipt.
    pub async fn commit_receipt(&self, r: &ComputeReceiptTx) -> Result<Mined> {
        send!(
            self,
            self.enigma.commitReceipt(
                b256(r.contract),
                b256(r.task_id),
                b256(r.delta_hash),
                b256(r.output_hash),
                r.gas_used,
                Bytes::from(r.eth_payload.clone()),
                eth(r.eth_address),
                Bytes::from(r.payouts.clone()),
                Bytes::from(r.signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Commits a failure receipt (for a deployment, `contract` is the task id).
    pub async fn commit_failure(
        &self,
        contract_address: ContractAddress,
        task: TaskId,
        output_hash: OutputHash,
        gas_used: u64,
        signature: &Signature,
    ) -> Result<Mined> {
        send!(
            self,
            self.enigma.commitTaskFailure(
                b256(contract_address),
                b256(task),
                b256(output_hash),
                gas_used,
                Bytes::from(signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Commits a batch of one contract's receipts.
    pub async fn commit_receipts(
        &self,
        contract_address: ContractAddress,
        items: &[BatchItemTx],
        signature: &Signature,
    ) -> Result<Mined> {
        send!(
            self,
            self.enigma.commitReceipts(
                b256(contract_address),
                items.iter().map(|i| b256(i.task_id)).collect(),
                items.iter().map(|i| b256(i.delta_hash)).collect(),
                items.iter().map(|i| b256(i.output_hash)).collect(),
                items.iter().map(|i| i.gas_used).collect(),
                items.iter().map(|i| i.status).collect(),
                items.iter().map(|i| Bytes::from(i.payouts.clone())).collect(),
                Bytes::from(signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Returns a timed-out task's fee to its sender (by its batch's proof for a batch-recorded
    /// task this handle knows).
    pub async fn return_fees(&self, task: TaskId) -> Result<Mined> {
        if let Some(proven) = self.proven_task(&task) {
            return self.return_batch_task_fee(&proven).await;
        }
        send!(self, self.enigma.returnFeesForTask(b256(task))).map(|(m, _)| m)
    }

    /// Blocks after its record when a task's fee can be returned (the contract's `timeoutBlocks`).
    pub async fn timeout_blocks(&self) -> Result<u64> {
        u64_of(self.enigma.timeoutBlocks().call().await?, "timeoutBlocks")
    }

    /// Remembers a record batch (from its `TaskBatchCreated` event), so its tasks' records and
    /// proofs can be found.
    pub fn remember_batch(&self, batch: RecordBatch) {
        if let Ok(mut known) = self.batches_known.lock() {
            known.insert(batch);
        }
    }

    /// A batch-recorded task this handle knows, with its proof.
    #[must_use]
    pub fn proven_task(&self, task: &TaskId) -> Option<ProvenTask> {
        let known = self.batches_known.lock().ok()?;
        let (batch, index) = known.find(task)?;
        batch.proven(index)
    }

    /// Reads the record batches recorded in blocks `from..=to` (bounded log queries) and
    /// remembers them: a node starting again learns the batches whose tasks may still run.
    /// Returns how many it found.
    pub async fn load_batches(&self, from: u64, to: u64) -> Result<usize> {
        self.load_batches_by(None, from, to).await
    }

    /// As [`load_batches`](Self::load_batches), only the batches `sender` recorded: how a
    /// client that started again finds its own batch tasks (their events name the sender).
    pub async fn load_batches_of(&self, sender: Address, from: u64, to: u64) -> Result<usize> {
        self.load_batches_by(Some(sender), from, to).await
    }

    async fn load_batches_by(&self, sender: Option<Address>, from: u64, to: u64) -> Result<usize> {
        use alloy::{rpc::types::Filter, sol_types::SolEvent};
        let mut found = 0;
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(1_999));
            let mut filter = Filter::new()
                .address(*self.enigma.address())
                .event_signature(EnigmaBatches::TaskBatchCreated::SIGNATURE_HASH)
                .from_block(start)
                .to_block(end);
            if let Some(sender) = sender {
                filter = filter.topic2(eth(sender).into_word());
            }
            for log in self.provider.get_logs(&filter).await? {
                let Ok(e) = log.log_decode::<EnigmaBatches::TaskBatchCreated>() else { continue };
                match record_batch(&e.inner.data) {
                    Ok(batch) => {
                        self.remember_batch(batch);
                        found += 1;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a record batch event that does not check out")
                    }
                }
            }
            start = end + 1;
        }
        Ok(found)
    }

    /// The record of a batch-recorded task this handle knows (see [`task`](Self::task)).
    async fn batch_task(&self, id: &TaskId, how_closed: bool) -> Result<Option<TaskRecord>> {
        let Some(proven) = self.proven_task(id) else { return Ok(None) };
        let Some(info) = self.record_batch(proven.root).await? else { return Ok(None) };
        let first_block = self
            .batches_known
            .lock()
            .ok()
            .and_then(|k| k.find(id).map(|(b, _)| b.first_block))
            .unwrap_or_default();
        let status = if info.is_open(proven.index) {
            TaskStatus::Created
        } else if let Some(s) = self.closed.lock().ok().and_then(|c| c.get(id).copied()) {
            s
        } else if !how_closed {
            TaskStatus::Closed
        } else {
            match self.closing_event(&proven, info.created_at).await {
                Ok(s) => {
                    if let Ok(mut c) = self.closed.lock() {
                        if c.len() >= CLOSED_KEPT {
                            c.clear();
                        }
                        c.insert(*id, s);
                    }
                    s
                }
                Err(e) => {
                    tracing::debug!(task = %id, error = %e, "how a closed batch task ended is unknown");
                    TaskStatus::Closed
                }
            }
        };
        let t = proven.task;
        let mut contract_tag = [0u8; 12];
        contract_tag.copy_from_slice(&t.contract.as_bytes()[..12]);
        Ok(Some(TaskRecord {
            sender: info.sender,
            is_deploy: false,
            status,
            inputs_hash: t.inputs_hash,
            gas_limit: t.gas_limit,
            gas_px: t.gas_px,
            epoch: info.epoch,
            first_block,
            created_at: info.created_at,
            seq: t.seq,
            contract_tag,
            value: t.value,
        }))
    }

    /// How a closed batch-recorded task ended, from the event that closed it (searched from its
    /// batch's block, in bounded log queries).
    async fn closing_event(&self, t: &ProvenTask, from: u64) -> Result<TaskStatus> {
        use alloy::{rpc::types::Filter, sol_types::SolEvent};
        let head =
            self.provider.get_block_number().await?.min(from.saturating_add(CLOSING_SEARCH_BLOCKS));
        let id = b256(t.task.task_id);
        let mut start = from;
        while start <= head {
            let end = head.min(start.saturating_add(1_999));
            let by_task = Filter::new()
                .address(*self.enigma.address())
                .event_signature(vec![
                    Enigma::ReceiptVerified::SIGNATURE_HASH,
                    Enigma::ReceiptFailedETH::SIGNATURE_HASH,
                    Enigma::TaskFeeReturned::SIGNATURE_HASH,
                ])
                .topic1(id)
                .from_block(start)
                .to_block(end);
            for log in self.provider.get_logs(&by_task).await? {
                match log.topic0() {
                    Some(t) if *t == Enigma::ReceiptVerified::SIGNATURE_HASH => {
                        return Ok(TaskStatus::Verified);
                    }
                    Some(t) if *t == Enigma::ReceiptFailedETH::SIGNATURE_HASH => {
                        return Ok(TaskStatus::FailedEth);
                    }
                    Some(t) if *t == Enigma::TaskFeeReturned::SIGNATURE_HASH => {
                        return Ok(TaskStatus::FailedReturn);
                    }
                    _ => {}
                }
            }
            let by_contract = Filter::new()
                .address(*self.enigma.address())
                .event_signature(Enigma::ReceiptsVerified::SIGNATURE_HASH)
                .topic1(b256(t.task.contract))
                .from_block(start)
                .to_block(end);
            let mut found = None;
            for log in self.provider.get_logs(&by_contract).await? {
                let Ok(e) = log.log_decode::<Enigma::ReceiptsVerified>() else { continue };
                let d = e.inner.data;
                // Every task of the batch is learnt at once: looking up a contract's tasks one
                // by one then costs one search, not one each.
                let Ok(mut closed) = self.closed.lock() else { continue };
                if closed.len() + d.taskIds.len() > CLOSED_KEPT {
                    closed.clear();
                }
                for (task, status) in d.taskIds.iter().zip(&d.statuses) {
                    let status =
                        if *status == 1 { TaskStatus::Verified } else { TaskStatus::Failed };
                    closed.insert(task_id(*task), status);
                    if *task == id {
                        found = Some(status);
                    }
                }
            }
            if let Some(status) = found {
                return Ok(status);
            }
            start = end + 1;
        }
        Err(ChainError::Unexpected(format!(
            "task {} is closed in its record batch but no event since block {from} says how",
            t.task.task_id
        )))
    }

    /// Commits one batch-recorded compute task's success alone, with its Ethereum callback
    /// (`commitBatchReceipt`; `r.signature` over the compute-success digest, as for
    /// [`commit_receipt`](Self::commit_receipt)).
    pub async fn commit_batch_receipt(
        &self,
        t: &ProvenTask,
        r: &ComputeReceiptTx,
    ) -> Result<Mined> {
        send!(
            self,
            self.batches.commitBatchReceipt(
                b256(r.contract),
                batch_task(t),
                b256(r.delta_hash),
                b256(r.output_hash),
                r.gas_used,
                Bytes::from(r.eth_payload.clone()),
                eth(r.eth_address),
                Bytes::from(r.payouts.clone()),
                Bytes::from(r.signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Records compute tasks `(contract, inputs hash, gas limit, value)` as one record batch
    /// (`createTaskBatch`: the chain keeps its root, not a record per task), in the order given,
    /// with consecutive nonces from `nonce` (the sender's task counter). The batch returned has
    /// the sequence numbers the contract's event gives; the event must name this sender, nonce,
    /// price and tasks, and the chain must hold its root for this sender (a node that lies about
    /// the event would leave the user with proofs that refund nothing).
    pub async fn create_task_batch(
        &self,
        tasks: &[(ContractAddress, InputsHash, u64, u128)],
        gas_px: u64,
        first_block: u64,
        nonce: u64,
    ) -> Result<(RecordBatch, Mined)> {
        let (m, r) = send!(
            self,
            self.batches.createTaskBatch(
                tasks.iter().map(|t| b256(t.0)).collect(),
                tasks.iter().map(|t| b256(t.1)).collect(),
                tasks.iter().map(|t| t.2).collect(),
                tasks.iter().map(|t| U256::from(t.3)).collect(),
                gas_px,
                U256::from(first_block),
                U256::from(nonce)
            )
        )?;
        let enigma = *self.enigma.address();
        let event = r
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == enigma)
            .find_map(|log| log.log_decode::<EnigmaBatches::TaskBatchCreated>().ok())
            .ok_or_else(|| ChainError::Unexpected("the transaction recorded no batch".into()))?;
        let batch = record_batch(&event.inner.data)?;
        let asked: Vec<_> = tasks.iter().map(|t| (t.0, t.1, t.2, t.3)).collect::<Vec<_>>();
        let got: Vec<_> =
            batch.tasks.iter().map(|t| (t.contract, t.inputs_hash, t.gas_limit, t.value)).collect();
        let first = batch.tasks.first().map(|t| t.task_id);
        if self.from.map(address) != Some(batch.sender)
            || first != self.from.map(|from| enigma_types::task_id(&address(from), nonce))
            || batch.tasks.iter().any(|t| t.gas_px != gas_px)
            || got != asked
        {
            return Err(ChainError::Unexpected(
                "the TaskBatchCreated event does not describe the batch sent".into(),
            ));
        }
        match self.record_batch(batch.root()).await? {
            Some(info) if info.sender == batch.sender && info.count == batch.tasks.len() => {}
            _ => {
                return Err(ChainError::Unexpected(format!(
                    "the chain holds no batch of {} tasks by {} under root 0x{}",
                    batch.tasks.len(),
                    batch.sender,
                    hex::encode(batch.root())
                )));
            }
        }
        self.remember_batch(batch.clone());
        Ok((batch, m))
    }

    /// Commits the receipts of batch-recorded tasks of one contract and one epoch, in the
    /// contract's order, under the enclave's batch signature (the digest of
    /// [`commit_receipts`](Self::commit_receipts)): packed, each run of tasks of one record batch
    /// with one multiproof ([`pack_receipts`](crate::pack_receipts)).
    pub async fn commit_batch_receipts(
        &self,
        contract_address: ContractAddress,
        items: &[(ProvenTask, BatchItemTx)],
        signature: &Signature,
    ) -> Result<Mined> {
        let packed = pack_batch_receipts(items).ok_or_else(|| {
            ChainError::Unexpected(format!(
                "a receipt batch of {} tasks does not fit the packed format (at most 65,535 \
                 tasks and payout bytes each, sequence numbers below 2^32); send fewer at once",
                items.len()
            ))
        })?;
        send!(
            self,
            self.batches.commitBatchReceipts(
                b256(contract_address),
                Bytes::from(packed),
                Bytes::from(signature.as_bytes().to_vec())
            )
        )
        .map(|(m, _)| m)
    }

    /// Returns a timed-out batch-recorded task's fee and value to its sender.
    pub async fn return_batch_task_fee(&self, task: &ProvenTask) -> Result<Mined> {
        send!(self, self.batches.returnBatchTaskFee(b256(task.task.contract), batch_task(task)))
            .map(|(m, _)| m)
    }

    /// The record batch with `root`, if there is one.
    pub async fn record_batch(&self, root: [u8; 32]) -> Result<Option<RecordBatchInfo>> {
        let b = self.batches.getRecordBatch(B256::from(root)).call().await?;
        if b.count == 0 {
            return Ok(None);
        }
        Ok(Some(RecordBatchInfo {
            sender: address(b.sender),
            epoch: u64::from(b.epoch),
            created_at: u64_of(U256::from(b.createdAt), "createdAt")?,
            count: usize::from(b.count),
            open: b.open.to_be_bytes(),
        }))
    }
}

/// A record batch from its `TaskBatchCreated` event, its root checked against the event's.
pub fn record_batch(e: &EnigmaBatches::TaskBatchCreated) -> Result<RecordBatch> {
    let n = e.scAddrs.len();
    if [e.inputsHashes.len(), e.gasLimits.len(), e.values.len(), e.seqs.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err(ChainError::Unexpected(
            "a TaskBatchCreated event's lists differ in length".into(),
        ));
    }
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push((
            contract(e.scAddrs[i]),
            InputsHash(e.inputsHashes[i].0),
            e.gasLimits[i],
            u128_of(e.values[i], "value")?,
        ));
    }
    let seqs = e.seqs.iter().map(|s| u64_of(*s, "seq")).collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::new(
        address(e.sender),
        u64_of(e.firstBlockNumber, "firstBlockNumber")?,
        u64_of(e.nonce, "nonce")?,
        e.gasPx,
        &tasks,
        &seqs,
    )
    .ok_or_else(|| {
        ChainError::Unexpected(format!(
            "a TaskBatchCreated event with {n} tasks (1 to {MAX_RECORD_BATCH} allowed) or nonces past 64 bits"
        ))
    })?;
    if batch.root() != e.root.0 {
        return Err(ChainError::Unexpected(format!(
            "a TaskBatchCreated event's root {} is not that of its tasks",
            e.root
        )));
    }
    Ok(batch)
}

fn batch_task(t: &ProvenTask) -> EnigmaBatches::BatchTask {
    EnigmaBatches::BatchTask {
        root: B256::from(t.root),
        index: U256::from(t.index),
        taskId: b256(t.task.task_id),
        inputsHash: b256(t.task.inputs_hash),
        gasLimit: t.task.gas_limit,
        gasPx: t.task.gas_px,
        seq: U256::from(t.task.seq),
        value: U256::from(t.task.value),
        proof: t.proof.iter().map(|p| B256::from(*p)).collect(),
    }
}

/// Whether a `ReceiptsVerified` event mined in `block`, whose deltas start at `first` and whose
/// non-zero delta hashes are `appended`, is the one that wrote `chunk` (`(key, count, block)`):
/// same place, same block, as many hashes, and the hashes match the commitment.
fn chunk_matches(
    chunk: &(ChunkKey, u64, u64),
    first: u64,
    block: u64,
    appended: &[DeltaHash],
) -> bool {
    let ((_, chunk_first, list_hash), count, chunk_block) = *chunk;
    chunk_first == first
        && chunk_block == block
        && appended.len() as u64 == count
        && chunk_commitment(appended) == list_hash
}

/// Receipts of batch-recorded tasks, in the contract's order, packed as `commitBatchReceipts`
/// reads them ([`pack_receipts`](crate::pack_receipts)); None if they do not fit the format.
#[must_use]
pub fn pack_batch_receipts(items: &[(ProvenTask, BatchItemTx)]) -> Option<Vec<u8>> {
    let packed: Vec<_> = items
        .iter()
        .map(|(t, o)| {
            let outcome = crate::PackedOutcome {
                delta_hash: o.delta_hash.0,
                output_hash: o.output_hash.0,
                gas_used: o.gas_used,
                status: o.status,
                payouts: &o.payouts,
            };
            (t, outcome)
        })
        .collect();
    crate::pack_receipts(&packed)
}

fn poisoned() -> ChainError {
    ChainError::Unexpected("a lock of this chain handle was poisoned by a panic".into())
}

/// The commitment a chunk of delta hashes is kept as: the first 19 bytes of
/// keccak256(hash_0 ‖ … ‖ hash_{n-1}).
#[must_use]
pub fn chunk_commitment(hashes: &[DeltaHash]) -> [u8; 19] {
    let mut all = Vec::with_capacity(32 * hashes.len());
    for h in hashes {
        all.extend_from_slice(&h.0);
    }
    let mut out = [0u8; 19];
    out.copy_from_slice(&enigma_types::keccak256(&all)[..19]);
    out
}

/// Decodes revert data of our contracts into text (for callers that got raw data).
#[must_use]
pub fn describe_revert(data: &[u8]) -> String {
    revert_text(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_event_that_wrote_a_chunk_of_delta_hashes_fills_it() {
        let hashes: Vec<DeltaHash> = (0..5u8).map(|i| DeltaHash([i + 1; 32])).collect();
        let chunk = ((ContractAddress([9; 32]), 40, chunk_commitment(&hashes)), 5, 1_000);
        assert!(chunk_matches(&chunk, 40, 1_000, &hashes));

        // What a hostile RPC might serve instead.
        let mut changed = hashes.clone();
        changed[3].0[0] ^= 1;
        assert!(!chunk_matches(&chunk, 40, 1_000, &changed), "a hash changed");
        assert!(!chunk_matches(&chunk, 40, 1_000, &hashes[..4]), "a hash dropped");
        let mut swapped = hashes.clone();
        swapped.swap(0, 1);
        assert!(!chunk_matches(&chunk, 40, 1_000, &swapped), "two hashes swapped");
        assert!(!chunk_matches(&chunk, 41, 1_000, &hashes), "another place in the chain");
        assert!(!chunk_matches(&chunk, 40, 1_001, &hashes), "another block");
        assert_ne!(chunk_commitment(&hashes), chunk_commitment(&hashes[1..]));
    }
}
