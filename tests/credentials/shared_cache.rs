//! The OAuth 2 token cache in a real Redis, shared by two "replicas" (two
//! caches with their own connections): one token fetch for the fleet, a
//! dead lock holder delays nobody past its lock, and a Redis outage fails
//! no call.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::Method;
use patchbay_credentials::{Provider, ProviderContext, TokenCache};
use patchbay_redis::Redis;
use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};
use patchbay_tests::redis::RedisServer;
use patchbay_transport::Request;

use crate::{apply_concurrently, client, provider};

/// The cache key of `oauth-header` (credential name and scopes).
const KEY: &str = "oauth-header|read write";

async fn replica(redis: &RedisServer, server: &OAuthServer, prefix: &str) -> Arc<dyn Provider> {
    let cache = Redis::connect(&redis.url(), prefix)
        .await
        .expect("connect to redis")
        .token_cache();
    let context = ProviderContext::new(client(), Arc::new(cache));
    let env = std::collections::HashMap::from([
        ("TOKEN_URL", server.token_url()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ]);
    provider("oauth-header", &env, &context)
}

async fn apply(provider: &dyn Provider, server: &OAuthServer) -> Request {
    let mut request = Request::new(Method::GET, server.server.url("/resource"));
    provider.apply(&mut request).await.expect("token applied");
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fetch_one_token_for_200_cold_calls() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = OAuthServer::start().await;
    server.state.delay.store(100, Ordering::SeqCst);
    let replicas = [
        replica(&redis, &server, "fleet-a:").await,
        replica(&redis, &server, "fleet-a:").await,
    ];
    let applied = apply_concurrently(&replicas, &server.server.url("/resource"), 200).await;
    assert_eq!(applied, 200);
    assert_eq!(server.token_requests(), 1, "one fetch for the whole fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lock_holder_delays_nobody_past_its_lock() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = OAuthServer::start().await;
    // A replica took the lock for 1.5 s and died without fetching.
    let dead = Redis::connect(&redis.url(), "fleet-b:")
        .await
        .expect("connect")
        .token_cache();
    assert!(dead.acquire(KEY, Duration::from_millis(1500)).await);
    drop(dead);
    let survivor = replica(&redis, &server, "fleet-b:").await;
    let started = Instant::now();
    let request = apply(survivor.as_ref(), &server).await;
    let waited = started.elapsed();
    assert!(request.headers.contains_key("authorization"));
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_no_call() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = OAuthServer::start().await;
    let provider = replica(&redis, &server, "fleet-c:").await;
    apply(provider.as_ref(), &server).await;
    assert_eq!(server.token_requests(), 1);
    redis.stop();
    // The cache now misses: the replica fetches its own token, and goes on.
    let request = tokio::time::timeout(Duration::from_secs(15), apply(provider.as_ref(), &server))
        .await
        .expect("no hang while redis is down");
    assert!(request.headers.contains_key("authorization"));
}
