//! Values as the product gives them, through whole turns of `patchbay run
//! --json` and `patchbay serve` (issue 18, items 1, 4, 5 and 8): the bot's
//! `variables` start every conversation, `{$chatBotId}` is the bot's id, a
//! value outside quotes in a JSON body is one whole JSON value, and a value
//! in a custom data field path is one member name.

use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use patchbay_tests::client::post_json;
use patchbay_tests::servers::{self, reply};
use serde_json::{Value, json};

use crate::serve::Process;

const BOT: &str = r#"name: values-bot
network:
  allow: ["127.0.0.1"]
env:
  API: null
variables:
  limit: "5"
  priority: normal
integrations:
  - name: create
    responseDataVariable: T
    type: api
    method: POST
    url: "{$env.API}/tickets"
    body: |
      {"limit": {$botContext.limit}, "ids": {$botContext.ids}, "priority": "{$botContext.priority}", "bot": "{$chatBotId}", "note": {$botContext.note}}
    customDataFields:
      wait: "{$.api_T.skills.{$botContext.skill}.avgWait}"
dialogs:
  - name: tickets
    interactions:
      - name: create
        type: integration
        integration: create
        preProcess: |
          botContext.setBotVariable("limitSeen", botContext.getBotVariable("limit"), false, false);
          botContext.setBotVariable("scriptBotId", botContext.getChatBotId(), false, false);
        rules:
          - name: created
            match:
              apiResult: success
            messages:
              - "{$chatBotId}/{$botContext.scriptBotId}: limit {$botContext.limit} (script saw {$botContext.limitSeen}), waits {T.wait.count}"
            next: end
      - name: prefer-high
        type: integration
        integration: create
        preProcess: |
          botContext.setBotVariable("priority", "high", true, true);
        next: end
"#;

/// A ticket API on 127.0.0.1 that keeps each request body it gets.
struct TicketApi {
    server: servers::Server,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl TicketApi {
    async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        let server = servers::http(move |request| {
            let kept = Arc::clone(&kept);
            async move {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                kept.lock()
                    .expect("bodies")
                    .push(String::from_utf8_lossy(&body).into_owned());
                reply(
                    201,
                    r#"{"skills": {"billing": {"avgWait": 30}, "sales": {"avgWait": 5}}}"#,
                )
            }
        })
        .await;
        Self { server, bodies }
    }

    fn env(&self) -> String {
        format!("API=http://127.0.0.1:{}", self.server.addr.port())
    }

    /// The last body, which must be JSON.
    fn last_body(&self) -> Value {
        let bodies = self.bodies.lock().expect("bodies");
        let text = bodies.last().expect("a request");
        serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
    }
}

fn bot_path() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("values-bot.yaml");
    // Written whole, then renamed over: tests of one process run at once,
    // and one may read the file while another writes it.
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("values-bot.yaml.{n}"));
    std::fs::write(&partial, BOT).expect("bot");
    std::fs::rename(&partial, &path).expect("bot in place");
    path
}

