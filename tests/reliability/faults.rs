//! A fault-injecting upstream (raw TCP, one mode per path) against a whole
//! turn: every mode ends within the call's deadline, on the failure path
//! with a typed reason, or, when the exchange is valid HTTP but the body is
//! unusable, on the success path with no fields; the engine keeps working
//! and its memory comes back.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_engine::script::{Persistence, RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use patchbay_tests::captured::{self, CANARY};
use patchbay_tests::servers::{self, read_head};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{Row, report, rss_kib};

const BOT: &str = r#"
name: faults
defaultFailureMessage: FAILURE-PATH
network:
  allow: ["127.0.0.1"]
http:
  timeoutMs: 1500
  retries: 0
credentials:
  - name: shop
    type: api-key
    header: X-Api-Key
    value: "{$env.SHOP_KEY}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.BASE}/fault/{$botContext.mode}"
    credential: shop
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        next: end
        rules:
          - name: found
            match:
              apiResult: success
              conditions:
                - field: ITEM.name
                  op: not-empty
            messages:
              - "FOUND {ITEM.name}"
            next: end
          - name: no-data
            match:
              apiResult: success
            messages:
              - NO DATA
            next: end
"#;

/// The call's deadline in the bot above, and how late a turn may end.
const DEADLINE: Duration = Duration::from_millis(1500);
const SLACK: Duration = Duration::from_millis(1000);

/// What a turn must show for a mode.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The failure path: one of these failure kinds, the default message.
    Failure(&'static [&'static str]),
    /// A 200 whose body gives no field: the `no-data` rule.
    NoData,
    /// A good answer: the `found` rule.
    Found,
}

const MODES: &[(&str, Expect)] = &[
    ("refused", Expect::Failure(&["connect"])),
    ("silent", Expect::Failure(&["timeout"])),
    ("headers-then-hang", Expect::Failure(&["timeout"])),
    ("trickled-body", Expect::Failure(&["timeout"])),
    ("reset-mid-body", Expect::Failure(&["protocol", "connect"])),
    ("invalid-chunked", Expect::Failure(&["protocol"])),
    ("length-and-chunked", Expect::Failure(&["protocol"])),
    ("header-100kb", Expect::Failure(&["too-large", "protocol"])),
    ("gzip-bomb", Expect::Failure(&["too-large"])),
    ("body-64mib", Expect::Failure(&["too-large"])),
    ("garbage", Expect::Failure(&["protocol"])),
    ("invalid-utf8-json", Expect::NoData),
    ("json-nested-100k", Expect::NoData),
    ("wrong-content-type", Expect::NoData),
    ("empty-200", Expect::NoData),
    ("continue-then-200", Expect::Found),
    ("good", Expect::Found),
];

const GOOD: &[u8] = br#"{"name":"Blue mug"}"#;

/// Every answer says `connection: close`: the server closes each
/// connection after one answer, and a client that pooled one (a gzip bomb
/// is read whole before it is refused) would race that close.
async fn respond(mut stream: TcpStream) {
    let head = read_head(&mut stream).await;
    let mode = head
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/fault/"))
        .unwrap_or_default()
        .to_owned();
    let json = |body: &[u8], content_type: &str| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let forever = || tokio::time::sleep(Duration::from_secs(3600));
    match mode.as_str() {
        "silent" => forever().await,
        "headers-then-hang" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 100\r\n\r\n")
                .await;
            forever().await;
        }
        "trickled-body" => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 100000\r\n\r\n",
                )
                .await;
            for _ in 0..100_000 {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        "reset-mid-body" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1000\r\n\r\n{\"name\":")
                .await;
            #[allow(deprecated)] // a reset is the point
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        "invalid-chunked" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\nZZZ\r\nnot a chunk\r\n0\r\n\r\n")
                .await;
        }
        "length-and-chunked" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n13\r\n{\"name\":\"Smuggled\"}\r\n0\r\n\r\n")
                .await;
        }
        "header-100kb" => {
            let big = "a".repeat(100 * 1024);
            let _ = stream
                .write_all(
                    format!("HTTP/1.1 200 OK\r\nconnection: close\r\nx-big: {big}\r\ncontent-length: 2\r\n\r\n{{}}")
                        .as_bytes(),
                )
                .await;
        }
        "gzip-bomb" => {
            let body = gzip_bomb();
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            let _ = stream.write_all(&out).await;
        }
        "body-64mib" => {
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                        64 * 1024 * 1024
                    )
                    .as_bytes(),
                )
                .await;
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..1024 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        "garbage" => {
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n")
                .await;
        }
        "invalid-utf8-json" => {
            let _ = stream
                .write_all(&json(b"{\"name\": \"\xff\xfe\xfd\"", "application/json"))
                .await;
        }
        "json-nested-100k" => {
            let mut body = "[".repeat(100_000);
            body.push_str(&"]".repeat(100_000));
            let _ = stream
                .write_all(&json(body.as_bytes(), "application/json"))
                .await;
        }
        "wrong-content-type" => {
            let _ = stream
                .write_all(&json(
                    b"<html><body><h1>Maintenance</h1><p>Back soon</body>",
                    "text/html",
                ))
                .await;
        }
        "empty-200" => {
            let _ = stream.write_all(&json(b"", "application/json")).await;
        }
        "continue-then-200" => {
            let mut out = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
            out.extend_from_slice(&json(GOOD, "application/json"));
            let _ = stream.write_all(&out).await;
        }
        _ => {
            let _ = stream.write_all(&json(GOOD, "application/json")).await;
        }
    }
}

