//! The protocol's derivations of ids and hashes (PROTOCOL.md section 3).

use crate::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, TaskId,
    enc::{Encoder, u256_from_u64},
    hash::{Keccak, keccak256},
};

/// `H(sender(20) ‖ u256(nonce))`: the id of the task a sender creates with its `nonce`-th record
/// (the sender's task counter on chain, shared by deploys and computes). The fields are packed,
/// not length-prefixed, as Solidity's `keccak256(abi.encodePacked(sender, uint256(nonce)))`.
#[must_use]
pub fn task_id(sender: &Address, nonce: u64) -> TaskId {
    let mut h = Keccak::new();
    h.update(sender.as_bytes());
    h.update(&u256_from_u64(nonce));
    TaskId(h.finalize())
}

/// The address of the contract that `sender`'s deployment with task counter `nonce` creates:
/// the task id of that deployment.
#[must_use]
pub fn contract_address(sender: &Address, nonce: u64) -> ContractAddress {
    task_id(sender, nonce).into()
}

/// `H(enc(encryptedFn, encryptedArgs, preCodeHash, userPubKey))`: the inputs hash of a deploy.
#[must_use]
pub fn inputs_hash_deploy(
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    pre_code_hash: &CodeHash,
    user_public_key: &[u8; 64],
) -> InputsHash {
    InputsHash(
        Encoder::hashing()
            .bytes(encrypted_fn)
            .bytes(encrypted_args)
            .bytes(pre_code_hash.as_bytes())
            .bytes(user_public_key)
            .digest(),
    )
}

/// `H(enc(encryptedFn, encryptedArgs, contractAddress, userPubKey))`: the inputs hash of a compute.
#[must_use]
pub fn inputs_hash_compute(
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    contract: &ContractAddress,
    user_public_key: &[u8; 64],
) -> InputsHash {
    InputsHash(
        Encoder::hashing()
            .bytes(encrypted_fn)
            .bytes(encrypted_args)
            .bytes(contract.as_bytes())
            .bytes(user_public_key)
            .digest(),
    )
}

/// `H(code)`: the hash of a wasm module as uploaded (the runtime stores and executes it unchanged,
/// so this is both the pre-code hash and the code hash).
#[must_use]
pub fn code_hash(code: &[u8]) -> CodeHash {
    CodeHash(keccak256(code))
}

/// `H(encrypted delta)`.
#[must_use]
pub fn delta_hash(encrypted_delta: &[u8]) -> DeltaHash {
    DeltaHash(keccak256(encrypted_delta))
}

/// `H(encrypted output)`.
#[must_use]
pub fn output_hash(encrypted_output: &[u8]) -> OutputHash {
    OutputHash(keccak256(encrypted_output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_is_keccak_of_packed_sender_and_u256_nonce() {
        let sender = Address([0x11; 20]);
        let mut packed = [0u8; 52];
        packed[..20].copy_from_slice(&[0x11; 20]);
        packed[44..].copy_from_slice(&5u64.to_be_bytes());
        assert_eq!(task_id(&sender, 5), TaskId(keccak256(packed)));
        assert_ne!(task_id(&sender, 5), task_id(&sender, 6));
        assert_eq!(contract_address(&sender, 5).0, task_id(&sender, 5).0);
    }

    #[test]
    fn deploy_and_compute_hashes_differ_only_in_the_third_field() {
        let code = CodeHash([3; 32]);
        let contract = ContractAddress([3; 32]);
        let pk = [4u8; 64];
        assert_eq!(
            inputs_hash_deploy(b"f", b"a", &code, &pk),
            inputs_hash_compute(b"f", b"a", &contract, &pk)
        );
        assert_ne!(
            inputs_hash_compute(b"f", b"a", &contract, &pk),
            inputs_hash_compute(b"fa", b"", &contract, &pk),
            "moving a byte between fields changes the hash"
        );
    }
}
