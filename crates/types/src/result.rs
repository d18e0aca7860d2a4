//! A task's signed result: the message a worker publishes (only hashes and ciphertext), the
//! digests its enclave signed, its JSON form as gateways serve it, and the checks a client makes
//! before it believes one — shared by the Rust client and enigma-js (through `enigma-wasm`), so
//! both verify a result the same way. Recovering the signer is `enigma_crypto::SignedResult`.

use alloc::{
    format,
    string::{String, ToString},
    vec::Vec,
};

use serde::{Deserialize, Serialize};

use crate::{
    Address, CodeHash, ContractAddress, DeltaHash, InputsHash, OutputHash, TaskId, payouts::Payout,
};

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
    /// The number of the contract's deltas before the task.
    pub prev_delta_count: u64,
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
    /// The ENG the task's record escrowed (grains), as the enclave ran it.
    pub value: u128,
    /// The payouts the task made, packed (`enigma_types::payouts`).
    pub payouts: Vec<u8>,
    /// The verified caller the contract was told (zero: none).
    pub caller: Address,
    /// The worker enclave's signature over the receipt digest.
    pub signature: Vec<u8>,
    /// The same enclave's seal over [`result_digest`](Self::result_digest): the receipt digest
    /// and every field above it leaves out.
    pub result_signature: Vec<u8>,
}

impl ResultMessage {
    /// The digest the worker enclave signed (deploy, compute or failure receipt), from the
    /// message's public fields: what a gateway or client checks the signature against.
    #[must_use]
    pub fn receipt_digest(&self) -> [u8; 32] {
        let m = self;
        use crate::messages::{ComputeReceipt, DeployReceipt, EthCallRef, FailureReceipt};
        let eth = EthCallRef { payload: &m.eth_payload, address: Address(m.eth_address) };
        match (m.success, m.is_deploy) {
            (true, true) => DeployReceipt {
                task_id: m.task_id,
                inputs_hash: m.inputs_hash,
                code_hash: m.code_hash,
                init_delta_hash: m.delta_hash,
                gas_limit: m.gas_limit,
                gas_used: m.gas_used,
                eth_call: eth,
            }
            .digest(),
            (true, false) => ComputeReceipt {
                task_id: m.task_id,
                contract: m.contract,
                code_hash: m.code_hash,
                inputs_hash: m.inputs_hash,
                delta_count: m.prev_delta_count,
                prev_delta_hash: m.prev_delta_hash,
                delta_hash: m.delta_hash,
                output_hash: m.output_hash,
                gas_limit: m.gas_limit,
                gas_used: m.gas_used,
                eth_call: eth,
                value: m.value,
                payouts: &m.payouts,
            }
            .digest(),
            (false, _) => FailureReceipt {
                task_id: m.task_id,
                contract: m.contract,
                inputs_hash: m.inputs_hash,
                code_hash: m.code_hash,
                output_hash: m.output_hash,
                gas_limit: m.gas_limit,
                gas_used: m.gas_used,
                value: m.value,
            }
            .digest(),
        }
    }

    /// The digest of the result's seal: the receipt digest and every published field it
    /// leaves out (`enigma_types::messages::result_digest`).
    #[must_use]
    pub fn result_digest(&self) -> [u8; 32] {
        use crate::messages::{EthCallRef, ResultFields, result_digest};
        result_digest(&ResultFields {
            receipt_digest: &self.receipt_digest(),
            encrypted_output: &self.encrypted_output,
            output_hash: &self.output_hash,
            contract: &self.contract,
            prev_delta_count: self.prev_delta_count,
            prev_delta_hash: &self.prev_delta_hash,
            delta_hash: &self.delta_hash,
            eth_call: EthCallRef { payload: &self.eth_payload, address: Address(self.eth_address) },
            value: self.value,
            payouts: &self.payouts,
            caller: self.caller,
            success: self.success,
            is_deploy: self.is_deploy,
        })
    }
}

