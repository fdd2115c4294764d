//! The upstream every row calls: a hyper server on 127.0.0.1 answering a
//! 2 KB JSON list of articles, on its own runtime thread.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The body: twelve articles, about 2 KB, two of them drafts.
pub(crate) fn body() -> Bytes {
    let articles: Vec<serde_json::Value> = (0..12)
        .map(|index| {
            serde_json::json!({
                "title": format!("How to reset a password, part {index}"),
                "status": if index % 5 == 4 { "draft" } else { "published" },
                "score": 0.93 - f64::from(index) / 100.0,
                "url": format!("https://help.example.com/articles/{index}"),
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "items": articles }).to_string())
}

/// What `POST /token` answers: an RFC 6749 token response, valid an hour.
const TOKEN_RESPONSE: &[u8] =
    br#"{"access_token":"bench-token-value","token_type":"Bearer","expires_in":3600}"#;

/// Starts the upstream on its own thread; returns its address: `/token`
/// answers a token, every other path the articles.
pub(crate) fn start() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let body = body();
    std::thread::Builder::new()
        .name("bench-upstream".to_owned())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    let body = body.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: http::Request<_>| {
                            let answer = if request.uri().path() == "/token" {
                                Bytes::from_static(TOKEN_RESPONSE)
                            } else {
                                body.clone()
                            };
                            let mut response = http::Response::new(Full::new(answer));
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/json"),
                            );
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })?;
    Ok(addr)
}
