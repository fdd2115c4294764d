//! Server-side request forgery through whole turns: a URL that points at
//! loopback, private, link-local, CGNAT, multicast or unspecified addresses,
//! in every spelling, is refused unless the bot's `network.allow` names it,
//! and so is a redirect there. The URL comes from the bot's environment
//! (`{$env.TARGET}`): a conversation's value cannot choose a URL's scheme,
//! port or (unless the bot lists it) host, `urls.rs`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use patchbay_engine::script::{RuntimeOptions, ScriptRuntime};
use patchbay_engine::transport::Resolve;
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use patchbay_tests::servers::{self, reply};

use crate::{Row, report};

fn bot(allow: &str) -> String {
    format!(
        r#"name: ssrf
network:
  allow: [{allow}]
http:
  timeoutMs: 2000
  retries: 0
integrations:
  - name: probe
    responseDataVariable: PROBE
    type: api
    method: GET
    url: "{{$env.TARGET}}/probe"
dialogs:
  - name: main
    interactions:
      - name: probe
        type: integration
        integration: probe
        next: end
"#
    )
}

async fn engine(allow: &str) -> Engine {
    engine_resolving_with(allow, None).await
}

async fn engine_resolving_with(allow: &str, resolver: Option<Arc<dyn Resolve>>) -> Engine {
    let bot = patchbay_tests::bot("ssrf.yaml", &bot(allow));
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let target = |name: &str| (name == "TARGET").then(|| TARGET.lock().expect("target").clone());
    let mut options = EngineOptions::new(Arc::new(target), scripts);
    options.resolver = resolver;
    Engine::new(bot, options).await.expect("engine")
}

