//! Verified callers: a task signed by its sender's Ethereum key (EIP-712), which the enclave
//! checks before it tells the contract who calls it.
//!
//! The signed message is the typed struct
//! `EnigmaTask(bytes32 contract,address sender,uint256 nonce,bytes32 inputsHash,uint256 value)`
//! in the domain `EIP712Domain(string name,string version,bytes32 salt)` with name `"Enigma"`,
//! version `"1"` and as salt the key manager's signer address (left-padded to 32 bytes): each
//! network has its own key manager, so a signature for one network is none for another. A
//! wallet signs it with `eth_signTypedData_v4`. The task id is `keccak256(sender ‖ u256 nonce)`,
//! so a proof that names its sender and nonce is tied to one task record — the record the chain
//! took from that sender — and cannot be replayed for another.

use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{Address, ContractAddress, InputsHash, TaskId, keccak256, payouts::u256_from_u128};

/// `keccak256("EIP712Domain(string name,string version,bytes32 salt)")`'s preimage.
pub const DOMAIN_TYPE: &str = "EIP712Domain(string name,string version,bytes32 salt)";
/// The typed struct a task's sender signs.
pub const TASK_TYPE: &str =
    "EnigmaTask(bytes32 contract,address sender,uint256 nonce,bytes32 inputsHash,uint256 value)";
/// The typed struct a query's caller signs (`query` is its `messages::query_hash`).
pub const QUERY_TYPE: &str = "EnigmaQuery(bytes32 contract,bytes32 query)";
/// The domain's name.
pub const DOMAIN_NAME: &str = "Enigma";
/// The domain's version.
pub const DOMAIN_VERSION: &str = "1";

/// Keccak-256 of the type strings and the domain's fields, computed once (a test checks each).
const DOMAIN_TYPE_HASH: [u8; 32] = [
    0x59, 0x9a, 0x80, 0xfc, 0xaa, 0x47, 0xb9, 0x5e, 0x23, 0x23, 0xab, 0x4d, 0x34, 0xd3, 0x4e, 0x0c,
    0xc9, 0xfe, 0xda, 0x4b, 0x84, 0x3e, 0xda, 0xfc, 0xc3, 0x0c, 0x7b, 0xdf, 0x60, 0xea, 0x15, 0xbf,
];
const DOMAIN_NAME_HASH: [u8; 32] = [
    0xba, 0x83, 0xbe, 0x9d, 0x4f, 0x16, 0x95, 0x61, 0xf3, 0x2d, 0xcb, 0x18, 0x52, 0x73, 0xe3, 0xb5,
    0x93, 0x36, 0x40, 0x60, 0x03, 0x21, 0x10, 0x80, 0xed, 0x46, 0x3f, 0xe7, 0x72, 0x3a, 0x7d, 0x3c,
];
const DOMAIN_VERSION_HASH: [u8; 32] = [
    0xc8, 0x9e, 0xfd, 0xaa, 0x54, 0xc0, 0xf2, 0x0c, 0x7a, 0xdf, 0x61, 0x28, 0x82, 0xdf, 0x09, 0x50,
    0xf5, 0xa9, 0x51, 0x63, 0x7e, 0x03, 0x07, 0xcd, 0xcb, 0x4c, 0x67, 0x2f, 0x29, 0x8b, 0x8b, 0xc6,
];
const TASK_TYPE_HASH: [u8; 32] = [
    0xee, 0x1d, 0xaf, 0xa0, 0x7a, 0xc7, 0x07, 0x71, 0xbb, 0xb5, 0x18, 0xbf, 0xde, 0x88, 0x98, 0xb8,
    0xfb, 0x46, 0xb7, 0x87, 0xb4, 0xc3, 0xde, 0x06, 0x67, 0xcb, 0xaa, 0xcc, 0x94, 0x3b, 0xfb, 0x4b,
];
const QUERY_TYPE_HASH: [u8; 32] = [
    0xf3, 0xba, 0x36, 0x59, 0x4f, 0x9d, 0xfc, 0x32, 0x22, 0x58, 0x73, 0x9e, 0xf1, 0x67, 0xa6, 0xd0,
    0xc5, 0x1c, 0x02, 0xe2, 0x5c, 0xe7, 0x85, 0xbe, 0xa6, 0xc9, 0xe6, 0xc0, 0xdb, 0x2e, 0x79, 0x1f,
];
const PERMIT_TYPE_HASH: [u8; 32] = [
    0x71, 0x18, 0x8e, 0x3c, 0x81, 0x74, 0x44, 0x98, 0x9b, 0x99, 0xfe, 0xa3, 0xab, 0xd9, 0x8f, 0x27,
    0x74, 0x73, 0xc7, 0x4f, 0x40, 0x6e, 0x69, 0x0c, 0x9d, 0x02, 0x55, 0x53, 0x08, 0x4d, 0x06, 0x3b,
];

