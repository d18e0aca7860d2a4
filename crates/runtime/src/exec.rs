//! Running a task: instantiate, meter, call `deploy` or `call`, collect the delta.

use alloc::{collections::BTreeMap, string::String, vec::Vec};

use enigma_types::{
    Address, CodeHash, DeltaHash, GasLimit, GasUsed, code_hash,
    delta::{Change, Delta},
};
use wasmi::{
    CompilationMode, Config, Engine, Memory, MemoryType, Store, StoreLimitsBuilder, TrapCode,
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
        }
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

    /// Runs `task` on `code` with the contract's `state`. Never panics on anything the module,
    /// the arguments or the state contain.
    pub fn execute(
        &mut self,
        code: &ContractCode<'_>,
        task: Task<'_>,
        state: &dyn StateReader,
        rng: &mut dyn Randomness,
    ) -> Outcome {
        let limit = task.gas_limit.0;
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
            return fail(limit, ExecError::OutOfGas { limit });
        };
        if task.args.len() > self.limits.max_args_bytes {
            let e = ExecError::TooLarge {
                what: "the arguments",
                len: task.args.len(),
                max: self.limits.max_args_bytes,
            };
            return fail(base, e);
        }
        let (module, memory_source) =
            match self.cache.get_or_compile(&self.engine, &code.hash, code.wasm, &self.limits) {
                Ok(found) => found,
                Err(e) => return fail(base, e.into()),
            };

        let name = task.function.split('(').next().unwrap_or_default();
        let max_memory_bytes = self.limits.max_memory_pages as usize * 65536;
        let host = Host {
            function: name.as_bytes(),
            args: task.args,
            state,
            rng,
            limits: &self.limits,
            memory: None,
            store_limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            writes: BTreeMap::new(),
            output: Vec::new(),
            eth_call: None,
            logs: Vec::new(),
            log_bytes: 0,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(store_limits);
        let map = |e: wasmi::Error, store: &Store<Host<'_>>| {
            let error = map_error(&e, &self.limits);
            let used = match error {
                ExecError::OutOfGas { .. } => limit,
                _ => limit - store.get_fuel().unwrap_or(0),
            };
            let error = match error {
                ExecError::OutOfGas { .. } => ExecError::OutOfGas { limit },
                other => other,
            };
            Outcome { gas_used: GasUsed(used), result: Err(error) }
        };
        if let Err(e) = store.set_fuel(fuel) {
            return map(e, &store);
        }

        let mut linker = match host::linker(&self.engine) {
            Ok(linker) => linker,
            Err(e) => return map(e, &store),
        };
        let imported = match memory_source {
            MemorySource::Imported { initial_pages, maximum } => {
                let memory = match Memory::new(&mut store, MemoryType::new(initial_pages, maximum))
                {
                    Ok(memory) => memory,
                    Err(e) => return map(e, &store),
                };
                if let Err(e) = linker.define("env", "memory", memory) {
                    return map(e.into(), &store);
                }
                Some(memory)
            }
            MemorySource::Exported => None,
        };
        let instance = match linker.instantiate_and_start(&mut store, &module) {
            Ok(instance) => instance,
            Err(e) => return map(e, &store),
        };
        let memory = imported.or_else(|| instance.get_memory(&store, "memory"));
        store.data_mut().memory = memory;

        let export = match task.entry {
            Entry::Deploy => "deploy",
            Entry::Call => "call",
        };
        let func = match instance.get_typed_func::<(), ()>(&store, export) {
            Ok(func) => func,
            Err(_) => return fail(base, ModuleError::MissingExport(export).into()),
        };
        if let Err(e) = func.call(&mut store, ()) {
            return map(e, &store);
        }

        let gas_used = limit - store.get_fuel().unwrap_or(0);
        let host = store.into_data();
        let changes = host
            .writes
            .into_iter()
            .filter(|(key, value)| value.as_deref() != host.state.read(key))
            .map(|(key, value)| Change { key, value })
            .collect();
        Outcome {
            gas_used: GasUsed(gas_used),
            result: Ok(Success {
                output: host.output,
                delta: Delta { index: task.delta_index, prev_hash: task.prev_delta_hash, changes },
                eth_call: host.eth_call,
                logs: host.logs,
            }),
        }
    }
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
