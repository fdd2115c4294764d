//! The reliability and security suite (docs/reliability.md): each case is a
//! row of a table, run through the whole engine; every row must pass. The
//! tables are written to `target/reliability/` and printed by
//! `cargo xtask reliability`.

mod faults;
mod fuzz;
mod scripts;
mod ssrf;

pub(crate) use patchbay_tests::table::{Row, report};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