/// A task's proof of its caller: the record's sender and task nonce, and the sender's signature
/// over [`caller_digest`]. Sent beside the encrypted inputs (it holds nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerProof {
    /// The account that recorded the task (and signs it).
    pub sender: Address,
    /// Its task nonce: the task id is `task_id(sender, nonce)`.
    pub nonce: u64,
    /// `r ‖ s ‖ v` (65 bytes) over [`caller_digest`].
    pub signature: Vec<u8>,
}

/// Why a caller proof does not stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerError {
    /// The proof's sender and nonce name another task than the one it came with.
    OtherTask,
    /// The signature is malformed or was made by another key than the sender's.
    BadSignature,
}

impl fmt::Display for CallerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OtherTask => {
                "the caller's proof names another task (its sender and nonce do not give this task id)"
            }
            Self::BadSignature => {
                "the caller's signature does not verify: it must be the task sender's EIP-712 \
                 signature over this task (contract, sender, nonce, inputs hash, value) for this \
                 network's key manager"
            }
        })
    }
}

impl core::error::Error for CallerError {}

fn word_of_address(a: &Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_bytes());
    w
}

/// The EIP-712 domain separator of a network whose key manager signs as `principal`.
#[must_use]
pub fn domain_separator(principal: &Address) -> [u8; 32] {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&DOMAIN_TYPE_HASH);
    m.extend_from_slice(&DOMAIN_NAME_HASH);
    m.extend_from_slice(&DOMAIN_VERSION_HASH);
    m.extend_from_slice(&word_of_address(principal));
    keccak256(&m)
}

/// `keccak256(0x1901 ‖ domainSeparator ‖ keccak256(encoded struct))`: EIP-712's digest of a
/// typed struct (`encoded` is its type hash and fields, 32 bytes each) in this network's domain.
fn typed_digest(principal: &Address, encoded: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(66);
    m.extend_from_slice(b"\x19\x01");
    m.extend_from_slice(&domain_separator(principal));
    m.extend_from_slice(&keccak256(encoded));
    keccak256(&m)
}

/// The digest a task's sender signs (`eth_signTypedData_v4` of the `EnigmaTask` struct).
#[must_use]
pub fn caller_digest(
    principal: &Address,
    contract: &ContractAddress,
    sender: &Address,
    nonce: u64,
    inputs_hash: &InputsHash,
    value: u128,
) -> [u8; 32] {
    let mut s = Vec::with_capacity(192);
    s.extend_from_slice(&TASK_TYPE_HASH);
    s.extend_from_slice(contract.as_bytes());
    s.extend_from_slice(&word_of_address(sender));
    s.extend_from_slice(&crate::enc::u256_from_u64(nonce));
    s.extend_from_slice(inputs_hash.as_bytes());
    s.extend_from_slice(&u256_from_u128(value));
    typed_digest(principal, &s)
}

