//! State sync (`/enigma/sync/1`): a worker newly selected for a contract fetches the code and
//! the encrypted deltas it lacks from peers, checks every one against the hashes on chain, and
//! stores them; every node serves, from its store, only deltas it has checked against the chain.
//!
//! Deltas travel in windows of up to [`MAX_SYNC_DELTAS`] (or [`MAX_SYNC_DELTA_BYTES`]); up to
//! [`PIPELINE`] windows are in flight at once, spread over the providers, and are stored in order,
//! each window in one durable write. A provider that sends a delta or module whose hash is not
//! the chain's is penalized (a strike; at the limit, a ban) and the window goes to another.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::Mutex,
};

use enigma_chain::Chain;
use enigma_p2p::{
    Handle, PeerId, SyncRequest, SyncResponse,
    messages::{MAX_SYNC_DELTA_BYTES, MAX_SYNC_DELTAS},
};
use enigma_store::{ContractInfo, Store};
use enigma_types::{CodeHash, ContractAddress, DeltaHash, code_hash, delta_hash};
use futures::StreamExt as _;

use crate::{NodeError, Result};

/// Windows of deltas requested at once.
pub const PIPELINE: usize = 8;

/// Where a contract stands on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Its code hash.
    pub code_hash: CodeHash,
    /// The number of deltas on chain.
    pub delta_count: u64,
}

/// What the chain says about contracts: the truth a sync is checked against.
pub trait DeltaHashes: Send + Sync {
    /// The contract's code hash and delta count, `None` if it is not deployed.
    fn head(
        &self,
        contract: &ContractAddress,
    ) -> impl Future<Output = Result<Option<ChainHead>>> + Send;
    /// Its delta hashes `[from, to)` (clamped to what the chain has).
    fn hashes(
        &self,
        contract: &ContractAddress,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<DeltaHash>>> + Send;
}

impl DeltaHashes for Chain {
    async fn head(&self, contract: &ContractAddress) -> Result<Option<ChainHead>> {
        Ok(self
            .secret_contract(contract)
            .await?
            .map(|c| ChainHead { code_hash: c.code_hash, delta_count: c.delta_count }))
    }

    async fn hashes(
        &self,
        contract: &ContractAddress,
        from: u64,
        to: u64,
    ) -> Result<Vec<DeltaHash>> {
        Ok(self.delta_hashes(contract, from, to).await?)
    }
}

/// Chain facts held in memory (for benchmarks and tests of the sync itself).
#[derive(Debug, Default)]
pub struct MemoryHashes {
    /// Code hash and delta hashes by contract.
    pub contracts: HashMap<ContractAddress, (CodeHash, Vec<DeltaHash>)>,
}

impl DeltaHashes for MemoryHashes {
    async fn head(&self, contract: &ContractAddress) -> Result<Option<ChainHead>> {
        Ok(self.contracts.get(contract).map(|(code_hash, hashes)| ChainHead {
            code_hash: *code_hash,
            delta_count: hashes.len() as u64,
        }))
    }

