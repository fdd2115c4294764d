//! The Conversation Context Service through whole turns (`run_turn`): every
//! function, written through one engine and read through another (two
//! replicas on one store), in memory and in a real Redis; isolation between
//! bots, users and conversations; namespace TTLs; and a store that fails.
//! (Two `patchbay serve` processes on one Redis: `crates/cli/tests/cli/context_store.rs`.)

use std::sync::Arc;
use std::time::Duration;

use patchbay_engine::credentials::BoxFuture;
use patchbay_engine::script::{ContextSnapshot, ContextWrite, RuntimeOptions, ScriptRuntime};
use patchbay_engine::{
    ContextKey, ContextRefusal, ContextStore, ContextStoreError, ConversationState, Engine,
    EngineOptions, MemoryContextStore, Start, Turn,
};
use patchbay_redis::Redis;
use patchbay_tests::redis::RedisServer;
use serde_json::{Value, json};

/// A bot whose one interaction runs the context operations the message
/// lists (`[["setUser", "ns", "p", 1], ...]`) and sends what each returned,
/// as JSON, one message for all; an operation that throws gives
/// `"Name: message"`.
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
            try {{
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
                default: r = "unknown op " + op;
              }}
            }} catch (e) {{
              r = e.name + ": " + e.message;
            }}
            out.push(r === undefined ? null : r);
          }}
          botContext.sendMessage(JSON.stringify(out));
"#
    )
}

/// An engine of bot `name` on `store` (one per replica).
async fn engine(name: &str, store: Arc<dyn ContextStore>) -> Engine {
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let mut options = EngineOptions::new(Arc::new(|_: &str| None), scripts);
    options.context_store = store;
    Engine::new(patchbay_tests::bot("context.yaml", &bot(name)), options)
        .await
        .expect("engine")
}

/// A turn of `user` (empty: none) in `conversation` (empty: none) running
/// `ops`.
async fn turn(engine: &Engine, user: &str, conversation: &str, ops: &Value) -> Turn {
    let state = ConversationState {
        conversation_id: conversation.to_owned(),
        user_id: user.to_owned(),
        ..ConversationState::default()
    };
    engine
        .run_turn(state, Start::Interaction("ops".to_owned()), ops.to_string())
        .await
        .expect("turn")
}

/// What each operation returned.
async fn results(engine: &Engine, user: &str, conversation: &str, ops: Value) -> Value {
    let turn = turn(engine, user, conversation, &ops).await;
    let errors: Vec<&String> = turn
        .steps
        .iter()
        .flat_map(|step| &step.script_errors)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    serde_json::from_str(turn.texts()[0]).expect("results")
}

