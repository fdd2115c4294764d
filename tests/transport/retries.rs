//! Retries only where safe, within the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use patchbay_transport::{Error, Request};

use crate::{client, get, with_deadline};
use patchbay_tests::servers::{self, reply};

/// Answers 503 with `Retry-After: 1` the first time, then 200.
async fn unavailable_once() -> (servers::Server, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = servers::http(move |_| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                let mut response = reply(503, "busy");
                response
                    .headers_mut()
                    .insert("retry-after", "1".parse().expect("header"));
                response
            } else {
                reply(200, "{}")
            }
        }
    })
    .await;
    (server, calls)
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_for_get() {
    let (server, calls) = unavailable_once().await;
    let started = Instant::now();
    let response = client().send(get(server.url("/"))).await.expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response.timings.attempts, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn post_is_not_retried_after_its_body_was_sent() {
    let (server, calls) = unavailable_once().await;
    let mut request = Request::new(Method::POST, server.url("/"));
    request.body = bytes::Bytes::from_static(b"{}");
    let response = client().send(request).await.expect("response");
    assert_eq!(response.status, 503);
    assert_eq!(response.timings.attempts, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retry_after_past_the_deadline_returns_the_answer() {
    let server = servers::http(|_| async {
        let mut response = reply(503, "busy");
        response
            .headers_mut()
            .insert("retry-after", "60".parse().expect("header"));
        response
    })
    .await;
    let started = Instant::now();
    let response = client()
        .send(with_deadline(get(server.url("/")), Duration::from_secs(2)))
        .await
        .expect("response");
    assert_eq!(response.status, 503);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
    let started = Instant::now();
    let error = client()
        .send(Request::new(Method::POST, url))
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    // Three backoffs of at least 50, 100 and 200 ms happened.
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
}
