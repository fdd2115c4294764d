//! The authorization-code grant with PKCE, then refresh, against the local
//! authorization server.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use patchbay_credentials::{CredentialError, authorize, send_authenticated};
use patchbay_transport::Request;

use crate::{context, credential, provider};
use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};

fn env(server: &OAuthServer) -> HashMap<&'static str, String> {
    HashMap::from([
        ("AUTH_URL", server.auth_url()),
        ("TOKEN_URL", server.token_url()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ])
}

/// Plays the browser: asks the authorization endpoint and returns where it
/// redirects to.
async fn approve(url: &url::Url) -> url::Url {
    let mut request = Request::new(Method::GET, url.clone());
    request.limits.max_redirects = 0;
    let response = crate::client().send(request).await.expect("authorize");
    assert_eq!(response.status, 302);
    let location = response
        .headers
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("location");
    url::Url::parse(location).expect("callback url")
}

#[tokio::test]
async fn code_exchange_then_refresh() {
    let server = OAuthServer::start().await;
    server.state.lifetime.store(1, Ordering::SeqCst);
    let env = env(&server);
    let context = context();
    let credential = credential("oauth-code");
    let lookup = |name: &str| env.get(name).cloned();

    let provider = provider("oauth-code", &env, &context);
    let mut early = Request::new(Method::GET, server.server.url("/resource"));
    let error = provider
        .apply(&mut early)
        .await
        .expect_err("not authorized yet");
    assert!(error.to_string().contains("patchbay auth"), "{error}");

    let redirect = url::Url::parse("http://127.0.0.1:1/callback").expect("redirect");
    let authorization = authorize(&credential, &lookup, &context, redirect).expect("authorize");
    let url = authorization.url().clone();
    assert!(url.as_str().contains("code_challenge_method=S256"), "{url}");
    let callback = approve(&url).await;
    authorization
        .complete(&callback)
        .await
        .expect("code exchanged");
    assert_eq!(
        *server.state.grants.lock().expect("grants"),
        vec!["authorization_code"]
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let request = Request::new(Method::GET, server.server.url("/resource"));
    let response = send_authenticated(&crate::client(), provider.as_ref(), request)
        .await
        .expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(
        *server.state.grants.lock().expect("grants"),
        vec!["authorization_code", "refresh_token"]
    );
}

#[tokio::test]
async fn a_forged_state_is_refused() {
    let server = OAuthServer::start().await;
    let env = env(&server);
    let context = context();
    let credential = credential("oauth-code");
    let lookup = |name: &str| env.get(name).cloned();
    let redirect = url::Url::parse("http://127.0.0.1:1/callback").expect("redirect");
    let authorization = authorize(&credential, &lookup, &context, redirect).expect("authorize");
    let mut callback = approve(authorization.url()).await;
    let code = callback
        .query_pairs()
        .find(|(key, _)| key == "code")
        .map(|(_, value)| value.into_owned())
        .expect("code");
    callback
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged");
    let error = authorization.complete(&callback).await.expect_err("forged");
    assert!(
        matches!(error, CredentialError::TokenResponse { .. }),
        "{error:?}"
    );
    assert_eq!(server.token_requests(), 0, "no code was exchanged");
}
