//! The digests enclaves sign (PROTOCOL.md section 4): each is `H(enc(fields…))` in the listed
//! order. Signers (the enclaves) and verifiers (nodes, clients, the chain's Solidity mirror)
//! compute them here and nowhere else.

use crate::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, SignerAddress, TaskId,
    enc::{Encoder, u256_from_u64},
    payouts::u256_from_u128,
};

/// The text that prefixes the associated data of a task's encrypted fields.
pub const TASK_FIELD_PREFIX: &[u8] = b"enigma-task-field-v2";

/// A field of a task encrypted between the user and the enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskField {
    /// The callable (function signature).
    Callable,
    /// The ABI-encoded arguments.
    Arguments,
    /// The output (or error text).
    Output,
    /// A query's proof of its caller (the signature of [`crate::caller::query_digest`]).
    Caller,
}

impl TaskField {
    fn name(self) -> &'static [u8] {
        match self {
            Self::Callable => b"callable",
            Self::Arguments => b"arguments",
            Self::Output => b"output",
            Self::Caller => b"caller",
        }
    }
}

/// `H(enc("enigma-task-field-v2", contract(32), taskId(32), u256 value, field))`: the
/// associated data a task's encrypted callable, arguments and output are sealed with (AES-GCM),
/// so a ciphertext opens only as that field of that task of that contract (for a deployment, the
/// contract is the task id), sent with that value (grains; zero for a deployment): a host that
/// tells its enclave another value than the record's gets inputs that do not open, and the
/// contract never runs with it.
#[must_use]
pub fn task_field_ad(
    contract: &ContractAddress,
    task: &TaskId,
    value: u128,
    field: TaskField,
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(TASK_FIELD_PREFIX)
        .bytes(contract.as_bytes())
        .bytes(task.as_bytes())
        .u256(&u256_from_u128(value))
        .bytes(field.name())
        .digest()
}

/// The text that prefixes a worker's signed encryption key.
pub const WORKER_KEY_PREFIX: &[u8] = b"Enigma User Message";

/// The text that prefixes a simulation attestation.
pub const SIM_ATTESTATION_PREFIX: &[u8] = b"enigma-sim-attestation-v2";

/// The text that prefixes the binding hash in an enclave's report data.
pub const REPORT_BINDING_PREFIX: &[u8] = b"enigma-report-data-v1";

/// A task's status byte in receipts.
pub const STATUS_SUCCESS: u8 = 1;
/// A failed task's status byte.
pub const STATUS_FAILURE: u8 = 0;

/// The text that prefixes a worker's signed announcement.
pub const ANNOUNCEMENT_PREFIX: &[u8] = b"enigma-worker-announcement-v1";

/// `H(enc("enigma-worker-announcement-v1", signer(20), peerId, list(address), u64 epoch,
/// ioPubKey(64), u64 issuedAt))`: what a worker enclave signs to announce where it is on the
/// network, so no peer can announce itself (or an old key) in its name.
#[must_use]
pub fn announcement_digest(
    signer: &SignerAddress,
    peer_id: &[u8],
    addresses: &[alloc::string::String],
    epoch: u64,
    io_public_key: &[u8; 64],
    issued_at: u64,
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(ANNOUNCEMENT_PREFIX)
        .bytes(signer.as_bytes())
        .bytes(peer_id)
        .list(addresses, |e, a| e.bytes(a.as_bytes()))
        .u64(epoch)
        .bytes(io_public_key)
        .u64(issued_at)
        .digest()
}

/// The text that prefixes a result's seal.
pub const RESULT_PREFIX: &[u8] = b"enigma-result-v1";

