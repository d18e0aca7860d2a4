//! The messages nodes exchange: versioned, size-bounded, encoded with postcard.

pub use enigma_types::caller::CallerProof;
use enigma_types::{
    Address, CodeHash, ContractAddress, DeltaHash, OutputHash, SignerAddress, TaskId,
};
use serde::{Deserialize, Serialize};

/// The wire version of every message; a node drops (and counts against the sender) any other.
pub const VERSION: u8 = 4;

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

/// A worker's announcement: who it is on the network and its current encryption key, signed by
/// its enclave over every field (`enigma_types::messages::announcement_digest`).
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
    /// When the announcement was made (Unix milliseconds): peers keep the newest per signer and
    /// ignore stale ones.
    pub issued_at: u64,
    /// The enclave's signature over the whole announcement.
    pub announcement_signature: Vec<u8>,
}

impl WorkerAnnouncement {
    /// The digest its enclave signs.
    #[must_use]
    pub fn digest(&self) -> Option<[u8; 32]> {
        let key: [u8; 64] = self.io_public_key.as_slice().try_into().ok()?;
        Some(enigma_types::messages::announcement_digest(
            &self.signer,
            &self.peer_id,
            &self.addresses,
            self.epoch,
            &key,
            self.issued_at,
        ))
    }

    /// Whether the announcement is signed, whole, by the enclave it names.
    #[must_use]
    pub fn is_signed(&self) -> bool {
        let (Some(digest), Ok(signature)) =
            (self.digest(), enigma_crypto::Signature::from_bytes(&self.announcement_signature))
        else {
            return false;
        };
        signature.recover_address(&digest).ok() == Some(self.signer.into())
    }
}

pub use enigma_types::result::{ResultMessage, ResultView};

fn hexed(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A query's answer over JSON-RPC (hex strings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueryAnswerView {
    /// The contract.
    pub contract_address: String,
    /// The code it ran.
    pub code_hash: String,
    /// The number of deltas of the state it ran on.
    pub delta_count: u64,
    /// The last of them.
    pub delta_hash: String,
    /// The query's hash.
    pub query_hash: String,
    /// `SUCCESS` or `FAILED` (the output is then the error text).
    pub status: String,
    /// The output, encrypted to the query's key.
    pub output: String,
    /// Its hash.
    pub output_hash: String,
    /// Gas used.
    pub gas_used: u64,
    /// The worker enclave's signature (its digest names the caller the contract was told,
    /// which the answer does not carry: the asker knows who it is).
    pub signature: String,
}

impl From<&QueryAnswerMessage> for QueryAnswerView {
    fn from(a: &QueryAnswerMessage) -> Self {
        Self {
            contract_address: a.contract.to_string(),
            code_hash: a.code_hash.to_string(),
            delta_count: a.delta_count,
            delta_hash: a.delta_hash.to_string(),
            query_hash: hexed(&a.query_hash),
            status: if a.success { "SUCCESS".into() } else { "FAILED".into() },
            output: hexed(&a.encrypted_output),
            output_hash: a.output_hash.to_string(),
            gas_used: a.gas_used,
            signature: hexed(&a.signature),
        }
    }
}

impl TryFrom<&QueryAnswerView> for QueryAnswerMessage {
    type Error = String;

    fn try_from(v: &QueryAnswerView) -> Result<Self, String> {
        let bytes = |text: &str, what: &str| {
            hex::decode(text.trim_start_matches("0x")).map_err(|e| format!("{what}: {e}"))
        };
        let word = |text: &str, what: &str| -> Result<[u8; 32], String> {
            bytes(text, what)?.try_into().map_err(|_| format!("{what} is not 32 bytes"))
        };
        Ok(Self {
            contract: ContractAddress(word(&v.contract_address, "contractAddress")?),
            code_hash: CodeHash(word(&v.code_hash, "codeHash")?),
            delta_count: v.delta_count,
            delta_hash: DeltaHash(word(&v.delta_hash, "deltaHash")?),
            query_hash: word(&v.query_hash, "queryHash")?,
            success: v.status == "SUCCESS",
            encrypted_output: bytes(&v.output, "output")?,
            output_hash: OutputHash(word(&v.output_hash, "outputHash")?),
            gas_used: v.gas_used,
            signature: bytes(&v.signature, "signature")?,
        })
    }
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
        /// The sender's signature that it calls, if it signed the task.
        caller: Option<CallerProof>,
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
        /// The sender's signature that it calls, if it signed the task.
        caller: Option<CallerProof>,
    },
    /// A read-only query (answered at once, nothing recorded).
    Query(Box<QueryMessage>),
}

/// A read-only query of a contract, as a gateway hands it to the selected worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMessage {
    /// The client's random id (the fields are encrypted as those of "task" `query_id`).
    pub query_id: [u8; 32],
    /// The contract.
    pub contract: ContractAddress,
    /// The epoch (first block) of the IO key the query is encrypted to.
    pub epoch_block: u64,
    /// The encrypted callable.
    pub encrypted_fn: Vec<u8>,
    /// The encrypted arguments.
    pub encrypted_args: Vec<u8>,
    /// The encrypted caller proof (empty: anonymous).
    pub encrypted_caller: Vec<u8>,
    /// The user's per-query public key (64 bytes).
    pub user_public_key: Vec<u8>,
    /// Run on the chain's delta tip (`true`) or on the worker's latest state (`false`).
    pub confirmed: bool,
}

