//! Attestation evidence of enigma enclaves and its verification.
//!
//! Three kinds of [`Evidence`], one [`verify`]:
//! 1. **Simulation**: the devnet's [`SimulationAuthority`] signs an enclave's signer address,
//!    measurement, product id and debug flag (the message the chain also checks).
//! 2. **Intel IAS** (EPID) reports: the signing certificate must chain to Intel's report-signing
//!    root (embedded), the RSA-SHA256 signature must cover the exact report bytes, and the report
//!    and its quote body are parsed.
//! 3. **DCAP** quotes, verified with `dcap-qvl` against the supplied collateral.
//!
//! Every kind yields the same [`Verdict`] (measurement, signer, product id, SVN, debug flag,
//! report data, status), which the [`Policy`] then judges. A [`Rejection`] names the check that
//! failed. Time is always an argument — a report is judged at the time the caller gives (its own
//! timestamp, or now), never at an implicit wall clock.
//!
//! ```no_run
//! use enigma_attestation::{Evidence, Policy, verify};
//!
//! # let evidence: Evidence = todo!();
//! let policy = Policy::default().allow_status("GROUP_OUT_OF_DATE").allow_debug(true);
//! let verdict = verify(&evidence, &policy, 1_576_320_000)?;
//! println!("enclave signer {} with MRENCLAVE {}", verdict.signer, hex::encode(verdict.mr_enclave));
//! # Ok::<(), enigma_attestation::Rejection>(())
//! ```

mod dcap;
mod ias;
mod sim;
mod time;

pub mod onchain;

pub use dcap::{DcapEvidence, quote_tee, td_attributes_debug};
pub use enigma_types::SignerAddress;
pub use ias::{IasEvidence, intel_root_certificate};
pub use sim::{SimulationAuthority, SimulationEvidence, simulation_measurement};

/// A TDX trust domain's measurement: MRTD and the four runtime measurement registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdMeasurement {
    /// MRTD: the TD's initial contents.
    #[serde(with = "sim::hex_fixed")]
    pub mr_td: [u8; 48],
    /// RTMR0–3: firmware, OS loader, kernel and application measurements.
    pub rtmr: [TdRegister; 4],
}

/// One 48-byte TDX measurement register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdRegister(#[serde(with = "sim::hex_fixed")] pub [u8; 48]);

impl TdMeasurement {
    /// `H(mrTd ‖ rtmr0 ‖ rtmr1 ‖ rtmr2 ‖ rtmr3)`: the 32 bytes a TD's evidence reports as its
    /// measurement (what allow-lists hold), covering all 240 bytes.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut all = Vec::with_capacity(240);
        all.extend_from_slice(&self.mr_td);
        for r in &self.rtmr {
            all.extend_from_slice(&r.0);
        }
        enigma_types::keccak256(all)
    }
}
pub use time::parse_ias_timestamp;

use enigma_types::Address;
use serde::{Deserialize, Serialize};

/// The product id of worker enclaves.
pub const WORKER_PRODUCT_ID: u16 = 1;
/// The product id of the key-management enclave.
pub const KM_PRODUCT_ID: u16 = 2;

/// Evidence that a signer address belongs to a genuine enclave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Signed by a devnet's simulation attestation authority.
    Simulation(SimulationEvidence),
    /// An Intel IAS (EPID) attestation report.
    Ias(IasEvidence),
    /// A DCAP quote with its collateral.
    Dcap(DcapEvidence),
}

impl Evidence {
    /// A short name of the kind, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Simulation(_) => "simulation",
            Self::Ias(_) => "IAS",
            Self::Dcap(_) => "DCAP",
        }
    }
}

/// The trusted execution environment a piece of evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tee {
    /// Simulated SGX (no hardware protection; devnets only).
    SimulatedSgx,
    /// An Intel SGX enclave.
    Sgx,
    /// An Intel TDX trust domain.
    Tdx,
}

/// What verified evidence says about the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Where it runs.
    pub tee: Tee,
    /// The enclave's measurement: MRENCLAVE for SGX, [`TdMeasurement::digest`] for TDX.
    pub mr_enclave: [u8; 32],
    /// The measurement of its signing key (zero for simulation evidence).
    pub mr_signer: [u8; 32],
    /// Its product id: [`WORKER_PRODUCT_ID`] or [`KM_PRODUCT_ID`].
    pub isv_prod_id: u16,
    /// Its security version.
    pub isv_svn: u16,
    /// Whether it runs in debug mode (its memory is then readable by the host).
    pub debug: bool,
    /// The 64 bytes the enclave put in its report; the signer address is the first 20
    /// (`enigma_types::messages::ReportData` reads the rest).
    #[serde(with = "sim::hex_fixed")]
    pub report_data: [u8; 64],
    /// The signer address the evidence vouches for.
    pub signer: SignerAddress,
    /// The attestation service's status (e.g. `OK`, `GROUP_OUT_OF_DATE`, `UpToDate`).
    pub status: String,
    /// Security advisories that apply, if the service lists them.
    pub advisory_ids: Vec<String>,
    /// When the evidence was issued (Unix seconds): the attestation service's time for IAS,
    /// the `issuedAt` of the enclave's report data for DCAP and simulation evidence.
    pub timestamp: Option<u64>,
    /// For a TDX trust domain, its full measurement.
    pub td: Option<TdMeasurement>,
}

