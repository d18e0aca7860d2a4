//! The host functions of PROTOCOL.md section 6 and the data they work on.

use alloc::{collections::BTreeMap, string::String, vec, vec::Vec};
use core::{convert::Infallible, fmt};

use enigma_crypto::{OVERHEAD, SymmetricKey};
use wasmi::{Caller, Engine, Linker, Memory, StoreLimits};

use enigma_types::{
    Address, Grains,
    payouts::{MAX_PAYOUTS, Payout},
};

use crate::{ExecError, Limits, Randomness, StateReader, exec::EthCall, gas};

/// The prefix of the state keys the runtime keeps for itself: contracts cannot read, write or
/// remove them.
pub const RESERVED_PREFIX: &[u8] = b"\0enigma/";

/// The state key under which the runtime keeps a contract's ENG balance (16 bytes, big-endian
/// grains).
pub const BALANCE_KEY: &[u8] = b"\0enigma/balance";

/// The state key under which a contract remembers that `signer` revoked its permits named
/// `name` (`enigma_types::caller::REVOKE_PERMIT`): `\0enigma/revoked/ ‖ signer ‖ name`.
#[must_use]
pub fn revoked_permit_key(signer: &Address, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(RESERVED_PREFIX.len() + 8 + 20 + name.len());
    key.extend_from_slice(RESERVED_PREFIX);
    key.extend_from_slice(b"revoked/");
    key.extend_from_slice(&signer.0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// Whether `signer` revoked its permits named `name` in this state of the contract.
#[must_use]
pub fn permit_revoked(state: &dyn StateReader, signer: &Address, name: &str) -> bool {
    state.read(&revoked_permit_key(signer, name)).is_some()
}

/// A contract's balance as stored under [`BALANCE_KEY`] (zero when it was never paid).
#[must_use]
pub fn stored_balance(state: &dyn StateReader) -> u128 {
    state
        .read(BALANCE_KEY)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .map_or(0, u128::from_be_bytes)
}

/// The data of one execution, owned by the wasmi store.
pub(crate) struct Host<'a> {
    pub(crate) function: &'a [u8],
    /// What `read_state` gives for a key that is not set.
    pub(crate) missing: &'static [u8],
    pub(crate) args: &'a [u8],
    pub(crate) state: &'a dyn StateReader,
    pub(crate) rng: &'a mut dyn Randomness,
    pub(crate) limits: &'a Limits,
    pub(crate) memory: Option<Memory>,
    pub(crate) store_limits: Limiter,
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Bytes of keys and values in `writes`.
    pub(crate) written_bytes: usize,
    /// Fuel of the task not yet handed to the store (execution runs in slices).
    pub(crate) reserve: u64,
    pub(crate) output: Vec<u8>,
    pub(crate) eth_call: Option<EthCall>,
    /// The contract's ENG balance as the task stands: what it held, plus the task's value, less
    /// the payouts so far.
    pub(crate) balance: u128,
    pub(crate) value: u128,
    /// Whether the contract looked at the task's value (`enigma_value`): a task that brings a
    /// value to a function that never does fails (the value returns to its sender).
    pub(crate) value_read: bool,
    pub(crate) caller: Option<Address>,
    /// A read-only query: nothing may be written, called or paid.
    pub(crate) read_only: bool,
    pub(crate) payouts: Vec<Payout>,
    pub(crate) logs: Vec<String>,
    pub(crate) log_bytes: usize,
}

impl Host<'_> {
    /// The current value of `key`: this task's writes first, then the stored state.
    fn current(&self, key: &[u8]) -> Option<&[u8]> {
        match self.writes.get(key) {
            Some(written) => written.as_deref(),
            None => self.state.read(key),
        }
    }

    /// Records a write (`Some`) or removal (`None`) of `key`, within the task's write limits.
    fn record_write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> HostResult {
        if self.read_only {
            return Err(trap(ExecError::ReadOnly { what: "write its state" }));
        }
        let size =
            |key: &[u8], value: &Option<Vec<u8>>| key.len() + value.as_ref().map_or(0, Vec::len);
        let replaced = self.writes.get(&key).map(|old| size(&key, old));
        if replaced.is_none() && self.writes.len() >= self.limits.max_state_writes {
            return Err(trap(ExecError::TooManyStateWrites { max: self.limits.max_state_writes }));
        }
        let bytes = self.written_bytes - replaced.unwrap_or(0) + size(&key, &value);
        if bytes > self.limits.max_state_write_bytes {
            return Err(trap(ExecError::TooLarge {
                what: "the task's state writes",
                len: bytes,
                max: self.limits.max_state_write_bytes,
            }));
        }
        self.written_bytes = bytes;
        self.writes.insert(key, value);
        Ok(())
    }
}

