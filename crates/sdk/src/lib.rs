//! Write secret contracts for enigma (the counterpart of Discovery's eng-wasm).
//!
//! A contract is a `#![no_std]` crate built for `wasm32-unknown-unknown`. It declares its public
//! interface with [`pub_interface`], which generates the `deploy` and `call` exports: `deploy`
//! runs `construct` (if declared) and `call` dispatches by function name, decoding the
//! Ethereum-ABI arguments and encoding the result.
//!
//! ```ignore
//! #![no_std]
//! use enigma_sdk::prelude::*;
//!
//! #[pub_interface]
//! pub trait ContractInterface {
//!     fn add_millionaire(address: Address, net_worth: U256);
//!     fn compute_richest() -> Address;
//! }
//!
//! pub struct Contract;
//!
//! impl ContractInterface for Contract {
//!     fn add_millionaire(address: Address, net_worth: U256) {
//!         let mut all: Vec<(Address, U256)> = read_state!("millionaires").unwrap_or_default();
//!         all.push((address, net_worth));
//!         write_state!("millionaires" => all);
//!     }
//!     fn compute_richest() -> Address {
//!         let all: Vec<(Address, U256)> = read_state!("millionaires").unwrap_or_default();
//!         all.iter().max_by_key(|(_, w)| *w).map(|(a, _)| *a).unwrap_or_default()
//!     }
//! }
//! ```
//!
//! What a contract can use:
//! - state: [`read_state!`], [`write_state!`], [`remove_from_state!`] over serde-JSON values
//!   (and [`state`] for the functions behind them);
//! - [`Rand`]: the enclave's randomness;
//! - [`eprint!`]: debug output (kept only when the worker runs with debug logs);
//! - [`fail!`]: end the task as a failure with a message the user receives;
//! - [`eth_call`]: ask for an Ethereum contract call after the task's receipt is verified, with
//!   the call built by alloy's `sol!` (re-exported as [`sol`]);
//! - [`encrypt`] / [`decrypt`]: the protocol's AES-256-GCM envelope with the contract's own keys;
//! - ENG: [`value`] (what the task brought, escrowed by its record), [`balance`] (what the
//!   contract holds) and [`pay`] (pay out of it once the receipt is on chain);
//! - who calls: [`sender`] (the verified caller, if the task's sender signed it) and [`caller`]
//!   (the same, failing the task when there is none);
//! - queries: mark a function `#[query]` in `#[pub_interface]` to let it be asked as a free,
//!   read-only query (`#[query(only)]`: queries only); [`is_query`] tells the two apart.
//!   Unmarked functions run as tasks only.
//!
//! On `wasm32` the crate also provides the allocator (dlmalloc) and a panic handler that reports
//! the panic message to the user instead of a bare trap.
#![no_std]
// The host functions are an FFI boundary: calling them is the only unsafe code, and it is
// confined to `external` and the wrappers below.
#![allow(unsafe_code)]

extern crate alloc;

use alloc::{string::String, vec, vec::Vec};

pub use alloy_primitives::{self, Address, B256, Bytes, FixedBytes, I256, U256, address};
pub use alloy_sol_types::{self, SolCall, SolValue, sol};
pub use enigma_sdk_derive::pub_interface;
pub use serde_json;

mod external;
pub mod state;

/// Everything a contract usually needs.
pub mod prelude {
    pub use alloc::{
        borrow::ToOwned,
        boxed::Box,
        format,
        string::{String, ToString},
        vec,
        vec::Vec,
    };

    pub use crate::{
        Address, B256, Bytes, FixedBytes, I256, Rand, SolCall, SolValue, U256, balance, caller,
        decrypt, encrypt, eprint, eth_call, fail, pay, pub_interface, read_state,
        remove_from_state, sender, sol, value, write_state,
    };
}

