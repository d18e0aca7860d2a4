//! `enigma contract new|build`: scaffold a secret contract crate and build it for wasm32.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

/// `enigma contract`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContractCommand {
    /// Create a new secret contract crate from a template (a secret counter) that builds as is.
    New {
        /// The crate's name (lowercase letters, digits, `-` and `_`).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The enigma-sdk to depend on: a path (default: the SDK this CLI was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a contract crate (or a workspace of them) for wasm32, size-optimized.
    Build {
        /// The crate's directory or its Cargo.toml.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Where cargo puts its output (default: the crate's target/).
        #[arg(long)]
        target_dir: Option<PathBuf>,
        /// Require Cargo.lock to be up to date (CI).
        #[arg(long)]
        locked: bool,
        /// Print the built modules as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

const LIB: &str = r#"//! {name}: a secret contract. Its state is encrypted; only the enclave running a task reads it.
#![no_std]

use enigma_sdk::prelude::*;

const COUNTER: &str = "counter";
const OWNER: &str = "owner";

#[pub_interface]
pub trait ContractInterface {
    /// Runs once, at deployment: the deployer (the task's verified caller) owns the counter.
    fn construct(start: U256);
    /// Adds `amount` to the secret counter and returns the new value (to the caller only).
    fn add(amount: U256) -> Result<U256, String>;
    /// The counter. `#[query]`: it may also be asked as a free, read-only query
    /// (`enigma query`); unmarked functions run as tasks only.
    #[query]
    fn value() -> U256;
    /// Sets the counter back to zero: its owner only.
    fn reset() -> Result<(), String>;
}

pub struct Contract;

impl ContractInterface for Contract {
    fn construct(start: U256) {
        write_state!(COUNTER => start, OWNER => caller());
    }

    fn add(amount: U256) -> Result<U256, String> {
        let value: U256 = read_state!(COUNTER).unwrap_or_default();
        let value = value.checked_add(amount).ok_or_else(|| String::from("the counter overflows"))?;
        write_state!(COUNTER => value);
        Ok(value)
    }

    fn value() -> U256 {
        read_state!(COUNTER).unwrap_or_default()
    }

    fn reset() -> Result<(), String> {
        // `sender()` is the account that signed this task: nobody can call in another's name.
        let owner: Option<Address> = read_state!(OWNER);
        if sender().is_none() || sender() != owner {
            return Err("only the counter's owner may reset it".into());
        }
        write_state!(COUNTER => U256::ZERO);
        Ok(())
    }
}
"#;

const README: &str = r#"# {name}

A secret contract for enigma.

    enigma contract build                       # → target/wasm32-unknown-unknown/release/{file}.wasm
    enigma deploy target/wasm32-unknown-unknown/release/{file}.wasm --constructor 'construct(uint256)' 5
    enigma call <contract address> 'add(uint256)' 7 --returns '(uint256)'
    enigma call <contract address> 'reset()'    # the deployer only
"#;

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Runs `enigma contract …`.
pub(crate) async fn contract(command: ContractCommand) -> Result<()> {
    match command {
        ContractCommand::New { name, path, sdk } => new(&name, path, sdk),
        ContractCommand::Build { path, target_dir, locked, json } => {
            build(path, target_dir, locked, json).await
        }
    }
}

fn new(name: &str, path: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<()> {
    if !valid_name(name) {
        bail!(
            "{name:?} is not a crate name: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty; pick another --path", dir.display());
    }
    let sdk = match sdk {
        Some(p) => p,
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk")),
    };
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the enigma-sdk is not at {}; give its path with --sdk (it is crates/sdk in the enigma repository)",
            sdk.display()
        )
    })?;
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nenigma-sdk = {{ path = {sdk:?} }}\n\n\
         # A contract is a workspace of its own.\n[workspace]\n",
        sdk = sdk.display().to_string(),
    );
    let file = name.replace('-', "_");
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let write = |rel: &str, text: String| {
        std::fs::write(dir.join(rel), text).with_context(|| format!("writing {rel}"))
    };
    write("Cargo.toml", manifest)?;
    write("src/lib.rs", LIB.replace("{name}", name))?;
    write("README.md", README.replace("{name}", name).replace("{file}", &file))?;
    write(".gitignore", "/target\n".into())?;
    say!(
        "created {} (a secret counter: construct(uint256), add(uint256), value(), reset() by its owner)",
        dir.display()
    );
    say!("  build it:  enigma contract build {}", dir.display());
    Ok(())
}

async fn build(path: PathBuf, target_dir: Option<PathBuf>, locked: bool, json: bool) -> Result<()> {
    let manifest = if path.is_dir() { path.join("Cargo.toml") } else { path };
    let mut options = enigma_client::build::BuildOptions::new(&manifest);
    options.target_dir = target_dir;
    options.locked = locked;
    let spinner = indicatif::ProgressBar::new_spinner();
    if !json {
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner.set_message(format!("building {} for wasm32", manifest.display()));
    }
    let built = tokio::task::spawn_blocking(move || enigma_client::build::build(&options))
        .await
        .context("the build task")?
        .with_context(|| format!("building {}", manifest.display()))?;
    spinner.finish_and_clear();
    if built.is_empty() {
        bail!(
            "{} builds no cdylib crate: add `[lib] crate-type = [\"cdylib\"]`",
            manifest.display()
        );
    }
    if json {
        let list: Vec<_> = built
            .iter()
            .map(|b| serde_json::json!({"name": b.name, "wasm": b.wasm, "size": b.size}))
            .collect();
        say!("{}", serde_json::Value::Array(list));
    } else {
        for b in &built {
            say!("built {}  {}  ({} bytes)", b.name, b.wasm.display(), b.size);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_checked() {
        assert!(valid_name("counter"));
        assert!(valid_name("my-contract_2"));
        assert!(!valid_name("2fast"));
        assert!(!valid_name("Counter"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn new_refuses_a_non_empty_directory_and_a_bad_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let e = new("counter", Some(dir.path().to_path_buf()), None).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert!(new("Bad", None, None).unwrap_err().to_string().contains("not a crate name"));
    }
}
