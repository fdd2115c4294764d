//! A canary secret in every credential type never shows: not in logs, not
//! in errors, not in any Debug output.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use http::Method;
use patchbay_credentials::send_authenticated;
use patchbay_tests::servers::{self, Pki, reply};
use patchbay_transport::Request;

use crate::{bot, context};
use patchbay_tests::oauth::{CLIENT_ID, OAuthServer};

const CANARY: &str = "canary-s3cr3t";

/// Everything the subscriber writes, for grepping.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

/// Installs, once for the whole test binary, a global subscriber at TRACE
/// level that writes into one buffer. A scoped (`set_default`) subscriber
/// would miss callsites that tests on other threads registered first.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_or_debug_output() {
    let captured = captured_logs();
    let oauth = OAuthServer::start().await;
    let echo = servers::http(|request| async move {
        let seen = format!("{:?}", request.headers().get("authorization"));
        reply(200, seen)
    })
    .await;
    let pki = Pki::new();
    let (certificate, key) = pki.client_pem.clone();
    let env = HashMap::from([
        ("TOKEN_URL", oauth.token_url()),
        ("AUTH_URL", oauth.auth_url()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        // Wrong on purpose: the token endpoint refuses, and its error must
        // not quote the secret either.
        ("CLIENT_SECRET", format!("{CANARY}-client")),
        ("USERNAME", "bot".to_owned()),
        ("PASSWORD", format!("{CANARY}-password")),
        ("TOKEN", format!("{CANARY}-token")),
        ("API_KEY", format!("{CANARY}-key")),
        ("CONSUMER_SECRET", format!("{CANARY}-consumer")),
        ("TOKEN_SECRET", format!("{CANARY}-token-secret")),
        ("P12", pki.client_pkcs12(&format!("{CANARY}-p12"))),
        ("P12_PASSWORD", format!("{CANARY}-p12")),
        ("CERT_PEM", certificate),
        ("KEY_PEM", key),
    ]);
    let context = context();
    let client = crate::client();
    let mut shown = Vec::new();
    for credential in &bot().credentials {
        let lookup = |name: &str| env.get(name).cloned();
        let provider = patchbay_credentials::build(credential, &lookup, &context)
            .expect("every credential builds");
        shown.push(format!("{provider:?}"));
        let mut request = Request::new(Method::GET, echo.url("/echo"));
        match provider.apply(&mut request).await {
            Ok(()) => shown.push(format!("{request:?}")),
            Err(error) => shown.push(format!("{error} {error:?}")),
        }
        let outcome = send_authenticated(&client, provider.as_ref(), request.clone()).await;
        match outcome {
            Ok(response) => shown.push(format!("{response:?}")),
            Err(error) => shown.push(format!("{error} {error:?}")),
        }
        // A failed call with the credential applied: its error must be clean.
        let mut refused = request;
        refused.url = url::Url::parse("http://127.0.0.1:9/closed?api_key=x").expect("url");
        refused.limits.max_retries = 0;
        if let Err(error) = client.send(refused).await {
            shown.push(format!("{error} {error:?}"));
        }
    }
    let basic = crate::credential("basic");
    let missing =
        patchbay_credentials::build(&basic, &|_| None, &context).expect_err("no environment");
    shown.push(format!("{missing} {missing:?}"));

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
    assert!(
        logs.contains("fetching an OAuth 2 token") && logs.contains("http.attempt"),
        "traces were captured:\n{logs}"
    );
    assert!(oauth.token_requests() >= 1, "the token endpoint was asked");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        patchbay_tests::captured::keep("credentials", "secrets", text);
        assert!(!text.contains(CANARY), "a secret leaked:\n{text}");
        assert!(
            !text.contains("PRIVATE KEY"),
            "key material leaked:\n{text}"
        );
    }
}