/// What a worker enclave signs beside a receipt, for the peers, gateways and clients a result
/// travels through: the receipt's digest and every published field of the result (the
/// ciphertext of the output and its hash, the contract, where the contract's state stood, the
/// new delta, the Ethereum call, the value the task took and the payouts it made, the verified
/// caller the contract was told, the kind), so no relay can alter any of them:
/// `H(enc("enigma-result-v1", receiptDigest, H(encryptedOutput), outputHash, contract,
/// u64 prevDeltaCount, prevDeltaHash, deltaHash, ethAddress, H(ethPayload), u256 value, payouts,
/// caller(20), u8 success, u8 isDeploy))`.
#[must_use]
pub fn result_digest(r: &ResultFields<'_>) -> [u8; 32] {
    Encoder::hashing()
        .bytes(RESULT_PREFIX)
        .bytes(r.receipt_digest)
        .bytes(&bytes_digest(r.encrypted_output))
        .bytes(r.output_hash.as_bytes())
        .bytes(r.contract.as_bytes())
        .u64(r.prev_delta_count)
        .bytes(r.prev_delta_hash.as_bytes())
        .bytes(r.delta_hash.as_bytes())
        .bytes(r.eth_call.address.as_bytes())
        .bytes(&bytes_digest(r.eth_call.payload))
        .u256(&u256_from_u128(r.value))
        .bytes(r.payouts)
        .bytes(r.caller.as_bytes())
        .u8(u8::from(r.success))
        .u8(u8::from(r.is_deploy))
        .digest()
}

/// The fields of a published result that [`result_digest`] seals.
#[derive(Debug, Clone, Copy)]
pub struct ResultFields<'a> {
    /// The receipt's digest (deploy, compute or failure).
    pub receipt_digest: &'a [u8; 32],
    /// The output (or error text), encrypted to the user.
    pub encrypted_output: &'a [u8],
    /// The output hash as published.
    pub output_hash: &'a OutputHash,
    /// The contract.
    pub contract: &'a ContractAddress,
    /// The number of the contract's deltas before the task.
    pub prev_delta_count: u64,
    /// The contract's last delta hash before the task.
    pub prev_delta_hash: &'a DeltaHash,
    /// The new delta's hash (zero if none).
    pub delta_hash: &'a DeltaHash,
    /// The Ethereum call (zero address and empty payload if none).
    pub eth_call: EthCallRef<'a>,
    /// The value the task's record escrowed, as the enclave ran it (grains).
    pub value: u128,
    /// The payouts the task made, packed (empty if none, always for a failure).
    pub payouts: &'a [u8],
    /// The verified caller the contract was told (zero: none; `crate::caller`).
    pub caller: Address,
    /// Success or failure.
    pub success: bool,
    /// A deployment?
    pub is_deploy: bool,
}

/// The text that prefixes a query's hash.
pub const QUERY_PREFIX: &[u8] = b"enigma-query-v1";

/// The text that prefixes a query answer's signed digest.
pub const QUERY_ANSWER_PREFIX: &[u8] = b"enigma-query-answer-v1";

/// `H(enc("enigma-query-v1", contract, queryId, encryptedFn, encryptedArgs, userPubKey(64)))`:
/// what identifies a read-only query (its id is the client's random 32 bytes; the callable and
/// arguments are encrypted as the fields of "task" `queryId` of the contract, value 0).
#[must_use]
pub fn query_hash(
    contract: &ContractAddress,
    query_id: &[u8; 32],
    encrypted_fn: &[u8],
    encrypted_args: &[u8],
    user_public_key: &[u8; 64],
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(QUERY_PREFIX)
        .bytes(contract.as_bytes())
        .bytes(query_id)
        .bytes(encrypted_fn)
        .bytes(encrypted_args)
        .bytes(user_public_key)
        .digest()
}

/// `TaskId(H(enc("enigma-query-v1", queryId)))`: the "task" whose fields a query's callable,
/// arguments, caller and output are encrypted as. No task has this id (a task id is
/// `keccak256(sender ‖ nonce)`), so no task's ciphertext opens as a query, nor a query's as a
/// task.
#[must_use]
pub fn query_task_id(query_id: &[u8; 32]) -> TaskId {
    TaskId(Encoder::hashing().bytes(QUERY_PREFIX).bytes(query_id).digest())
}

/// What a worker enclave signs for a query's answer: the contract and code it ran, the state it
/// ran on, the query, the (encrypted) output, success and the verified caller the contract was
/// told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryAnswerFields<'a> {
    /// The contract.
    pub contract: &'a ContractAddress,
    /// Its code hash.
    pub code_hash: &'a CodeHash,
    /// The number of deltas of the state it ran on.
    pub delta_count: u64,
    /// The last of them (zero for none).
    pub delta_hash: &'a DeltaHash,
    /// [`query_hash`].
    pub query_hash: &'a [u8; 32],
    /// `H(encrypted output)`.
    pub output_hash: &'a OutputHash,
    /// Whether the function returned (or failed, the output then being the error text).
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// The verified caller (zero: none).
    pub caller: Address,
}

