//! `patchbay serve` under load with upstream faults: many connections, 1%
//! of upstream calls failing in different ways; every turn is answered,
//! with its own answer, within the request deadline, and memory stays.
//! `PATCHBAY_LOAD_SECONDS` sets the length (CI: a short form; `cargo xtask
//! reliability`: 60 s).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use patchbay_tests::servers::{self, reply};
use patchbay_tests::table::{Row, report};
use tokio::net::TcpStream;

use crate::serve::Process;

const BOT: &str = r#"name: loaded
defaultFailureMessage: "FAILED {$userMessage}"
env:
  UPSTREAM: null
  SHOP_KEY: null
credentials:
  - name: shop-key
    type: api-key
    header: X-Api-Key
    value: "{$env.SHOP_KEY}"
network:
  allow: ["127.0.0.1"]
http:
  timeoutMs: 1000
  retries: 0
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.UPSTREAM}/item"
    credential: shop-key
    params:
      m: "{$userMessage}"
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: ask
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
              - "OK {$userMessage}"
            next: end
          - name: no-data
            match:
              apiResult: success
            messages:
              - "NO DATA {$userMessage}"
            next: end
"#;

const CONNECTIONS: usize = 200;
/// Planted in the credential; must appear in no answer and no log line.
const CANARY: &str = "canary-load-4b1d-never-print";
const DEADLINE: Duration = Duration::from_secs(5);

/// What the connections saw.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    ok: AtomicUsize,
    failed_path: AtomicUsize,
    wrong: AtomicUsize,
    late: AtomicUsize,
    broken: AtomicUsize,
    leaked: AtomicUsize,
    slowest_ms: AtomicUsize,
}

