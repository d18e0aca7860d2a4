//! The digests enclaves sign (PROTOCOL.md section 4): each is `H(enc(fields…))` in the listed
//! order. Signers (the enclaves) and verifiers (nodes, clients, the chain's Solidity mirror)
//! compute them here and nowhere else.

use crate::{
    Address, CodeHash, DeltaHash, InputsHash, OutputHash, SignerAddress,
    enc::{Encoder, u256_from_u64},
};

/// The text that prefixes a worker's signed encryption key.
pub const WORKER_KEY_PREFIX: &[u8] = b"Enigma User Message";

/// The text that prefixes a simulation attestation.
pub const SIM_ATTESTATION_PREFIX: &[u8] = b"enigma-sim-attestation-v1";

/// A task's status byte in receipts.
pub const STATUS_SUCCESS: u8 = 1;
/// A failed task's status byte.
pub const STATUS_FAILURE: u8 = 0;

/// `H(enc("Enigma User Message", ioPubKey64))`: a worker's announcement of its encryption key.
#[must_use]
pub fn worker_key_digest(io_public_key: &[u8; 64]) -> [u8; 32] {
    Encoder::hashing().bytes(WORKER_KEY_PREFIX).bytes(io_public_key).digest()
}

/// An optional Ethereum call requested by a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthCallRef<'a> {
    /// The calldata (empty if none).
    pub payload: &'a [u8],
    /// The contract to call (zero if none).
    pub address: Address,
}

/// The signed fields of a successful deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployReceipt<'a> {
    /// The deploy's inputs hash.
    pub inputs_hash: InputsHash,
    /// The hash of the deployed code.
    pub code_hash: CodeHash,
    /// `H(encrypted delta 0)`.
    pub init_delta_hash: DeltaHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas the constructor used.
    pub gas_used: u64,
    /// The Ethereum call the constructor asked for.
    pub eth_call: EthCallRef<'a>,
}

impl DeployReceipt<'_> {
    /// `H(enc(inputsHash, codeHash, initDeltaHash, u64 gasLimit, u64 gasUsed, ethPayload, ethAddress, 0x01))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.inputs_hash.as_bytes())
            .bytes(self.code_hash.as_bytes())
            .bytes(self.init_delta_hash.as_bytes())
            .u64(self.gas_limit)
            .u64(self.gas_used)
            .bytes(self.eth_call.payload)
            .bytes(self.eth_call.address.as_bytes())
            .u8(STATUS_SUCCESS)
            .digest()
    }
}

/// The signed fields of a successful compute task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeReceipt<'a> {
    /// The contract's code hash.
    pub code_hash: CodeHash,
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// The contract's last delta hash before this task.
    pub prev_delta_hash: DeltaHash,
    /// `H(encrypted delta)`, zero when the task changed no state.
    pub delta_hash: DeltaHash,
    /// `H(encrypted output)`.
    pub output_hash: OutputHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas the task used.
    pub gas_used: u64,
    /// The Ethereum call the task asked for.
    pub eth_call: EthCallRef<'a>,
}

impl ComputeReceipt<'_> {
    /// `H(enc(codeHash, inputsHash, prevDeltaHash, deltaHash, outputHash, u64 gasLimit,
    /// u64 gasUsed, ethPayload, ethAddress, 0x01))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.code_hash.as_bytes())
            .bytes(self.inputs_hash.as_bytes())
            .bytes(self.prev_delta_hash.as_bytes())
            .bytes(self.delta_hash.as_bytes())
            .bytes(self.output_hash.as_bytes())
            .u64(self.gas_limit)
            .u64(self.gas_used)
            .bytes(self.eth_call.payload)
            .bytes(self.eth_call.address.as_bytes())
            .u8(STATUS_SUCCESS)
            .digest()
    }
}

/// The signed fields of a failed task (deploy or compute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureReceipt {
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// The contract's code hash; zero for a deploy.
    pub code_hash: CodeHash,
    /// `H(encrypted error text)`.
    pub output_hash: OutputHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas the task used.
    pub gas_used: u64,
}

impl FailureReceipt {
    /// `H(enc(inputsHash, codeHash, outputHash, u64 gasLimit, u64 gasUsed, 0x00))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.inputs_hash.as_bytes())
            .bytes(self.code_hash.as_bytes())
            .bytes(self.output_hash.as_bytes())
            .u64(self.gas_limit)
            .u64(self.gas_used)
            .u8(STATUS_FAILURE)
            .digest()
    }
}

/// One task of a receipt batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// `H(encrypted delta)`, zero if none (always zero for a failure).
    pub delta_hash: DeltaHash,
    /// `H(encrypted output)`.
    pub output_hash: OutputHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas the task used.
    pub gas_used: u64,
    /// [`STATUS_SUCCESS`] or [`STATUS_FAILURE`].
    pub status: u8,
}

