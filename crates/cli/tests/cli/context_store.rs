//! The Conversation Context Service through `patchbay serve`: in the
//! process's memory by default, and in one real Redis (`--store`) shared by
//! two processes: what a turn on one replica writes, in each scope, a turn
//! on the other reads; bots, users and conversations stay apart; a
//! namespace's TTL expires its properties on both.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use patchbay_tests::client::post_json;
use patchbay_tests::redis::RedisServer;

use crate::serve::Process;

/// A bot whose one interaction runs the context operations the message
/// lists (`[["setUser", "ns", "p", 1], ...]`) and sends what each returned,
/// as JSON.
fn bot(name: &str) -> String {
    format!(
        r#"name: {name}
dialogs:
  - name: main
    interactions:
      - name: ops
        type: text
        text: "done"
        next: end
        preProcess: |
          var ops = JSON.parse(botContext.getCurrentUserMessage());
          var out = [];
          for (var i = 0; i < ops.length; i++) {{
            var op = ops[i][0], a = ops[i].slice(1), r;
            switch (op) {{
              case "enabled": r = botContext.isContextApiEnabled(); break;
              case "register":
                r = a.length > 1 ? botContext.registerContextNamespace(a[0], a[1])
                                 : botContext.registerContextNamespace(a[0]);
                break;
              case "deleteNamespace": r = botContext.deleteContextNamespace(a[0]); break;
              case "setGlobal": r = botContext.setGlobalContextData(a[0], a[1], a[2]); break;
              case "setUser": r = botContext.setContextDataForUser(a[0], a[1], a[2]); break;
              case "setConversation": r = botContext.setContextDataForConversation(a[0], a[1], a[2]); break;
              case "getGlobal": r = botContext.getGlobalContextData(a[0], a[1]); break;
              case "getUser":
                r = a.length > 1 ? botContext.getContextDataForUser(a[0], a[1])
                                 : botContext.getContextDataForUser(a[0]);
                break;
              case "getConversation":
                r = a.length > 1 ? botContext.getContextDataForConversation(a[0], a[1])
                                 : botContext.getContextDataForConversation(a[0]);
                break;
              case "deleteGlobal": r = botContext.deleteGlobalContextData(a[0], a[1]); break;
              case "deleteUser": r = botContext.deleteContextDataForUser(a[0], a[1]); break;
              case "deleteConversation": r = botContext.deleteContextDataForConversation(a[0], a[1]); break;
              case "deleteAllUser": r = botContext.deleteAllContextDataForUser(a[0]); break;
              case "deleteAllConversation": r = botContext.deleteAllContextDataForConversation(a[0]); break;
            }}
            out.push(r === undefined ? null : r);
          }}
          botContext.sendMessage(JSON.stringify(out));
"#
    )
}

