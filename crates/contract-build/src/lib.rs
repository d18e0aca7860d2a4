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
//!
//! A toolchain without the `wasm32-unknown-unknown` target gets it first: [`build`] asks the
//! toolchain that will build the manifest where the target's libraries are, and if they are not
//! there runs `rustup target add wasm32-unknown-unknown`, saying so in one line.

use std::{
    ffi::{OsStr, OsString},
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
    /// The target is missing and rustup could not add it.
    #[error(
        "the Rust toolchain has no {TARGET} target and it could not be added ({0}); install it \
         for the toolchain that builds contracts (with rustup: rustup target add {TARGET})"
    )]
    NoTarget(String),
    /// Compilation failed; cargo's diagnostics were printed to stderr.
    #[error(
        "building {manifest} for {TARGET} failed (exit {status}); see the compiler errors above"
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
    let dir =
        options.manifest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    ensure_target(
        dir,
        &std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()),
        &std::env::var_os("RUSTUP").unwrap_or_else(|| "rustup".into()),
        // Said where cargo's own progress goes (its stderr is this process's).
        #[allow(clippy::print_stderr)]
        |line| eprintln!("{line}"),
    )?;
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

/// Makes sure the toolchain that builds in `dir` (its `rust-toolchain.toml`, if any, chooses it)
/// has the wasm32 target, adding it with `rustup` if not. `say` gets one line when it installs.
/// Returns whether it installed the target. When `rustc` cannot be asked, nothing is checked
/// (the build then says what is wrong).
pub fn ensure_target(
    dir: &Path,
    rustc: &OsStr,
    rustup: &OsStr,
    mut say: impl FnMut(&str),
) -> Result<bool, Error> {
    if target_installed(dir, rustc) != Some(false) {
        return Ok(false);
    }
    say(&format!("the {TARGET} target is missing; adding it: rustup target add {TARGET}"));
    let status = match Command::new(rustup)
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
    {
        Ok(status) => status,
        // A toolchain not from rustup may have the target some other way: let cargo say.
        Err(e) => {
            say(&format!("rustup could not be run ({e}); building anyway"));
            return Ok(false);
        }
    };
    if !status.success() {
        return Err(Error::NoTarget(format!("rustup target add exited with {status}")));
    }
    if target_installed(dir, rustc) == Some(false) {
        return Err(Error::NoTarget(
            "rustup added it, but not to the toolchain that builds here".into(),
        ));
    }
    Ok(true)
}

/// Whether the target's libraries are where `rustc` (run in `dir`) would look for them; `None`
/// if it cannot be asked.
fn target_installed(dir: &Path, rustc: &OsStr) -> Option<bool> {
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let libdir = PathBuf::from(OsString::from(String::from_utf8(out.stdout).ok()?.trim()));
    Some(libdir.read_dir().is_ok_and(|mut entries| entries.next().is_some()))
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

    /// A stand-in toolchain in `dir`: its `rustc` reports a target library directory, its
    /// `rustup` logs its arguments and fills that directory.
    fn stand_in(dir: &Path, rustup_works: bool) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let libdir = dir.join("sysroot/lib/rustlib/wasm32-unknown-unknown/lib");
        let log = dir.join("rustup.log");
        let rustc = dir.join("rustc");
        let rustup = dir.join("rustup");
        std::fs::write(&rustc, format!("#!/bin/sh\necho {}\n", libdir.display())).unwrap();
        let fill = if rustup_works {
            format!("mkdir -p {0} && touch {0}/libcore.rlib", libdir.display())
        } else {
            "exit 1".into()
        };
        std::fs::write(&rustup, format!("#!/bin/sh\necho \"$@\" >> {}\n{fill}\n", log.display()))
            .unwrap();
        for f in [&rustc, &rustup] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        (rustc, rustup, log, libdir)
    }

    #[test]
    fn a_missing_target_is_added_once_and_said_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let (rustc, rustup, log, libdir) = stand_in(dir.path(), true);
        let mut said = Vec::new();
        let added = ensure_target(dir.path(), rustc.as_os_str(), rustup.as_os_str(), |l| {
            said.push(l.to_string())
        })
        .unwrap();
        assert!(added);
        assert!(libdir.join("libcore.rlib").is_file());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("target add {TARGET}\n"));
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("rustup target add wasm32-unknown-unknown"), "{said:?}");
        // Present now: nothing to do, nothing said.
        let again = ensure_target(dir.path(), rustc.as_os_str(), rustup.as_os_str(), |l| {
            said.push(l.to_string())
        })
        .unwrap();
        assert!(!again);
        assert_eq!(said.len(), 1);
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    }

    #[test]
    fn a_target_that_cannot_be_added_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (rustc, rustup, _, _) = stand_in(dir.path(), false);
        let failed = ensure_target(dir.path(), rustc.as_os_str(), rustup.as_os_str(), |_| {})
            .unwrap_err()
            .to_string();
        assert!(failed.contains("rustup target add wasm32-unknown-unknown"), "{failed}");
        // Without rustup (a toolchain from elsewhere) it says so and lets cargo try.
        let mut said = Vec::new();
        let tried =
            ensure_target(dir.path(), rustc.as_os_str(), OsStr::new("/nonexistent/rustup"), |l| {
                said.push(l.to_string())
            })
            .unwrap();
        assert!(!tried);
        assert!(said.last().is_some_and(|l| l.contains("rustup could not be run")), "{said:?}");
    }

    #[test]
    fn the_real_toolchain_has_the_target_or_gets_it() {
        // The toolchain building this test builds the example contracts too.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        ensure_target(&root, &rustc, OsStr::new("rustup"), |l| eprintln!("{l}")).unwrap();
        assert_eq!(target_installed(&root, &rustc), Some(true));
    }

    #[test]
    fn a_missing_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&BuildOptions::new(dir.path().join("Cargo.toml"))).unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
    }
}
