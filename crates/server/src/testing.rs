//! What the layers' tests run on: a real HTTP/1.1 server on a 127.0.0.1
//! port serving any service, and a real client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

/// Serves `service` on a new 127.0.0.1 port until the test ends.
pub(crate) async fn serve<S>(service: S) -> SocketAddr
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            let service = hyper::service::service_fn(move |request: Request<_>| {
                service.clone().oneshot(request.map(Body::new))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// A request to `addr`: its `Host` names it, and a body is JSON.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> http::request::Builder {
    let builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if body.is_empty() {
        builder
    } else {
        builder.header("content-type", "application/json")
    }
}

/// What came back: the status, the headers and the body as text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// A header's value, empty without it.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The `error.code` of a JSON error body.
    pub(crate) fn code(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"));
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends `request` (with `body`) on a new HTTP/1.1 connection.
pub(crate) async fn send(addr: SocketAddr, request: http::request::Builder, body: &str) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET path` (or another body-less method).
pub(crate) async fn call(addr: SocketAddr, method: &str, path: &str) -> Answer {
    send(addr, request(addr, method, path, ""), "").await
}

/// Writes `bytes` as they are and reads what comes back until the server
/// closes or `within` passes: the raw answer as text.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8], within: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut received = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}
