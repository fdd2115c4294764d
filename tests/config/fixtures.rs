//! Data-driven: every `tests/fixtures/config/<case>.{yaml,json}` is loaded and
//! its rendered report compared with `<case>.expected` beside it.
//! `UPDATE_EXPECT=1 cargo test --test config` rewrites the expectations.

use std::fs;

use patchbay_config::{RenderStyle, load};

use crate::workspace_root;

#[test]
fn every_fixture_renders_its_expected_report() {
    let dir = workspace_root().join("tests/fixtures/config");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut cases = 0;
    let mut mismatches = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    entries.sort();
    for path in entries {
        cases += 1;
        let text = fs::read_to_string(&path).expect("fixture text");
        let name = format!(
            "fixtures/config/{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
        );
        let report = match load(&name, &text) {
            Ok(loaded) => loaded.warnings,
            Err(report) => report,
        };
        let actual = format!(
            "{}{}\n",
            report.render(RenderStyle::Plain),
            report.summary()
        );
        assert!(
            !actual.contains("canary-s3cr3t"),
            "{name} leaks a secret into its report:\n{actual}"
        );
        let expected_path = path.with_extension("expected");
        if update {
            fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "--- {}\n{expected}\n+++ actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(cases >= 25, "only {cases} fixtures");
    assert!(
        mismatches.is_empty(),
        "{} fixture(s) differ (UPDATE_EXPECT=1 to accept):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
