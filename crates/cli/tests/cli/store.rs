//! `patchbay serve` keeping conversations (`conversationId`): in memory by
//! default, and in one real Redis (`--store`) shared by two processes,
//! which then also fetch one OAuth 2 token for the pair.

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