/// The name of the function the task calls (the callable's text before `(`).
#[must_use]
pub fn function_name() -> String {
    // SAFETY: the host writes exactly `len` bytes into the buffer it was given.
    let len = unsafe { external::fetch_function_name_length() };
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    unsafe { external::fetch_function_name(buf.as_mut_ptr()) };
    String::from_utf8(buf).unwrap_or_default()
}

/// The task's decrypted, ABI-encoded arguments.
#[must_use]
pub fn args() -> Vec<u8> {
    // SAFETY: the host writes exactly `len` bytes into the buffer it was given.
    let len = unsafe { external::fetch_args_length() };
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    unsafe { external::fetch_args(buf.as_mut_ptr()) };
    buf
}

/// Sets the task's output (ABI-encoded by the generated dispatch).
pub fn ret(output: &[u8]) {
    // SAFETY: the host reads `len` bytes from the pointer.
    unsafe { external::ret(output.as_ptr(), output.len() as u32) }
}

/// Writes `message` to the worker's debug log (dropped unless the worker enables debug logs).
pub fn eprint_str(message: &str) {
    // SAFETY: the host reads `len` bytes from the pointer.
    unsafe { external::eprint(message.as_ptr(), message.len() as u32) }
}

/// Charges `amount` extra gas (eng-wasm compatibility).
pub fn gas(amount: u32) {
    // SAFETY: no memory is passed.
    unsafe { external::gas(amount) }
}

/// How a task may fail on purpose; the host turns each into a named error for the user.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub enum FailKind {
    UnknownFunction = 1,
    BadArguments = 2,
    Panic = 3,
    Contract = 4,
}

/// Ends the task as a failure of `kind` with `message`. The host never returns from this call.
#[doc(hidden)]
pub fn fail_with(kind: FailKind, message: &str) -> ! {
    // SAFETY: the host reads `len` bytes from the pointer and ends the execution.
    unsafe { external::enigma_fail(kind as i32, message.as_ptr(), message.len() as u32) };
    halt()
}

#[cfg(target_arch = "wasm32")]
fn halt() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Ends the task as a failure; the user receives the formatted message (encrypted).
///
/// ```ignore
/// if divisor.is_zero() { fail!("division by zero"); }
/// ```
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::fail_with($crate::FailKind::Contract, &$crate::__private::format!($($arg)*))
    };
}

/// Prints to the worker's debug log, like `std`'s `eprint!`.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::eprint_str(&$crate::__private::format!($($arg)*))
    };
}

/// Reads a state key as a JSON value of the inferred type: `Option<T>`, `None` when the key is
/// missing. A stored value of another type fails the task with a message naming the key.
#[macro_export]
macro_rules! read_state {
    ($key:expr) => {
        $crate::state::read(&$key)
    };
}

/// Writes one or more state keys as JSON: `write_state!("a" => 1u64, "b" => vec);`.
#[macro_export]
macro_rules! write_state {
    ($($key:expr => $value:expr),+ $(,)?) => {
        $( $crate::state::write(&$key, &$value); )+
    };
}

/// Removes one or more state keys.
#[macro_export]
macro_rules! remove_from_state {
    ($($key:expr),+ $(,)?) => {
        $( $crate::state::remove(&$key); )+
    };
}

/// The enclave's randomness.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rand;

impl Rand {
    /// Fills `buf` with random bytes.
    pub fn fill(buf: &mut [u8]) {
        // SAFETY: the host writes `len` bytes into the buffer.
        unsafe { external::rand(buf.as_mut_ptr(), buf.len() as u32) }
    }

    /// `N` random bytes.
    #[must_use]
    pub fn bytes<const N: usize>() -> [u8; N] {
        let mut out = [0u8; N];
        Self::fill(&mut out);
        out
    }

    /// A random value of a primitive type.
    #[must_use]
    pub fn random<T: RandGen>() -> T {
        T::random()
    }
}

/// Types [`Rand::random`] can produce.
pub trait RandGen {
    /// A uniformly random value.
    fn random() -> Self;
}

