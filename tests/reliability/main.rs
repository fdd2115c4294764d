//! The reliability and security suite (docs/reliability.md): each case is a
//! row of a table, run through the whole engine; every row must pass. The
//! tables are written to `target/reliability/` and printed by
//! `cargo xtask reliability`.

mod faults;
mod fuzz;
mod isolation;
mod scripts;
mod ssrf;
mod urls;

pub(crate) use patchbay_tests::table::{Row, report};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    patchbay_tests::rss_kib("self")
}
