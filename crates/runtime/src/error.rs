use alloc::string::String;
use core::fmt;

/// Why a module cannot be deployed. Each says what to change in the contract or its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleError {
    /// The module is larger than the code limit.
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a WebAssembly binary module (wrong magic number or version).
    NotWasm,
    /// The section structure is broken.
    Malformed(&'static str),
    /// The module has a start function, which would run code before `deploy` or `call`.
    HasStartFunction,
    /// An import from a module other than `env`.
    ForeignImport {
        /// The module it names.
        module: String,
        /// The item.
        name: String,
    },
    /// An `env` import that the host does not provide.
    UnknownImport {
        /// The import's name.
        name: String,
    },
    /// An `env` import whose type differs from the host's.
    ImportType {
        /// The import's name.
        name: String,
        /// The type the host provides.
        expected: &'static str,
    },
    /// Neither an imported `env.memory` nor an exported `memory`.
    NoMemory,
    /// The memory's initial size exceeds the limit.
    MemoryTooLarge {
        /// The pages the module asks for.
        pages: u64,
        /// The limit.
        max: u32,
    },
    /// A required export (`deploy` or `call`) is missing or is not a `() -> ()` function.
    MissingExport(&'static str),
    /// wasmi rejected the module while validating or compiling it.
    Invalid(String),
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, max } => write!(
                f,
                "the module is {size} bytes, more than the {max}-byte limit; build it with the \
                 release profile (opt-level \"z\", lto) or split the contract"
            ),
            Self::NotWasm => f.write_str("the code is not a WebAssembly binary module (bad magic number or version)"),
            Self::Malformed(what) => write!(f, "the module is malformed: {what}"),
            Self::HasStartFunction => f.write_str(
                "the module has a start function; secret contracts may only run code from their `deploy` and `call` exports",
            ),
            Self::ForeignImport { module, name } => write!(
                f,
                "the module imports `{module}.{name}`; contracts may import only from `env` (is it built for wasm32-unknown-unknown, without wasm-bindgen or WASI?)"
            ),
            Self::UnknownImport { name } => write!(
                f,
                "the module imports `env.{name}`, which the enigma host does not provide"
            ),
            Self::ImportType { name, expected } => {
                write!(f, "the module imports `env.{name}` with the wrong type; the host provides {expected}")
            }
            Self::NoMemory => {
                f.write_str("the module neither imports `env.memory` nor exports `memory`")
            }
            Self::MemoryTooLarge { pages, max } => write!(
                f,
                "the module's memory starts at {pages} pages of 64 KiB, more than the limit of {max}"
            ),
            Self::MissingExport(name) => write!(
                f,
                "the module does not export `{name}` as a function without parameters or results; build it with the enigma SDK's #[pub_interface]"
            ),
            Self::Invalid(reason) => write!(f, "the module is not valid WebAssembly: {reason}"),
        }
    }
}

impl core::error::Error for ModuleError {}

/// A WebAssembly trap other than those with their own [`ExecError`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// `unreachable` executed: in a Rust contract built without the SDK, a panic or abort.
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A table access outside the table.
    TableOutOfBounds,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call whose signature does not match.
    IndirectCallSignatureMismatch,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// Integer overflow (e.g. `i32::MIN / -1`).
    IntegerOverflow,
    /// A float-to-integer conversion out of range or of NaN.
    BadConversionToInteger,
    /// The host ran out of memory for the engine.
    OutOfSystemMemory,
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unreachable => {
                "executed `unreachable` (a panic or abort in the contract; contracts built with the \
                 enigma SDK report the panic message instead)"
            }
            Self::MemoryOutOfBounds => "a memory access out of bounds",
            Self::TableOutOfBounds => "a table access out of bounds",
            Self::IndirectCallToNull => "an indirect call to a null function",
            Self::IndirectCallSignatureMismatch => "an indirect call with the wrong signature",
            Self::IntegerDivisionByZero => "an integer division by zero",
            Self::IntegerOverflow => "an integer overflow",
            Self::BadConversionToInteger => "an invalid conversion to an integer",
            Self::OutOfSystemMemory => "the worker ran out of memory for the engine",
        })
    }
}

