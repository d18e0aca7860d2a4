//! Persistence of an enigma node, on redb: only ciphertext and public data.
//!
//! | table | key | value |
//! |---|---|---|
//! | code | code hash | the wasm module |
//! | contracts | contract address | code hash, and the local delta chain position |
//! | deltas | (contract, index) | an encrypted delta |
//! | snapshots | contract | (index it stands at, encrypted state snapshot) |
//! | tasks | task id | the task as the node saw it (opaque bytes) |
//! | results | task id | the signed, encrypted result (opaque bytes) |
//! | receipts | (contract, task id) | a receipt waiting to be committed on chain (opaque bytes) |
//! | sealed | name | a sealed enclave blob |
//! | meta | name | node metadata (chain cursor, identity, …) |
//!
//! Writes that belong together go through one [`WriteBatch`] committed in one redb
//! transaction, fsynced before `commit` returns: a task's delta, result and pending receipt are
//! durable together before anything is published, and reopening after a crash (even SIGKILL)
//! finds every committed write and nothing of an uncommitted one.
//!
//! ```no_run
//! use enigma_store::Store;
//! use enigma_types::{ContractAddress, TaskId};
//!
//! let store = Store::open("node/data.redb")?;
//! let contract = ContractAddress([1; 32]);
//! let mut batch = store.batch()?;
//! batch.put_delta(&contract, 1, b"ciphertext")?;
//! batch.put_result(&TaskId([2; 32]), b"signed result")?;
//! batch.commit()?;
//! assert_eq!(store.delta(&contract, 1)?.as_deref(), Some(&b"ciphertext"[..]));
//! # Ok::<(), enigma_store::StoreError>(())
//! ```

use std::path::Path;

use enigma_types::{CodeHash, ContractAddress, DeltaHash, TaskId};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const CODE: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("code");
const CONTRACTS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("contracts");
const DELTAS: TableDefinition<'_, ([u8; 32], u64), &[u8]> = TableDefinition::new("deltas");
const SNAPSHOTS: TableDefinition<'_, [u8; 32], (u64, &[u8])> = TableDefinition::new("snapshots");
const TASKS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("tasks");
const RESULTS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("results");
const RECEIPTS: TableDefinition<'_, ([u8; 32], [u8; 32]), &[u8]> = TableDefinition::new("receipts");
const SEALED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sealed");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, a full disk).
    #[error("the node's database failed: {0}; check the data directory's disk and permissions")]
    Db(#[from] redb::Error),
    /// Another open handle (another node process on the same data directory) holds the file.
    #[error(
        "the database {0} is in use by another process; stop the other node using this data directory, or give this one another"
    )]
    InUse(String),
    /// Stored bytes do not have the expected shape.
    #[error("corrupt record in the node's database: {0}")]
    Corrupt(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where a contract's local data stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractInfo {
    /// Its code hash.
    pub code_hash: CodeHash,
    /// The number of deltas stored contiguously from 0.
    pub next_index: u64,
    /// The hash of the last of them.
    pub tip: DeltaHash,
}

impl ContractInfo {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(72);
        out.extend_from_slice(self.code_hash.as_bytes());
        out.extend_from_slice(&self.next_index.to_be_bytes());
        out.extend_from_slice(self.tip.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt =
            || StoreError::Corrupt(format!("a contract record is {} bytes, not 72", bytes.len()));
        let code: [u8; 32] = bytes.get(..32).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
        let index: [u8; 8] =
            bytes.get(32..40).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
        let tip: [u8; 32] =
            bytes.get(40..72).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
        Ok(Self {
            code_hash: CodeHash(code),
            next_index: u64::from_be_bytes(index),
            tip: DeltaHash(tip),
        })
    }
}

