//! Attestation evidence as the Enigma contract takes it (`register`, `registerPrincipal`) and
//! as its events carry it back, so a client, a worker or a key manager can judge it again under
//! its own policy (the chain's verifiers apply the deployment's policy, which is not theirs).

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use enigma_attestation::Evidence;
use enigma_types::SignerAddress;

use crate::{
    Chain, ChainError, Result,
    bindings::Enigma,
    convert::{eth, eth_signer},
};

pub use enigma_attestation::onchain::{
    EVIDENCE_DCAP, EVIDENCE_IAS, EVIDENCE_SIMULATION, decode_evidence,
};

/// [`enigma_attestation::onchain::encode_evidence`], its error as the chain's.
pub fn encode_evidence(evidence: &Evidence) -> Result<(u8, Vec<u8>)> {
    enigma_attestation::onchain::encode_evidence(evidence).map_err(ChainError::Config)
}

/// Evidence as the chain recorded it, with the block it was recorded in.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvidence {
    /// The evidence, decoded.
    pub evidence: Evidence,
    /// The block of the registration.
    pub block: u64,
}

impl Chain {
    /// The evidence `signer` last registered with, `None` if it never registered.
    pub async fn worker_evidence(&self, signer: SignerAddress) -> Result<Option<RecordedEvidence>> {
        let filter = Filter::new()
            .address(eth(self.enigma_address()))
            .event_signature(Enigma::Registered::SIGNATURE_HASH)
            .topic2(eth_signer(signer).into_word())
            .from_block(0);
        let logs = self.provider().get_logs(&filter).await?;
        let Some(log) = logs.last() else { return Ok(None) };
        let block = log.block_number.unwrap_or_default();
        let r = log
            .log_decode::<Enigma::Registered>()
            .map_err(|e| ChainError::Config(format!("a Registered event does not decode: {e}")))?
            .inner
            .data;
        let evidence = decode_evidence(r.evidenceKind, &r.evidence).map_err(ChainError::Config)?;
        Ok(Some(RecordedEvidence { evidence, block }))
    }

    /// The key manager's evidence from `registerPrincipal`, `None` before it registered.
    pub async fn principal_evidence(&self) -> Result<Option<RecordedEvidence>> {
        let filter = Filter::new()
            .address(eth(self.enigma_address()))
            .event_signature(Enigma::PrincipalRegistered::SIGNATURE_HASH)
            .from_block(0);
        let logs = self.provider().get_logs(&filter).await?;
        let Some(log) = logs.last() else { return Ok(None) };
        let block = log.block_number.unwrap_or_default();
        let r = log
            .log_decode::<Enigma::PrincipalRegistered>()
            .map_err(|e| {
                ChainError::Config(format!("a PrincipalRegistered event does not decode: {e}"))
            })?
            .inner
            .data;
        let evidence = decode_evidence(r.evidenceKind, &r.evidence).map_err(ChainError::Config)?;
        Ok(Some(RecordedEvidence { evidence, block }))
    }
}
