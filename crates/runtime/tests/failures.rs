//! The failure matrix: every module defect, trap, limit and hostile behaviour ends as a precise
//! error value, with the gas accounted, and never harms the host.

use enigma_runtime::{
    ContractCode, ContractState, ExecError, Limits, ModuleError, Outcome, Randomness, Runtime,
    Task, TrapKind, gas,
};
use enigma_types::GasLimit;

struct Fixed;

impl Randomness for Fixed {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }

    fn fill_iv(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
}

/// A module with the given extra imports and a `call` body; `deploy` does nothing.
fn module(imports: &str, call_body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            {imports}
            (memory (export "memory") 1)
            (func (export "deploy"))
            (func (export "call") {call_body}))"#
    ))
    .unwrap()
}

fn run(wasm: &[u8], gas_limit: u64) -> Outcome {
    run_with(&mut Runtime::new(Limits::default()), wasm, "f", &[], gas_limit)
}

fn run_with(rt: &mut Runtime, wasm: &[u8], function: &str, args: &[u8], gas_limit: u64) -> Outcome {
    let state = ContractState::new();
    rt.execute(
        &ContractCode::new(wasm),
        Task::call(function, args, GasLimit(gas_limit)),
        &state,
        &mut Fixed,
    )
}

fn validate(wasm: &[u8]) -> Result<(), ModuleError> {
    Runtime::new(Limits::default()).validate(wasm).map(|_| ())
}

#[test]
fn a_contract_that_loops_forever_runs_out_of_gas_and_pays_the_limit() {
    let wasm = module("", "(loop $l (br $l))");
    let outcome = run(&wasm, 1_000_000);
    assert_eq!(outcome.result, Err(ExecError::OutOfGas { limit: 1_000_000 }));
    assert_eq!(outcome.gas_used.0, 1_000_000);
}

#[test]
fn a_contract_that_allocates_without_end_hits_the_memory_limit() {
    let wasm = module("", "(loop $l (drop (memory.grow (i32.const 1))) (br $l))");
    let outcome = run(&wasm, 100_000_000);
    assert_eq!(outcome.result, Err(ExecError::MemoryLimitExceeded { max_pages: 256 }));
    assert!(outcome.gas_used.0 < 100_000_000, "it stopped at the limit, not at the gas limit");
}

#[test]
fn a_contract_that_recurses_without_end_exhausts_the_call_stack() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "deploy"))
            (func $r (call $r))
            (func (export "call") (call $r)))"#,
    )
    .unwrap();
    let outcome = run(&wasm, 100_000_000);
    assert_eq!(outcome.result, Err(ExecError::CallStackExhausted { max_depth: 1024 }));
}

#[test]
fn an_unknown_import_is_rejected_at_deploy_with_its_name() {
    let wasm = module(r#"(import "env" "launch_missiles" (func))"#, "");
    assert_eq!(validate(&wasm), Err(ModuleError::UnknownImport { name: "launch_missiles".into() }));
    let wasi = module(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "",
    );
    assert_eq!(
        validate(&wasi),
        Err(ModuleError::ForeignImport {
            module: "wasi_snapshot_preview1".into(),
            name: "fd_write".into()
        })
    );
    let table = module(r#"(import "env" "table" (table 1 funcref))"#, "");
    assert_eq!(validate(&table), Err(ModuleError::UnknownImport { name: "table".into() }));
}

#[test]
fn an_import_with_the_wrong_type_is_rejected() {
    let wasm = module(r#"(import "env" "ret" (func (param i32)))"#, "");
    assert_eq!(
        validate(&wasm),
        Err(ModuleError::ImportType { name: "ret".into(), expected: "(i32, i32)" })
    );
}

#[test]
fn module_defects_are_named() {
    let start = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "deploy")) (func (export "call")))"#,
    )
    .unwrap();
    assert_eq!(validate(&start), Err(ModuleError::HasStartFunction));

    let no_call =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "deploy")))"#)
            .unwrap();
    assert_eq!(validate(&no_call), Err(ModuleError::MissingExport("call")));

    let wrong_sig = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "deploy")) (func (export "call") (param i32)))"#,
    )
    .unwrap();
    assert_eq!(validate(&wrong_sig), Err(ModuleError::MissingExport("call")));

    let no_memory =
        wat::parse_str(r#"(module (func (export "deploy")) (func (export "call")))"#).unwrap();
    assert_eq!(validate(&no_memory), Err(ModuleError::NoMemory));

    let huge_memory =
        wat::parse_str(r#"(module (memory (export "memory") 300) (func (export "deploy")) (func (export "call")))"#)
            .unwrap();
    assert_eq!(validate(&huge_memory), Err(ModuleError::MemoryTooLarge { pages: 300, max: 256 }));

    let huge_import = wat::parse_str(
        r#"(module (import "env" "memory" (memory 257)) (func (export "deploy")) (func (export "call")))"#,
    )
    .unwrap();
    assert_eq!(validate(&huge_import), Err(ModuleError::MemoryTooLarge { pages: 257, max: 256 }));

    assert_eq!(validate(b"\x7fELF\x02\x01\x01\0"), Err(ModuleError::NotWasm));
    assert_eq!(validate(b""), Err(ModuleError::NotWasm));

    let mut broken = module("", "");
    let len = broken.len();
    broken.truncate(len - 3);
    assert!(matches!(validate(&broken), Err(ModuleError::Malformed(_) | ModuleError::Invalid(_))));

    let mut rt = Runtime::new(Limits { max_code_bytes: 10, ..Limits::default() });
    let size = module("", "").len();
    assert_eq!(rt.validate(&module("", "")), Err(ModuleError::TooLarge { size, max: 10 }));
}

#[test]
fn a_module_importing_its_memory_runs() {
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "memory" (memory 1))
            (import "env" "ret" (func $ret (param i32 i32)))
            (data (i32.const 8) "hello")
            (func (export "deploy"))
            (func (export "call") (call $ret (i32.const 8) (i32.const 5))))"#,
    )
    .unwrap();
    assert_eq!(run(&wasm, 100_000).result.unwrap().output, b"hello");
}

