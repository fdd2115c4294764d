//! What replicas share: stored conversations (optimistic versioning,
//! session and user lifetimes) and outbound rate limits, in memory and in a
//! real `redis-server` (the OAuth token cache's fleet tests are in
//! `tests/credentials/shared_cache.rs`; the processes' in
//! `crates/cli/tests/cli/store.rs`).

mod context_store;
mod rate_limits;
mod state_store;

use std::sync::Arc;

use patchbay_engine::script::{RuntimeOptions, ScriptRuntime};
use patchbay_engine::transport::RateLimiter;
use patchbay_engine::{Engine, EngineOptions};
use patchbay_tests::servers::{self, Server, reply};

/// A bot that counts its turns (session) and its user's visits (forever),
/// calling an upstream each turn; `rate_limit` goes on the integration.
fn bot(rate_limit: &str) -> String {
    format!(
        r#"name: counter
network:
  allow: ["127.0.0.1"]
http:
  retries: 0
  timeoutMs: 2000
env:
  BASE: null
integrations:
  - name: ping
    responseDataVariable: PING
    type: api
    method: GET
    url: "{{$env.BASE}}/ping"
{rate_limit}
dialogs:
  - name: main
    interactions:
      - name: count
        type: integration
        integration: ping
        preProcess: |
          var turns = Number(botContext.getBotVariable("turns") || "0");
          botContext.setBotVariable("turns", String(turns + 1), true, false);
          var visits = Number(botContext.getBotVariable("visits") || "0");
          botContext.setBotVariable("visits", String(visits + 1), true, true);
        rules:
          - match:
              apiResult: success
            messages:
              - "turn {{$botContext.turns}}, visit {{$botContext.visits}}"
            next: end
"#
    )
}

/// An upstream that answers `{}` after `delay_ms`.
async fn upstream(delay_ms: u64) -> Server {
    servers::http(move |_| async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        reply(200, "{}")
    })
    .await
}

async fn engine(
    upstream: &Server,
    rate_limit: &str,
    limiter: Option<Arc<dyn RateLimiter>>,
) -> Engine {
    engine_from(upstream, &bot(rate_limit), limiter).await
}

async fn engine_from(
    upstream: &Server,
    text: &str,
    limiter: Option<Arc<dyn RateLimiter>>,
) -> Engine {
    let bot = patchbay_tests::bot("counter.yaml", text);
    let base = format!("http://{}", upstream.addr);
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let mut options = EngineOptions::new(
        Arc::new(move |name: &str| (name == "BASE").then(|| base.clone())),
        scripts,
    );
    if let Some(limiter) = limiter {
        options.rate_limiter = limiter;
    }
    Engine::new(bot, options).await.expect("engine")
}
