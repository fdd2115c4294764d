//! `patchbay serve` as a real process: turns over HTTP, metrics, a SIGHUP
//! reload that rejects a broken file, and a SIGTERM that drains a slow turn.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_tests::client::{post_json, request, request_h2};
use patchbay_tests::servers::{self, reply};
use serde_json::json;

/// Planted in the bot's credential; must never come back out.
const CANARY: &str = "canary-7f3a9c-never-print-me";

fn bot_file(marker: &str) -> String {
    format!(
        r#"name: shop
env:
  SHOP_URL: null
  SHOP_KEY: null
network:
  allow: ["127.0.0.1"]
credentials:
  - name: shop-key
    type: api-key
    header: X-Api-Key
    value: "{{$env.SHOP_KEY}}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{{$env.SHOP_URL}}/items/{{$botContext.item}}"
    credential: shop-key
    customDataFields:
      name: "{{$.api_ITEM.name}}"
  - name: slow
    responseDataVariable: SLOW
    type: api
    method: GET
    url: "{{$env.SHOP_URL}}/slow"
    customDataFields:
      done: "{{$.api_SLOW.done}}"
dialogs:
  - name: shop
    interactions:
      - name: look-up
        type: integration
        integration: item
        next: end
        preProcess: |
          botContext.setBotVariable("item", botContext.getCurrentUserMessage(), true, false);
          var seen = Number(botContext.getBotVariable("seen") || "0");
          botContext.setBotVariable("seen", String(seen + 1), true, false);
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "{marker}: {{ITEM.name}} (turn {{$botContext.seen}})"
            next: end
      - name: wait
        type: integration
        integration: slow
        rules:
          - name: done
            match:
              apiResult: success
            messages:
              - "slow call done"
            next: end
"#
    )
}