/// The two bots' files, in a directory of their own.
fn bot_files(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("patchbay-context-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let shop = dir.join("shop.yaml");
    let other = dir.join("other.yaml");
    std::fs::write(&shop, bot("shop")).expect("bot");
    std::fs::write(&other, bot("other")).expect("bot");
    (dir, shop, other)
}

/// What each operation returned, in a turn of `bot` by `user` in
/// `conversation` on `replica`.
async fn ops(replica: &Process, bot: &str, user: &str, conversation: &str, ops: Value) -> Value {
    let (status, answer) = post_json(
        replica.addr,
        &format!("/v1/bots/{bot}/turns"),
        &json!({
            "conversationId": conversation,
            "userId": user,
            "interaction": "ops",
            "message": ops.to_string(),
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["steps"][0]["scriptErrors"], json!([]), "{answer}");
    let text = answer["messages"][0].as_str().expect("a text message");
    serde_json::from_str(text).expect("results")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_context_data() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (dir, shop, other) = bot_files("redis");
    let store = redis.url();
    let more = ["--bot", other.to_str().expect("utf-8"), "--store", &store];
    let a = Process::serve(&shop, &[], &more);
    let b = Process::serve(&shop, &[], &more);
    assert_eq!(
        ops(
            &a,
            "shop",
            "ada",
            "c1",
            json!([
                ["enabled"],
                ["register", "ns"],
                ["setGlobal", "ns", "threshold", 2],
                ["setUser", "ns", "tier", {"name": "gold"}],
                ["setConversation", "ns", "topic", "refund"],
            ])
        )
        .await,
        json!([true, true, true, true, true])
    );
    // Each scope, read through the other replica.
    assert_eq!(
        ops(
            &b,
            "shop",
            "ada",
            "c1",
            json!([
                ["getGlobal", "ns", "threshold"],
                ["getUser", "ns", "tier"],
                ["getConversation", "ns", "topic"],
                ["getConversation", "ns"],
            ])
        )
        .await,
        json!([2, {"name": "gold"}, "refund", {"topic": "refund"}])
    );
    // Another conversation of Ada: her scope, not the first
    // conversation's; another user: the bot's only.
    assert_eq!(
        ops(
            &b,
            "shop",
            "ada",
            "c2",
            json!([
                ["getUser", "ns", "tier"],
                ["getConversation", "ns", "topic"],
            ])
        )
        .await,
        json!([{"name": "gold"}, null])
    );
    assert_eq!(
        ops(
            &a,
            "shop",
            "bob",
            "c3",
            json!([["getGlobal", "ns", "threshold"], ["getUser", "ns"],])
        )
        .await,
        json!([2, null])
    );
    // Another bot on the same replicas and Redis: none of it.
    assert_eq!(
        ops(
            &b,
            "other",
            "ada",
            "c1",
            json!([
                ["getGlobal", "ns", "threshold"],
                ["setGlobal", "ns", "threshold", 9],
            ])
        )
        .await,
        json!([null, false])
    );
    // Deletes through one replica, seen through the other.
    assert_eq!(
        ops(
            &b,
            "shop",
            "ada",
            "c1",
            json!([
                ["deleteGlobal", "ns", "threshold"],
                ["deleteUser", "ns", "tier"],
                ["deleteAllConversation", "ns"],
            ])
        )
        .await,
        json!([true, true, true])
    );
    assert_eq!(
        ops(
            &a,
            "shop",
            "ada",
            "c1",
            json!([
                ["getGlobal", "ns", "threshold"],
                ["getUser", "ns"],
                ["getConversation", "ns"],
            ])
        )
        .await,
        json!([null, null, null])
    );
    // A short TTL: written through one replica, expired on both.
    assert_eq!(
        ops(
            &a,
            "shop",
            "ada",
            "c1",
            json!([
                ["register", "brief", 1],
                ["setUser", "brief", "code", "1234"],
            ])
        )
        .await,
        json!([true, true])
    );
    assert_eq!(
        ops(
            &b,
            "shop",
            "ada",
            "c4",
            json!([["getUser", "brief", "code"]])
        )
        .await,
        json!(["1234"])
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for replica in [&a, &b] {
        assert_eq!(
            ops(
                replica,
                "shop",
                "ada",
                "c4",
                json!([["getUser", "brief", "code"]])
            )
            .await,
            json!([null])
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_context_data_in_memory_by_default() {
    let (dir, shop, other) = bot_files("memory");
    let server = Process::serve(&shop, &[], &["--bot", other.to_str().expect("utf-8")]);
    ops(
        &server,
        "shop",
        "ada",
        "c1",
        json!([["register", "ns"], ["setUser", "ns", "seen", true],]),
    )
    .await;
    assert_eq!(
        ops(
            &server,
            "shop",
            "ada",
            "c2",
            json!([["getUser", "ns", "seen"]])
        )
        .await,
        json!([true])
    );
    assert_eq!(
        ops(
            &server,
            "other",
            "ada",
            "c2",
            json!([["getUser", "ns", "seen"]])
        )
        .await,
        json!([null])
    );
    // A reload keeps it: the store is the process's, not the bot load's.
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ops(
            &server,
            "shop",
            "ada",
            "c3",
            json!([["getUser", "ns", "seen"]])
        )
        .await,
        json!([true])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
