//! The key-management enclave: the master secret, state keys, epoch seeds.
//!
//! It decides for itself who may hold a state key: an enclave whose attestation evidence it has
//! verified against the policy it was built with (worker product id, allowed measurement, report
//! data bound to this key manager), and that the epoch it signed selects. Its host carries the
//! evidence and the chain's epoch; it can never vouch for either. It signs one worker list per
//! epoch nonce, over every field the release check later reads.

use std::collections::VecDeque;

use enigma_attestation::{KM_PRODUCT_ID, verify};
use enigma_crypto::{KeyPair, PublicKey, SymmetricKey};
use enigma_types::{
    Address, CodeHash, ContractAddress, SignerAddress,
    enc::{Decoder, Encoder},
    messages::{EpochMessage, ReportData, bytes_digest},
    selection::select_workers,
};
use zeroize::Zeroizing;

use crate::{
    api::*,
    boundary::{EnclaveError, limits},
    build::EnclaveBuild,
    seal::{NodeSecret, Sealer},
    worker::{REQUEST_MAGIC, RESPONSE_MAGIC},
};

const STATE: &str = "km-state-v2";
/// Epochs whose parameters the KM remembers.
const EPOCHS_KEPT: usize = 64;
/// Epochs whose selection may decide a release: the newest drawn and the one before it (a task
/// recorded just before an epoch turned still runs under it).
const RELEASE_EPOCHS: u64 = 2;
/// HKDF salt of contract state keys (docs/protocol.md section 7).
const STATE_KEY_SALT: &[u8] = b"enigma-state-key-v2";

struct DrawnEpoch {
    nonce: u64,
    seed: [u8; 32],
    snapshot_block: u64,
    /// The digest of the epoch message it signed.
    digest: [u8; 32],
}

struct Inner {
    master: SymmetricKey,
    signing: KeyPair,
    /// The operator its report data binds (not sealed: it only pays for transactions).
    operator: Address,
    /// The latest time the host has told it (sealed, so a restart cannot turn it back).
    clock: u64,
    /// The epochs it drew, oldest first; one seed and one worker list per nonce.
    epochs: VecDeque<DrawnEpoch>,
}

pub(crate) struct KmState {
    sealer: Sealer,
    mr_enclave: [u8; 32],
    debug: bool,
    build: EnclaveBuild,
    inner: Option<Inner>,
}

impl std::fmt::Debug for KmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmState")
            .field("signer", &self.inner.as_ref().map(|i| i.signing.address()))
            .field(
                "last_epoch",
                &self.inner.as_ref().and_then(|i| i.epochs.back().map(|e| e.nonce)),
            )
            .finish_non_exhaustive()
    }
}

fn crypto(e: enigma_crypto::Error) -> EnclaveError {
    EnclaveError::Crypto(e.to_string())
}

fn epoch_digest(seed: &[u8; 32], p: &EpochInput) -> [u8; 32] {
    EpochMessage {
        seed,
        nonce: p.nonce,
        snapshot_block: p.snapshot_block,
        group_size: p.group_size,
        workers: &p.workers,
        stakes: &p.stakes,
    }
    .digest()
}

impl KmState {
    pub(crate) fn new(secret: &NodeSecret, debug: bool, build: EnclaveBuild) -> Self {
        let mr_enclave = build.measurement(Role::KeyManager);
        Self {
            sealer: Sealer::new(secret, mr_enclave, debug),
            mr_enclave,
            debug,
            build,
            inner: None,
        }
    }

    fn inner(&self) -> Result<&Inner, EnclaveError> {
        self.inner.as_ref().ok_or(EnclaveError::NotInitialized)
    }

