//! Running a task: instantiate, meter, call `deploy` or `call`, collect the delta.

use alloc::{collections::BTreeMap, format, string::String, vec, vec::Vec};

use enigma_types::{
    Address, CodeHash, DeltaHash, GasLimit, GasUsed,
    caller::{MAX_PERMIT_NAME, REVOKE_PERMIT},
    code_hash,
    delta::{Change, Delta},
    payouts::Payout,
};
use wasmi::{
    CompilationMode, Config, Engine, Memory, MemoryType, Store, StoreLimitsBuilder, TrapCode,
    TypedResumableCall,
};

use crate::{
    ContractState, ExecError, Limits, ModuleError, Randomness, StateReader, TrapKind, gas,
    host::{self, Host, HostTrap},
    module::{MemorySource, ModuleCache},
};

/// A contract's module and its code hash.
#[derive(Debug, Clone, Copy)]
pub struct ContractCode<'a> {
    hash: CodeHash,
    wasm: &'a [u8],
}

impl<'a> ContractCode<'a> {
    /// Wraps a module, hashing it.
    #[must_use]
    pub fn new(wasm: &'a [u8]) -> Self {
        Self { hash: code_hash(wasm), wasm }
    }

    /// Wraps a module whose hash the caller already knows (the runtime trusts it as the cache
    /// key; give the hash that was computed over these bytes).
    #[must_use]
    pub fn with_hash(hash: CodeHash, wasm: &'a [u8]) -> Self {
        Self { hash, wasm }
    }

    /// The code hash.
    #[must_use]
    pub fn hash(&self) -> CodeHash {
        self.hash
    }

    /// The module's bytes.
    #[must_use]
    pub fn wasm(&self) -> &'a [u8] {
        self.wasm
    }
}

/// Which export a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `deploy`: the constructor, once, at deployment.
    Deploy,
    /// `call`: a compute task.
    Call,
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    /// The export to run.
    pub entry: Entry,
    /// The callable, e.g. `add_millionaire(address,uint256)`; only the text before `(` reaches
    /// the contract.
    pub function: &'a str,
    /// The ABI-encoded arguments.
    pub args: &'a [u8],
    /// The gas limit from the task record on chain.
    pub gas_limit: GasLimit,
    /// The index the task's delta will get.
    pub delta_index: u64,
    /// The hash of the contract's last encrypted delta.
    pub prev_delta_hash: DeltaHash,
    /// The ENG (grains) the task's record escrowed for the contract: it joins the contract's
    /// balance if the task succeeds (always zero for a deploy).
    pub value: u128,
    /// The task's verified caller, if its sender signed it (the enclave checked the signature).
    pub caller: Option<Address>,
    /// A read-only query: writing state, the Ethereum bridge and payouts fail it.
    pub read_only: bool,
}

impl<'a> Task<'a> {
    /// A deployment: runs the constructor; its delta is delta 0.
    #[must_use]
    pub fn deploy(constructor: &'a str, args: &'a [u8], gas_limit: GasLimit) -> Self {
        Self {
            entry: Entry::Deploy,
            function: constructor,
            args,
            gas_limit,
            delta_index: 0,
            prev_delta_hash: DeltaHash::ZERO,
            value: 0,
            caller: None,
            read_only: false,
        }
    }

    /// A compute task. Position its delta with [`after`](Self::after).
    #[must_use]
    pub fn call(function: &'a str, args: &'a [u8], gas_limit: GasLimit) -> Self {
        Self {
            entry: Entry::Call,
            function,
            args,
            gas_limit,
            delta_index: 0,
            prev_delta_hash: DeltaHash::ZERO,
            value: 0,
            caller: None,
            read_only: false,
        }
    }

    /// A read-only query of a contract function: no state is written (a write, the Ethereum
    /// bridge or a payout fails it with [`ExecError::ReadOnly`]), nothing is recorded.
    #[must_use]
    pub fn query(function: &'a str, args: &'a [u8], gas_limit: GasLimit) -> Self {
        Self { read_only: true, ..Self::call(function, args, gas_limit) }
    }

    /// A task (deploy or compute) whose sender the enclave verified: the contract can ask who
    /// calls it.
    #[must_use]
    pub fn called_by(mut self, caller: Option<Address>) -> Self {
        self.caller = caller;
        self
    }

