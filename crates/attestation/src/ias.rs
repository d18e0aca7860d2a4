//! Intel IAS (EPID) attestation reports.

use serde::{Deserialize, Serialize};

#[cfg(feature = "hardware")]
pub(crate) use checks::verify;

/// Intel's "SGX Attestation Report Signing CA" root certificate (DER, valid to 2049).
const INTEL_ROOT_DER: &[u8] = include_bytes!("intel-ias-report-signing-root-ca.der");

/// The DER of Intel's report-signing root, which IAS signing certificates must chain to.
#[must_use]
pub fn intel_root_certificate() -> &'static [u8] {
    INTEL_ROOT_DER
}

/// An IAS attestation report as the service returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IasEvidence {
    /// The report JSON, byte for byte as signed.
    pub report: String,
    /// The RSA-SHA256 signature over `report` (the `X-IASReport-Signature` header, decoded).
    #[serde(with = "hex_vec")]
    pub signature: Vec<u8>,
    /// The signing certificate, PEM (the first certificate of `X-IASReport-Signing-Certificate`).
    pub signing_certificate: String,
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

/// Verifying a report: its certificate chain to Intel's root, its RSA signature and its
/// fields (the `hardware` feature: a client that only meets simulation evidence leaves it out).
#[cfg(feature = "hardware")]
mod checks {
    use base64::Engine as _;
    use rsa::{
        RsaPublicKey,
        pkcs1v15::{Signature as RsaSignature, VerifyingKey},
        pkcs8::DecodePublicKey,
        signature::Verifier,
    };
    use sha2::Sha256;
    use x509_cert::{
        Certificate,
        der::{Decode, DecodePem, Encode},
    };

    use super::{INTEL_ROOT_DER, IasEvidence};
    use crate::{Rejection, SignerAddress, Tee, Verdict, time::parse_ias_timestamp};

    /// sha256WithRSAEncryption.
    const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";

    fn rsa_key(cert: &Certificate, which: &str) -> Result<RsaPublicKey, Rejection> {
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Rejection::CertificateParse(format!("{which} public key: {e}")))?;
        RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| Rejection::CertificateParse(format!("{which} is not an RSA key: {e}")))
    }

    fn check_validity(cert: &Certificate, which: &'static str, at: u64) -> Result<(), Rejection> {
        let validity = &cert.tbs_certificate.validity;
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        if at < not_before || at > not_after {
            return Err(Rejection::CertificateExpired { which, not_before, not_after, at });
        }
        Ok(())
    }

    fn rsa_verify(key: RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
        RsaSignature::try_from(signature)
            .is_ok_and(|sig| VerifyingKey::<Sha256>::new(key).verify(message, &sig).is_ok())
    }

    /// Checks that `leaf` is issued and signed by Intel's root and that both are valid at `at`.
    fn check_chain(leaf: &Certificate, at: u64) -> Result<(), Rejection> {
        let root = Certificate::from_der(INTEL_ROOT_DER)
            .map_err(|e| Rejection::CertificateParse(format!("Intel root: {e}")))?;
        check_validity(&root, "Intel root", at)?;
        check_validity(leaf, "IAS signing", at)?;
        if leaf.tbs_certificate.issuer != root.tbs_certificate.subject {
            return Err(Rejection::CertificateNotFromIntel(format!(
                "it is issued by {}",
                leaf.tbs_certificate.issuer
            )));
        }
        if leaf.signature_algorithm.oid.to_string() != SHA256_WITH_RSA {
            return Err(Rejection::CertificateNotFromIntel(format!(
                "its signature algorithm {} is not sha256WithRSAEncryption",
                leaf.signature_algorithm.oid
            )));
        }
        let tbs = leaf
            .tbs_certificate
            .to_der()
            .map_err(|e| Rejection::CertificateParse(e.to_string()))?;
        let signature = leaf
            .signature
            .as_bytes()
            .ok_or_else(|| Rejection::CertificateParse("signature is not whole bytes".into()))?;
        if !rsa_verify(rsa_key(&root, "Intel root")?, &tbs, signature) {
            return Err(Rejection::CertificateNotFromIntel(
                "its signature does not verify under the root's key".into(),
            ));
        }
        Ok(())
    }

    /// Byte offsets in the 432-byte quote body (a 48-byte quote header, then the report body).
    mod offsets {
        pub(crate) const ATTRIBUTES: usize = 96;
        pub(crate) const MR_ENCLAVE: usize = 112;
        pub(crate) const MR_SIGNER: usize = 176;
        pub(crate) const ISV_PROD_ID: usize = 304;
        pub(crate) const ISV_SVN: usize = 306;
        pub(crate) const REPORT_DATA: usize = 368;
        pub(crate) const LEN: usize = 432;
    }

    pub(crate) fn verify(e: &IasEvidence, at: u64) -> Result<Verdict, Rejection> {
        let leaf = Certificate::from_pem(e.signing_certificate.as_bytes())
            .map_err(|err| Rejection::CertificateParse(err.to_string()))?;
        check_chain(&leaf, at)?;
        if !rsa_verify(rsa_key(&leaf, "IAS signing")?, e.report.as_bytes(), &e.signature) {
            return Err(Rejection::ReportSignature);
        }

        let report: serde_json::Value = serde_json::from_str(&e.report)
            .map_err(|err| Rejection::ReportMalformed(format!("not JSON: {err}")))?;
        let field = |name: &str| {
            report
                .get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| Rejection::ReportMalformed(format!("no `{name}` string")))
        };
        let status = field("isvEnclaveQuoteStatus")?.to_string();
        let timestamp = field("timestamp")?;
        let timestamp = parse_ias_timestamp(timestamp).ok_or_else(|| {
            Rejection::ReportMalformed(format!(
                "timestamp `{timestamp}` is not YYYY-MM-DDTHH:MM:SS"
            ))
        })?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(field("isvEnclaveQuoteBody")?)
            .map_err(|err| {
                Rejection::QuoteMalformed(format!("isvEnclaveQuoteBody is not base64: {err}"))
            })?;
        if body.len() != offsets::LEN {
            return Err(Rejection::QuoteMalformed(format!(
                "the quote body is {} bytes, not {}",
                body.len(),
                offsets::LEN
            )));
        }
        let advisory_ids = report
            .get("advisoryIDs")
            .and_then(serde_json::Value::as_array)
            .map(|ids| ids.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();

        let take32 = |at: usize| -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(&body[at..at + 32]);
            out
        };
        let u16le = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
        let mut report_data = [0u8; 64];
        report_data.copy_from_slice(&body[offsets::REPORT_DATA..offsets::REPORT_DATA + 64]);
        let mut signer = [0u8; 20];
        signer.copy_from_slice(&report_data[..20]);
        Ok(Verdict {
            tee: Tee::Sgx,
            mr_enclave: take32(offsets::MR_ENCLAVE),
            mr_signer: take32(offsets::MR_SIGNER),
            isv_prod_id: u16le(offsets::ISV_PROD_ID),
            isv_svn: u16le(offsets::ISV_SVN),
            debug: crate::sgx_attributes_debug(body[offsets::ATTRIBUTES])?,
            report_data,
            signer: SignerAddress(signer),
            status,
            advisory_ids,
            timestamp: Some(timestamp),
            td: None,
        })
    }
}
