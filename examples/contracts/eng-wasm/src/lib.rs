//! A reproduction of Enigma Discovery's `eng-wasm` crate: the same public contract API over the
//! same host calls and conventions, so that contracts written for Discovery build against it
//! as they are, and the modules they produce exercise this network's host as Discovery-built
//! modules do (no compiled Discovery module is in this repository to run instead).
//!
//! The conventions it keeps (from Discovery's `eng-wasm` and `enigma-runtime-t`):
//! - state values are JSON (`serde_json`); a key that is not set reads as the JSON `null`
//!   (length 4), which [`read_state!`] turns into `None`;
//! - arguments arrive Ethereum-ABI encoded (no selector) and `#[pub_interface]` decodes them in
//!   order; a return value is ABI encoded and handed to `ret`; a function without one calls no
//!   `ret` (the output is empty);
//! - failures are panics, which trap (`unreachable`): no message reaches the user;
//! - [`Rand`] fills from the `rand` host call; [`write_ethereum_bridge`] asks for one Ethereum
//!   call after the receipt (the last request wins); [`eprint!`] logs through `eprint`.

#![no_std]

extern crate alloc;

pub use alloc::{
    borrow::ToOwned, boxed::Box, format, string::String, string::ToString, vec, vec::Vec,
};

pub use alloy_primitives::{keccak256, Address, Address as H160, Bytes, B256 as H256, U256};
pub use alloy_sol_types::{self, SolValue};
pub use eng_wasm_derive::{eth_contract, pub_interface};
pub use serde;
pub use serde_json;

use serde::{de::DeserializeOwned, Serialize};

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // As on Discovery: a panic is a trap, and the task fails.
    core::arch::wasm32::unreachable()
}

/// The host calls, as eng-wasm declares them.
pub mod external {
    #[cfg_attr(target_arch = "wasm32", link(wasm_import_module = "env"))]
    unsafe extern "C" {
        pub fn write_state(key: *const u8, key_len: u32, value: *const u8, value_len: u32);
        pub fn read_state_len(key: *const u8, key_len: u32) -> i32;
        pub fn read_state(key: *const u8, key_len: u32, value_holder: *const u8);
        pub fn remove_from_state(key: *const u8, key_len: u32);
        pub fn eprint(str_ptr: *const u8, str_len: u32);
        pub fn fetch_function_name_length() -> i32;
        pub fn fetch_function_name(name_holder: *const u8);
        pub fn fetch_args_length() -> i32;
        pub fn fetch_args(name_holder: *const u8);
        pub fn write_eth_bridge(payload: *const u8, payload_len: u32, address: *const u8);
        pub fn gas(amount: u32);
        pub fn ret(payload: *const u8, payload_len: u32);
        pub fn rand(payload: *const u8, payload_len: u32);
    }
}

/// The called function's name (the callable before its `(`).
#[must_use]
pub fn function_name() -> String {
    // SAFETY: the host writes exactly the length it reported.
    let len = unsafe { external::fetch_function_name_length() } as usize;
    if len == 0 {
        return String::new();
    }
    let buf = vec![0u8; len];
    unsafe { external::fetch_function_name(buf.as_ptr()) };
    String::from_utf8(buf).expect("the function name is not UTF-8")
}

/// The call's ABI-encoded arguments.
#[must_use]
pub fn args() -> Vec<u8> {
    // SAFETY: the host writes exactly the length it reported.
    let len = unsafe { external::fetch_args_length() } as usize;
    if len == 0 {
        return Vec::new();
    }
    let buf = vec![0u8; len];
    unsafe { external::fetch_args(buf.as_ptr()) };
    buf
}

/// Sets the task's output.
pub fn ret(bytes: &[u8]) {
    // SAFETY: the host reads `len` bytes.
    unsafe { external::ret(bytes.as_ptr(), bytes.len() as u32) }
}

/// Logs `text` (kept only by a worker that keeps debug logs). Returns 0, as eng-wasm's did.
pub fn print(text: &str) -> i32 {
    // SAFETY: the host reads `len` bytes.
    unsafe { external::eprint(text.as_ptr(), text.len() as u32) };
    0
}