/// The digest a query's caller signs (`eth_signTypedData_v4` of the `EnigmaQuery` struct): the
/// query's hash binds its inputs and the key its answer is encrypted to, so a copied query
/// answers nobody else.
#[must_use]
pub fn query_digest(principal: &Address, contract: &ContractAddress, query: &[u8; 32]) -> [u8; 32] {
    let mut s = Vec::with_capacity(96);
    s.extend_from_slice(&QUERY_TYPE_HASH);
    s.extend_from_slice(contract.as_bytes());
    s.extend_from_slice(query);
    typed_digest(principal, &s)
}

/// The typed struct of a query permit.
pub const PERMIT_TYPE: &str = "EnigmaPermit(string name,bytes32[] contracts,uint64 expiry)";

/// A query permit (in the style of Secret Network's SNIP-24): signed once by the user's wallet
/// (`eth_signTypedData_v4` of `EnigmaPermit(name, contracts, expiry)`), reused for every query
/// of the contracts it names until `expiry` (Unix seconds). It travels inside the encrypted
/// query; whoever holds it can ask as its signer, so a dApp keeps it like a session key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    /// The user's label for it (shown by wallets).
    pub name: alloc::string::String,
    /// The contracts it may ask (at least one).
    pub contracts: Vec<ContractAddress>,
    /// When it stops working (Unix seconds).
    pub expiry: u64,
    /// `r ‖ s ‖ v` over [`permit_digest`].
    pub signature: Vec<u8>,
}

impl fmt::Debug for Permit {
    /// Leaves the signature out: whoever holds a permit asks as its signer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("name", &self.name)
            .field("contracts", &self.contracts)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// The digest a permit's signer signs.
#[must_use]
pub fn permit_digest(
    principal: &Address,
    name: &str,
    contracts: &[ContractAddress],
    expiry: u64,
) -> [u8; 32] {
    let mut list = Vec::with_capacity(32 * contracts.len());
    for c in contracts {
        list.extend_from_slice(c.as_bytes());
    }
    let mut s = Vec::with_capacity(128);
    s.extend_from_slice(&PERMIT_TYPE_HASH);
    s.extend_from_slice(&keccak256(name.as_bytes()));
    s.extend_from_slice(&keccak256(&list));
    s.extend_from_slice(&crate::enc::u256_from_u64(expiry));
    typed_digest(principal, &s)
}

/// Who asks a query, as its encrypted caller field carries it: nobody, a signature over this
/// query, or a permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryCaller {
    /// Anonymous.
    Nobody,
    /// `r ‖ s ‖ v` over [`query_digest`].
    Signature(Vec<u8>),
    /// A permit that covers the contract.
    Permit(Permit),
}

/// The most contracts a permit may name.
pub const MAX_PERMIT_CONTRACTS: usize = 16;
/// The longest permit name (bytes).
pub const MAX_PERMIT_NAME: usize = 64;

/// The callable that revokes its signer's permits of one name for the contract it is sent to: a
/// signed task (its verified caller is whose permits it revokes) with the name as its one ABI
/// `string` argument. The runtime answers it for every contract, before the contract's own code:
/// from then on the contract's state remembers the revocation, and the enclave refuses queries
/// with such a permit on that state or any later one.
pub const REVOKE_PERMIT: &str = "enigma_revoke_permit(string)";
/// The size every encoded caller field is padded to (with zeros), so its length does not tell
/// an anonymous query from a signed one or a permit, nor one permit from another. It holds the
/// largest permit.
pub const CALLER_FIELD_SIZE: usize =
    1 + 8 + MAX_PERMIT_NAME + 8 + MAX_PERMIT_CONTRACTS * 40 + 8 + 8 + 65;

