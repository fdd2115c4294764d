//! `patchbay serve` against slow, idle and odd clients, as an attacker
//! would be one: connections that send nothing, idle keep-alive and HTTP/2
//! connections, stalled and trickled bodies, more connections than the
//! limit, heads hyper refuses, encoded path segments, cross-site simple
//! POSTs and foreign `Host`s. Each case is a row of the `clients` table.
//! Limits are set small through flags and every bound is generous (5 s),
//! so a loaded machine does not make them flake.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchbay_tests::table::{Row, report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::serve::Process;

const BOT: &str = r#"name: faq-bot
dialogs:
  - name: main
    interactions:
      - name: hello
        type: text
        text: "Hello from faq-bot"
        next: end
"#;

/// How long any case may take to see the server act.
const BOUND: Duration = Duration::from_secs(5);

const TURN: &str = r#"{"interaction":"hello","message":"hi"}"#;

/// An answer read off a raw connection.
#[derive(Debug)]
enum Answer {
    /// A status and a body.
    Http(u16, String),
    /// The server closed the connection without an answer.
    Closed,
    /// Nothing within the bound.
    Nothing,
}

impl Answer {
    /// The error code of a JSON error answer with this status.
    fn json_error(&self, status: u16) -> Option<String> {
        let Self::Http(got, body) = self else {
            return None;
        };
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        (*got == status)
            .then(|| json["error"]["code"].as_str().map(str::to_owned))
            .flatten()
    }

    fn describe(&self) -> String {
        match self {
            Self::Http(status, body) => {
                format!("{status} {}", body.chars().take(120).collect::<String>())
            }
            Self::Closed => "closed without an answer".to_owned(),
            Self::Nothing => format!("nothing within {} s", BOUND.as_secs()),
        }
    }
}

/// Reads one answer (head and `content-length` body) within [`BOUND`].
async fn read_answer(stream: &mut (impl AsyncReadExt + Unpin)) -> Answer {
    let mut received = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(answer) = complete_answer(&received) {
                return answer;
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return complete_answer(&received).unwrap_or(Answer::Closed),
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    read.unwrap_or(Answer::Nothing)
}

fn complete_answer(received: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| Answer::Http(status, body[..length].to_owned()))
}

/// Sends `bytes` on a new connection and reads the answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    read_answer(&mut stream).await
}

fn post(path: &str, host: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How long until the server closes `stream`, if it does within the bound.
async fn closed_within(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

fn row(case: &str, expected: &str, observed: String, started: Instant, pass: bool) -> Row {
    Row {
        case: case.to_owned(),
        expected: expected.to_owned(),
        observed,
        time: started.elapsed(),
        pass,
    }
}

fn describe_close(closed: Option<Duration>) -> String {
    closed.map_or_else(
        || format!("still open after {} s", BOUND.as_secs()),
        |after| format!("closed after {} ms", after.as_millis()),
    )
}

async fn silent_connection(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let closed = closed_within(&mut stream).await;
    row(
        "a connection that never sends a byte",
        "closed after the header timeout (1 s)",
        describe_close(closed),
        started,
        closed.is_some(),
    )
}

async fn idle_http1(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    let answer = read_answer(&mut stream).await;
    let closed = closed_within(&mut stream).await;
    row(
        "HTTP/1.1 keep-alive connection left idle after a request",
        "answered, then closed after the idle timeout (1 s)",
        format!("{}; {}", answer.describe(), describe_close(closed)),
        started,
        matches!(answer, Answer::Http(200, _)) && closed.is_some(),
    )
}

async fn idle_http2(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}/healthz"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let status = match sender.send_request(request).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    let idle_from = Instant::now();
    let closed = tokio::time::timeout(BOUND, connection)
        .await
        .ok()
        .map(|_| idle_from.elapsed());
    row(
        "HTTP/2 connection left idle after a request",
        "answered, then closed (GOAWAY) after the idle timeout (1 s)",
        format!("{status}; {}", describe_close(closed)),
        started,
        status == 200 && closed.is_some(),
    )
}

async fn stalled_body(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /v1/bots/faq-bot/turns HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .expect("send");
    let answer = read_answer(&mut stream).await;
    row(
        "a head, then a body that stops after one byte",
        "408 body_timeout (JSON) after the body timeout (1 s)",
        answer.describe(),
        started,
        answer.json_error(408).as_deref() == Some("body_timeout"),
    )
}

async fn trickled_body(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let head = "POST /v1/bots/faq-bot/turns HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        // A byte every 200 ms: never silent long enough for a plain read
        // timeout, far below the minimum rate.
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let answer = read_answer(&mut reader).await;
    trickle.abort();
    let pass = answer.json_error(408).as_deref() == Some("body_timeout")
        || matches!(answer, Answer::Closed);
    row(
        "a body trickled a byte every 200 ms",
        "cut off: 408 body_timeout (JSON) or closed, within 5 s",
        answer.describe(),
        started,
        pass,
    )
}

/// Requests the server refuses with a JSON error of its own: (case, the
/// raw request, the status and error code expected).
fn refused_requests() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let mut many_fields = String::from("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for index in 0..150 {
        many_fields.push_str(&format!("x-field-{index}: {index}\r\n"));
    }
    many_fields.push_str("\r\n");
    vec![
        (
            "a malformed request head (HTTP/1.1)",
            b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "a head with 150 header fields (HTTP/1.1; hyper refuses it)",
            many_fields.into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a path segment that decodes to `/` (faq%2Fbot)",
            post(
                "/v1/bots/faq%2Fbot/turns",
                "127.0.0.1",
                "application/json",
                TURN,
            ),
            400,
            "bad_path",
        ),
        (
            "a cross-site simple POST (text/plain body): no turn runs",
            post("/v1/bots/faq-bot/turns", "127.0.0.1", "text/plain", TURN),
            415,
            "unsupported_media_type",
        ),
    ]
}