#[test]
fn each_trap_kind_is_reported() {
    let cases = [
        ("unreachable", TrapKind::Unreachable),
        ("(drop (i32.div_u (i32.const 1) (i32.const 0)))", TrapKind::IntegerDivisionByZero),
        ("(drop (i32.div_s (i32.const -2147483648) (i32.const -1)))", TrapKind::IntegerOverflow),
        ("(drop (i32.load (i32.const 65536)))", TrapKind::MemoryOutOfBounds),
        ("(drop (i32.trunc_f32_s (f32.const nan)))", TrapKind::BadConversionToInteger),
    ];
    for (body, kind) in cases {
        let outcome = run(&module("", body), 100_000);
        assert_eq!(outcome.result, Err(ExecError::Trap(kind)), "{body}");
        assert!(outcome.gas_used.0 > gas::TASK_BASE && outcome.gas_used.0 < 100_000);
    }
    let table = wat::parse_str(
        r#"(module (memory (export "memory") 1) (table 2 funcref) (type $t (func))
            (func (export "deploy"))
            (func (export "call") (call_indirect (type $t) (i32.const 0))))"#,
    )
    .unwrap();
    assert_eq!(run(&table, 100_000).result, Err(ExecError::Trap(TrapKind::IndirectCallToNull)));
    let msg = ExecError::Trap(TrapKind::Unreachable).to_string();
    assert!(msg.contains("panic"), "an unreachable trap explains itself: {msg}");
}

#[test]
fn a_pointer_outside_memory_given_to_the_host_fails_the_task() {
    let ret = r#"(import "env" "ret" (func $ret (param i32 i32)))"#;
    let outcome = run(&module(ret, "(call $ret (i32.const 65530) (i32.const 10))"), 100_000);
    assert_eq!(outcome.result, Err(ExecError::BadPointer { function: "ret" }));
    let outcome = run(&module(ret, "(call $ret (i32.const -1) (i32.const 10))"), 100_000);
    assert_eq!(outcome.result, Err(ExecError::BadPointer { function: "ret" }));
    let args = r#"(import "env" "fetch_args" (func $a (param i32)))"#;
    let mut rt = Runtime::new(Limits::default());
    let outcome =
        run_with(&mut rt, &module(args, "(call $a (i32.const 65535))"), "f", &[1, 2, 3], 100_000);
    assert_eq!(outcome.result, Err(ExecError::BadPointer { function: "fetch_args" }));
}

#[test]
fn size_limits_are_enforced_and_named() {
    let ret = r#"(import "env" "ret" (func $ret (param i32 i32)))"#;
    let mut rt = Runtime::new(Limits { max_output_bytes: 4, ..Limits::default() });
    let outcome = run_with(
        &mut rt,
        &module(ret, "(call $ret (i32.const 0) (i32.const 5))"),
        "f",
        &[],
        100_000,
    );
    assert_eq!(outcome.result, Err(ExecError::TooLarge { what: "the output", len: 5, max: 4 }));

    let mut rt = Runtime::new(Limits { max_args_bytes: 2, ..Limits::default() });
    let outcome = run_with(&mut rt, &module("", ""), "f", &[0; 3], 100_000);
    assert_eq!(outcome.result, Err(ExecError::TooLarge { what: "the arguments", len: 3, max: 2 }));
    assert_eq!(outcome.gas_used.0, gas::TASK_BASE);

    let write = r#"(import "env" "write_state" (func $w (param i32 i32 i32 i32)))"#;
    let mut rt = Runtime::new(Limits { max_state_value_bytes: 8, ..Limits::default() });
    let outcome = run_with(
        &mut rt,
        &module(write, "(call $w (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 9))"),
        "f",
        &[],
        100_000,
    );
    assert_eq!(outcome.result, Err(ExecError::TooLarge { what: "a state value", len: 9, max: 8 }));
}

#[test]
fn sdk_failures_map_to_named_errors() {
    let fail = r#"(import "env" "enigma_fail" (func $fail (param i32 i32 i32))) (data (i32.const 0) "boom")"#;
    let cases = [
        (1, ExecError::UnknownFunction { name: "boom".into() }),
        (2, ExecError::BadArguments { function: "f".into(), detail: "boom".into() }),
        (3, ExecError::Panicked { message: "boom".into() }),
        (4, ExecError::Reverted { message: "boom".into() }),
    ];
    for (kind, want) in cases {
        let body = format!("(call $fail (i32.const {kind}) (i32.const 0) (i32.const 4))");
        assert_eq!(run(&module(fail, &body), 100_000).result, Err(want));
    }
}

#[test]
fn gas_below_the_base_cost_fails_using_the_whole_limit() {
    let outcome = run(&module("", ""), gas::TASK_BASE - 1);
    assert_eq!(outcome.result, Err(ExecError::OutOfGas { limit: gas::TASK_BASE - 1 }));
    assert_eq!(outcome.gas_used.0, gas::TASK_BASE - 1);
}

