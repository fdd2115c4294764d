//! Redirects: bounded, credentials kept inside their origin, methods per RFC 9110.

use http::header::AUTHORIZATION;
use http::{HeaderValue, Method};
use patchbay_transport::{Error, Request};

use crate::{client, get};
use patchbay_tests::servers::{self, reply};

fn redirect(status: u16, location: String) -> servers::Reply {
    let mut response = reply(status, "");
    response
        .headers_mut()
        .insert("location", location.parse().expect("location"));
    response
}

#[tokio::test]
async fn redirect_loops_stop_at_the_limit() {
    let server = servers::http(|_| async { redirect(302, "/again".to_owned()) }).await;
    let error = client().send(get(server.url("/"))).await.expect_err("loop");
    assert!(
        matches!(error, Error::TooManyRedirects { limit: 5, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_zero_redirect_limit_returns_the_redirect() {
    let server = servers::http(|_| async { redirect(302, "/elsewhere".to_owned()) }).await;
    let mut request = get(server.url("/"));
    request.limits.max_redirects = 0;
    let response = client().send(request).await.expect("response");
    assert_eq!(response.status, 302);
}

/// Echoes the credentials a request carried, as JSON.
async fn echo_credentials() -> servers::Server {
    servers::http(|request| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap_or_default().to_owned())
        };
        let body = format!(
            r#"{{"authorization":{:?},"apiKey":{:?},"method":"{}"}}"#,
            header("authorization").unwrap_or_default(),
            header("x-api-key").unwrap_or_default(),
            request.method()
        );
        reply(200, body)
    })
    .await
}

fn with_credentials(mut request: Request) -> Request {
    request.headers.insert(
        AUTHORIZATION,
        HeaderValue::from_static("Bearer canary-token"),
    );
    let mut key = HeaderValue::from_static("canary-key");
    key.set_sensitive(true);
    request.headers.insert("x-api-key", key);
    request
}

#[tokio::test]
async fn cross_origin_redirects_drop_credentials() {
    let target = echo_credentials().await;
    // `localhost` and 127.0.0.1 name one host but are different origins.
    let location = format!("http://localhost:{}/landing", target.addr.port());
    let origin = servers::http(move |_| {
        let location = location.clone();
        async move { redirect(302, location) }
    })
    .await;
    let response = client()
        .send(with_credentials(get(origin.url("/"))))
        .await
        .expect("response");
    let body = String::from_utf8_lossy(&response.body);
    assert!(body.contains(r#""authorization":"""#), "{body}");
    assert!(body.contains(r#""apiKey":"""#), "{body}");
    assert_eq!(response.timings.redirects, 1);
}

#[tokio::test]
async fn same_origin_redirects_keep_credentials() {
    let server = servers::http(|request| async move {
        if request.uri().path() == "/" {
            return redirect(307, "/landing".to_owned());
        }
        let auth = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        reply(200, auth)
    })
    .await;
    let response = client()
        .send(with_credentials(get(server.url("/"))))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"Bearer canary-token");
}

#[tokio::test]
async fn see_other_and_post_redirects_become_get() {
    for status in [301u16, 302, 303] {
        let server = servers::http(move |request| async move {
            if request.uri().path() == "/" {
                return redirect(status, "/landing".to_owned());
            }
            reply(200, request.method().as_str().to_owned())
        })
        .await;
        let mut request = Request::new(Method::POST, server.url("/"));
        request.body = bytes::Bytes::from_static(b"{}");
        let response = client().send(request).await.expect("response");
        assert_eq!(&response.body[..], b"GET", "after {status}");
    }
}

#[tokio::test]
async fn temporary_redirects_keep_the_method() {
    let server = servers::http(|request| async move {
        if request.uri().path() == "/" {
            return redirect(307, "/landing".to_owned());
        }
        reply(200, request.method().as_str().to_owned())
    })
    .await;
    let response = client()
        .send(Request::new(Method::POST, server.url("/")))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"POST");
}
