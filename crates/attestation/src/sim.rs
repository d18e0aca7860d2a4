//! Simulation evidence: a devnet authority's signature over an enclave's identity.

use enigma_crypto::{KeyPair, Signature};
use enigma_types::{Address, SignerAddress, keccak256, messages::sim_attestation_digest};
use serde::{Deserialize, Serialize};

use crate::{Policy, Rejection, Tee, Verdict};

/// The measurement a simulated enclave of `role` ("worker" or "km") reports: the Keccak-256 of
/// its name and the crate version, so a devnet's allow-list changes when the enclave code does.
#[must_use]
pub fn simulation_measurement(role: &str) -> [u8; 32] {
    keccak256(format!("enigma simulation enclave {role} v{}", env!("CARGO_PKG_VERSION")))
}

/// An enclave identity signed by a simulation authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationEvidence {
    /// The enclave's signer address.
    pub signer: SignerAddress,
    /// Its (simulated) measurement.
    #[serde(with = "hex32")]
    pub mr_enclave: [u8; 32],
    /// Its product id.
    pub isv_prod_id: u16,
    /// Whether it is a debug enclave.
    pub debug: bool,
    /// The authority's signature over [`sim_attestation_digest`].
    pub signature: Signature,
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
            .map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// The devnet's attestation authority: it vouches for simulated enclaves. On a real network it
/// does not exist (the chain's authority address is zero).
#[derive(Debug)]
pub struct SimulationAuthority {
    key: KeyPair,
}

impl SimulationAuthority {
    /// An authority with this key.
    #[must_use]
    pub fn new(key: KeyPair) -> Self {
        Self { key }
    }

    /// The address the chain and policies are configured with.
    #[must_use]
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Signs an enclave's identity.
    #[must_use]
    pub fn attest(
        &self,
        signer: SignerAddress,
        mr_enclave: [u8; 32],
        isv_prod_id: u16,
        debug: bool,
    ) -> SimulationEvidence {
        let digest = sim_attestation_digest(&signer, &mr_enclave, isv_prod_id, debug);
        SimulationEvidence {
            signer,
            mr_enclave,
            isv_prod_id,
            debug,
            signature: self.key.sign_digest(&digest),
        }
    }
}

pub(crate) fn verify(e: &SimulationEvidence, policy: &Policy) -> Result<Verdict, Rejection> {
    let authority = policy.simulation_authority.ok_or(Rejection::SimulationNotAccepted)?;
    let digest = sim_attestation_digest(&e.signer, &e.mr_enclave, e.isv_prod_id, e.debug);
    let got = e
        .signature
        .recover_address(&digest)
        .map_err(|err| Rejection::BadSignature(err.to_string()))?;
    if got != authority {
        return Err(Rejection::WrongAuthority { expected: authority, got });
    }
    let mut report_data = [0u8; 64];
    report_data[..20].copy_from_slice(e.signer.as_bytes());
    Ok(Verdict {
        tee: Tee::SimulatedSgx,
        mr_enclave: e.mr_enclave,
        mr_signer: [0; 32],
        isv_prod_id: e.isv_prod_id,
        isv_svn: 0,
        debug: e.debug,
        report_data,
        signer: e.signer,
        status: "SIMULATION".into(),
        advisory_ids: Vec::new(),
        timestamp: None,
    })
}