#[test]
fn the_gas_import_charges_exactly_its_argument() {
    let g = r#"(import "env" "gas" (func $g (param i32)))"#;
    let plain = run(&module(g, "(call $g (i32.const 0))"), 1_000_000).gas_used.0;
    let charged = run(&module(g, "(call $g (i32.const 5000))"), 1_000_000).gas_used.0;
    assert_eq!(charged - plain, 5000);
    let outcome = run(&module(g, "(call $g (i32.const 5000))"), gas::TASK_BASE + 100);
    assert_eq!(outcome.result, Err(ExecError::OutOfGas { limit: gas::TASK_BASE + 100 }));
}

#[test]
fn gas_is_deterministic_and_the_module_is_compiled_once() {
    let mut rt = Runtime::new(Limits::default());
    let wasm = module(
        "",
        "(local i32) (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if $l (i32.lt_u (local.get 0) (i32.const 1000))))",
    );
    let first = run_with(&mut rt, &wasm, "f", &[], 1_000_000);
    let second = run_with(&mut rt, &wasm, "f", &[], 1_000_000);
    assert!(first.result.is_ok());
    assert_eq!(first.gas_used, second.gas_used);
    assert_eq!(rt.cached_modules(), 1);
    let fresh = run(&wasm, 1_000_000);
    assert_eq!(fresh.gas_used, first.gas_used, "a cold worker charges the same as a warm one");

    // A cache hit does not look at the bytes again: the cached module runs under its hash.
    let code = ContractCode::new(&wasm);
    let state = ContractState::new();
    let hit = rt.execute(
        &ContractCode::with_hash(code.hash(), b"not even wasm"),
        Task::call("f", &[], GasLimit(1_000_000)),
        &state,
        &mut Fixed,
    );
    assert_eq!(hit.gas_used, first.gas_used);
}

#[test]
fn the_cache_is_bounded() {
    let mut rt = Runtime::new(Limits { max_cached_modules: 2, ..Limits::default() });
    for i in 0..5 {
        let wasm = module("", &format!("(drop (i32.const {i}))"));
        assert!(run_with(&mut rt, &wasm, "f", &[], 100_000).result.is_ok());
    }
    assert_eq!(rt.cached_modules(), 2);
}

#[test]
fn deploy_charges_per_byte_of_code() {
    let wasm = module("", "");
    let mut rt = Runtime::new(Limits::default());
    let state = ContractState::new();
    let outcome = rt.execute(
        &ContractCode::new(&wasm),
        Task::deploy("construct()", &[], GasLimit(1_000_000)),
        &state,
        &mut Fixed,
    );
    let success = outcome.result.unwrap();
    assert!(success.delta.is_empty());
    assert_eq!(success.delta.index, 0);
    let call = run(&wasm, 1_000_000).gas_used.0;
    assert_eq!(outcome.gas_used.0 - call, wasm.len() as u64 * gas::DEPLOY_PER_CODE_BYTE);
}

#[test]
fn state_writes_become_an_ordered_delta_of_real_changes() {
    let imports = r#"
        (import "env" "write_state" (func $w (param i32 i32 i32 i32)))
        (import "env" "remove_from_state" (func $rm (param i32 i32)))
        (import "env" "read_state_len" (func $len (param i32 i32) (result i32)))
        (import "env" "read_state" (func $r (param i32 i32 i32)))
        (import "env" "ret" (func $ret (param i32 i32)))
        (data (i32.const 0) "zab")
        (data (i32.const 16) "\"1\"\"2\"")"#;
    // Writes z="1", a="2", b="2" then removes b; reads back a's value as the output.
    let body = r#"
        (call $w (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 3))
        (call $w (i32.const 1) (i32.const 1) (i32.const 19) (i32.const 3))
        (call $w (i32.const 2) (i32.const 1) (i32.const 19) (i32.const 3))
        (call $rm (i32.const 2) (i32.const 1))
        (call $r (i32.const 1) (i32.const 1) (i32.const 100))
        (call $ret (i32.const 100) (call $len (i32.const 1) (i32.const 1)))"#;
    let wasm = module(imports, body);
    let mut rt = Runtime::new(Limits::default());
    let state = ContractState::new();
    let success = rt
        .execute(
            &ContractCode::new(&wasm),
            Task::call("f", &[], GasLimit(1_000_000)),
            &state,
            &mut Fixed,
        )
        .result
        .unwrap();
    assert_eq!(success.output, b"\"2\"");
    let keys: Vec<_> =
        success.delta.changes.iter().map(|c| (c.key.clone(), c.value.clone())).collect();
    assert_eq!(
        keys,
        vec![(b"a".to_vec(), Some(b"\"2\"".to_vec())), (b"z".to_vec(), Some(b"\"1\"".to_vec()))]
    );
}

#[test]
fn rand_and_crypto_use_the_hosts_randomness_and_keys() {
    let imports = r#"
        (import "env" "rand" (func $rand (param i32 i32)))
        (import "env" "encrypt" (func $enc (param i32 i32 i32 i32)))
        (import "env" "decrypt" (func $dec (param i32 i32 i32 i32)))
        (import "env" "ret" (func $ret (param i32 i32)))
        (data (i32.const 0) "secret")"#;
    // rand fills the key at 64..96; encrypt "secret" to 128 (6+28 bytes); decrypt back to 200.
    let body = r#"
        (call $rand (i32.const 64) (i32.const 32))
        (call $enc (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 128))
        (call $dec (i32.const 128) (i32.const 34) (i32.const 64) (i32.const 200))
        (call $ret (i32.const 200) (i32.const 6))"#;
    let success = run(&module(imports, body), 1_000_000).result.unwrap();
    assert_eq!(success.output, b"secret");

    let tamper = r#"
        (call $enc (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 128))
        (i32.store8 (i32.const 128) (i32.const 0xff))
        (call $dec (i32.const 128) (i32.const 34) (i32.const 64) (i32.const 200))"#;
    assert_eq!(run(&module(imports, tamper), 1_000_000).result, Err(ExecError::DecryptFailed));
}