/// `H(enc("enigma-query-answer-v1", contract, codeHash, u64 deltaCount, deltaHash, queryHash,
/// outputHash, u8 success, u64 gasUsed, caller(20)))`.
#[must_use]
pub fn query_answer_digest(a: &QueryAnswerFields<'_>) -> [u8; 32] {
    Encoder::hashing()
        .bytes(QUERY_ANSWER_PREFIX)
        .bytes(a.contract.as_bytes())
        .bytes(a.code_hash.as_bytes())
        .u64(a.delta_count)
        .bytes(a.delta_hash.as_bytes())
        .bytes(a.query_hash)
        .bytes(a.output_hash.as_bytes())
        .u8(u8::from(a.success))
        .u64(a.gas_used)
        .bytes(a.caller.as_bytes())
        .digest()
}

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
    /// The deploy's task id: the new contract's address.
    pub task_id: TaskId,
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
    /// `H(enc(taskId, inputsHash, codeHash, initDeltaHash, u64 gasLimit, u64 gasUsed,
    /// ethPayload, ethAddress, 0x01))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.task_id.as_bytes())
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
    /// The task.
    pub task_id: TaskId,
    /// The contract it ran on.
    pub contract: ContractAddress,
    /// The contract's code hash.
    pub code_hash: CodeHash,
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// The number of the contract's deltas before this task (the previous delta is the last).
    pub delta_count: u64,
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
    /// The ENG the task's record escrowed with it (grains), which joins the contract's balance.
    pub value: u128,
    /// The payouts the task made, packed ([`crate::payouts::encode`]).
    pub payouts: &'a [u8],
}

impl ComputeReceipt<'_> {
    /// `H(enc(taskId, contract, codeHash, inputsHash, u64 deltaCount, prevDeltaHash, deltaHash,
    /// outputHash, u64 gasLimit, u64 gasUsed, ethPayload, ethAddress, u256 value, payouts,
    /// 0x01))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.task_id.as_bytes())
            .bytes(self.contract.as_bytes())
            .bytes(self.code_hash.as_bytes())
            .bytes(self.inputs_hash.as_bytes())
            .u64(self.delta_count)
            .bytes(self.prev_delta_hash.as_bytes())
            .bytes(self.delta_hash.as_bytes())
            .bytes(self.output_hash.as_bytes())
            .u64(self.gas_limit)
            .u64(self.gas_used)
            .bytes(self.eth_call.payload)
            .bytes(self.eth_call.address.as_bytes())
            .u256(&u256_from_u128(self.value))
            .bytes(self.payouts)
            .u8(STATUS_SUCCESS)
            .digest()
    }
}

/// The signed fields of a failed task (deploy or compute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureReceipt {
    /// The task.
    pub task_id: TaskId,
    /// The contract (the task id for a deploy).
    pub contract: ContractAddress,
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
    /// The value the task's record escrowed (grains; it returns to the sender).
    pub value: u128,
}

impl FailureReceipt {
    /// `H(enc(taskId, contract, inputsHash, codeHash, outputHash, u64 gasLimit, u64 gasUsed,
    /// u256 value, 0x00))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .bytes(self.task_id.as_bytes())
            .bytes(self.contract.as_bytes())
            .bytes(self.inputs_hash.as_bytes())
            .bytes(self.code_hash.as_bytes())
            .bytes(self.output_hash.as_bytes())
            .u64(self.gas_limit)
            .u64(self.gas_used)
            .u256(&u256_from_u128(self.value))
            .u8(STATUS_FAILURE)
            .digest()
    }
}