/// The store's limits (memory and tables), with one change to wasmi's [`StoreLimits`]: a
/// `memory.grow` or `table.grow` that runs short of the fuel slice in hand pauses the run for
/// more fuel (or ends it out of gas) as in an unsliced run, instead of trapping as a denied
/// allocation.
pub(crate) struct Limiter(pub(crate) StoreLimits);

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        self.0.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(
        &mut self,
        error: &wasmi::errors::MemoryError,
    ) -> Result<(), wasmi_core::LimiterError> {
        if matches!(error, wasmi::errors::MemoryError::OutOfFuel { .. }) {
            return Ok(());
        }
        self.0.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        self.0.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(
        &mut self,
        error: &wasmi::errors::TableError,
    ) -> Result<(), wasmi_core::LimiterError> {
        if matches!(error, wasmi::errors::TableError::OutOfFuel { .. }) {
            return Ok(());
        }
        self.0.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.0.instances()
    }

    fn tables(&self) -> usize {
        self.0.tables()
    }

    fn memories(&self) -> usize {
        self.0.memories()
    }
}

/// A host function's error: the task fails with the wrapped [`ExecError`].
#[derive(Debug)]
pub(crate) struct HostTrap(pub(crate) ExecError);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl wasmi::errors::HostError for HostTrap {}

fn trap(error: ExecError) -> wasmi::Error {
    wasmi::Error::host(HostTrap(error))
}

type HostCaller<'c, 'a> = Caller<'c, Host<'a>>;
type HostResult<T = ()> = Result<T, wasmi::Error>;

/// Takes `amount` gas from the task's remaining fuel (the store's slice, then the reserve),
/// failing the task when it is not there.
fn charge(caller: &mut HostCaller<'_, '_>, amount: u64) -> HostResult {
    let fuel = caller.get_fuel()?;
    let reserve = caller.data().reserve;
    if fuel.saturating_add(reserve) < amount {
        caller.set_fuel(0)?;
        caller.data_mut().reserve = 0;
        return Err(trap(ExecError::OutOfGas { limit: 0 }));
    }
    caller.data_mut().reserve = reserve - amount.saturating_sub(fuel);
    caller.set_fuel(fuel.saturating_sub(amount))
}

fn bad_pointer(function: &'static str) -> wasmi::Error {
    trap(ExecError::BadPointer { function })
}

/// The range `[ptr, ptr + len)` of a memory of `size` bytes, as the contract's `i32`s describe it.
fn range(
    ptr: i32,
    len: usize,
    size: usize,
    function: &'static str,
) -> HostResult<core::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end =
        start.checked_add(len).filter(|&end| end <= size).ok_or_else(|| bad_pointer(function))?;
    Ok(start..end)
}

fn length(len: i32) -> usize {
    len as u32 as usize
}

/// Copies `len` bytes at `ptr` out of the contract's memory.
fn read_bytes(
    caller: &HostCaller<'_, '_>,
    ptr: i32,
    len: usize,
    function: &'static str,
) -> HostResult<Vec<u8>> {
    let memory = caller.data().memory.ok_or_else(|| bad_pointer(function))?;
    let data = memory.data(caller);
    let r = range(ptr, len, data.len(), function)?;
    data.get(r).map(<[u8]>::to_vec).ok_or_else(|| bad_pointer(function))
}

