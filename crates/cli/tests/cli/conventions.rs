//! Service conventions (issue 21, item 7): `NO_COLOR`, `# HELP` on every
//! metric, `Allow` on 405 and `HEAD` where `GET` is, one access-log line
//! per request with its request id, the caller's `traceparent` logged and
//! passed to upstream calls, errors as problem details, JSON logs that stay
//! JSON on a reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use patchbay_tests::servers::{self, reply};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::serve::Process;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patchbay-conventions-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A bot whose one interaction calls `{$env.API}/items/1`.
const TRACED_BOT: &str = r#"name: traced
env:
  API: null
network:
  allow: ["127.0.0.1"]
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.API}/items/1"
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "found {ITEM.name}"
            next: end
"#;

/// An upstream answering `{"name": "mug"}` that keeps each request's
/// `traceparent` (empty when none came).
async fn upstream() -> (servers::Server, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let server = servers::http(move |request| {
        let sink = Arc::clone(&sink);
        async move {
            let traceparent = request
                .headers()
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            sink.lock().expect("seen").push(traceparent);
            reply(200, r#"{"name": "mug"}"#)
        }
    })
    .await;
    (server, seen)
}

/// `patchbay serve --log-format json` with the traced bot calling `api`.
fn serve_traced(dir: &Path, api: &str) -> Process {
    let bot = dir.join("traced.yaml");
    std::fs::write(&bot, TRACED_BOT).expect("bot");
    let env = format!("API={api}");
    Process::start(&[
        "serve",
        "--log-format",
        "json",
        "--bot",
        utf8(&bot),
        "--env",
        &env,
        "--listen",
        "127.0.0.1:0",
    ])
}

/// One HTTP/1.1 request with `headers`: the status, the response's
/// headers and its body as text.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The JSON log lines of `stderr` (a line that is not JSON fails).
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("a log line is not JSON: {line}\n\nall:\n{stderr}"))
        })
        .collect()
}

