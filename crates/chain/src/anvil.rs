//! Finding and starting anvil, the local chain of devnets and tests.

use std::path::PathBuf;

use alloy::node_bindings::{Anvil, AnvilInstance};

use crate::{ChainError, Result};

/// The anvil binary: `$ENIGMA_ANVIL`, then the project's pinned npm install
/// (`contracts/node_modules/.bin/anvil`, from `npm ci` in `contracts/`), then `anvil` on `PATH`.
pub fn find_anvil() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENIGMA_ANVIL") {
        return Ok(PathBuf::from(path));
    }
    // The platform package's binary itself, not the node wrapper in .bin: a wrapper process
    // would stand between the test and anvil and could leave anvil running when killed.
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/node_modules");
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let native = modules.join(format!("@foundry-rs/anvil-{os}-{arch}/bin/anvil"));
    if native.is_file() {
        return Ok(native);
    }
    let wrapper = modules.join(".bin/anvil");
    if wrapper.exists() {
        return Ok(wrapper);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("anvil"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ChainError::Config(
                "anvil not found: run `npm ci` in contracts/ (the test command does), put anvil on PATH, or set ENIGMA_ANVIL".into(),
            )
        })
}

/// [`find_anvil`], installing the project's pinned anvil first (`npm ci` in `contracts/`) when
/// none is found.
pub fn ensure_anvil() -> Result<PathBuf> {
    if let Ok(path) = find_anvil() {
        return Ok(path);
    }
    let contracts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    tracing::info!(dir = %contracts.display(), "installing the pinned anvil with npm ci");
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&contracts)
        .status()
        .map_err(|e| {
            ChainError::Config(format!(
                "running npm ci in {} (is Node.js installed?): {e}",
                contracts.display()
            ))
        })?;
    if !status.success() {
        return Err(ChainError::Config(format!(
            "npm ci in {} failed ({status})",
            contracts.display()
        )));
    }
    find_anvil()
}

/// What every anvil we start is told: keep no past states on disk. Anvil otherwise writes the
/// states that fall out of its memory into `~/.foundry/anvil/tmp`, which it deletes only when it
/// exits on its own — a killed anvil (every test's, a devnet stopped with Ctrl-C twice) left
/// gigabytes there each time, 78 GB in a day of test runs. Nothing here reads state that old.
pub const ANVIL_ARGS: [&str; 2] = ["--max-persisted-states", "0"];

/// Starts anvil on a free loopback port with instant mining and its ten funded dev accounts.
pub fn spawn_anvil() -> Result<AnvilInstance> {
    Anvil::new()
        .path(find_anvil()?)
        .args(ANVIL_ARGS)
        .try_spawn()
        .map_err(|e| ChainError::Rpc(format!("starting anvil: {e}")))
}