#[test]
fn eprint_is_kept_only_in_debug_mode() {
    let imports = r#"(import "env" "eprint" (func $p (param i32 i32))) (data (i32.const 0) "hi")"#;
    let wasm = module(imports, "(call $p (i32.const 0) (i32.const 2))");
    assert!(run(&wasm, 100_000).result.unwrap().logs.is_empty());
    let mut rt = Runtime::new(Limits { debug_logs: true, ..Limits::default() });
    assert_eq!(
        run_with(&mut rt, &wasm, "f", &[], 100_000).result.unwrap().logs,
        vec!["hi".to_string()]
    );
}

/// A module whose `call` runs `iterations` rounds, each charging 3 gas through the host and
/// writing key `k` (so host calls fall across slice boundaries).
fn busy_module(iterations: u32) -> Vec<u8> {
    let imports = r#"
        (import "env" "gas" (func $g (param i32)))
        (import "env" "write_state" (func $w (param i32 i32 i32 i32)))
        (data (i32.const 0) "k\"1\"")"#;
    let body = format!(
        "(local i32) (loop $l (call $g (i32.const 3)) \
         (call $w (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 3)) \
         (local.set 0 (i32.add (local.get 0) (i32.const 1))) \
         (br_if $l (i32.lt_u (local.get 0) (i32.const {iterations}))))"
    );
    module(imports, &body)
}

#[test]
fn slicing_the_fuel_changes_neither_the_outcome_nor_the_gas() {
    // Memory growth costs fuel too: a grow that needs more than the slice in hand waits for
    // the next slice, it does not fail.
    let grows = module(
        "",
        "(local i32) (loop $l (drop (memory.grow (i32.const 1))) \
         (local.set 0 (i32.add (local.get 0) (i32.const 1))) \
         (br_if $l (i32.lt_u (local.get 0) (i32.const 40))))",
    );
    let unsliced = Limits { fuel_slice: u64::MAX, ..Limits::default() };
    let reference = run_with(&mut Runtime::new(unsliced), &grows, "f", &[], 50_000_000);
    assert!(reference.result.is_ok(), "{:?}", reference.result);
    for slice in [1, 7, 1_000] {
        let limits = Limits { fuel_slice: slice, ..Limits::default() };
        assert_eq!(run_with(&mut Runtime::new(limits), &grows, "f", &[], 50_000_000), reference);
    }

    let wasm = busy_module(20_000);
    let whole = Limits { fuel_slice: u64::MAX, ..Limits::default() };
    let reference = run_with(&mut Runtime::new(whole.clone()), &wasm, "f", &[], 50_000_000);
    assert!(reference.result.is_ok(), "{:?}", reference.result);
    let spent = reference.gas_used.0;
    for slice in [1, 7, 1_000, 65_536] {
        let limits = Limits { fuel_slice: slice, ..Limits::default() };
        let sliced = run_with(&mut Runtime::new(limits.clone()), &wasm, "f", &[], 50_000_000);
        assert_eq!(sliced, reference, "slices of {slice}");
        // Running out part-way: the same error and the whole limit, sliced or not.
        let short = run_with(&mut Runtime::new(limits), &wasm, "f", &[], spent / 2);
        let short_whole = run_with(&mut Runtime::new(whole.clone()), &wasm, "f", &[], spent / 2);
        assert_eq!(short, short_whole, "slices of {slice}, out of gas");
        assert_eq!(short.result, Err(ExecError::OutOfGas { limit: spent / 2 }));
    }
}

/// A deadline that passes at its `n`th look.
struct AfterLooks {
    looks: u32,
    n: u32,
}

impl enigma_runtime::Deadline for AfterLooks {
    fn passed(&mut self) -> bool {
        self.looks += 1;
        self.looks >= self.n
    }
}

#[test]
fn a_deadline_stops_an_endless_task_unfinished_and_a_finished_task_never_sees_it() {
    let limits = Limits { fuel_slice: 10_000, ..Limits::default() };
    let mut rt = Runtime::new(limits);
    let state = ContractState::new();
    let endless = module("", "(loop $l (br $l))");
    let mut deadline = AfterLooks { looks: 0, n: 5 };
    let stopped = rt.execute_within(
        &ContractCode::new(&endless),
        Task::call("f", &[], GasLimit(u64::MAX)),
        &state,
        &mut Fixed,
        &mut deadline,
    );
    let stopped =
        stopped.expect_err("an endless loop with all the gas there is stops at the deadline");
    assert_eq!(deadline.looks, 5, "the deadline is asked between slices until it passes");
    assert!(stopped.gas_used.0 >= 4 * 10_000 && stopped.gas_used.0 < 6 * 10_000, "{stopped:?}");
    assert!(stopped.to_string().contains("time budget"), "{stopped}");

    // A task that finishes within its deadline has exactly the outcome it has without one.
    let wasm = busy_module(1_000);
    let free = run_with(&mut rt, &wasm, "f", &[], 10_000_000);
    let mut far = AfterLooks { looks: 0, n: u32::MAX };
    let fenced = rt
        .execute_within(
            &ContractCode::new(&wasm),
            Task::call("f", &[], GasLimit(10_000_000)),
            &state,
            &mut Fixed,
            &mut far,
        )
        .unwrap();
    assert_eq!(fenced, free);
    assert!(far.looks > 0, "the task spanned several slices");
}

