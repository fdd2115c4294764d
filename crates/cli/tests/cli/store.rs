//! Two `patchbay serve` processes sharing one real Redis (`--store`):
//! turns on both fetch one OAuth 2 token for the pair.

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
