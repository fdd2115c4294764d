//! Caller-controlled URLs through whole turns: a conversation's value in a
//! URL's host must not send the request, and the bot's credential, to a
//! host of the caller's choosing ("authority injection"), and a value in
//! the path must not climb it ("dot segments"). Two real servers listen on
//! 127.0.0.1: the bot's upstream, which must see exactly the intended host
//! and path, and an "evil" one, which must see nothing. Every name resolves
//! to 127.0.0.1 (a resolver of the test's own), so a request that leaves
//! for the wrong host shows up at one of the two.
//!
//! The engine runs a bot read by serde alone, without `check`'s
//! validation, so each run-time defence is proved on its own; the `check`
//! rows then show that the loader refuses or reports the same templates.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use patchbay_engine::config::{Bot, Severity};
use patchbay_engine::script::{Persistence, RuntimeOptions, ScriptRuntime};
use patchbay_engine::transport::Resolve;
use patchbay_engine::{ConversationState, Engine, EngineOptions, Invocation, Start};
use patchbay_tests::captured::{self, CANARY};
use patchbay_tests::servers::{self, Server, reply};

use crate::{Row, report};

/// One request a server saw.
#[derive(Clone, Debug)]
struct Seen {
    host: String,
    path_and_query: String,
    with_credential: bool,
}

/// A real server on 127.0.0.1 that answers 200 and keeps what it saw.
struct Recording {
    server: Server,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recording {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&seen);
        let server = servers::http(move |request| {
            let keep = Arc::clone(&keep);
            async move {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let authorization = header("authorization");
                keep.lock().expect("seen").push(Seen {
                    host: header("host"),
                    path_and_query: request
                        .uri()
                        .path_and_query()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    with_credential: authorization.contains(CANARY),
                });
                reply(200, r#"{"ok": true}"#)
            }
        })
        .await;
        Self { server, seen }
    }

    fn port(&self) -> u16 {
        self.server.addr.port()
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("seen"))
    }
}

/// Every name is 127.0.0.1: `acme.orders.test` and `evil.test` alike.
struct Loopback;

impl Resolve for Loopback {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
    }
}

/// The bot: one integration per way a value can reach a URL, all with the
/// same credential (a canary bearer token). `{GOOD}` is the upstream's
/// port.
fn bot_text(good: u16) -> String {
    let integration = |name: &str, url: &str, extra: &str| {
        format!(
            r#"
  - name: {name}
    responseDataVariable: {rdvn}
    type: api
    method: GET
    url: "{url}"
    credential: orders{extra}"#,
            rdvn = name.to_uppercase()
        )
    };
    let integrations = [
        integration(
            "tenant",
            &format!("http://{{$botContext.tenant}}.orders.test:{good}/v1/orders/42"),
            "",
        ),
        integration(
            "host",
            &format!("http://{{$botContext.host}}:{good}/v1/orders/42"),
            r#"
    allowedHosts: [orders.test, "*.orders.test"]"#,
        ),
        integration(
            "envdomain",
            &format!("http://{{$botContext.tenant}}.{{$env.DOMAIN}}:{good}/v1/orders/42"),
            "",
        ),
        integration(
            "port",
            "http://orders.test:{$botContext.port}/v1/orders/42",
            "",
        ),
        integration("base", "{$botContext.base}/v1/orders/42", ""),
        integration(
            "order",
            &format!(
                "http://orders.test:{good}/v1/orders/{{$botContext.orderNumber}}?include=items"
            ),
            "",
        ),
    ]
    .concat();
    format!(
        r#"name: urls
network:
  allow: ["127.0.0.1"]
http:
  timeoutMs: 2000
  retries: 0
env:
  ORDERS_TOKEN: null
  DOMAIN: null
credentials:
  - name: orders
    type: access-token
    token: "{{$env.ORDERS_TOKEN}}"
integrations:{integrations}
dialogs:
  - name: main
    interactions:
      - name: order-status
        type: integration
        integration: order
        next: end
"#
    )
}

