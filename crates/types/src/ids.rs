//! Identifiers and hashes (PROTOCOL.md section 3).

use core::{fmt, str::FromStr};

use crate::{ParseError, fixed::fixed_bytes, hash::keccak256};

fixed_bytes!(
    /// A Keccak-256 digest with no more specific meaning.
    Hash256, 32, "hash"
);
fixed_bytes!(
    /// A task's id: `H(sender(20) ‖ u256(nonce))`, the sender's task counter on chain as nonce.
    TaskId, 32, "task id"
);
fixed_bytes!(
    /// A secret contract's address: the task id of its deployment.
    ContractAddress, 32, "contract address"
);
fixed_bytes!(
    /// `H(enc(encryptedFn, encryptedArgs, contractAddress | preCodeHash, userPubKey))`.
    InputsHash, 32, "inputs hash"
);
fixed_bytes!(
    /// `H(code)`: the hash of a contract's wasm module as uploaded, stored and executed.
    CodeHash, 32, "code hash"
);
fixed_bytes!(
    /// `H(encrypted delta)`, or 32 zero bytes when a task changed no state.
    DeltaHash, 32, "delta hash"
);
fixed_bytes!(
    /// `H(encrypted output)`; for a deploy, the code hash.
    OutputHash, 32, "output hash"
);

fixed_bytes!(@common
    /// A 20-byte Ethereum address: `H(pubkey64)[12..32]`. Prints EIP-55 checksummed.
    Address, 20, "address"
);
fixed_bytes!(@common
    /// The address of an enclave's signing key: who signs receipts, results and key requests.
    /// Prints EIP-55 checksummed.
    SignerAddress, 20, "signer address"
);

impl Address {
    /// The address of an uncompressed public key given without its `04` prefix.
    #[must_use]
    pub fn from_public_key(public_key: &[u8; 64]) -> Self {
        let digest = keccak256(public_key);
        let mut out = [0u8; 20];
        out.copy_from_slice(digest.get(12..).unwrap_or(&[0; 20]));
        Self(out)
    }
}

impl From<Address> for SignerAddress {
    fn from(value: Address) -> Self {
        Self(value.0)
    }
}

impl From<SignerAddress> for Address {
    fn from(value: SignerAddress) -> Self {
        Self(value.0)
    }
}

impl From<TaskId> for ContractAddress {
    /// The contract a deployment task creates has that task's id as its address.
    fn from(value: TaskId) -> Self {
        Self(value.0)
    }
}

/// Writes `bytes` as EIP-55 mixed-case hex: a letter is upper case when the matching nibble of
/// Keccak-256 of the lower-case hex is 8 or more.
fn write_checksummed(f: &mut fmt::Formatter<'_>, bytes: &[u8; 20]) -> fmt::Result {
    let mut lower = [0u8; 40];
    hex::encode_to_slice(bytes, &mut lower).map_err(|_| fmt::Error)?;
    let digest = keccak256(lower);
    let mut out = lower;
    for (i, c) in out.iter_mut().enumerate() {
        let byte = digest.get(i / 2).copied().unwrap_or(0);
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        if c.is_ascii_alphabetic() && nibble >= 8 {
            c.make_ascii_uppercase();
        }
    }
    f.write_str("0x")?;
    f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
}

/// Parses an address: any case is accepted when uniform; mixed case must match EIP-55.
fn parse_checksummed(s: &str, what: &'static str) -> Result<[u8; 20], ParseError> {
    let bytes = crate::fixed::parse_hex::<20>(s, what)?;
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let has_lower = digits.bytes().any(|c| c.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|c| c.is_ascii_uppercase());
    if has_lower && has_upper {
        let canonical = alloc::format!("{}", Checksummed(&bytes));
        if canonical.get(2..) != Some(digits) {
            return Err(ParseError::BadChecksum);
        }
    }
    Ok(bytes)
}

struct Checksummed<'a>(&'a [u8; 20]);

impl fmt::Display for Checksummed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_checksummed(f, self.0)
    }
}

macro_rules! address_text {
    ($name:ident, $what:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_checksummed(f, &self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_checksummed(s, $what).map(Self)
            }
        }
    };
}

address_text!(Address, "address");
address_text!(SignerAddress, "signer address");

/// An epoch: the ordinal of a set of worker parameters (the KM's epoch counter, the `nonce` in
/// its signed epoch message). Epochs are also named on chain by the block number at which their
/// parameters took effect; that number is carried as a plain `u64` block number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch after this one, or `None` at the end of the counter.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use alloc::{format, string::ToString};

    use proptest::prelude::*;

    use super::*;

    /// EIP-55's own examples.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn address_display_is_eip55() {
        for s in EIP55 {
            let a: Address = s.to_ascii_lowercase().parse().unwrap();
            assert_eq!(a.to_string(), s);
            let signer: SignerAddress = s.parse().unwrap();
            assert_eq!(signer.to_string(), s);
        }
    }

    #[test]
    fn address_parse_accepts_uniform_case_and_rejects_a_bad_checksum() {
        let s = EIP55[0];
        assert!(s.to_ascii_lowercase().parse::<Address>().is_ok());
        assert!(format!("0x{}", s[2..].to_ascii_uppercase()).parse::<Address>().is_ok());
        assert!(s[2..].parse::<Address>().is_ok(), "0x is optional");
        let flipped = s.replacen('a', "A", 1);
        assert_eq!(flipped.parse::<Address>(), Err(ParseError::BadChecksum));
    }

    #[test]
    fn hashes_display_lower_hex_with_0x_and_parse_back() {
        let id = TaskId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s, format!("0x{}", "ab".repeat(32)));
        assert_eq!(s.parse::<TaskId>().unwrap(), id);
        assert_eq!(s[2..].to_ascii_uppercase().parse::<TaskId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("TaskId({s})"));
        assert_eq!(format!("{id:x}"), "ab".repeat(32));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert_eq!(
            "0x1234".parse::<CodeHash>(),
            Err(ParseError::WrongLength { what: "code hash", expected: 32, got: 2 })
        );
        assert_eq!("0x123".parse::<CodeHash>(), Err(ParseError::InvalidHex));
        assert_eq!(
            format!("0x{}", "zz".repeat(32)).parse::<CodeHash>(),
            Err(ParseError::InvalidHex)
        );
        let msg = "0x12".parse::<SignerAddress>().unwrap_err().to_string();
        assert!(msg.contains("signer address is 20 bytes"), "{msg}");
    }

    #[test]
    fn from_slice_checks_the_length() {
        assert!(DeltaHash::from_slice(&[0; 31]).is_err());
        assert_eq!(DeltaHash::from_slice(&[0; 32]).unwrap(), DeltaHash::ZERO);
        assert!(DeltaHash::ZERO.is_zero());
    }

    #[test]
    fn serde_json_uses_hex_strings() {
        let a: Address = EIP55[1].parse().unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", EIP55[1]));
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
        let bad = serde_json::from_str::<TaskId>("\"0x00\"").unwrap_err().to_string();
        assert!(bad.contains("task id is 32 bytes"), "{bad}");
        assert_eq!(serde_json::to_string(&Epoch(7)).unwrap(), "7");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_address_round_trips_through_its_checksum(bytes in any::<[u8; 20]>()) {
            let a = Address(bytes);
            prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }

        #[test]
        fn every_hash_round_trips_through_hex(bytes in any::<[u8; 32]>()) {
            let h = InputsHash(bytes);
            prop_assert_eq!(h.to_string().parse::<InputsHash>().unwrap(), h);
        }
    }
}
