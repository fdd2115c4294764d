//! Servers that break HTTP: each ends as a typed error, never a hang.

use std::time::Duration;

use patchbay_transport::Error;
use tokio::io::AsyncWriteExt;

use crate::{client, get};
use patchbay_tests::servers::{self, read_head, reply};

async fn raw_reply(bytes: &'static [u8]) -> servers::Server {
    servers::raw(move |mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(bytes).await;
        let _ = stream.flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await
}

#[tokio::test]
async fn a_reset_mid_body_is_a_protocol_error() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
            .await;
        // SO_LINGER 0 makes the close a reset, which is the point here.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("reset");
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn malformed_chunked_encoding_is_a_protocol_error() {
    let server =
        raw_reply(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            .await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("bad chunk");
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn conflicting_content_lengths_are_a_protocol_error() {
    let server =
        raw_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello").await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("conflict");
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_protocol_error() {
    let server = raw_reply(b"SSH-2.0-OpenSSH_9.0\r\n").await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("garbage");
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = servers::http(|_| async { reply(200, vec![b'x'; 6 * 1024 * 1024]) }).await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("too large");
    assert!(
        matches!(error, Error::TooLarge { what: "body", .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn oversized_chunked_bodies_are_refused() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        for _ in 0..200 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("too large");
    assert!(
        matches!(error, Error::TooLarge { what: "body", .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn gzip_bombs_are_refused() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let bomb = bytes::Bytes::from(encoder.finish().expect("gzip"));
    assert!(bomb.len() < 1024 * 1024, "the bomb is small on the wire");
    let server = servers::http(move |_| {
        let bomb = bomb.clone();
        async move {
            let mut response = reply(200, bomb);
            response
                .headers_mut()
                .insert("content-encoding", "gzip".parse().expect("header"));
            response
        }
    })
    .await;
    let error = client().send(get(server.url("/"))).await.expect_err("bomb");
    assert!(
        matches!(
            error,
            Error::TooLarge {
                what: "decompressed body",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let server = servers::raw(|mut stream| async move {
        read_head(&mut stream).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\nx-padding: {}\r\ncontent-length: 2\r\n\r\n{{}}",
            "a".repeat(100 * 1024)
        );
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
    let error = client()
        .send(get(server.url("/")))
        .await
        .expect_err("headers");
    assert!(
        matches!(
            error,
            Error::TooLarge {
                what: "headers",
                ..
            }
        ),
        "{error:?}"
    );
}