/// The access-log line with this request id, once it is written.
async fn access_line(process: &Process, request_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let found = json_lines(&process.stderr()).into_iter().find(|line| {
            line["target"] == "patchbay::access" && line["fields"]["request_id"] == request_id
        });
        if let Some(line) = found {
            return line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no access line for {request_id}:\n{}",
            process.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn run_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchbay"));
    command
        .args(args)
        .current_dir(crate::root())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run patchbay")
}

fn escapes(output: &Output) -> bool {
    let all = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
    String::from_utf8_lossy(&all).contains("\x1b[")
}

#[test]
fn no_color_turns_colours_off_in_logs_reports_and_test_output() {
    let dir = temp_dir("color");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "name: broken\ndialogs:\n  - name: main\n    interactions:\n      - name: hi\n        type: questio\n        text: hi\n").expect("broken");
    let hello = dir.join("hello.yaml");
    std::fs::write(&hello, "name: hello\ndialogs:\n  - name: main\n    interactions:\n      - name: hi\n        type: question\n        text: hi\n").expect("hello");
    let good = dir.join("good");
    assert!(run_with(&[], &["init", utf8(&good)]).status.success());
    let commands: [&[&str]; 4] = [
        &["check", utf8(&broken)],
        &["run", utf8(&broken), "--message", "hi"],
        &["--log", "debug", "run", utf8(&hello), "--interaction", "hi"],
        &["test", utf8(&good)],
    ];
    for args in commands {
        // CLICOLOR_FORCE colours what is not a terminal: the colours
        // NO_COLOR must take away are there.
        let forced = run_with(&[("CLICOLOR_FORCE", "1")], args);
        if args[0] != "test" {
            assert!(escapes(&forced), "{args:?}: no colour even when forced");
        }
        let plain = run_with(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], args);
        assert!(
            !escapes(&plain),
            "{args:?} with NO_COLOR:\n{}{}",
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&plain.stderr)
        );
        assert_eq!(forced.status.code(), plain.status.code(), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_type() {
    let dir = temp_dir("metrics");
    let (api, _) = upstream().await;
    let server = serve_traced(&dir, api.url("").as_str().trim_end_matches('/'));
    let (status, _, answer) = send(
        server.addr,
        "POST",
        "/v1/bots/traced/turns",
        &[],
        &json!({"interaction": "look-up"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, headers, text) = send(server.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "{text}");
    assert!(header(&headers, "content-type").starts_with("text/plain"));
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(rest.split(' ').next().expect("name").to_owned());
        }
    }
    for expected in [
        "patchbay_requests_total",
        "patchbay_turns_total",
        "patchbay_upstream_responses_total",
        "patchbay_integration_duration_seconds",
    ] {
        assert!(
            families.iter().any(|family| family == expected),
            "{expected} missing:\n{text}"
        );
    }
    for family in &families {
        let help = format!("# HELP {family} ");
        assert!(
            text.lines().any(|line| line.starts_with(&help)),
            "{family} has no # HELP line:\n{text}"
        );
    }
    for sample in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
    {
        let name = sample.split(['{', ' ']).next().expect("name");
        assert!(
            families.iter().any(|family| {
                name == family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family))
            }),
            "{name} has no # TYPE line:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_answered_where_get_is_and_405_says_allow() {
    let dir = temp_dir("head");
    let server = serve_traced(&dir, "http://127.0.0.1:9");
    for path in ["/healthz", "/readyz", "/v1/bots", "/metrics"] {
        let (status, get_headers, get_body) = send(server.addr, "GET", path, &[], "").await;
        assert_eq!(status, 200, "GET {path}: {get_body}");
        let (status, headers, body) = send(server.addr, "HEAD", path, &[], "").await;
        assert_eq!(status, 200, "HEAD {path}");
        assert_eq!(body, "", "HEAD {path}");
        assert_eq!(
            header(&headers, "content-type"),
            header(&get_headers, "content-type")
        );
        if path != "/metrics" {
            // The metrics change between two scrapes.
            assert_eq!(
                header(&headers, "content-length"),
                get_body.len().to_string(),
                "HEAD {path}"
            );
        }
    }
    let (status, headers, body) = send(server.addr, "POST", "/healthz", &[], "").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(header(&headers, "allow"), "GET, HEAD");
    let (status, headers, body) = send(server.addr, "GET", "/v1/bots/traced/turns", &[], "").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(header(&headers, "allow"), "POST");
    let (status, headers, _) = send(server.addr, "HEAD", "/v1/bots/traced/turns", &[], "").await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), "POST");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_logged_once_with_its_request_id() {
    let dir = temp_dir("access");
    let (api, _) = upstream().await;
    let server = serve_traced(&dir, api.url("").as_str().trim_end_matches('/'));
    let turn = json!({"interaction": "look-up"}).to_string();
    let (status, headers, answer) = send(
        server.addr,
        "POST",
        "/v1/bots/traced/turns",
        &[("x-request-id", "caller-id-42")],
        &turn,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(header(&headers, "x-request-id"), "caller-id-42");
    let line = access_line(&server, "caller-id-42").await;
    assert_eq!(line["level"], "INFO", "{line}");
    let fields = &line["fields"];
    assert_eq!(fields["method"], "POST", "{line}");
    assert_eq!(fields["route"], "/v1/bots/{bot}/turns", "{line}");
    assert_eq!(fields["status"], 200, "{line}");
    assert!(fields["duration_ms"].as_f64().is_some(), "{line}");

    // An id that is not printable or too long is replaced, and the
    // replacement sent back.
    for bad in ["has space", &"x".repeat(129)] {
        let (status, headers, _) = send(
            server.addr,
            "GET",
            "/v1/bots/nope/turns",
            &[("x-request-id", bad)],
            "",
        )
        .await;
        assert_eq!(status, 405);
        let id = header(&headers, "x-request-id").to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let line = access_line(&server, &id).await;
        assert_eq!(line["fields"]["status"], 405, "{line}");
    }
    let (_, headers, _) = send(server.addr, "GET", "/nowhere/at/all", &[], "").await;
    let id = header(&headers, "x-request-id").to_owned();
    let line = access_line(&server, &id).await;
    assert_eq!(line["fields"]["route"], "unknown", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
    let lines = json_lines(&server.stderr());
    let once = lines
        .iter()
        .filter(|line| line["fields"]["request_id"] == "caller-id-42")
        .count();
    assert_eq!(once, 1, "{}", server.stderr());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_traceparent_is_logged_and_reaches_the_upstream() {
    let dir = temp_dir("trace");
    let (api, seen) = upstream().await;
    let server = serve_traced(&dir, api.url("").as_str().trim_end_matches('/'));
    let turn = json!({"interaction": "look-up"}).to_string();
    let (status, _, answer) = send(
        server.addr,
        "POST",
        "/v1/bots/traced/turns",
        &[("traceparent", TRACEPARENT), ("x-request-id", "traced-1")],
        &turn,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["messages"], json!(["found mug"]), "{answer}");
    let upstream_saw = seen.lock().expect("seen").clone();
    assert_eq!(upstream_saw.len(), 1, "{upstream_saw:?}");
    let parts: Vec<&str> = upstream_saw[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{upstream_saw:?}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE_ID, "01"));
    assert_eq!(parts[2].len(), 16);
    assert_ne!(parts[2], "00f067aa0ba902b7", "a span id of its own");
    let line = access_line(&server, "traced-1").await;
    assert_eq!(line["fields"]["trace_id"], TRACE_ID, "{line}");

    // Without one (or with a malformed one) the upstream gets none.
    for headers in [vec![], vec![("traceparent", "00-not-a-trace-01")]] {
        let (status, _, answer) = send(
            server.addr,
            "POST",
            "/v1/bots/traced/turns",
            &headers,
            &turn,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let upstream_saw = seen.lock().expect("seen").clone();
    assert_eq!(&upstream_saw[1..], ["", ""], "{upstream_saw:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_details_that_keep_the_error_object() {
    let dir = temp_dir("problem");
    let server = serve_traced(&dir, "http://127.0.0.1:9");
    let (status, headers, body) = send(
        server.addr,
        "POST",
        "/v1/bots/nobody/turns",
        &[],
        &json!({"message": "hi"}).to_string(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
    let problem: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        problem["type"], "https://patchbay.dev/problems/unknown_bot",
        "{problem}"
    );
    assert_eq!(problem["title"], "Not Found", "{problem}");
    assert_eq!(problem["status"], 404, "{problem}");
    assert_eq!(problem["code"], "unknown_bot", "{problem}");
    assert_eq!(problem["detail"], problem["error"]["message"], "{problem}");
    assert_eq!(problem["error"]["code"], "unknown_bot", "{problem}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_stay_json_when_a_reload_is_rejected() {
    let dir = temp_dir("reload");
    let server = serve_traced(&dir, "http://127.0.0.1:9");
    std::fs::write(
        dir.join("traced.yaml"),
        "name: traced\ndialogs:\n  - name: main\n    interactions:\n      - name: hi\n        type: questio\n        text: hi\n",
    )
    .expect("broken");
    server.signal("HUP");
    let started = Instant::now();
    while !server.stderr().contains("reload rejected") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no reload logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = json_lines(&server.stderr());
    let diagnostics = lines
        .iter()
        .find(|line| line["fields"]["diagnostics"].is_string())
        .unwrap_or_else(|| panic!("no diagnostics line:\n{}", server.stderr()));
    assert_eq!(diagnostics["level"], "ERROR", "{diagnostics}");
    assert!(
        diagnostics["fields"]["diagnostics"]
            .as_str()
            .is_some_and(|text| text.contains("questio")),
        "{diagnostics}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
