// The WebAssembly core against the known answers the Rust crates are checked against
// (testdata/js-vectors.json, crates/wasm/tests/vectors.rs): the same keys and inputs give the
// same shared key, envelope, hashes, signature and selection, and Rust's ciphertexts open here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as enigma from '../pkg/enigma_wasm.js';
import * as hardware from '../pkg/hardware/enigma_wasm_attestation.js';

const here = dirname(fileURLToPath(import.meta.url));
enigma.initSync({ module: readFileSync(join(here, '../pkg/enigma_wasm_bg.wasm')) });
hardware.initSync({ module: readFileSync(join(here, '../pkg/hardware/enigma_wasm_attestation_bg.wasm')) });
const v = JSON.parse(readFileSync(join(here, '../../../testdata/js-vectors.json'), 'utf8'));

const bytes = (hex) => Uint8Array.from(Buffer.from(hex.replace(/^0x/, ''), 'hex'));
const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
const text = (s) => new TextEncoder().encode(s);

test('keys, addresses and signatures match Rust', () => {
  const user = enigma.Keys.fromSecret(bytes(v.user_secret));
  assert.equal(hex(user.publicKey()), v.user_public);
  assert.equal(user.address(), v.user_address);
  assert.equal(hex(user.signDigest(bytes(v.digest))), v.signature, 'RFC 6979: deterministic');
  assert.equal(enigma.recoverAddress(bytes(v.digest), bytes(v.signature)), v.user_address);
  assert.equal(hex(enigma.keccak256(bytes(v.keccak_input))), v.keccak);
});

test("Rust's ciphertexts open here, under their own field only, and ours open back", () => {
  const user = enigma.Keys.fromSecret(bytes(v.user_secret));
  const worker = enigma.Keys.fromSecret(bytes(v.worker_secret));
  const toWorker = user.sharedKey(bytes(v.worker_public));
  const atWorker = worker.sharedKey(bytes(v.user_public));
  const open = (key, name, field) => key.decryptField(bytes(v[name]), v.contract, v.task, v.value, field);
  assert.deepEqual(open(atWorker, 'encrypted_fn', 'callable'), text(v.callable));
  assert.deepEqual(open(atWorker, 'encrypted_args', 'arguments'), bytes(v.args));
  assert.deepEqual(open(toWorker, 'encrypted_output', 'output'), bytes(v.output));
  assert.throws(() => open(atWorker, 'encrypted_fn', 'arguments'), /does not open/);
  assert.throws(
    () => atWorker.decryptField(bytes(v.encrypted_fn), v.contract, v.task, '1', 'callable'),
    /does not open/,
    'another value',
  );
  assert.throws(() => toWorker.openOutput(bytes(v.encrypted_output), v.contract, v.task, v.value), /padding/, 'not padded');
  const sealed = toWorker.encryptField(text('hello'), v.contract, v.task, v.value, 'caller');
  assert.deepEqual(atWorker.decryptField(sealed, v.contract, v.task, v.value, 'caller'), text('hello'));
});

test('the inputs hash, the query hash and the query task id match Rust', () => {
  const [f, a, pub] = [bytes(v.encrypted_fn), bytes(v.encrypted_args), bytes(v.user_public)];
  assert.equal(hex(enigma.inputsHashCompute(f, a, v.contract, pub)), v.inputs_hash);
  assert.equal(hex(enigma.queryHash(v.contract, bytes(v.query_id), f, a, pub)), v.query_hash);
  assert.equal(enigma.queryTaskId(bytes(v.query_id)), v.query_task_id);
});

test('worker selection matches Rust (and Solidity, which Rust is checked against)', () => {
  const got = enigma.selectWorkers(bytes(v.seed), v.contract, v.workers, v.stakes, v.group_size);
  assert.deepEqual(got, v.selected);
});

test('bad input throws an error that says what was wrong', () => {
  assert.throws(() => enigma.Keys.fromSecret(new Uint8Array(31)), /secret key/);
  assert.throws(() => enigma.recoverAddress(new Uint8Array(31), bytes(v.signature)), /32 bytes/);
  assert.throws(() => enigma.selectWorkers(bytes(v.seed), v.contract, v.workers, [], 1), /one stake per worker/);
  assert.throws(() => enigma.selectWorkers(bytes(v.seed), 'nope', v.workers, v.stakes, 1), /contract address/);
  const user = enigma.Keys.fromSecret(bytes(v.user_secret));
  assert.throws(() => user.sharedKey(new Uint8Array(64)), /public key/);
  const key = user.sharedKey(bytes(v.worker_public));
  assert.throws(() => key.encryptField(text('x'), v.contract, v.task, '-1', 'callable'), /grains/);
  assert.throws(() => key.encryptField(text('x'), v.contract, v.task, '0', 'body'), /unknown task field/);
});

