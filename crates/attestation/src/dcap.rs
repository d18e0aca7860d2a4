//! DCAP quotes, verified by `dcap-qvl` against supplied collateral (offline).

use dcap_qvl::{QuoteCollateralV3, quote::Quote};
#[cfg(feature = "hardware")]
use dcap_qvl::{quote::Report, verify::QuoteVerifier};
#[cfg(feature = "hardware")]
use enigma_types::messages::ReportData;
use serde::{Deserialize, Serialize};

use crate::{Rejection, Tee};
#[cfg(feature = "hardware")]
use crate::{SignerAddress, TdMeasurement, TdRegister, Verdict};

/// A DCAP quote and the collateral to verify it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcapEvidence {
    /// The quote as the quoting enclave produced it.
    #[serde(with = "hex_vec")]
    pub quote: Vec<u8>,
    /// PCK CRLs, TCB info and QE identity, with their issuer chains and signatures.
    pub collateral: QuoteCollateralV3,
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.trim_start_matches("0x")).map_err(serde::de::Error::custom)
    }
}

/// Which TEE a quote comes from, by parsing it (no verification).
pub fn quote_tee(quote: &[u8]) -> Result<Tee, Rejection> {
    let parsed = Quote::parse(quote).map_err(|e| Rejection::QuoteMalformed(format!("{e:#}")))?;
    Ok(if parsed.report.is_sgx() { Tee::Sgx } else { Tee::Tdx })
}

/// Whether a TD's attributes mark it a debug TD: bit 0 (TUD.DEBUG) of the little-endian
/// TD attributes (its memory is then readable by the host).
#[must_use]
pub fn td_attributes_debug(attributes: [u8; 8]) -> bool {
    attributes[0] & 0x01 != 0
}

/// Verifies a quote with its collateral (the `hardware` feature).
#[cfg(feature = "hardware")]
pub(crate) fn verify(e: &DcapEvidence, allow_debug: bool, at: u64) -> Result<Verdict, Rejection> {
    let verified = QuoteVerifier::new_prod()
        .allow_debug(allow_debug)
        .verify(&e.quote, &e.collateral, at)
        .map_err(|err| Rejection::Dcap(format!("{err:#}")))?;
    let (tee, mr_enclave, mr_signer, isv_prod_id, isv_svn, debug, report_data, td) =
        match &verified.report {
            Report::SgxEnclave(r) => (
                Tee::Sgx,
                r.mr_enclave,
                r.mr_signer,
                r.isv_prod_id,
                r.isv_svn,
                crate::sgx_attributes_debug(r.attributes[0])?,
                r.report_data,
                None,
            ),
            other => {
                let td = other
                    .as_td10()
                    .ok_or_else(|| Rejection::QuoteMalformed("unknown report type".into()))?;
                let measurement = TdMeasurement {
                    mr_td: td.mr_td,
                    rtmr: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3].map(TdRegister),
                };
                let debug = td_attributes_debug(td.td_attributes);
                (
                    Tee::Tdx,
                    measurement.digest(),
                    [0u8; 32],
                    0,
                    0,
                    debug,
                    td.report_data,
                    Some(measurement),
                )
            }
        };
    let mut signer = [0u8; 20];
    signer.copy_from_slice(&report_data[..20]);
    Ok(Verdict {
        tee,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        debug,
        report_data,
        signer: SignerAddress(signer),
        status: verified.status,
        advisory_ids: verified.advisory_ids,
        // A quote carries no time; an enigma enclave puts one in its report data.
        timestamp: ReportData::parse(&report_data).ok().map(|r| r.issued_at).filter(|t| *t > 0),
        td,
    })
}
