//! `patchbay serve` picks the dialog from a message by the product's
//! patterns, and runs the fallback dialog when no starter matches.

use std::path::Path;

use patchbay_tests::client::post_json;
use serde_json::json;

use crate::serve::Process;

fn scenario(name: &str) -> std::path::PathBuf {
    Path::new("tests/scenarios").join(name).join("bot.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_picks_dialogs_by_pattern_and_falls_back() {
    let alternates = Process::serve(&scenario("37-starter-with-alternates"), &[], &[]);
    for (message, answer) in [
        ("  THANKS a lot!! ", "You're welcome."),
        ("Thank you.", "You're welcome."),
        ("hey there, anyone?", "Hello! How can I help?"),
        (
            "I want a pair of Earbuds",
            "Our headphones are on the second floor.",
        ),
    ] {
        let (status, body) = post_json(
            alternates.addr,
            "/v1/bots/scenario/turns",
            &json!({ "message": message }),
        )
        .await;
        assert_eq!(status, 200, "{message}: {body}");
        assert_eq!(body["messages"], json!([answer]), "{message}: {body}");
    }
    // No starter fits and the bot has no fallback dialog: today's answer.
    let long = "x".repeat(10 * 1024);
    for message in ["no thanks", long.as_str()] {
        let (status, body) = post_json(
            alternates.addr,
            "/v1/bots/scenario/turns",
            &json!({ "message": message }),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "no_dialog", "{body}");
    }

    let fallback = Process::serve(&scenario("38-fallback-dialog"), &[], &[]);
    let (status, body) = post_json(
        fallback.addr,
        "/v1/bots/scenario/turns",
        &json!({ "message": "what is the weather like?" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["messages"],
        json!([
            "I'm not sure what 'what is the weather like?' means.",
            "Would you like to talk to an agent?"
        ]),
        "{body}"
    );
    let (status, body) = post_json(
        fallback.addr,
        "/v1/bots/scenario/turns",
        &json!({ "message": "Hello!" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["messages"],
        json!(["Hello! How can I help?"]),
        "{body}"
    );
}

#[test]
fn run_json_from_a_message_runs_the_fallback_or_says_no_dialog() {
    let output = crate::patchbay(&[
        "run",
        "tests/scenarios/38-fallback-dialog/bot.yaml",
        "--message",
        "what?",
        "--json",
    ]);
    assert!(output.status.success(), "{}", crate::stdout(&output));
    let answer: serde_json::Value =
        serde_json::from_str(&crate::stdout(&output)).expect("one JSON object");
    assert_eq!(answer["messages"][0], "I'm not sure what 'what?' means.");

    let output = crate::patchbay(&[
        "run",
        "tests/scenarios/37-starter-with-alternates/bot.yaml",
        "--message",
        "no thanks",
        "--json",
    ]);
    assert!(!output.status.success());
    let answer: serde_json::Value =
        serde_json::from_str(&crate::stdout(&output)).expect("one JSON object");
    assert_eq!(answer["error"]["code"], "no_dialog", "{answer}");
}
