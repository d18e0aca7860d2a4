//! Simulation evidence: a devnet authority's signature over an enclave's report, standing in for
//! Intel's quoting enclave and attestation service.

use enigma_crypto::{KeyPair, Signature};
use enigma_types::{
    Address, SignerAddress,
    enc::Encoder,
    messages::{ReportData, sim_attestation_digest},
};
use serde::{Deserialize, Serialize};

use crate::{Policy, Rejection, Tee, Verdict};

/// The measurement a simulated enclave of `role` ("worker" or "km") reports:
/// `H(enc("enigma simulation enclave", role, version, build))`, where `build` is the digest of
/// everything the enclave was built to trust (its compiled-in policy). A different crate
/// version or policy is a different measurement, as a different binary would be on hardware.
#[must_use]
pub fn simulation_measurement(role: &str, build: &[u8; 32]) -> [u8; 32] {
    Encoder::hashing()
        .bytes(b"enigma simulation enclave")
        .bytes(role.as_bytes())
        .bytes(env!("CARGO_PKG_VERSION").as_bytes())
        .bytes(build)
        .digest()
}

/// A simulated enclave's report, signed by a simulation authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationEvidence {
    /// Its (simulated) measurement.
    #[serde(with = "hex_fixed")]
    pub mr_enclave: [u8; 32],
    /// Its product id.
    pub isv_prod_id: u16,
    /// Whether it is a debug enclave.
    pub debug: bool,
    /// The 64 bytes the enclave put in its report (signer address first).
    #[serde(with = "hex_fixed")]
    pub report_data: [u8; 64],
    /// The authority's signature over [`sim_attestation_digest`].
    pub signature: Signature,
}

impl SimulationEvidence {
    /// The signer address the report vouches for (its first 20 bytes).
    #[must_use]
    pub fn signer(&self) -> SignerAddress {
        let mut signer = [0u8; 20];
        signer.copy_from_slice(&self.report_data[..20]);
        SignerAddress(signer)
    }
}

pub(crate) mod hex_fixed {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
            .map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// The devnet's attestation authority: it vouches for simulated enclaves. On a real network it
/// does not exist (the chain's authority address is zero). Its key belongs to whoever plays
/// Intel's part — a devnet or a test harness — never to a worker's or key manager's host.
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

    /// Signs an enclave's report.
    #[must_use]
    pub fn attest(
        &self,
        mr_enclave: [u8; 32],
        isv_prod_id: u16,
        debug: bool,
        report_data: [u8; 64],
    ) -> SimulationEvidence {
        let digest = sim_attestation_digest(&mr_enclave, isv_prod_id, debug, &report_data);
        SimulationEvidence {
            mr_enclave,
            isv_prod_id,
            debug,
            report_data,
            signature: self.key.sign_digest(&digest),
        }
    }
}

pub(crate) fn verify(e: &SimulationEvidence, policy: &Policy) -> Result<Verdict, Rejection> {
    let authority = policy.simulation_authority.ok_or(Rejection::SimulationNotAccepted)?;
    let digest = sim_attestation_digest(&e.mr_enclave, e.isv_prod_id, e.debug, &e.report_data);
    let got = e
        .signature
        .recover_address(&digest)
        .map_err(|err| Rejection::BadSignature(err.to_string()))?;
    if got != authority {
        return Err(Rejection::WrongAuthority { expected: authority, got });
    }
    Ok(Verdict {
        tee: Tee::SimulatedSgx,
        mr_enclave: e.mr_enclave,
        mr_signer: [0; 32],
        isv_prod_id: e.isv_prod_id,
        isv_svn: 0,
        debug: e.debug,
        report_data: e.report_data,
        signer: e.signer(),
        status: "SIMULATION".into(),
        advisory_ids: Vec::new(),
        timestamp: ReportData::parse(&e.report_data).ok().map(|r| r.issued_at).filter(|t| *t > 0),
        td: None,
    })
}
