//! Tables of cases, for suites that report each case as a row: written to
//! `target/reliability/<name>.md`, printed, and every row must pass.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One case of a table.
#[derive(Debug)]
pub struct Row {
    pub case: String,
    pub expected: String,
    pub observed: String,
    pub time: Duration,
    pub pass: bool,
}

/// Writes `rows` as a Markdown table to `target/reliability/<name>.md`,
/// prints it, and fails the test with every failing row.
#[allow(clippy::print_stdout)] // the table is what the suite shows
pub fn report(name: &str, rows: &[Row]) {
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