/// What evidence must show to be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The simulation authority whose signatures are accepted; `None` rejects simulation evidence.
    pub simulation_authority: Option<Address>,
    /// Allowed measurements (MRENCLAVE, or [`TdMeasurement::digest`] for TDX). A policy must
    /// pin the measurement: with neither this nor `mr_signer`, all evidence is rejected.
    pub mr_enclaves: Option<Vec<[u8; 32]>>,
    /// The required MRSIGNER (SGX; simulated enclaves have none); `None` accepts any, if
    /// `mr_enclaves` is set.
    pub mr_signer: Option<[u8; 32]>,
    /// The required product id (SGX and simulation; a TD has none: its role is its
    /// measurement); `None` accepts any.
    pub isv_prod_id: Option<u16>,
    /// The lowest accepted security version.
    pub min_isv_svn: u16,
    /// Accepted statuses of the attestation service.
    pub allowed_statuses: Vec<String>,
    /// Whether debug-mode enclaves are accepted.
    pub allow_debug: bool,
    /// The oldest evidence accepted, in seconds; when set, evidence without a time is rejected.
    pub max_age_secs: Option<u64>,
}

impl Default for Policy {
    /// Strict: no simulation, no debug, statuses `OK` (IAS) and `UpToDate` (DCAP) only, and no
    /// measurement pinned, so nothing passes until `with_mr_enclaves` or `with_mr_signer`.
    fn default() -> Self {
        Self {
            simulation_authority: None,
            mr_enclaves: None,
            mr_signer: None,
            isv_prod_id: None,
            min_isv_svn: 0,
            allowed_statuses: vec!["OK".into(), "UpToDate".into()],
            allow_debug: false,
            max_age_secs: None,
        }
    }
}

impl Policy {
    /// Accepts simulation evidence signed by `authority` (and simulated enclaves' debug flag).
    #[must_use]
    pub fn with_simulation_authority(mut self, authority: Address) -> Self {
        self.simulation_authority = Some(authority);
        self
    }

    /// Also accepts `status`.
    #[must_use]
    pub fn allow_status(mut self, status: &str) -> Self {
        self.allowed_statuses.push(status.into());
        self
    }

    /// Sets whether debug enclaves are accepted.
    #[must_use]
    pub fn allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }

    /// Accepts only these measurements.
    #[must_use]
    pub fn with_mr_enclaves(mut self, allowed: Vec<[u8; 32]>) -> Self {
        self.mr_enclaves = Some(allowed);
        self
    }

    /// Requires this MRSIGNER.
    #[must_use]
    pub fn with_mr_signer(mut self, mr_signer: [u8; 32]) -> Self {
        self.mr_signer = Some(mr_signer);
        self
    }

    /// Requires this product id.
    #[must_use]
    pub fn with_product_id(mut self, id: u16) -> Self {
        self.isv_prod_id = Some(id);
        self
    }

    /// Rejects evidence older than `secs` at the time of judgement.
    #[must_use]
    pub fn with_max_age(mut self, secs: u64) -> Self {
        self.max_age_secs = Some(secs);
        self
    }

    /// Judges a verdict whose signatures already checked out.
    pub fn check(&self, verdict: &Verdict, at_time: u64) -> Result<(), Rejection> {
        if verdict.tee != Tee::SimulatedSgx && !self.allowed_statuses.contains(&verdict.status) {
            return Err(Rejection::StatusNotAllowed {
                status: verdict.status.clone(),
                allowed: self.allowed_statuses.clone(),
            });
        }
        if self.mr_enclaves.is_none() && self.mr_signer.is_none() {
            return Err(Rejection::NoMeasurementPolicy);
        }
        if let Some(allowed) = &self.mr_enclaves
            && !allowed.contains(&verdict.mr_enclave)
        {
            return Err(Rejection::MrEnclaveNotAllowed {
                mr_enclave: hex::encode(verdict.mr_enclave),
            });
        }
        if let Some(expected) = &self.mr_signer
            && *expected != verdict.mr_signer
        {
            return Err(Rejection::MrSignerMismatch {
                expected: hex::encode(expected),
                got: hex::encode(verdict.mr_signer),
            });
        }
        if verdict.tee != Tee::Tdx {
            if let Some(expected) = self.isv_prod_id
                && expected != verdict.isv_prod_id
            {
                return Err(Rejection::ProductIdMismatch { expected, got: verdict.isv_prod_id });
            }
            if verdict.isv_svn < self.min_isv_svn {
                return Err(Rejection::SvnTooLow { min: self.min_isv_svn, got: verdict.isv_svn });
            }
        }
        if verdict.debug && !self.allow_debug {
            return Err(Rejection::DebugNotAllowed);
        }
        match verdict.timestamp {
            Some(issued) => {
                // A small allowance for clock skew between the attestation service and the judge.
                if issued > at_time.saturating_add(300) {
                    return Err(Rejection::FromTheFuture { timestamp: issued, at: at_time });
                }
                if let Some(max) = self.max_age_secs {
                    let age = at_time.saturating_sub(issued);
                    if age > max {
                        return Err(Rejection::TooOld { age_secs: age, max_secs: max });
                    }
                }
            }
            None if self.max_age_secs.is_some() => return Err(Rejection::Undated),
            None => {}
        }
        Ok(())
    }
}