/// A result as gateways return it over JSON-RPC (hex strings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    /// The task.
    pub task_id: String,
    /// `SUCCESS` or `FAILED`.
    pub status: String,
    /// The contract.
    pub contract_address: String,
    /// The output (or error text) encrypted to the user, hex.
    pub output: String,
    /// The delta hash, hex.
    pub delta_hash: String,
    /// The previous delta hash, hex.
    pub prev_delta_hash: String,
    /// The number of the contract's deltas before the task.
    #[serde(default)]
    pub prev_delta_count: u64,
    /// The inputs hash, hex.
    pub inputs_hash: String,
    /// The code hash, hex.
    pub code_hash: String,
    /// The output hash, hex.
    pub output_hash: String,
    /// Gas limit and used.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Ethereum callback target and payload, hex.
    pub eth_address: String,
    /// Ethereum callback payload, hex.
    pub eth_payload: String,
    /// The ENG the task brought (grains, decimal: JSON numbers cannot hold every amount).
    #[serde(default)]
    pub value: String,
    /// The payouts the task made, packed (36 bytes each: recipient, u128 amount), hex.
    #[serde(default)]
    pub payouts: String,
    /// The verified caller the contract was told (the zero address: none).
    #[serde(default)]
    pub caller: String,
    /// A deployment?
    pub is_deploy: bool,
    /// The worker enclave's signature, hex.
    pub signature: String,
    /// Its seal over the fields the receipt leaves out, hex.
    #[serde(default)]
    pub result_signature: String,
}

impl From<&ResultMessage> for ResultView {
    fn from(m: &ResultMessage) -> Self {
        Self {
            task_id: m.task_id.to_string(),
            status: if m.success { "SUCCESS".into() } else { "FAILED".into() },
            contract_address: m.contract.to_string(),
            output: hexed(&m.encrypted_output),
            delta_hash: m.delta_hash.to_string(),
            prev_delta_hash: m.prev_delta_hash.to_string(),
            prev_delta_count: m.prev_delta_count,
            inputs_hash: m.inputs_hash.to_string(),
            code_hash: m.code_hash.to_string(),
            output_hash: m.output_hash.to_string(),
            gas_limit: m.gas_limit,
            gas_used: m.gas_used,
            eth_address: hexed(&m.eth_address),
            eth_payload: hexed(&m.eth_payload),
            value: m.value.to_string(),
            payouts: hexed(&m.payouts),
            caller: m.caller.to_string(),
            is_deploy: m.is_deploy,
            signature: hexed(&m.signature),
            result_signature: hexed(&m.result_signature),
        }
    }
}

fn hexed(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl TryFrom<&ResultView> for ResultMessage {
    type Error = String;

    /// Back to the signed form, to check the signature and decrypt the output.
    fn try_from(v: &ResultView) -> Result<Self, String> {
        let bytes = |text: &str, what: &str| {
            hex::decode(text.trim_start_matches("0x")).map_err(|e| format!("{what}: {e}"))
        };
        let parse = |text: &str, what: &str| -> Result<[u8; 32], String> {
            bytes(text, what)?.try_into().map_err(|_| format!("{what} is not 32 bytes"))
        };
        Ok(Self {
            task_id: TaskId(parse(&v.task_id, "taskId")?),
            contract: ContractAddress(parse(&v.contract_address, "contractAddress")?),
            success: v.status == "SUCCESS",
            is_deploy: v.is_deploy,
            inputs_hash: InputsHash(parse(&v.inputs_hash, "inputsHash")?),
            code_hash: CodeHash(parse(&v.code_hash, "codeHash")?),
            encrypted_output: bytes(&v.output, "output")?,
            output_hash: OutputHash(parse(&v.output_hash, "outputHash")?),
            prev_delta_hash: DeltaHash(parse(&v.prev_delta_hash, "prevDeltaHash")?),
            prev_delta_count: v.prev_delta_count,
            delta_hash: DeltaHash(parse(&v.delta_hash, "deltaHash")?),
            gas_limit: v.gas_limit,
            gas_used: v.gas_used,
            eth_address: bytes(&v.eth_address, "ethAddress")?
                .try_into()
                .map_err(|_| "ethAddress is not 20 bytes".to_string())?,
            eth_payload: bytes(&v.eth_payload, "ethPayload")?,
            value: if v.value.is_empty() {
                0
            } else {
                v.value.parse().map_err(|e| format!("value {:?}: {e}", v.value))?
            },
            payouts: bytes(&v.payouts, "payouts")?,
            caller: if v.caller.is_empty() {
                Address::ZERO
            } else {
                v.caller.parse().map_err(|e| format!("caller {:?}: {e}", v.caller))?
            },
            signature: bytes(&v.signature, "signature")?,
            result_signature: bytes(&v.result_signature, "resultSignature")?,
        })
    }
}

/// What the client that sent a task knows of it, which its result must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The task's id.
    pub task_id: TaskId,
    /// Its inputs hash (on its record).
    pub inputs_hash: InputsHash,
    /// The contract it was for (a deployment's is its task id).
    pub contract: ContractAddress,
    /// Whether it deploys.
    pub is_deploy: bool,
    /// The ENG it sent with the call (grains).
    pub value: u128,
    /// The caller it proved (the zero address: anonymous).
    pub caller: Address,
    /// The contract's code hash (a deployment's: its module's).
    pub code_hash: CodeHash,
}

