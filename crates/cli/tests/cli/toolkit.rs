//! The bot authors' toolkit as a user runs it: `patchbay test` on the
//! examples' own test files, a broken expectation's diff, JUnit output,
//! and a recording made against a real local server, then replayed with
//! that server gone.

use std::path::PathBuf;

use patchbay_tests::captured::{self, CANARY};
use patchbay_tests::servers::{self, reply};

use crate::{patchbay, root, stdout};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn every_example_bot_passes_its_own_test_file() {
    let examples = root().join("examples");
    let bots = std::fs::read_dir(&examples)
        .expect("examples")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "yaml")
                && !path.to_string_lossy().ends_with(".test.yaml")
        })
        .collect::<Vec<_>>();
    assert!(bots.len() >= 3, "{bots:?}");
    for bot in &bots {
        let test = bot.with_extension("test.yaml");
        assert!(test.exists(), "{} has no test file", bot.display());
    }
    let output = patchbay(&["test", "examples"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains(" 0 failed"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with("case "))
            .count(),
        text.lines().filter(|line| line.ends_with("... ok")).count(),
        "{text}"
    );
}

#[test]
fn a_broken_expectation_fails_with_a_readable_diff() {
    let dir = temp_dir("broken-test");
    let test = dir.join("broken.test.yaml");
    std::fs::write(
        &test,
        format!(
            r#"bot: {}
cases:
  - name: expects the wrong article
    interaction: search
    message: password
    upstream:
      - request: POST https://auth.example.com/oauth2/token
        body: {{ access_token: t, token_type: Bearer, expires_in: 60 }}
      - request: GET https://kb.example.com/api/v2/articles/search
        body: {{ items: [{{ title: Reset your password, url: "https://h/1", status: published, score: 1 }}] }}
    expect:
      messages:
        - "Here is what I found: Change your email (https://h/2)"
        - Anything else I can help with?
  - name: has no answer for its call
    interaction: search
    message: password
    expect:
      success: true
"#,
            root().join("examples/faq-bot.yaml").display()
        ),
    )
    .expect("test file");
    let path = test.to_str().expect("utf-8");
    let output = patchbay(&["test", path]);
    let text = stdout(&output);
    captured::keep("cli", "test-broken", &text);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "expects the wrong article ... FAILED",
        "messages: (- expected, + actual)",
        "  - - Here is what I found: Change your email (https://h/2)",
        "  + - Here is what I found: Reset your password (https://h/1)",
        "    - Anything else I can help with?",
        "no answer for POST https://auth.example.com/oauth2/token",
        "test result: FAILED. 0 passed, 2 failed",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    let junit = patchbay(&["test", path, "--format", "junit"]);
    let xml = stdout(&junit);
    assert_eq!(junit.status.code(), Some(1));
    assert!(
        xml.starts_with("<?xml") && xml.contains(r#"tests="2" failures="2""#),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"messages differs\">"),
        "{xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const RECORDED_BOT: &str = r#"name: recorded
env:
  BASE: null
  SHOP_KEY: null
network:
  allow: ["127.0.0.1"]
credentials:
  - name: shop
    type: api-key
    header: X-Shop-Key
    value: "{$env.SHOP_KEY}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.BASE}/items/{$botContext.item}"
    credential: shop
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - match:
              apiResult: success
            messages:
              - "Found {ITEM.name}"
            next: end
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_with_the_server_gone() {
    let dir = temp_dir("recording");
    let bot = dir.join("recorded.yaml");
    std::fs::write(&bot, RECORDED_BOT).expect("bot");
    let recordings = dir.join("recordings");
    let server = servers::http(|request| async move {
        let key = request
            .headers()
            .get("x-shop-key")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if key != CANARY {
            return reply(401, r#"{"error":"no key"}"#);
        }
        // The key comes back in the body, as careless APIs do.
        reply(200, format!(r#"{{"name":"Blue mug","echo":"{key}"}}"#))
    })
    .await;
    let base = format!("BASE=http://{}", server.addr);
    let key = format!("SHOP_KEY={CANARY}");
    let bot_path = bot.to_str().expect("utf-8");
    let recorded_dir = recordings.to_str().expect("utf-8");
    let run = |extra: &[&str], item: &str| {
        let mut args = vec![
            "run",
            bot_path,
            "--interaction",
            "look-up",
            "--json",
            "--env",
            &base,
            "--env",
            &key,
        ];
        let var = format!("item={item}");
        args.extend(["--var", &var]);
        args.extend(extra);
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(&args)
            .output()
            .expect("run patchbay")
    };
    // The server runs on the other worker thread while this one waits.
    let recorded = run(&["--record", recorded_dir], "mug");
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    let answer: serde_json::Value = serde_json::from_slice(&recorded.stdout).expect("json");
    assert_eq!(answer["messages"], serde_json::json!(["Found Blue mug"]));
    let files: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .expect("recordings")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let recording = std::fs::read_to_string(&files[0]).expect("recording");
    captured::keep("cli", "recording", &recording);
    assert!(
        !recording.contains(CANARY),
        "a secret in the recording:\n{recording}"
    );
    let json: serde_json::Value = serde_json::from_str(&recording).expect("recording json");
    assert_eq!(json["request"]["headers"]["x-shop-key"], "[redacted]");
    assert_eq!(json["response"]["body"]["echo"], "[redacted]");
    assert_eq!(json["response"]["body"]["name"], "Blue mug");

    drop(server);
    let replayed = run(&["--replay", recorded_dir], "mug");
    assert!(replayed.status.success(), "{}", stderr(&replayed));
    let again: serde_json::Value = serde_json::from_slice(&replayed.stdout).expect("json");
    assert_eq!(again["messages"], answer["messages"]);
    assert_eq!(again["status"], 200);

    // A call that was never recorded fails the run, and says which.
    let missing = run(&["--replay", recorded_dir], "lamp");
    let said = String::from_utf8_lossy(&missing.stdout).into_owned();
    assert_eq!(missing.status.code(), Some(1), "{said}");
    let error: serde_json::Value = serde_json::from_str(&said).expect("one JSON object");
    assert_eq!(error["error"]["code"], "replay_miss", "{said}");
    let call = error["error"]["calls"][0].as_str().unwrap_or_default();
    assert!(
        call.starts_with("GET http://127.0.0.1:")
            && call.ends_with("/items/lamp: no recording of this call"),
        "{said}"
    );

    // And a test file replays it too.
    std::fs::write(
        dir.join("recorded.test.yaml"),
        format!(
            "env:\n  {}\ncases:\n  - name: replayed\n    interaction: look-up\n    variables: {{ item: mug }}\n    replay: recordings\n    expect:\n      messages: [Found Blue mug]\n",
            base.replacen('=', ": ", 1)
        ),
    )
    .expect("test file");
    let tested = patchbay(&["test", dir.to_str().expect("utf-8")]);
    assert!(
        tested.status.success(),
        "{}{}",
        stdout(&tested),
        stderr(&tested)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
