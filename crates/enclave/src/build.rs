//! What an enclave is built to trust: fixed when it is built, part of its measurement.
//!
//! On hardware the policy an enclave applies to its peers' evidence is compiled into the binary,
//! so a different policy is a different MRENCLAVE, and allow-lists (on chain, in clients, in the
//! key manager) decide which builds take part. The simulation backend models exactly that: an
//! [`EnclaveBuild`] is given when the backend is created (as choosing which binary to load), and
//! its digest is folded into the simulated measurement and the sealing key. The host has no call
//! that changes it afterwards.

use enigma_attestation::{KM_PRODUCT_ID, Policy, WORKER_PRODUCT_ID, simulation_measurement};
use enigma_types::{Address, enc::Encoder, padding::Padding};

use crate::api::Role;

/// The policy and settings compiled into an enclave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveBuild {
    /// Simulation evidence signed by this authority is accepted from peer enclaves; `None` on
    /// hardware networks.
    pub simulation_authority: Option<Address>,
    /// Hardware peers must have this MRSIGNER (and the peer's product id).
    pub mr_signer: Option<[u8; 32]>,
    /// Hardware worker measurements a key manager of this build serves (besides the simulated
    /// worker of the same build).
    pub worker_measurements: Vec<[u8; 32]>,
    /// Hardware key-manager measurements a worker of this build accepts as its principal.
    pub km_measurements: Vec<[u8; 32]>,
    /// Accepted statuses of IAS and DCAP evidence.
    pub allowed_statuses: Vec<String>,
    /// Whether peers in debug mode are accepted.
    pub allow_debug_peers: bool,
    /// The oldest peer evidence accepted (seconds); `None` accepts any age.
    pub max_evidence_age_secs: Option<u64>,
    /// How outputs, error texts, deltas and snapshots are padded before encryption.
    pub padding: Padding,
}

impl EnclaveBuild {
    /// A simulation build trusting `authority` (a devnet's or a test harness's, whose key only
    /// it holds) and the simulated enclaves of the same build; it pads with Padmé buckets of at
    /// least 64 bytes. With `None` it trusts no peer evidence at all.
    #[must_use]
    pub fn simulation(authority: Option<Address>) -> Self {
        Self {
            simulation_authority: authority,
            mr_signer: None,
            worker_measurements: Vec::new(),
            km_measurements: Vec::new(),
            allowed_statuses: vec!["OK".into(), "UpToDate".into()],
            allow_debug_peers: false,
            max_evidence_age_secs: None,
            padding: Padding::default(),
        }
    }

    /// The digest of everything above, in a fixed order.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(b"enigma-enclave-build-v1")
            .bytes(self.simulation_authority.map(|a| a.0).unwrap_or_default().as_slice())
            .bytes(self.mr_signer.unwrap_or_default().as_slice())
            .list(&self.worker_measurements, |e, m| e.bytes(m))
            .list(&self.km_measurements, |e, m| e.bytes(m))
            .list(&self.allowed_statuses, |e, s| e.bytes(s.as_bytes()))
            .u8(u8::from(self.allow_debug_peers))
            .u64(self.max_evidence_age_secs.unwrap_or(0))
            .bytes(&self.padding.tag())
            .digest()
    }

    /// The measurement a simulated enclave of `role` of this build reports.
    #[must_use]
    pub fn measurement(&self, role: Role) -> [u8; 32] {
        simulation_measurement(role.name(), &self.digest())
    }

    /// The policy this build applies to a peer enclave of `role`: the simulated enclave of the
    /// same build, or a listed hardware measurement, or (with an MRSIGNER) any enclave of that
    /// signer; always the role's product id.
    pub(crate) fn peer_policy(&self, role: Role) -> Policy {
        let (product, listed) = match role {
            Role::Worker => (WORKER_PRODUCT_ID, &self.worker_measurements),
            Role::KeyManager => (KM_PRODUCT_ID, &self.km_measurements),
        };
        let mut allowed = listed.clone();
        if self.simulation_authority.is_some() {
            allowed.push(self.measurement(role));
        }
        Policy {
            simulation_authority: self.simulation_authority,
            // With an MRSIGNER, the signer decides; a list narrows it further only if given.
            mr_enclaves: if self.mr_signer.is_some() && listed.is_empty() {
                None
            } else {
                Some(allowed)
            },
            mr_signer: self.mr_signer,
            isv_prod_id: Some(product),
            min_isv_svn: 0,
            allowed_statuses: self.allowed_statuses.clone(),
            allow_debug: self.allow_debug_peers,
            max_age_secs: self.max_evidence_age_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnet() -> EnclaveBuild {
        EnclaveBuild::simulation(Some(Address([0xa7; 20])))
    }

    #[test]
    fn every_setting_changes_the_measurement() {
        let base = devnet();
        let m = base.measurement(Role::Worker);
        assert_ne!(m, base.measurement(Role::KeyManager));
        let variants = [
            EnclaveBuild { simulation_authority: Some(Address([1; 20])), ..base.clone() },
            EnclaveBuild { mr_signer: Some([1; 32]), ..base.clone() },
            EnclaveBuild { worker_measurements: vec![[1; 32]], ..base.clone() },
            EnclaveBuild { km_measurements: vec![[1; 32]], ..base.clone() },
            EnclaveBuild { allowed_statuses: vec![], ..base.clone() },
            EnclaveBuild { allow_debug_peers: true, ..base.clone() },
            EnclaveBuild { max_evidence_age_secs: Some(1), ..base.clone() },
            EnclaveBuild { padding: Padding::Exact, ..base },
        ];
        for v in variants {
            assert_ne!(v.measurement(Role::Worker), m, "{v:?}");
        }
    }

    #[test]
    fn peer_policies_pin_the_role_and_the_build() {
        let b = devnet();
        let p = b.peer_policy(Role::KeyManager);
        assert_eq!(p.isv_prod_id, Some(KM_PRODUCT_ID));
        assert_eq!(p.mr_enclaves, Some(vec![b.measurement(Role::KeyManager)]));
        assert!(!p.allow_debug);
        let hw = EnclaveBuild { simulation_authority: None, mr_signer: Some([3; 32]), ..devnet() };
        let p = hw.peer_policy(Role::Worker);
        assert_eq!((p.mr_enclaves, p.mr_signer), (None, Some([3; 32])));
    }
}
