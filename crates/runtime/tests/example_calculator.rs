//! The calculator example through the runtime, and the SDK's dispatch errors.

use crate::common;

use crate::common::Contract;
use alloy_primitives::U256;
use alloy_sol_types::SolValue;
use enigma_runtime::ExecError;

fn args(a: U256, b: U256) -> Vec<u8> {
    (a, b).abi_encode_params()
}

fn result(output: &[u8]) -> U256 {
    <(U256,)>::abi_decode_params(output).expect("a uint256 result").0
}

#[test]
fn arithmetic_on_uint256() {
    let mut c = Contract::deploy("calculator", "construct()", &[]);
    let (a, b) = (U256::from(76u64), U256::from(17u64));
    assert_eq!(result(&c.ok("add(uint256,uint256)", &args(a, b))), U256::from(93u64));
    assert_eq!(result(&c.ok("sub(uint256,uint256)", &args(a, b))), U256::from(59u64));
    assert_eq!(result(&c.ok("mul(uint256,uint256)", &args(a, b))), U256::from(1292u64));
    assert_eq!(result(&c.ok("div(uint256,uint256)", &args(a, b))), U256::from(4u64));
    assert!(c.deltas.len() == 1 && c.state.is_empty(), "a stateless contract leaves only delta 0");
}

#[test]
fn division_by_zero_and_overflow_are_clean_failures() {
    let mut c = Contract::deploy("calculator", "construct()", &[]);
    assert_eq!(
        c.call("div(uint256,uint256)", &args(U256::from(1u64), U256::ZERO)),
        Err(ExecError::Reverted { message: "division by zero".into() })
    );
    assert_eq!(
        c.call("add(uint256,uint256)", &args(U256::MAX, U256::from(1u64))),
        Err(ExecError::Reverted { message: "overflow: a + b is larger than 2^256 - 1".into() })
    );
    assert_eq!(
        c.call("sub(uint256,uint256)", &args(U256::ZERO, U256::from(1u64))),
        Err(ExecError::Reverted { message: "underflow: b is larger than a".into() })
    );
}

#[test]
fn an_unknown_function_is_named() {
    let mut c = Contract::deploy("calculator", "construct()", &[]);
    assert_eq!(
        c.call("pow(uint256,uint256)", &[]),
        Err(ExecError::UnknownFunction { name: "pow".into() })
    );
}

#[test]
fn arguments_that_do_not_decode_name_the_argument() {
    let mut c = Contract::deploy("calculator", "construct()", &[]);
    let one = U256::from(1u64).abi_encode();
    match c.call("add(uint256,uint256)", &one) {
        Err(ExecError::BadArguments { function, detail }) => {
            assert_eq!(function, "add");
            assert!(detail.starts_with("argument 2 (`b`, uint256)"), "{detail}");
        }
        other => panic!("expected BadArguments, got {other:?}"),
    }
    match c.call("add(uint256,uint256)", &[]) {
        Err(ExecError::BadArguments { detail, .. }) => {
            assert!(detail.starts_with("argument 1 (`a`, uint256)"), "{detail}")
        }
        other => panic!("expected BadArguments, got {other:?}"),
    }
}

#[test]
fn the_same_call_costs_the_same_gas_and_failures_cost_gas() {
    let mut c = Contract::deploy("calculator", "construct()", &[]);
    let a = c.call_outcome(
        "add(uint256,uint256)",
        &args(U256::from(1u64), U256::from(2u64)),
        common::GAS,
    );
    let b = c.call_outcome(
        "add(uint256,uint256)",
        &args(U256::from(1u64), U256::from(2u64)),
        common::GAS,
    );
    assert_eq!(a.gas_used, b.gas_used);
    let failed =
        c.call_outcome("div(uint256,uint256)", &args(U256::from(1u64), U256::ZERO), common::GAS);
    assert!(failed.result.is_err() && failed.gas_used.0 > enigma_runtime::gas::TASK_BASE);
    let starved = c.call_outcome(
        "add(uint256,uint256)",
        &args(U256::from(1u64), U256::from(2u64)),
        a.gas_used.0 - 1,
    );
    assert_eq!(starved.result, Err(ExecError::OutOfGas { limit: a.gas_used.0 - 1 }));
    assert_eq!(starved.gas_used.0, a.gas_used.0 - 1);
}