async fn connection(
    addr: SocketAddr,
    index: usize,
    until: Instant,
    tally: Arc<Tally>,
) -> HashSet<String> {
    let mut answered = HashSet::new();
    let Ok(stream) = TcpStream::connect(addr).await else {
        tally.broken.fetch_add(1, Ordering::SeqCst);
        return answered;
    };
    let Ok((mut sender, driver)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        tally.broken.fetch_add(1, Ordering::SeqCst);
        return answered;
    };
    tokio::spawn(driver);
    let mut sequence = 0;
    while Instant::now() < until {
        sequence += 1;
        let id = format!("m-{index}-{sequence}");
        let body = format!(r#"{{"interaction":"ask","message":"{id}"}}"#);
        let request = http::Request::post("/v1/bots/loaded/turns")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        tally.sent.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let answer = match sender.send_request(request).await {
            Ok(response) if response.status() == 200 => response.into_body().collect().await.ok(),
            _ => None,
        };
        let elapsed = started.elapsed();
        tally.slowest_ms.fetch_max(
            usize::try_from(elapsed.as_millis()).unwrap_or(usize::MAX),
            Ordering::SeqCst,
        );
        if elapsed > DEADLINE + Duration::from_secs(1) {
            tally.late.fetch_add(1, Ordering::SeqCst);
        }
        let Some(answer) = answer else {
            tally.broken.fetch_add(1, Ordering::SeqCst);
            return answered;
        };
        let json: serde_json::Value =
            serde_json::from_slice(&answer.to_bytes()).unwrap_or_default();
        let message = json["messages"][0].as_str().unwrap_or_default();
        if message == format!("OK {id}") {
            tally.ok.fetch_add(1, Ordering::SeqCst);
        } else if message == format!("FAILED {id}") || message == format!("NO DATA {id}") {
            tally.failed_path.fetch_add(1, Ordering::SeqCst);
        } else {
            tally.wrong.fetch_add(1, Ordering::SeqCst);
        }
        if !answered.insert(id) {
            tally.wrong.fetch_add(1, Ordering::SeqCst);
        }
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_under_load_with_upstream_faults_loses_no_turn() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // One call in a hundred fails: a 503, a hang past the call's deadline,
    // or a 200 whose body is not JSON, in turn.
    let upstream = servers::http(move |request| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        let keyed = request
            .headers()
            .get("x-api-key")
            .is_some_and(|key| key == CANARY);
        async move {
            if !keyed {
                return reply(401, r#"{"error":"no key"}"#);
            }
            match (call % 100 == 99).then_some((call / 100) % 3) {
                Some(0) => reply(503, r#"{"error":"busy"}"#),
                Some(1) => {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    reply(200, r#"{"name":"late"}"#)
                }
                Some(_) => reply(200, "<html>oops"),
                None => reply(200, r#"{"name":"Blue mug"}"#),
            }
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!("patchbay-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("loaded.yaml");
    std::fs::write(&bot, BOT).expect("bot");
    let upstream_env = format!("UPSTREAM=http://{}", upstream.addr);
    let key_env = format!("SHOP_KEY={CANARY}");
    let mut server = Process::serve(
        &bot,
        &[&upstream_env, &key_env],
        &[
            "--deadline-ms",
            "5000",
            "--log",
            "debug",
            "--log-format",
            "json",
        ],
    );
    let seconds: u64 = std::env::var("PATCHBAY_LOAD_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(4);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let warm_until = started + Duration::from_secs(1);
    let until = started + Duration::from_secs(seconds + 1);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..CONNECTIONS {
        tasks.spawn(connection(server.addr, index, until, Arc::clone(&tally)));
    }
    tokio::time::sleep_until(warm_until.into()).await;
    let warm_rss = server.rss_kib();
    let mut ids = HashSet::new();
    let mut duplicated = 0;
    for answered in tasks.join_all().await {
        for id in answered {
            if !ids.insert(id) {
                duplicated += 1;
            }
        }
    }
    let end_rss = server.rss_kib();
    let elapsed = started.elapsed();
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    let sent = tally.sent.load(Ordering::SeqCst);
    let ok = tally.ok.load(Ordering::SeqCst);
    let failed_path = tally.failed_path.load(Ordering::SeqCst);
    let wrong = tally.wrong.load(Ordering::SeqCst);
    let late = tally.late.load(Ordering::SeqCst);
    let broken = tally.broken.load(Ordering::SeqCst);
    let leaked = tally.leaked.load(Ordering::SeqCst);
    let logs = server.stderr();
    patchbay_tests::captured::keep("cli", "serve-under-load", &logs);
    let faults = calls.load(Ordering::SeqCst) / 100;
    let rows = [
        Row {
            case: format!("{CONNECTIONS} connections for {seconds} s, 1% upstream faults"),
            expected: "every turn answered with its own answer; none lost, none duplicated"
                .to_owned(),
            observed: format!(
                "{sent} sent: {ok} answered, {failed_path} on the failure path ({faults} faults injected), {wrong} wrong, {broken} lost, {duplicated} duplicated"
            ),
            time: elapsed,
            pass: sent > 0
                && ok + failed_path == sent
                && wrong == 0
                && broken == 0
                && duplicated == 0
                && ids.len() == sent,
        },
        Row {
            case: "every answer within the request deadline".to_owned(),
            expected: format!("≤ {} ms (+1 s)", DEADLINE.as_millis()),
            observed: format!(
                "slowest {} ms, {late} late",
                tally.slowest_ms.load(Ordering::SeqCst)
            ),
            time: elapsed,
            pass: late == 0,
        },
        Row {
            case: "a canary secret in the credential".to_owned(),
            expected: "in no answer and no log line (debug, JSON)".to_owned(),
            observed: format!(
                "{leaked} answer(s) and {} log line(s) of {} hold it",
                logs.lines().filter(|line| line.contains(CANARY)).count(),
                logs.lines().count()
            ),
            time: elapsed,
            pass: leaked == 0 && !logs.contains(CANARY) && logs.lines().count() > 0,
        },
        Row {
            case: "memory under load".to_owned(),
            expected: "RSS within 48 MiB of the warmed-up server's".to_owned(),
            observed: format!("{warm_rss} KiB after 1 s → {end_rss} KiB at the end"),
            time: elapsed,
            pass: end_rss.saturating_sub(warm_rss) < 48 * 1024,
        },
    ];
    let _ = std::fs::remove_dir_all(&dir);
    report("load", &rows);
}
