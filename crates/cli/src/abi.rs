//! The CLI's ABI arguments and outputs: `name(type,…)` signatures with text arguments, encoded
//! as the contract's parameters, and outputs decoded to readable values. Self-contained (alloy's
//! dynamic ABI, anyhow, hex) so that `fuzz/` compiles this very file as its `cli_abi` target.

use alloy::dyn_abi::{DynSolType, DynSolValue};
use anyhow::{Context, Result, bail};

/// ABI-encodes `args` as the parameters of `signature` (`name(type,…)`).
pub(crate) fn encode_args(signature: &str, args: &[String]) -> Result<Vec<u8>> {
    let open = signature.find('(').with_context(|| {
        format!("the signature {signature:?} has no parameter list; write it like 'transfer(address,uint256)'")
    })?;
    if !signature.ends_with(')') || open == 0 {
        bail!("the signature {signature:?} must be name(type,…), like 'transfer(address,uint256)'");
    }
    let params = DynSolType::parse(&signature[open..])
        .with_context(|| format!("the parameter types of {signature:?} do not parse"))?;
    let DynSolType::Tuple(types) = params else {
        bail!("the parameter types of {signature:?} do not parse as a list");
    };
    check_types(&types, &format!("the signature {signature:?}"))?;
    if types.len() != args.len() {
        bail!("{signature} takes {} argument(s); got {}", types.len(), args.len());
    }
    let values = types
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (ty, arg))| {
            ty.coerce_str(arg)
                .with_context(|| format!("argument {} ({arg:?}) is not a {ty}", i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DynSolValue::Tuple(values).abi_encode_params())
}

/// Decodes `output` as `types` (a parenthesized list) into readable values.
pub(crate) fn decode_output(types: &str, output: &[u8]) -> Result<Vec<String>> {
    let ty = DynSolType::parse(types).with_context(|| {
        format!("--returns {types:?} does not parse; write it like '(address,uint256)'")
    })?;
    let ty = match ty {
        DynSolType::Tuple(_) => ty,
        other => DynSolType::Tuple(vec![other]),
    };
    if let DynSolType::Tuple(list) = &ty {
        check_types(list, &format!("--returns {types:?}"))?;
    }
    let value = ty
        .abi_decode_params(output)
        .with_context(|| format!("the output does not decode as {types}"))?;
    Ok(match value {
        DynSolValue::Tuple(values) => values.iter().map(show).collect(),
        other => vec![show(&other)],
    })
}

/// The most values the fixed-size arrays of a type list may hold in all: the ABI decoder makes
/// room for a fixed-size array before it reads it, so `uint8[5555555545]` would ask for hundreds
/// of gigabytes (found by the `cli_abi` fuzz target).
const MAX_FIXED_VALUES: u128 = 1 << 20;

/// Types the CLI takes: no empty tuple `()` anywhere inside a list (it is no Solidity type and
/// the ABI gives it no bytes, so `f(())` with the argument `()` decoded back to no value: found
/// by the `cli_abi` fuzz target; only the list itself may be empty), and fixed-size arrays of at
/// most [`MAX_FIXED_VALUES`] values in all.
fn check_types(types: &[DynSolType], what: &str) -> Result<()> {
    fn empty_inside(ty: &DynSolType) -> bool {
        match ty {
            DynSolType::Tuple(inner) => inner.is_empty() || inner.iter().any(empty_inside),
            DynSolType::Array(inner) | DynSolType::FixedArray(inner, _) => empty_inside(inner),
            _ => false,
        }
    }
    fn values(ty: &DynSolType) -> u128 {
        match ty {
            DynSolType::Tuple(inner) => {
                inner.iter().fold(1u128, |sum, t| sum.saturating_add(values(t)))
            }
            DynSolType::FixedArray(inner, n) => (*n as u128).saturating_mul(values(inner)),
            DynSolType::Array(inner) => values(inner).saturating_add(1),
            _ => 1,
        }
    }
    if types.iter().any(empty_inside) {
        bail!("{what} holds an empty tuple `()`, which is not a Solidity type");
    }
    let total = types.iter().fold(0u128, |sum, t| sum.saturating_add(values(t)));
    if total > MAX_FIXED_VALUES {
        bail!("{what} has fixed-size arrays of more than {MAX_FIXED_VALUES} values in all");
    }
    Ok(())
}

fn show(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::String(s) => s.clone(),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::FixedBytes(w, n) => format!("0x{}", hex::encode(&w[..*n])),
        DynSolValue::Function(f) => format!("0x{}", hex::encode(f.as_slice())),
        DynSolValue::Array(xs) | DynSolValue::FixedArray(xs) | DynSolValue::Tuple(xs) => {
            format!("[{}]", xs.iter().map(show).collect::<Vec<_>>().join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_encode_as_the_signature_says() {
        let encoded = encode_args(
            "add_millionaire(address,uint256)",
            &["0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(), "1000000".into()],
        )
        .unwrap();
        assert_eq!(encoded.len(), 64);
        assert_eq!(hex::encode(&encoded[12..32]), "70997970c51812dc3a010c7d01b50e0d17dc79c8");
        assert_eq!(u64::from_be_bytes(encoded[56..64].try_into().unwrap()), 1_000_000);
        assert!(encode_args("compute_richest()", &[]).unwrap().is_empty());
    }

    #[test]
    fn bad_arguments_say_which_and_why() {
        let e = encode_args("f(address,uint256)", &["0x12".into(), "1".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("argument 1"), "{e:#}");
        let e = encode_args("f(uint256)", &[]).unwrap_err();
        assert!(e.to_string().contains("takes 1 argument(s); got 0"), "{e}");
        assert!(encode_args("f", &[]).unwrap_err().to_string().contains("no parameter list"));
        assert!(encode_args("(uint256)", &["1".into()]).is_err());
        assert!(encode_args("f(uint7)", &["1".into()]).is_err());
        // Found by fuzzing: an empty tuple encoded to nothing and decoded to no value.
        let e = encode_args("f(())", &["()".into()]).unwrap_err();
        assert!(e.to_string().contains("empty tuple"), "{e}");
        assert!(encode_args("f((uint8,())[])", &["[]".into()]).is_err());
        assert!(decode_output("(())", &[]).unwrap_err().to_string().contains("empty tuple"));
        assert!(decode_output("()", &[]).unwrap().is_empty(), "no outputs at all is fine");
        // Found by fuzzing: a fixed-size array the decoder would make room for at once.
        let e = decode_output("bytes[5555555545][][1][]", &[0; 64]).unwrap_err();
        assert!(e.to_string().contains("fixed-size arrays of more than"), "{e}");
        assert!(encode_args("f(uint8[65536][65536])", &["[]".into()]).is_err());
        let e = decode_output("(uint8[1024][1024])", &[]).unwrap_err();
        assert!(e.to_string().contains("does not decode"), "within the bound, short data: {e}");
    }

    #[test]
    fn outputs_decode_to_readable_values() {
        let value = DynSolValue::Tuple(vec![
            DynSolValue::Address(alloy::primitives::Address::repeat_byte(0xab)),
            DynSolValue::Uint(alloy::primitives::U256::from(42u8), 256),
            DynSolValue::String("hi".into()),
        ]);
        let out = decode_output("(address,uint256,string)", &value.abi_encode_params()).unwrap();
        assert_eq!(out[0].to_lowercase(), format!("0x{}", "ab".repeat(20)));
        out[0].parse::<alloy::primitives::Address>().expect("a valid EIP-55 checksum");
        assert_eq!(out[1..], ["42", "hi"]);
        let one = DynSolValue::Tuple(vec![DynSolValue::Bool(true)]).abi_encode_params();
        assert_eq!(decode_output("bool", &one).unwrap(), ["true"]);
        assert!(decode_output("(uint256)", &[1, 2, 3]).is_err());
    }
}
