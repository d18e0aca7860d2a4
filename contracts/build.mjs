#!/usr/bin/env node
// Compiles every src/*.sol with the pinned solc-js (standard JSON) and writes one artifact per
// deployable (non-abstract) contract to artifacts/<ContractName>.json:
//   { "contractName", "abi", "bytecode", "deployedBytecode" }   (bytecode as 0x-prefixed hex)
//
//   node build.mjs           compile and (re)write artifacts/
//   node build.mjs --check   compile in memory; exit 1 naming every artifact that differs from
//                            the committed one (or is missing or stale)
//
// The output depends only on the sources and the pinned compiler: no timestamps, metadata with
// `bytecodeHash: "none"`, keys in a fixed order. Interfaces and libraries (all of ours are
// internal, so nothing needs linking) get no artifact.

import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, 'src');
const ARTIFACTS = join(ROOT, 'artifacts');
const PINNED_SOLC = '0.8.37';
// EIP-170: the largest deployable runtime code.
const MAX_DEPLOYED_SIZE = 24576;

const SETTINGS = {
  // The receipt-batch ABI needs more stack slots than the legacy pipeline can reach.
  viaIR: true,
  evmVersion: 'cancun',
  // 150 rather than 200: Enigma sits close to EIP-170's limit, and 150 saves ~110 bytes of it
  // for a few gas per call.
  optimizer: { enabled: true, runs: 150 },
  metadata: { bytecodeHash: 'none' },
  outputSelection: {
    '*': {
      '': ['ast'],
      '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'],
    },
  },
};

function log(message) {
  process.stderr.write(`${message}\n`);
}

function fail(message) {
  log(`error: ${message}`);
  process.exit(1);
}

function compile() {
  const version = solc.version();
  if (!version.startsWith(`${PINNED_SOLC}+`)) {
    fail(`solc-js ${version} is installed but ${PINNED_SOLC} is pinned; run \`npm ci\` in contracts/`);
  }
  const files = readdirSync(SRC).filter((f) => f.endsWith('.sol')).sort();
  if (files.length === 0) fail(`no .sol files in ${SRC}`);
  const sources = {};
  for (const file of files) {
    sources[`src/${file}`] = { content: readFileSync(join(SRC, file), 'utf8') };
  }
  const { runs } = SETTINGS.optimizer;
  log(`compiling ${files.length} sources with solc ${version} (viaIR, optimizer runs ${runs})`);
  const started = Date.now();
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  log(`compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const problems = output.errors ?? [];
  for (const p of problems) log(p.formattedMessage.trimEnd());
  if (problems.some((p) => p.severity === 'error')) fail('compilation failed');
  return output;
}

// Imports outside src/ (none today) may only come from this directory tree.
function findImport(path) {
  const full = resolve(ROOT, path);
  if (!full.startsWith(ROOT + sep)) return { error: `import outside contracts/: ${path}` };
  if (!existsSync(full)) return { error: `not found: ${path}` };
  return { contents: readFileSync(full, 'utf8') };
}

function contractKinds(output) {
  const kinds = new Map();
  for (const [source, { ast }] of Object.entries(output.sources)) {
    for (const node of ast.nodes) {
      if (node.nodeType === 'ContractDefinition') {
        kinds.set(`${source}:${node.name}`, node.abstract ? 'abstract' : node.contractKind);
      }
    }
  }
  return kinds;
}

function artifacts(output) {
  const kinds = contractKinds(output);
  const result = new Map();
  for (const [source, contracts] of Object.entries(output.contracts)) {
    for (const [name, contract] of Object.entries(contracts)) {
      const kind = kinds.get(`${source}:${name}`);
      if (kind !== 'contract') continue;
      if (result.has(name)) fail(`two contracts are named ${name}; artifact names must be unique`);
      const bytecode = contract.evm.bytecode.object;
      const deployed = contract.evm.deployedBytecode.object;
      if (/__\$[0-9a-f]{34}\$__/.test(bytecode)) {
        fail(`${name} needs library linking, which this build does not do`);
      }
      const size = deployed.length / 2;
      const init = bytecode.length / 2;
      log(`  ${name.padEnd(20)} deployed ${String(size).padStart(6)} bytes, init ${String(init).padStart(6)} bytes`);
      if (size > MAX_DEPLOYED_SIZE) {
        fail(`${name} is ${size} bytes deployed; the EIP-170 limit is ${MAX_DEPLOYED_SIZE}`);
      }
      const artifact = {
        contractName: name,
        abi: contract.abi,
        bytecode: `0x${bytecode}`,
        deployedBytecode: `0x${deployed}`,
      };
      result.set(name, `${JSON.stringify(artifact, null, 2)}\n`);
    }
  }
  return new Map([...result.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function committed() {
  if (!existsSync(ARTIFACTS)) return new Map();
  return new Map(
    readdirSync(ARTIFACTS)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => [f.slice(0, -'.json'.length), readFileSync(join(ARTIFACTS, f), 'utf8')]),
  );
}

const check = process.argv.includes('--check');
const built = artifacts(compile());
const existing = committed();

if (check) {
  const differing = [];
  for (const [name, text] of built) {
    if (!existing.has(name)) {
      differing.push(`artifacts/${name}.json is missing`);
    } else if (existing.get(name) !== text) {
      differing.push(`artifacts/${name}.json differs from what the sources compile to`);
    }
  }
  for (const name of existing.keys()) {
    if (!built.has(name)) differing.push(`artifacts/${name}.json has no contract in src/ (stale)`);
  }
  if (differing.length > 0) {
    for (const d of differing) log(`  ${d}`);
    fail('artifacts are out of date; run `node build.mjs` in contracts/ and commit artifacts/');
  }
  log(`all ${built.size} artifacts match the sources`);
} else {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const [name, text] of built) {
    const path = join(ARTIFACTS, `${name}.json`);
    const changed = existing.get(name) !== text;
    if (changed) writeFileSync(path, text);
    log(`  ${changed ? 'wrote' : 'unchanged'} ${relative(ROOT, path)}`);
  }
  for (const name of existing.keys()) {
    if (!built.has(name)) log(`  warning: artifacts/${name}.json has no contract in src/; delete it`);
  }
}