impl QueryCaller {
    /// `0x00` (anonymous), `0x01 ‖ signature`, or `0x02 ‖ enc(name, list(contract), u64 expiry,
    /// signature)`, padded with zeros to [`CALLER_FIELD_SIZE`] (longer only for a permit over
    /// the limits, which [`decode`](Self::decode) refuses).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unpadded();
        if out.len() < CALLER_FIELD_SIZE {
            out.resize(CALLER_FIELD_SIZE, 0);
        }
        out
    }

    fn encode_unpadded(&self) -> Vec<u8> {
        match self {
            Self::Nobody => alloc::vec![0u8],
            Self::Signature(s) => {
                let mut out = alloc::vec![1u8];
                out.extend_from_slice(s);
                out
            }
            Self::Permit(p) => {
                let mut out = alloc::vec![2u8];
                out.extend_from_slice(
                    &crate::enc::Encoder::new()
                        .bytes(p.name.as_bytes())
                        .list(&p.contracts, |e, c| e.bytes(c.as_bytes()))
                        .u64(p.expiry)
                        .bytes(&p.signature)
                        .into_bytes(),
                );
                out
            }
        }
    }

    /// Reads [`encode`](Self::encode)'s output: exactly [`CALLER_FIELD_SIZE`] bytes, the
    /// padding all zeros.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CALLER_FIELD_SIZE {
            return None;
        }
        let (tag, rest) = bytes.split_first()?;
        let padding_is_zero =
            |used: usize| rest.get(used..).is_some_and(|p| p.iter().all(|b| *b == 0));
        match tag {
            0 => padding_is_zero(0).then_some(Self::Nobody),
            1 => {
                let signature = rest.get(..65)?.to_vec();
                padding_is_zero(65).then_some(Self::Signature(signature))
            }
            2 => {
                let mut d = crate::enc::Decoder::new(rest);
                let name = d.bytes().ok()?;
                if name.len() > MAX_PERMIT_NAME {
                    return None;
                }
                let name = alloc::string::String::from_utf8(name.to_vec()).ok()?;
                let n = d.list_len(MAX_PERMIT_CONTRACTS as u64).ok()?;
                let mut contracts = Vec::with_capacity(n);
                for _ in 0..n {
                    contracts.push(ContractAddress(d.fixed::<32>().ok()?));
                }
                let expiry = d.u64().ok()?;
                let signature = d.bytes().ok()?.to_vec();
                let used = rest.len() - d.remaining();
                padding_is_zero(used).then_some(Self::Permit(Permit {
                    name,
                    contracts,
                    expiry,
                    signature,
                }))
            }
            _ => None,
        }
    }
}