    /// A compute task that brings `value` grains (escrowed by its record) to the contract.
    #[must_use]
    pub fn paying(mut self, value: u128) -> Self {
        self.value = value;
        self
    }

    /// Positions the task's delta after the last delta applied to `state`.
    #[must_use]
    pub fn after(mut self, state: &ContractState) -> Self {
        self.delta_index = state.next_index();
        self.prev_delta_hash = state.tip();
        self
    }
}

/// A call to an Ethereum contract the task asked for (`write_eth_bridge`), made by the chain
/// after the receipt is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthCall {
    /// The contract to call.
    pub address: Address,
    /// The calldata.
    pub payload: Vec<u8>,
}

/// A task that ran to completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// The ABI-encoded output (empty for a deploy or a function without a result).
    pub output: Vec<u8>,
    /// The keys the task changed; empty when it changed nothing.
    pub delta: Delta,
    /// The Ethereum call it asked for, if any.
    pub eth_call: Option<EthCall>,
    /// What it paid out of the contract's balance, in order.
    pub payouts: Vec<Payout>,
    /// `eprint` output, when [`Limits::debug_logs`] is on.
    pub logs: Vec<String>,
}

/// The result of a task and the gas it used (failures use gas too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Gas used, at most the limit; the whole limit when it ran out.
    pub gas_used: GasUsed,
    /// What happened.
    pub result: Result<Success, ExecError>,
}

/// Fuel handed to the engine at a time by default ([`Limits::fuel_slice`]): between slices the
/// runtime asks the [`Deadline`] whether to go on. Slicing changes nothing a task can observe,
/// nor the gas it uses.
pub const FUEL_SLICE: u64 = 1 << 22;

/// A wall-clock fence around a task, second to its gas limit. Asked between fuel slices (every
/// [`Limits::fuel_slice`] units of gas): when it has passed, the task stops unfinished.
///
/// Wall-clock time differs between machines, so a task stopped this way has no result at all
/// (nothing to sign: another worker might have finished it), unlike running out of gas.
pub trait Deadline {
    /// Whether the task must stop now.
    fn passed(&mut self) -> bool;
}

/// No wall-clock fence: the task runs until it finishes or its gas runs out.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl Deadline for NoDeadline {
    fn passed(&mut self) -> bool {
        false
    }
}

/// A task stopped by its [`Deadline`] before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// The gas it had used when it stopped.
    pub gas_used: GasUsed,
}

impl core::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the task ran past the worker's time budget after {} gas without finishing; \
             give it a lower gas limit or split the work",
            self.gas_used.0
        )
    }
}

impl core::error::Error for Interrupted {}

/// The engine, its limits and the cache of compiled modules.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    cache: ModuleCache,
}

impl Runtime {
    /// An engine with these limits.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .allow_start_fn(false)
            .set_max_recursion_depth(limits.max_call_depth);
        let cache = ModuleCache::new(limits.max_cached_modules);
        Self { engine: Engine::new(&config), limits, cache }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many compiled modules are cached.
    #[must_use]
    pub fn cached_modules(&self) -> usize {
        self.cache.len()
    }

    /// Checks a module as a deployment would (and caches it): size, structure, imports, memory,
    /// exports. Returns its code hash.
    pub fn validate(&mut self, wasm: &[u8]) -> Result<CodeHash, ModuleError> {
        let code = ContractCode::new(wasm);
        self.cache.get_or_compile(&self.engine, &code.hash, wasm, &self.limits)?;
        Ok(code.hash)
    }

    /// Whether the module with this hash is compiled and cached (a task can then run it with
    /// [`ContractCode::with_hash`] and no bytes).
    #[must_use]
    pub fn is_cached(&self, hash: &CodeHash) -> bool {
        self.cache.contains(hash)
    }

    /// Compiles `code` into the cache if it is not there yet (a worker warming up a contract it
    /// was just selected for).
    pub fn prepare(&mut self, code: &ContractCode<'_>) -> Result<(), ModuleError> {
        self.cache.get_or_compile(&self.engine, &code.hash, code.wasm, &self.limits).map(|_| ())
    }