/// One task of a receipt batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// The task.
    pub task_id: TaskId,
    /// The task's inputs hash.
    pub inputs_hash: InputsHash,
    /// `H(encrypted delta)`, zero if none (always zero for a failure).
    pub delta_hash: DeltaHash,
    /// `H(encrypted output)`.
    pub output_hash: OutputHash,
    /// The value the task's record escrowed (grains).
    pub value: u128,
    /// `keccak256(packed payouts)` ([`crate::payouts::hash`]; of nothing for a failure).
    pub payouts_hash: [u8; 32],
    /// From the task record.
    pub gas_limit: u64,
    /// Gas the task used.
    pub gas_used: u64,
    /// [`STATUS_SUCCESS`] or [`STATUS_FAILURE`].
    pub status: u8,
}

/// `H(enc(contract, codeHash, u64 deltaCount, prevDeltaHash, list(taskId), list(inputsHash),
/// list(deltaHash), list(outputHash), list(u256 value), list(payoutsHash), list(u64 gasLimit),
/// list(u64 gasUsed), list(status)))`: a batch of one contract's receipts, starting on its first
/// `deltaCount` deltas.
#[must_use]
pub fn batch_digest(
    contract: &ContractAddress,
    code_hash: &CodeHash,
    delta_count: u64,
    prev_delta_hash: &DeltaHash,
    entries: &[BatchEntry],
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(contract.as_bytes())
        .bytes(code_hash.as_bytes())
        .u64(delta_count)
        .bytes(prev_delta_hash.as_bytes())
        .list(entries, |e, x| e.bytes(x.task_id.as_bytes()))
        .list(entries, |e, x| e.bytes(x.inputs_hash.as_bytes()))
        .list(entries, |e, x| e.bytes(x.delta_hash.as_bytes()))
        .list(entries, |e, x| e.bytes(x.output_hash.as_bytes()))
        .list(entries, |e, x| e.u256(&u256_from_u128(x.value)))
        .list(entries, |e, x| e.bytes(&x.payouts_hash))
        .list(entries, |e, x| e.u64(x.gas_limit))
        .list(entries, |e, x| e.u64(x.gas_used))
        .list(entries, |e, x| e.u8(x.status))
        .digest()
}

/// An epoch as the key manager signs it: every field that selection and key release read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochMessage<'a> {
    /// The random seed.
    pub seed: &'a [u8; 32],
    /// The epoch counter.
    pub nonce: u64,
    /// The block whose worker list the epoch holds (`setWorkersParams`'s `blockNumber`).
    pub snapshot_block: u64,
    /// Workers selected per contract (the chain's `groupSize`).
    pub group_size: u64,
    /// Worker signer addresses, in the chain's order.
    pub workers: &'a [SignerAddress],
    /// Their stakes (grains), same order.
    pub stakes: &'a [u128],
}

impl EpochMessage<'_> {
    /// `H(enc(u256 seed, u256 nonce, u256 snapshotBlock, u256 groupSize, list(signer(20)),
    /// list(u256 stake)))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Encoder::hashing()
            .u256(self.seed)
            .u256(&u256_from_u64(self.nonce))
            .u256(&u256_from_u64(self.snapshot_block))
            .u256(&u256_from_u64(self.group_size))
            .list(self.workers, |e, w| e.bytes(w.as_bytes()))
            .list(self.stakes, |e, s| {
                let mut wide = [0u8; 32];
                wide[16..].copy_from_slice(&s.to_be_bytes());
                e.u256(&wide)
            })
            .digest()
    }
}

/// [`EpochMessage::digest`] of these fields.
#[must_use]
pub fn epoch_digest(
    seed: &[u8; 32],
    nonce: u64,
    snapshot_block: u64,
    group_size: u64,
    workers: &[SignerAddress],
    stakes: &[u128],
) -> [u8; 32] {
    EpochMessage { seed, nonce, snapshot_block, group_size, workers, stakes }.digest()
}

/// `H(enc("enigma-report-data-v1", operator(20), principal(20)))`: what ties an enclave's
/// attestation to the account that operates it and to the key manager it serves.
#[must_use]
pub fn report_binding(operator: &Address, principal: &Address) -> [u8; 32] {
    Encoder::hashing()
        .bytes(REPORT_BINDING_PREFIX)
        .bytes(operator.as_bytes())
        .bytes(principal.as_bytes())
        .digest()
}

