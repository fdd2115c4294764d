//! Every status is data; bodies arrive whole; connections are reused.

use crate::{client, get};
use patchbay_tests::servers::{self, reply};

#[tokio::test]
async fn statuses_are_returned_as_data() {
    for status in [200u16, 201, 204, 404, 500] {
        let server = servers::http(move |_| async move {
            let body = if status == 204 { "" } else { r#"{"ok":true}"# };
            reply(status, body)
        })
        .await;
        let response = client().send(get(server.url("/"))).await.expect("response");
        assert_eq!(response.status, status);
        if status != 204 {
            assert_eq!(&response.body[..], br#"{"ok":true}"#);
        }
        assert_eq!(
            response.timings.attempts, 1,
            "status {status} is not retried"
        );
    }
}

#[tokio::test]
async fn one_connection_serves_a_hundred_calls() {
    let server = servers::http(|_| async { reply(200, "{}") }).await;
    let client = client();
    for _ in 0..100 {
        let response = client.send(get(server.url("/"))).await.expect("response");
        assert_eq!(response.status, 200);
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn gzip_bodies_are_decoded() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(br#"{"items":[1,2,3]}"#).expect("gzip");
    let compressed = bytes::Bytes::from(encoder.finish().expect("gzip"));
    let server = servers::http(move |request| {
        let compressed = compressed.clone();
        async move {
            let accepts_gzip = request
                .headers()
                .get("accept-encoding")
                .is_some_and(|value| value.to_str().unwrap_or_default().contains("gzip"));
            let mut response = reply(200, compressed);
            if accepts_gzip {
                response
                    .headers_mut()
                    .insert("content-encoding", "gzip".parse().expect("header"));
            }
            response
        }
    })
    .await;
    let response = client().send(get(server.url("/"))).await.expect("response");
    assert_eq!(&response.body[..], br#"{"items":[1,2,3]}"#);
    assert!(response.headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn errors_never_carry_the_query_or_credentials() {
    use http::HeaderValue;
    let server = patchbay_tests::servers::raw(|stream| async move { drop(stream) }).await;
    let mut url = server.url("/search");
    url.set_query(Some("api_key=canary-s3cr3t"));
    let mut request = get(url);
    request.limits.max_retries = 0;
    let mut auth = HeaderValue::from_static("Bearer canary-s3cr3t");
    auth.set_sensitive(true);
    request.headers.insert(http::header::AUTHORIZATION, auth);
    let debug_request = format!("{request:?}");
    assert!(!debug_request.contains("canary"), "{debug_request}");
    let error = client().send(request).await.expect_err("closed");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("canary-s3cr3t"), "{shown}");
}