    fn seal(&self) -> Result<Vec<u8>, EnclaveError> {
        let i = self.inner()?;
        let signing = i.signing.secret_bytes();
        let payload = Zeroizing::new(
            Encoder::new()
                .bytes(i.master.expose_secret())
                .bytes(signing.as_ref())
                .u64(i.clock)
                .list(&i.epochs, |e, d| {
                    e.u64(d.nonce).bytes(&d.seed).u64(d.snapshot_block).bytes(&d.digest)
                })
                .into_bytes(),
        );
        self.sealer.seal(STATE, &payload)
    }

    fn unseal(&self, blob: &[u8], operator: Address) -> Result<Inner, EnclaveError> {
        let payload = self.sealer.unseal(STATE, blob)?;
        let bad = |e: enigma_types::DecodeError| {
            EnclaveError::Sealing(format!("malformed key-manager state: {e}"))
        };
        let mut d = Decoder::new(&payload);
        let master = SymmetricKey::from_bytes(d.fixed::<32>().map_err(bad)?);
        let signing =
            KeyPair::from_bytes(&Zeroizing::new(d.fixed::<32>().map_err(bad)?)).map_err(crypto)?;
        let clock = d.u64().map_err(bad)?;
        let n = d.list_len(EPOCHS_KEPT as u64).map_err(bad)?;
        let mut epochs = VecDeque::with_capacity(n);
        for _ in 0..n {
            epochs.push_back(DrawnEpoch {
                nonce: d.u64().map_err(bad)?,
                seed: d.fixed::<32>().map_err(bad)?,
                snapshot_block: d.u64().map_err(bad)?,
                digest: d.fixed::<32>().map_err(bad)?,
            });
        }
        d.finish().map_err(bad)?;
        Ok(Inner { master, signing, operator, clock, epochs })
    }

    fn report_of(&self, i: &Inner) -> EnclaveReport {
        let signer = SignerAddress::from(i.signing.address());
        EnclaveReport {
            role: Role::KeyManager,
            signer,
            mr_enclave: self.mr_enclave,
            isv_prod_id: KM_PRODUCT_ID,
            debug: self.debug,
            report_data: ReportData::new(signer, &i.operator, &i.signing.address(), i.clock)
                .to_bytes(),
        }
    }

    pub(crate) fn init(&mut self, init: KmInit) -> Result<Initialized, EnclaveError> {
        if self.inner.is_some() {
            return Err(EnclaveError::AlreadyInitialized);
        }
        let mut inner = match &init.sealed_state {
            Some(blob) => self.unseal(blob, init.operator)?,
            None => Inner {
                master: SymmetricKey::generate().map_err(crypto)?,
                signing: KeyPair::generate().map_err(crypto)?,
                operator: init.operator,
                clock: 0,
                epochs: VecDeque::new(),
            },
        };
        inner.clock = inner.clock.max(init.time);
        let report = self.report_of(&inner);
        self.inner = Some(inner);
        let sealed = self.seal()?;
        Ok(Initialized { report, sealed })
    }

    pub(crate) fn report(&mut self, time: u64) -> Result<EnclaveReport, EnclaveError> {
        let inner = self.inner.as_mut().ok_or(EnclaveError::NotInitialized)?;
        inner.clock = inner.clock.max(time);
        Ok(self.report_of(self.inner()?))
    }