/// A DNS server an attacker controls: each lookup gets the next answer of
/// the list, the last one repeating. Tests never leave loopback, so the
/// "public" first answer is `127.0.0.1`, which the bot's allow list names;
/// what follows is refused like any address the bot did not name.
struct ScriptedDns {
    answers: Vec<Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl ScriptedDns {
    fn new(answers: &[&[&str]]) -> Arc<Self> {
        let parse = |ip: &&str| ip.parse().expect("address");
        Arc::new(Self {
            answers: answers
                .iter()
                .map(|answer| answer.iter().map(parse).collect())
                .collect(),
            lookups: AtomicUsize::new(0),
        })
    }
}

impl Resolve for ScriptedDns {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        let lookup = self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers[lookup.min(self.answers.len() - 1)].clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// The bot's `{$env.TARGET}` for the probe that runs next (probes run one
/// at a time).
static TARGET: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

async fn probe(engine: &Engine, case: &str, target: &str, expect_blocked: bool) -> Row {
    let state = ConversationState::default();
    *TARGET.lock().expect("target") = target.to_owned();
    let started = Instant::now();
    let turn = engine
        .run_turn(state, Start::Interaction("probe".to_owned()), "")
        .await;
    let time = started.elapsed();
    let (observed, blocked) = match turn {
        Ok(turn) => {
            let call = turn.steps.first().and_then(|step| step.call.clone());
            match call.and_then(|call| call.failure.map(|failure| (call.status, failure))) {
                Some((_, failure)) => (
                    format!("failure `{}`: {}", failure.kind, failure.message),
                    failure.kind == "blocked",
                ),
                None => (format!("answered, status {:?}", turn.status), false),
            }
        }
        Err(error) => (format!("turn error: {error}"), false),
    };
    Row {
        case: format!("{case}: `{target}`"),
        expected: if expect_blocked {
            "refused: blocked"
        } else {
            "allowed: answered"
        }
        .to_owned(),
        observed,
        time,
        pass: blocked == expect_blocked,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_are_refused_through_the_engine() {
    // A real server on loopback, so that "refused" cannot be mistaken for
    // "nothing listens there".
    let inside = servers::http(|_| async { reply(200, "{}") }).await;
    let port = inside.addr.port();
    let closed = engine("").await;
    let mut rows = Vec::new();
    for (case, host) in [
        ("loopback", "127.0.0.1".to_owned()),
        ("loopback, other address", "127.0.0.2".to_owned()),
        ("loopback by name", "localhost".to_owned()),
        ("IPv6 loopback", "[::1]".to_owned()),
        ("IPv4-mapped IPv6", "[::ffff:127.0.0.1]".to_owned()),
        ("decimal", "2130706433".to_owned()),
        ("hex", "0x7f.0.0.1".to_owned()),
        ("octal", "0177.0.0.1".to_owned()),
        ("short form", "127.1".to_owned()),
        ("unspecified", "0.0.0.0".to_owned()),
        ("private 10/8", "10.0.0.1".to_owned()),
        ("private 192.168/16", "192.168.1.1".to_owned()),
        ("link-local (cloud metadata)", "169.254.169.254".to_owned()),
        ("CGNAT", "100.64.0.1".to_owned()),
        ("multicast", "224.0.0.1".to_owned()),
        ("IPv6 unique-local", "[fd00::1]".to_owned()),
        ("IPv6 link-local", "[fe80::1]".to_owned()),
    ] {
        let target = format!("http://{host}:{port}");
        rows.push(probe(&closed, case, &target, true).await);
    }
    // Allowed when named, and a redirect from there to a place not named is
    // refused.
    let redirecting = servers::http(move |_| async move {
        http::Response::builder()
            .status(302)
            .header("location", format!("http://127.0.0.2:{port}/probe"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("response")
    })
    .await;
    let open = engine("\"127.0.0.1\"").await;
    rows.push(
        probe(
            &open,
            "allowed by network.allow",
            &format!("http://127.0.0.1:{port}"),
            false,
        )
        .await,
    );
    rows.push(
        probe(
            &open,
            "redirect to a place not allowed",
            &format!("http://127.0.0.1:{}", redirecting.addr.port()),
            true,
        )
        .await,
    );
    rows.extend(dns_rebinding().await);
    report("ssrf", &rows);
}

/// A name that first resolves to an address the bot may call and then, on
/// the next lookup, to one it may not: every new connection is judged on
/// its own answer, so the second call is refused. (The server closes each
/// connection, so the second call must look the name up again.)
async fn dns_rebinding() -> Vec<Row> {
    let closing = servers::http(|_| async {
        let mut answer = reply(200, "{}");
        answer
            .headers_mut()
            .insert("connection", http::HeaderValue::from_static("close"));
        answer
    })
    .await;
    let target = format!("http://rebind.test:{}", closing.addr.port());
    let mut rows = Vec::new();
    for (case, rebound_to) in [
        ("DNS rebinding to another loopback address", "127.0.0.2"),
        ("DNS rebinding to the unspecified address", "0.0.0.0"),
        ("DNS rebinding to IPv6 loopback", "::1"),
        ("DNS rebinding to IPv4-mapped loopback", "::ffff:127.0.0.2"),
    ] {
        let dns = ScriptedDns::new(&[&["127.0.0.1"], &[rebound_to]]);
        let engine = engine_resolving_with("\"127.0.0.1\"", Some(dns.clone())).await;
        rows.push(probe(&engine, &format!("{case}: first answer"), &target, false).await);
        rows.push(probe(&engine, &format!("{case}: second answer"), &target, true).await);
        rows.last_mut().expect("row").pass &= dns.lookups.load(Ordering::SeqCst) == 2;
    }
    // One answer that lists a refused address first: only the permitted one
    // is dialled. A listener on the refused address counts any connection.
    let trap = TcpListener::bind(("127.0.0.2", closing.addr.port()))
        .await
        .expect("bind the refused address on the same port");
    let dns = ScriptedDns::new(&[&["127.0.0.2", "127.0.0.1"]]);
    let engine = engine_resolving_with("\"127.0.0.1\"", Some(dns)).await;
    let mut row = probe(
        &engine,
        "DNS answer mixing refused and allowed",
        &target,
        false,
    )
    .await;
    let trapped = tokio::time::timeout(Duration::from_millis(50), trap.accept()).await;
    if trapped.is_ok() {
        row.observed.push_str("; the refused address was dialled");
        row.pass = false;
    }
    rows.push(row);
    rows
}