macro_rules! rand_int {
    ($($t:ty),*) => {$(
        impl RandGen for $t {
            fn random() -> Self {
                <$t>::from_le_bytes(Rand::bytes())
            }
        }
    )*};
}

rand_int!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl RandGen for bool {
    fn random() -> Self {
        Rand::bytes::<1>()[0] & 1 == 1
    }
}

impl RandGen for U256 {
    fn random() -> Self {
        U256::from_be_bytes(Rand::bytes::<32>())
    }
}

impl RandGen for B256 {
    fn random() -> Self {
        B256::from(Rand::bytes::<32>())
    }
}

/// Asks for a call of the Ethereum contract at `address` once the task's receipt is verified on
/// chain (the last request of a task wins). Build `call` with [`sol!`]:
///
/// ```ignore
/// sol! {
///     #![sol(alloy_sol_types = enigma_sdk::alloy_sol_types)]
///     interface VotingETH { function finalizePoll(uint256 pollId, uint256 talliedQuorum); }
/// }
/// eth_call(voting, &VotingETH::finalizePollCall { pollId, talliedQuorum });
/// ```
pub fn eth_call<C: SolCall>(address: Address, call: &C) {
    let payload = call.abi_encode();
    // SAFETY: the host reads `len` bytes of payload and 20 bytes of address.
    unsafe { external::write_eth_bridge(payload.as_ptr(), payload.len() as u32, address.as_ptr()) }
}

/// The ENG (in grains, 10^-8 ENG) the task brought to the contract: escrowed by its record on
/// chain with the fee, it joins the contract's [`balance`] if the task succeeds and returns to
/// the sender if it fails. Public on chain. Zero in a constructor.
///
/// Calling it is how a function takes ENG: a task that brings a value to a function that never
/// calls `value()` fails, and the value goes back (so nothing is stuck in a contract that has no
/// use for it).
#[must_use]
pub fn value() -> U256 {
    let mut out = [0u8; 16];
    // SAFETY: the host writes 16 bytes to `out`.
    unsafe { external::enigma_value(out.as_mut_ptr()) };
    U256::from(u128::from_be_bytes(out))
}

/// The contract's ENG balance (grains) as this task stands: what it held, plus this task's
/// [`value`], less what the task has [`pay`]ed so far.
#[must_use]
pub fn balance() -> U256 {
    let mut out = [0u8; 16];
    // SAFETY: the host writes 16 bytes to `out`.
    unsafe { external::enigma_balance(out.as_mut_ptr()) };
    U256::from(u128::from_be_bytes(out))
}

/// Pays `amount` grains of the contract's [`balance`] to `to`'s prepaid balance on the Enigma
/// contract (from which `to` withdraws), once the task's receipt is verified on chain. Paying
/// more than the balance, or more than 16 times in a task, fails the task; paying zero does
/// nothing. Payouts are public on chain (recipient and amount).
pub fn pay(to: Address, amount: U256) {
    let Ok(amount) = u128::try_from(amount) else {
        fail_with(FailKind::Contract, "pay: the amount is more ENG than exists");
    };
    let amount = amount.to_be_bytes();
    // SAFETY: the host reads 20 bytes of address and 16 bytes of amount.
    unsafe { external::enigma_pay(to.as_ptr(), amount.as_ptr()) }
}

/// Whether this run is a read-only query (`enigma query`, `Client::query`) rather than a task.
#[must_use]
pub fn is_query() -> bool {
    // SAFETY: a host call without memory arguments.
    unsafe { external::enigma_is_query() == 1 }
}

/// The task's verified caller: the Ethereum account that recorded the task and signed it (the
/// enclave checked the EIP-712 signature, so nobody can call in another's name), or `None` when
/// the task came unsigned (an eng-wasm-era client, or a host that dropped the proof).
#[must_use]
pub fn sender() -> Option<Address> {
    let mut out = [0u8; 20];
    // SAFETY: the host writes 20 bytes to `out` when it returns 1.
    let known = unsafe { external::enigma_sender(out.as_mut_ptr()) };
    (known == 1).then(|| Address::from(out))
}