/// Two handles on one store, as two replicas have: the same memory store
/// (replicas of one process), or two connections to one Redis.
async fn stores(
    redis: Option<&RedisServer>,
    prefix: &str,
) -> Vec<(&'static str, [Arc<dyn ContextStore>; 2])> {
    let memory: Arc<dyn ContextStore> = Arc::new(MemoryContextStore::default());
    let mut stores = vec![("memory", [Arc::clone(&memory), memory])];
    if let Some(redis) = redis {
        let connect = || async {
            let connection = Redis::connect(&redis.url(), prefix).await.expect("connect");
            Arc::new(connection.context_store()) as Arc<dyn ContextStore>
        };
        stores.push(("redis", [connect().await, connect().await]));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_written_through_one_replica_is_read_through_the_other() {
    let redis = RedisServer::start();
    for (name, [a, b]) in stores(redis.as_ref(), "every:").await {
        let a = engine("shop", a).await;
        let b = engine("shop", b).await;
        assert_eq!(
            results(
                &a,
                "ada",
                "c1",
                json!([
                    ["enabled"],
                    ["register", "ns"],
                    ["setGlobal", "ns", "threshold", 2],
                    ["setUser", "ns", "tier", {"name": "gold", "since": [2020, 1]}],
                    ["setConversation", "ns", "topic", "refund"],
                    ["setConversation", "ns", "step", 3],
                ])
            )
            .await,
            json!([true, true, true, true, true, true]),
            "{name}"
        );
        // The other replica, the same user and conversation: all of it.
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([
                    ["enabled"],
                    ["getGlobal", "ns", "threshold"],
                    ["getUser", "ns", "tier"],
                    ["getUser", "ns"],
                    ["getConversation", "ns", "topic"],
                    ["getConversation", "ns"],
                ])
            )
            .await,
            json!([
                true,
                2,
                {"name": "gold", "since": [2020, 1]},
                {"tier": {"name": "gold", "since": [2020, 1]}},
                "refund",
                {"step": 3, "topic": "refund"},
            ]),
            "{name}"
        );
        // Another conversation of the same user: the user's and the
        // bot's, not the first conversation's.
        assert_eq!(
            results(
                &b,
                "ada",
                "c2",
                json!([
                    ["getGlobal", "ns", "threshold"],
                    ["getUser", "ns", "tier"],
                    ["getConversation", "ns", "topic"],
                    ["getConversation", "ns"],
                ])
            )
            .await,
            json!([2, {"name": "gold", "since": [2020, 1]}, null, null]),
            "{name}"
        );
        // Another user: the bot's only.
        assert_eq!(
            results(
                &b,
                "bob",
                "c3",
                json!([
                    ["getGlobal", "ns", "threshold"],
                    ["getUser", "ns", "tier"],
                    ["getUser", "ns"],
                ])
            )
            .await,
            json!([2, null, null]),
            "{name}"
        );
        // Deletes through one replica, seen through the other.
        assert_eq!(
            results(
                &a,
                "ada",
                "c1",
                json!([
                    ["deleteGlobal", "ns", "threshold"],
                    ["deleteUser", "ns", "tier"],
                    ["deleteConversation", "ns", "topic"],
                ])
            )
            .await,
            json!([true, true, true]),
            "{name}"
        );
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([
                    ["getGlobal", "ns", "threshold"],
                    ["getUser", "ns", "tier"],
                    ["getConversation", "ns"],
                    ["setUser", "ns", "a", 1],
                    ["setUser", "ns", "b", 2],
                ])
            )
            .await,
            json!([null, null, {"step": 3}, true, true]),
            "{name}"
        );
        assert_eq!(
            results(
                &a,
                "ada",
                "c1",
                json!([["deleteAllUser", "ns"], ["deleteAllConversation", "ns"],])
            )
            .await,
            json!([true, true]),
            "{name}"
        );
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([
                    ["getUser", "ns"],
                    ["getConversation", "ns"],
                    ["setGlobal", "ns", "kept-until-deleted", true],
                ])
            )
            .await,
            json!([null, null, true]),
            "{name}"
        );
        // The namespace deleted through one replica: gone for the other,
        // with its data; registered again, it starts empty.
        assert_eq!(
            results(&a, "bob", "c9", json!([["deleteNamespace", "ns"]])).await,
            json!([true]),
            "{name}"
        );
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([
                    ["getGlobal", "ns", "kept-until-deleted"],
                    ["setGlobal", "ns", "p", 1],
                    ["deleteNamespace", "ns"],
                    ["register", "ns"],
                    ["getGlobal", "ns", "kept-until-deleted"],
                ])
            )
            .await,
            json!([null, false, false, true, null]),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_never_see_each_others_namespaces() {
    let redis = RedisServer::start();
    for (name, [a, b]) in stores(redis.as_ref(), "bots:").await {
        let shop = engine("shop", a).await;
        let other = engine("other", b).await;
        results(
            &shop,
            "ada",
            "c1",
            json!([
                ["register", "ns"],
                ["setGlobal", "ns", "p", "shop's"],
                ["setUser", "ns", "p", "shop's"],
            ]),
        )
        .await;
        // The same names, user and conversation, another bot: nothing.
        assert_eq!(
            results(
                &other,
                "ada",
                "c1",
                json!([
                    ["getGlobal", "ns", "p"],
                    ["setGlobal", "ns", "p", "other's"],
                    ["deleteNamespace", "ns"],
                    ["register", "ns"],
                    ["getUser", "ns", "p"],
                    ["setGlobal", "ns", "p", "other's"],
                ])
            )
            .await,
            json!([null, false, false, true, null, true]),
            "{name}"
        );
        assert_eq!(
            results(
                &shop,
                "ada",
                "c1",
                json!([["getGlobal", "ns", "p"], ["getUser", "ns", "p"],])
            )
            .await,
            json!(["shop's", "shop's"]),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_without_a_user_keeps_its_user_scope_under_its_conversation() {
    let redis = RedisServer::start();
    for (name, [a, b]) in stores(redis.as_ref(), "no-user:").await {
        let a = engine("shop", a).await;
        let b = engine("shop", b).await;
        results(
            &a,
            "",
            "c1",
            json!([
                ["register", "ns"],
                ["setUser", "ns", "p", "c1's user scope"],
                ["setConversation", "ns", "p", "c1's conversation scope"],
            ]),
        )
        .await;
        assert_eq!(
            results(
                &b,
                "",
                "c1",
                json!([["getUser", "ns", "p"], ["getConversation", "ns", "p"],])
            )
            .await,
            json!(["c1's user scope", "c1's conversation scope"]),
            "{name}"
        );
        // A user whose id is that conversation's id reaches neither.
        assert_eq!(
            results(&b, "c1", "c2", json!([["getUser", "ns", "p"]])).await,
            json!([null]),
            "{name}"
        );
        // Neither a user nor a conversation: the bot's scope only.
        assert_eq!(
            results(
                &b,
                "",
                "",
                json!([
                    ["setUser", "ns", "p", 1],
                    ["setConversation", "ns", "p", 1],
                    ["getUser", "ns", "p"],
                    ["setGlobal", "ns", "p", 1],
                ])
            )
            .await,
            json!([false, false, null, true]),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_expire_after_the_ttl_they_were_written_under() {
    let redis = RedisServer::start();
    for (name, [a, b]) in stores(redis.as_ref(), "ttl:").await {
        let a = engine("shop", a).await;
        let b = engine("shop", b).await;
        results(
            &a,
            "ada",
            "c1",
            json!([
                ["register", "ns"],
                ["setUser", "ns", "forever", 1],
                ["register", "ns", 1],
                ["setUser", "ns", "brief", 2],
                ["setConversation", "ns", "brief", 3],
                ["setGlobal", "ns", "brief", 4],
            ]),
        )
        .await;
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([["getUser", "ns"], ["getConversation", "ns", "brief"]])
            )
            .await,
            json!([{"brief": 2, "forever": 1}, 3]),
            "{name}"
        );
        tokio::time::sleep(Duration::from_millis(1300)).await;
        // The namespace outlives its TTL; a property written before it was
        // set keeps no expiry.
        assert_eq!(
            results(
                &b,
                "ada",
                "c1",
                json!([
                    ["getUser", "ns"],
                    ["getConversation", "ns"],
                    ["getGlobal", "ns", "brief"],
                    ["setGlobal", "ns", "again", 5],
                    ["getGlobal", "ns", "again"],
                ])
            )
            .await,
            json!([{"forever": 1}, null, null, true, 5]),
            "{name}"
        );
    }
    // In Redis, a record whose every property has a TTL expires with the
    // last of them; one holding a property without a TTL does not.
    if let Some(redis) = &redis {
        let keys = redis.command(&["KEYS", "ttl:context:*"]);
        assert!(keys.contains("user"), "{keys}");
        assert!(!keys.contains(":conversation:"), "{keys}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_of_one_user_on_two_replicas_lose_no_write() {
    let redis = RedisServer::start();
    for (name, [a, b]) in stores(redis.as_ref(), "race:").await {
        let a = engine("shop", a).await;
        let b = engine("shop", b).await;
        results(&a, "ada", "c0", json!([["register", "ns"]])).await;
        tokio::join!(user_writes(&a, "a"), user_writes(&b, "b"));
        let all = results(&a, "ada", "c0", json!([["getUser", "ns"]])).await;
        assert_eq!(all[0].as_object().expect("map").len(), 20, "{name}: {all}");
    }
}

/// Ten turns of Ada, each in a conversation of its own, each setting a
/// property of her user scope.
async fn user_writes(engine: &Engine, side: &str) {
    for index in 0..10 {
        let name = format!("{side}{index}");
        results(
            engine,
            "ada",
            &name,
            json!([["setUser", "ns", name, index]]),
        )
        .await;
    }
}

/// A store that fails as the test says, around a memory store.
#[derive(Debug, Default)]
struct Failing {
    inner: MemoryContextStore,
    fail_load: bool,
    fail_write: bool,
    /// Deletes this namespace between a run's load and its write, as
    /// another replica's turn would.
    delete_between: Option<&'static str>,
}

impl ContextStore for Failing {
    fn load<'a>(
        &'a self,
        key: &'a ContextKey,
    ) -> BoxFuture<'a, Result<ContextSnapshot, ContextStoreError>> {
        Box::pin(async move {
            if self.fail_load {
                return Err(ContextStoreError::Unavailable(
                    "connection refused".to_owned(),
                ));
            }
            let snapshot = self.inner.load(key).await;
            if let Some(namespace) = self.delete_between {
                let delete = [ContextWrite::DeleteNamespace {
                    namespace: namespace.to_owned(),
                }];
                self.inner.write(key, &delete).await?;
            }
            snapshot
        })
    }

    fn write<'a>(
        &'a self,
        key: &'a ContextKey,
        writes: &'a [ContextWrite],
    ) -> BoxFuture<'a, Result<Vec<ContextRefusal>, ContextStoreError>> {
        Box::pin(async move {
            if self.fail_write {
                return Err(ContextStoreError::OutcomeUnknown("timed out".to_owned()));
            }
            self.inner.write(key, writes).await
        })
    }
}

/// The script errors of a turn.
fn script_errors(turn: &Turn) -> Vec<String> {
    turn.steps
        .iter()
        .flat_map(|step| step.script_errors.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_is_never_silent() {
    // It cannot be read: every call fails as the product's would, and the
    // trace says why.
    let unreadable = engine(
        "shop",
        Arc::new(Failing {
            fail_load: true,
            ..Failing::default()
        }),
    )
    .await;
    let ops = json!([
        ["enabled"],
        ["register", "ns"],
        ["setGlobal", "ns", "p", 1],
        ["getGlobal", "ns", "p"]
    ]);
    let failed = turn(&unreadable, "ada", "c1", &ops).await;
    assert_eq!(failed.texts()[0], "[false,false,false,null]");
    let errors = script_errors(&failed);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "interaction ops, preProcess: the context store is unavailable: connection refused"
        ),
        "{errors:?}"
    );
    // It takes no write: the script was told true, the trace says the
    // writes were not made.
    let unwritable = engine(
        "shop",
        Arc::new(Failing {
            fail_write: true,
            ..Failing::default()
        }),
    )
    .await;
    let lost = turn(
        &unwritable,
        "ada",
        "c1",
        &json!([["register", "ns"], ["setGlobal", "ns", "p", 1]]),
    )
    .await;
    assert_eq!(lost.texts()[0], "[true,true]");
    let errors = script_errors(&lost);
    assert!(
        errors.len() == 1
            && errors[0].contains("2 context store writes of this script may not have been made"),
        "{errors:?}"
    );
    // Another replica deleted the namespace while the script ran: the set
    // it was told succeeded is refused, and the trace says so.
    let raced = engine(
        "shop",
        Arc::new(Failing {
            delete_between: Some("ns"),
            ..Failing::default()
        }),
    )
    .await;
    let setup = turn(&raced, "ada", "c1", &json!([["register", "ns"]])).await;
    assert!(script_errors(&setup).is_empty());
    let refused = turn(&raced, "ada", "c1", &json!([["setUser", "ns", "p", 1]])).await;
    assert_eq!(refused.texts()[0], "[true]");
    let errors = script_errors(&refused);
    assert!(
        errors.len() == 1
            && errors[0].contains("botContext.setContextDataForUser returned true, but the context store refused the write: namespace `ns` is no longer registered"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_the_calls_and_back_up_they_work() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let connection = Redis::connect(&redis.url(), "down:")
        .await
        .expect("connect");
    let shop = engine("shop", Arc::new(connection.context_store())).await;
    results(
        &shop,
        "ada",
        "c1",
        json!([["register", "ns"], ["setUser", "ns", "p", 1]]),
    )
    .await;
    redis.stop();
    let down = turn(
        &shop,
        "ada",
        "c1",
        &json!([["getUser", "ns", "p"], ["setUser", "ns", "q", 2]]),
    )
    .await;
    assert_eq!(down.texts()[0], "[null,false]");
    let errors = script_errors(&down);
    assert!(
        errors.len() == 1 && errors[0].contains("the context store is unavailable"),
        "{errors:?}"
    );
    redis.restart();
    // The connection comes back by itself.
    let mut back = Value::Null;
    for _ in 0..50 {
        let turn = turn(&shop, "ada", "c1", &json!([["getUser", "ns", "p"]])).await;
        if script_errors(&turn).is_empty() {
            back = serde_json::from_str(turn.texts()[0]).expect("results");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, json!([1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_refuses_what_another_replica_made_impossible() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let connection = Redis::connect(&redis.url(), "refuse:")
        .await
        .expect("connect");
    let store = connection.context_store();
    let key = ContextKey {
        bot: "shop".to_owned(),
        user: Some(patchbay_engine::ContextUser::User("ada".to_owned())),
        conversation: Some("c1".to_owned()),
    };
    let set = |property: String| ContextWrite::Set {
        scope: patchbay_engine::script::ContextScope::User,
        namespace: "ns".to_owned(),
        property,
        value: "1".to_owned(),
    };
    let refused = store
        .write(&key, &[set("p".to_owned())])
        .await
        .expect("write");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].reason.contains("no longer registered"),
        "{refused:?}"
    );
    let mut writes = vec![ContextWrite::RegisterNamespace {
        namespace: "ns".to_owned(),
        ttl_seconds: None,
    }];
    writes.extend((0..=1000).map(|index| set(format!("p{index}"))));
    let refused = store.write(&key, &writes).await.expect("write");
    assert_eq!(
        refused,
        [ContextRefusal {
            index: 1001,
            reason: "namespace `ns` holds 1000 properties in the scope, the most it may".to_owned()
        }]
    );
    let loaded = store.load(&key).await.expect("load");
    assert_eq!(loaded.user.expect("user scope")["ns"].len(), 1000);
    // The conversation's record fills up at 256 KiB, whatever the
    // namespaces.
    let large = |index: usize| ContextWrite::Set {
        scope: patchbay_engine::script::ContextScope::Conversation,
        namespace: "ns".to_owned(),
        property: format!("large{index}"),
        value: format!("\"{}\"", "x".repeat(60_000)),
    };
    let refused = store
        .write(&key, &(0..5).map(large).collect::<Vec<_>>())
        .await
        .expect("write");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].index, 4);
    assert!(
        refused[0].reason.contains("more than the 262144 it may"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_record_of_many_small_properties_is_written_whole() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let connection = Redis::connect(&redis.url(), "many:")
        .await
        .expect("connect");
    let store = connection.context_store();
    let key = ContextKey {
        bot: "shop".to_owned(),
        user: None,
        conversation: None,
    };
    // 5 namespaces of 1000 properties: 10,000 hash arguments, past what
    // one Lua call's stack takes at once.
    let mut writes = Vec::new();
    for namespace in 0..5 {
        writes.push(ContextWrite::RegisterNamespace {
            namespace: format!("n{namespace}"),
            ttl_seconds: None,
        });
        writes.extend((0..1000).map(|property| ContextWrite::Set {
            scope: patchbay_engine::script::ContextScope::Global,
            namespace: format!("n{namespace}"),
            property: format!("p{property}"),
            value: "1".to_owned(),
        }));
    }
    assert_eq!(store.write(&key, &writes).await.expect("write"), []);
    let delete = [ContextWrite::Delete {
        scope: patchbay_engine::script::ContextScope::Global,
        namespace: "n0".to_owned(),
        property: "p0".to_owned(),
    }];
    assert_eq!(store.write(&key, &delete).await.expect("write"), []);
    let loaded = store.load(&key).await.expect("load");
    let count: usize = loaded
        .global
        .values()
        .map(|properties| properties.len())
        .sum();
    assert_eq!(count, 4999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_over_maxmemory_refuses_a_write_whole() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let connection = Redis::connect(&redis.url(), "full:")
        .await
        .expect("connect");
    let store = connection.context_store();
    let key = ContextKey {
        bot: "shop".to_owned(),
        user: Some(patchbay_engine::ContextUser::User("ada".to_owned())),
        conversation: None,
    };
    let scope = patchbay_engine::script::ContextScope::User;
    let set = |property: &str| ContextWrite::Set {
        scope,
        namespace: "ns".to_owned(),
        property: property.to_owned(),
        value: "1".to_owned(),
    };
    let setup = [
        ContextWrite::RegisterNamespace {
            namespace: "ns".to_owned(),
            ttl_seconds: None,
        },
        set("kept"),
    ];
    assert_eq!(store.write(&key, &setup).await.expect("write"), []);
    // Full: Redis uses more than its limit, and may evict nothing.
    redis.command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.command(&["CONFIG", "SET", "maxmemory", "1"]);
    // A delete and a set in one run: refused before either is made.
    let writes = [
        ContextWrite::Delete {
            scope,
            namespace: "ns".to_owned(),
            property: "kept".to_owned(),
        },
        set("new"),
    ];
    let refused = store.write(&key, &writes).await;
    assert!(
        matches!(&refused, Err(ContextStoreError::Unavailable(reason)) if reason.contains("OOM")),
        "{refused:?}"
    );
    redis.command(&["CONFIG", "SET", "maxmemory", "0"]);
    let loaded = store.load(&key).await.expect("load");
    assert_eq!(
        loaded.user.expect("user scope")["ns"]
            .keys()
            .collect::<Vec<_>>(),
        ["kept"]
    );
}