/// `patchbay run BOT --interaction create --json` with `vars`; its JSON.
fn run_json(api: &TicketApi, vars: &[&str]) -> Value {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"));
    command
        .arg("run")
        .arg(bot_path())
        .args(["--interaction", "create", "--message", "help", "--json"])
        .args(["--env", &api.env()]);
    for var in vars {
        command.args(["--var", var]);
    }
    let output = command.output().expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_from_the_bots_variables_and_knows_its_id() {
    let api = TicketApi::start().await;
    let turn = run_json(&api, &["skill=billing"]);
    assert_eq!(turn["variables"]["limit"], "5", "{turn}");
    assert_eq!(turn["variables"]["priority"], "normal", "{turn}");
    assert_eq!(
        turn["messages"],
        json!(["values-bot/values-bot: limit 5 (script saw 5), waits 1"]),
        "{turn}"
    );
    let body = api.last_body();
    assert_eq!(body["limit"], 5, "{body}");
    assert_eq!(body["priority"], "normal", "{body}");
    assert_eq!(body["bot"], "values-bot", "{body}");

    // A value the conversation already holds wins over the bot's.
    let turn = run_json(&api, &["skill=billing", "limit=9"]);
    assert_eq!(turn["variables"]["limit"], "9", "{turn}");
    assert_eq!(api.last_body()["limit"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sends_values_outside_quotes_as_whole_json_values() {
    let api = TicketApi::start().await;
    run_json(
        &api,
        &[
            r#"ids=[1, 2, "x"]"#,
            r#"note=Hi", "admin": true, "x": ""#,
            "skill=billing",
        ],
    );
    let body = api.last_body();
    assert_eq!(body["ids"], json!([1, 2, "x"]), "{body}");
    assert_eq!(body["note"], r#"Hi", "admin": true, "x": ""#, "{body}");
    assert!(
        body.get("admin").is_none(),
        "a value added a member: {body}"
    );
    assert_eq!(
        body.as_object().map(serde_json::Map::len),
        Some(5),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_a_value_in_a_field_path_as_one_member_name() {
    let api = TicketApi::start().await;
    let turn = run_json(&api, &["skill=sales"]);
    assert_eq!(turn["fields"]["T.wait"], "5", "{turn}");
    for skill in [
        "*",
        "",
        "..",
        "[0]",
        "[*]",
        "'",
        "$",
        "?(@.avgWait)",
        "billing.avgWait",
        "sales']..['avgWait",
    ] {
        let turn = run_json(&api, &[&format!("skill={skill}")]);
        assert_eq!(turn["fields"]["T.wait"], json!([]), "{skill:?}: {turn}");
        assert_eq!(turn["success"], true, "{skill:?}: {turn}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_every_new_conversation_from_the_bots_variables() {
    let api = TicketApi::start().await;
    let bot = bot_path();
    let server = Process::serve(&bot, &[&api.env()], &[]);
    let turns = "/v1/bots/values-bot/turns";

    // The caller holds the state: none yet.
    let (status, answer) = post_json(
        server.addr,
        turns,
        &json!({"interaction": "create", "message": "help"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["variables"]["limit"], "5", "{answer}");
    // Given again each turn, never kept: a kept copy would hide a
    // "forever" value the user gets later.
    assert!(
        answer["state"]["variables"].get("limit").is_none(),
        "{answer}"
    );
    assert_eq!(api.last_body()["limit"], 5);
    assert_eq!(api.last_body()["bot"], "values-bot");

    // A state that holds the variable keeps its value.
    let (status, answer) = post_json(
        server.addr,
        turns,
        &json!({
            "interaction": "create",
            "message": "help",
            "state": {"variables": {"limit": "7", "ids": "[3, 4]"}}
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = api.last_body();
    assert_eq!(body["limit"], 7, "{body}");
    assert_eq!(body["ids"], json!([3, 4]), "{body}");
    assert_eq!(body["priority"], "normal", "{body}");

    // A conversation the server keeps starts from them too.
    let (status, answer) = post_json(
        server.addr,
        turns,
        &json!({"conversationId": "c-values", "interaction": "create", "message": "help"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["variables"]["priority"], "normal", "{answer}");
    assert_eq!(api.last_body()["limit"], 5);

    // A user's "forever" value, set later in another conversation, wins
    // over the bot's starting value in a conversation that began before.
    let stored = |conversation: &str, interaction: &str| {
        json!({
            "conversationId": conversation,
            "userId": "u-values",
            "interaction": interaction,
            "message": "help"
        })
    };
    for (conversation, interaction) in [("c-a", "create"), ("c-b", "prefer-high")] {
        let (status, answer) =
            post_json(server.addr, turns, &stored(conversation, interaction)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = post_json(server.addr, turns, &stored("c-a", "create")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(api.last_body()["priority"], "high", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_invoke_renders_the_bots_variables_and_whole_json_values() {
    let api = TicketApi::start().await;
    let bot = bot_path();
    let server = Process::serve(&bot, &[&api.env()], &[]);
    let (status, answer) = post_json(
        server.addr,
        "/v1/bots/values-bot/integrations/create/invoke",
        &json!({"state": {"variables": {"ids": "{\"a\": [true]}", "note": "5 6"}}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = api.last_body();
    assert_eq!(body["limit"], 5, "{body}");
    assert_eq!(body["ids"], json!({"a": [true]}), "{body}");
    assert_eq!(body["note"], "5 6", "{body}");
}