#[test]
fn state_writes_are_bounded_in_keys_and_bytes() {
    let imports = r#"(import "env" "write_state" (func $w (param i32 i32 i32 i32)))
        (import "env" "remove_from_state" (func $rm (param i32 i32)))
        (data (i32.const 100) "\"123456\"")"#;
    // Writes keys 0..n, each the 4 bytes of the counter, with a 8-byte value.
    let writes = |n: u32| {
        format!(
            "(local i32) (loop $l (i32.store (i32.const 0) (local.get 0)) \
             (call $w (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 8)) \
             (local.set 0 (i32.add (local.get 0) (i32.const 1))) \
             (br_if $l (i32.lt_u (local.get 0) (i32.const {n}))))"
        )
    };
    let mut rt = Runtime::new(Limits { max_state_writes: 10, ..Limits::default() });
    assert!(run_with(&mut rt, &module(imports, &writes(10)), "f", &[], 10_000_000).result.is_ok());
    let outcome = run_with(&mut rt, &module(imports, &writes(11)), "f", &[], 10_000_000);
    assert_eq!(outcome.result, Err(ExecError::TooManyStateWrites { max: 10 }));
    assert!(outcome.gas_used.0 < 10_000_000, "a refused write costs its gas, not the limit");
    // Writing one key many times counts once, and so does removing a key written before.
    let same_key = "(local i32) (loop $l \
         (call $w (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 8)) \
         (call $rm (i32.const 0) (i32.const 4)) \
         (local.set 0 (i32.add (local.get 0) (i32.const 1))) \
         (br_if $l (i32.lt_u (local.get 0) (i32.const 50))))";
    let mut rt = Runtime::new(Limits { max_state_writes: 1, ..Limits::default() });
    assert!(run_with(&mut rt, &module(imports, same_key), "f", &[], 10_000_000).result.is_ok());

    // Bytes: each write leaves 4 + 8 = 12 bytes.
    let mut rt = Runtime::new(Limits { max_state_write_bytes: 24, ..Limits::default() });
    assert!(run_with(&mut rt, &module(imports, &writes(2)), "f", &[], 10_000_000).result.is_ok());
    let outcome = run_with(&mut rt, &module(imports, &writes(3)), "f", &[], 10_000_000);
    assert_eq!(
        outcome.result,
        Err(ExecError::TooLarge { what: "the task's state writes", len: 36, max: 24 })
    );
}

#[test]
fn a_missing_key_reads_as_json_null_for_eng_wasm_and_as_nothing_for_the_sdk() {
    let output = |wasm: &[u8]| {
        Runtime::new(Limits::default())
            .execute(
                &ContractCode::new(wasm),
                Task::call("f", &[], GasLimit(1_000_000)),
                &ContractState::new(),
                &mut Fixed,
            )
            .result
            .unwrap()
            .output
    };
    // A module of eng-wasm (no enigma extension imported) reads missing key "m" as Discovery's
    // host answered: the 4 bytes `null`, which eng-wasm's read_state! turns into None.
    let eng_wasm = module(
        r#"
        (import "env" "read_state_len" (func $len (param i32 i32) (result i32)))
        (import "env" "read_state" (func $r (param i32 i32 i32)))
        (import "env" "ret" (func $ret (param i32 i32)))
        (data (i32.const 0) "m")"#,
        r#"
        (i32.store (i32.const 200) (call $len (i32.const 0) (i32.const 1)))
        (call $r (i32.const 0) (i32.const 1) (i32.const 204))
        (call $ret (i32.const 200) (i32.const 8))"#,
    );
    let out = output(&eng_wasm);
    assert_eq!(&out[0..4], &4i32.to_le_bytes());
    assert_eq!(&out[4..8], b"null");

    // A module of the SDK (it imports enigma_state_len) reads it as nothing, as before, and
    // enigma_state_len tells a missing key (-1) from an empty value (0).
    let sdk = module(
        r#"
        (import "env" "write_state" (func $w (param i32 i32 i32 i32)))
        (import "env" "read_state_len" (func $len (param i32 i32) (result i32)))
        (import "env" "enigma_state_len" (func $slen (param i32 i32) (result i32)))
        (import "env" "ret" (func $ret (param i32 i32)))
        (data (i32.const 0) "me")"#,
        r#"
        (i32.store (i32.const 200) (call $len (i32.const 0) (i32.const 1)))
        (i32.store (i32.const 204) (call $slen (i32.const 0) (i32.const 1)))
        (call $w (i32.const 1) (i32.const 1) (i32.const 16) (i32.const 0))
        (i32.store (i32.const 208) (call $slen (i32.const 1) (i32.const 1)))
        (call $ret (i32.const 200) (i32.const 12))"#,
    );
    let out = output(&sdk);
    assert_eq!(&out[0..4], &0i32.to_le_bytes(), "the SDK's read of a missing key: nothing");
    assert_eq!(&out[4..8], &(-1i32).to_le_bytes(), "enigma_state_len: missing");
    assert_eq!(&out[8..12], &0i32.to_le_bytes(), "enigma_state_len: an empty value is set");
}

/// A module whose `call` reads its value (it takes ENG), then pays `amount` grains to 0x11…11
/// `times` times, and whose `deploy` pays once (a constructor holds nothing to pay from).
fn payer(amount: u128, times: usize) -> Vec<u8> {
    paying_module([0x11; 20], amount, times, true)
}