    pub(crate) fn new_epoch(&mut self, input: EpochInput) -> Result<EpochSeed, EnclaveError> {
        if input.workers.len() > limits::MAX_WORKERS {
            return Err(EnclaveError::TooLarge {
                what: "the worker list".into(),
                len: input.workers.len(),
                max: limits::MAX_WORKERS,
            });
        }
        if input.workers.len() != input.stakes.len() {
            return Err(EnclaveError::BadEpoch(format!(
                "{} workers but {} stakes",
                input.workers.len(),
                input.stakes.len()
            )));
        }
        let inner = self.inner.as_mut().ok_or(EnclaveError::NotInitialized)?;
        if let Some(drawn) = inner.epochs.iter().find(|e| e.nonce == input.nonce) {
            // The same epoch again (a submission that did not land): the same seed and the same
            // signature. Another list for a drawn nonce is refused: the host cannot try lists
            // until one suits it, nor sign a list that names its own key.
            if epoch_digest(&drawn.seed, &input) != drawn.digest {
                return Err(EnclaveError::BadEpoch(format!(
                    "epoch {} was already drawn for the worker list of block {}; submit that list again (an epoch gets one seed and one list)",
                    input.nonce, drawn.snapshot_block
                )));
            }
            let (seed, digest) = (drawn.seed, drawn.digest);
            let signature = inner.signing.sign_digest(&digest);
            return Ok(EpochSeed {
                seed,
                nonce: input.nonce,
                signature,
                sealed_state: self.seal()?,
            });
        }
        // Epochs come one after the other: the host cannot skip ahead to draw an epoch the
        // chain will not reach (and so take the "newest" place with a list of its own).
        let expected = inner.epochs.back().map_or(0, |last| last.nonce.saturating_add(1));
        if input.nonce != expected {
            return Err(EnclaveError::BadEpoch(format!(
                "epoch {} is not the next one: the key manager expects epoch {expected}",
                input.nonce
            )));
        }
        let mut seed = [0u8; 32];
        enigma_crypto::random_bytes(&mut seed).map_err(crypto)?;
        let digest = epoch_digest(&seed, &input);
        let signature = inner.signing.sign_digest(&digest);
        inner.epochs.push_back(DrawnEpoch {
            nonce: input.nonce,
            seed,
            snapshot_block: input.snapshot_block,
            digest,
        });
        while inner.epochs.len() > EPOCHS_KEPT {
            inner.epochs.pop_front();
        }
        Ok(EpochSeed { seed, nonce: input.nonce, signature, sealed_state: self.seal()? })
    }

    pub(crate) fn get_state_keys(
        &mut self,
        input: KeyRequestInput,
    ) -> Result<StateKeyResponse, EnclaveError> {
        let refuse = |why: String| EnclaveError::Refused(why);
        let inner = self.inner.as_mut().ok_or(EnclaveError::NotInitialized)?;
        inner.clock = inner.clock.max(input.time);
        let now = inner.clock;
        let inner = self.inner()?;
        let request = &input.request;
        let signer = SignerAddress::from(
            request
                .signature
                .recover_address(&bytes_digest(&request.request))
                .map_err(|e| refuse(format!("the request's signature is invalid: {e}")))?,
        );
        let malformed = |e: enigma_types::DecodeError| {
            EnclaveError::Refused(format!("the request is malformed: {e}"))
        };
        let mut d = Decoder::new(&request.request);
        if d.bytes().map_err(malformed)? != REQUEST_MAGIC {
            return Err(refuse("it is not a state-key request (v2)".into()));
        }
        let worker_public = PublicKey::from_bytes(&d.fixed::<64>().map_err(malformed)?)
            .map_err(|e| refuse(e.to_string()))?;
        let id: [u8; 12] = d.fixed().map_err(malformed)?;
        let epoch_block = d.u64().map_err(malformed)?;
        let operator = Address(d.fixed::<20>().map_err(malformed)?);
        let max = limits::MAX_CONTRACTS_PER_REQUEST as u64;
        let contracts: Vec<ContractAddress> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.fixed::<32>().map(ContractAddress))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        let hashes: Vec<CodeHash> = (0..d.list_len(max).map_err(malformed)?)
            .map(|_| d.fixed::<32>().map(CodeHash))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        d.finish().map_err(malformed)?;
        if hashes.len() != contracts.len() {
            return Err(refuse("the request's contracts and code hashes differ in number".into()));
        }