/// The 64 bytes an enigma enclave puts in its attestation report:
/// `signer(20) ‖ binding(32) ‖ u64be issuedAt ‖ 0000`, where `binding` is [`report_binding`]
/// and `issuedAt` the Unix time the report was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportData {
    /// The enclave's signing address.
    pub signer: SignerAddress,
    /// [`report_binding`] of its operator and principal.
    pub binding: [u8; 32],
    /// When the report was made (Unix seconds, as the enclave was told).
    pub issued_at: u64,
}

/// Why 64 bytes of report data are not an enigma enclave's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotReportData;

impl core::fmt::Display for NotReportData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the report data is not an enigma enclave's (its last 4 bytes must be zero)")
    }
}

impl core::error::Error for NotReportData {}

impl ReportData {
    /// The report data of `signer`, operated by `operator`, serving `principal`.
    #[must_use]
    pub fn new(signer: SignerAddress, operator: &Address, principal: &Address, at: u64) -> Self {
        Self { signer, binding: report_binding(operator, principal), issued_at: at }
    }

    /// The 64 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..20].copy_from_slice(self.signer.as_bytes());
        out[20..52].copy_from_slice(&self.binding);
        out[52..60].copy_from_slice(&self.issued_at.to_be_bytes());
        out
    }

    /// Reads the layout; the last four bytes must be zero.
    pub fn parse(bytes: &[u8; 64]) -> Result<Self, NotReportData> {
        let (signer, rest) = bytes.split_at(20);
        let (binding, rest) = rest.split_at(32);
        let (at, pad) = rest.split_at(8);
        if pad.iter().any(|b| *b != 0) {
            return Err(NotReportData);
        }
        Ok(Self {
            signer: SignerAddress(signer.try_into().map_err(|_| NotReportData)?),
            binding: binding.try_into().map_err(|_| NotReportData)?,
            issued_at: u64::from_be_bytes(at.try_into().map_err(|_| NotReportData)?),
        })
    }

    /// Whether it binds `operator` and `principal`.
    #[must_use]
    pub fn binds(&self, operator: &Address, principal: &Address) -> bool {
        self.binding == report_binding(operator, principal)
    }
}