/// Why a task failed. The text goes, encrypted, to the user who sent the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The task used all its gas.
    OutOfGas {
        /// The task's gas limit (all of it is used).
        limit: u64,
    },
    /// The contract has no function of that name.
    UnknownFunction {
        /// The name asked for.
        name: String,
    },
    /// The arguments do not decode as the function's parameters.
    BadArguments {
        /// The function.
        function: String,
        /// What did not decode.
        detail: String,
    },
    /// The contract failed on purpose (the SDK's `fail!`), with its message.
    Reverted {
        /// The contract's message.
        message: String,
    },
    /// The contract panicked.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// A WebAssembly trap.
    Trap(TrapKind),
    /// The call stack exceeded its limit (unbounded recursion).
    CallStackExhausted {
        /// The limit in frames.
        max_depth: usize,
    },
    /// The contract tried to grow its memory past the limit.
    MemoryLimitExceeded {
        /// The limit in 64 KiB pages.
        max_pages: u32,
    },
    /// The task wrote more distinct state keys than the limit.
    TooManyStateWrites {
        /// The limit.
        max: usize,
    },
    /// A size limit was exceeded: arguments, output, a state key or value, the task's state
    /// writes, an Ethereum payload.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The contract passed a host function a pointer or length outside its memory.
    BadPointer {
        /// The host function.
        function: &'static str,
    },
    /// The contract named a state key that starts with `\0enigma/` (the runtime's own keys).
    ReservedKey {
        /// The host function.
        function: &'static str,
    },
    /// The contract paid out more than its balance.
    PayoutBeyondBalance {
        /// The payout asked for (grains).
        amount: u128,
        /// The balance left (grains).
        balance: u128,
    },
    /// The task made more payouts than allowed.
    TooManyPayouts {
        /// The limit.
        max: usize,
    },
    /// The contract paid the zero address, from which nobody can withdraw.
    PayoutToZeroAddress,
    /// A query of a contract that cannot answer queries: it does not import `enigma_is_query`,
    /// so it cannot say which of its functions answer them (eng-wasm modules, older SDKs).
    NotQueryable,
    /// A read-only query tried to change something.
    ReadOnly {
        /// What it tried: "write its state", "call Ethereum", "pay out".
        what: &'static str,
    },
    /// The task brought a value to a function that never looked at it (`enigma_value`): it does
    /// not take ENG.
    ValueNotTaken {
        /// The value (grains).
        value: u128,
    },
    /// What the task asked needs a verified caller, and its sender did not sign it.
    NeedsCaller {
        /// What it asked: "revoke a permit".
        what: &'static str,
    },
    /// The contract's `decrypt` call got a blob that does not decrypt under the key it gave.
    DecryptFailed,
    /// The module cannot run.
    Module(ModuleError),
    /// Instantiation failed (e.g. a data segment outside memory).
    Instantiation(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfGas { limit } => {
                write!(f, "out of gas: the task used all {limit} gas of its limit; send it again with a higher gas limit")
            }
            Self::UnknownFunction { name } => {
                write!(f, "the contract has no function `{name}`; check the name in the callable")
            }
            Self::BadArguments { function, detail } => {
                write!(f, "the arguments of `{function}` do not decode: {detail}")
            }
            Self::Reverted { message } => write!(f, "the contract failed: {message}"),
            Self::Panicked { message } => write!(f, "the contract panicked: {message}"),
            Self::Trap(kind) => write!(f, "the contract trapped: {kind}"),
            Self::CallStackExhausted { max_depth } => write!(
                f,
                "the contract exceeded the call-stack limit of {max_depth} frames (unbounded recursion?)"
            ),
            Self::MemoryLimitExceeded { max_pages } => write!(
                f,
                "the contract tried to grow its memory past the limit of {max_pages} pages ({} MiB)",
                u64::from(*max_pages) * 64 / 1024
            ),
            Self::TooManyStateWrites { max } => write!(
                f,
                "the task writes more than {max} state keys; spread the writes over several tasks"
            ),
            Self::TooLarge { what, len, max } => {
                write!(f, "{what} is {len} bytes, more than the limit of {max}")
            }
            Self::BadPointer { function } => write!(
                f,
                "the contract passed `{function}` a pointer or length outside its memory"
            ),
            Self::ReservedKey { function } => write!(
                f,
                "the contract passed `{function}` a state key starting with `\\0enigma/`; those \
                 keys are the runtime's own"
            ),
            // No amounts: they may come from the contract's secret state.
            Self::PayoutBeyondBalance { .. } => f.write_str(
                "the contract tried to pay out more ENG than it holds; pay no more than `balance()`",
            ),
            Self::NotQueryable => f.write_str(
                "the contract does not answer queries (it was not built to say which of its \
                 functions do); send a task instead",
            ),
            Self::NeedsCaller { what } => write!(
                f,
                "to {what} a task must be signed by its sender (the one it acts for); send it \
                 signed, not anonymously"
            ),
            Self::ReadOnly { what } => write!(
                f,
                "a query is read-only: the function tried to {what}; send it as a task instead"
            ),
            Self::PayoutToZeroAddress => {
                f.write_str("the contract tried to pay the zero address, from which nobody can withdraw")
            }
            Self::ValueNotTaken { value } => write!(
                f,
                "the task brought {value} grains to a function that does not take ENG (it never \
                 reads `value()`); send it without a value — this one returns to you"
            ),
            Self::TooManyPayouts { max } => write!(
                f,
                "the task makes more than {max} payouts; spread them over several tasks"
            ),
            Self::DecryptFailed => f.write_str(
                "the contract's `decrypt` call failed: the ciphertext was altered or the key is wrong",
            ),
            Self::Module(e) => write!(f, "the contract's module cannot run: {e}"),
            Self::Instantiation(reason) => write!(f, "the contract could not be instantiated: {reason}"),
        }
    }
}

impl core::error::Error for ExecError {}

impl From<ModuleError> for ExecError {
    fn from(value: ModuleError) -> Self {
        Self::Module(value)
    }
}
