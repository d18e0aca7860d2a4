use alloy::{
    contract::Error as ContractError,
    sol_types::SolInterface,
    transports::{RpcError, TransportErrorKind},
};

use crate::bindings::{Enigma, EnigmaBatches, EnigmaToken, IasVerifier, SimulationVerifier};

/// A chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A contract rejected the call; the text names the contract error and its fields.
    #[error("the chain rejected it: {0}")]
    Reverted(String),
    /// The node could not be reached or answered with an error.
    #[error("the Ethereum node failed: {0} (is it running, and is the RPC URL right?)")]
    Rpc(String),
    /// Another transaction from the same account took the nonce (another process sending from
    /// the account at the same time), even after retrying.
    #[error(
        "another transaction from this account took the same nonce ({0}); another process may be \
         sending from this account at the same time. It was retried; try again, or send from one \
         process"
    )]
    NonceClash(String),
    /// A transaction was mined but failed.
    #[error("transaction {0} was mined but reverted")]
    TransactionFailed(String),
    /// The chain returned something this code does not expect.
    #[error("unexpected data from the chain: {0}")]
    Unexpected(String),
    /// The chain's base fee is above the most this process pays per gas.
    #[error("not sent: {0}")]
    FeeCap(String),
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
    if let Ok(e) = EnigmaBatches::EnigmaBatchesErrors::abi_decode(data) {
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

/// Whether a node's error text says the transaction's nonce was taken (by a transaction sent
/// at the same time from the same account), as geth, anvil, reth and erigon word it.
fn nonce_taken(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "nonce too low",
        "already known",
        "replacement transaction underpriced",
        "nonce has already been used",
        "transaction already imported",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// An error the node answered that is not a revert.
fn node_error(text: String) -> ChainError {
    if nonce_taken(&text) { ChainError::NonceClash(text) } else { ChainError::Rpc(text) }
}

impl From<ContractError> for ChainError {
    fn from(e: ContractError) -> Self {
        match e.as_revert_data() {
            Some(data) => Self::Reverted(revert_text(&data)),
            None => node_error(e.to_string()),
        }
    }
}

impl From<RpcError<TransportErrorKind>> for ChainError {
    fn from(e: RpcError<TransportErrorKind>) -> Self {
        match e.as_error_resp().and_then(|r| r.as_revert_data()) {
            Some(data) => Self::Reverted(revert_text(&data)),
            None => node_error(e.to_string()),
        }
    }
}

impl From<alloy::providers::PendingTransactionError> for ChainError {
    fn from(e: alloy::providers::PendingTransactionError) -> Self {
        Self::Rpc(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_nonce_is_named_as_such_not_as_an_unreachable_node() {
        for text in [
            "server returned an error response: error code -32003: nonce too low",
            "error code -32000: already known",
            "replacement transaction underpriced",
        ] {
            let e = node_error(text.into());
            assert!(matches!(e, ChainError::NonceClash(_)), "{text}");
            assert!(!e.to_string().contains("is it running"), "{e}");
        }
        assert!(matches!(node_error("connection refused".into()), ChainError::Rpc(_)));
        assert!(matches!(node_error("unknown transaction type".into()), ChainError::Rpc(_)));
    }
}
