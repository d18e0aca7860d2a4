//! Contract state: string keys to serde-JSON values. The macros [`read_state!`](crate::read_state),
//! [`write_state!`](crate::write_state) and [`remove_from_state!`](crate::remove_from_state) call
//! these.

use alloc::{vec, vec::Vec};

use serde::{Serialize, de::DeserializeOwned};

use crate::{FailKind, external, fail_with};

/// The raw bytes stored under `key`, `None` when missing.
#[must_use]
pub fn read_raw(key: &str) -> Option<Vec<u8>> {
    // SAFETY: the host reads `key_len` bytes and writes exactly `len` bytes to `buf`.
    // `enigma_state_len` says -1 for a missing key (eng-wasm's `read_state_len` says 4, for the
    // JSON `null` it reads then, which could also be a stored value).
    let len = unsafe { external::enigma_state_len(key.as_ptr(), key.len() as u32) };
    let len = usize::try_from(len).ok()?;
    let mut buf = vec![0u8; len];
    unsafe { external::read_state(key.as_ptr(), key.len() as u32, buf.as_mut_ptr()) };
    Some(buf)
}

/// Stores raw bytes under `key`.
pub fn write_raw(key: &str, value: &[u8]) {
    // SAFETY: the host reads the given lengths from the pointers.
    unsafe {
        external::write_state(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32)
    }
}

/// The JSON value under `key` as a `T`, `None` when missing.
#[must_use]
pub fn read<T: DeserializeOwned>(key: &str) -> Option<T> {
    let raw = read_raw(key)?;
    match serde_json::from_slice(&raw) {
        Ok(value) => Some(value),
        Err(e) => fail_with(
            FailKind::Contract,
            &alloc::format!("state key `{key}` does not hold the expected type: {e}"),
        ),
    }
}

/// Stores `value` as JSON under `key`.
pub fn write<T: Serialize + ?Sized>(key: &str, value: &T) {
    match serde_json::to_vec(value) {
        Ok(bytes) => write_raw(key, &bytes),
        Err(e) => fail_with(
            FailKind::Contract,
            &alloc::format!("state key `{key}` cannot be encoded: {e}"),
        ),
    }
}

/// Removes `key`.
pub fn remove(key: &str) {
    // SAFETY: the host reads `key_len` bytes.
    unsafe { external::remove_from_state(key.as_ptr(), key.len() as u32) }
}