/// The node's database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`, creating its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        if let Some(dir) = path.as_ref().parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        }
        // A node that just stopped in this process may still be closing the file; wait a
        // moment for it rather than failing a restart.
        let mut attempts = 0;
        let db = loop {
            match Database::create(path.as_ref()) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(StoreError::InUse(path.as_ref().display().to_string()));
                }
                other => break other?,
            }
        };
        let tx = db.begin_write()?;
        tx.open_table(CODE)?;
        tx.open_table(CONTRACTS)?;
        tx.open_table(DELTAS)?;
        tx.open_table(SNAPSHOTS)?;
        tx.open_table(TASKS)?;
        tx.open_table(RESULTS)?;
        tx.open_table(RECEIPTS)?;
        tx.open_table(SEALED)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Starts a batch of writes that commit together.
    pub fn batch(&self) -> Result<WriteBatch> {
        Ok(WriteBatch { tx: self.db.begin_write()? })
    }

    fn get<K: redb::Key + 'static>(
        &self,
        table: TableDefinition<'_, K, &'static [u8]>,
        key: K::SelfType<'_>,
    ) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// A module by code hash.
    pub fn code(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>> {
        self.get(CODE, hash.0)
    }

    /// A contract's local record.
    pub fn contract(&self, contract: &ContractAddress) -> Result<Option<ContractInfo>> {
        self.get(CONTRACTS, contract.0)?.map(|b| ContractInfo::decode(&b)).transpose()
    }

    /// Every contract the node holds.
    pub fn contracts(&self) -> Result<Vec<(ContractAddress, ContractInfo)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CONTRACTS)?;
        t.iter()?
            .map(|item| {
                let (k, v) = item?;
                Ok((ContractAddress(k.value()), ContractInfo::decode(v.value())?))
            })
            .collect()
    }

    /// One encrypted delta.
    pub fn delta(&self, contract: &ContractAddress, index: u64) -> Result<Option<Vec<u8>>> {
        self.get(DELTAS, (contract.0, index))
    }

    /// Encrypted deltas `[from, to)` of a contract that are stored, in order, at most `max_bytes`
    /// in total (at least one if any).
    pub fn deltas(
        &self,
        contract: &ContractAddress,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DELTAS)?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in t.range((contract.0, from)..(contract.0, to))? {
            let (k, v) = item?;
            let value = v.value();
            if !out.is_empty() && bytes + value.len() > max_bytes {
                break;
            }
            bytes += value.len();
            out.push((k.value().1, value.to_vec()));
        }
        Ok(out)
    }

    /// The latest encrypted snapshot of a contract: `(next_index it stands at, bytes)`.
    pub fn snapshot(&self, contract: &ContractAddress) -> Result<Option<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SNAPSHOTS)?;
        Ok(t.get(contract.0)?.map(|v| {
            let (index, bytes) = v.value();
            (index, bytes.to_vec())
        }))
    }

    /// A task as the node saw it.
    pub fn task(&self, id: &TaskId) -> Result<Option<Vec<u8>>> {
        self.get(TASKS, id.0)
    }

    /// A task's result.
    pub fn result(&self, id: &TaskId) -> Result<Option<Vec<u8>>> {
        self.get(RESULTS, id.0)
    }

    /// The receipts waiting to be committed, by contract then task id.
    pub fn pending_receipts(&self) -> Result<Vec<(ContractAddress, TaskId, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RECEIPTS)?;
        t.iter()?
            .map(|item| {
                let (k, v) = item?;
                let (c, id) = k.value();
                Ok((ContractAddress(c), TaskId(id), v.value().to_vec()))
            })
            .collect()
    }

    /// Whether the receipt of task `id` of `contract` waits.
    pub fn has_pending_receipt(&self, contract: &ContractAddress, id: &TaskId) -> Result<bool> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(RECEIPTS)?.get((contract.0, id.0))?.is_some())
    }

    /// The contract whose receipt of task `id` waits, if one does (a scan of the waiting
    /// receipts' keys: for when the contract is not known).
    pub fn pending_receipt_contract(&self, id: &TaskId) -> Result<Option<ContractAddress>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RECEIPTS)?;
        for item in t.iter()? {
            let (c, task) = item?.0.value();
            if task == id.0 {
                return Ok(Some(ContractAddress(c)));
            }
        }
        Ok(None)
    }

    /// Whether any receipt of `contract` waits.
    pub fn any_pending_for(&self, contract: &ContractAddress) -> Result<bool> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RECEIPTS)?;
        let mut waiting = t.range((contract.0, [0u8; 32])..=(contract.0, [0xff; 32]))?;
        Ok(waiting.next().transpose()?.is_some())
    }

    /// The number of receipts of `contract` waiting.
    pub fn pending_for(&self, contract: &ContractAddress) -> Result<u64> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RECEIPTS)?;
        let mut n = 0;
        for item in t.range((contract.0, [0u8; 32])..=(contract.0, [0xff; 32]))? {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// The number of receipts waiting.
    pub fn pending_count(&self) -> Result<u64> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(RECEIPTS)?.len()?)
    }

    /// A sealed blob.
    pub fn sealed(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get(SEALED, name)
    }

    /// A metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get(META, name)
    }
}