/// A query's answer, signed by the worker enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAnswerMessage {
    /// The contract.
    pub contract: ContractAddress,
    /// The code it ran.
    pub code_hash: CodeHash,
    /// The number of deltas of the state it ran on.
    pub delta_count: u64,
    /// The last of them.
    pub delta_hash: DeltaHash,
    /// `messages::query_hash` of the query.
    pub query_hash: [u8; 32],
    /// Whether the function returned (otherwise the output is the error text).
    pub success: bool,
    /// The output (or error text), encrypted to the user.
    pub encrypted_output: Vec<u8>,
    /// `H(encrypted_output)`.
    pub output_hash: OutputHash,
    /// Gas used.
    pub gas_used: u64,
    /// The enclave's signature over [`digest`](Self::digest) — which names the caller the
    /// contract was told; the answer does not carry it (the host routing it need not learn who
    /// asked): the asker checks it against itself.
    pub signature: Vec<u8>,
}

impl QueryAnswerMessage {
    /// The digest the worker enclave signed (`query_answer_digest`), for the answer to have
    /// told the contract `caller` (zero: anonymous).
    #[must_use]
    pub fn digest(&self, caller: Address) -> [u8; 32] {
        enigma_types::messages::query_answer_digest(&enigma_types::messages::QueryAnswerFields {
            contract: &self.contract,
            code_hash: &self.code_hash,
            delta_count: self.delta_count,
            delta_hash: &self.delta_hash,
            query_hash: &self.query_hash,
            output_hash: &self.output_hash,
            success: self.success,
            gas_used: self.gas_used,
            caller,
        })
    }

    /// The enclave signer of the answer, if its signature is well formed, given that it told
    /// the contract `caller` (every field counts: another caller recovers another signer).
    #[must_use]
    pub fn signer(&self, caller: Address) -> Option<SignerAddress> {
        let signature = enigma_crypto::Signature::from_bytes(&self.signature).ok()?;
        signature.recover_address(&self.digest(caller)).ok().map(SignerAddress::from)
    }
}

/// The worker's answer to a task request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskResponse {
    /// Queued for execution.
    Accepted,
    /// Refused, with a reason the client can act on.
    Rejected(String),
    /// A query's answer.
    Answer(Box<QueryAnswerMessage>),
    /// Not taken now: over the worker's limits for this peer or in all. Nothing ran; the same
    /// request may be sent again shortly (a worker takes a task it already has as that task).
    Busy(String),
}

/// The largest sync request.
pub const MAX_SYNC_REQUEST_BYTES: u64 = 1024;
/// The most deltas in one sync response.
pub const MAX_SYNC_DELTAS: usize = 1000;
/// The most delta bytes in one sync response: the largest delta an enclave produces.
pub const MAX_SYNC_DELTA_BYTES: usize = enigma_types::delta::MAX_ENCRYPTED_DELTA_BYTES;
/// The largest sync response: the delta budget (or a module) plus framing.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = MAX_SYNC_DELTA_BYTES as u64 + 64 * 1024;

/// A state-sync request (`/enigma/sync/1`). Every answer is checked by the receiver against the
/// hashes on chain; a provider serves only what it has itself verified against the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Where the provider stands on a contract, and whether it is done with it for the epoch.
    Status {
        /// The contract.
        contract: ContractAddress,
    },
    /// The contract's module.
    Code {
        /// The contract.
        contract: ContractAddress,
    },
    /// Encrypted deltas `[from, to)`, up to [`MAX_SYNC_DELTAS`] or [`MAX_SYNC_DELTA_BYTES`].
    Deltas {
        /// The contract.
        contract: ContractAddress,
        /// The first index wanted.
        from: u64,
        /// One past the last index wanted.
        to: u64,
    },
}

impl SyncRequest {
    /// The contract it is about.
    #[must_use]
    pub fn contract(&self) -> ContractAddress {
        match self {
            Self::Status { contract } | Self::Code { contract } | Self::Deltas { contract, .. } => {
                *contract
            }
        }
    }
}

/// The answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The provider's position on the contract.
    Status {
        /// The epoch (first block) the provider is in.
        epoch: u64,
        /// Deltas it holds, contiguous from 0.
        next_index: u64,
        /// The hash of the last of them.
        tip: DeltaHash,
        /// Receipts of the contract it still has to commit.
        pending_receipts: u64,
    },
    /// The module.
    Code(Vec<u8>),
    /// Deltas from `from` on, in order (possibly fewer than asked).
    Deltas {
        /// The index of the first.
        from: u64,
        /// The encrypted deltas.
        deltas: Vec<Vec<u8>>,
    },
    /// The provider does not have (verified) what was asked, or is busy ([`BUSY`]).
    Unavailable(String),
}

