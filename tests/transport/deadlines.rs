//! One deadline covers everything: slow headers, a trickled body, a hang.

use std::time::{Duration, Instant};

use patchbay_transport::{Error, Phase};
use tokio::io::AsyncWriteExt;

use crate::{client, get, with_deadline};
use patchbay_tests::servers::{self, read_head};

const DEADLINE: Duration = Duration::from_millis(800);

async fn assert_times_out(server: &servers::Server, phase: Phase) {
    let started = Instant::now();
    let error = client()
        .send(with_deadline(get(server.url("/")), DEADLINE))
        .await
        .expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(
        matches!(error, Error::Timeout { phase: p, .. } if p == phase),
        "{error:?}"
    );
    assert!(elapsed < DEADLINE.mul_f64(1.2), "took {elapsed:?}");
    assert!(elapsed >= DEADLINE, "ended early, after {elapsed:?}");
}

#[tokio::test]
async fn slow_headers_end_at_the_deadline() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    assert_times_out(&server, Phase::Headers).await;
}

#[tokio::test]
async fn a_trickled_body_ends_at_the_deadline() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            .await;
        for _ in 0..1000 {
            if stream.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_times_out(&server, Phase::Body).await;
}

#[tokio::test]
async fn a_hang_after_headers_ends_at_the_deadline() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    assert_times_out(&server, Phase::Body).await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_ends_at_the_connect_timeout() {
    let server = servers::raw(|stream| async move {
        // Accepts, then never says a word of TLS.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    })
    .await;
    let mut request = get(server.https_url("/"));
    request.limits.connect_timeout = Duration::from_millis(300);
    request.limits.max_retries = 0;
    let started = Instant::now();
    let error = client().send(request).await.expect_err("stalled");
    let elapsed = started.elapsed();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("connect timeout"), "{error}");
    assert!(elapsed < Duration::from_millis(600), "took {elapsed:?}");
}