/// Copies `bytes` into the contract's memory at `ptr`.
fn write_bytes(
    caller: &mut HostCaller<'_, '_>,
    ptr: i32,
    bytes: &[u8],
    function: &'static str,
) -> HostResult {
    let memory = caller.data().memory.ok_or_else(|| bad_pointer(function))?;
    let data = memory.data_mut(caller);
    let r = range(ptr, bytes.len(), data.len(), function)?;
    data.get_mut(r).ok_or_else(|| bad_pointer(function))?.copy_from_slice(bytes);
    Ok(())
}

fn check_size(what: &'static str, len: usize, max: usize) -> HostResult {
    if len > max { Err(trap(ExecError::TooLarge { what, len, max })) } else { Ok(()) }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn fetch_function_name_length(mut caller: HostCaller<'_, '_>) -> HostResult<i32> {
    charge(&mut caller, gas::HOST_CALL)?;
    Ok(len_i32(caller.data().function.len()))
}

fn fetch_function_name(mut caller: HostCaller<'_, '_>, ptr: i32) -> HostResult {
    let name = caller.data().function;
    charge(&mut caller, gas::HOST_CALL + gas::copy(name.len()))?;
    write_bytes(&mut caller, ptr, name, "fetch_function_name")
}

fn fetch_args_length(mut caller: HostCaller<'_, '_>) -> HostResult<i32> {
    charge(&mut caller, gas::HOST_CALL)?;
    Ok(len_i32(caller.data().args.len()))
}

fn fetch_args(mut caller: HostCaller<'_, '_>, ptr: i32) -> HostResult {
    let args = caller.data().args;
    charge(&mut caller, gas::HOST_CALL + gas::copy(args.len()))?;
    write_bytes(&mut caller, ptr, args, "fetch_args")
}

fn ret(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32) -> HostResult {
    let len = length(len);
    check_size("the output", len, caller.data().limits.max_output_bytes)?;
    charge(&mut caller, gas::HOST_CALL + gas::copy(len))?;
    let output = read_bytes(&caller, ptr, len, "ret")?;
    caller.data_mut().output = output;
    Ok(())
}

fn read_key(
    caller: &mut HostCaller<'_, '_>,
    ptr: i32,
    len: i32,
    function: &'static str,
) -> HostResult<Vec<u8>> {
    let len = length(len);
    check_size("a state key", len, caller.data().limits.max_state_key_bytes)?;
    charge(caller, gas::HOST_CALL + gas::copy(len))?;
    let key = read_bytes(caller, ptr, len, function)?;
    if key.starts_with(RESERVED_PREFIX) {
        return Err(trap(ExecError::ReservedKey { function }));
    }
    Ok(key)
}

fn write_state(
    mut caller: HostCaller<'_, '_>,
    kptr: i32,
    klen: i32,
    vptr: i32,
    vlen: i32,
) -> HostResult {
    let key = read_key(&mut caller, kptr, klen, "write_state")?;
    let vlen = length(vlen);
    check_size("a state value", vlen, caller.data().limits.max_state_value_bytes)?;
    let old = caller.data().current(&key).map(|v| v.len());
    let grown = match old {
        Some(old) => vlen.saturating_sub(old),
        None => key.len() + vlen,
    };
    charge(&mut caller, gas::copy(vlen) + grown as u64 * gas::WRITE_PER_GROWN_BYTE)?;
    let value = read_bytes(&caller, vptr, vlen, "write_state")?;
    caller.data_mut().record_write(key, Some(value))
}

/// What eng-wasm reads for a key that is not set: the JSON text `null`, as Discovery's host
/// answered (eng-wasm's `read_state!` parses the bytes as JSON and gets `None`).
pub(crate) const MISSING: &[u8] = b"null";

fn read_state_len(mut caller: HostCaller<'_, '_>, kptr: i32, klen: i32) -> HostResult<i32> {
    let key = read_key(&mut caller, kptr, klen, "read_state_len")?;
    let host = caller.data();
    Ok(len_i32(host.current(&key).unwrap_or(host.missing).len()))
}

fn read_state(mut caller: HostCaller<'_, '_>, kptr: i32, klen: i32, out: i32) -> HostResult {
    let key = read_key(&mut caller, kptr, klen, "read_state")?;
    let host = caller.data();
    let value = host.current(&key).unwrap_or(host.missing).to_vec();
    charge(&mut caller, gas::copy(value.len()))?;
    write_bytes(&mut caller, out, &value, "read_state")
}

/// `enigma_state_len(k, klen) -> i32`: the length of the value under a key, -1 when it is not
/// set (an extension to eng-wasm: `enigma-sdk` tells a missing key from any stored value).
fn enigma_state_len(mut caller: HostCaller<'_, '_>, kptr: i32, klen: i32) -> HostResult<i32> {
    let key = read_key(&mut caller, kptr, klen, "enigma_state_len")?;
    Ok(caller.data().current(&key).map_or(-1, |v| len_i32(v.len())))
}

fn remove_from_state(mut caller: HostCaller<'_, '_>, kptr: i32, klen: i32) -> HostResult {
    let key = read_key(&mut caller, kptr, klen, "remove_from_state")?;
    caller.data_mut().record_write(key, None)
}

fn write_eth_bridge(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32, addr: i32) -> HostResult {
    let len = length(len);
    check_size("the Ethereum call payload", len, caller.data().limits.max_eth_payload_bytes)?;
    charge(&mut caller, gas::HOST_CALL + gas::copy(len + 20))?;
    if caller.data().read_only {
        return Err(trap(ExecError::ReadOnly { what: "call Ethereum" }));
    }
    let payload = read_bytes(&caller, ptr, len, "write_eth_bridge")?;
    let address = read_bytes(&caller, addr, 20, "write_eth_bridge")?;
    let address = Address::from_slice(&address).map_err(|_| bad_pointer("write_eth_bridge"))?;
    caller.data_mut().eth_call = Some(EthCall { address, payload });
    Ok(())
}

fn rand(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32) -> HostResult {
    let len = length(len);
    // The buffer must lie inside memory, so it is bounded by the memory limit.
    let size = caller.data().memory.map_or(0, |m| m.data_size(&caller));
    range(ptr, len, size, "rand")?;
    charge(&mut caller, gas::HOST_CALL + len as u64 * gas::RAND_PER_BYTE)?;
    let mut bytes = vec![0u8; len];
    caller.data_mut().rng.fill(&mut bytes);
    write_bytes(&mut caller, ptr, &bytes, "rand")
}

/// Lets the host's [`Randomness`] supply AES-GCM IVs (its `fill_iv`).
struct RngAdapter<'r>(&'r mut dyn Randomness);

