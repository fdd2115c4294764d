//! The platform's attributes and actions (issue 20), as a user sends and
//! reads them: `run --attr KEY=VALUE` (dotted keys into members) and
//! `run --json`'s `actions`; `serve`'s turn `attributes` and answer
//! `actions`, the attributes kept in the conversation's state from turn to
//! turn (client-held and stored), refused when unknown or too large; and
//! a secret a script puts into an action masked wherever it is shown.

use std::path::PathBuf;
use std::process::Output;

use patchbay_tests::captured::{self, CANARY, shows};
use patchbay_tests::client::post_json;
use serde_json::{Value, json};

use crate::serve::Process;
use crate::{patchbay, stdout};

/// Reads every platform datum into messages, and asks for a transfer and
/// an escalation; the escalation carries the support token, which names a
/// secret.
const BOT: &str = r#"name: platform
env:
  SUPPORT_TOKEN: null
dialogs:
  - name: main
    starters: ["hello*"]
    interactions:
      - name: show
        type: text
        text: Done.
        preProcess: |
          var b = botContext;
          var say = function (label, value) { b.sendMessage(label + "=" + JSON.stringify(value)); };
          say("account", b.getLPAccountId());
          say("channel", [b.getUserChannel(), b.getChannel()]);
          say("campaign", b.getLPEngagementAttribute("campaignId"));
          var customer = b.getLPCustomerInfo();
          say("customer", customer && customer.customerId);
          var person = b.getLPUserPersonalInfo();
          say("person", person && person.firstname);
          say("metadata", b.getMetadata("SocialMessagingEventData"));
          say("webView", [b.getWebViewVariable("plan"), b.getWebViewVariables()]);
          say("file", [b.getFileCaption(), b.getFileType()]);
          say("maven", JSON.parse(b.askMaven()).rule);
          say("starter", b.getDialogStarterIntent());
          if (b.getCurrentUserMessage() === "hello agent") {
            b.setBotTransferIntentbyDomain("billing", "support");
            b.setBotTransferUserMessage("needs a refund");
            b.logEscalationEvent("token " + b.getEnvVariable("SUPPORT_TOKEN"), "agent");
          }
        next: end
"#;

fn bot_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-attrs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("platform.yaml");
    std::fs::write(&path, BOT).expect("bot");
    path
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}{}",
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn token() -> String {
    format!("SUPPORT_TOKEN={CANARY}")
}

