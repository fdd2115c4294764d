//! `patchbay auth`: the authorization-code grant of an OAuth 2 credential,
//! with the redirect received on a loopback listener.

use std::convert::Infallible;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use patchbay_credentials::{ProviderContext, authorize};
use patchbay_transport::{Client, NetworkGuard, ProxyConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

use crate::bot_env::BotEnv;
use crate::token_store::FileTokenStore;

pub(crate) struct AuthOptions<'a> {
    pub(crate) bot: &'a Path,
    pub(crate) credential: &'a str,
    pub(crate) env: &'a [String],
    pub(crate) token_store: &'a Path,
    pub(crate) timeout: Duration,
}

pub(crate) async fn run(options: AuthOptions<'_>) -> anyhow::Result<()> {
    let bot = crate::load_bot(options.bot)?;
    let credential = bot
        .credentials
        .iter()
        .find(|credential| credential.name == options.credential)
        .with_context(|| {
            let names: Vec<&str> = bot.credentials.iter().map(|c| c.name.as_str()).collect();
            format!(
                "the bot has no credential `{}` (it has: {})",
                options.credential,
                names.join(", ")
            )
        })?;
    let env = BotEnv::new(&bot, options.env)?;
    let lookup = |name: &str| env.get(name);
    let store = Arc::new(FileTokenStore::open(options.token_store)?);
    let client = Client::builder()
        .guard(NetworkGuard::with_allowed(&bot.network.allow)?)
        .proxy(ProxyConfig::from_lookup(|name| std::env::var(name).ok()))
        .build()?;
    let context = ProviderContext::new(client, store);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the redirect")?;
    let redirect = Url::parse(&format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    ))?;
    let authorization = authorize(credential, &lookup, &context, redirect.clone())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Open this URL in a browser to authorize `{}`:\n\n  {}\n\nWaiting for the redirect to {redirect} ...",
        options.credential,
        authorization.url()
    )?;
    stdout.flush()?;
    drop(stdout);
    let callback = tokio::time::timeout(options.timeout, receive_callback(listener))
        .await
        .with_context(|| format!("no redirect arrived within {}s", options.timeout.as_secs()))??;
    authorization.complete(&callback).await?;
    writeln!(
        std::io::stdout(),
        "Authorized `{}`; tokens stored in {}.",
        options.credential,
        options.token_store.display()
    )?;
    Ok(())
}

/// Serves the loopback port until the browser brings the redirect.
async fn receive_callback(listener: TcpListener) -> anyhow::Result<Url> {
    let port = listener.local_addr()?.port();
    let (sender, mut received) = mpsc::channel::<Url>(1);
    loop {
        tokio::select! {
            Some(url) = received.recv() => return Ok(url),
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let sender = sender.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let sender = sender.clone();
                        async move {
                            let is_callback = request.uri().path() == "/callback";
                            if is_callback {
                                let url = format!("http://127.0.0.1:{port}{}", request.uri());
                                if let Ok(url) = Url::parse(&url) {
                                    let _ = sender.send(url).await;
                                }
                            }
                            let (status, text) = if is_callback {
                                (200, "patchbay received the authorization; you can close this tab.")
                            } else {
                                (404, "not found")
                            };
                            let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