impl CallerProof {
    /// Checks that the proof is for task `task` (its sender and nonce give that id) and returns
    /// the digest its signature must recover to the sender over; the caller recovers it (the
    /// curve is not this crate's).
    pub fn digest_for(
        &self,
        principal: &Address,
        task: &TaskId,
        contract: &ContractAddress,
        inputs_hash: &InputsHash,
        value: u128,
    ) -> Result<[u8; 32], CallerError> {
        if crate::task_id(&self.sender, self.nonce) != *task {
            return Err(CallerError::OtherTask);
        }
        Ok(caller_digest(principal, contract, &self.sender, self.nonce, inputs_hash, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_hashes_are_those_of_their_strings() {
        for (hash, string) in [
            (DOMAIN_TYPE_HASH, DOMAIN_TYPE),
            (DOMAIN_NAME_HASH, DOMAIN_NAME),
            (DOMAIN_VERSION_HASH, DOMAIN_VERSION),
            (TASK_TYPE_HASH, TASK_TYPE),
            (QUERY_TYPE_HASH, QUERY_TYPE),
            (PERMIT_TYPE_HASH, PERMIT_TYPE),
        ] {
            assert_eq!(hash, keccak256(string.as_bytes()), "{string}");
        }
    }

    /// A known answer, computed independently from the EIP-712 specification (a hand-written
    /// encoder over js-sha3's Keccak; docs/api.md section 4).
    #[test]
    fn the_digest_is_eip712s() {
        let d = caller_digest(
            &Address([0x11; 20]),
            &ContractAddress([0x22; 32]),
            &Address([0x33; 20]),
            7,
            &InputsHash([0x44; 32]),
            5_000_000,
        );
        assert_eq!(
            hex::encode(domain_separator(&Address([0x11; 20]))),
            "d1c0773a6998a0249d3440c8d2026ee6b7748026cc40222cf8c30c331bf64389"
        );
        assert_eq!(
            hex::encode(d),
            "19c1309775b9b23704abd48191793785b1f167beb154de7b302c30b2dceaa3b6"
        );
    }

    #[test]
    fn a_permit_round_trips_and_its_digest_covers_every_field() {
        let p = Permit {
            name: "my dapp".into(),
            contracts: alloc::vec![ContractAddress([2; 32]), ContractAddress([3; 32])],
            expiry: 1_900_000_000,
            signature: alloc::vec![7; 65],
        };
        let caller = QueryCaller::Permit(p.clone());
        let sig = QueryCaller::Signature(alloc::vec![9; 65]);
        // Every kind is the same size on the wire.
        for c in [caller, sig, QueryCaller::Nobody] {
            let bytes = c.encode();
            assert_eq!(bytes.len(), CALLER_FIELD_SIZE);
            assert_eq!(QueryCaller::decode(&bytes), Some(c));
        }
        let mut dirty = QueryCaller::Nobody.encode();
        dirty[CALLER_FIELD_SIZE - 1] = 1;
        assert_eq!(QueryCaller::decode(&dirty), None, "padding must be zeros");
        assert_eq!(QueryCaller::decode(&[3, 1]), None);
        assert_eq!(QueryCaller::decode(&[]), None);
        assert!(
            !alloc::format!("{p:?}").contains("7, 7"),
            "a permit's Debug leaves out its signature"
        );
        let mut huge = p.clone();
        huge.contracts = alloc::vec![ContractAddress([4; 32]); MAX_PERMIT_CONTRACTS + 1];
        assert_eq!(QueryCaller::decode(&QueryCaller::Permit(huge).encode()), None);
        let principal = Address([1; 20]);
        let d = permit_digest(&principal, &p.name, &p.contracts, p.expiry);
        for other in [
            permit_digest(&Address([9; 20]), &p.name, &p.contracts, p.expiry),
            permit_digest(&principal, "my dapP", &p.contracts, p.expiry),
            permit_digest(&principal, &p.name, &p.contracts[..1], p.expiry),
            permit_digest(&principal, &p.name, &p.contracts, p.expiry + 1),
        ] {
            assert_ne!(other, d);
        }
        // A known answer, computed independently from the EIP-712 specification.
        assert_eq!(
            hex::encode(d),
            "4546237269e11414182d751d1290ba6b4fb96dff60d01066d7a10339faa727ba"
        );
    }

    #[test]
    fn the_digest_covers_every_field_and_the_network() {
        let (p, c, s, i) =
            (Address([1; 20]), ContractAddress([2; 32]), Address([3; 20]), InputsHash([4; 32]));
        let d = caller_digest(&p, &c, &s, 5, &i, 6);
        for other in [
            caller_digest(&Address([9; 20]), &c, &s, 5, &i, 6),
            caller_digest(&p, &ContractAddress([9; 32]), &s, 5, &i, 6),
            caller_digest(&p, &c, &Address([9; 20]), 5, &i, 6),
            caller_digest(&p, &c, &s, 9, &i, 6),
            caller_digest(&p, &c, &s, 5, &InputsHash([9; 32]), 6),
            caller_digest(&p, &c, &s, 5, &i, 9),
        ] {
            assert_ne!(other, d);
        }
        let proof = CallerProof { sender: s, nonce: 5, signature: Vec::new() };
        assert_eq!(proof.digest_for(&p, &crate::task_id(&s, 5), &c, &i, 6), Ok(d));
        assert_eq!(
            proof.digest_for(&p, &crate::task_id(&s, 6), &c, &i, 6),
            Err(CallerError::OtherTask)
        );
    }
}