        // 1. The requester is an attested worker enclave of an allowed build, bound to this KM.
        let evidence = input
            .evidence
            .parse()
            .map_err(|e| refuse(format!("the requesting enclave's evidence is rejected: {e}")))?;
        let verdict =
            verify(&evidence, &self.build.peer_policy(Role::Worker), now).map_err(|e| {
                refuse(format!("the requesting enclave's attestation is not accepted: {e}"))
            })?;
        if verdict.signer != signer {
            return Err(refuse(format!(
                "the attestation is of enclave {}, but the request is signed by {signer}",
                verdict.signer
            )));
        }
        let report = ReportData::parse(&verdict.report_data).map_err(|e| {
            refuse(format!("the requesting enclave's attestation is not an enigma enclave's: {e}"))
        })?;
        if !report.binds(&operator, &inner.signing.address()) {
            return Err(refuse(format!(
                "enclave {signer} is not bound to this key manager and operator {operator} (its report data names another)"
            )));
        }

        // 2. The epoch is one this KM signed, with every field as signed, and still in force.
        let epoch = &input.epoch;
        if epoch.workers.len() != epoch.stakes.len() || epoch.workers.len() > limits::MAX_WORKERS {
            return Err(refuse("the epoch's workers and stakes do not match".into()));
        }
        let drawn = inner.epochs.iter().find(|e| e.nonce == epoch.nonce).ok_or_else(|| {
            refuse(format!("the key manager did not draw epoch {} (or forgot it)", epoch.nonce))
        })?;
        let signed = EpochMessage {
            seed: &epoch.seed,
            nonce: epoch.nonce,
            snapshot_block: epoch.snapshot_block,
            group_size: epoch.group_size,
            workers: &epoch.workers,
            stakes: &epoch.stakes,
        }
        .digest();
        if signed != drawn.digest {
            return Err(refuse(format!(
                "the parameters given for epoch {} are not those the key manager signed",
                epoch.nonce
            )));
        }
        let newest = inner.epochs.back().map_or(0, |e| e.nonce);
        if newest.saturating_sub(epoch.nonce) >= RELEASE_EPOCHS {
            return Err(refuse(format!(
                "epoch {} is over (the newest is {newest}); request keys for the current epoch",
                epoch.nonce
            )));
        }

        // 3. It selects the requester for every contract. (Selection decides load, not secrecy:
        // every holder of a key is an attested enclave.)
        for contract in &contracts {
            let group = select_workers(
                &epoch.seed,
                contract,
                &epoch.workers,
                &epoch.stakes,
                usize::try_from(epoch.group_size.max(1)).unwrap_or(usize::MAX),
            );
            if !group.contains(&signer) {
                let selected: Vec<String> = group.iter().map(ToString::to_string).collect();
                return Err(refuse(format!(
                    "worker {signer} is not selected for contract {contract} in epoch {} (selected: {})",
                    epoch.nonce,
                    if selected.is_empty() { "none".into() } else { selected.join(", ") }
                )));
            }
        }

        let ephemeral = KeyPair::generate().map_err(crypto)?;
        let shared = ephemeral.derive_key(&worker_public);
        let mut keys = Vec::with_capacity(contracts.len());
        for (contract, hash) in contracts.iter().zip(&hashes) {
            let mut info = [0u8; 64];
            info[..32].copy_from_slice(contract.as_bytes());
            info[32..].copy_from_slice(hash.as_bytes());
            let key =
                SymmetricKey::derive_hkdf(inner.master.expose_secret(), STATE_KEY_SALT, &info);
            keys.push(shared.encrypt(key.expose_secret()).map_err(crypto)?);
        }
        let response = Encoder::new()
            .bytes(RESPONSE_MAGIC)
            .bytes(&id)
            .bytes(ephemeral.public_key().as_bytes())
            .u64(epoch_block)
            .list(&contracts, |e, c| e.bytes(c.as_bytes()))
            .list(&hashes, |e, h| e.bytes(h.as_bytes()))
            .list(&keys, |e, k| e.bytes(k))
            .into_bytes();
        let signature = inner.signing.sign_digest(&bytes_digest(&response));
        Ok(StateKeyResponse { response, signature })
    }
}
