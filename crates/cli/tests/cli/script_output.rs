//! What scripts do, through whole turns of the real binary: custom data
//! fields under the integration's name, `printDebugMessage` and
//! `logCustomEvent` in each step (masked), effects kept when a script
//! throws, and `sendImmediateReply` with an array. `patchbay run`, `run
//! --json` and `serve` against a local upstream on 127.0.0.1.

use std::path::PathBuf;
use std::process::Output;

use patchbay_tests::client::post_json;
use patchbay_tests::servers::{self, reply};
use serde_json::{Value, json};

use crate::serve::Process;

/// Passed as the bot's `API_TOKEN`: it must never be shown.
const CANARY: &str = "canary-debug-token-5f3a";

/// The product's post-process example ("Get API integration results
/// count") on an integration named `faqIntegration` (RDVN `FAQ`), a debug
/// message that prints a secret, a custom event, a post-process script that
/// sets a variable and triggers the next message and then throws, and an
/// immediate reply with an array.
const BOT: &str = r#"name: faq
network:
  allow: [127.0.0.1]
env:
  BASE: null
  API_TOKEN: null
credentials:
  - name: api
    type: access-token
    token: "{$env.API_TOKEN}"
integrations:
  - name: faqIntegration
    responseDataVariable: FAQ
    type: api
    method: GET
    url: "{$env.BASE}/articles"
    credential: api
    customDataFields:
      title: "{$.api_FAQ.items[i].title}"
dialogs:
  - name: main
    interactions:
      - name: search
        type: integration
        integration: faqIntegration
        preProcess: |
          botContext.printDebugMessage("token is " + botContext.getEnvVariable("API_TOKEN"));
        postProcess: |
          var results = botContext.getBotVariable('faqIntegration.title.count');
          botContext.printDebugMessage("results: " + results);
          botContext.logCustomEvent(botContext.getCurrentUserMessage(), "FAQ search", "results " + results);
          botContext.setBotVariable("resultCount", results, true, false);
          botContext.setTriggerNextMessage(results < 1 ? "no-results" : "answer");
          notAFunction();
        next: end
      - name: no-results
        type: text
        text: "Nothing found."
        next: end
      - name: answer
        type: integration
        integration: faqIntegration
        preProcess: |
          botContext.sendImmediateReply([
            "Found " + botContext.getBotVariable("resultCount"),
            "First: " + botContext.getBotVariable("faqIntegration.title[0]")
          ]);
        next: end
      - name: chatty
        type: integration
        integration: faqIntegration
        preProcess: |
          var big = new Array(4000).join("x");
          for (var i = 0; i < 20; i++) { botContext.printDebugMessage(big); }
          botContext.printDebugMessage(new Array(4080).join("y") + botContext.getEnvVariable("API_TOKEN"));
          for (var j = 0; j < 100; j++) { botContext.logCustomEvent(big, big, big); }
          botContext.setBotVariable("kept", "yes", true, false);
        next: end
"#;

struct Scratch(PathBuf);

