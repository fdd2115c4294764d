//! `cargo xtask`: the one entry point for the project's chores.
//!
//! - `cargo xtask ci`: format check, clippy with warnings denied, all tests.
//! - `cargo xtask test`: all tests (nextest when installed, else cargo test).
//! - `cargo xtask demo`: `patchbay demo`.
//!
//! Every command points the `v8` crate at the prebuilt archive in
//! `../shared/v8/` when that file exists, so a clean clone builds offline;
//! elsewhere the crate downloads its archive as usual.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const V8_ARCHIVE: &str = "librusty_v8_release_x86_64-unknown-linux-gnu.a.gz";

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    match task.as_str() {
        "ci" => {
            cargo(&root, &["fmt", "--all", "--check"])?;
            cargo(
                &root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            test(&root)
        }
        "test" => test(&root),
        "demo" => cargo(
            &root,
            &["run", "--quiet", "--package", "patchbay-cli", "--", "demo"],
        ),
        _ => bail!(
            "usage: cargo xtask <ci|test|demo>\n  ci    fmt check, clippy -D warnings, all tests\n  test  all tests\n  demo  run `patchbay demo`"
        ),
    }
}

fn test(root: &Path) -> anyhow::Result<()> {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if has_nextest {
        cargo(root, &["nextest", "run", "--workspace", "--no-fail-fast"])?;
        cargo(root, &["test", "--workspace", "--doc"])
    } else {
        cargo(root, &["test", "--workspace", "--no-fail-fast"])
    }
}

fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(root);
    if std::env::var_os("RUSTY_V8_ARCHIVE").is_none() {
        let archive = root.join("../shared/v8").join(V8_ARCHIVE);
        if archive.is_file() {
            command.env("RUSTY_V8_ARCHIVE", archive);
        }
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
