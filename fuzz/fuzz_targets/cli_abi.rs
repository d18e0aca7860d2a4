//! The CLI's ABI argument parsing and output decoding (`crates/cli/src/abi.rs`, compiled here
//! as it is: the CLI is a binary crate). Input: a signature line, then one argument per line; or,
//! after a NUL, return types and output bytes. Nothing may panic; arguments that encode decode
//! back as the signature's types, one value each.
#![no_main]

#[path = "../../crates/cli/src/abi.rs"]
#[allow(dead_code, unreachable_pub)]
mod abi;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.iter().position(|b| *b == 0) {
        None => {
            let Ok(text) = std::str::from_utf8(data) else { return };
            let mut lines = text.split('\n');
            let signature = lines.next().unwrap_or_default();
            let args: Vec<String> = lines.map(str::to_owned).collect();
            if let Ok(encoded) = abi::encode_args(signature, &args) {
                let open = signature.find('(').expect("an encoded signature has a list");
                let values = abi::decode_output(&signature[open..], &encoded)
                    .expect("what encodes decodes as its own types");
                assert_eq!(values.len(), args.len());
            }
        }
        Some(nul) => {
            let Ok(types) = std::str::from_utf8(&data[..nul]) else { return };
            let _ = abi::decode_output(types, &data[nul + 1..]);
        }
    }
});