fn paying_module(to: [u8; 20], amount: u128, times: usize, reads_value: bool) -> Vec<u8> {
    let escaped = |bytes: &[u8]| bytes.iter().map(|b| format!("\\{b:02x}")).collect::<String>();
    let read = if reads_value { "(call $value (i32.const 64))" } else { "" };
    let pay = "(call $pay (i32.const 0) (i32.const 32))".repeat(times);
    wat::parse_str(format!(
        r#"(module
            (import "env" "enigma_pay" (func $pay (param i32 i32)))
            (import "env" "enigma_value" (func $value (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "{to}")
            (data (i32.const 32) "{amount}")
            (func (export "deploy") (call $pay (i32.const 0) (i32.const 32)))
            (func (export "call") {read} {pay}))"#,
        to = escaped(&to),
        amount = escaped(&amount.to_be_bytes()),
    ))
    .unwrap()
}

fn run_paying(wasm: &[u8], state: &ContractState, value: u128) -> Outcome {
    Runtime::new(Limits::default()).execute(
        &ContractCode::new(wasm),
        Task::call("f", &[], GasLimit(1_000_000)).after(state).paying(value),
        state,
        &mut Fixed,
    )
}

#[test]
fn a_contract_pays_out_of_what_it_holds_and_never_more() {
    use enigma_runtime::{BALANCE_KEY, stored_balance};
    use enigma_types::{Address, DeltaHash, Grains, payouts::Payout};

    // The task's value is what it can pay from at first: 30 of 100 leaves 70 in the state.
    let mut state = ContractState::new();
    let paid = run_paying(&payer(30, 1), &state, 100).result.unwrap();
    assert_eq!(paid.payouts, vec![Payout { to: Address([0x11; 20]), amount: Grains(30) }]);
    let change = paid.delta.changes.iter().find(|c| c.key == BALANCE_KEY).unwrap();
    assert_eq!(change.value.as_deref(), Some(&70u128.to_be_bytes()[..]));
    state.apply(&paid.delta, DeltaHash([1; 32])).unwrap();
    assert_eq!(stored_balance(&state), 70);

    // Later tasks pay from the stored balance, and not a grain past it.
    assert_eq!(
        run_paying(&payer(71, 1), &state, 0).result,
        Err(ExecError::PayoutBeyondBalance { amount: 71, balance: 70 })
    );
    assert_eq!(
        run_paying(&payer(40, 2), &state, 0).result,
        Err(ExecError::PayoutBeyondBalance { amount: 40, balance: 30 })
    );
    let all = run_paying(&payer(70, 1), &state, 0).result.unwrap();
    assert_eq!(all.payouts.len(), 1);
    state.apply(&all.delta, DeltaHash([2; 32])).unwrap();
    assert_eq!(stored_balance(&state), 0);

    // Paying nothing records nothing; a task makes at most 16 payouts.
    let none = run_paying(&payer(0, 3), &state, 0).result.unwrap();
    assert!(none.payouts.is_empty() && none.delta.is_empty());
    assert_eq!(
        run_paying(&payer(1, 17), &state, 100).result,
        Err(ExecError::TooManyPayouts { max: 16 })
    );
    // A value with no payout still moves into the balance (and so into the delta).
    let kept = run_paying(&payer(0, 1), &state, 5).result.unwrap();
    assert_eq!(kept.delta.changes.len(), 1);

    // A constructor has no value and nothing to pay from, whatever its host claims.
    let deployed = Runtime::new(Limits::default()).execute(
        &ContractCode::new(&payer(1, 1)),
        Task::deploy("construct", &[], GasLimit(1_000_000)).paying(1_000),
        &ContractState::new(),
        &mut Fixed,
    );
    assert_eq!(deployed.result, Err(ExecError::PayoutBeyondBalance { amount: 1, balance: 0 }));
    // Nobody can withdraw from the zero address.
    assert_eq!(
        run_paying(&paying_module([0; 20], 1, 1, true), &state, 5).result,
        Err(ExecError::PayoutToZeroAddress)
    );
    // The error the sender reads names no amount (it may come from secret state).
    let text = ExecError::PayoutBeyondBalance { amount: 71, balance: 70 }.to_string();
    assert!(!text.contains("71") && !text.contains("70"), "{text}");
}

#[test]
fn a_value_sent_to_a_function_that_does_not_take_it_fails_the_task() {
    let ignores = paying_module([0x11; 20], 0, 0, false);
    let state = ContractState::new();
    let outcome = run_paying(&ignores, &state, 5);
    assert_eq!(outcome.result, Err(ExecError::ValueNotTaken { value: 5 }));
    assert!(outcome.gas_used.0 > 0 && outcome.gas_used.0 < 1_000_000, "it pays what it used");
    assert!(run_paying(&ignores, &state, 0).result.is_ok(), "without a value it runs");
    assert!(
        run_paying(&payer(0, 0), &state, 5).result.is_ok(),
        "a function that reads it takes it"
    );
}

#[test]
fn the_balance_key_is_out_of_a_contracts_reach() {
    for (import, body) in [
        (
            r#"(import "env" "write_state" (func $w (param i32 i32 i32 i32)))"#,
            "(call $w (i32.const 64) (i32.const 15) (i32.const 0) (i32.const 16))",
        ),
        (
            r#"(import "env" "read_state_len" (func $r (param i32 i32) (result i32)))"#,
            "(drop (call $r (i32.const 64) (i32.const 15)))",
        ),
        (
            r#"(import "env" "remove_from_state" (func $d (param i32 i32)))"#,
            "(call $d (i32.const 64) (i32.const 15))",
        ),
    ] {
        let wasm = wat::parse_str(format!(
            r#"(module {import}
                (memory (export "memory") 1)
                (data (i32.const 64) "\00enigma/balance")
                (func (export "deploy"))
                (func (export "call") {body}))"#
        ))
        .unwrap();
        assert!(
            matches!(run(&wasm, 1_000_000).result, Err(ExecError::ReservedKey { .. })),
            "{import}"
        );
    }
}

