/// Limits on what a contract may use. Every one is enforced; exceeding one fails the task with
/// an error that names the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted module, in bytes.
    pub max_code_bytes: usize,
    /// Most 64 KiB pages of linear memory a contract may have.
    pub max_memory_pages: u32,
    /// Deepest call stack (wasm frames).
    pub max_call_depth: usize,
    /// Largest decrypted argument blob.
    pub max_args_bytes: usize,
    /// Largest output.
    pub max_output_bytes: usize,
    /// Largest state key.
    pub max_state_key_bytes: usize,
    /// Largest state value.
    pub max_state_value_bytes: usize,
    /// Most distinct state keys one task may write or remove.
    pub max_state_writes: usize,
    /// Most bytes (keys and values) one task may leave written; a key written twice counts once,
    /// at its last value.
    pub max_state_write_bytes: usize,
    /// Largest Ethereum call payload.
    pub max_eth_payload_bytes: usize,
    /// Whether `eprint` output is kept (it is always charged for).
    pub debug_logs: bool,
    /// Most bytes of `eprint` output kept per task.
    pub max_log_bytes: usize,
    /// Most compiled modules kept in the cache.
    pub max_cached_modules: usize,
    /// Gas run between two looks at a task's deadline ([`crate::Deadline`]); it changes
    /// neither outcomes nor gas.
    pub fuel_slice: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_code_bytes: 2 * 1024 * 1024,
            max_memory_pages: 256,
            max_call_depth: 1024,
            max_args_bytes: 1024 * 1024,
            max_output_bytes: 1024 * 1024,
            max_state_key_bytes: 1024,
            max_state_value_bytes: 1024 * 1024,
            max_state_writes: 65_536,
            max_state_write_bytes: 16 * 1024 * 1024,
            max_eth_payload_bytes: 64 * 1024,
            debug_logs: false,
            max_log_bytes: 16 * 1024,
            max_cached_modules: 64,
            fuel_slice: crate::FUEL_SLICE,
        }
    }
}