/// The task's verified caller ([`sender`]); a task without one fails with a message saying so.
#[must_use]
pub fn caller() -> Address {
    sender().unwrap_or_else(|| {
        fail_with(
            FailKind::Contract,
            "this function needs a verified caller: send the task signed by its sender (as \
             enigma-client and the CLI do)",
        )
    })
}

/// Encrypts `message` under `key` with the protocol's envelope (`ciphertext ‖ tag ‖ iv`, random
/// IV from the enclave).
#[must_use]
pub fn encrypt(message: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8; message.len() + 28];
    // SAFETY: the host writes `len + 28` bytes to `out`.
    unsafe {
        external::encrypt(message.as_ptr(), message.len() as u32, key.as_ptr(), out.as_mut_ptr())
    };
    out
}

/// Decrypts an envelope made by [`encrypt`] (or any client) under `key`; a blob that does not
/// authenticate fails the task.
#[must_use]
pub fn decrypt(blob: &[u8], key: &[u8; 32]) -> Vec<u8> {
    if blob.len() < 28 {
        fail_with(
            FailKind::Contract,
            "decrypt: the ciphertext is shorter than its 28-byte tag and IV",
        );
    }
    let mut out = vec![0u8; blob.len() - 28];
    // SAFETY: the host writes `len - 28` bytes to `out`.
    unsafe { external::decrypt(blob.as_ptr(), blob.len() as u32, key.as_ptr(), out.as_mut_ptr()) };
    out
}

/// Support for the code `#[pub_interface]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use alloc::format;
    use alloc::{string::String, vec::Vec};

    use crate::{FailKind, fail_with};

    /// Fails the task: the contract has no function `name`.
    pub fn unknown_function(name: &str) -> ! {
        fail_with(FailKind::UnknownFunction, name)
    }

    /// Fails the task: argument `index` (1-based) of the function does not decode.
    pub fn bad_argument(
        index: usize,
        name: &str,
        sol_type: &str,
        error: &dyn core::fmt::Display,
    ) -> ! {
        fail_with(
            FailKind::BadArguments,
            &format!("argument {index} (`{name}`, {sol_type}) does not decode: {error}"),
        )
    }

    /// Fails the task: the arguments do not decode as a whole (e.g. trailing or missing data).
    pub fn bad_arguments(expected: &str, error: &dyn core::fmt::Display) -> ! {
        fail_with(FailKind::BadArguments, &format!("expected ({expected}): {error}"))
    }

    /// Fails the task with the contract's error.
    pub fn contract_error(error: &dyn core::fmt::Display) -> ! {
        fail_with(FailKind::Contract, &format!("{error}"))
    }

    /// The arguments, for the generated dispatch.
    #[must_use]
    pub fn args() -> Vec<u8> {
        crate::args()
    }

    /// The function name, for the generated dispatch.
    #[must_use]
    pub fn function_name() -> String {
        crate::function_name()
    }

    /// Whether this run is a read-only query (not a task).
    #[must_use]
    pub fn is_query() -> bool {
        crate::is_query()
    }

    /// Fails a query of a function that does not answer queries.
    pub fn not_a_query(name: &str) -> ! {
        fail_with(
            FailKind::Contract,
            &format!(
                "`{name}` does not answer queries (the contract does not mark it #[query]); send it as a task"
            ),
        )
    }

    /// Fails a task calling a function that answers queries only.
    pub fn only_a_query(name: &str) -> ! {
        fail_with(
            FailKind::Contract,
            &format!("`{name}` answers queries only (#[query(only)]); ask it as a query"),
        )
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = match info.location() {
        Some(at) => alloc::format!("{} (at {}:{})", info.message(), at.file(), at.line()),
        None => alloc::format!("{}", info.message()),
    };
    fail_with(FailKind::Panic, &message)
}
