//! The `patchbay` binary, run as a user runs it: one test binary, one
//! module per area.

mod attributes;
mod commands;
mod context_store;
mod conventions;
mod conversation;
mod getting_started;
mod init;
mod load;
mod multi_turn;
mod playground;
mod product_values;
mod reload;
mod responses;
mod run_json;
mod script_output;
mod secrets;
mod serve;
mod slow_clients;
mod starters;
mod store;
mod toolkit;
mod user_expiry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn patchbay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run patchbay")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
