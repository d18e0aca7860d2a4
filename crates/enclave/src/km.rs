//! The key-management enclave: the master secret, state keys, epoch seeds.

use std::collections::VecDeque;

use enigma_attestation::{KM_PRODUCT_ID, simulation_measurement};
use enigma_crypto::{KeyPair, PublicKey, SymmetricKey};
use enigma_types::{
    ContractAddress, SignerAddress,
    enc::{Decoder, Encoder},
    messages::{bytes_digest, epoch_digest},
    selection::select_workers,
};
use zeroize::Zeroizing;

use crate::{
    api::*,
    boundary::{EnclaveError, limits},
    seal::{NodeSecret, Sealer},
    worker::{REQUEST_MAGIC, RESPONSE_MAGIC},
};

const STATE: &str = "km-state";
/// Epochs whose parameters the KM remembers for the release check.
const EPOCHS_KEPT: usize = 64;
/// HKDF salt of contract state keys (PROTOCOL.md section 7).
const STATE_KEY_SALT: &[u8] = b"enigma-state-key-v1";

struct Inner {
    master: SymmetricKey,
    signing: KeyPair,
    /// The last epoch drawn and its seed: a nonce is given one seed only, so the host cannot
    /// draw again until a seed selects the workers it likes.
    last: Option<(u64, [u8; 32])>,
    /// Digests of the epoch messages it signed, newest last.
    epochs: VecDeque<[u8; 32]>,
}

pub(crate) struct KmState {
    sealer: Sealer,
    mr_enclave: [u8; 32],
    debug: bool,
    inner: Option<Inner>,
}

impl std::fmt::Debug for KmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmState")
            .field("signer", &self.inner.as_ref().map(|i| i.signing.address()))
            .field("last_epoch", &self.inner.as_ref().and_then(|i| i.last.map(|(n, _)| n)))
            .finish_non_exhaustive()
    }
}

fn crypto(e: enigma_crypto::Error) -> EnclaveError {
    EnclaveError::Crypto(e.to_string())
}

impl KmState {
    pub(crate) fn new(secret: &NodeSecret, debug: bool) -> Self {
        let mr_enclave = simulation_measurement("km");
        Self { sealer: Sealer::new(secret, mr_enclave), mr_enclave, debug, inner: None }
    }

    fn inner(&self) -> Result<&Inner, EnclaveError> {
        self.inner.as_ref().ok_or(EnclaveError::NotInitialized)
    }

    fn seal(&self) -> Result<Vec<u8>, EnclaveError> {
        let i = self.inner()?;
        let signing = i.signing.secret_bytes();
        let (has_last, nonce, seed) = match i.last {
            Some((n, s)) => (1u8, n, s),
            None => (0, 0, [0; 32]),
        };
        let payload = Zeroizing::new(
            Encoder::new()
                .bytes(i.master.expose_secret())
                .bytes(signing.as_ref())
                .u8(has_last)
                .u64(nonce)
                .bytes(&seed)
                .list(&i.epochs, |e, d| e.bytes(d))
                .into_bytes(),
        );
        self.sealer.seal(STATE, &payload)
    }

    fn unseal(&self, blob: &[u8]) -> Result<Inner, EnclaveError> {
        let payload = self.sealer.unseal(STATE, blob)?;
        let bad = |e: enigma_types::DecodeError| {
            EnclaveError::Sealing(format!("malformed key-manager state: {e}"))
        };
        let mut d = Decoder::new(&payload);
        let master = SymmetricKey::from_bytes(d.fixed::<32>().map_err(bad)?);
        let signing =
            KeyPair::from_bytes(&Zeroizing::new(d.fixed::<32>().map_err(bad)?)).map_err(crypto)?;
        let has_last = d.u8().map_err(bad)?;
        let nonce = d.u64().map_err(bad)?;
        let seed = d.fixed::<32>().map_err(bad)?;
        let n = d.list_len(EPOCHS_KEPT as u64).map_err(bad)?;
        let epochs = (0..n).map(|_| d.fixed::<32>()).collect::<Result<_, _>>().map_err(bad)?;
        d.finish().map_err(bad)?;
        Ok(Inner { master, signing, last: (has_last == 1).then_some((nonce, seed)), epochs })
    }

