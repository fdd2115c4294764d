//! Outbound rate limits through whole turns: calls wait for their slot
//! within the deadline, a slot past it fails the call at once on the
//! failure path, and replicas sharing Redis share the limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_engine::script::Persistence;
use patchbay_engine::transport::RateLimiter;
use patchbay_engine::{ConversationState, Engine, Start};
use patchbay_redis::Redis;
use patchbay_tests::redis::RedisServer;
use patchbay_tests::servers::{self, Server, reply};

use crate::engine;

/// 20 calls a second, one at a time: 50 ms apart.
const EVERY_50_MS: &str = "    rateLimit: { calls: 20, periodMs: 1000 }";

/// An upstream that notes when each call arrived.
async fn recording() -> (Server, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&arrivals);
    let server = servers::http(move |_| {
        noted.lock().expect("arrivals").push(Instant::now());
        async { reply(200, "{}") }
    })
    .await;
    (server, arrivals)
}

async fn turn(engine: &Engine) -> (String, Option<&'static str>) {
    let mut state = ConversationState::default();
    state.set("unused", "", Persistence::Session);
    let turn = engine
        .run_turn(state, Start::Interaction("count".to_owned()), "")
        .await
        .expect("turn");
    let kind = turn
        .steps
        .first()
        .and_then(|step| step.call.as_ref())
        .and_then(|call| call.failure.as_ref())
        .map(|failure| failure.kind);
    (turn.texts().join(" / "), kind)
}

/// Ten calls at once from two replicas: the first goes, the others follow
/// 50 ms apart. Each replica alone would let its half go in ~200 ms; only a
/// limit the two share spaces all ten over ~450 ms.
async fn ten_calls_from_two_replicas(limiters: [Arc<dyn RateLimiter>; 2]) -> Duration {
    let (upstream, arrivals) = recording().await;
    let [first, second] = limiters;
    let replicas = [
        Arc::new(engine(&upstream, EVERY_50_MS, Some(first)).await),
        Arc::new(engine(&upstream, EVERY_50_MS, Some(second)).await),
    ];
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let engine = Arc::clone(&replicas[i % 2]);
            tokio::spawn(async move { turn(&engine).await })
        })
        .collect();
    for call in calls {
        let (messages, failure) = call.await.expect("task");
        assert_eq!(failure, None, "{messages}");
    }
    let arrivals = arrivals.lock().expect("arrivals");
    assert_eq!(arrivals.len(), 10);
    let first = arrivals.iter().min().expect("first");
    let last = arrivals.iter().max().expect("last");
    *last - *first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_the_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let connect = || async {
        Redis::connect(&redis.url(), "rate:")
            .await
            .expect("connect")
            .rate_limiter()
    };
    let spread =
        ten_calls_from_two_replicas([Arc::new(connect().await), Arc::new(connect().await)]).await;
    // Nine intervals of 50 ms, less scheduling noise between a slot's
    // reservation and the call's arrival.
    assert!(
        spread >= Duration::from_millis(350),
        "ten calls arrived within {spread:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_spaces_its_calls_in_memory() {
    let shared: Arc<dyn RateLimiter> =
        Arc::new(patchbay_engine::transport::MemoryRateLimiter::default());
    let spread = ten_calls_from_two_replicas([Arc::clone(&shared), shared]).await;
    assert!(
        spread >= Duration::from_millis(350),
        "ten calls arrived within {spread:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_past_the_deadline_fails_the_call_at_once() {
    let (upstream, arrivals) = recording().await;
    for (case, limit) in [
        (
            "integration",
            "    rateLimit: { calls: 1, periodMs: 60000 }".to_owned(),
        ),
        ("host", String::new()),
    ] {
        arrivals.lock().expect("arrivals").clear();
        let bot_limit = limit;
        let engine = if case == "host" {
            engine_with_host_limit(&upstream).await
        } else {
            engine(&upstream, &bot_limit, None).await
        };
        assert_eq!(
            turn(&engine).await,
            ("turn 1, visit 1".to_owned(), None),
            "{case}"
        );
        let started = Instant::now();
        let (messages, failure) = turn(&engine).await;
        assert_eq!(failure, Some("rate-limited"), "{case}");
        assert_eq!(
            messages,
            patchbay_engine::config::DEFAULT_FAILURE_MESSAGE,
            "{case}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{case}: the refused call did not wait for its 2 s deadline"
        );
        assert_eq!(
            arrivals.lock().expect("arrivals").len(),
            1,
            "{case}: one call went out"
        );
    }
}

/// The counter bot with `network.rateLimits` on the upstream's host.
async fn engine_with_host_limit(upstream: &Server) -> Engine {
    let text = crate::bot("").replace(
        "network:\n  allow: [\"127.0.0.1\"]\n",
        "network:\n  allow: [\"127.0.0.1\"]\n  rateLimits:\n    127.0.0.1: { calls: 1, periodMs: 60000 }\n",
    );
    assert!(text.contains("rateLimits"));
    crate::engine_from(upstream, &text, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_lets_calls_through() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (upstream, _) = recording().await;
    let limiter = Redis::connect(&redis.url(), "outage:")
        .await
        .expect("connect")
        .rate_limiter();
    let engine = engine(&upstream, EVERY_50_MS, Some(Arc::new(limiter))).await;
    redis.stop();
    for _ in 0..3 {
        assert_eq!(
            turn(&engine).await.1,
            None,
            "no call fails for want of Redis"
        );
    }
}