/// `H(enc(codeHash, prevDeltaHash, list(inputsHash), list(deltaHash), list(outputHash),
/// list(u64 gasLimit), list(u64 gasUsed), list(status)))`: a batch of one contract's receipts.
#[must_use]
pub fn batch_digest(
    code_hash: &CodeHash,
    prev_delta_hash: &DeltaHash,
    entries: &[BatchEntry],
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(code_hash.as_bytes())
        .bytes(prev_delta_hash.as_bytes())
        .list(entries, |e, x| e.bytes(x.inputs_hash.as_bytes()))
        .list(entries, |e, x| e.bytes(x.delta_hash.as_bytes()))
        .list(entries, |e, x| e.bytes(x.output_hash.as_bytes()))
        .list(entries, |e, x| e.u64(x.gas_limit))
        .list(entries, |e, x| e.u64(x.gas_used))
        .list(entries, |e, x| e.u8(x.status))
        .digest()
}

/// `H(enc(u256 seed, u256 nonce, list(worker signer addresses), list(u256 stakes)))`: the KM's
/// signature over an epoch's parameters.
#[must_use]
pub fn epoch_digest(
    seed: &[u8; 32],
    nonce: u64,
    workers: &[SignerAddress],
    stakes: &[u128],
) -> [u8; 32] {
    Encoder::hashing()
        .u256(seed)
        .u256(&u256_from_u64(nonce))
        .list(workers, |e, w| e.bytes(w.as_bytes()))
        .list(stakes, |e, s| {
            let mut wide = [0u8; 32];
            wide[16..].copy_from_slice(&s.to_be_bytes());
            e.u256(&wide)
        })
        .digest()
}

/// `H(enc("enigma-sim-attestation-v1", signer(20), mrEnclave(32), u16 isvProdId, u8 debug))`:
/// what the devnet's simulation attestation authority signs.
#[must_use]
pub fn sim_attestation_digest(
    signer: &SignerAddress,
    mr_enclave: &[u8; 32],
    isv_prod_id: u16,
    debug: bool,
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(SIM_ATTESTATION_PREFIX)
        .bytes(signer.as_bytes())
        .bytes(mr_enclave)
        .u16(isv_prod_id)
        .u8(u8::from(debug))
        .digest()
}

/// `H(enc(bytes))`: the digest of a state-key request or response (section 7).
#[must_use]
pub fn bytes_digest(bytes: &[u8]) -> [u8; 32] {
    Encoder::hashing().bytes(bytes).digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keccak256;

    #[test]
    fn digests_follow_the_listed_fields() {
        let key = [7u8; 64];
        let manual = Encoder::new().bytes(b"Enigma User Message").bytes(&key).into_bytes();
        assert_eq!(worker_key_digest(&key), keccak256(manual));

        let f = FailureReceipt {
            inputs_hash: InputsHash([1; 32]),
            code_hash: CodeHash::ZERO,
            output_hash: OutputHash([2; 32]),
            gas_limit: 10,
            gas_used: 3,
        };
        let manual = Encoder::new()
            .bytes(&[1; 32])
            .bytes(&[0; 32])
            .bytes(&[2; 32])
            .u64(10)
            .u64(3)
            .u8(0)
            .into_bytes();
        assert_eq!(f.digest(), keccak256(manual));
    }

    #[test]
    fn every_field_of_a_compute_receipt_matters() {
        let base = ComputeReceipt {
            code_hash: CodeHash([1; 32]),
            inputs_hash: InputsHash([2; 32]),
            prev_delta_hash: DeltaHash([3; 32]),
            delta_hash: DeltaHash([4; 32]),
            output_hash: OutputHash([5; 32]),
            gas_limit: 6,
            gas_used: 7,
            eth_call: EthCallRef { payload: b"p", address: Address([8; 20]) },
        };
        let d = base.digest();
        let variants = [
            ComputeReceipt { code_hash: CodeHash([9; 32]), ..base },
            ComputeReceipt { inputs_hash: InputsHash([9; 32]), ..base },
            ComputeReceipt { prev_delta_hash: DeltaHash([9; 32]), ..base },
            ComputeReceipt { delta_hash: DeltaHash([9; 32]), ..base },
            ComputeReceipt { output_hash: OutputHash([9; 32]), ..base },
            ComputeReceipt { gas_limit: 9, ..base },
            ComputeReceipt { gas_used: 9, ..base },
            ComputeReceipt { eth_call: EthCallRef { payload: b"q", ..base.eth_call }, ..base },
            ComputeReceipt {
                eth_call: EthCallRef { address: Address([9; 20]), ..base.eth_call },
                ..base
            },
        ];
        for v in variants {
            assert_ne!(v.digest(), d, "{v:?}");
        }
    }

    #[test]
    fn epoch_stakes_are_u256() {
        let d = epoch_digest(&[1; 32], 2, &[SignerAddress([3; 20])], &[5]);
        let mut stake = [0u8; 32];
        stake[31] = 5;
        let manual = Encoder::new()
            .bytes(&[1; 32])
            .u256_from_u64(2)
            .list([[3u8; 20]], |e, w| e.bytes(&w))
            .list([stake], |e, s| e.bytes(&s))
            .into_bytes();
        assert_eq!(d, keccak256(manual));
    }
}