/// `H(enc("enigma-sim-attestation-v2", mrEnclave(32), u16 isvProdId, u8 debug,
/// reportData(64)))`: what a simulation attestation authority signs (its stand-in for a quote).
#[must_use]
pub fn sim_attestation_digest(
    mr_enclave: &[u8; 32],
    isv_prod_id: u16,
    debug: bool,
    report_data: &[u8; 64],
) -> [u8; 32] {
    Encoder::hashing()
        .bytes(SIM_ATTESTATION_PREFIX)
        .bytes(mr_enclave)
        .u16(isv_prod_id)
        .u8(u8::from(debug))
        .bytes(report_data)
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
    fn the_result_seal_covers_what_the_receipt_leaves_out() {
        let (receipt, contract, prev) = ([1u8; 32], ContractAddress([2; 32]), DeltaHash([3; 32]));
        let (out_hash, delta) = (OutputHash([4; 32]), DeltaHash([5; 32]));
        let eth = EthCallRef { payload: b"call", address: Address([6; 20]) };
        let fields = ResultFields {
            receipt_digest: &receipt,
            encrypted_output: b"out",
            output_hash: &out_hash,
            contract: &contract,
            prev_delta_count: 5,
            prev_delta_hash: &prev,
            delta_hash: &delta,
            eth_call: eth,
            value: 7,
            payouts: b"pay",
            caller: Address([8; 20]),
            success: true,
            is_deploy: false,
        };
        let digest = result_digest(&fields);
        let manual = Encoder::new()
            .bytes(b"enigma-result-v1")
            .bytes(&receipt)
            .bytes(&keccak256(Encoder::new().bytes(b"out").into_bytes()))
            .bytes(out_hash.as_bytes())
            .bytes(contract.as_bytes())
            .u64(5)
            .bytes(prev.as_bytes())
            .bytes(delta.as_bytes())
            .bytes(&[6; 20])
            .bytes(&keccak256(Encoder::new().bytes(b"call").into_bytes()))
            .u256(&u256_from_u128(7))
            .bytes(b"pay")
            .bytes(&[8; 20])
            .u8(1)
            .u8(0)
            .into_bytes();
        assert_eq!(digest, keccak256(manual));
        let (other_contract, other_hash, other_out) =
            (ContractAddress([9; 32]), DeltaHash([9; 32]), OutputHash([9; 32]));
        for other in [
            ResultFields { receipt_digest: &[9; 32], ..fields },
            ResultFields { encrypted_output: b"ouT", ..fields },
            ResultFields { output_hash: &other_out, ..fields },
            ResultFields { contract: &other_contract, ..fields },
            ResultFields { prev_delta_count: 6, ..fields },
            ResultFields { prev_delta_hash: &other_hash, ..fields },
            ResultFields { delta_hash: &other_hash, ..fields },
            ResultFields { eth_call: EthCallRef { payload: b"cal", ..eth }, ..fields },
            ResultFields { eth_call: EthCallRef { address: Address([7; 20]), ..eth }, ..fields },
            ResultFields { value: 8, ..fields },
            ResultFields { payouts: b"paY", ..fields },
            ResultFields { caller: Address::ZERO, ..fields },
            ResultFields { success: false, ..fields },
            ResultFields { is_deploy: true, ..fields },
        ] {
            assert_ne!(result_digest(&other), digest);
        }
    }

    #[test]
    fn digests_follow_the_listed_fields() {
        let key = [7u8; 64];
        let manual = Encoder::new().bytes(b"Enigma User Message").bytes(&key).into_bytes();
        assert_eq!(worker_key_digest(&key), keccak256(manual));

        let f = FailureReceipt {
            task_id: TaskId([8; 32]),
            contract: ContractAddress([9; 32]),
            inputs_hash: InputsHash([1; 32]),
            code_hash: CodeHash::ZERO,
            output_hash: OutputHash([2; 32]),
            gas_limit: 10,
            gas_used: 3,
            value: 0,
        };
        let manual = Encoder::new()
            .bytes(&[8; 32])
            .bytes(&[9; 32])
            .bytes(&[1; 32])
            .bytes(&[0; 32])
            .bytes(&[2; 32])
            .u64(10)
            .u64(3)
            .u256(&[0; 32])
            .u8(0)
            .into_bytes();
        assert_eq!(f.digest(), keccak256(manual));
    }

    #[test]
    fn every_field_of_a_compute_receipt_matters() {
        let base = ComputeReceipt {
            task_id: TaskId([10; 32]),
            contract: ContractAddress([11; 32]),
            code_hash: CodeHash([1; 32]),
            inputs_hash: InputsHash([2; 32]),
            delta_count: 12,
            prev_delta_hash: DeltaHash([3; 32]),
            delta_hash: DeltaHash([4; 32]),
            output_hash: OutputHash([5; 32]),
            gas_limit: 6,
            gas_used: 7,
            eth_call: EthCallRef { payload: b"p", address: Address([8; 20]) },
            value: 0,
            payouts: b"",
        };
        let d = base.digest();
        let variants = [
            ComputeReceipt { task_id: TaskId([9; 32]), ..base },
            ComputeReceipt { contract: ContractAddress([9; 32]), ..base },
            ComputeReceipt { code_hash: CodeHash([9; 32]), ..base },
            ComputeReceipt { inputs_hash: InputsHash([9; 32]), ..base },
            ComputeReceipt { prev_delta_hash: DeltaHash([9; 32]), ..base },
            ComputeReceipt { delta_count: 13, ..base },
            ComputeReceipt { delta_hash: DeltaHash([9; 32]), ..base },
            ComputeReceipt { output_hash: OutputHash([9; 32]), ..base },
            ComputeReceipt { gas_limit: 9, ..base },
            ComputeReceipt { gas_used: 9, ..base },
            ComputeReceipt { eth_call: EthCallRef { payload: b"q", ..base.eth_call }, ..base },
            ComputeReceipt {
                eth_call: EthCallRef { address: Address([9; 20]), ..base.eth_call },
                ..base
            },
            ComputeReceipt { value: 1, ..base },
            ComputeReceipt { payouts: &[0; 36], ..base },
        ];
        for v in variants {
            assert_ne!(v.digest(), d, "{v:?}");
        }
    }

    #[test]
    fn epoch_digest_covers_every_field_release_reads() {
        let workers = [SignerAddress([3; 20])];
        let m = EpochMessage {
            seed: &[1; 32],
            nonce: 2,
            snapshot_block: 40,
            group_size: 1,
            workers: &workers,
            stakes: &[5],
        };
        let mut stake = [0u8; 32];
        stake[31] = 5;
        let manual = Encoder::new()
            .bytes(&[1; 32])
            .u256_from_u64(2)
            .u256_from_u64(40)
            .u256_from_u64(1)
            .list([[3u8; 20]], |e, w| e.bytes(&w))
            .list([stake], |e, s| e.bytes(&s))
            .into_bytes();
        assert_eq!(m.digest(), keccak256(manual));
        let other = [SignerAddress([4; 20])];
        for v in [
            EpochMessage { seed: &[9; 32], ..m },
            EpochMessage { nonce: 3, ..m },
            EpochMessage { snapshot_block: 41, ..m },
            EpochMessage { group_size: 2, ..m },
            EpochMessage { workers: &other, ..m },
            EpochMessage { stakes: &[6], ..m },
        ] {
            assert_ne!(v.digest(), m.digest(), "{v:?}");
        }
    }

    /// The known answers of docs/api.md section 4.
    #[test]
    fn known_answers_of_the_epoch_report_data_and_simulation_digests() {
        let mut seed = [0u8; 32];
        seed[24..].copy_from_slice(&12345u64.to_be_bytes());
        let w = [SignerAddress([0x11; 20]), SignerAddress([0x22; 20])];
        let hex = |d: [u8; 32]| hex::encode(d);
        assert_eq!(
            hex(epoch_digest(&seed, 0, 100, 1, &w, &[100_000_000_000, 200_000_000_000])),
            "73d5c2fa07bf5293d5e09ce4247c62f00711a149748c6d113a0b7debc6bc766e"
        );
        assert_eq!(
            hex(epoch_digest(&seed, 7, 100, 1, &[], &[])),
            "1c83fe78c930deda31f94973e82844a3c6629f89d17f6bb1bc94bc78244c48f9"
        );
        let rd = ReportData::new(
            SignerAddress([0x11; 20]),
            &Address([0x22; 20]),
            &Address([0x33; 20]),
            1_700_000_000,
        );
        assert_eq!(
            hex(rd.binding),
            "1b77f854c5abff7f45ac5ea5c8278929d11cc0fb306d4e82887f38d0b4e50f7e"
        );
        assert_eq!(
            hex(sim_attestation_digest(&[0xaa; 32], 1, false, &rd.to_bytes())),
            "d15d086332104901bba67493ef7ececa3ed1828a2cca2005b9bcc6c9166a8455"
        );
    }

    /// The receipt, field and announcement known answers of docs/api.md section 4.
    #[test]
    fn known_answers_of_the_receipts_fields_and_announcements() {
        let h = |t: &str| keccak256(t.as_bytes());
        let (i, i2, c) = (InputsHash(h("inputs")), InputsHash(h("inputs 2")), CodeHash(h("code")));
        let (d0, d1, p) = (DeltaHash(h("delta 0")), DeltaHash(h("delta 1")), DeltaHash(h("prev")));
        let (o, o2) = (OutputHash(h("output")), OutputHash(h("output 2")));
        let (t, t2, s) = (TaskId(h("task")), TaskId(h("task 2")), ContractAddress(h("contract")));
        let hex = |d: [u8; 32]| hex::encode(d);
        let paid = crate::payouts::encode(&[crate::payouts::Payout {
            to: Address([0x44; 20]),
            amount: crate::Grains(600),
        }]);
        let deploy = DeployReceipt {
            task_id: t,
            inputs_hash: i,
            code_hash: c,
            init_delta_hash: d0,
            gas_limit: 1_000_000,
            gas_used: 123_456,
            eth_call: EthCallRef::default(),
        };
        assert_eq!(
            hex(deploy.digest()),
            "e88091331e9e24dfd907aa35ad28d9ac26a17fe171e067e7440ad32badedb8a3"
        );
        let compute = ComputeReceipt {
            task_id: t,
            contract: s,
            code_hash: c,
            inputs_hash: i,
            delta_count: 7,
            prev_delta_hash: p,
            delta_hash: d1,
            output_hash: o,
            gas_limit: 1_000_000,
            gas_used: 50_000,
            eth_call: EthCallRef::default(),
            value: 1_000,
            payouts: &paid,
        };
        assert_eq!(
            hex(compute.digest()),
            "079189a1b045e4f0251b6d5c82b737910b59b5116b21366277daa3be536f4fb7"
        );
        let failure = FailureReceipt {
            task_id: t,
            contract: s,
            inputs_hash: i,
            code_hash: c,
            output_hash: o,
            gas_limit: 1_000_000,
            gas_used: 1_000_000,
            value: 0,
        };
        assert_eq!(
            hex(failure.digest()),
            "7553e51153195ab61321c9318ac5ca9f69aa0ad0f6495c7b87646710fb3d4e3f"
        );
        let deploy_failure = FailureReceipt {
            contract: ContractAddress(t.0),
            code_hash: CodeHash::ZERO,
            gas_used: 777,
            ..failure
        };
        assert_eq!(
            hex(deploy_failure.digest()),
            "a27052aeb1628600622df5e94133d6a843e91aefabc5aacd3e9ca156f9fdfa18"
        );
        let entries = [
            BatchEntry {
                task_id: t,
                inputs_hash: i,
                delta_hash: d1,
                output_hash: o,
                value: 1_000,
                payouts_hash: crate::payouts::hash(&paid),
                gas_limit: 1_000_000,
                gas_used: 40_000,
                status: 1,
            },
            BatchEntry {
                task_id: t2,
                inputs_hash: i2,
                delta_hash: DeltaHash::ZERO,
                output_hash: o2,
                value: 0,
                payouts_hash: crate::payouts::hash(&[]),
                gas_limit: 1_000_000,
                gas_used: 40_001,
                status: 0,
            },
        ];
        assert_eq!(
            hex(batch_digest(&s, &c, 7, &p, &entries)),
            "cffac298bffeda9b82e19c04b12f8fbe559a89ab88f3cb273c8343e4f11e0f84"
        );
        assert_eq!(
            hex(task_field_ad(&s, &t, 0, TaskField::Callable)),
            "911297f05515a1ef735d76bbb45516e88d43499b7f0a6cd16954dd9289fecc62"
        );
        assert_ne!(
            task_field_ad(&s, &t, 0, TaskField::Arguments),
            task_field_ad(&s, &t, 0, TaskField::Callable)
        );
        assert_ne!(
            task_field_ad(&s, &t2, 0, TaskField::Callable),
            task_field_ad(&s, &t, 0, TaskField::Callable)
        );
        assert_ne!(
            task_field_ad(&s, &t, 1, TaskField::Callable),
            task_field_ad(&s, &t, 0, TaskField::Callable),
            "the value is bound"
        );
        assert_eq!(
            hex(announcement_digest(
                &SignerAddress([0x11; 20]),
                b"peer",
                &["/ip4/127.0.0.1/tcp/1".into()],
                100,
                &[4; 64],
                1_700_000_000_000
            )),
            "935632cced1756b0a35da8581bff060d116d36cd580a55dc6367d4fedbc47b8b"
        );
    }

    #[test]
    fn report_data_round_trips_and_binds_operator_and_principal() {
        let operator = Address([1; 20]);
        let principal = Address([2; 20]);
        let r = ReportData::new(SignerAddress([3; 20]), &operator, &principal, 1_700_000_000);
        let bytes = r.to_bytes();
        assert_eq!(&bytes[..20], &[3; 20]);
        assert_eq!(&bytes[60..], &[0; 4]);
        assert_eq!(ReportData::parse(&bytes), Ok(r));
        assert!(r.binds(&operator, &principal));
        assert!(!r.binds(&principal, &operator));
        assert!(!r.binds(&operator, &Address([9; 20])));
        let mut dirty = bytes;
        dirty[63] = 1;
        assert_eq!(ReportData::parse(&dirty), Err(NotReportData));
    }
}
