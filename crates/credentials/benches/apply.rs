//! What a call pays for its credential once the token is cached: an OAuth 2
//! bearer token read from the cache and set as a sensitive header, and a
//! static API key for comparison.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use patchbay_credentials::{
    CachedToken, MemoryTokenCache, ProviderContext, Secret, TokenCache, build,
};
use patchbay_transport::{Client, Request};

const BOT: &str = r#"
name: bench
env:
  CLIENT_SECRET: null
  API_KEY: null
credentials:
  - name: kb-oauth
    type: oauth2
    grant: client-credentials
    clientId: bench-client
    clientSecret: "{$env.CLIENT_SECRET}"
    tokenUrl: https://auth.example.com/oauth/token
  - name: api-key
    type: api-key
    header: X-Api-Key
    value: "{$env.API_KEY}"
"#;

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let bot = match patchbay_config::load("bench.yaml", BOT) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    };
    let cache = Arc::new(MemoryTokenCache::default());
    // The token the first call would have fetched (key: credential name and
    // its scopes, none here). The URL is never dialled: the bench fails if
    // the token is not found in the cache.
    tokio.block_on(cache.put(
        "kb-oauth|",
        CachedToken {
            access_token: Secret::new("cached-access-token"),
            token_type: "Bearer".to_owned(),
            expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
            refresh_at: Some(SystemTime::now() + Duration::from_secs(3000)),
            refresh_token: None,
        },
    ));
    let client = Client::builder().build().expect("client");
    let context = ProviderContext::new(client, cache);
    let env = |name: &str| Some(format!("bench-{name}"));
    let url = url::Url::parse("https://kb.example.com/search").expect("url");
    for credential in &bot.credentials {
        let provider = build(credential, &env, &context).expect("provider");
        let name = format!("apply_{}", credential.name.replace('-', "_"));
        c.bench_function(&name, |b| {
            b.to_async(&tokio).iter(|| async {
                let mut request = Request::new(http::Method::GET, url.clone());
                provider.apply(&mut request).await.expect("applies");
                assert!(request.headers.len() == 1);
            });
        });
    }
}

criterion_group!(apply, benches);
criterion_main!(apply);