/// Writes that commit together, durably, or not at all (dropping it aborts).
pub struct WriteBatch {
    tx: redb::WriteTransaction,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBatch")
    }
}

impl WriteBatch {
    fn put<K: redb::Key + 'static>(
        &mut self,
        table: TableDefinition<'_, K, &'static [u8]>,
        key: K::SelfType<'_>,
        value: &[u8],
    ) -> Result<()> {
        self.tx.open_table(table)?.insert(key, value)?;
        Ok(())
    }

    /// Stores a module under its code hash.
    pub fn put_code(&mut self, hash: &CodeHash, wasm: &[u8]) -> Result<()> {
        self.put(CODE, hash.0, wasm)
    }

    /// Sets a contract's local record.
    pub fn put_contract(&mut self, contract: &ContractAddress, info: &ContractInfo) -> Result<()> {
        self.put(CONTRACTS, contract.0, &info.encode())
    }

    /// Stores an encrypted delta.
    pub fn put_delta(
        &mut self,
        contract: &ContractAddress,
        index: u64,
        bytes: &[u8],
    ) -> Result<()> {
        self.put(DELTAS, (contract.0, index), bytes)
    }

    /// Removes a contract's deltas from index `from` on (local ones the chain did not take).
    pub fn truncate_deltas(&mut self, contract: &ContractAddress, from: u64) -> Result<()> {
        let mut t = self.tx.open_table(DELTAS)?;
        let doomed: Vec<u64> = t
            .range((contract.0, from)..=(contract.0, u64::MAX))?
            .map(|item| item.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for index in doomed {
            t.remove((contract.0, index))?;
        }
        Ok(())
    }

    /// Removes a contract's snapshot.
    pub fn remove_snapshot(&mut self, contract: &ContractAddress) -> Result<()> {
        self.tx.open_table(SNAPSHOTS)?.remove(contract.0)?;
        Ok(())
    }

    /// Replaces a contract's snapshot.
    pub fn put_snapshot(
        &mut self,
        contract: &ContractAddress,
        next_index: u64,
        bytes: &[u8],
    ) -> Result<()> {
        self.tx.open_table(SNAPSHOTS)?.insert(contract.0, (next_index, bytes))?;
        Ok(())
    }

    /// Records a task.
    pub fn put_task(&mut self, id: &TaskId, bytes: &[u8]) -> Result<()> {
        self.put(TASKS, id.0, bytes)
    }

    /// Records a result.
    pub fn put_result(&mut self, id: &TaskId, bytes: &[u8]) -> Result<()> {
        self.put(RESULTS, id.0, bytes)
    }

    /// Queues a receipt for commitment.
    pub fn put_pending_receipt(
        &mut self,
        contract: &ContractAddress,
        id: &TaskId,
        bytes: &[u8],
    ) -> Result<()> {
        self.tx.open_table(RECEIPTS)?.insert((contract.0, id.0), bytes)?;
        Ok(())
    }

    /// Removes a receipt once it is committed (or no longer committable).
    pub fn remove_pending_receipt(
        &mut self,
        contract: &ContractAddress,
        id: &TaskId,
    ) -> Result<()> {
        self.tx.open_table(RECEIPTS)?.remove((contract.0, id.0))?;
        Ok(())
    }

    /// Stores a sealed blob.
    pub fn put_sealed(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(SEALED, name, bytes)
    }

    /// Stores a metadata value.
    pub fn put_meta(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(META, name, bytes)
    }

    /// Commits every write of the batch durably (fsync) and atomically.
    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}
