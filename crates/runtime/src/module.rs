//! Deploy-time validation of a contract module and the cache of compiled modules.

use alloc::{collections::BTreeMap, string::ToString};

use enigma_types::CodeHash;
use wasmi::{Engine, ExternType, Module, ValType};

use crate::{Limits, ModuleError};

/// A host function's parameter and result types.
pub(crate) struct HostSig {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [ValType],
    pub(crate) results: &'static [ValType],
    pub(crate) text: &'static str,
}

const I: ValType = ValType::I32;

/// Every function the host provides under `env`.
pub(crate) const HOST_FUNCTIONS: &[HostSig] = &[
    HostSig { name: "fetch_function_name_length", params: &[], results: &[I], text: "() -> i32" },
    HostSig { name: "fetch_function_name", params: &[I], results: &[], text: "(i32)" },
    HostSig { name: "fetch_args_length", params: &[], results: &[I], text: "() -> i32" },
    HostSig { name: "fetch_args", params: &[I], results: &[], text: "(i32)" },
    HostSig { name: "ret", params: &[I, I], results: &[], text: "(i32, i32)" },
    HostSig {
        name: "write_state",
        params: &[I, I, I, I],
        results: &[],
        text: "(i32, i32, i32, i32)",
    },
    HostSig { name: "read_state_len", params: &[I, I], results: &[I], text: "(i32, i32) -> i32" },
    HostSig { name: "read_state", params: &[I, I, I], results: &[], text: "(i32, i32, i32)" },
    HostSig { name: "remove_from_state", params: &[I, I], results: &[], text: "(i32, i32)" },
    HostSig { name: "write_eth_bridge", params: &[I, I, I], results: &[], text: "(i32, i32, i32)" },
    HostSig { name: "rand", params: &[I, I], results: &[], text: "(i32, i32)" },
    HostSig { name: "encrypt", params: &[I, I, I, I], results: &[], text: "(i32, i32, i32, i32)" },
    HostSig { name: "decrypt", params: &[I, I, I, I], results: &[], text: "(i32, i32, i32, i32)" },
    HostSig { name: "eprint", params: &[I, I], results: &[], text: "(i32, i32)" },
    HostSig { name: "gas", params: &[I], results: &[], text: "(i32)" },
    HostSig { name: "enigma_fail", params: &[I, I, I], results: &[], text: "(i32, i32, i32)" },
    HostSig { name: "enigma_state_len", params: &[I, I], results: &[I], text: "(i32, i32) -> i32" },
    HostSig { name: "enigma_value", params: &[I], results: &[], text: "(i32)" },
    HostSig { name: "enigma_balance", params: &[I], results: &[], text: "(i32)" },
    HostSig { name: "enigma_pay", params: &[I, I], results: &[], text: "(i32, i32)" },
    HostSig { name: "enigma_sender", params: &[I], results: &[I], text: "(i32) -> i32" },
    HostSig { name: "enigma_is_query", params: &[], results: &[I], text: "() -> i32" },
];

/// What validation learned about a module's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemorySource {
    /// The module imports `env.memory` with this many initial pages.
    Imported { initial_pages: u32, maximum: Option<u32> },
    /// The module defines and exports `memory`.
    Exported,
}

/// Checks the raw section layout: the header, that every section fits, and no start section.
fn scan_sections(code: &[u8]) -> Result<(), ModuleError> {
    const HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let mut rest = code.strip_prefix(&HEADER[..]).ok_or(ModuleError::NotWasm)?;
    while let Some((&id, tail)) = rest.split_first() {
        let (size, tail) = read_leb_u32(tail)
            .ok_or(ModuleError::Malformed("a section size is not a valid LEB128 u32"))?;
        if id == 8 {
            return Err(ModuleError::HasStartFunction);
        }
        rest = tail
            .get(size as usize..)
            .ok_or(ModuleError::Malformed("a section runs past the end of the module"))?;
    }
    Ok(())
}

fn read_leb_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u32::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..)?));
        }
    }
    None
}

