//! Builds secret contracts: `cargo build --release --target wasm32-unknown-unknown` with
//! size-optimized settings, returning the path of each `.wasm` module. The CLI's
//! `enigma contract build` and the tests share this function.
//!
//! ```no_run
//! use enigma_contract_build::{BuildOptions, build};
//!
//! let built = build(&BuildOptions::new("examples/contracts/Cargo.toml"))?;
//! for contract in &built {
//!     println!("{} -> {} ({} bytes)", contract.name, contract.wasm.display(), contract.size);
//! }
//! # Ok::<(), enigma_contract_build::Error>(())
//! ```
//!
//! The settings applied on top of the manifest's own release profile: `opt-level = "z"`,
//! `lto = true`, `codegen-units = 1`, `panic = "abort"`, `strip = true`, `debug = false`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// The target every contract is built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cargo` could not be started.
    #[error("could not run cargo ({0}); is the Rust toolchain installed and on PATH?")]
    Spawn(#[source] std::io::Error),
    /// The manifest does not exist.
    #[error(
        "no Cargo.toml at {0}; point to the contract crate's (or contracts workspace's) manifest"
    )]
    NoManifest(PathBuf),
    /// Compilation failed; cargo's diagnostics were printed to stderr.
    #[error(
        "building {manifest} for {TARGET} failed (exit {status}); see the compiler errors above. \
         If the target is missing: rustup target add {TARGET}"
    )]
    Failed {
        /// The manifest built.
        manifest: PathBuf,
        /// cargo's exit status.
        status: String,
    },
    /// The build succeeded but produced no `.wasm`.
    #[error(
        "building {0} produced no .wasm file; a contract crate needs `crate-type = [\"cdylib\"]`"
    )]
    NoWasm(PathBuf),
    /// Reading cargo's output failed.
    #[error("reading cargo's output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What to build and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The contract crate's or contracts workspace's `Cargo.toml`.
    pub manifest: PathBuf,
    /// Where cargo puts its output (`<manifest dir>/target` if `None`).
    pub target_dir: Option<PathBuf>,
    /// Build only these packages (all of the workspace's if empty).
    pub packages: Vec<String>,
    /// Pass `--locked` (CI and tests: the lockfile must already be right).
    pub locked: bool,
    /// Show cargo's progress output.
    pub verbose: bool,
}

impl BuildOptions {
    /// The repository's example contracts (`<repo_root>/examples/contracts`), built into
    /// `<repo_root>/target/contracts` with their committed lockfile: what the tests, benchmarks
    /// and `enigma devnet --example` use.
    pub fn examples(repo_root: impl AsRef<Path>) -> Self {
        let root = repo_root.as_ref();
        Self {
            target_dir: Some(root.join("target/contracts")),
            locked: true,
            ..Self::new(root.join("examples/contracts/Cargo.toml"))
        }
    }

    /// Options for the manifest at `manifest`.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            target_dir: None,
            packages: Vec::new(),
            locked: false,
            verbose: false,
        }
    }
}

/// A built contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The package name.
    pub name: String,
    /// The module.
    pub wasm: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Builds every contract the manifest describes (or the selected packages) and returns their
/// modules.
pub fn build(options: &BuildOptions) -> Result<Vec<Built>, Error> {
    if !options.manifest.is_file() {
        return Err(Error::NoManifest(options.manifest.clone()));
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("build")
        .arg("--release")
        .args(["--target", TARGET])
        .arg("--manifest-path")
        .arg(&options.manifest)
        .args(["--message-format", "json-render-diagnostics"]);
    for (key, value) in [
        ("opt-level", "\"z\""),
        ("lto", "true"),
        ("codegen-units", "1"),
        ("panic", "\"abort\""),
        ("strip", "true"),
        ("debug", "false"),
    ] {
        cmd.arg("--config").arg(format!("profile.release.{key}={value}"));
    }
    if let Some(dir) = &options.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    for package in &options.packages {
        cmd.args(["--package", package]);
    }
    if options.locked {
        cmd.arg("--locked");
    }
    if !options.verbose {
        cmd.arg("--quiet");
    }
    // A build started from inside another cargo invocation (tests, build scripts) must not
    // inherit its target directory or flags.
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    let mut built = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            if let Some(found) = artifact(&line?) {
                built.push(found);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(Error::Failed {
            manifest: options.manifest.clone(),
            status: status.to_string(),
        });
    }
    if built.is_empty() {
        return Err(Error::NoWasm(options.manifest.clone()));
    }
    Ok(built)
}

/// A `.wasm` artifact from one line of cargo's JSON messages.
fn artifact(line: &str) -> Option<Built> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let name = message.get("target")?.get("name")?.as_str()?.to_string();
    let wasm = message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)?;
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    Some(Built { name, wasm, size })
}

/// The module of package `name` among `built`.
pub fn find<'a>(built: &'a [Built], name: &str) -> Option<&'a Built> {
    let wanted = name.replace('-', "_");
    built.iter().find(|b| b.name.replace('-', "_") == wanted)
}

/// The path of a built module inside `target_dir` for a package, without building (for tools
/// that only need to locate it).
#[must_use]
pub fn wasm_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir.join(TARGET).join("release").join(format!("{}.wasm", package.replace('-', "_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_lines_are_parsed() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"calculator"},"filenames":["/t/calculator.d","/t/calculator.wasm"]}"#;
        let built = artifact(line).unwrap();
        assert_eq!(built.name, "calculator");
        assert_eq!(built.wasm, PathBuf::from("/t/calculator.wasm"));
        assert!(artifact(r#"{"reason":"build-finished","success":true}"#).is_none());
        assert!(artifact("not json").is_none());
    }

    #[test]
    fn a_missing_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&BuildOptions::new(dir.path().join("Cargo.toml"))).unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
    }
}
