//! `patchbay run --json`: every outcome is one JSON object on stdout, the
//! errors too (`{"error": {"code", "message", ...}}`), with the exit code
//! the human form has.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::patchbay;

/// A bot with an integration (its `preProcess` given), a text loop that never
/// waits for the user, and a credential supplied at run time.
fn bot(pre_process: &str) -> String {
    format!(
        r#"name: run-json
env:
  ITEMS_TOKEN: null
credentials:
  - name: items-token
    type: access-token
    token: "{{$env.ITEMS_TOKEN}}"
integrations:
  - name: items
    responseDataVariable: ITEMS
    type: api
    method: GET
    url: https://api.example.com/items
    credential: items-token
dialogs:
  - name: main
    starters: [items]
    interactions:
      - name: look-up
        type: integration
        integration: items
        preProcess: {pre_process:?}
        next: end
      - name: ping
        type: text
        text: ping
        next: pong
      - name: pong
        type: text
        text: pong
        next: ping
"#
    )
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stdout as the one JSON object it must be.
fn json_of(args: &[&str], output: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "{args:?}: stdout is not one JSON object ({error}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn error_of(args: &[&str], exit: i32, code: &str) -> serde_json::Value {
    let output = patchbay(args);
    let json = json_of(args, &output);
    assert_eq!(output.status.code(), Some(exit), "{args:?}: {json}");
    assert_eq!(json["error"]["code"], code, "{args:?}: {json}");
    let message = json["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{args:?}: {json}");
    json
}

#[test]
fn every_failure_of_run_json_is_one_json_error_with_a_code() {
    let scratch = Scratch::new("run-json");
    let good = scratch.write("bot.yaml", &bot("var a = 1;"));
    let broken_script = scratch.write("broken-script.yaml", &bot("var a = ;"));
    let token = "--env=ITEMS_TOKEN=t0ken";

    // Usage: the same exit 2 as without --json.
    error_of(&["run", &good, "--json"], 2, "usage");
    error_of(
        &[
            "run",
            &good,
            "--interaction",
            "ping",
            "--var",
            "x",
            "--json",
        ],
        2,
        "usage",
    );
    error_of(&["run", "--json", &good, "--bogus"], 2, "usage");
    let unknown = error_of(
        &["run", &good, "--interaction", "nope", "--json"],
        2,
        "unknown_interaction",
    );
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`nope`"),
        "{unknown}"
    );

    // The bot file.
    error_of(
        &[
            "run",
            &scratch.path("absent.yaml"),
            "--interaction",
            "x",
            "--json",
        ],
        1,
        "bot_unreadable",
    );
    let invalid = error_of(
        &[
            "run",
            "tests/fixtures/config/four-diagnostics.yaml",
            "--interaction",
            "search",
            "--json",
        ],
        1,
        "invalid_bot",
    );
    let diagnostics = invalid["error"]["diagnostics"]["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        diagnostics.iter().any(|d| d["code"] == "unknown-field"),
        "{invalid}"
    );

    // Running it.
    let missing = error_of(
        &["run", &good, "--interaction", "ping", "--json"],
        1,
        "missing_env",
    );
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ITEMS_TOKEN"),
        "{missing}"
    );
    error_of(
        &["run", &good, "--interaction", "ping", token, "--json"],
        1,
        "chain_limit",
    );
    error_of(
        &[
            "run",
            &broken_script,
            "--interaction",
            "look-up",
            token,
            "--json",
        ],
        1,
        "script_syntax",
    );

    // A replay without the call's recording: the turn comes with the error.
    let recording = serde_json::json!({
        "request": {"method": "GET", "url": "https://api.example.com/other", "headers": {}, "body": null},
        "response": {"status": 200, "headers": {}, "body": {"ok": true}},
    });
    scratch.write("recordings/001-GET-other.json", &recording.to_string());
    let miss = error_of(
        &[
            "run",
            &good,
            "--interaction",
            "look-up",
            token,
            "--replay",
            &scratch.path("recordings"),
            "--json",
        ],
        1,
        "replay_miss",
    );
    let calls = miss["error"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 1, "{miss}");
    assert!(
        calls[0]
            .as_str()
            .unwrap_or_default()
            .contains("api.example.com/items"),
        "{miss}"
    );
    assert_eq!(miss["turn"]["success"], false, "{miss}");
    error_of(
        &[
            "run",
            &good,
            "--interaction",
            "look-up",
            token,
            "--replay",
            &scratch.path("no-recordings"),
            "--json",
        ],
        1,
        "recordings",
    );
    assert!(!Path::new(&scratch.path("no-recordings")).exists());
}

#[test]
fn run_json_errors_hold_no_secret() {
    let scratch = Scratch::new("run-json-secret");
    let good = scratch.write("bot.yaml", &bot("var a = 1;"));
    let args = [
        "run",
        good.as_str(),
        "--interaction",
        "ping",
        "--env=ITEMS_TOKEN=canary-run-json-token",
        "--json",
    ];
    let output = patchbay(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("canary"), "{text}");
    json_of(&args, &output);
}
