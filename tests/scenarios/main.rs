//! End-to-end scenarios, data-driven: each folder of `tests/scenarios/`
//! holds a bot (`bot.yaml`), what the upstream API answers
//! (`upstream.json`), the turn to run (`run.json`) and the expected
//! transcript (`expected.json`): the `patchbay run --json` object plus the
//! requests the upstream saw. `UPDATE_EXPECT=1` rewrites the expectations.
//!
//! A turn's `attributes` are sent with its message (docs/http-api.md).
//! A `run.json` with `"turns": [{"message", "payload"?, "interaction"?, "attributes"?}, ...]`
//! plays them on one conversation, each turn taking the state the previous
//! one left (through its JSON form); its `expected.json` is then
//! `{"turns": [<turn, with its "state">...], "upstream": [...]}`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start, UserMessage};
use patchbay_script::{Persistence, RuntimeOptions, ScriptRuntime};
use patchbay_tests::servers::{self, reply};
use serde_json::{Value, json};

/// What the upstream saw of one request: its line, the names of the
/// credential headers it carried (never their values) and its body.
fn seen(method: &str, target: &str, headers: &http::HeaderMap, body: &[u8]) -> Value {
    let credentials: Vec<&str> = ["authorization", "x-api-key"]
        .into_iter()
        .filter(|name| headers.contains_key(*name))
        .collect();
    let mut entry = json!({ "request": format!("{method} {target}") });
    if !credentials.is_empty() {
        entry["credentials"] = json!(credentials);
    }
    if let Some(content_type) = headers.get("content-type").and_then(|v| v.to_str().ok()) {
        entry["contentType"] = json!(content_type);
    }
    for name in ["x-conversation", "x-note"] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            entry[name] = json!(value);
        }
    }
    if !body.is_empty() {
        entry["body"] =
            serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)));
    }
    entry
}

async fn upstream(routes: Vec<Value>, log: Arc<Mutex<Vec<Value>>>) -> servers::Server {
    let routes = Arc::new(routes);
    servers::http(move |request| {
        let routes = Arc::clone(&routes);
        let log = Arc::clone(&log);
        async move {
            let method = request.method().to_string();
            let path = request.uri().path().to_owned();
            let target = request
                .uri()
                .path_and_query()
                .map_or(path.clone(), |target| target.to_string());
            let headers = request.headers().clone();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|body| body.to_bytes())
                .unwrap_or_default();
            log.lock()
                .expect("log")
                .push(seen(&method, &target, &headers, &body));
            let route = routes.iter().find(|route| {
                route["path"] == path && route["method"].as_str().unwrap_or("GET") == method
            });
            let Some(route) = route else {
                return reply(404, r#"{"error":"no such route"}"#);
            };
            if let Some(delay) = route["delayMs"].as_u64() {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let status = route["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            let body = match &route["body"] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let mut response = reply(status, body);
            if let Some(content_type) = route["contentType"].as_str() {
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().expect("content type"));
            }
            response
        }
    })
    .await
}

async fn transcript(dir: &Path, scripts: &ScriptRuntime) -> Value {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let upstream_spec: Value = serde_json::from_str(&read("upstream.json")).unwrap_or(json!({}));
    let run: Value = serde_json::from_str(&read("run.json")).expect("run.json");
    let log = Arc::new(Mutex::new(Vec::new()));
    let routes = upstream_spec["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let server = upstream(routes, Arc::clone(&log)).await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let bot = match patchbay_config::load("bot.yaml", &read("bot.yaml")) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    };
    let mut env: HashMap<String, String> = run["env"]
        .as_object()
        .map(|env| {
            env.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    env.insert("BASE_URL".to_owned(), base);
    let env = Arc::new(move |name: &str| env.get(name).cloned());
    let engine = Engine::new(bot, EngineOptions::new(env, scripts.clone()))
        .await
        .expect("engine");
    let mut state = ConversationState {
        conversation_id: "conv-1".to_owned(),
        user_id: "user-1".to_owned(),
        ..ConversationState::default()
    };
    if let Some(vars) = run["vars"].as_object() {
        for (name, value) in vars {
            state.set(
                name,
                value.as_str().unwrap_or_default(),
                Persistence::Session,
            );
        }
    }
    let mut out = match run["turns"].as_array() {
        Some(turns) => {
            // One conversation: each turn takes the state the previous one
            // left, through its JSON form, as a client holding the state
            // would send it back.
            let mut played = Vec::new();
            for spec in turns {
                let turn = match play(&engine, std::mem::take(&mut state), spec).await {
                    Ok(turn) => turn,
                    Err(error) => {
                        played.push(json!({ "error": error.to_string() }));
                        break;
                    }
                };
                let mut out = serde_json::to_value(&turn).expect("turn JSON");
                let saved = turn.state.to_json();
                out["state"] = saved.clone();
                played.push(out);
                state = ConversationState::from_json(saved, engine.bot()).expect("state JSON");
            }
            json!({ "turns": played })
        }
        None => match play(&engine, state, &run).await {
            Ok(turn) => serde_json::to_value(&turn).expect("turn JSON"),
            Err(error) => json!({ "error": error.to_string() }),
        },
    };
    out["upstream"] = json!(log.lock().expect("log").clone());
    out
}

/// Plays one turn as `spec` (`run.json`, or one of its `turns`) says:
/// `message`, the clicked button's `payload`, and `interaction` to start
/// there. Without `interaction`, the turn starts from the message: the
/// question the conversation waits at, else the dialog whose starter
/// matches it, else the fallback dialog.
async fn play(
    engine: &Engine,
    state: ConversationState,
    spec: &Value,
) -> Result<patchbay_engine::Turn, patchbay_engine::EngineError> {
    let start = match spec["interaction"].as_str() {
        Some(name) => Start::Interaction(name.to_owned()),
        None => Start::Message,
    };
    let mut message = UserMessage::new(spec["message"].as_str().unwrap_or_default());
    if let Some(payload) = spec["payload"].as_str() {
        message = message.with_payload(payload);
    }
    if let Some(attributes) = spec.get("attributes") {
        let attributes = patchbay_engine::Attributes::from_json(attributes.clone());
        message = message.with_attributes(attributes.expect("run.json: attributes"));
    }
    engine.run_turn(state, start, message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_matches_its_transcript() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("scenarios")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in &dirs {
        let actual = transcript(dir, &scripts).await;
        let text = format!("{}\n", serde_json::to_string_pretty(&actual).expect("json"));
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        patchbay_tests::captured::keep("scenarios", &name, &text);
        assert!(
            !text.contains("canary"),
            "{} leaks a secret:\n{text}",
            dir.display()
        );
        let expected_path = dir.join("expected.json");
        if update {
            std::fs::write(&expected_path, &text).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != text {
            failures.push(format!(
                "--- {}\n{expected}\n+++ actual\n{text}",
                expected_path.display()
            ));
        }
    }
    assert!(dirs.len() >= 12, "only {} scenarios", dirs.len());
    assert!(
        failures.is_empty(),
        "{} scenario(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
