//! Integration tests of `patchbay-credentials` against a real local OAuth 2
//! token server and resource server (hyper on 127.0.0.1:0).

mod authorization;
mod cache;
mod providers;
mod secrets;
mod shared_cache;
mod token_errors;

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_config::{Bot, load};
use patchbay_credentials::{MemoryTokenCache, Provider, ProviderContext, build};
use patchbay_transport::{Client, NetworkGuard};

/// A bot whose credentials take every value from the environment.
const BOT: &str = r#"
name: credentials
env:
  TOKEN_URL: null
  CLIENT_ID: null
  CLIENT_SECRET: null
  USERNAME: null
  PASSWORD: null
  TOKEN: null
  API_KEY: null
  CONSUMER_SECRET: null
  TOKEN_SECRET: null
  CERT_PEM: null
  KEY_PEM: null
  AUTH_URL: null
  P12: null
  P12_PASSWORD: null
credentials:
  - name: oauth-header
    type: oauth2
    grant: client-credentials
    clientId: "{$env.CLIENT_ID}"
    clientSecret: "{$env.CLIENT_SECRET}"
    tokenUrl: "{$env.TOKEN_URL}"
    scope: read write
    extraParams:
      audience: https://api.example.com
  - name: oauth-body
    type: oauth2
    grant: client-credentials
    clientId: "{$env.CLIENT_ID}"
    clientSecret: "{$env.CLIENT_SECRET}"
    tokenUrl: "{$env.TOKEN_URL}"
    clientAuth: body
  - name: oauth-code
    type: oauth2
    grant: authorization-code
    clientId: "{$env.CLIENT_ID}"
    clientSecret: "{$env.CLIENT_SECRET}"
    authUrl: "{$env.AUTH_URL}"
    tokenUrl: "{$env.TOKEN_URL}"
    scope: profile
  - name: basic
    type: basic
    username: "{$env.USERNAME}"
    password: "{$env.PASSWORD}"
  - name: bearer
    type: access-token
    token: "{$env.TOKEN}"
  - name: key-header
    type: api-key
    header: X-Api-Key
    value: "{$env.API_KEY}"
  - name: key-query
    type: api-key
    queryParam: api_key
    value: "{$env.API_KEY}"
  - name: signed
    type: oauth1
    consumerKey: consumer
    consumerSecret: "{$env.CONSUMER_SECRET}"
    token: access
    tokenSecret: "{$env.TOKEN_SECRET}"
  - name: mtls
    type: mutual-tls
    certificate: "{$env.CERT_PEM}"
    privateKey: "{$env.KEY_PEM}"
  - name: mtls-p12
    type: mutual-tls
    pkcs12: "{$env.P12}"
    password: "{$env.P12_PASSWORD}"
"#;

fn bot() -> Bot {
    match load("credentials.yaml", BOT) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    }
}

/// A client allowed to reach the loopback test servers.
fn client() -> Client {
    Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1", "localhost"]).expect("allow"))
        .build()
        .expect("client")
}

fn context() -> ProviderContext {
    ProviderContext::new(client(), Arc::new(MemoryTokenCache::default()))
}

/// The named credential of [`BOT`].
fn credential(name: &str) -> patchbay_config::Credential {
    bot()
        .credentials
        .into_iter()
        .find(|credential| credential.name == name)
        .expect("credential in BOT")
}

/// Builds the named credential of [`BOT`] with `env` as its environment.
fn provider(
    name: &str,
    env: &HashMap<&str, String>,
    context: &ProviderContext,
) -> Arc<dyn Provider> {
    let lookup = |key: &str| env.get(key).cloned();
    build(&credential(name), &lookup, context).expect("provider")
}

/// `calls` first calls at once, spread over `providers` in turn; each must
/// get its token applied. Returns how many did.
async fn apply_concurrently(
    providers: &[Arc<dyn Provider>],
    url: &url::Url,
    calls: usize,
) -> usize {
    let mut running = tokio::task::JoinSet::new();
    for call in 0..calls {
        let provider = Arc::clone(&providers[call % providers.len()]);
        let url = url.clone();
        running.spawn(async move {
            let mut request = patchbay_transport::Request::new(http::Method::GET, url);
            provider.apply(&mut request).await.map(|()| request)
        });
    }
    let mut applied = 0;
    while let Some(result) = running.join_next().await {
        let request = result.expect("task").expect("token applied");
        assert!(request.headers.contains_key("authorization"));
        applied += 1;
    }
    applied
}