/// A running `patchbay serve`, its output collected as it comes.
pub(crate) struct Process {
    child: Child,
    pub(crate) addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(args)
            .current_dir(crate::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn patchbay serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = err.read(&mut buffer) {
                sink.lock()
                    .expect("stderr")
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let (first, announced) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = first.send(line.clone());
                let mut all = sink.lock().expect("stdout");
                all.push_str(&line);
                all.push('\n');
            }
        });
        let line = announced
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "no listening line; stderr:\n{}",
                    stderr.lock().expect("stderr")
                )
            });
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in `{line}`"));
        Self {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Waits for the process to exit; its exit code.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!(
            "patchbay serve did not exit within {limit:?}; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Process {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        patchbay_tests::rss_kib(&self.child.id().to_string())
    }

    /// `patchbay serve --bot BOT --listen 127.0.0.1:0`, each of `env` as
    /// `--env`, then `more`.
    pub(crate) fn serve(bot: &Path, env: &[&str], more: &[&str]) -> Self {
        let mut args = vec![
            "serve",
            "--bot",
            bot.to_str().expect("utf-8 path"),
            "--listen",
            "127.0.0.1:0",
        ];
        for pair in env {
            args.extend(["--env", pair]);
        }
        args.extend(more);
        Self::start(&args)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn turn(addr: SocketAddr, body: serde_json::Value) -> serde_json::Value {
    let (status, json) = post_json(addr, "/v1/bots/shop/turns", &body).await;
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_reloads_and_drains() {
    let slow_started = Arc::new(AtomicBool::new(false));
    let upstream = {
        let slow_started = Arc::clone(&slow_started);
        servers::http(move |request| {
            let slow_started = Arc::clone(&slow_started);
            async move {
                let path = request.uri().path().to_owned();
                let key = request
                    .headers()
                    .get("x-api-key")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                match path.as_str() {
                    "/slow" => {
                        slow_started.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        reply(200, r#"{"done":"yes"}"#)
                    }
                    "/items/mug" if key == CANARY => reply(200, r#"{"name":"Blue mug"}"#),
                    _ => reply(404, r#"{"error":"no such item"}"#),
                }
            }
        })
        .await
    };
    let dir = std::env::temp_dir().join(format!("patchbay-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("shop.yaml");
    std::fs::write(&bot, bot_file("Item")).expect("write bot");
    let shop_url = format!("SHOP_URL=http://{}", upstream.addr);
    let shop_key = format!("SHOP_KEY={CANARY}");
    let mut server = Process::serve(
        &bot,
        &[&shop_url, &shop_key],
        &["--log", "trace", "--log-format", "json"],
    );
    let addr = server.addr;
    let mut answers = Vec::new();

    // A turn, then a second one that carries the returned state back.
    let first = turn(addr, json!({"interaction": "look-up", "message": "mug"})).await;
    assert_eq!(
        first["messages"],
        json!(["Item: Blue mug (turn 1)"]),
        "{first}"
    );
    assert_eq!(first["fields"]["ITEM.name"], "Blue mug");
    assert_eq!(first["state"]["variables"]["seen"], "1");
    assert_eq!(first["steps"][0]["call"]["status"], 200);
    let second = turn(
        addr,
        json!({"interaction": "look-up", "message": "mug", "state": first["state"]}),
    )
    .await;
    assert_eq!(
        second["messages"],
        json!(["Item: Blue mug (turn 2)"]),
        "{second}"
    );
    let missing = turn(addr, json!({"interaction": "look-up", "message": "teapot"})).await;
    assert_eq!(missing["success"], false, "{missing}");
    assert_eq!(missing["status"], 404);
    assert_eq!(
        missing["messages"],
        json!(["Sorry, I could not find anything for that."])
    );
    let (status, invoked) = post_json(
        addr,
        "/v1/bots/shop/integrations/item/invoke",
        &json!({"state": {"variables": {"item": "mug"}}}),
    )
    .await;
    assert_eq!(status, 200, "{invoked}");
    assert_eq!(invoked["fields"]["name"], "Blue mug");
    assert_eq!(invoked["state"]["fields"]["ITEM.name"], "Blue mug");
    answers.extend([
        first.to_string(),
        second.to_string(),
        missing.to_string(),
        invoked.to_string(),
    ]);

    // Failures answer JSON with a stable code, each one documented.
    let openapi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::root().join("docs/openapi.json")).expect("openapi.json"),
    )
    .expect("openapi.json is JSON");
    let documented = openapi["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        ["code"]["enum"]
        .as_array()
        .expect("documented codes")
        .clone();
    let mut paths: Vec<_> = openapi["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/",
            "/healthz",
            "/metrics",
            "/readyz",
            "/v1/bots",
            "/v1/bots/{bot}/integrations/{integration}/invoke",
            "/v1/bots/{bot}/turns"
        ]
    );
    for (method, path, body, expected_status, code) in [
        ("POST", "/v1/bots/nobody/turns", "{}", 404, "unknown_bot"),
        (
            "POST",
            "/v1/bots/shop/turns",
            "{not json",
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/v1/bots/shop/turns",
            r#"{"interaction": 3}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/bots/shop/turns",
            r#"{"state": {"variables": []}}"#,
            400,
            "invalid_state",
        ),
        (
            "POST",
            "/v1/bots/shop/turns",
            r#"{"interaction": "nope"}"#,
            404,
            "unknown_interaction",
        ),
        ("GET", "/v1/bots/shop/turns", "", 405, "method_not_allowed"),
        ("GET", "/nowhere", "", 404, "not_found"),
        ("GET", "/", "", 404, "not_found"),
    ] {
        let (status, text) = request(addr, method, path, body).await;
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON error");
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (expected_status, Some(code)),
            "{method} {path}: {text}"
        );
        assert!(
            documented.contains(&json!(code)),
            "`{code}` is not in docs/openapi.json"
        );
        answers.push(text);
    }
    let huge = format!(r#"{{"message": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, text) = request(addr, "POST", "/v1/bots/shop/turns", &huge).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("request_too_large"));

    let (status, text) = request(addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = request_h2(
        addr,
        "POST",
        "/v1/bots/shop/turns",
        r#"{"interaction": "look-up", "message": "mug"}"#,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Blue mug"), "{text}");
    let (status, text) = request(addr, "GET", "/readyz", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("shop"));

    let (status, metrics) = request(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    for expected in [
        r#"patchbay_turns_total{bot="shop",outcome="success"} 3"#,
        r#"patchbay_turns_total{bot="shop",outcome="failure"} 1"#,
        r#"patchbay_upstream_responses_total{integration="item",class="4xx"} 1"#,
        r#"patchbay_integration_duration_seconds_bucket{bot="shop",integration="item""#,
        r#"patchbay_phase_duration_seconds_bucket{phase="request""#,
        r#"patchbay_phase_duration_seconds_bucket{phase="pre-process""#,
        r#"patchbay_script_duration_seconds_count"#,
        r#"patchbay_requests_total{route="turns",status="400"} 3"#,
        r#"patchbay_call_failures_total{kind="status"} 1"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing `{expected}` in:\n{metrics}"
        );
    }
    answers.push(metrics);

    // SIGHUP with a broken file: rejected, the old bot keeps serving.
    std::fs::write(&bot, "name: shop\nintegrations: [oops\n").expect("break bot");
    server.signal("HUP");
    wait_for("the reload to be rejected", || {
        server.stderr().contains("reload rejected")
    })
    .await;
    let still = turn(addr, json!({"interaction": "look-up", "message": "mug"})).await;
    assert_eq!(
        still["messages"],
        json!(["Item: Blue mug (turn 1)"]),
        "{still}"
    );

    // SIGHUP with a good file: the new version serves.
    std::fs::write(&bot, bot_file("Article")).expect("fix bot");
    server.signal("HUP");
    wait_for("the reload", || server.stderr().contains("\"reloaded\"")).await;
    let reloaded = turn(addr, json!({"interaction": "look-up", "message": "mug"})).await;
    assert_eq!(
        reloaded["messages"],
        json!(["Article: Blue mug (turn 1)"]),
        "{reloaded}"
    );

    // A turn past the request deadline answers 504 and the server goes on.
    let mut hurried = Process::serve(&bot, &[&shop_url, &shop_key], &["--deadline-ms", "300"]);
    let (status, text) = request(
        hurried.addr,
        "POST",
        "/v1/bots/shop/turns",
        r#"{"interaction": "wait"}"#,
    )
    .await;
    assert_eq!(status, 504, "{text}");
    assert!(text.contains("deadline_exceeded"), "{text}");
    let (status, _) = request(hurried.addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    hurried.signal("TERM");
    assert_eq!(hurried.wait(Duration::from_secs(20)), Some(0));
    slow_started.store(false, Ordering::SeqCst);

    // SIGTERM during a slow turn: the turn completes, then the process exits 0.
    let slow = tokio::spawn(async move {
        post_json(addr, "/v1/bots/shop/turns", &json!({"interaction": "wait"})).await
    });
    wait_for("the slow call to reach the upstream", || {
        slow_started.load(Ordering::SeqCst)
    })
    .await;
    server.signal("TERM");
    let (status, drained) = slow.await.expect("slow turn");
    assert_eq!(status, 200, "{drained}");
    assert_eq!(drained["messages"], json!(["slow call done"]), "{drained}");
    assert_eq!(
        server.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        server.stderr()
    );
    answers.push(drained.to_string());

    // Spans with durations, as JSON lines; and no secret anywhere.
    let logs = server.stderr();
    let closed: Vec<String> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["fields"]["message"] == "close" && event["fields"]["time.busy"].is_string()
        })
        .filter_map(|event| event["span"]["name"].as_str().map(str::to_owned))
        .collect();
    for span in [
        "turn",
        "interaction",
        "integration",
        "http.call",
        "http.attempt",
        "script",
    ] {
        assert!(
            closed.iter().any(|name| name == span),
            "no closed `{span}` span in:\n{logs}"
        );
    }
    let stdout = server.stdout.lock().expect("stdout").clone();
    for (what, text) in [("stderr", &logs), ("stdout", &stdout)] {
        patchbay_tests::captured::keep("cli", &format!("serve-{what}"), text);
        assert!(
            !text.contains(CANARY),
            "the canary secret leaked into {what}"
        );
    }
    for answer in &answers {
        patchbay_tests::captured::keep("cli", "serve-answers", answer);
        assert!(
            !answer.contains(CANARY),
            "the canary secret leaked into an answer: {answer}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Path::new(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_leaves_the_examples_running() {
    let mut demo = Process::start(&["demo", "--serve", "--listen", "127.0.0.1:0"]);
    let addr = demo.addr;
    let (status, turn) = post_json(
        addr,
        "/v1/bots/faq-bot/turns",
        &json!({"interaction": "search", "message": "unicorn insurance"}),
    )
    .await;
    assert_eq!(status, 200, "{turn}");
    assert!(
        turn["messages"].to_string().contains("No Articles Found"),
        "{turn}"
    );
    let (status, text) = request(addr, "GET", "/readyz", "").await;
    assert_eq!(status, 200, "{text}");
    demo.signal("TERM");
    assert_eq!(demo.wait(Duration::from_secs(20)), Some(0));
    let printed = demo.stdout.lock().expect("stdout").clone();
    assert!(
        printed.contains(&format!("curl -s http://{addr}/v1/bots/faq-bot/turns")),
        "{printed}"
    );
}
