//! The reliability and security suite (docs/reliability.md): each case is a
//! row of a table, run through the whole engine; every row must pass. The
//! tables are written to `target/reliability/` and printed by
//! `cargo xtask reliability`.

mod faults;
mod fuzz;
mod scripts;
mod ssrf;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One case of a table.
#[derive(Debug)]
struct Row {
    case: String,
    expected: String,
    observed: String,
    time: Duration,
    pass: bool,
}

/// Writes `rows` as a Markdown table to `target/reliability/<name>.md`,
/// prints it, and fails the test with every failing row.
#[allow(clippy::print_stdout)] // the table is what the suite shows
fn report(name: &str, rows: &[Row]) {
    let mut table =
        String::from("| case | expected | observed | time | pass |\n|---|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} ms | {} |",
            row.case,
            row.expected.replace('|', "\\|"),
            row.observed.replace('|', "\\|").replace('\n', " "),
            row.time.as_millis(),
            if row.pass { "✓" } else { "✗" }
        );
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.md")), &table);
    println!("{name}:\n{table}");
    let failed: Vec<&Row> = rows.iter().filter(|row| !row.pass).collect();
    assert!(
        failed.is_empty(),
        "{} case(s) failed:\n{failed:#?}",
        failed.len()
    );
}

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
