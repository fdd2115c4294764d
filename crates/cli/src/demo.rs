//! `patchbay demo`: the bundled example bots against an embedded demo API
//! on 127.0.0.1, through the real engine, with nothing to set up.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use patchbay_config::Bot;
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use patchbay_script::{RuntimeOptions, ScriptRuntime};
use patchbay_server::{Metrics, Server, ServerOptions};
use serde_json::json;
use tokio::net::TcpListener;

const FAQ_BOT: &str = include_str!("../../../examples/faq-bot.yaml");
const ORDER_BOT: &str = include_str!("../../../examples/order-status.yaml");
const TICKET_BOT: &str = include_str!("../../../examples/support-ticket.yaml");

/// One scripted turn of the demo.
struct Conversation<'a> {
    title: &'a str,
    engine: &'a Engine,
    start: &'a str,
    message: &'a str,
    vars: &'a [(&'a str, &'a str)],
}

/// Requests the demo API has answered, by route, for the closing summary.
#[derive(Default)]
struct Counters {
    token: AtomicUsize,
    search: AtomicUsize,
}

/// The three example bots, ready to run against the demo API at `base`.
struct DemoBots {
    faq: Engine,
    orders: Engine,
    tickets: Engine,
}

impl DemoBots {
    async fn start(base: &str) -> anyhow::Result<Self> {
        let env: HashMap<&str, String> = HashMap::from([
            ("KB_BASE_URL", format!("{base}/kb")),
            ("KB_TOKEN_URL", format!("{base}/oauth/token")),
            ("KB_CLIENT_ID", "faq-bot".to_owned()),
            ("KB_CLIENT_SECRET", "demo-client-secret".to_owned()),
            ("ORDERS_BASE_URL", format!("{base}/orders-api")),
            ("ORDERS_API_TOKEN", "demo-orders-token".to_owned()),
            ("HELPDESK_URL", format!("{base}/helpdesk")),
            ("HELPDESK_API_KEY", "demo-helpdesk-key".to_owned()),
        ]);
        let env: HashMap<String, String> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let env: patchbay_engine::Env = Arc::new(move |name: &str| env.get(name).cloned());
        let scripts = ScriptRuntime::new(RuntimeOptions {
            workers: 1,
            ..RuntimeOptions::default()
        });
        Ok(Self {
            faq: engine(FAQ_BOT, "faq-bot.yaml", &env, &scripts).await?,
            orders: engine(ORDER_BOT, "order-status.yaml", &env, &scripts).await?,
            tickets: engine(TICKET_BOT, "support-ticket.yaml", &env, &scripts).await?,
        })
    }
}

pub(crate) async fn run() -> anyhow::Result<()> {
    let counters = Arc::new(Counters::default());
    let base = serve_demo_api(Arc::clone(&counters), ANY_LOOPBACK_PORT).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "patchbay demo: example bots against a demo API on {base}\n"
    )?;
    let DemoBots {
        faq,
        orders,
        tickets,
    } = DemoBots::start(&base).await?;

    let conversations = [
        Conversation {
            title: "A question the knowledge base answers",
            engine: &faq,
            start: "search",
            message: "how do I reset my password",
            vars: &[],
        },
        Conversation {
            title: "Another one: the OAuth token is reused",
            engine: &faq,
            start: "search",
            message: "how do I change my email",
            vars: &[],
        },
        Conversation {
            title: "Nothing found: the \"No Articles Found\" branch",
            engine: &faq,
            start: "search",
            message: "unicorn insurance",
            vars: &[],
        },
        Conversation {
            title: "An order on its way (path parameter, bearer token)",
            engine: &orders,
            start: "look-up-order",
            message: "1234",
            vars: &[],
        },
        Conversation {
            title: "The order service fails: the default message",
            engine: &orders,
            start: "look-up-order",
            message: "5000",
            vars: &[],
        },
        Conversation {
            title: "A ticket created with a JSON body built from variables",
            engine: &tickets,
            start: "create",
            message: "The app crashes when I upload a photo",
            vars: &[("subject", "App crash on upload"), ("priority", "high")],
        },
    ];
    for Conversation {
        title,
        engine,
        start,
        message,
        vars,
    } in conversations
    {
        writeln!(out, "── {title}")?;
        writeln!(out, "user: {message}")?;
        let mut state = ConversationState {
            conversation_id: "demo-conversation".to_owned(),
            user_id: "demo-user".to_owned(),
            first_name: "Ada".to_owned(),
            ..ConversationState::default()
        };
        for (name, value) in vars {
            state.set(name, *value, patchbay_script::Persistence::Session);
        }
        let turn = engine
            .run_turn(state, Start::Interaction(start.to_owned()), message)
            .await?;
        write!(out, "{}", crate::run::trace(&turn))?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "The demo API answered {} searches with {} OAuth token request(s): the token was fetched once and reused.",
        counters.search.load(Ordering::SeqCst),
        counters.token.load(Ordering::SeqCst)
    )?;
    Ok(())
}

