//! The messages nodes exchange: versioned, size-bounded, encoded with postcard.

use enigma_types::{
    CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, SignerAddress, TaskId,
};
use serde::{Deserialize, Serialize};

/// The wire version of every message; a node drops (and counts against the sender) any other.
pub const VERSION: u8 = 1;

/// The largest gossip message.
pub const MAX_GOSSIP_BYTES: usize = 2 * 1024 * 1024;
/// The largest task request (a deploy carries the module).
pub const MAX_TASK_REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// The largest task response.
pub const MAX_TASK_RESPONSE_BYTES: u64 = 64 * 1024;

/// Gossip topic of worker announcements.
pub const WORKERS_TOPIC: &str = "enigma/workers/1";
/// Gossip topic of task results.
pub const RESULTS_TOPIC: &str = "enigma/results/1";

/// A worker's announcement: who it is on the network and its current encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerAnnouncement {
    /// The worker enclave's signer address.
    pub signer: SignerAddress,
    /// The libp2p peer id (bytes).
    pub peer_id: Vec<u8>,
    /// Where it listens (multiaddrs as text).
    pub addresses: Vec<String>,
    /// The epoch (first block) of the key.
    pub epoch: u64,
    /// The IO public key (64 bytes).
    pub io_public_key: Vec<u8>,
    /// The enclave's signature over `H(enc("Enigma User Message", key))`.
    pub signature: Vec<u8>,
}

/// A task's signed result as published (only hashes and ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultMessage {
    /// The task.
    pub task_id: TaskId,
    /// The contract.
    pub contract: ContractAddress,
    /// `true` for success.
    pub success: bool,
    /// A deployment?
    pub is_deploy: bool,
    /// The inputs hash.
    pub inputs_hash: InputsHash,
    /// The code hash.
    pub code_hash: CodeHash,
    /// The output encrypted to the user.
    pub encrypted_output: Vec<u8>,
    /// Its hash (for a deploy: the code hash).
    pub output_hash: OutputHash,
    /// The contract's delta hash before the task.
    pub prev_delta_hash: DeltaHash,
    /// The new delta's hash, zero if none.
    pub delta_hash: DeltaHash,
    /// From the task record.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// The Ethereum call's target (zero if none).
    pub eth_address: [u8; 20],
    /// The Ethereum call's payload.
    pub eth_payload: Vec<u8>,
    /// The worker enclave's signature over the receipt digest.
    pub signature: Vec<u8>,
}

/// What travels on gossip topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// On [`WORKERS_TOPIC`].
    Worker(WorkerAnnouncement),
    /// On [`RESULTS_TOPIC`].
    Result(Box<ResultMessage>),
}

impl GossipMessage {
    /// The topic it belongs on.
    #[must_use]
    pub fn topic(&self) -> &'static str {
        match self {
            Self::Worker(_) => WORKERS_TOPIC,
            Self::Result(_) => RESULTS_TOPIC,
        }
    }
}

/// A task a gateway delivers to the selected worker (`/enigma/task/1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskRequest {
    /// A deployment.
    Deploy {
        /// The task id (= contract address).
        task_id: TaskId,
        /// The module.
        code: Vec<u8>,
        /// The encrypted constructor callable.
        encrypted_fn: Vec<u8>,
        /// The encrypted constructor arguments.
        encrypted_args: Vec<u8>,
        /// The user's per-task public key (64 bytes).
        user_public_key: Vec<u8>,
    },
    /// A compute task.
    Compute {
        /// The task id.
        task_id: TaskId,
        /// The contract.
        contract: ContractAddress,
        /// The encrypted callable.
        encrypted_fn: Vec<u8>,
        /// The encrypted arguments.
        encrypted_args: Vec<u8>,
        /// The user's per-task public key (64 bytes).
        user_public_key: Vec<u8>,
    },
}

/// The worker's answer to a task request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskResponse {
    /// Queued for execution.
    Accepted,
    /// Refused, with a reason the client can act on.
    Rejected(String),
}

/// A message with its version, as encoded on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) version: u8,
    pub(crate) body: T,
}

/// Why bytes from a peer are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes than the limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Another protocol version.
    #[error("message version {0} is not supported (this node speaks {VERSION})")]
    Version(u8),
    /// Not a message at all.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message with its version.
pub fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    postcard::to_allocvec(&Envelope { version: VERSION, body }).unwrap_or_default()
}

/// Decodes a message, checking its size and version.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    let version = *bytes.first().ok_or_else(|| DecodeError::Malformed("empty".into()))?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let envelope: Envelope<T> =
        postcard::from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(envelope.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let m = TaskResponse::Rejected("busy".into());
        let bytes = encode(&m);
        assert_eq!(decode::<TaskResponse>(&bytes, 100).unwrap(), m);
        assert!(matches!(decode::<TaskResponse>(&bytes, 2), Err(DecodeError::TooLarge { .. })));
        let mut other = bytes;
        other[0] = 9;
        assert_eq!(decode::<TaskResponse>(&other, 100), Err(DecodeError::Version(9)));
        assert!(matches!(
            decode::<TaskResponse>(&[1, 0xff, 0xff], 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode::<TaskResponse>(&[], 100), Err(DecodeError::Malformed(_))));
    }
}