/// Compiles and validates `code` against the host ABI and the limits.
pub(crate) fn compile(
    engine: &Engine,
    code: &[u8],
    limits: &Limits,
) -> Result<(Module, MemorySource), ModuleError> {
    if code.len() > limits.max_code_bytes {
        return Err(ModuleError::TooLarge { size: code.len(), max: limits.max_code_bytes });
    }
    scan_sections(code)?;
    // Defence in depth: should the engine panic while compiling, the module is refused instead.
    // wasmi 2.0.0's translator did on some modules (found by the `runtime_wasm` fuzz
    // target); the vendored wasmi is fixed (vendor/wasmi/PATCHED.md). Where panics abort (an SGX
    // build) this catch does not help: see docs/hardware.md.
    let compiled =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Module::new(engine, code)))
            .map_err(|_| {
                ModuleError::Invalid(
                    "the contract engine failed while compiling this module (an engine fault, \
                 refused rather than run); change the code or report it"
                        .into(),
                )
            })?;
    let module = compiled.map_err(|e| ModuleError::Invalid(e.to_string()))?;

    let mut memory = None;
    for import in module.imports() {
        if import.module() != "env" {
            return Err(ModuleError::ForeignImport {
                module: import.module().into(),
                name: import.name().into(),
            });
        }
        let name = import.name();
        match import.ty() {
            ExternType::Memory(ty) if name == "memory" => {
                let pages = ty.minimum();
                if pages > u64::from(limits.max_memory_pages) {
                    return Err(ModuleError::MemoryTooLarge {
                        pages,
                        max: limits.max_memory_pages,
                    });
                }
                memory = Some(MemorySource::Imported {
                    initial_pages: pages as u32,
                    maximum: ty.maximum().map(|m| m.min(u64::from(u32::MAX)) as u32),
                });
            }
            ExternType::Func(ty) => {
                let sig = HOST_FUNCTIONS
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| ModuleError::UnknownImport { name: name.into() })?;
                if ty.params() != sig.params || ty.results() != sig.results {
                    return Err(ModuleError::ImportType { name: name.into(), expected: sig.text });
                }
            }
            _ => return Err(ModuleError::UnknownImport { name: name.into() }),
        }
    }

    if memory.is_none() {
        match module.get_export("memory") {
            Some(ExternType::Memory(ty)) => {
                let pages = ty.minimum();
                if pages > u64::from(limits.max_memory_pages) {
                    return Err(ModuleError::MemoryTooLarge {
                        pages,
                        max: limits.max_memory_pages,
                    });
                }
                memory = Some(MemorySource::Exported);
            }
            _ => return Err(ModuleError::NoMemory),
        }
    }

    for entry in ["deploy", "call"] {
        match module.get_export(entry) {
            Some(ExternType::Func(ty)) if ty.params().is_empty() && ty.results().is_empty() => {}
            _ => return Err(ModuleError::MissingExport(entry)),
        }
    }
    let memory = memory.ok_or(ModuleError::NoMemory)?;
    Ok((module, memory))
}

/// Compiled modules by code hash, least recently used evicted first.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    entries: BTreeMap<CodeHash, Cached>,
    clock: u64,
    capacity: usize,
}

#[derive(Debug)]
struct Cached {
    module: Module,
    memory: MemorySource,
    last_used: u64,
}

impl ModuleCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: BTreeMap::new(), clock: 0, capacity }
    }

    pub(crate) fn contains(&self, hash: &CodeHash) -> bool {
        self.entries.contains_key(hash)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The compiled module for `hash`, compiling `code` on a miss.
    pub(crate) fn get_or_compile(
        &mut self,
        engine: &Engine,
        hash: &CodeHash,
        code: &[u8],
        limits: &Limits,
    ) -> Result<(Module, MemorySource), ModuleError> {
        self.clock += 1;
        if let Some(hit) = self.entries.get_mut(hash) {
            hit.last_used = self.clock;
            return Ok((hit.module.clone(), hit.memory));
        }
        let (module, memory) = compile(engine, code, limits)?;
        if self.capacity == 0 {
            return Ok((module, memory));
        }
        if self.entries.len() >= self.capacity {
            let oldest = self.entries.iter().min_by_key(|(_, c)| c.last_used).map(|(h, _)| *h);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries
            .insert(*hash, Cached { module: module.clone(), memory, last_used: self.clock });
        Ok((module, memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_reads_and_bounds() {
        assert_eq!(read_leb_u32(&[0x05, 9]), Some((5, &[9u8][..])));
        assert_eq!(read_leb_u32(&[0xe5, 0x8e, 0x26]), Some((624_485, &[][..])));
        assert_eq!(read_leb_u32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), None);
        assert_eq!(read_leb_u32(&[0x80]), None);
    }

    #[test]
    fn section_scan_rejects_bad_headers_and_overruns() {
        assert_eq!(scan_sections(b"\0asm\x02\0\0\0"), Err(ModuleError::NotWasm));
        assert_eq!(scan_sections(b"\0asm\x01\0\0\0"), Ok(()));
        assert!(matches!(
            scan_sections(b"\0asm\x01\0\0\0\x01\x05\0"),
            Err(ModuleError::Malformed(_))
        ));
        assert_eq!(scan_sections(b"\0asm\x01\0\0\0\x08\x01\0"), Err(ModuleError::HasStartFunction));
    }
}