    /// Runs `task` on `code` with the contract's `state`, with no wall-clock fence. Never
    /// panics on anything the module, the arguments or the state contain.
    pub fn execute(
        &mut self,
        code: &ContractCode<'_>,
        task: Task<'_>,
        state: &dyn StateReader,
        rng: &mut dyn Randomness,
    ) -> Outcome {
        match self.execute_within(code, task, state, rng, &mut NoDeadline) {
            Ok(outcome) => outcome,
            // NoDeadline never passes.
            Err(stopped) => Outcome {
                gas_used: stopped.gas_used,
                result: Err(ExecError::OutOfGas { limit: task.gas_limit.0 }),
            },
        }
    }

    /// Runs `task` like [`execute`](Self::execute), stopping it unfinished when `deadline`
    /// passes. The outcome (and the gas) of a task that finishes is the same with or without a
    /// deadline.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when the deadline passed first.
    pub fn execute_within(
        &mut self,
        code: &ContractCode<'_>,
        task: Task<'_>,
        state: &dyn StateReader,
        rng: &mut dyn Randomness,
        deadline: &mut dyn Deadline,
    ) -> Result<Outcome, Interrupted> {
        let limit = task.gas_limit.0;
        let value = if task.entry == Entry::Call { task.value } else { 0 };
        let mut base = gas::TASK_BASE;
        if task.entry == Entry::Deploy {
            base = base
                .saturating_add((code.wasm.len() as u64).saturating_mul(gas::DEPLOY_PER_CODE_BYTE));
        }
        let fail = |used: u64, error: ExecError| Outcome {
            gas_used: GasUsed(used.min(limit)),
            result: Err(error),
        };
        let Some(fuel) = limit.checked_sub(base) else {
            return Ok(fail(limit, ExecError::OutOfGas { limit }));
        };
        if task.args.len() > self.limits.max_args_bytes {
            let e = ExecError::TooLarge {
                what: "the arguments",
                len: task.args.len(),
                max: self.limits.max_args_bytes,
            };
            return Ok(fail(base, e));
        }
        let name = task.function.split('(').next().unwrap_or_default();
        if task.entry == Entry::Call && Some(name) == REVOKE_PERMIT.split('(').next() {
            return Ok(revoke_permit(&task, state, base));
        }
        let (module, memory_source) =
            match self.cache.get_or_compile(&self.engine, &code.hash, code.wasm, &self.limits) {
                Ok(found) => found,
                Err(e) => return Ok(fail(base, e.into())),
            };

        // Modules of enigma's SDK (they import its extensions) read a missing key as nothing,
        // as they always have; any other module is eng-wasm's and reads it as JSON `null`.
        let sdk = module.imports().any(|i| matches!(i.name(), "enigma_fail" | "enigma_state_len"));
        // A module answers queries only if it can tell a query from a task (its dispatch then
        // decides which functions answer them): free, unrecorded queries must not reach
        // functions written for recorded, paid tasks.
        if task.read_only && !module.imports().any(|i| i.name() == "enigma_is_query") {
            return Ok(fail(base, ExecError::NotQueryable));
        }
        let max_memory_bytes = self.limits.max_memory_pages as usize * 65536;
        let host = Host {
            function: name.as_bytes(),
            missing: if sdk { b"" } else { host::MISSING },
            args: task.args,
            state,
            rng,
            limits: &self.limits,
            memory: None,
            store_limits: host::Limiter(
                StoreLimitsBuilder::new()
                    .memory_size(max_memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
            ),
            writes: BTreeMap::new(),
            written_bytes: 0,
            reserve: 0,
            output: Vec::new(),
            eth_call: None,
            balance: host::stored_balance(state).saturating_add(value),
            value,
            value_read: false,
            caller: task.caller,
            read_only: task.read_only,
            payouts: Vec::new(),
            logs: Vec::new(),
            log_bytes: 0,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(store_limits);
        let map = |e: &wasmi::Error, store: &Store<Host<'_>>| {
            let error = map_error(e, &self.limits);
            let used = match error {
                ExecError::OutOfGas { .. } => limit,
                _ => limit - left(store),
            };
            let error = match error {
                ExecError::OutOfGas { .. } => ExecError::OutOfGas { limit },
                other => other,
            };
            Outcome { gas_used: GasUsed(used), result: Err(error) }
        };
        if let Err(e) = store.set_fuel(fuel) {
            return Ok(map(&e, &store));
        }

        let mut linker = match host::linker(&self.engine) {
            Ok(linker) => linker,
            Err(e) => return Ok(map(&e, &store)),
        };
        let imported = match memory_source {
            MemorySource::Imported { initial_pages, maximum } => {
                let memory = match Memory::new(&mut store, MemoryType::new(initial_pages, maximum))
                {
                    Ok(memory) => memory,
                    Err(e) => return Ok(map(&e, &store)),
                };
                if let Err(e) = linker.define("env", "memory", memory) {
                    return Ok(map(&e.into(), &store));
                }
                Some(memory)
            }
            MemorySource::Exported => None,
        };
        let instance = match linker.instantiate_and_start(&mut store, &module) {
            Ok(instance) => instance,
            Err(e) => return Ok(map(&e, &store)),
        };
        let memory = imported.or_else(|| instance.get_memory(&store, "memory"));
        store.data_mut().memory = memory;

        let export = match task.entry {
            Entry::Deploy => "deploy",
            Entry::Call => "call",
        };
        let func = match instance.get_typed_func::<(), ()>(&store, export) {
            Ok(func) => func,
            Err(_) => return Ok(fail(base, ModuleError::MissingExport(export).into())),
        };
        // Run in slices of fuel, the rest held in the host's reserve (host functions draw on it
        // too), and look at the deadline between slices.
        let slice = self.limits.fuel_slice.max(1);
        let have = store.get_fuel().unwrap_or(0);
        if have > slice {
            store.data_mut().reserve = have - slice;
            if let Err(e) = store.set_fuel(slice) {
                return Ok(map(&e, &store));
            }
        }
        let mut call = func.call_resumable(&mut store, ());
        loop {
            match call {
                Ok(TypedResumableCall::Finished(())) => break,
                Ok(TypedResumableCall::HostTrap(trapped)) => {
                    return Ok(map(trapped.host_error(), &store));
                }
                Ok(TypedResumableCall::OutOfFuel(paused)) => {
                    let have = store.get_fuel().unwrap_or(0);
                    let reserve = store.data().reserve;
                    let need = paused.required_fuel();
                    if have.saturating_add(reserve) < need {
                        return Ok(Outcome {
                            gas_used: GasUsed(limit),
                            result: Err(ExecError::OutOfGas { limit }),
                        });
                    }
                    if deadline.passed() {
                        return Err(Interrupted { gas_used: GasUsed(limit - left(&store)) });
                    }
                    let give = need.saturating_sub(have).max(slice).min(reserve);
                    store.data_mut().reserve = reserve - give;
                    if let Err(e) = store.set_fuel(have + give) {
                        return Ok(map(&e, &store));
                    }
                    call = paused.resume(&mut store);
                }
                Err(e) => return Ok(map(&e, &store)),
            }
        }

        let gas_used = limit - left(&store);
        let mut host = store.into_data();
        if value != 0 && !host.value_read {
            return Ok(Outcome {
                gas_used: GasUsed(gas_used),
                result: Err(ExecError::ValueNotTaken { value }),
            });
        }
        if value != 0 || !host.payouts.is_empty() {
            // The balance moves with the state: a delta the chain drops takes it back too.
            host.writes
                .insert(host::BALANCE_KEY.to_vec(), Some(host.balance.to_be_bytes().to_vec()));
        }
        let changes = host
            .writes
            .into_iter()
            .filter(|(key, value)| value.as_deref() != host.state.read(key))
            .map(|(key, value)| Change { key, value })
            .collect();
        Ok(Outcome {
            gas_used: GasUsed(gas_used),
            result: Ok(Success {
                output: host.output,
                delta: Delta { index: task.delta_index, prev_hash: task.prev_delta_hash, changes },
                eth_call: host.eth_call,
                payouts: host.payouts,
                logs: host.logs,
            }),
        })
    }
}

/// Answers `enigma_types::caller::REVOKE_PERMIT` for any contract, without its code: the task's
/// verified caller revokes its permits of the name given, in the contract's state (idempotent).
fn revoke_permit(task: &Task<'_>, state: &dyn StateReader, base: u64) -> Outcome {
    let limit = task.gas_limit.0;
    let cost = base.saturating_add(gas::REVOKE_PERMIT);
    let outcome = |result| Outcome { gas_used: GasUsed(cost.min(limit)), result };
    if limit < cost {
        return outcome(Err(ExecError::OutOfGas { limit }));
    }
    if task.read_only {
        return outcome(Err(ExecError::ReadOnly { what: "revoke a permit" }));
    }
    if task.value != 0 {
        return outcome(Err(ExecError::ValueNotTaken { value: task.value }));
    }
    let Some(signer) = task.caller else {
        return outcome(Err(ExecError::NeedsCaller { what: "revoke a permit" }));
    };
    let bad = |detail: String| ExecError::BadArguments { function: REVOKE_PERMIT.into(), detail };
    let name = match abi_string(task.args) {
        Ok(name) if name.len() <= MAX_PERMIT_NAME => name,
        Ok(name) => {
            return outcome(Err(bad(format!(
                "a permit's name has at most {MAX_PERMIT_NAME} bytes, not {}",
                name.len()
            ))));
        }
        Err(detail) => return outcome(Err(bad(detail.into()))),
    };
    let key = host::revoked_permit_key(&signer, name);
    let changes = if state.read(&key).is_some() {
        Vec::new()
    } else {
        vec![Change { key, value: Some(vec![1]) }]
    };
    outcome(Ok(Success {
        output: Vec::new(),
        delta: Delta { index: task.delta_index, prev_hash: task.prev_delta_hash, changes },
        eth_call: None,
        payouts: Vec::new(),
        logs: Vec::new(),
    }))
}

/// The one `string` of ABI-encoded arguments: offset 32, length, the bytes (zero-padded).
fn abi_string(args: &[u8]) -> Result<&str, &'static str> {
    let word = |at: usize| -> Option<usize> {
        let w: &[u8; 32] = args.get(at..at.checked_add(32)?)?.try_into().ok()?;
        let (high, low) = w.split_at(24);
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        usize::try_from(u64::from_be_bytes(low.try_into().ok()?)).ok()
    };
    if word(0) != Some(32) {
        return Err("expected one ABI-encoded string (its offset is not 32)");
    }
    let len = word(32).ok_or("the string's length does not decode")?;
    let bytes = 64usize
        .checked_add(len)
        .and_then(|end| args.get(64..end))
        .ok_or("the string is longer than the arguments")?;
    core::str::from_utf8(bytes).map_err(|_| "the string is not UTF-8")
}

