//! `patchbay serve` keeping conversations (`conversationId`): in memory by
//! default, and in one real Redis (`--store`) shared by two processes,
//! which then also fetch one OAuth 2 token for the pair; and the attacks on
//! a store (docs/reliability.md, "Conversations and the store"): a save
//! Redis never confirmed, unbounded memory, a conversation id posing as a
//! user, a corrupted conversation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use patchbay_tests::client::post_json;
use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};
use patchbay_tests::redis::RedisServer;

use crate::serve::Process;

const BOT: &str = r#"name: fleet
env:
  TOKEN_URL: null
  RESOURCE_URL: null
  CLIENT_ID: null
  CLIENT_SECRET: null
network:
  allow: ["127.0.0.1"]
credentials:
  - name: api-oauth
    type: oauth2
    grant: client-credentials
    clientId: "{$env.CLIENT_ID}"
    clientSecret: "{$env.CLIENT_SECRET}"
    tokenUrl: "{$env.TOKEN_URL}"
integrations:
  - name: resource
    responseDataVariable: RES
    type: api
    method: GET
    url: "{$env.RESOURCE_URL}"
    credential: api-oauth
    customDataFields:
      token: "{$.api_RES.token}"
dialogs:
  - name: main
    interactions:
      - name: call
        type: integration
        integration: resource
        next: end
        rules:
          - name: ok
            match:
              apiResult: success
            messages:
              - "OK"
            next: end
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_redis_fetch_one_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = OAuthServer::start().await;
    let dir = std::env::temp_dir().join(format!("patchbay-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("fleet.yaml");
    std::fs::write(&bot, BOT).expect("bot");
    let env = [
        format!("TOKEN_URL={}", server.token_url()),
        format!("RESOURCE_URL={}", server.server.url("/resource")),
        format!("CLIENT_ID={CLIENT_ID}"),
        format!("CLIENT_SECRET={CLIENT_SECRET}"),
    ];
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let store = redis.url();
    let replicas = [
        Process::serve(&bot, &env, &["--store", &store]),
        Process::serve(&bot, &env, &["--store", &store]),
    ];
    for turn in 0..10 {
        let replica = &replicas[turn % 2];
        let (status, answer) = post_json(
            replica.addr,
            "/v1/bots/fleet/turns",
            &json!({"interaction": "call"}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["messages"], json!(["OK"]), "{answer}");
    }
    assert_eq!(server.token_requests(), 1, "one token for both servers");
    assert_eq!(server.resource_requests(), 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts a conversation's turns; its upstream takes `SLOW_MS`.
const COUNTER: &str = r#"name: counter
env:
  BASE: null
network:
  allow: ["127.0.0.1"]
integrations:
  - name: slow
    responseDataVariable: SLOW
    type: api
    method: GET
    url: "{$env.BASE}/slow"
dialogs:
  - name: main
    interactions:
      - name: count
        type: integration
        integration: slow
        preProcess: |
          var turns = Number(botContext.getBotVariable("turns") || "0");
          botContext.setBotVariable("turns", String(turns + 1), true, false);
        rules:
          - match:
              apiResult: success
            messages:
              - "turn {$botContext.turns}"
            next: end
"#;

const SLOW_MS: u64 = 400;

/// Serves the counter bot from `replicas` processes with `args`.
async fn counters(
    args: &[&str],
    replicas: usize,
) -> (Vec<Process>, patchbay_tests::servers::Server) {
    let upstream = patchbay_tests::servers::http(|_| async {
        tokio::time::sleep(std::time::Duration::from_millis(SLOW_MS)).await;
        patchbay_tests::servers::reply(200, "{}")
    })
    .await;
    let dir = std::env::temp_dir().join(format!(
        "patchbay-counter-{}-{}",
        std::process::id(),
        upstream.addr.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("counter.yaml");
    std::fs::write(&bot, COUNTER).expect("bot");
    let env = format!("BASE=http://{}", upstream.addr);
    let processes = (0..replicas)
        .map(|_| Process::serve(&bot, &[env.as_str()], args))
        .collect();
    (processes, upstream)
}

async fn count(process: &Process, conversation: &str) -> (u16, serde_json::Value) {
    post_json(
        process.addr,
        "/v1/bots/counter/turns",
        &json!({"conversationId": conversation, "interaction": "count"}),
    )
    .await
}

/// Two turns of one conversation at once: one is saved, the other is
/// refused with 409 and saved nothing; the next turn is turn 2.
async fn concurrent_turns_conflict(first: &Process, second: &Process) {
    let (a, b) = tokio::join!(count(first, "race"), count(second, "race"));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(
        refused["error"]["code"], "conversation_conflict",
        "{refused}"
    );
    let (status, next) = count(first, "race").await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["messages"], json!(["turn 2"]), "{next}");
    assert_eq!(next["version"], 2, "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_conversations_in_memory_by_default() {
    let (processes, _upstream) = counters(&[], 1).await;
    let server = &processes[0];
    for expected in 1..=2 {
        let (status, answer) = count(server, "c1").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["messages"], json!([format!("turn {expected}")]));
        assert_eq!(answer["version"], expected);
        assert_eq!(answer["state"]["conversationId"], "c1");
    }
    concurrent_turns_conflict(server, server).await;
    // `state` and `conversationId` together are refused.
    let (status, answer) = post_json(
        server.addr,
        "/v1/bots/counter/turns",
        &json!({"conversationId": "c1", "state": {}, "interaction": "count"}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_conversations() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = redis.url();
    let (replicas, _upstream) = counters(&["--store", &store], 2).await;
    for turn in 1..=4 {
        let (status, answer) = count(&replicas[turn % 2], "moving").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["messages"],
            json!([format!("turn {turn}")]),
            "{answer}"
        );
    }
    concurrent_turns_conflict(&replicas[0], &replicas[1]).await;
}

/// Counts a conversation's turns (session) and its user's visits
/// (forever), and keeps the user's message.
const VISITS: &str = r#"name: visits
env:
  BASE: null
network:
  allow: ["127.0.0.1"]
integrations:
  - name: ping
    responseDataVariable: PING
    type: api
    method: GET
    url: "{$env.BASE}/ping"
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
          botContext.setBotVariable("note", botContext.getCurrentUserMessage(), true, false);
        rules:
          - match:
              apiResult: success
            messages:
              - "turn {$botContext.turns}, visit {$botContext.visits}"
            next: end
"#;

/// An upstream whose calls wait for a permit of `gate`, counted.
struct GatedUpstream {
    server: patchbay_tests::servers::Server,
    /// Told when a call arrives.
    called: Arc<tokio::sync::Notify>,
    /// One permit lets one call answer.
    gate: Arc<tokio::sync::Semaphore>,
    calls: Arc<AtomicUsize>,
}

impl GatedUpstream {
    /// Starts one; `open` calls answer at once.
    async fn start(open: bool) -> Self {
        let called = Arc::new(tokio::sync::Notify::new());
        let gate = Arc::new(tokio::sync::Semaphore::new(if open {
            tokio::sync::Semaphore::MAX_PERMITS
        } else {
            0
        }));
        let calls = Arc::new(AtomicUsize::new(0));
        let server = {
            let (called, gate, calls) =
                (Arc::clone(&called), Arc::clone(&gate), Arc::clone(&calls));
            patchbay_tests::servers::http(move |_| {
                let (called, gate, calls) =
                    (Arc::clone(&called), Arc::clone(&gate), Arc::clone(&calls));
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    called.notify_one();
                    gate.acquire().await.expect("gate").forget();
                    patchbay_tests::servers::reply(200, "{}")
                }
            })
            .await
        };
        Self {
            server,
            called,
            gate,
            calls,
        }
    }

    /// Serves the visits bot against it with `args`.
    fn serve(&self, args: &[&str]) -> (Process, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "patchbay-visits-{}-{}",
            std::process::id(),
            self.server.addr.port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bot = dir.join("visits.yaml");
        std::fs::write(&bot, VISITS).expect("bot");
        let env = format!("BASE=http://{}", self.server.addr);
        (Process::serve(&bot, &[env.as_str()], args), dir)
    }
}

async fn visit(process: &Process, turn: serde_json::Value) -> (u16, serde_json::Value) {
    let mut turn = turn;
    turn["interaction"] = json!("count");
    post_json(process.addr, "/v1/bots/visits/turns", &turn).await
}

/// The key Redis keeps a conversation of the `patchbay:` prefix under.
fn conversation_key(redis: &RedisServer, conversation: &str) -> String {
    let key = redis.command(&["KEYS", &format!("patchbay:conversation*:{conversation}")]);
    assert!(!key.is_empty() && !key.contains('\n'), "one key: {key:?}");
    key
}

/// Redis paused while a turn runs: its save is sent and never confirmed,
/// then applied when Redis goes on. The turn must not claim that nothing
/// was saved, and sending it again with its `turnId` must not run it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_redis_never_confirmed_is_reported_unknown_and_its_retry_runs_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = GatedUpstream::start(false).await;
    let store = redis.url();
    let (server, dir) = upstream.serve(&["--store", &store]);
    // A turn before, so that Redis has the save script (a paused save then
    // runs when Redis goes on, instead of failing for a missing script).
    upstream.gate.add_permits(1);
    let (status, answer) = visit(&server, json!({"conversationId": "warm-up"})).await;
    assert_eq!(status, 200, "{answer}");
    upstream.called.notified().await;
    let first = json!({"conversationId": "paused", "turnId": "t-1"});
    let addr = server.addr;
    let mut running = tokio::spawn({
        let first = first.clone();
        async move {
            let mut turn = first;
            turn["interaction"] = json!("count");
            post_json(addr, "/v1/bots/visits/turns", &turn).await
        }
    });
    // The turn has loaded its conversation and waits for its call.
    tokio::select! {
        () = upstream.called.notified() => {}
        answer = &mut running => panic!("the turn ended before its call: {answer:?}"),
    }
    redis.pause();
    upstream
        .gate
        .add_permits(tokio::sync::Semaphore::MAX_PERMITS);
    let (status, answer) = running.await.expect("task");
    redis.resume();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "store_outcome_unknown", "{answer}");
    // Redis runs the write it had received: the turn is saved after all.
    let started = std::time::Instant::now();
    loop {
        let key = redis.command(&["KEYS", "patchbay:conversation*:paused"]);
        if !key.is_empty() && redis.command(&["HGET", &key, "v"]) == "1" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the write Redis held while paused was never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Sent again with its id: the first answer, nothing run again. (While
    // the server's connection to Redis recovers, a retry may itself meet a
    // 503; the same id keeps sending it again safe.)
    let retried = loop {
        let (status, retried) = visit(&server, first.clone()).await;
        if status != 503 {
            assert_eq!(status, 200, "{retried}");
            break retried;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(retried["messages"], json!(["turn 1, visit 1"]), "{retried}");
    assert_eq!(retried["version"], 1, "{retried}");
    assert_eq!(retried["state"]["conversationId"], "paused", "{retried}");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2, "ran once");
    let (status, next) = visit(
        &server,
        json!({"conversationId": "paused", "turnId": "t-2"}),
    )
    .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["messages"], json!(["turn 2, visit 2"]), "{next}");
    assert_eq!(next["version"], 2, "{next}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Big variables fill the default memory store: each conversation is
/// bounded (refused whole, nothing kept), and so is their number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_is_bounded_per_conversation_and_in_number() {
    let upstream = GatedUpstream::start(true).await;
    let (server, dir) = upstream.serve(&[]);
    // The attack as reported: as much as a turn takes (a message just
    // under the 64 KiB cap) kept per turn, here in 800 conversations
    // (51 MB kept without a bound).
    let before = server.rss_kib();
    let big = "x".repeat(64 * 1024 - 16);
    for i in 0..800 {
        let (status, answer) = visit(
            &server,
            json!({"conversationId": format!("big-{i}"), "message": big}),
        )
        .await;
        // (The answer is not printed: it would hold the 900 KB.)
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("conversation_too_large")),
            "turn {i}"
        );
    }
    let grown_mib = server.rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 40, "the process grew by {grown_mib} MiB");
    // Nothing of a refused turn was kept.
    let (status, answer) = visit(&server, json!({"conversationId": "big-0"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], 1, "the refused turn kept nothing");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    // Three conversations in a store that keeps two: the least recently
    // used goes, and is counted.
    let (server, dir) = upstream.serve(&[
        "--max-conversations",
        "2",
        "--max-conversation-bytes",
        "4096",
    ]);
    let (status, answer) = visit(
        &server,
        json!({"conversationId": "a", "message": "y".repeat(4096)}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (422, &json!("conversation_too_large")),
        "{answer}"
    );
    for id in ["a", "b", "a", "c", "a"] {
        let (status, answer) = visit(&server, json!({"conversationId": id})).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (_, b) = visit(&server, json!({"conversationId": "b"})).await;
    assert_eq!(b["version"], 1, "b was evicted, and starts over: {b}");
    let (_, a) = visit(&server, json!({"conversationId": "a"})).await;
    assert_eq!(a["version"], 4, "a was kept: {a}");
    let (status, metrics) =
        patchbay_tests::client::request(server.addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("patchbay_conversations_evicted_total{record=\"session\"} 2"),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A turn naming conversation `alice` and no user must not read or write
/// user alice's "forever" variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_id_never_reaches_a_users_variables() {
    let upstream = GatedUpstream::start(true).await;
    let (server, dir) = upstream.serve(&[]);
    let (_, mine) = visit(&server, json!({"conversationId": "c1", "userId": "alice"})).await;
    assert_eq!(mine["messages"], json!(["turn 1, visit 1"]), "{mine}");
    for turn in 1..=2 {
        let (status, posing) = visit(&server, json!({"conversationId": "alice"})).await;
        assert_eq!(status, 200, "{posing}");
        assert_eq!(
            posing["messages"],
            json!([format!("turn {turn}, visit {turn}")]),
            "its own visits only: {posing}"
        );
    }
    let (_, again) = visit(&server, json!({"conversationId": "c2", "userId": "alice"})).await;
    assert_eq!(
        again["messages"],
        json!(["turn 1, visit 2"]),
        "alice's visits untouched: {again}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What Redis keeps for a conversation is garbled: the turn says so (not
/// "unavailable", which a caller would retry until the session expires)
/// and `reset` starts the conversation over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_conversation_says_so_and_can_be_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = GatedUpstream::start(true).await;
    let store = redis.url();
    let (server, dir) = upstream.serve(&["--store", &store]);
    let turn = json!({"conversationId": "garbled", "userId": "u1"});
    let (status, answer) = visit(&server, turn.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let key = conversation_key(&redis, "garbled");
    assert_eq!(
        redis.command(&["HSET", &key, "state", "{\"variables\":"]),
        ":0"
    );
    for _ in 0..2 {
        let (status, answer) = visit(&server, turn.clone()).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "conversation_corrupt", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("\"reset\": true"), "{message}");
    }
    let mut reset = turn.clone();
    reset["reset"] = json!(true);
    let (status, answer) = visit(&server, reset).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messages"], json!(["turn 1, visit 2"]), "{answer}");
    assert_eq!(answer["version"], 2, "{answer}");
    let (status, answer) = visit(&server, turn).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messages"], json!(["turn 2, visit 3"]), "{answer}");
    let _ = std::fs::remove_dir_all(&dir);
}