async fn refused(addr: SocketAddr) -> Vec<Row> {
    let mut rows = Vec::new();
    for (case, request, status, code) in refused_requests() {
        let started = Instant::now();
        let answer = exchange(addr, &request).await;
        rows.push(row(
            case,
            &format!("{status} {code} (JSON)"),
            answer.describe(),
            started,
            answer.json_error(status).as_deref() == Some(code),
        ));
    }
    rows
}

async fn large_head_http2(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}/healthz"))
        .header("x-large", "a".repeat(20 * 1024))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|body| String::from_utf8_lossy(&body.to_bytes()).into_owned())
                .unwrap_or_default();
            Answer::Http(status, body)
        }
        Err(_) => Answer::Closed,
    };
    row(
        "a 20 KiB header field (HTTP/2)",
        "431 headers_too_large (JSON)",
        answer.describe(),
        started,
        answer.json_error(431).as_deref() == Some("headers_too_large"),
    )
}

async fn encoded_bot_name(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let answer = exchange(
        addr,
        &post(
            "/v1/bots/faq%2Dbot/turns",
            "127.0.0.1",
            "application/json",
            TURN,
        ),
    )
    .await;
    let reached = matches!(&answer, Answer::Http(200, body) if body.contains("Hello from faq-bot"));
    row(
        "a bot name percent-encoded in the path (faq%2Dbot)",
        "decoded: the turn reaches faq-bot (200)",
        answer.describe(),
        started,
        reached,
    )
}

async fn foreign_host(addr: SocketAddr) -> Row {
    let started = Instant::now();
    let answer = exchange(
        addr,
        &post(
            "/v1/bots/faq-bot/turns",
            "evil.example",
            "application/json",
            TURN,
        ),
    )
    .await;
    let local = exchange(
        addr,
        &post(
            "/v1/bots/faq-bot/turns",
            "localhost:8080",
            "application/json",
            TURN,
        ),
    )
    .await;
    row(
        "Host: evil.example on a loopback listener (DNS rebinding)",
        "421 host_not_allowed (JSON); Host: localhost answers 200",
        format!("{}; localhost: {}", answer.describe(), local.describe()),
        started,
        answer.json_error(421).as_deref() == Some("host_not_allowed")
            && matches!(local, Answer::Http(200, _)),
    )
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// `--max-connections 8`, then 48 connections that send nothing.
async fn connection_limit(bot: &std::path::Path) -> Vec<Row> {
    const LIMIT: usize = 8;
    const OPENED: usize = 48;
    let server = Process::serve(
        bot,
        &[],
        &["--max-connections", "8", "--header-timeout-ms", "30000"],
    );
    let addr = server.addr;
    // Let the server settle (runtime threads, script workers) first.
    let (status, _) = patchbay_tests::client::request(addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    let before = open_descriptors(server.pid());
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..OPENED {
        if let Ok(stream) = TcpStream::connect(addr).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = open_descriptors(server.pid());
    let bound = before + LIMIT + 16 + 8;
    let descriptors = row(
        "48 silent connections against --max-connections 8",
        &format!("descriptors stay bounded: ≤ {bound} (before: {before}, + 8 + 16 reserve + 8)"),
        format!(
            "{during} open descriptors ({} connections held)",
            held.len()
        ),
        started,
        during <= bound,
    );
    // A probe, retried as a platform's prober does, gets its answer.
    let probe_started = Instant::now();
    let mut probe = Answer::Nothing;
    let mut tries = 0;
    while probe_started.elapsed() < BOUND {
        tries += 1;
        probe = exchange(addr, b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await;
        if matches!(probe, Answer::Http(200, _)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = row(
        "/healthz while the connection limit is reached",
        "200 within 5 s",
        format!("{} after {tries} tries", probe.describe()),
        probe_started,
        matches!(probe, Answer::Http(200, _)) && probe_started.elapsed() < BOUND,
    );
    drop(held);
    vec![descriptors, health]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_withstands_slow_idle_and_odd_clients() {
    let dir = std::env::temp_dir().join(format!("patchbay-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("faq-bot.yaml");
    std::fs::write(&bot, BOT).expect("bot");
    let server = Process::serve(
        &bot,
        &[],
        &[
            "--header-timeout-ms",
            "1000",
            "--idle-timeout-ms",
            "1000",
            "--body-timeout-ms",
            "1000",
            "--min-body-rate",
            "1024",
        ],
    );
    let addr = server.addr;
    let (timed, odd) = tokio::join!(
        async {
            tokio::join!(
                silent_connection(addr),
                idle_http1(addr),
                idle_http2(addr),
                stalled_body(addr),
                trickled_body(addr),
            )
        },
        async {
            tokio::join!(
                refused(addr),
                large_head_http2(addr),
                encoded_bot_name(addr),
                foreign_host(addr),
            )
        },
    );
    let mut rows = vec![timed.0, timed.1, timed.2, timed.3, timed.4];
    rows.extend(odd.0);
    rows.extend([odd.1, odd.2, odd.3]);
    drop(server);
    rows.extend(connection_limit(&bot).await);
    let _ = std::fs::remove_dir_all(&dir);
    report("clients", &rows);
}