#[test]
fn run_takes_attributes_and_shows_actions() {
    let bot = bot_file("run");
    let bot = bot.to_str().expect("utf-8");
    let token = token();
    let output = patchbay(&[
        "run",
        bot,
        "--message",
        "hello agent",
        "--json",
        "--env",
        &token,
        "--attr",
        "accountId=le1",
        "--attr",
        "channel=lp_web",
        "--attr",
        "engagement.campaignId=7",
        "--attr",
        "customerInfo.customerId=c1",
        "--attr",
        "personalInfo.firstname=Ann",
        "--attr",
        "webView.plan=gold",
        "--attr",
        "file.type=PNG",
    ]);
    let text = stdout(&output);
    captured::keep("cli", "run-attributes", &text);
    assert!(output.status.success(), "{text}");
    assert!(!shows(&text, CANARY), "{text}");
    let answer = json_of(&output);
    assert_eq!(
        answer["messages"],
        json!([
            r#"account="le1""#,
            r#"channel=["lp_web","lp_web"]"#,
            r#"campaign="7""#,
            r#"customer="c1""#,
            r#"person="Ann""#,
            "metadata=null",
            r#"webView=["gold",{"plan":"gold"}]"#,
            r#"file=["__EMPTYTEXT__","PNG"]"#,
            "maven={}",
            r#"starter="main""#,
            "Done."
        ])
    );
    assert_eq!(
        answer["actions"],
        json!([
            {
                "type": "bot-transfer-context",
                "intentName": "billing",
                "domainName": "support",
                "userMessage": "needs a refund"
            },
            {
                "type": "escalation-event",
                "userMessage": "token [redacted]",
                "escalationType": "agent"
            }
        ])
    );
    assert_eq!(answer["steps"][0]["actions"], answer["actions"]);
    assert_eq!(
        answer["state"]["attributes"]["engagement"],
        json!({"campaignId": "7"})
    );
    // The trace shows them too, masked.
    let output = patchbay(&["run", bot, "--message", "hello agent", "--env", &token]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(!shows(&text, CANARY), "{text}");
    assert!(
        text.contains(r#"action: {"escalationType":"agent","type":"escalation-event","userMessage":"token [redacted]"}"#),
        "{text}"
    );
}

#[test]
fn run_refuses_attributes_that_are_not_documented() {
    let bot = bot_file("refused");
    let bot = bot.to_str().expect("utf-8");
    for (attr, code, says) in [
        ("colour=blue", "invalid_attributes", "`colour`"),
        (
            "channel.web=x",
            "invalid_attributes",
            "attributes.channel must be a string",
        ),
        (
            "file.name=x",
            "invalid_attributes",
            "attributes.file has no member `name`",
        ),
        (
            "engagement=7",
            "invalid_attributes",
            "attributes.engagement must be an object",
        ),
    ] {
        let output = patchbay(&["run", bot, "--message", "hello", "--json", "--attr", attr]);
        assert_eq!(output.status.code(), Some(2), "{attr}");
        let answer = json_of(&output);
        assert_eq!(answer["error"]["code"], code, "{attr}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{attr}: {message}");
    }
    let big = format!("customerInfo.note={}", "x".repeat(70 * 1024));
    let output = patchbay(&["run", bot, "--message", "hello", "--json", "--attr", &big]);
    assert_eq!(json_of(&output)["error"]["code"], "attributes_too_large");
}

/// `--save-state` keeps the attributes; the next `run --state` reads them
/// without `--attr`, and a new `--attr` replaces one member.
#[test]
fn run_keeps_attributes_in_the_saved_state() {
    let bot = bot_file("saved");
    let state = bot.with_file_name("state.json");
    let (bot, state) = (bot.to_str().expect("utf-8"), state.to_str().expect("utf-8"));
    let first = patchbay(&[
        "run",
        bot,
        "--message",
        "hello",
        "--json",
        "--attr",
        "channel=lp_web",
        "--attr",
        "accountId=le1",
        "--save-state",
        state,
    ]);
    assert!(first.status.success(), "{}", stdout(&first));
    let second = patchbay(&[
        "run",
        bot,
        "--message",
        "hello again",
        "--json",
        "--state",
        state,
        "--attr",
        "channel=lp_sms",
    ]);
    let answer = json_of(&second);
    let messages = answer["messages"].as_array().cloned().unwrap_or_default();
    assert!(messages.contains(&json!(r#"account="le1""#)), "{answer}");
    assert!(
        messages.contains(&json!(r#"channel=["lp_sms","lp_sms"]"#)),
        "{answer}"
    );
    assert_eq!(answer["actions"], json!([]));
}

fn serve() -> Process {
    let bot = bot_file("serve");
    Process::serve(&bot, &[&token()], &[])
}

const TURNS: &str = "/v1/bots/platform/turns";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_attributes_in_the_state_and_answers_with_actions() {
    let server = serve();
    let first = json!({
        "message": "hello agent",
        "attributes": {
            "accountId": "le1",
            "channel": "lp_web",
            "engagement": {"campaignId": "7"},
            "metadata": {"SocialMessagingEventData": [{"channel": "Public"}]},
            "maven": {"rule": {"id": "r1", "actions": [{"type": "TRANSFER_TO_SKILL"}]}}
        }
    });
    let (status, answer) = post_json(server.addr, TURNS, &first).await;
    let text = answer.to_string();
    captured::keep("cli", "serve-attributes", &text);
    assert_eq!(status, 200, "{answer}");
    assert!(!shows(&text, CANARY), "{text}");
    assert_eq!(answer["actions"][0]["type"], "bot-transfer-context");
    assert_eq!(answer["actions"][1]["userMessage"], "token [redacted]");
    assert_eq!(answer["steps"][0]["actions"], answer["actions"]);
    assert!(
        answer["messages"]
            .as_array()
            .is_some_and(|messages| messages.contains(&json!(r#"metadata=[{"channel":"Public"}]"#))),
        "{answer}"
    );
    // Client-held: the state carries the attributes to the next turn,
    // whose own replace one member; its actions are its own (none).
    let second = json!({
        "message": "hello again",
        "state": answer["state"],
        "attributes": {"channel": "lp_inapp", "maven": null}
    });
    let (status, answer) = post_json(server.addr, TURNS, &second).await;
    assert_eq!(status, 200, "{answer}");
    let messages = answer["messages"].clone();
    for expected in [
        r#"account="le1""#,
        r#"channel=["lp_inapp","lp_inapp"]"#,
        r#"campaign="7""#,
        "maven={}",
    ] {
        assert!(
            messages
                .as_array()
                .is_some_and(|m| m.contains(&json!(expected))),
            "{expected} missing from {messages}"
        );
    }
    assert_eq!(answer["actions"], json!([]));
    assert!(answer["state"]["attributes"].get("maven").is_none());

    // Stored: the server keeps them with the conversation.
    let stored = |message: &str, attributes: Value| {
        let mut body = json!({"conversationId": "c-attrs", "message": message});
        if !attributes.is_null() {
            body["attributes"] = attributes;
        }
        body
    };
    let (status, answer) = post_json(
        server.addr,
        TURNS,
        &stored(
            "hello",
            json!({"accountId": "le2", "webView": {"plan": "gold"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_json(server.addr, TURNS, &stored("hello again", Value::Null)).await;
    assert_eq!(status, 200, "{answer}");
    let messages = answer["messages"].as_array().cloned().unwrap_or_default();
    assert!(messages.contains(&json!(r#"account="le2""#)), "{answer}");
    assert!(
        messages.contains(&json!(r#"webView=["gold",{"plan":"gold"}]"#)),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_unknown_and_oversized_attributes() {
    let server = serve();
    let (status, answer) = post_json(
        server.addr,
        TURNS,
        &json!({"message": "hello", "attributes": {"acountId": "le1"}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_attributes");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`acountId`"), "{message}");
    let (status, answer) = post_json(
        server.addr,
        TURNS,
        &json!({"message": "hello", "attributes": {"engagement": {"campaignId": 7}}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_attributes");
    let big = "x".repeat(70 * 1024);
    let (status, answer) = post_json(
        server.addr,
        TURNS,
        &json!({"message": "hello", "attributes": {"customerInfo": {"note": big}}}),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "attributes_too_large");
    // Two members that fit alone but not together: the stored
    // conversation's turn is refused, and nothing is saved.
    let half = "x".repeat(40 * 1024);
    let body = |member: &str| json!({"conversationId": "c-big", "message": "hello", "attributes": {member: {"note": half}}});
    let (status, answer) = post_json(server.addr, TURNS, &body("customerInfo")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_json(server.addr, TURNS, &body("metadata")).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "attributes_too_large");
    let openapi: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::root().join("docs/openapi.json")).expect("openapi.json"),
    )
    .expect("openapi.json is JSON");
    let documented = &openapi["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        ["code"]["enum"];
    for code in ["invalid_attributes", "attributes_too_large"] {
        assert!(
            documented
                .as_array()
                .is_some_and(|codes| codes.contains(&json!(code))),
            "`{code}` is not in docs/openapi.json"
        );
    }
    // A client-held state with an unknown attribute is not a state.
    let (status, answer) = post_json(
        server.addr,
        TURNS,
        &json!({"message": "hello", "state": {"attributes": {"colour": "blue"}}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_state");
}

/// `attributes:` of a case (before its first turn) and of a turn (sent
/// with it), and `expect.actions`; a failed expectation's report masks the
/// secret an action carries.
#[test]
fn test_files_send_attributes_and_expect_actions() {
    let bot = bot_file("test-file");
    let test = bot.with_file_name("platform.test.yaml");
    std::fs::write(
        &test,
        format!(
            r#"env:
  SUPPORT_TOKEN: "{CANARY}"
cases:
  - name: the case's attributes, then a turn's over them
    attributes:
      accountId: le1
      channel: lp_web
    turns:
      - message: hello
        expect:
          messages: ['account="le1"', 'channel=["lp_web","lp_web"]', campaign=null, customer=null,
                     person=null, metadata=null, 'webView=[null,{{}}]', 'file=[null,null]', 'maven={{}}',
                     'starter="main"', Done.]
          actions: []
      - message: hello agent
        attributes:
          channel: lp_sms
          engagement: {{ campaignId: "7" }}
        expect:
          actions:
            - {{ type: bot-transfer-context, intentName: billing, domainName: support }}
            - {{ type: escalation-event, escalationType: agent }}
      - message: hello
        attributes: {{ channel: null }}
        expect:
          messages: ['account="le1"', 'channel=[null,null]', 'campaign="7"', customer=null,
                     person=null, metadata=null, 'webView=[null,{{}}]', 'file=[null,null]', 'maven={{}}',
                     'starter="main"', Done.]
  - name: expects the wrong escalation
    message: hello agent
    expect:
      actions:
        - {{ type: bot-transfer-context }}
        - {{ type: escalation-event, escalationType: supervisor }}
"#
        ),
    )
    .expect("test file");
    let output = patchbay(&["test", test.to_str().expect("utf-8")]);
    let text = stdout(&output);
    captured::keep("cli", "test-attributes", &text);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!shows(&text, CANARY), "{text}");
    for line in [
        "the case's attributes, then a turn's over them ... ok",
        "expects the wrong escalation ... FAILED",
        "actions: (- expected, + actual)",
        "token [redacted]",
        "test result: FAILED. 1 passed, 1 failed",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
}