/// What a provider answers while it serves as many sync requests as it takes.
pub const BUSY: &str = "busy; try another provider";

impl SyncResponse {
    /// Whether the provider was too busy to look at the request (it may still hold the answer).
    #[must_use]
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Unavailable(reason) if reason == BUSY)
    }
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
    use enigma_crypto::SignedResult as _;
    use enigma_types::InputsHash;

    #[test]
    fn only_the_busy_answer_reads_as_busy() {
        assert!(SyncResponse::Unavailable(BUSY.into()).is_busy());
        for other in ["this node does not hold the contract", "malformed sync request: x", ""] {
            assert!(!SyncResponse::Unavailable(other.into()).is_busy(), "{other:?}");
        }
        let status = SyncResponse::Status {
            epoch: 1,
            next_index: 0,
            tip: DeltaHash::ZERO,
            pending_receipts: 0,
        };
        assert!(!status.is_busy());
    }

    #[test]
    fn round_trip_and_rejections() {
        let busy = TaskResponse::Busy("busy".into());
        assert_eq!(decode::<TaskResponse>(&encode(&busy), 100).unwrap(), busy);
        let m = TaskResponse::Rejected("busy".into());
        let bytes = encode(&m);
        assert_eq!(decode::<TaskResponse>(&bytes, 100).unwrap(), m);
        assert!(matches!(decode::<TaskResponse>(&bytes, 2), Err(DecodeError::TooLarge { .. })));
        let mut other = bytes;
        other[0] = 9;
        assert_eq!(decode::<TaskResponse>(&other, 100), Err(DecodeError::Version(9)));
        assert!(matches!(
            decode::<TaskResponse>(&[VERSION, 0xff, 0xff], 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode::<TaskResponse>(&[], 100), Err(DecodeError::Malformed(_))));
    }

    /// A compute result signed (receipt and seal) by `key`.
    fn signed(key: &enigma_crypto::KeyPair) -> ResultMessage {
        let mut m = ResultMessage {
            task_id: TaskId([1; 32]),
            contract: ContractAddress([2; 32]),
            success: true,
            is_deploy: false,
            inputs_hash: InputsHash([3; 32]),
            code_hash: CodeHash([4; 32]),
            encrypted_output: vec![5; 40],
            output_hash: OutputHash(enigma_types::messages::bytes_digest(&[5; 40])),
            prev_delta_count: 7,
            prev_delta_hash: DeltaHash([8; 32]),
            delta_hash: DeltaHash([9; 32]),
            gas_limit: 100,
            gas_used: 10,
            eth_address: [0; 20],
            eth_payload: Vec::new(),
            value: 500,
            payouts: enigma_types::payouts::encode(&[enigma_types::payouts::Payout {
                to: Address([7; 20]),
                amount: enigma_types::Grains(200),
            }]),
            caller: Address([6; 20]),
            signature: Vec::new(),
            result_signature: Vec::new(),
        };
        m.signature = key.sign_digest(&m.receipt_digest()).as_bytes().to_vec();
        m.result_signature = key.sign_digest(&m.result_digest()).as_bytes().to_vec();
        m
    }

    #[test]
    fn no_published_field_of_a_result_can_be_altered() {
        let key = enigma_crypto::KeyPair::generate().unwrap();
        let genuine = signed(&key);
        assert_eq!(genuine.signer(), Some(SignerAddress::from(key.address())));
        type Alteration = (&'static str, fn(&mut ResultMessage));
        let alterations: [Alteration; 14] = [
            ("the ciphertext", |m| m.encrypted_output[0] ^= 1),
            ("the state position", |m| m.prev_delta_count += 1),
            ("the previous delta", |m| m.prev_delta_hash = DeltaHash([0; 32])),
            ("the contract", |m| m.contract = ContractAddress([6; 32])),
            ("the task", |m| m.task_id = TaskId([6; 32])),
            ("the kind", |m| m.is_deploy = true),
            ("the seal", |m| m.result_signature = m.signature.clone()),
            ("the output hash", |m| m.output_hash = OutputHash([0; 32])),
            ("the new delta", |m| m.delta_hash = DeltaHash([0; 32])),
            ("the Ethereum call", |m| m.eth_payload = vec![1]),
            ("the value", |m| m.value += 1),
            ("a payout's amount", |m| m.payouts[35] ^= 1),
            ("a payout's recipient", |m| m.payouts[0] ^= 1),
            ("the caller", |m| m.caller = Address::ZERO),
        ];
        for (what, alter) in alterations {
            let mut m = genuine.clone();
            alter(&mut m);
            assert_eq!(m.signer(), None, "altering {what} breaks a signature");
        }
        // A seal by another enclave than the receipt's.
        let mut mixed = genuine.clone();
        let other = enigma_crypto::KeyPair::generate().unwrap();
        mixed.result_signature = other.sign_digest(&mixed.result_digest()).as_bytes().to_vec();
        assert_eq!(mixed.signer(), None);
        // Through the gateway's JSON view and back, nothing changes.
        let view = ResultView::from(&genuine);
        assert_eq!(ResultMessage::try_from(&view).unwrap(), genuine);
    }
}