impl rand_core::TryRng for RngAdapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill_iv(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill_iv(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_iv(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for RngAdapter<'_> {}

fn read_key32(
    caller: &HostCaller<'_, '_>,
    ptr: i32,
    function: &'static str,
) -> HostResult<SymmetricKey> {
    let bytes = read_bytes(caller, ptr, 32, function)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(SymmetricKey::from_bytes(key))
}

fn encrypt(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32, key: i32, out: i32) -> HostResult {
    let len = length(len);
    check_size("a message to encrypt", len, caller.data().limits.max_state_value_bytes)?;
    charge(&mut caller, gas::CRYPTO_BASE + len as u64 * gas::CRYPTO_PER_BYTE)?;
    let message = read_bytes(&caller, ptr, len, "encrypt")?;
    let key = read_key32(&caller, key, "encrypt")?;
    let blob = key
        .encrypt_with_rng(&message, &mut RngAdapter(&mut *caller.data_mut().rng))
        .map_err(|_| trap(ExecError::TooLarge { what: "a message to encrypt", len, max: len }))?;
    write_bytes(&mut caller, out, &blob, "encrypt")
}

fn decrypt(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32, key: i32, out: i32) -> HostResult {
    let len = length(len);
    check_size("a message to decrypt", len, caller.data().limits.max_state_value_bytes + OVERHEAD)?;
    charge(&mut caller, gas::CRYPTO_BASE + len as u64 * gas::CRYPTO_PER_BYTE)?;
    let blob = read_bytes(&caller, ptr, len, "decrypt")?;
    let key = read_key32(&caller, key, "decrypt")?;
    let plain = key.decrypt(&blob).map_err(|_| trap(ExecError::DecryptFailed))?;
    write_bytes(&mut caller, out, &plain, "decrypt")
}

fn eprint(mut caller: HostCaller<'_, '_>, ptr: i32, len: i32) -> HostResult {
    let len = length(len);
    charge(&mut caller, gas::HOST_CALL + gas::copy(len))?;
    let keep = {
        let host = caller.data();
        host.limits.debug_logs && host.log_bytes.saturating_add(len) <= host.limits.max_log_bytes
    };
    let bytes = read_bytes(&caller, ptr, len, "eprint")?;
    if keep {
        let host = caller.data_mut();
        host.log_bytes += len;
        host.logs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(())
}

fn gas_import(mut caller: HostCaller<'_, '_>, amount: i32) -> HostResult {
    charge(&mut caller, u64::from(amount as u32))
}

/// `enigma_value(out)`: writes the ENG the task's record escrowed for the contract (16 bytes,
/// big-endian grains; zero for a deploy).
fn enigma_value(mut caller: HostCaller<'_, '_>, out: i32) -> HostResult {
    charge(&mut caller, gas::HOST_CALL + gas::copy(16))?;
    caller.data_mut().value_read = true;
    let value = caller.data().value;
    write_bytes(&mut caller, out, &value.to_be_bytes(), "enigma_value")
}

/// `enigma_balance(out)`: writes the contract's ENG balance as the task stands (16 bytes): what
/// it held, plus this task's value, less the payouts it made so far.
fn enigma_balance(mut caller: HostCaller<'_, '_>, out: i32) -> HostResult {
    charge(&mut caller, gas::HOST_CALL + gas::copy(16))?;
    let balance = caller.data().balance;
    write_bytes(&mut caller, out, &balance.to_be_bytes(), "enigma_balance")
}

/// `enigma_pay(to, amount)`: pays `amount` (16 bytes, big-endian grains) of the contract's
/// balance to the 20-byte address at `to` once the task's receipt is on chain. Fails the task
/// beyond the balance, past [`MAX_PAYOUTS`] or to the zero address (nobody could withdraw it); a
/// zero amount does nothing.
fn enigma_pay(mut caller: HostCaller<'_, '_>, to: i32, amount: i32) -> HostResult {
    charge(&mut caller, gas::HOST_CALL + gas::copy(20) + gas::copy(16) + gas::PAYOUT)?;
    let address = read_bytes(&caller, to, 20, "enigma_pay")?;
    let address = Address::from_slice(&address).map_err(|_| bad_pointer("enigma_pay"))?;
    let amount = read_bytes(&caller, amount, 16, "enigma_pay")?;
    let amount = <[u8; 16]>::try_from(amount.as_slice())
        .map(u128::from_be_bytes)
        .map_err(|_| bad_pointer("enigma_pay"))?;
    if amount == 0 {
        return Ok(());
    }
    if caller.data().read_only {
        return Err(trap(ExecError::ReadOnly { what: "pay out" }));
    }
    if address == Address::ZERO {
        return Err(trap(ExecError::PayoutToZeroAddress));
    }
    let host = caller.data_mut();
    if host.payouts.len() >= MAX_PAYOUTS {
        return Err(trap(ExecError::TooManyPayouts { max: MAX_PAYOUTS }));
    }
    if amount > host.balance {
        return Err(trap(ExecError::PayoutBeyondBalance { amount, balance: host.balance }));
    }
    host.balance -= amount;
    host.payouts.push(Payout { to: address, amount: Grains(amount) });
    Ok(())
}

/// `enigma_sender(out) -> i32`: 1 and the task's verified caller (20 bytes) at `out`, or 0 when
/// the task was not signed by its sender.
fn enigma_sender(mut caller: HostCaller<'_, '_>, out: i32) -> HostResult<i32> {
    charge(&mut caller, gas::HOST_CALL + gas::copy(20))?;
    match caller.data().caller {
        Some(address) => {
            write_bytes(&mut caller, out, address.as_bytes(), "enigma_sender")?;
            Ok(1)
        }
        None => Ok(0),
    }
}

/// `enigma_is_query() -> i32`: 1 in a read-only query, 0 in a task. A module that imports it
/// can answer queries (its dispatch decides which functions do); one that does not is refused
/// them ([`ExecError::NotQueryable`]).
fn enigma_is_query(mut caller: HostCaller<'_, '_>) -> HostResult<i32> {
    charge(&mut caller, gas::HOST_CALL)?;
    Ok(i32::from(caller.data().read_only))
}

/// Longest failure message kept from a contract.
const MAX_FAILURE_MESSAGE: usize = 4096;

/// `enigma_fail(kind, ptr, len)`: the SDK's way to end a task with a named failure (an extension
/// to eng-wasm). Kinds: 1 unknown function, 2 arguments that do not decode, 3 panic, other:
/// the contract's own failure.
fn enigma_fail(mut caller: HostCaller<'_, '_>, kind: i32, ptr: i32, len: i32) -> HostResult {
    let len = length(len).min(MAX_FAILURE_MESSAGE);
    charge(&mut caller, gas::HOST_CALL + gas::copy(len))?;
    let message =
        String::from_utf8_lossy(&read_bytes(&caller, ptr, len, "enigma_fail")?).into_owned();
    let function = String::from_utf8_lossy(caller.data().function).into_owned();
    Err(trap(match kind {
        1 => ExecError::UnknownFunction { name: message },
        2 => ExecError::BadArguments { function, detail: message },
        3 => ExecError::Panicked { message },
        _ => ExecError::Reverted { message },
    }))
}

/// A linker with every host function of [`crate::module::HOST_FUNCTIONS`].
pub(crate) fn linker<'a>(engine: &Engine) -> Result<Linker<Host<'a>>, wasmi::Error> {
    let mut l = Linker::<Host<'a>>::new(engine);
    l.func_wrap("env", "fetch_function_name_length", fetch_function_name_length)?;
    l.func_wrap("env", "fetch_function_name", fetch_function_name)?;
    l.func_wrap("env", "fetch_args_length", fetch_args_length)?;
    l.func_wrap("env", "fetch_args", fetch_args)?;
    l.func_wrap("env", "ret", ret)?;
    l.func_wrap("env", "write_state", write_state)?;
    l.func_wrap("env", "read_state_len", read_state_len)?;
    l.func_wrap("env", "read_state", read_state)?;
    l.func_wrap("env", "remove_from_state", remove_from_state)?;
    l.func_wrap("env", "write_eth_bridge", write_eth_bridge)?;
    l.func_wrap("env", "rand", rand)?;
    l.func_wrap("env", "encrypt", encrypt)?;
    l.func_wrap("env", "decrypt", decrypt)?;
    l.func_wrap("env", "eprint", eprint)?;
    l.func_wrap("env", "gas", gas_import)?;
    l.func_wrap("env", "enigma_fail", enigma_fail)?;
    l.func_wrap("env", "enigma_state_len", enigma_state_len)?;
    l.func_wrap("env", "enigma_value", enigma_value)?;
    l.func_wrap("env", "enigma_balance", enigma_balance)?;
    l.func_wrap("env", "enigma_pay", enigma_pay)?;
    l.func_wrap("env", "enigma_sender", enigma_sender)?;
    l.func_wrap("env", "enigma_is_query", enigma_is_query)?;
    Ok(l)
}