    async fn hashes(
        &self,
        contract: &ContractAddress,
        from: u64,
        to: u64,
    ) -> Result<Vec<DeltaHash>> {
        let Some((_, hashes)) = self.contracts.get(contract) else { return Ok(Vec::new()) };
        let to = usize::try_from(to).unwrap_or(usize::MAX).min(hashes.len());
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(to);
        Ok(hashes.get(from..to).map(<[DeltaHash]>::to_vec).unwrap_or_default())
    }
}

/// How far each contract's local deltas are known to equal the chain's (a prefix that only
/// grows: the chain never drops a delta, and local deltas that differ from it are removed).
#[derive(Debug, Default)]
pub struct Verified {
    prefix: Mutex<HashMap<ContractAddress, u64>>,
}

impl Verified {
    /// The verified prefix length.
    pub fn get(&self, contract: &ContractAddress) -> u64 {
        self.prefix.lock().map(|m| m.get(contract).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Raises the prefix to `n`.
    pub fn raise(&self, contract: &ContractAddress, n: u64) {
        if let Ok(mut m) = self.prefix.lock() {
            let e = m.entry(*contract).or_insert(0);
            *e = (*e).max(n);
        }
    }

    /// Lowers the prefix to at most `n` (local deltas from `n` on were removed).
    pub fn lower(&self, contract: &ContractAddress, n: u64) {
        if let Ok(mut m) = self.prefix.lock()
            && let Some(e) = m.get_mut(contract)
        {
            *e = (*e).min(n);
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Deltas fetched, verified and stored.
    pub deltas: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Whether the module was fetched.
    pub code: bool,
    /// Providers penalized for data that failed verification.
    pub rejected: Vec<PeerId>,
    /// Where the contract's local deltas now end.
    pub next_index: u64,
}

fn unverified(peer: PeerId, what: &str) -> String {
    format!("provider {peer} sent {what} whose hash is not the chain's")
}

struct Fetch<'a> {
    p2p: &'a Handle,
    providers: &'a [PeerId],
    bad: Mutex<HashSet<PeerId>>,
    rejected: Mutex<Vec<PeerId>>,
}

impl Fetch<'_> {
    fn usable(&self, start: usize) -> Vec<PeerId> {
        let bad = self.bad.lock().map(|b| b.clone()).unwrap_or_default();
        let n = self.providers.len();
        (0..n)
            .filter_map(|i| self.providers.get((start + i) % n).copied())
            .filter(|p| !bad.contains(p))
            .collect()
    }

    async fn reject(&self, peer: PeerId, why: &str) {
        tracing::warn!(%peer, why, "rejecting a sync provider");
        let first = self.bad.lock().is_ok_and(|mut b| b.insert(peer));
        if first {
            let _ = self.p2p.penalize(peer, why).await;
            if let Ok(mut r) = self.rejected.lock() {
                r.push(peer);
            }
        }
    }

    async fn code(&self, contract: ContractAddress, want: CodeHash) -> Result<Vec<u8>> {
        for peer in self.usable(0) {
            match self.p2p.send_sync(peer, &SyncRequest::Code { contract }).await {
                Ok(SyncResponse::Code(code)) if code_hash(&code) == want => return Ok(code),
                Ok(SyncResponse::Code(_)) => self.reject(peer, &unverified(peer, "a module")).await,
                Ok(other) => tracing::debug!(%peer, ?other, "no code from this provider"),
                Err(e) => tracing::debug!(%peer, error = %e, "code request failed"),
            }
        }
        Err(NodeError::Refused(format!(
            "no provider could supply the code of contract {contract}; retry shortly"
        )))
    }

    /// Deltas `[from, from + hashes.len())`, each checked against `hashes`.
    async fn window(
        &self,
        contract: ContractAddress,
        from: u64,
        hashes: Vec<DeltaHash>,
        start: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let to = from + hashes.len() as u64;
        let mut got: Vec<Vec<u8>> = Vec::with_capacity(hashes.len());
        'providers: for peer in self.usable(start) {
            while (got.len() as u64) < to - from {
                let at = from + got.len() as u64;
                let request = SyncRequest::Deltas { contract, from: at, to };
                let deltas = match self.p2p.send_sync(peer, &request).await {
                    Ok(SyncResponse::Deltas { from: f, deltas })
                        if f == at && !deltas.is_empty() =>
                    {
                        deltas
                    }
                    Ok(SyncResponse::Deltas { from: f, .. }) if f != at => {
                        self.reject(peer, "deltas other than those asked for").await;
                        continue 'providers;
                    }
                    Ok(other) => {
                        tracing::debug!(%peer, ?other, "no deltas from this provider");
                        continue 'providers;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "delta request failed");
                        continue 'providers;
                    }
                };
                let offset = got.len();
                for (i, d) in deltas.into_iter().enumerate() {
                    let index = offset + i;
                    let Some(want) = hashes.get(index) else {
                        self.reject(peer, "more deltas than asked for").await;
                        continue 'providers;
                    };
                    if delta_hash(&d) != *want {
                        self.reject(
                            peer,
                            &unverified(peer, &format!("delta {}", from + index as u64)),
                        )
                        .await;
                        continue 'providers;
                    }
                    got.push(d);
                }
            }
            return Ok(got);
        }
        Err(NodeError::Refused(format!(
            "no provider could supply deltas {from}..{to} of contract {contract} that match the chain; retry shortly"
        )))
    }
}

/// Brings the local copy of `contract` up to the chain: the module if missing, then every delta
/// from the local end to the chain's, fetched from `providers` and verified against `chain`.
/// The local copy must be a prefix of the chain's (the worker reconciles before syncing).
pub async fn sync_contract<H: DeltaHashes>(
    p2p: &Handle,
    store: &Store,
    chain: &H,
    verified: &Verified,
    contract: ContractAddress,
    providers: &[PeerId],
) -> Result<SyncReport> {
    let head = chain
        .head(&contract)
        .await?
        .ok_or_else(|| NodeError::Refused(format!("contract {contract} is not deployed")))?;
    let fetch =
        Fetch { p2p, providers, bad: Mutex::new(HashSet::new()), rejected: Mutex::new(Vec::new()) };
    let mut report = SyncReport::default();
    let mut local = match store.contract(&contract)? {
        Some(info) if info.code_hash == head.code_hash => info,
        _ => ContractInfo { code_hash: head.code_hash, next_index: 0, tip: DeltaHash::ZERO },
    };
    if store.code(&head.code_hash)?.is_none() {
        let code = fetch.code(contract, head.code_hash).await?;
        let mut b = store.batch()?;
        b.put_code(&head.code_hash, &code)?;
        b.put_contract(&contract, &local)?;
        b.commit()?;
        report.code = true;
    }
    let windows: Vec<(u64, u64)> = (local.next_index..head.delta_count)
        .step_by(MAX_SYNC_DELTAS)
        .map(|from| (from, (from + MAX_SYNC_DELTAS as u64).min(head.delta_count)))
        .collect();
    let fetch = &fetch;
    let mut arriving = futures::stream::iter(windows.into_iter().enumerate())
        .map(|(i, (from, to))| async move {
            let hashes = chain.hashes(&contract, from, to).await?;
            if hashes.len() as u64 != to - from {
                return Err(NodeError::Refused(format!(
                    "the chain returned {} delta hashes for {from}..{to} of contract {contract}",
                    hashes.len()
                )));
            }
            let tip = hashes.last().copied().unwrap_or(DeltaHash::ZERO);
            Ok((from, tip, fetch.window(contract, from, hashes, i).await?))
        })
        .buffered(PIPELINE);
    while let Some(window) = arriving.next().await {
        let (from, tip, deltas) = window?;
        let mut b = store.batch()?;
        for (i, d) in deltas.iter().enumerate() {
            b.put_delta(&contract, from + i as u64, d)?;
            report.bytes += d.len() as u64;
        }
        local.next_index = from + deltas.len() as u64;
        local.tip = tip;
        b.put_contract(&contract, &local)?;
        b.commit()?;
        report.deltas += deltas.len() as u64;
        verified.raise(&contract, local.next_index);
    }
    drop(arriving);
    report.next_index = local.next_index;
    report.rejected = fetch.rejected.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(report)
}

/// Answers a code or delta request from the store, serving only deltas checked against the
/// chain. (Status requests need the worker's epoch view; the worker answers those.)
pub async fn serve<H: DeltaHashes>(
    store: &Store,
    chain: &H,
    verified: &Verified,
    request: &SyncRequest,
) -> SyncResponse {
    match serve_inner(store, chain, verified, request).await {
        Ok(r) => r,
        Err(e) => SyncResponse::Unavailable(e.to_string()),
    }
}

async fn serve_inner<H: DeltaHashes>(
    store: &Store,
    chain: &H,
    verified: &Verified,
    request: &SyncRequest,
) -> Result<SyncResponse> {
    let unavailable = |why: &str| Ok(SyncResponse::Unavailable(why.to_owned()));
    match *request {
        SyncRequest::Status { .. } => unavailable("status is answered by the worker"),
        SyncRequest::Code { contract } => {
            let Some(info) = store.contract(&contract)? else {
                return unavailable("this node does not hold the contract");
            };
            match store.code(&info.code_hash)? {
                Some(code) => Ok(SyncResponse::Code(code)),
                None => unavailable("this node does not hold the contract's code"),
            }
        }
        SyncRequest::Deltas { contract, from, to } => {
            let Some(info) = store.contract(&contract)? else {
                return unavailable("this node does not hold the contract");
            };
            let to = to.min(info.next_index).min(from.saturating_add(MAX_SYNC_DELTAS as u64));
            if from >= to {
                return unavailable("this node holds no deltas in that range");
            }
            // Serve only the leading run of local deltas that equal the chain's.
            let local = store.deltas(&contract, from, to, MAX_SYNC_DELTA_BYTES)?;
            let prefix = verified.get(&contract);
            let last = from + local.len() as u64;
            let hashes = if last <= prefix {
                Vec::new()
            } else {
                chain.hashes(&contract, from, last).await?
            };
            let mut deltas = Vec::with_capacity(local.len());
            for (i, (index, bytes)) in local.into_iter().enumerate() {
                let checked =
                    index < prefix || hashes.get(i).is_some_and(|want| delta_hash(&bytes) == *want);
                if index != from + i as u64 || !checked {
                    break;
                }
                deltas.push(bytes);
            }
            if from <= prefix {
                verified.raise(&contract, from + deltas.len() as u64);
            }
            if deltas.is_empty() {
                return unavailable("this node has not verified deltas in that range");
            }
            Ok(SyncResponse::Deltas { from, deltas })
        }
    }
}