/// Why evidence was rejected: each names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Hardware (IAS or DCAP) evidence, judged by a build without the `hardware` feature.
    #[error(
        "this build verifies simulation evidence only: hardware (IAS or DCAP) evidence needs the `hardware` feature (in enigma-js, the hardware-attestation module)"
    )]
    HardwareNotBuilt,
    /// Simulation evidence under a policy without a simulation authority.
    #[error(
        "simulation evidence is not accepted here (no simulation attestation authority is configured)"
    )]
    SimulationNotAccepted,
    /// Simulation evidence not signed by the configured authority.
    #[error(
        "the simulation attestation is signed by {got}, not by the configured authority {expected}"
    )]
    WrongAuthority {
        /// The configured authority.
        expected: Address,
        /// Who signed.
        got: Address,
    },
    /// A signature that does not parse or recover.
    #[error("the attestation signature is invalid: {0}")]
    BadSignature(String),
    /// The IAS signing certificate could not be parsed.
    #[error("the IAS signing certificate cannot be parsed: {0}")]
    CertificateParse(String),
    /// The IAS signing certificate is not issued by Intel's report-signing root.
    #[error(
        "the IAS signing certificate is not signed by Intel's SGX Attestation Report Signing CA: {0}"
    )]
    CertificateNotFromIntel(String),
    /// A certificate is not valid at the time of judgement.
    #[error(
        "the {which} certificate is valid from {not_before} to {not_after} (Unix seconds), not at {at}"
    )]
    CertificateExpired {
        /// Which certificate.
        which: &'static str,
        /// Start of validity.
        not_before: u64,
        /// End of validity.
        not_after: u64,
        /// The time of judgement.
        at: u64,
    },
    /// The RSA signature does not cover the report bytes.
    #[error(
        "the report's RSA-SHA256 signature does not verify under the IAS signing certificate (was the report altered?)"
    )]
    ReportSignature,
    /// The IAS report is not the expected JSON.
    #[error("the IAS report is malformed: {0}")]
    ReportMalformed(String),
    /// The quote (body) is not the expected structure.
    #[error("the quote is malformed: {0}")]
    QuoteMalformed(String),
    /// DCAP verification (quote signature, certificate chain, collateral, TCB) failed.
    #[error("DCAP quote verification failed: {0}")]
    Dcap(String),
    /// The status is not in the policy's allowed set.
    #[error("attestation status {status} is not allowed (allowed: {allowed:?})")]
    StatusNotAllowed {
        /// The evidence's status.
        status: String,
        /// The allowed ones.
        allowed: Vec<String>,
    },
    /// The measurement is not in the allow-list.
    #[error("MRENCLAVE {mr_enclave} is not in the allow-list")]
    MrEnclaveNotAllowed {
        /// The measurement, hex.
        mr_enclave: String,
    },
    /// The signer measurement differs.
    #[error("MRSIGNER {got} differs from the required {expected}")]
    MrSignerMismatch {
        /// Required, hex.
        expected: String,
        /// Found, hex.
        got: String,
    },
    /// The product id differs.
    #[error("product id {got} is not the required {expected} (1 = worker, 2 = key manager)")]
    ProductIdMismatch {
        /// Required.
        expected: u16,
        /// Found.
        got: u16,
    },
    /// The security version is below the minimum.
    #[error("ISVSVN {got} is below the minimum {min}")]
    SvnTooLow {
        /// The minimum.
        min: u16,
        /// Found.
        got: u16,
    },
    /// A debug enclave under a policy that forbids them.
    #[error("the enclave runs in debug mode, which this policy does not allow")]
    DebugNotAllowed,
    /// The evidence is older than allowed.
    #[error("the evidence is {age_secs} s old, older than the allowed {max_secs} s; attest again")]
    TooOld {
        /// Its age.
        age_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// The evidence claims to be issued after the time of judgement.
    #[error("the evidence is dated {timestamp}, after the time of judgement {at}")]
    FromTheFuture {
        /// Its timestamp.
        timestamp: u64,
        /// The time of judgement.
        at: u64,
    },
    /// A policy that pins no measurement accepts nothing.
    #[error(
        "the attestation policy pins no measurement (give allowed MRENCLAVEs or an MRSIGNER), so it accepts no enclave"
    )]
    NoMeasurementPolicy,
    /// Evidence without a time under a policy with a maximum age.
    #[error(
        "the evidence carries no time, and this policy accepts only evidence younger than a maximum age; attest again"
    )]
    Undated,
    /// SGX attributes an enigma enclave never has.
    #[error("the enclave's attributes are not those of an initialized 64-bit enclave: {0}")]
    BadAttributes(String),
}

