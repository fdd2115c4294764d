//! Each credential type, applied to a real request.

use std::collections::HashMap;

use base64::Engine as _;
use http::Method;
use patchbay_credentials::{CredentialError, send_authenticated};
use patchbay_tests::servers::{self, Pki, reply};
use patchbay_transport::{Client, NetworkGuard, Request};

use crate::{context, provider};
use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};

fn oauth_env(server: &OAuthServer, secret: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("TOKEN_URL", server.token_url()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", secret.to_owned()),
    ])
}

#[tokio::test]
async fn client_authentication_in_the_header_and_in_the_body() {
    for (credential, how) in [("oauth-header", "header"), ("oauth-body", "body")] {
        let server = OAuthServer::start().await;
        let context = context();
        let provider = provider(credential, &oauth_env(&server, CLIENT_SECRET), &context);
        let mut request = Request::new(Method::GET, server.server.url("/resource"));
        provider.apply(&mut request).await.expect("token");
        assert_eq!(*server.state.client_auth.lock().expect("auth"), vec![how]);
        let form = server.state.last_form.lock().expect("form").clone();
        assert_eq!(
            form.get("grant_type").map(String::as_str),
            Some("client_credentials")
        );
        if credential == "oauth-header" {
            assert_eq!(form.get("scope").map(String::as_str), Some("read write"));
            assert_eq!(
                form.get("audience").map(String::as_str),
                Some("https://api.example.com")
            );
        }
    }
}