    pub(crate) fn init(&mut self, init: KmInit) -> Result<Initialized, EnclaveError> {
        let inner = match &init.sealed_state {
            Some(blob) => self.unseal(blob)?,
            None => Inner {
                master: SymmetricKey::generate().map_err(crypto)?,
                signing: KeyPair::generate().map_err(crypto)?,
                last: None,
                epochs: VecDeque::new(),
            },
        };
        let report = EnclaveReport {
            role: Role::KeyManager,
            signer: SignerAddress::from(inner.signing.address()),
            mr_enclave: self.mr_enclave,
            isv_prod_id: KM_PRODUCT_ID,
            debug: self.debug,
        };
        self.inner = Some(inner);
        let sealed = match init.sealed_state {
            Some(blob) => blob,
            None => self.seal()?,
        };
        Ok(Initialized { report, sealed })
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
        let seed = match inner.last {
            Some((nonce, seed)) if nonce == input.nonce => seed,
            Some((nonce, _)) if input.nonce < nonce => {
                return Err(EnclaveError::BadEpoch(format!(
                    "epoch {} is before the last drawn epoch {nonce}",
                    input.nonce
                )));
            }
            _ => {
                let mut seed = [0u8; 32];
                enigma_crypto::random_bytes(&mut seed).map_err(crypto)?;
                seed
            }
        };
        let digest = epoch_digest(&seed, input.nonce, &input.workers, &input.stakes);
        let signature = inner.signing.sign_digest(&digest);
        inner.last = Some((input.nonce, seed));
        if !inner.epochs.contains(&digest) {
            inner.epochs.push_back(digest);
            while inner.epochs.len() > EPOCHS_KEPT {
                inner.epochs.pop_front();
            }
        }
        Ok(EpochSeed { seed, nonce: input.nonce, signature, sealed_state: self.seal()? })
    }

    pub(crate) fn get_state_keys(
        &self,
        input: KeyRequestInput,
    ) -> Result<StateKeyResponse, EnclaveError> {
        let inner = self.inner()?;
        let refuse = |why: String| EnclaveError::Refused(why);
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
            return Err(refuse("it is not a state-key request".into()));
        }
        let worker_public = PublicKey::from_bytes(&d.fixed::<64>().map_err(malformed)?)
            .map_err(|e| refuse(e.to_string()))?;
        let id: [u8; 12] = d.fixed().map_err(malformed)?;
        let epoch_block = d.u64().map_err(malformed)?;
        let n = d.list_len(limits::MAX_CONTRACTS_PER_REQUEST as u64).map_err(malformed)?;
        let contracts: Vec<ContractAddress> = (0..n)
            .map(|_| d.fixed::<32>().map(ContractAddress))
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        d.finish().map_err(malformed)?;

        let epoch = &input.epoch;
        if epoch.first_block != epoch_block {
            return Err(refuse(format!(
                "the request names the epoch of block {epoch_block}, but the epoch given starts at {}",
                epoch.first_block
            )));
        }
        if epoch.workers.len() != epoch.stakes.len() || epoch.workers.len() > limits::MAX_WORKERS {
            return Err(refuse("the epoch's workers and stakes do not match".into()));
        }
        if !inner.epochs.contains(&epoch_digest(
            &epoch.seed,
            epoch.nonce,
            &epoch.workers,
            &epoch.stakes,
        )) {
            return Err(refuse(format!(
                "the key manager did not draw epoch {} with these workers and stakes",
                epoch.nonce
            )));
        }
        for contract in &contracts {
            let group = select_workers(
                &epoch.seed,
                contract,
                &epoch.workers,
                &epoch.stakes,
                usize::from(epoch.group_size.max(1)),
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
        for contract in &contracts {
            let key = SymmetricKey::derive_hkdf(
                inner.master.expose_secret(),
                STATE_KEY_SALT,
                contract.as_bytes(),
            );
            keys.push(shared.encrypt(key.expose_secret()).map_err(crypto)?);
        }
        let response = Encoder::new()
            .bytes(RESPONSE_MAGIC)
            .bytes(&id)
            .bytes(ephemeral.public_key().as_bytes())
            .u64(epoch_block)
            .list(&contracts, |e, c| e.bytes(c.as_bytes()))
            .list(&keys, |e, k| e.bytes(k))
            .into_bytes();
        let signature = inner.signing.sign_digest(&bytes_digest(&response));
        Ok(StateKeyResponse { response, signature })
    }
}
