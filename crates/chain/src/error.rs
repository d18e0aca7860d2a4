use alloy::{
    contract::Error as ContractError,
    sol_types::SolInterface,
    transports::{RpcError, TransportErrorKind},
};

use crate::bindings::{Enigma, EnigmaToken, IasVerifier, SimulationVerifier};

/// A chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A contract rejected the call; the text names the contract error and its fields.
    #[error("the chain rejected it: {0}")]
    Reverted(String),
    /// The node could not be reached or answered with an error.
    #[error("the Ethereum node failed: {0} (is it running, and is the RPC URL right?)")]
    Rpc(String),
    /// A transaction was mined but failed.
    #[error("transaction {0} was mined but reverted")]
    TransactionFailed(String),
    /// The chain returned something this code does not expect.
    #[error("unexpected data from the chain: {0}")]
    Unexpected(String),
    /// Bad configuration given to this crate.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A result with [`ChainError`].
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Names a revert: the custom error of any of our contracts, or the raw data.
pub(crate) fn revert_text(data: &[u8]) -> String {
    if let Ok(e) = Enigma::EnigmaErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = SimulationVerifier::SimulationVerifierErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = IasVerifier::IasVerifierErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = EnigmaToken::EnigmaTokenErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Some(reason) = alloy::sol_types::decode_revert_reason(data) {
        return reason;
    }
    format!("0x{}", hex::encode(data))
}

impl From<ContractError> for ChainError {
    fn from(e: ContractError) -> Self {
        match e.as_revert_data() {
            Some(data) => Self::Reverted(revert_text(&data)),
            None => Self::Rpc(e.to_string()),
        }
    }
}

impl From<RpcError<TransportErrorKind>> for ChainError {
    fn from(e: RpcError<TransportErrorKind>) -> Self {
        match e.as_error_resp().and_then(|r| r.as_revert_data()) {
            Some(data) => Self::Reverted(revert_text(&data)),
            None => Self::Rpc(e.to_string()),
        }
    }
}

impl From<alloy::providers::PendingTransactionError> for ChainError {
    fn from(e: alloy::providers::PendingTransactionError) -> Self {
        Self::Rpc(e.to_string())
    }
}
