//! Conversions between the protocol's types and alloy's.

use alloy::primitives::{Address as EthAddress, B256, U256};
use enigma_types::{Address, ContractAddress, SignerAddress, TaskId};

/// An address in alloy's type.
#[must_use]
pub fn eth(address: Address) -> EthAddress {
    EthAddress::from(address.0)
}

/// A signer address in alloy's type.
#[must_use]
pub fn eth_signer(address: SignerAddress) -> EthAddress {
    EthAddress::from(address.0)
}

/// An alloy address as the protocol's.
#[must_use]
pub fn address(address: EthAddress) -> Address {
    Address(address.0.0)
}

/// An alloy address as a signer address.
#[must_use]
pub fn signer(address: EthAddress) -> SignerAddress {
    SignerAddress(address.0.0)
}

/// Any 32-byte protocol value as a `bytes32`.
#[must_use]
pub fn b256(bytes: impl Into<[u8; 32]>) -> B256 {
    B256::from(bytes.into())
}

/// A task id from a `bytes32`.
#[must_use]
pub fn task_id(value: B256) -> TaskId {
    TaskId(value.0)
}

/// A contract address from a `bytes32`.
#[must_use]
pub fn contract(value: B256) -> ContractAddress {
    ContractAddress(value.0)
}

/// A `uint256` that must fit in 64 bits (block numbers, nonces, gas).
pub fn u64_of(value: U256, what: &'static str) -> Result<u64, crate::ChainError> {
    u64::try_from(value).map_err(|_| {
        crate::ChainError::Unexpected(format!("{what} {value} does not fit in 64 bits"))
    })
}

/// A `uint256` that must fit in 128 bits (amounts of ENG).
pub fn u128_of(value: U256, what: &'static str) -> Result<u128, crate::ChainError> {
    u128::try_from(value).map_err(|_| {
        crate::ChainError::Unexpected(format!("{what} {value} does not fit in 128 bits"))
    })
}