async fn engine(bot: Bot) -> Engine {
    let env = Arc::new(|name: &str| match name {
        "ORDERS_TOKEN" => Some(CANARY.to_owned()),
        // One label: a value before it chooses the whole domain.
        "DOMAIN" => Some("test".to_owned()),
        _ => None,
    });
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let mut options = EngineOptions::new(env, scripts);
    options.resolver = Some(Arc::new(Loopback));
    Engine::new(bot, options).await.expect("engine")
}

/// What must happen to a call.
enum Expect {
    /// Refused before anything is sent.
    Refused,
    /// Sent to the upstream only, with this `Host` and this path and query.
    Upstream { host: String, path: String },
}

struct Servers {
    upstream: Recording,
    evil: Recording,
}

/// Invokes `integration` with `variable = value` (through `Engine::invoke`,
/// as the HTTP `invoke` route does, or a whole turn) and judges what the
/// two servers saw.
async fn attempt(
    engine: &Engine,
    servers: &Servers,
    case: &str,
    integration: &str,
    (variable, value): (&str, &str),
    expect: &Expect,
) -> Row {
    let mut state = ConversationState::default();
    state.set(variable, value, Persistence::Session);
    let started = Instant::now();
    let invocation: Option<Invocation> = engine.invoke(integration, &mut state).await.ok();
    let time = started.elapsed();
    judge(servers, case, (variable, value), invocation, expect, time)
}