test('fresh keys differ and work', () => {
  const [a, b] = [enigma.Keys.generate(), enigma.Keys.generate()];
  assert.notEqual(hex(a.publicKey()), hex(b.publicKey()));
  const sealed = a.sharedKey(b.publicKey()).encryptField(text('x'), v.contract, v.task, '0', 'output');
  assert.deepEqual(b.sharedKey(a.publicKey()).decryptField(sealed, v.contract, v.task, '0', 'output'), text('x'));
});

test("a worker's hardware attestation is judged by the same code as in Rust (the second module)", () => {
  // The core, which every page loads, judges simulation evidence only: hardware evidence is
  // the hardware-attestation module's.
  assert.throws(
    () => enigma.checkWorker(v.ias_kind, bytes(v.ias_evidence), v.ias_policy, v.ias_signer, v.ias_at),
    /simulation evidence only/,
  );
  const verdict = hardware.checkWorker(v.ias_kind, bytes(v.ias_evidence), v.ias_policy, v.ias_signer, v.ias_at);
  assert.equal(verdict, v.ias_verdict);
  const policy = JSON.parse(v.ias_policy);
  assert.throws(
    () => hardware.checkWorker(v.ias_kind, bytes(v.ias_evidence), JSON.stringify({ ...policy, allow_debug: false }), v.ias_signer, v.ias_at),
    /debug/,
  );
  assert.throws(
    () => hardware.checkWorker(v.ias_kind, bytes(v.ias_evidence), v.ias_policy, v.user_address, v.ias_at),
    /vouches for/,
  );
  assert.throws(
    () => hardware.checkWorker(v.ias_kind, bytes(v.ias_evidence), v.ias_policy, v.ias_signer, v.ias_at + 2 * 86400),
    /attestation/,
    'too old',
  );
  assert.throws(
    () => hardware.checkWorker(v.ias_kind, bytes(v.ias_evidence), v.ias_policy, v.ias_signer, v.ias_at, v.user_address, v.principal),
    /does not bind|report data/,
    "Discovery's report data binds no enigma operator",
  );
  const tampered = bytes(v.ias_evidence);
  tampered[tampered.length - 200] ^= 1;
  assert.throws(() => hardware.checkWorker(v.ias_kind, tampered, v.ias_policy, v.ias_signer, v.ias_at));
});

test('a query: its signature, its caller field, the answer and its signer match Rust', () => {
  const user = enigma.Keys.fromSecret(bytes(v.user_secret));
  assert.equal(enigma.workerKeySigner(bytes(v.io_key), bytes(v.io_key_signature)), v.worker_address);
  const digest = enigma.queryDigest(v.principal, v.contract, bytes(v.query_hash));
  assert.equal(hex(digest), v.query_digest);
  assert.equal(hex(enigma.queryCallerField(user.signDigest(digest))), v.query_caller_field);
  assert.equal(hex(enigma.queryCallerField(undefined)), v.anonymous_caller_field);
  assert.equal(v.query_caller_field.length, v.anonymous_caller_field.length, 'one size, whoever asks');
  assert.equal(hex(enigma.outputHash(bytes(v.encrypted_output))), v.output_hash);
  const signer = (caller, gas = v.answer_gas) =>
    enigma.queryAnswerSigner(
      v.contract, v.answer_code_hash, v.answer_delta_count, v.answer_delta_hash,
      bytes(v.query_hash), bytes(v.output_hash), true, gas, caller, bytes(v.answer_signature),
    );
  assert.equal(signer(v.user_address), v.worker_address);
  assert.notEqual(signer('0x0000000000000000000000000000000000000000'), v.worker_address, 'told another caller');
  assert.notEqual(signer(v.user_address, v.answer_gas + 1), v.worker_address, 'another gas');
  assert.throws(() => signer(v.user_address, 1.5), /whole number/);
});