impl ResultMessage {
    /// Checks the result's fields against the task the client sent: the same task, contract,
    /// kind, value, caller and code, and payouts that decode (none on a failure). It does not
    /// check the signature (`enigma_crypto::SignedResult::signer` against the selected worker)
    /// or where the result stands against the chain ([`standing`](Self::standing)).
    ///
    /// # Errors
    ///
    /// What differs, as a sentence a user can read.
    pub fn check(&self, expected: &Expected) -> Result<Vec<Payout>, String> {
        if self.task_id != expected.task_id || self.inputs_hash != expected.inputs_hash {
            return Err("it answers another task".into());
        }
        // A gateway that relabels a deployment's address would send the user's next inputs to
        // a look-alike.
        if self.contract != expected.contract || self.is_deploy != expected.is_deploy {
            return Err(format!(
                "it names contract {}, but the task was for {}",
                self.contract, expected.contract
            ));
        }
        // A host that told its enclave another amount gets a receipt the chain refuses.
        if self.value != expected.value {
            return Err(format!(
                "it ran with a value of {} grains, but the task sent {}",
                self.value, expected.value
            ));
        }
        // A relay that dropped the caller's proof would have made it run anonymously.
        if self.caller != expected.caller {
            return Err(format!(
                "it ran with caller {}, but the task was signed by {}",
                self.caller, expected.caller
            ));
        }
        let payouts =
            crate::payouts::decode(&self.payouts).map_err(|e| format!("its payouts: {e}"))?;
        if !self.success && !payouts.is_empty() {
            return Err("a failure with payouts".into());
        }
        if self.success && self.code_hash != expected.code_hash {
            return Err(format!(
                "it ran code {}, but the contract's code is {}",
                self.code_hash, expected.code_hash
            ));
        }
        Ok(payouts)
    }

    /// Whether a result whose task is not final on chain can still land, given the contract's
    /// delta count and last delta hash on chain: it must have been computed on the chain's state
    /// or ahead of it (on receipts the worker has not committed yet). One on a state the chain
    /// has moved past — rolled back or forked — can never be committed. A deployment has no
    /// state before it and always stands.
    ///
    /// # Errors
    ///
    /// Why the result can never land.
    pub fn standing(&self, chain_delta_count: u64, chain_tip: &DeltaHash) -> Result<(), String> {
        if self.is_deploy {
            return Ok(());
        }
        let moved_past = match self.prev_delta_count.cmp(&chain_delta_count) {
            core::cmp::Ordering::Greater => false,
            core::cmp::Ordering::Equal => self.prev_delta_hash != *chain_tip,
            core::cmp::Ordering::Less => true,
        };
        if moved_past {
            return Err(format!(
                "it was computed on delta {} of contract {} (hash {}), but the chain stands at delta {chain_delta_count} with tip {chain_tip} and has not taken the task's receipt: the state was rolled back or forked, and this result can never be committed",
                self.prev_delta_count, self.contract, self.prev_delta_hash
            ));
        }
        Ok(())
    }
}