/// Stores `value` as JSON under `key`.
pub fn write<T: Serialize>(key: &str, value: T) {
    let bytes = serde_json::to_vec(&value).expect("the value does not serialize to JSON");
    // SAFETY: the host reads the given lengths.
    unsafe {
        external::write_state(key.as_ptr(), key.len() as u32, bytes.as_ptr(), bytes.len() as u32)
    }
}

/// The JSON value under `key` as a `T`; `None` when the key is not set (the host then reads
/// `null`).
#[must_use]
pub fn read<T: DeserializeOwned>(key: &str) -> Option<T> {
    // SAFETY: the host writes exactly the length it reported.
    let len = unsafe { external::read_state_len(key.as_ptr(), key.len() as u32) } as usize;
    let buf = vec![0u8; len];
    unsafe { external::read_state(key.as_ptr(), key.len() as u32, buf.as_ptr()) };
    let value: serde_json::Value = serde_json::from_slice(&buf).expect("the state is not JSON");
    if value.is_null() {
        return None;
    }
    Some(serde_json::from_value(value).expect("the state does not hold the expected type"))
}

/// Removes `key`, returning what it held.
pub fn remove<T: DeserializeOwned>(key: &str) -> Option<T> {
    let old = read(key);
    // SAFETY: the host reads `len` bytes.
    unsafe { external::remove_from_state(key.as_ptr(), key.len() as u32) };
    old
}

/// Asks for an Ethereum call to `address` with `payload` (ABI calldata) once the task's receipt
/// is verified on chain.
pub fn write_ethereum_bridge(payload: &[u8], address: &Address) {
    // SAFETY: the host reads `payload_len` bytes and 20 bytes of address.
    unsafe { external::write_eth_bridge(payload.as_ptr(), payload.len() as u32, address.as_ptr()) }
}

/// `write_state!(key => value, …)`: stores each value as JSON.
#[macro_export]
macro_rules! write_state {
    ( $( $key:expr => $val:expr ),+ $(,)? ) => {{
        $( $crate::write(&$key, $val); )+
    }};
}

/// `read_state!(key)`: the value under `key`, `None` if it is not set.
#[macro_export]
macro_rules! read_state {
    ( $key:expr ) => {
        $crate::read(&$key)
    };
}

/// `remove_from_state!(key)`: removes `key`, returning what it held.
#[macro_export]
macro_rules! remove_from_state {
    ( $key:expr ) => {
        $crate::remove(&$key)
    };
}

/// `eformat!(…)`: `format!` for contracts.
#[macro_export]
macro_rules! eformat {
    ( $($arg:tt)* ) => {
        $crate::format!( $($arg)* )
    };
}

/// `eprint!(…)`: a debug log line.
#[macro_export]
macro_rules! eprint {
    ( $($arg:tt)* ) => {
        $crate::print(&$crate::eformat!( $($arg)* ))
    };
}

/// The task's randomness.
pub struct Rand;

/// What [`Rand::gen`] draws.
pub trait Gen {
    /// A value from the task's randomness.
    fn generate() -> Self;
}

impl Rand {
    /// Fills `buf`.
    pub fn gen_slice(buf: &mut [u8]) {
        // SAFETY: the host writes `len` bytes.
        unsafe { external::rand(buf.as_mut_ptr(), buf.len() as u32) }
    }

    /// A random value.
    #[must_use]
    pub fn gen<T: Gen>() -> T {
        T::generate()
    }
}

macro_rules! gen_int {
    ($($t:ty),*) => {$(
        impl Gen for $t {
            fn generate() -> Self {
                let mut b = [0u8; core::mem::size_of::<$t>()];
                Rand::gen_slice(&mut b);
                <$t>::from_be_bytes(b)
            }
        }
    )*};
}
gen_int!(u8, u16, u32, u64);

impl Gen for U256 {
    fn generate() -> Self {
        let mut b = [0u8; 32];
        Rand::gen_slice(&mut b);
        U256::from_be_bytes(b)
    }
}

impl Gen for bool {
    fn generate() -> Self {
        u8::generate() % 2 == 1
    }
}
