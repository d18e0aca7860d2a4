//! The epochs a node needs, cached, and worker selection against them.

use std::collections::BTreeMap;

use enigma_types::{ContractAddress, SignerAddress, selection::select_workers};

use crate::{Chain, EpochInfo, Result};

/// How many of the latest epochs a cache loads (receipts of older tasks are refunded by timeout).
pub const EPOCHS_LOADED: u64 = 32;

/// Epochs by first block, with the contract's group size.
#[derive(Debug, Clone, Default)]
pub struct EpochCache {
    epochs: BTreeMap<u64, EpochInfo>,
    group_size: usize,
}

impl EpochCache {
    /// An empty cache for `group_size` workers per contract.
    #[must_use]
    pub fn new(group_size: usize) -> Self {
        Self { epochs: BTreeMap::new(), group_size: group_size.max(1) }
    }

    /// Loads the latest epochs and the group size from the chain.
    pub async fn load(chain: &Chain) -> Result<Self> {
        let group_size =
            crate::convert::u64_of(chain.enigma().groupSize().call().await?, "group size")?;
        let mut cache = Self::new(usize::try_from(group_size).unwrap_or(1));
        cache.refresh(chain).await?;
        Ok(cache)
    }

    /// Loads epochs the cache does not have yet. Returns how many were added.
    pub async fn refresh(&mut self, chain: &Chain) -> Result<usize> {
        let count = chain.epoch_count().await?;
        let known = self.epochs.values().map(|e| e.nonce + 1).max().unwrap_or(0);
        let start = known.max(count.saturating_sub(EPOCHS_LOADED));
        for nonce in start..count {
            self.insert(chain.epoch(nonce).await?);
        }
        Ok(usize::try_from(count.saturating_sub(start)).unwrap_or(0))
    }

    /// Adds an epoch (from an event or a read).
    pub fn insert(&mut self, epoch: EpochInfo) {
        self.epochs.insert(epoch.first_block, epoch);
        while self.epochs.len() > EPOCHS_LOADED as usize {
            self.epochs.pop_first();
        }
    }

    /// The latest epoch.
    #[must_use]
    pub fn current(&self) -> Option<&EpochInfo> {
        self.epochs.values().next_back()
    }

    /// The epoch containing `block`.
    #[must_use]
    pub fn for_block(&self, block: u64) -> Option<&EpochInfo> {
        self.epochs.range(..=block).next_back().map(|(_, e)| e)
    }

    /// The cached epochs, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &EpochInfo> {
        self.epochs.values()
    }

    /// Whether `signer` is a worker of any cached epoch.
    #[must_use]
    pub fn has_worker(&self, signer: &SignerAddress) -> bool {
        self.epochs.values().any(|e| e.workers.contains(signer))
    }

    /// The epoch whose first block is `first_block` (how task records name their epoch).
    #[must_use]
    pub fn by_first_block(&self, first_block: u64) -> Option<&EpochInfo> {
        self.epochs.get(&first_block)
    }

    /// The workers selected for `contract` in `epoch`, exactly as the contract computes them.
    #[must_use]
    pub fn group(&self, epoch: &EpochInfo, contract: &ContractAddress) -> Vec<SignerAddress> {
        select_workers(&epoch.seed, contract, &epoch.workers, &epoch.stakes, self.group_size)
    }

    /// The workers that keep a copy of `contract` in `epoch` when each contract is kept by
    /// `replicas` workers: the selection's first `max(replicas, groupSize)` distinct draws, so
    /// the group comes first and is always among them.
    #[must_use]
    pub fn replicas(
        &self,
        epoch: &EpochInfo,
        contract: &ContractAddress,
        replicas: usize,
    ) -> Vec<SignerAddress> {
        let size = replicas.max(self.group_size);
        let mut keepers =
            select_workers(&epoch.seed, contract, &epoch.workers, &epoch.stakes, size);
        for member in self.group(epoch, contract) {
            if !keepers.contains(&member) {
                keepers.push(member);
            }
        }
        keepers
    }

    /// Whether `worker` is selected for `contract` in the epoch containing `block`.
    #[must_use]
    pub fn is_selected(
        &self,
        block: u64,
        contract: &ContractAddress,
        worker: &SignerAddress,
    ) -> bool {
        self.for_block(block).is_some_and(|e| self.group(e, contract).contains(worker))
    }
}