fn judge(
    servers: &Servers,
    case: &str,
    (variable, value): (&str, &str),
    invocation: Option<Invocation>,
    expect: &Expect,
    time: std::time::Duration,
) -> Row {
    let at_upstream = servers.upstream.take();
    let at_evil = servers.evil.take();
    let outcome = match &invocation {
        Some(Invocation {
            failure: Some(failure),
            ..
        }) => format!("failure `{}`: {}", failure.kind, failure.message),
        Some(invocation) => format!("status {:?}", invocation.status),
        None => "no invocation".to_owned(),
    };
    let describe = |seen: &[Seen]| {
        seen.iter()
            .map(|seen| {
                format!(
                    "Host {} {}{}",
                    seen.host,
                    seen.path_and_query,
                    if seen.with_credential {
                        " with the credential"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let observed = format!(
        "{outcome}; upstream saw [{}]; evil saw [{}]",
        describe(&at_upstream),
        describe(&at_evil)
    );
    captured::keep("reliability", "urls", &observed);
    let refused = invocation
        .as_ref()
        .and_then(|invocation| invocation.failure.as_ref())
        .is_some_and(|failure| failure.kind == "render");
    let (expected, pass) = match expect {
        Expect::Refused => (
            "refused before sending; neither server sees a request".to_owned(),
            refused && at_upstream.is_empty() && at_evil.is_empty(),
        ),
        Expect::Upstream { host, path } => (
            format!("only the upstream: Host {host} {path}, with the credential"),
            at_evil.is_empty()
                && at_upstream.len() == 1
                && at_upstream.iter().all(|seen| {
                    &seen.host == host && &seen.path_and_query == path && seen.with_credential
                }),
        ),
    };
    Row {
        case: format!("{case}: `{variable}` = `{}`", value.escape_debug()),
        expected,
        observed,
        time,
        pass,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authority_injection() {
    let servers = Servers {
        upstream: Recording::start().await,
        evil: Recording::start().await,
    };
    let good = servers.upstream.port();
    let evil = servers.evil.port();
    let text = bot_text(good);
    let bot: Bot = serde_saphyr::from_str(&text).expect("the bot reads");
    let engine = engine(bot).await;
    let upstream = |host: &str| Expect::Upstream {
        host: format!("{host}:{good}"),
        path: "/v1/orders/42".to_owned(),
    };
    let mut rows = Vec::new();
    // `http://{$botContext.tenant}.orders.test:GOOD/...`: one DNS label.
    let tenant_cases: Vec<(&str, String, Expect)> = vec![
        ("a label", "acme".to_owned(), upstream("acme.orders.test")),
        (
            "host, port, path and `?` (the reported attack)",
            format!("evil.test:{evil}/x?"),
            Expect::Refused,
        ),
        (
            "host, port, `#`",
            format!("evil.test:{evil}#"),
            Expect::Refused,
        ),
        (
            "host, port, `\\`",
            format!("evil.test:{evil}\\"),
            Expect::Refused,
        ),
        (
            "userinfo `@`",
            format!("x@evil.test:{evil}/"),
            Expect::Refused,
        ),
        (
            "address and port",
            format!("127.0.0.1:{evil}/"),
            Expect::Refused,
        ),
        ("a `.`: two labels", "evil.test".to_owned(), Expect::Refused),
        ("a port alone", format!("acme:{evil}"), Expect::Refused),
        (
            "IPv6 brackets",
            format!("[::ffff:127.0.0.1]:{evil}/x?"),
            Expect::Refused,
        ),
        (
            "percent-encoded `.`",
            "evil%2etest".to_owned(),
            Expect::Refused,
        ),
        (
            "percent-encoded `:` and `/`",
            format!("evil%2Etest%3A{evil}%2Fx%3F"),
            Expect::Refused,
        ),
        (
            "full-width dot (IDNA maps it to `.`)",
            "evil\u{FF0E}test".to_owned(),
            Expect::Refused,
        ),
        ("empty", String::new(), Expect::Refused),
    ];
    for (case, value, expect) in &tenant_cases {
        let case = format!("label: {case}");
        rows.push(
            attempt(
                &engine,
                &servers,
                &case,
                "tenant",
                ("tenant", value),
                expect,
            )
            .await,
        );
    }
    // `http://{$botContext.host}:GOOD/...` with `allowedHosts: [orders.test,
    // "*.orders.test"]`: a host name, and a listed one.
    let host_cases: Vec<(&str, String, Expect)> = vec![
        (
            "a listed host",
            "orders.test".to_owned(),
            upstream("orders.test"),
        ),
        (
            "listed by `*.`",
            "eu.orders.test".to_owned(),
            upstream("eu.orders.test"),
        ),
        ("an unlisted host", "evil.test".to_owned(), Expect::Refused),
        (
            "an unlisted address",
            "127.0.0.1".to_owned(),
            Expect::Refused,
        ),
        (
            "a listed name as a prefix",
            "orders.test.evil.test".to_owned(),
            Expect::Refused,
        ),
        (
            "with a port",
            format!("orders.test:{evil}"),
            Expect::Refused,
        ),
        (
            "with a path",
            format!("evil.test:{evil}/x?"),
            Expect::Refused,
        ),
        (
            "with userinfo",
            format!("orders.test@evil.test:{evil}"),
            Expect::Refused,
        ),
        ("percent-encoded", "evil%2etest".to_owned(), Expect::Refused),
    ];
    for (case, value, expect) in &host_cases {
        let case = format!("whole host: {case}");
        rows.push(attempt(&engine, &servers, &case, "host", ("host", value), expect).await);
    }
    // Values in places no value may choose.
    rows.push(
        attempt(
            &engine,
            &servers,
            "label before a one-label domain from the environment (the host is open, no list)",
            "envdomain",
            ("tenant", "evil"),
            &Expect::Refused,
        )
        .await,
    );
    rows.push(
        attempt(
            &engine,
            &servers,
            "the port",
            "port",
            ("port", &evil.to_string()),
            &Expect::Refused,
        )
        .await,
    );
    rows.push(
        attempt(
            &engine,
            &servers,
            "a whole base URL",
            "base",
            ("base", &format!("http://evil.test:{evil}")),
            &Expect::Refused,
        )
        .await,
    );
    rows.extend(check_rows(&text));
    report("urls-authority", &rows);
}

/// `patchbay check` on the same bot: each value in a URL's host reported,
/// each template that every call would fail on refused, with line and
/// column.
fn check_rows(text: &str) -> Vec<Row> {
    let started = Instant::now();
    let diagnostics = match patchbay_engine::config::load("urls.yaml", text) {
        Ok(loaded) => loaded.warnings,
        Err(report) => report,
    }
    .diagnostics()
    .to_vec();
    let rendered: Vec<String> = diagnostics
        .iter()
        .map(|diagnostic| {
            format!(
                "{} {} at byte {}: {}",
                match diagnostic.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                diagnostic.code,
                diagnostic.span.start,
                diagnostic.message
            )
        })
        .collect();
    let time = started.elapsed();
    let mut rows = Vec::new();
    for (needle, severity, code) in [
        (
            "tenant}.orders.test",
            Severity::Warning,
            "caller-controlled-url",
        ),
        (
            "{$botContext.host}:",
            Severity::Warning,
            "caller-controlled-url",
        ),
        ("{$env.DOMAIN}", Severity::Warning, "caller-controlled-url"),
        (
            "orders.test:{$botContext.port}",
            Severity::Error,
            "invalid-url",
        ),
        ("{$botContext.base}/v1", Severity::Error, "invalid-url"),
    ] {
        // The line of the URL that holds `needle`.
        let at = text.find(needle).expect("the bot holds the URL");
        let line_start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |end| at + end);
        let found = diagnostics.iter().any(|diagnostic| {
            diagnostic.severity == severity
                && diagnostic.code.as_str() == code
                && (line_start..line_end).contains(&diagnostic.span.start)
        });
        let integration = needle;
        rows.push(Row {
            case: format!("check: URL holding `{integration}`"),
            expected: format!("{code} ({severity:?}) on its URL"),
            observed: if found {
                format!("{code} on its URL")
            } else {
                format!("not reported; check said: {}", rendered.join(" / "))
            },
            time,
            pass: found,
        });
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments() {
    let servers = Servers {
        upstream: Recording::start().await,
        evil: Recording::start().await,
    };
    let good = servers.upstream.port();
    let text = bot_text(good);
    let bot: Bot = serde_saphyr::from_str(&text).expect("the bot reads");
    let engine = engine(bot).await;
    let one_segment = |segment: &str| Expect::Upstream {
        host: format!("orders.test:{good}"),
        path: format!("/v1/orders/{segment}?include=items"),
    };
    let cases: Vec<(&str, Expect)> = vec![
        ("42", one_segment("42")),
        ("..", Expect::Refused),
        (".", Expect::Refused),
        ("%2e%2e", one_segment("%252e%252e")),
        (".%2E", one_segment(".%252E")),
        ("%2E.", one_segment("%252E.")),
        ("a/../..", one_segment("a%2F..%2F..")),
        ("..\\..\\admin", one_segment("..%5C..%5Cadmin")),
        ("..%2f..", one_segment("..%252f..")),
        ("...", one_segment("...")),
    ];
    let mut rows = Vec::new();
    for (value, expect) in &cases {
        rows.push(
            attempt(
                &engine,
                &servers,
                "path value (invoke: no pre-process code)",
                "order",
                ("orderNumber", value),
                expect,
            )
            .await,
        );
    }
    // The same through a whole turn.
    let mut state = ConversationState::default();
    state.set("orderNumber", "..", Persistence::Session);
    let started = Instant::now();
    let turn = engine
        .run_turn(state, Start::Interaction("order-status".to_owned()), "")
        .await
        .expect("turn");
    let invocation = turn.steps.first().and_then(|step| step.call.clone());
    rows.push(judge(
        &servers,
        "path value (a whole turn)",
        ("orderNumber", ".."),
        invocation,
        &Expect::Refused,
        started.elapsed(),
    ));
    report("urls-dot-segments", &rows);
}
