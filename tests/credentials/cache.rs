//! The OAuth 2 token cache: one fetch for many callers, refresh before
//! expiry, one retry after `invalid_token`, none after 403.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use patchbay_credentials::send_authenticated;
use patchbay_transport::Request;

use crate::{apply_concurrently, context, provider};
use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};

fn env(server: &OAuthServer) -> HashMap<&'static str, String> {
    HashMap::from([
        ("TOKEN_URL", server.token_url()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ])
}

fn resource(server: &OAuthServer) -> Request {
    Request::new(Method::GET, server.server.url("/resource"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_first_calls_fetch_one_token() {
    let server = OAuthServer::start().await;
    server.state.delay.store(100, Ordering::SeqCst);
    let context = context();
    let provider = provider("oauth-header", &env(&server), &context);
    let applied = apply_concurrently(&[provider], &server.server.url("/resource"), 1000).await;
    assert_eq!(applied, 1000);
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let server = OAuthServer::start().await;
    // A 2 s token is refreshed after 1 s (the 60 s skew is capped at half
    // the lifetime), while it still works.
    server.state.lifetime.store(2, Ordering::SeqCst);
    let context = context();
    let provider = provider("oauth-header", &env(&server), &context);
    let client = crate::client();
    let mut bodies = Vec::new();
    for pause in [0, 1_200, 300] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let response = send_authenticated(&client, provider.as_ref(), resource(&server))
            .await
            .expect("response");
        assert_eq!(response.status, 200, "no call fails");
        bodies.push(String::from_utf8_lossy(&response.body).into_owned());
    }
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.resource_requests(), 3, "nothing was retried");
    assert!(
        bodies[0].contains("tok-1") && bodies[1].contains("tok-2"),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn invalid_token_brings_one_new_token_and_one_retry() {
    let server = OAuthServer::start().await;
    server
        .state
        .revoked
        .lock()
        .expect("revoked")
        .insert("tok-1".to_owned());
    let context = context();
    let provider = provider("oauth-header", &env(&server), &context);
    let response = send_authenticated(&crate::client(), provider.as_ref(), resource(&server))
        .await
        .expect("response");
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("tok-2"));
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.resource_requests(), 2);
}

#[tokio::test]
async fn a_token_rejected_again_is_not_retried_twice() {
    let server = OAuthServer::start().await;
    for token in ["tok-1", "tok-2", "tok-3"] {
        server
            .state
            .revoked
            .lock()
            .expect("revoked")
            .insert(token.to_owned());
    }
    let context = context();
    let provider = provider("oauth-header", &env(&server), &context);
    let response = send_authenticated(&crate::client(), provider.as_ref(), resource(&server))
        .await
        .expect("response");
    assert_eq!(response.status, 401);
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.resource_requests(), 2);
}

#[tokio::test]
async fn forbidden_is_final() {
    let server = OAuthServer::start().await;
    server.state.resource_status.store(403, Ordering::SeqCst);
    let context = context();
    let provider = provider("oauth-header", &env(&server), &context);
    let response = send_authenticated(&crate::client(), provider.as_ref(), resource(&server))
        .await
        .expect("response");
    assert_eq!(response.status, 403);
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.resource_requests(), 1);
}
