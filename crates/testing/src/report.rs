//! What `patchbay test` prints: `cargo test`'s shape (a line a case, the
//! failures with a diff, a summary line), or JUnit XML for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

use crate::run::{CaseOutcome, Mismatch};

/// The outcomes of one test file.
#[derive(Clone, Debug)]
pub struct FileOutcome {
    /// The test file, as the user named it.
    pub file: String,
    /// Its cases, in order; or why the file could not run.
    pub cases: Result<Vec<CaseOutcome>, String>,
}

/// Counts over every file: (passed, failed).
pub fn totals(files: &[FileOutcome]) -> (usize, usize) {
    files
        .iter()
        .fold((0, 0), |(passed, failed), file| match &file.cases {
            Ok(cases) => {
                let ok = cases.iter().filter(|case| case.passed()).count();
                (passed + ok, failed + cases.len() - ok)
            }
            Err(_) => (passed, failed + 1),
        })
}

/// The line a case gets as it finishes.
pub fn case_line(file: &str, case: &CaseOutcome) -> String {
    format!(
        "case {file} :: {} ... {}",
        case.name,
        if case.passed() { "ok" } else { "FAILED" }
    )
}

/// The failures (each with its diff) and the summary line, after every
/// case line.
pub fn summary(files: &[FileOutcome], elapsed: Duration) -> String {
    let mut out = String::new();
    let failed_files: Vec<&FileOutcome> = files
        .iter()
        .filter(|file| {
            file.cases
                .as_ref()
                .map_or(true, |cases| cases.iter().any(|c| !c.passed()))
        })
        .collect();
    if !failed_files.is_empty() {
        out.push_str("\nfailures:\n");
        for file in failed_files {
            match &file.cases {
                Err(reason) => {
                    let _ = writeln!(out, "\n---- {} ----\n{reason}", file.file);
                }
                Ok(cases) => {
                    for case in cases.iter().filter(|case| !case.passed()) {
                        let _ = writeln!(out, "\n---- {} :: {} ----", file.file, case.name);
                        for mismatch in &case.mismatches {
                            out.push_str(&diff(mismatch));
                        }
                    }
                }
            }
        }
    }
    let (passed, failed) = totals(files);
    let _ = writeln!(
        out,
        "\ntest result: {}. {passed} passed, {failed} failed; finished in {:.2}s",
        if failed == 0 { "ok" } else { "FAILED" },
        elapsed.as_secs_f64()
    );
    out
}

/// `what:` then the expected lines marked `-` and the actual ones `+`,
/// lines both have unmarked, in order.
pub fn diff(mismatch: &Mismatch) -> String {
    let expected: Vec<&str> = mismatch.expected.lines().collect();
    let actual: Vec<&str> = mismatch.actual.lines().collect();
    let mut out = format!("{}: (- expected, + actual)\n", mismatch.what);
    for line in line_diff(&expected, &actual) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// A longest-common-subsequence diff of two short lists of lines.
fn line_diff(expected: &[&str], actual: &[&str]) -> Vec<String> {
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(format!("  {}", expected[i]));
            i += 1;
            j += 1;
        } else if j == m || (i < n && common[i + 1][j] >= common[i][j + 1]) {
            out.push(format!("- {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", actual[j]));
            j += 1;
        }
    }
    out
}

/// JUnit XML: a `testsuite` per file, a `testcase` per case, a `failure`
/// with the diff for each failed one.
pub fn junit(files: &[FileOutcome], elapsed: Duration) -> String {
    let (passed, failed) = totals(files);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"patchbay test\" tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">",
        passed + failed,
        elapsed.as_secs_f64()
    );
    for file in files {
        match &file.cases {
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "  <testsuite name=\"{0}\" tests=\"1\" failures=\"1\">\n    <testcase name=\"{0}\" classname=\"{0}\">\n      <failure message=\"the file could not run\">{1}</failure>\n    </testcase>\n  </testsuite>",
                    xml(&file.file),
                    xml(reason)
                );
            }
            Ok(cases) => {
                let failures = cases.iter().filter(|case| !case.passed()).count();
                let time: f64 = cases.iter().map(|case| case.elapsed.as_secs_f64()).sum();
                let _ = writeln!(
                    out,
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">",
                    xml(&file.file),
                    cases.len()
                );
                for case in cases {
                    let _ = write!(
                        out,
                        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                        xml(&case.name),
                        xml(&file.file),
                        case.elapsed.as_secs_f64()
                    );
                    if case.passed() {
                        out.push_str("/>\n");
                    } else {
                        let diffs: String = case.mismatches.iter().map(diff).collect();
                        let first = case
                            .mismatches
                            .first()
                            .map_or(String::new(), |m| format!("{} differs", m.what));
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(&first),
                            xml(&diffs)
                        );
                    }
                }
                out.push_str("  </testsuite>\n");
            }
        }
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_what_differs_and_keeps_what_is_common() {
        let mismatch = Mismatch {
            what: "messages".to_owned(),
            expected: "- Hello\n- Found 3 articles\n- Bye".to_owned(),
            actual: "- Hello\n- Sorry, I could not find anything for that.\n- Bye".to_owned(),
        };
        assert_eq!(
            diff(&mismatch),
            "messages: (- expected, + actual)\n    - Hello\n  - - Found 3 articles\n  + - Sorry, I could not find anything for that.\n    - Bye\n"
        );
    }

    #[test]
    fn junit_escapes_what_it_quotes() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