/// SGX attribute flags (the low byte of `ATTRIBUTES.FLAGS`).
mod sgx_flags {
    pub(crate) const INIT: u8 = 0x01;
    pub(crate) const DEBUG: u8 = 0x02;
    pub(crate) const MODE64BIT: u8 = 0x04;
    pub(crate) const PROVISION_KEY: u8 = 0x10;
    pub(crate) const EINITTOKEN_KEY: u8 = 0x20;
}

/// Reads an SGX enclave's attribute flags (the low byte of `ATTRIBUTES.FLAGS`): whether it is a debug enclave, after checking that it
/// is an initialized 64-bit application enclave (no provisioning or launch-token key access,
/// which only Intel's architectural enclaves have).
pub fn sgx_attributes_debug(flags: u8) -> Result<bool, Rejection> {
    use sgx_flags::*;
    if flags & INIT == 0 {
        return Err(Rejection::BadAttributes("INIT is not set".into()));
    }
    if flags & MODE64BIT == 0 {
        return Err(Rejection::BadAttributes("it is not a 64-bit enclave (MODE64BIT)".into()));
    }
    if flags & (PROVISION_KEY | EINITTOKEN_KEY) != 0 {
        return Err(Rejection::BadAttributes(
            "it may use the provisioning or launch-token key (an architectural enclave)".into(),
        ));
    }
    Ok(flags & DEBUG != 0)
}

/// Verifies `evidence` and judges it under `policy` at `at_time` (Unix seconds).
pub fn verify(evidence: &Evidence, policy: &Policy, at_time: u64) -> Result<Verdict, Rejection> {
    let verdict = match evidence {
        Evidence::Simulation(e) => sim::verify(e, policy)?,
        #[cfg(feature = "hardware")]
        Evidence::Ias(e) => ias::verify(e, at_time)?,
        #[cfg(feature = "hardware")]
        Evidence::Dcap(e) => dcap::verify(e, policy.allow_debug, at_time)?,
        #[cfg(not(feature = "hardware"))]
        Evidence::Ias(_) | Evidence::Dcap(_) => return Err(Rejection::HardwareNotBuilt),
    };
    policy.check(&verdict, at_time)?;
    Ok(verdict)
}

/// Judges a worker's registered evidence as a client must before sending it secrets: the
/// evidence verifies under `policy` at `at` (Unix seconds) and vouches for `signer`. Returns the
/// verdict; the error names the check that failed. [`check_binding`] then checks whom the
/// enclave serves.
pub fn check_worker_evidence(
    evidence: &Evidence,
    policy: &Policy,
    signer: SignerAddress,
    at: u64,
) -> Result<Verdict, String> {
    let verdict = verify(evidence, policy, at).map_err(|e| e.to_string())?;
    if verdict.signer != signer {
        return Err(format!("the evidence vouches for {}, not for {signer}", verdict.signer));
    }
    Ok(verdict)
}

/// Checks that a verified enclave's report data binds the worker's `operator` and the network's
/// key manager `principal`: its enclave takes state keys from that key manager only, so a
/// genuine enclave its host pointed at a key manager of its own is refused here.
pub fn check_binding(
    verdict: &Verdict,
    operator: Address,
    principal: Address,
) -> Result<(), String> {
    let data = enigma_types::messages::ReportData::parse(&verdict.report_data)
        .map_err(|e| format!("{e}: it is not an enigma worker enclave's"))?;
    if !data.binds(&operator, &principal) {
        return Err(format!(
            "its report data does not bind operator {operator} and this network's key manager {principal}: the enclave serves another key manager or operator"
        ));
    }
    Ok(())
}