/// The task's fuel not yet used: the store's slice and the reserve.
fn left(store: &Store<Host<'_>>) -> u64 {
    store.get_fuel().unwrap_or(0).saturating_add(store.data().reserve)
}

/// The store's resource limiter (a fn item, so it is `'static` whatever `Host`'s lifetime).
fn store_limits<'h>(host: &'h mut Host<'_>) -> &'h mut dyn wasmi::ResourceLimiter {
    &mut host.store_limits
}

fn map_error(e: &wasmi::Error, limits: &Limits) -> ExecError {
    if let Some(HostTrap(inner)) = e.downcast_ref::<HostTrap>() {
        return inner.clone();
    }
    let kind = match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => return ExecError::OutOfGas { limit: 0 },
        Some(TrapCode::StackOverflow) => {
            return ExecError::CallStackExhausted { max_depth: limits.max_call_depth };
        }
        Some(TrapCode::GrowthOperationLimited) => {
            return ExecError::MemoryLimitExceeded { max_pages: limits.max_memory_pages };
        }
        Some(TrapCode::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(TrapCode::MemoryOutOfBounds) => TrapKind::MemoryOutOfBounds,
        Some(TrapCode::TableOutOfBounds) => TrapKind::TableOutOfBounds,
        Some(TrapCode::IndirectCallToNull) => TrapKind::IndirectCallToNull,
        Some(TrapCode::BadSignature) => TrapKind::IndirectCallSignatureMismatch,
        Some(TrapCode::IntegerDivisionByZero) => TrapKind::IntegerDivisionByZero,
        Some(TrapCode::IntegerOverflow) => TrapKind::IntegerOverflow,
        Some(TrapCode::BadConversionToInteger) => TrapKind::BadConversionToInteger,
        Some(TrapCode::OutOfSystemMemory) => TrapKind::OutOfSystemMemory,
        None => return ExecError::Instantiation(alloc::format!("{e}")),
    };
    ExecError::Trap(kind)
}
