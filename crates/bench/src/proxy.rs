//! The `proxy` row's server: a bare hyper server that answers every request
//! with the upstream call the bench bot makes (same URL, the same bearer
//! credential header and default headers, through `patchbay-transport`'s
//! `Client` with the bot's network guard, as the engine makes it) and the
//! upstream's body as it came. No templates, scripts, fields or rules: what
//! `serve` would cost if it did nothing but forward.
//!
//! It runs as a child process of the harness (`patchbay-bench
//! --proxy-server ...`), on a multi-threaded runtime with a worker per core
//! as `patchbay serve`'s, so the two meet the same load on equal terms.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchbay_engine::transport::{Client, NetworkGuard, Request};
use tokio::net::TcpListener;

/// The one call, prepared once: what the bot's request renders to.
struct Call {
    client: Client,
    request: Request,
}

/// Serves until killed; prints `bench proxy: listening on http://ADDR`
/// first, the line the harness waits for.
pub(crate) fn serve(upstream: SocketAddr, token: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(upstream, token))
}

async fn run(upstream: SocketAddr, token: &str) -> anyhow::Result<()> {
    // The bench bot's `network.allow`.
    let client = Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1"])?)
        .build()?;
    let url = format!("http://{upstream}/kb/en/search?q=password%20reset&limit=3");
    let mut request = Request::new(http::Method::GET, url.parse()?);
    let json = HeaderValue::from_static("application/json;charset=UTF-8");
    request.headers.insert(ACCEPT, json.clone());
    request.headers.insert(CONTENT_TYPE, json);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))?;
    bearer.set_sensitive(true);
    request.headers.insert(AUTHORIZATION, bearer);
    request
        .headers
        .insert("x-conversation", HeaderValue::from_static("bench"));
    let call = Arc::new(Call { client, request });

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "bench proxy: listening on http://{}",
            listener.local_addr()?
        )?;
        stdout.flush()?;
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let call = Arc::clone(&call);
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let call = Arc::clone(&call);
                async move { Ok::<_, Infallible>(forward(&call, request).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads the caller's body (as `serve` must), makes the call, answers its
/// body: 200 with it, or 502 when the call failed.
async fn forward(
    call: &Call,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let answer = match request.into_body().collect().await {
        Ok(_) => call.client.send(call.request.clone()).await.ok(),
        Err(_) => None,
    };
    let (status, body) = match answer {
        Some(response) if response.status == 200 => (http::StatusCode::OK, response.body),
        _ => (http::StatusCode::BAD_GATEWAY, Bytes::new()),
    };
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
