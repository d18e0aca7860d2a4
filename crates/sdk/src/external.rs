//! The host functions of PROTOCOL.md section 6, imported from `env`.

#[cfg_attr(target_arch = "wasm32", link(wasm_import_module = "env"))]
unsafe extern "C" {
    pub(crate) fn fetch_function_name_length() -> i32;
    pub(crate) fn fetch_function_name(out: *mut u8);
    pub(crate) fn fetch_args_length() -> i32;
    pub(crate) fn fetch_args(out: *mut u8);
    pub(crate) fn ret(ptr: *const u8, len: u32);
    pub(crate) fn write_state(key: *const u8, key_len: u32, value: *const u8, value_len: u32);
    pub(crate) fn read_state(key: *const u8, key_len: u32, out: *mut u8);
    pub(crate) fn remove_from_state(key: *const u8, key_len: u32);
    pub(crate) fn write_eth_bridge(payload: *const u8, payload_len: u32, address: *const u8);
    pub(crate) fn rand(out: *mut u8, len: u32);
    pub(crate) fn encrypt(message: *const u8, len: u32, key: *const u8, out: *mut u8);
    pub(crate) fn decrypt(blob: *const u8, len: u32, key: *const u8, out: *mut u8);
    pub(crate) fn eprint(ptr: *const u8, len: u32);
    pub(crate) fn gas(amount: u32);
    pub(crate) fn enigma_fail(kind: i32, ptr: *const u8, len: u32);
    pub(crate) fn enigma_state_len(key: *const u8, key_len: u32) -> i32;
    pub(crate) fn enigma_value(out: *mut u8);
    pub(crate) fn enigma_balance(out: *mut u8);
    pub(crate) fn enigma_pay(to: *const u8, amount: *const u8);
    pub(crate) fn enigma_sender(out: *mut u8) -> i32;
    pub(crate) fn enigma_is_query() -> i32;
}