#[test]
fn a_contract_learns_its_verified_caller_or_that_there_is_none() {
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "enigma_sender" (func $sender (param i32) (result i32)))
            (import "env" "ret" (func $ret (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "deploy"))
            (func (export "call")
                (i32.store8 (i32.const 0) (call $sender (i32.const 1)))
                (call $ret (i32.const 0) (i32.const 21))))"#,
    )
    .unwrap();
    let run_as = |caller: Option<enigma_types::Address>| {
        Runtime::new(Limits::default())
            .execute(
                &ContractCode::new(&wasm),
                Task::call("f", &[], GasLimit(1_000_000)).called_by(caller),
                &ContractState::new(),
                &mut Fixed,
            )
            .result
            .unwrap()
            .output
    };
    let mut known = vec![1u8];
    known.extend_from_slice(&[0xab; 20]);
    assert_eq!(run_as(Some(enigma_types::Address([0xab; 20]))), known);
    assert_eq!(run_as(None), vec![0u8; 21], "no caller: 0, and nothing written");
}

#[test]
fn a_query_reaches_only_modules_that_can_tell_it_from_a_task_and_writes_nothing() {
    let query = |wasm: &[u8]| {
        Runtime::new(Limits::default())
            .execute(
                &ContractCode::new(wasm),
                Task::query("f", &[], GasLimit(1_000_000)),
                &ContractState::new(),
                &mut Fixed,
            )
            .result
    };
    // An eng-wasm-style module cannot say which of its functions answer queries: refused.
    assert_eq!(query(&module("", "")), Err(ExecError::NotQueryable));
    // A module that asks `enigma_is_query` (the SDK's dispatch) learns it is one…
    let answers = wat::parse_str(
        r#"(module
            (import "env" "enigma_is_query" (func $q (result i32)))
            (import "env" "ret" (func $ret (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "deploy"))
            (func (export "call")
                (i32.store8 (i32.const 0) (call $q))
                (call $ret (i32.const 0) (i32.const 1))))"#,
    )
    .unwrap();
    assert_eq!(query(&answers).unwrap().output, vec![1]);
    assert_eq!(run(&answers, 1_000_000).result.unwrap().output, vec![0], "a task is no query");
    // …and whatever it tries to change fails the query.
    for (import, body, what) in [
        (
            r#"(import "env" "write_state" (func $w (param i32 i32 i32 i32)))"#,
            "(call $w (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))",
            "write its state",
        ),
        (
            r#"(import "env" "remove_from_state" (func $w (param i32 i32)))"#,
            "(call $w (i32.const 0) (i32.const 1))",
            "write its state",
        ),
        (
            r#"(import "env" "write_eth_bridge" (func $w (param i32 i32 i32)))"#,
            "(call $w (i32.const 0) (i32.const 4) (i32.const 32))",
            "call Ethereum",
        ),
        (
            r#"(import "env" "enigma_pay" (func $w (param i32 i32)))"#,
            "(call $w (i32.const 0) (i32.const 32))",
            "pay out",
        ),
    ] {
        let wasm = wat::parse_str(format!(
            r#"(module
                (import "env" "enigma_is_query" (func $q (result i32)))
                {import}
                (memory (export "memory") 1)
                (data (i32.const 0) "k")
                (data (i32.const 47) "\01")
                (func (export "deploy"))
                (func (export "call") (drop (call $q)) {body}))"#
        ))
        .unwrap();
        assert_eq!(query(&wasm), Err(ExecError::ReadOnly { what }), "{what}");
    }
}

/// ABI encoding of one `string`.
fn abi_string(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[31] = 32;
    out[56..64].copy_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s);
    out.resize(64 + s.len().div_ceil(32) * 32, 0);
    out
}

