//! A token endpoint that reflects its request in `error_description` (the
//! form body as received, its decoded fields, the `Authorization` header
//! and the Basic pair decoded) cannot put the client secret, the Basic
//! value or the refresh token into our errors, in any encoding.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http::Method;
use http_body_util::BodyExt;
use patchbay_credentials::{CredentialError, MemoryTokenCache, ProviderContext};
use patchbay_tests::captured::{self, shows};
use patchbay_tests::servers::{self, Server, reply};
use patchbay_transport::Request;

use crate::{client, provider};

/// The client secret: `/`, `+`, `&`, `=` and a space make its
/// form-encoded, percent-encoded and raw spellings all differ.
const CLIENT_SECRET: &str = "canary-c1ient/s3cr3t+&= x";
const REFRESH_TOKEN: &str = "canary-refresh/t0ken+&= y";

/// Answers the first `grants` token requests with a token that expires
/// in a second (and a refresh token); refuses every later one, quoting the
/// request back.
async fn reflecting_endpoint(grants: usize) -> Server {
    let seen = Arc::new(AtomicUsize::new(0));
    servers::http(move |request| {
        let number = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|body| body.to_bytes())
                .unwrap_or_default();
            if number < grants {
                let token = serde_json::json!({
                    "access_token": "at-1",
                    "token_type": "Bearer",
                    "expires_in": 1,
                    "refresh_token": REFRESH_TOKEN,
                });
                return reply(200, token.to_string());
            }
            let basic = authorization
                .strip_prefix("Basic ")
                .and_then(|encoded| {
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .ok()
                })
                .map(|pair| String::from_utf8_lossy(&pair).into_owned())
                .unwrap_or_default();
            let fields: Vec<String> = url::form_urlencoded::parse(&body)
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let description = format!(
                "bad request: body {} fields {} authorization {authorization} basic {basic}\r\n\u{1b}[2J{}",
                String::from_utf8_lossy(&body),
                fields.join(" "),
                "padding ".repeat(100),
            );
            let answer = serde_json::json!({
                "error": "invalid_client",
                "error_description": description,
            });
            reply(400, answer.to_string())
        }
    })
    .await
}

fn env(endpoint: &Server) -> HashMap<&'static str, String> {
    HashMap::from([
        ("TOKEN_URL", endpoint.url("/token").to_string()),
        ("CLIENT_ID", "bot:client".to_owned()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ])
}

fn fresh_context() -> ProviderContext {
    ProviderContext::new(client(), Arc::new(MemoryTokenCache::default()))
}

async fn apply(provider: &dyn patchbay_credentials::Provider) -> Result<(), CredentialError> {
    let mut request = Request::new(
        Method::GET,
        url::Url::parse("http://127.0.0.1:9/").expect("url"),
    );
    provider.apply(&mut request).await
}

/// The error as every reader sees it: `Display`, `Debug`, and the parts.
fn shown(error: &CredentialError) -> String {
    let CredentialError::TokenRefused {
        error: code,
        description,
        ..
    } = error
    else {
        panic!("the endpoint refused, so TokenRefused: {error:?}");
    };
    let description = description.as_deref().unwrap_or_default();
    assert!(
        description.chars().count() <= patchbay_credentials::MAX_UPSTREAM_TEXT_CHARS + 1,
        "the description is bounded: {description}"
    );
    assert!(
        !description.chars().any(char::is_control),
        "no control character: {description:?}"
    );
    format!("{error}\n{error:?}\n{code}")
}

fn assert_clean(text: &str) {
    captured::keep("credentials", "token-errors", text);
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, "canary-"] {
        assert!(!shows(text, secret), "`{secret}` shows in:\n{text}");
    }
    assert!(
        text.contains("bad request: body"),
        "the endpoint's own words stay: {text}"
    );
}

#[tokio::test]
async fn a_reflecting_token_endpoint_cannot_leak_the_client_secret() {
    // Basic client authentication (the default) and form fields.
    for credential in ["oauth-header", "oauth-body"] {
        let endpoint = reflecting_endpoint(0).await;
        let provider = provider(credential, &env(&endpoint), &fresh_context());
        let error = apply(provider.as_ref()).await.expect_err("refused");
        assert_clean(&shown(&error));
    }
}

#[tokio::test]
async fn a_reflecting_token_endpoint_cannot_leak_the_refresh_token() {
    let endpoint = reflecting_endpoint(1).await;
    let provider = provider("oauth-body", &env(&endpoint), &fresh_context());
    apply(provider.as_ref()).await.expect("the first token");
    // The token expires: the next call sends the refresh grant, refused.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let error = apply(provider.as_ref()).await.expect_err("refused");
    let text = shown(&error);
    assert!(text.contains("refresh_token"), "{text}");
    assert_clean(&text);
}