impl Scratch {
    fn with_bot() -> (Self, String) {
        let dir =
            std::env::temp_dir().join(format!("patchbay-script-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("faq.yaml");
        std::fs::write(&path, BOT).expect("bot");
        (Self(dir), path.display().to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn upstream() -> servers::Server {
    servers::http(|_| async {
        reply(
            200,
            r#"{"items": [{"title": "Reset your password"}, {"title": "Change your email"}]}"#,
        )
    })
    .await
}

fn run(bot: &str, base: &str, more: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["run", bot, "--interaction", "search"])
        .args(["--message", "reset my password"])
        .args(["--env", &format!("BASE={base}")])
        .args(["--env", &format!("API_TOKEN={CANARY}")])
        .args(more)
        .output()
        .expect("run patchbay")
}

/// What every answer must show of the turn: the fields under the
/// integration's name found results, the post-process script's variable
/// and trigger survived its error, and the immediate reply's array became
/// two messages.
fn assert_turn(turn: &Value) {
    assert_eq!(
        turn["messages"],
        json!(["Found 2", "First: Reset your password"]),
        "{turn}"
    );
    assert_eq!(turn["variables"]["resultCount"], "2", "{turn}");
    assert_eq!(turn["next"], "end", "{turn}");
    let search = &turn["steps"][0];
    assert_eq!(search["interaction"], "search", "{turn}");
    assert_eq!(
        search["debug"],
        // A credential holds API_TOKEN: scripts read it as unset.
        json!(["token is null", "results: 2"]),
        "{turn}"
    );
    assert_eq!(
        search["events"],
        json!([{
            "userMessage": "reset my password",
            "eventName": "FAQ search",
            "eventDetail": "results 2",
        }]),
        "{turn}"
    );
    let errors = search["scriptErrors"].as_array().expect("scriptErrors");
    assert_eq!(errors.len(), 1, "{turn}");
    assert!(
        errors[0]
            .as_str()
            .is_some_and(|error| error.contains("notAFunction")),
        "{turn}"
    );
    assert_eq!(turn["steps"][1]["interaction"], "answer", "{turn}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_json_shows_what_scripts_did() {
    let server = upstream().await;
    let (_scratch, bot) = Scratch::with_bot();
    let base = format!("http://{}", server.addr);
    let output = run(&bot, &base, &["--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    patchbay_tests::captured::keep("cli", "script-output-run-json", &stdout);
    assert!(output.status.success(), "{stdout}{stderr}");
    let turn: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_turn(&turn);
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));

    // The human trace, and the log at debug level, show them too (masked).
    let output = run(&bot, &base, &["--log", "patchbay_engine=debug"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    patchbay_tests::captured::keep("cli", "script-output-run", &stdout);
    patchbay_tests::captured::keep("cli", "script-output-run-log", &stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    for line in [
        "  debug: token is null\n",
        "  debug: results: 2\n",
        "  event: FAQ search (reset my password) detail: results 2\n",
        "  bot: Found 2\n",
        "  bot: First: Reset your password\n",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
    assert!(
        stderr.contains("printDebugMessage") && stderr.contains("results: 2"),
        "{stderr}"
    );
    assert!(stderr.contains("logCustomEvent"), "{stderr}");
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
}

/// `patchbay serve` with the bot, its upstream and its secret token.
async fn serve_faq() -> (servers::Server, Scratch, Process) {
    let server = upstream().await;
    let (scratch, bot) = Scratch::with_bot();
    let base = format!("BASE=http://{}", server.addr);
    let token = format!("API_TOKEN={CANARY}");
    let serve = Process::serve(bot.as_ref(), &[&base, &token], &[]);
    (server, scratch, serve)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_steps_show_what_scripts_did() {
    let (_upstream, _scratch, serve) = serve_faq().await;
    let (status, turn) = post_json(
        serve.addr,
        "/v1/bots/faq/turns",
        &json!({"interaction": "search", "message": "reset my password"}),
    )
    .await;
    assert_eq!(status, 200, "{turn}");
    patchbay_tests::captured::keep("cli", "script-output-serve", &turn.to_string());
    assert_turn(&turn);
    assert!(!turn.to_string().contains(CANARY));
}

/// Debug output and events at their bounds: they never fail the run nor
/// make it keep nothing (100 events of three 4 KiB texts are more than the
/// output limit), a secret the 4 KiB cut would split is still masked, and a
/// stored turn with a `turnId` keeps its answer for retries without them
/// (kept, they passed the conversation's size limit: 422).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_at_its_bounds_fails_nothing_and_shows_no_secret() {
    let (_upstream, _scratch, serve) = serve_faq().await;
    let chatty = json!({
        "interaction": "chatty",
        "conversationId": "chatty-1",
        "turnId": "t1",
    });
    let (status, turn) = post_json(serve.addr, "/v1/bots/faq/turns", &chatty).await;
    assert_eq!(
        status,
        200,
        "{}",
        turn.to_string().chars().take(400).collect::<String>()
    );
    assert_eq!(turn["variables"]["kept"], "yes", "the run kept what it did");
    let shown = turn.to_string();
    patchbay_tests::captured::keep("cli", "script-output-chatty", &shown);
    assert!(!shown.contains(&CANARY[..8]), "a piece of the secret shows");
    // The same turn again: answered from what the store kept.
    let (status, retried) = post_json(serve.addr, "/v1/bots/faq/turns", &chatty).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["variables"]["kept"], "yes");
}
