//! `patchbay serve --user-variables-ttl-secs`: a user's "forever"
//! variables expire, in memory and in Redis (the product keeps them 180
//! days; docs/botcontext.md).

use serde_json::json;

use patchbay_tests::client::post_json;
use patchbay_tests::redis::RedisServer;

use crate::serve::Process;

/// Counts a user's visits in a "forever" variable.
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
      - name: visit
        type: integration
        integration: ping
        preProcess: |
          var visits = Number(botContext.getBotVariable("visits") || "0");
          botContext.setBotVariable("visits", String(visits + 1), true, true);
        rules:
          - match:
              apiResult: success
            messages:
              - "visit {$botContext.visits}"
            next: end
"#;

async fn visits(args: &[&str]) -> (Process, patchbay_tests::servers::Server, std::path::PathBuf) {
    let upstream =
        patchbay_tests::servers::http(|_| async { patchbay_tests::servers::reply(200, "{}") })
            .await;
    let dir = std::env::temp_dir().join(format!(
        "patchbay-visits-{}-{}",
        std::process::id(),
        upstream.addr.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("visits.yaml");
    std::fs::write(&bot, VISITS).expect("bot");
    let env = format!("BASE=http://{}", upstream.addr);
    (Process::serve(&bot, &[env.as_str()], args), upstream, dir)
}

async fn visit(process: &Process, conversation: &str) -> serde_json::Value {
    let (status, answer) = post_json(
        process.addr,
        "/v1/bots/visits/turns",
        &json!({"conversationId": conversation, "userId": "ada", "interaction": "visit"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["messages"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_forever_variables_expire_in_memory() {
    let (server, _upstream, dir) = visits(&["--user-variables-ttl-secs", "1"]).await;
    assert_eq!(visit(&server, "c1").await, json!(["visit 1"]));
    assert_eq!(visit(&server, "c2").await, json!(["visit 2"]));
    // Past the lifetime (the record expires 1 s after the turn that set
    // it; waiting longer cannot find it alive).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(visit(&server, "c3").await, json!(["visit 1"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_forever_variables_expire_in_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = redis.url();
    let (server, _upstream, dir) =
        visits(&["--store", &store, "--user-variables-ttl-secs", "1234"]).await;
    assert_eq!(visit(&server, "c1").await, json!(["visit 1"]));
    // The TTL Redis reports for the user's record, not a wait.
    let ttl_ms: u64 = redis
        .command(&["PTTL", "patchbay:user:6:visits:3:ada"])
        .trim_start_matches(':')
        .parse()
        .expect("a TTL");
    assert!(
        ttl_ms <= 1_234_000 && ttl_ms > 1_174_000,
        "the user's record expires in {ttl_ms} ms"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