#[tokio::test]
async fn token_endpoint_errors_become_clear_errors() {
    let server = OAuthServer::start().await;
    let context = context();
    // Not a word of the endpoint's description: the secret is masked there.
    let provider = provider("oauth-header", &oauth_env(&server, "not-it"), &context);
    let mut request = Request::new(Method::GET, server.server.url("/resource"));
    let error = provider.apply(&mut request).await.expect_err("refused");
    assert!(
        matches!(&error, CredentialError::TokenRefused { error, description: Some(_), .. } if error == "invalid_client"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("invalid_client (unknown client or wrong secret)"),
        "{error}"
    );

    *server.state.refuse.lock().expect("refuse") =
        Some((503, "<html>maintenance</html>".to_owned()));
    let error = provider.apply(&mut request).await.expect_err("not json");
    assert!(
        matches!(error, CredentialError::TokenResponse { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn token_requests_never_follow_redirects() {
    let server = servers::http(|_| async {
        let mut response = reply(302, "");
        response.headers_mut().insert(
            "location",
            "http://127.0.0.1:9/token".parse().expect("header"),
        );
        response
    })
    .await;
    let env = HashMap::from([
        ("TOKEN_URL", server.url("/token").to_string()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ]);
    let context = context();
    let provider = provider("oauth-header", &env, &context);
    let mut request = Request::new(Method::GET, server.url("/resource"));
    let error = provider
        .apply(&mut request)
        .await
        .expect_err("redirect refused");
    assert!(
        matches!(error, CredentialError::TokenResponse { .. }),
        "{error:?}"
    );
    assert_eq!(server.accepts(), 1, "the redirect target was never called");
}

/// Echoes the request's Authorization, X-Api-Key and query as JSON.
async fn echo() -> servers::Server {
    servers::http(|request| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        reply(
            200,
            format!(
                "{}\n{}\n{}",
                header("authorization"),
                header("x-api-key"),
                request.uri().query().unwrap_or_default()
            ),
        )
    })
    .await
}

#[tokio::test]
async fn static_credentials_reach_the_server() {
    let server = echo().await;
    let env = HashMap::from([
        ("USERNAME", "jos\u{e9}".to_owned()),
        ("PASSWORD", "pa:ss".to_owned()),
        ("TOKEN", "abc123".to_owned()),
        ("API_KEY", "k-42".to_owned()),
        ("CONSUMER_SECRET", "cs".to_owned()),
        ("TOKEN_SECRET", "ts".to_owned()),
    ]);
    let context = context();
    let basic = base64::engine::general_purpose::STANDARD.encode("jos\u{e9}:pa:ss".as_bytes());
    let cases = [
        ("basic", format!("Basic {basic}\n\n")),
        ("bearer", "Bearer abc123\n\n".to_owned()),
        ("key-header", "\nk-42\n".to_owned()),
        ("key-query", "\n\napi_key=k-42".to_owned()),
    ];
    for (name, expected) in cases {
        let provider = provider(name, &env, &context);
        let request = Request::new(Method::GET, server.url("/echo"));
        let response = send_authenticated(&crate::client(), provider.as_ref(), request)
            .await
            .expect("response");
        assert_eq!(String::from_utf8_lossy(&response.body), expected, "{name}");
    }
    let provider = provider("signed", &env, &context);
    let request = Request::new(Method::GET, server.url("/echo?q=1"));
    let response = send_authenticated(&crate::client(), provider.as_ref(), request)
        .await
        .expect("response");
    let body = String::from_utf8_lossy(&response.body);
    assert!(
        body.starts_with("OAuth oauth_consumer_key=\"consumer\""),
        "{body}"
    );
    assert!(
        body.contains("oauth_signature_method=\"HMAC-SHA1\""),
        "{body}"
    );
    assert!(body.contains("oauth_token=\"access\""), "{body}");
}

#[tokio::test]
async fn missing_environment_variables_are_named() {
    let context = context();
    let credential = crate::credential("basic");
    let lookup = |name: &str| (name == "USERNAME").then(|| "bot".to_owned());
    let error = patchbay_credentials::build(&credential, &lookup, &context).expect_err("missing");
    assert_eq!(
        error.to_string(),
        "credential `basic` needs environment variable `PASSWORD`, which is not set"
    );
}

#[tokio::test]
async fn mutual_tls_is_accepted_with_the_certificate_and_refused_without() {
    let pki = Pki::new();
    let server = servers::mutual_tls(|_| async { reply(200, "mutual") }, &pki).await;
    let (certificate, key) = pki.client_pem.clone();
    let env = HashMap::from([
        ("CERT_PEM", certificate),
        ("KEY_PEM", key),
        ("P12", pki.client_pkcs12("p12 pass")),
        ("P12_PASSWORD", "p12 pass".to_owned()),
    ]);
    let client = Client::builder()
        .guard(NetworkGuard::with_allowed(["localhost"]).expect("allow"))
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .expect("ca")
        .build()
        .expect("client");
    let context = patchbay_credentials::ProviderContext::new(
        client.clone(),
        std::sync::Arc::new(patchbay_credentials::MemoryTokenCache::default()),
    );
    for name in ["mtls", "mtls-p12"] {
        let provider = provider(name, &env, &context);
        let request = Request::new(Method::GET, server.https_url("/"));
        let response = send_authenticated(&client, provider.as_ref(), request)
            .await
            .expect(name);
        assert_eq!(&response.body[..], b"mutual");
    }
    let mut without = Request::new(Method::GET, server.https_url("/"));
    without.limits.max_retries = 0;
    assert!(client.send(without).await.is_err());
}

#[tokio::test]
async fn a_wrong_pkcs12_password_is_a_clear_error() {
    let pki = Pki::new();
    let env = HashMap::from([
        ("P12", pki.client_pkcs12("right")),
        ("P12_PASSWORD", "wrong".to_owned()),
    ]);
    let credential = crate::credential("mtls-p12");
    let lookup = |name: &str| env.get(name).cloned();
    let error =
        patchbay_credentials::build(&credential, &lookup, &context()).expect_err("wrong password");
    assert_eq!(
        error.to_string(),
        "credential `mtls-p12`: field `pkcs12` is unusable: not a PKCS#12 bundle, or the password is wrong"
    );
}
