//! The `patchbay` binary, run as a user runs it.

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

#[test]
fn check_passes_on_every_example() {
    let output = patchbay(&[
        "check",
        "--deny-warnings",
        "examples/faq-bot.yaml",
        "examples/order-status.yaml",
        "examples/support-ticket.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn check_reports_the_four_mistakes_precisely() {
    let output = patchbay(&[
        "check",
        "--json",
        "tests/fixtures/config/four-diagnostics.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let diagnostics = report["files"][0]["diagnostics"].as_array().expect("list");
    let found: Vec<(String, u64, u64)> = diagnostics
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("unknown-field".to_owned(), 14, 5),
            ("secret-in-url".to_owned(), 17, 7),
            ("invalid-json-path".to_owned(), 20, 15),
            ("unknown-credential".to_owned(), 26, 17),
        ]
    );
    assert_eq!(diagnostics[0]["help"], "did you mean `credential`?");
    assert_eq!(diagnostics[3]["help"], "did you mean `kb-oauth`?");
}

#[test]
fn human_output_names_file_line_and_column() {
    let output = patchbay(&["check", "tests/fixtures/config/four-diagnostics.yaml"]);
    let text = stdout(&output);
    assert!(
        text.contains("tests/fixtures/config/four-diagnostics.yaml:14:5"),
        "{text}"
    );
    assert!(text.contains("did you mean `credential`?"), "{text}");
}

#[test]
fn warnings_fail_only_when_denied() {
    let file = "tests/fixtures/config/lint-unreachable.yaml";
    assert_eq!(patchbay(&["check", file]).status.code(), Some(0));
    assert_eq!(
        patchbay(&["check", "--deny-warnings", file]).status.code(),
        Some(1)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(patchbay(&["check"]).status.code(), Some(2));
    assert_eq!(patchbay(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn missing_files_are_named() {
    let output = patchbay(&["check", "no/such/bot.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no/such/bot.yaml"));
}

#[test]
fn inline_secrets_never_reach_the_output() {
    for format in [&["check"][..], &["check", "--json"][..]] {
        let mut args = format.to_vec();
        args.extend([
            "tests/fixtures/config/inline-secret.yaml",
            "tests/fixtures/config/env-secret-with-value.yaml",
        ]);
        let output = patchbay(&args);
        let all = format!(
            "{}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1));
        assert!(!all.contains("canary-s3cr3t"), "secret leaked:\n{all}");
    }
}

#[test]
fn schema_is_json_schema() {
    let output = patchbay(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org"))
    );
    assert!(schema["properties"]["integrations"].is_object());
}