/// 16 MiB of zeros, gzipped to a few KiB: made once.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..16 {
            let _ = encoder.write_all(&zeros);
        }
        encoder.finish().unwrap_or_default()
    })
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The faults bot, ready (also served by the serve API property test).
pub(crate) async fn engine() -> Engine {
    engine_calling("").await
}

/// The faults bot calling `base` (`{$env.BASE}`: a conversation's value
/// cannot choose a URL's scheme, host or port, `urls.rs`).
async fn engine_calling(base: &str) -> Engine {
    let bot = patchbay_tests::bot("faults.yaml", BOT);
    let base = base.to_owned();
    let env = Arc::new(move |name: &str| match name {
        "SHOP_KEY" => Some(CANARY.to_owned()),
        "BASE" => Some(base.clone()),
        _ => None,
    });
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    Engine::new(bot, EngineOptions::new(env, scripts))
        .await
        .expect("engine")
}

async fn run_case(engine: &Engine, mode: &str, expect: Expect) -> Row {
    let mut state = ConversationState::default();
    state.set("mode", mode, Persistence::Session);
    let started = Instant::now();
    let turn = engine
        .run_turn(state, Start::Interaction("look-up".to_owned()), "")
        .await;
    let time = started.elapsed();
    let (observed, pass) = match turn {
        Ok(turn) => {
            captured::keep("reliability", "faults", &format!("{mode}: {turn:?}"));
            let call = turn.steps.first().and_then(|step| step.call.clone());
            let kind = call
                .as_ref()
                .and_then(|call| call.failure.as_ref())
                .map(|failure| failure.kind);
            let message = turn.texts().join(" / ");
            let observed = match (&call, kind) {
                (Some(call), Some(kind)) => format!(
                    "failure `{kind}`: {}; bot: {message}",
                    call.failure
                        .as_ref()
                        .map(|f| f.message.as_str())
                        .unwrap_or_default()
                ),
                (Some(call), None) => format!("status {:?}; bot: {message}", call.status),
                (None, _) => format!("no call; bot: {message}"),
            };
            let pass = match expect {
                Expect::Failure(kinds) => {
                    kind.is_some_and(|kind| kinds.contains(&kind)) && message == "FAILURE-PATH"
                }
                Expect::NoData => message == "NO DATA",
                Expect::Found => message == "FOUND Blue mug",
            };
            (observed, pass)
        }
        Err(error) => (format!("turn error: {error}"), false),
    };
    captured::keep("reliability", "faults", &observed);
    Row {
        case: mode.to_owned(),
        expected: match expect {
            Expect::Failure(kinds) => format!("failure path: {}", kinds.join(" or ")),
            Expect::NoData => "200, no fields: `no-data` rule".to_owned(),
            Expect::Found => "200: `found` rule".to_owned(),
        },
        observed,
        pass: pass && time <= DEADLINE + SLACK,
        time,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_fault_takes_the_failure_path_in_time() {
    gzip_bomb();
    let upstream = servers::raw(respond).await;
    let refused = format!("http://127.0.0.1:{}", closed_port().await);
    let base = format!("http://{}", upstream.addr);
    let engine = Arc::new(engine_calling(&base).await);
    let refusing = Arc::new(engine_calling(&refused).await);
    let engine_for = |mode: &str| {
        if mode == "refused" {
            Arc::clone(&refusing)
        } else {
            Arc::clone(&engine)
        }
    };
    // All modes at once: a fault in one call must not slow another.
    let mut calls = tokio::task::JoinSet::new();
    for (index, (mode, expect)) in MODES.iter().enumerate() {
        let engine = engine_for(mode);
        calls.spawn(async move { (index, run_case(&engine, mode, *expect).await) });
    }
    let mut rows = calls.join_all().await;
    rows.sort_by_key(|(index, _)| *index);
    let mut rows: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
    // Then the same again, twice, for memory: what the faults took must
    // come back.
    let before = rss_kib();
    for round in 0..2 {
        for (mode, expect) in MODES {
            let row = run_case(&engine_for(mode), mode, *expect).await;
            assert!(row.pass, "round {round}: {row:?}");
        }
    }
    let after = rss_kib();
    rows.push(Row {
        case: "memory after 2 more rounds".to_owned(),
        expected: "RSS within 32 MiB of the first round's".to_owned(),
        observed: format!("{before} KiB → {after} KiB"),
        time: Duration::ZERO,
        pass: after.saturating_sub(before) < 32 * 1024,
    });
    let good = run_case(&engine, "good", Expect::Found).await;
    rows.push(Row {
        case: "a good call afterwards".to_owned(),
        ..good
    });
    report("faults", &rows);
}