/// `patchbay demo --serve`: the demo API (on `api_listen`, else a free
/// loopback port) and the example bots behind `patchbay serve`, until
/// Ctrl-C or SIGTERM.
pub(crate) async fn serve(
    listen: std::net::SocketAddr,
    api_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let base = serve_demo_api(
        Arc::new(Counters::default()),
        api_listen.unwrap_or(ANY_LOOPBACK_PORT),
    )
    .await?;
    let bots = DemoBots::start(&base).await?;
    let server = Server::new(ServerOptions {
        metrics: Some(Metrics::install()?),
        playground: true,
        ..ServerOptions::default()
    });
    for engine in [bots.faq, bots.orders, bots.tickets] {
        server.insert_bot(engine);
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    crate::serve::announce(&server, address)?;
    let url = format!("http://{address}");
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "The demo API answers on {base}. Open {url}/ for the playground, or try:\n"
        )?;
        for (bot, body) in [
            (
                "faq-bot",
                r#"{"interaction":"search","message":"how do I reset my password"}"#,
            ),
            (
                "faq-bot",
                r#"{"interaction":"search","message":"unicorn insurance"}"#,
            ),
            (
                "order-status",
                r#"{"interaction":"look-up-order","message":"1234"}"#,
            ),
            (
                "order-status",
                r#"{"interaction":"look-up-order","message":"5000"}"#,
            ),
            (
                "support-ticket",
                r#"{"interaction":"create","message":"The app crashes","state":{"variables":{"subject":"Crash","priority":"high"}}}"#,
            ),
        ] {
            writeln!(
                out,
                "  curl -s {url}/v1/bots/{bot}/turns -H 'content-type: application/json' -d '{body}'"
            )?;
        }
        writeln!(out, "  curl -s {url}/metrics\n\nCtrl-C stops.")?;
        out.flush()?;
    }
    let shutdown = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { terminate.as_mut()?.recv().await } => {}
        }
    };
    server.serve(listener, shutdown).await?;
    Ok(())
}

/// Loads a bundled bot, allowed to reach the loopback demo API.
async fn engine(
    text: &str,
    name: &str,
    env: &patchbay_engine::Env,
    scripts: &ScriptRuntime,
) -> anyhow::Result<Engine> {
    let mut bot: Bot = match patchbay_config::load(name, text) {
        Ok(loaded) => loaded.bot,
        Err(report) => anyhow::bail!("{}", report.summary()),
    };
    bot.network.allow.push("127.0.0.1".to_owned());
    Ok(Engine::new(bot, EngineOptions::new(Arc::clone(env), scripts.clone())).await?)
}

fn reply(status: u16, body: serde_json::Value) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The demo API: a knowledge base behind OAuth 2, an order service behind a
/// bearer token, and a helpdesk behind an API key.
async fn answer(
    counters: &Counters,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let api_key = request.headers().contains_key("x-api-key");
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    match path.as_str() {
        "/oauth/token" => {
            counters.token.fetch_add(1, Ordering::SeqCst);
            reply(
                200,
                json!({"access_token": "demo-access-token", "token_type": "bearer", "expires_in": 3600}),
            )
        }
        "/kb/articles/search" => {
            counters.search.fetch_add(1, Ordering::SeqCst);
            if authorization != "Bearer demo-access-token" {
                return reply(401, json!({"error": "invalid_token"}));
            }
            let q = url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "q")
                .map(|(_, value)| value.to_lowercase())
                .unwrap_or_default();
            let articles = [
                (
                    "Reset your password",
                    "password",
                    "Open Settings, then Security, then Reset.",
                ),
                (
                    "Change your email address",
                    "email",
                    "Open Settings, then Profile.",
                ),
                (
                    "Draft: new password rules",
                    "password",
                    "Not yet published.",
                ),
            ];
            let items: Vec<_> = articles
                .iter()
                .enumerate()
                .filter(|(_, (_, topic, _))| q.contains(topic))
                .map(|(index, (title, _, summary))| {
                    json!({
                        "title": title,
                        "summary": summary,
                        "url": format!("https://help.example.com/articles/{}", index + 1),
                        "status": if title.starts_with("Draft") { "draft" } else { "published" },
                        "score": 0.9 - index as f64 / 10.0,
                    })
                })
                .collect();
            reply(200, json!({ "items": items }))
        }
        "/orders-api/orders/1234" if authorization == "Bearer demo-orders-token" => reply(
            200,
            json!({
                "status": "shipped",
                "shipments": [{"carrier": "DHL", "trackingNumber": "JD0146000012"}],
                "lines": [{"name": "Headphones"}, {"name": "Cable"}]
            }),
        ),
        // The flaky one.
        "/orders-api/orders/5000" => reply(503, json!({"error": "maintenance"})),
        // An open order API, for the bot `patchbay init` writes
        // (docs/getting-started.md).
        "/orders/1234" => reply(
            200,
            json!({
                "number": "1234",
                "status": "shipped",
                "carrier": "DHL",
                "items": [{"name": "Headphones", "quantity": 1}, {"name": "Cable", "quantity": 2}]
            }),
        ),
        "/orders/5678" => reply(
            200,
            json!({
                "number": "5678",
                "status": "being packed",
                "items": [{"name": "Desk lamp", "quantity": 1}]
            }),
        ),
        "/helpdesk/tickets" if api_key => {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let subject = request["subject"].as_str().unwrap_or("ticket");
            reply(
                201,
                json!({"id": "T-1042", "subject": subject, "links": {"self": "https://helpdesk.example.com/t/T-1042"}}),
            )
        }
        _ => reply(404, json!({"error": "not found"})),
    }
}

/// Where the demo API listens unless told: a free port on 127.0.0.1.
const ANY_LOOPBACK_PORT: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Starts the demo API on `address`; returns its base URL.
async fn serve_demo_api(
    counters: Arc<Counters>,
    address: std::net::SocketAddr,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("the demo API cannot listen on {address}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let counters = Arc::clone(&counters);
                    async move { Ok::<_, Infallible>(answer(&counters, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(base)
}