#[test]
fn a_signed_task_revokes_its_signers_permits_in_any_contracts_state_and_nothing_else_does() {
    use enigma_runtime::{permit_revoked, revoked_permit_key};
    use enigma_types::{Address, DeltaHash, caller::REVOKE_PERMIT};

    // A module that would trap if its code ran: the runtime answers the revocation itself,
    // for any contract (eng-wasm modules included).
    let wasm = module("", "unreachable");
    let user = Address([0xab; 20]);
    let mut state = ContractState::new();
    let revoke = |state: &ContractState, args: &[u8], caller: Option<Address>| {
        Runtime::new(Limits::default()).execute(
            &ContractCode::new(&wasm),
            Task::call(REVOKE_PERMIT, args, GasLimit(1_000_000)).after(state).called_by(caller),
            state,
            &mut Fixed,
        )
    };

    // As any client encodes it (the callable's one `string` parameter).
    let encoded = alloy_sol_types::SolValue::abi_encode_params(&("my dapp".to_string(),));
    assert_eq!(encoded, abi_string(b"my dapp"));
    let done = revoke(&state, &encoded, Some(user));
    assert_eq!(done.gas_used.0, gas::TASK_BASE + gas::REVOKE_PERMIT);
    let delta = done.result.unwrap().delta;
    assert_eq!(delta.changes.len(), 1);
    assert_eq!(delta.changes[0].key, revoked_permit_key(&user, "my dapp"));
    state.apply(&delta, DeltaHash([1; 32])).unwrap();
    assert!(permit_revoked(&state, &user, "my dapp"));
    assert!(!permit_revoked(&state, &user, "other"), "only permits of that name");
    assert!(!permit_revoked(&state, &Address([0xcd; 20]), "my dapp"), "only its signer's");
    // Once more: nothing changes.
    let again = revoke(&state, &abi_string(b"my dapp"), Some(user)).result.unwrap();
    assert!(again.delta.changes.is_empty());
    // The empty name is a name like any.
    let empty = revoke(&state, &abi_string(b""), Some(user)).result.unwrap();
    assert_eq!(empty.delta.changes[0].key, revoked_permit_key(&user, ""));

    // Unsigned: whose permits would it revoke?
    assert!(matches!(
        revoke(&state, &abi_string(b"my dapp"), None).result,
        Err(ExecError::NeedsCaller { what: "revoke a permit" })
    ));
    // Arguments that are not one string of at most 64 bytes.
    for bad in [
        abi_string(&[b'x'; 65]),
        abi_string(&[0xff, 0xfe]),
        vec![0u8; 31],
        abi_string(b"a")[32..].to_vec(),
    ] {
        let e = revoke(&state, &bad, Some(user)).result.unwrap_err();
        assert!(matches!(e, ExecError::BadArguments { .. }), "{e}");
    }
    let mut long = abi_string(b"abc");
    long[63] = 200; // a length past the arguments
    assert!(matches!(
        revoke(&state, &long, Some(user)).result,
        Err(ExecError::BadArguments { .. })
    ));
    // Not as a query, not with a value, not without the gas.
    let args = abi_string(b"my dapp");
    let query = Runtime::new(Limits::default()).execute(
        &ContractCode::new(&wasm),
        Task::query(REVOKE_PERMIT, &args, GasLimit(1_000_000)).called_by(Some(user)),
        &state,
        &mut Fixed,
    );
    assert!(matches!(query.result, Err(ExecError::ReadOnly { what: "revoke a permit" })));
    let valued = Runtime::new(Limits::default()).execute(
        &ContractCode::new(&wasm),
        Task::call(REVOKE_PERMIT, &args, GasLimit(1_000_000)).paying(5).called_by(Some(user)),
        &state,
        &mut Fixed,
    );
    assert!(matches!(valued.result, Err(ExecError::ValueNotTaken { value: 5 })));
    let starved = Runtime::new(Limits::default()).execute(
        &ContractCode::new(&wasm),
        Task::call(REVOKE_PERMIT, &args, GasLimit(gas::TASK_BASE + 1)).called_by(Some(user)),
        &state,
        &mut Fixed,
    );
    assert_eq!(starved.gas_used.0, gas::TASK_BASE + 1);
    assert!(matches!(starved.result, Err(ExecError::OutOfGas { .. })));
    // A contract cannot forge a revocation: the key is the runtime's.
    assert!(revoked_permit_key(&user, "x").starts_with(enigma_runtime::RESERVED_PREFIX));
}

#[test]
fn modules_wasmi_2_0_0_panicked_on_compile_and_a_local_stored_into_itself_is_right() {
    // Found by the `runtime_wasm` fuzz target (twice, two modules): wasmi 2.0.0's translator
    // reached an `unreachable!` on a store whose address and value are the same local held in its
    // integer register, at an offset of 64 KiB or more (`local.tee $p; local.get $p; i32.store
    // offset=70000`). An enclave built with `panic_abort` would have aborted on any module with
    // one. The vendored wasmi is fixed (vendor/wasmi/PATCHED.md): those modules compile, and the
    // store writes what it should.
    let mut rt = Runtime::new(Limits::default());
    for file in ["translator-panic.wasm", "translator-panic-2.wasm"] {
        let path = format!("{}/../../testdata/wasm/{file}", env!("CARGO_MANIFEST_DIR"));
        let found = std::fs::read(path).unwrap();
        // The engine answers (the first is not even valid wasm: wasmi translates as it
        // validates, so the panic came first); no "engine failed".
        if let Err(ModuleError::Invalid(why)) = rt.validate(&found) {
            assert!(!why.contains("engine failed"), "{file}: {why}");
        }
    }
    // Each store width, its address and value one local that a load left in the register (its
    // slot held another value just before), into a word filled with ones: a stale slot, a wrong
    // width or a wrong value reads back wrong and traps (which the test sees as an error).
    let mut body = String::from("(i32.store (i32.const 0) (i32.const 0x103))");
    for (store, expected) in
        [("i32.store", "0x103"), ("i32.store16", "0xffff0103"), ("i32.store8", "0xffffff03")]
    {
        body += &format!(
            "(i32.store offset=70000 (i32.const 0x103) (i32.const -1))
             (local.set $p (i32.const 7))
             ({store} offset=70000 (local.tee $p (i32.load (i32.const 0))) (local.get $p))
             (if (i32.ne (i32.load offset=70000 (i32.const 0x103)) (i32.const {expected}))
               (then unreachable))"
        );
    }
    let wasm = wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 2)
            (func (export "deploy"))
            (func (export "call") (local $p i32) {body}))"#
    ))
    .unwrap();
    let outcome = run_with(&mut rt, &wasm, "f", &[], 1_000_000);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    // The same runtime goes on with other modules.
    let honest = module("", "(drop (i32.add (i32.const 1) (i32.const 2)))");
    assert!(run_with(&mut rt, &honest, "f", &[], 1_000_000).result.is_ok());
}
