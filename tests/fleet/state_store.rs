//! Stored conversations through whole turns: in memory and in a real Redis,
//! shared by two engines (replicas).

use std::sync::Arc;
use std::time::Duration;

use patchbay_engine::{
    ConversationKey, EngineError, MemoryStateStore, Start, StateStore, StoreError, StoredTurn,
    StoredTurnRequest,
};
use patchbay_redis::Redis;
use patchbay_tests::redis::RedisServer;
use serde_json::json;

use crate::{engine, upstream};

const TTL: Duration = Duration::from_secs(60);

/// A conversation of the counter bot; `user` empty: a conversation without
/// a user.
fn key(conversation: &str, user: &str) -> ConversationKey {
    ConversationKey {
        bot: "counter".to_owned(),
        conversation_id: conversation.to_owned(),
        user_id: (!user.is_empty()).then(|| user.to_owned()),
    }
}

/// A stored turn's answer, as `serve` gives it.
fn answer(stored: &StoredTurn) -> serde_json::Value {
    serde_json::to_value(patchbay_server::TurnAnswer::stored(stored)).expect("answer JSON")
}

/// A stored turn's messages, joined.
fn messages(stored: &StoredTurn) -> String {
    let answer = answer(stored);
    answer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message.as_str().expect("a message"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A turn starting at `start`, with no id and no reset.
fn request<'a>(
    key: &'a ConversationKey,
    ttl: Duration,
    start: Start,
    message: &'a str,
) -> StoredTurnRequest<'a> {
    StoredTurnRequest {
        key,
        start,
        message: message.into(),
        session_ttl: ttl,
        turn_id: None,
        reset: false,
    }
}

/// The stores under test: memory always; Redis where `redis-server` is
/// installed (`.ci/run` installs it).
async fn stores(
    redis: Option<&RedisServer>,
    prefix: &str,
) -> Vec<(&'static str, Arc<dyn StateStore>)> {
    let mut stores: Vec<(&'static str, Arc<dyn StateStore>)> =
        vec![("memory", Arc::new(MemoryStateStore::default()))];
    if let Some(redis) = redis {
        let connection = Redis::connect(&redis.url(), prefix).await.expect("connect");
        stores.push(("redis", Arc::new(connection.state_store())));
    }
    stores
}

async fn message(
    engine: &patchbay_engine::Engine,
    store: &dyn StateStore,
    key: &ConversationKey,
    ttl: Duration,
) -> Result<(String, u64), EngineError> {
    let stored = engine
        .run_stored_turn(
            store,
            request(key, ttl, Start::Interaction("count".to_owned()), ""),
        )
        .await?;
    Ok((messages(&stored), stored.version()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_carry_turns_and_users_carry_forever_variables() {
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = engine(&upstream, "", None).await;
    for (name, store) in stores(redis.as_ref(), "carry:").await {
        let store = store.as_ref();
        let ada = key("c1", "ada");
        assert_eq!(
            message(&engine, store, &ada, TTL).await.expect(name),
            ("turn 1, visit 1".to_owned(), 1),
            "{name}"
        );
        assert_eq!(
            message(&engine, store, &ada, TTL).await.expect(name),
            ("turn 2, visit 2".to_owned(), 2),
            "{name}"
        );
        // A new conversation of the same user: a new session, her visits go on.
        assert_eq!(
            message(&engine, store, &key("c2", "ada"), TTL)
                .await
                .expect(name),
            ("turn 1, visit 3".to_owned(), 1),
            "{name}"
        );
        // Another user's conversation shares nothing, even with an id
        // that could collide if keys were joined naively.
        assert_eq!(
            message(&engine, store, &key("c1:ada", ""), TTL)
                .await
                .expect(name),
            ("turn 1, visit 1".to_owned(), 1),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires_and_the_user_stays() {
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = engine(&upstream, "", None).await;
    let short = Duration::from_millis(200);
    for (name, store) in stores(redis.as_ref(), "expiry:").await {
        let store = store.as_ref();
        let grace = key("c1", "grace");
        message(&engine, store, &grace, short).await.expect(name);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            message(&engine, store, &grace, short).await.expect(name),
            ("turn 1, visit 2".to_owned(), 1),
            "{name}: the session ended, the user's visits did not"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_turns_of_one_conversation_lose_no_update() {
    let redis = RedisServer::start();
    // The upstream holds each call, so that both turns load before either
    // saves.
    let upstream = upstream(300).await;
    let replicas = [
        Arc::new(engine(&upstream, "", None).await),
        Arc::new(engine(&upstream, "", None).await),
    ];
    for (name, store) in stores(redis.as_ref(), "race:").await {
        let linus = key("c1", "linus");
        let turns = replicas.iter().map(|engine| {
            let (engine, store, linus) = (Arc::clone(engine), Arc::clone(&store), linus.clone());
            tokio::spawn(async move { message(&engine, store.as_ref(), &linus, TTL).await })
        });
        let mut saved = 0;
        let mut refused = 0;
        for turn in turns.collect::<Vec<_>>() {
            match turn.await.expect("task") {
                Ok(_) => saved += 1,
                Err(EngineError::Store(StoreError::Conflict { conversation })) => {
                    assert_eq!(conversation, "c1");
                    refused += 1;
                }
                Err(other) => panic!("{name}: {other}"),
            }
        }
        assert_eq!((saved, refused), (1, 1), "{name}");
        // The refused turn left nothing: the next one is turn 2.
        assert_eq!(
            message(&replicas[0], store.as_ref(), &linus, TTL)
                .await
                .expect(name)
                .0,
            "turn 2, visit 2",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_sent_again_after_a_conflict_all_count() {
    let redis = RedisServer::start();
    let upstream = upstream(20).await;
    let replicas = [
        Arc::new(engine(&upstream, "", None).await),
        Arc::new(engine(&upstream, "", None).await),
    ];
    const TURNS: usize = 16;
    for (name, store) in stores(redis.as_ref(), "retry:").await {
        let key = key("busy", "");
        let tasks: Vec<_> = (0..TURNS)
            .map(|i| {
                let engine = Arc::clone(&replicas[i % 2]);
                let (store, key) = (Arc::clone(&store), key.clone());
                tokio::spawn(async move {
                    loop {
                        match message(&engine, store.as_ref(), &key, TTL).await {
                            Ok(_) => return,
                            Err(EngineError::Store(StoreError::Conflict { .. })) => {
                                // A few milliseconds, different per caller,
                                // so that retries spread out.
                                let pause = Duration::from_millis(fastrand::u64(5..25));
                                tokio::time::sleep(pause).await;
                            }
                            Err(other) => panic!("{other}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect(name);
        }
        let (last, version) = message(&replicas[0], store.as_ref(), &key, TTL)
            .await
            .expect(name);
        assert_eq!(
            last,
            format!("turn {}, visit {}", TURNS + 1, TURNS + 1),
            "{name}"
        );
        assert_eq!(version, TURNS as u64 + 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_fails_turns_cleanly_and_corrupts_nothing() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = upstream(5).await;
    let engine = Arc::new(engine(&upstream, "", None).await);
    let connection = Redis::connect(&redis.url(), "restart:")
        .await
        .expect("connect");
    let store: Arc<dyn StateStore> = Arc::new(connection.state_store());
    let conversations = ["a", "b", "c", "d"];
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let tasks: Vec<_> = conversations
        .iter()
        .map(|id| {
            let (engine, store, running) = (
                Arc::clone(&engine),
                Arc::clone(&store),
                Arc::clone(&running),
            );
            let key = key(id, "");
            tokio::spawn(async move {
                let (mut saved, mut unavailable) = (0u64, 0u64);
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    match message(&engine, store.as_ref(), &key, TTL).await {
                        Ok((_, version)) => {
                            saved += 1;
                            assert!(version >= saved, "versions only grow");
                        }
                        // Redis gone before the save (nothing saved), or
                        // while it (saved or not: the count may be one more).
                        Err(EngineError::Store(
                            StoreError::Unavailable(reason) | StoreError::OutcomeUnknown(reason),
                        )) => {
                            assert!(!reason.is_empty());
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(other) => panic!("a turn failed otherwise: {other}"),
                    }
                }
                (saved, unavailable)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut total_unavailable = 0;
    for (id, task) in conversations.iter().zip(tasks) {
        let (saved, unavailable) = task.await.expect("task");
        total_unavailable += unavailable;
        // Every conversation is readable and counts every turn that was
        // answered as saved (a save whose answer was lost in the crash may
        // count once more).
        let (last, version) = message(&engine, store.as_ref(), &key(id, ""), TTL)
            .await
            .expect("after the restart");
        let counted: u64 = last
            .strip_prefix("turn ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("a turn count");
        assert!(
            counted > saved && counted <= saved + 1 + unavailable,
            "conversation {id}: {saved} saved, {unavailable} unavailable, now {last}"
        );
        assert_eq!(version, counted, "conversation {id}");
        assert!(saved > 0, "conversation {id} saved turns after the restart");
    }
    assert!(total_unavailable > 0, "the outage was seen");
}

/// Asks, then looks up what the user answered.
const ASKER: &str = r#"name: counter
network:
  allow: ["127.0.0.1"]
http:
  retries: 0
env:
  BASE: null
integrations:
  - name: ping
    responseDataVariable: PING
    type: api
    method: GET
    url: "{$env.BASE}/ping"
dialogs:
  - name: main
    starters: ["look something up"]
    interactions:
      - name: ask
        type: question
        text: What should I look up?
      - name: look
        type: integration
        integration: ping
        preProcess: |
          botContext.setBotVariable("item", botContext.getCurrentUserMessage(), true, false);
        rules:
          - match:
              apiResult: success
            messages:
              - "Looked up {$botContext.item}"
            next: end
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_conversation_goes_on_where_it_waits() {
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = crate::engine_from(&upstream, ASKER, None).await;
    for (name, store) in stores(redis.as_ref(), "waits:").await {
        let store = store.as_ref();
        let key = key("asking", "");
        let say = |message: &'static str| {
            engine.run_stored_turn(store, request(&key, TTL, Start::Message, message))
        };
        let asked = answer(&say("look something up").await.expect(name));
        assert_eq!(
            asked["messages"],
            json!(["What should I look up?"]),
            "{name}"
        );
        assert_eq!(asked["next"], "ask", "{name}");
        // The answer goes to the question that waits (and on to the
        // interaction after it), not to the dialog starters (which it
        // would not match).
        let answered = answer(&say("blue mug").await.expect(name));
        assert_eq!(
            answered["messages"],
            json!(["Looked up blue mug"]),
            "{name}"
        );
        assert_eq!(answered["next"], "end", "{name}");
        // Nothing waits now: a message starts a dialog again.
        let again = answer(&say("look something up").await.expect(name));
        assert_eq!(
            again["messages"],
            json!(["What should I look up?"]),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_id_never_stands_in_for_a_user() {
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = engine(&upstream, "", None).await;
    for (name, store) in stores(redis.as_ref(), "namespace:").await {
        let store = store.as_ref();
        // A conversation named like a user, without a user: its "forever"
        // visits stay with it...
        let named_alice = key("alice", "");
        for turn in 1..=2 {
            assert_eq!(
                message(&engine, store, &named_alice, TTL)
                    .await
                    .expect(name)
                    .0,
                format!("turn {turn}, visit {turn}"),
                "{name}"
            );
        }
        // ...and never reach user alice's record.
        assert_eq!(
            message(&engine, store, &key("c9", "alice"), TTL)
                .await
                .expect(name)
                .0,
            "turn 1, visit 1",
            "{name}: user alice's visits start at 1"
        );
    }
}

/// Keeps the user's message in a session variable.
const HOARDER: &str = r#"name: counter
network:
  allow: ["127.0.0.1"]
env:
  BASE: null
integrations:
  - name: ping
    responseDataVariable: PING
    type: api
    method: GET
    url: "{$env.BASE}/ping"
dialogs:
  - name: main
    interactions:
      - name: keep
        type: integration
        integration: ping
        preProcess: |
          botContext.setBotVariable("note", botContext.getCurrentUserMessage(), true, false);
        rules:
          - match:
              apiResult: success
            messages:
              - "kept"
            next: end
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_past_its_bound_is_refused_and_saves_nothing() {
    const LIMIT: usize = 8 * 1024;
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = crate::engine_from(&upstream, HOARDER, None).await;
    let mut stores: Vec<(&str, Arc<dyn StateStore>)> = vec![(
        "memory",
        Arc::new(MemoryStateStore::new(patchbay_engine::MemoryStoreLimits {
            max_conversation_bytes: LIMIT,
            ..patchbay_engine::MemoryStoreLimits::default()
        })),
    )];
    if let Some(redis) = &redis {
        let connection = Redis::connect(&redis.url(), "bound:")
            .await
            .expect("connect");
        let store = connection.state_store().with_max_conversation_bytes(LIMIT);
        stores.push(("redis", Arc::new(store)));
    }
    let big = "x".repeat(LIMIT + 1);
    let keep = || Start::Interaction("keep".to_owned());
    for (name, store) in stores {
        let key = key("hoard", "");
        let refused = engine
            .run_stored_turn(store.as_ref(), request(&key, TTL, keep(), &big))
            .await;
        match refused {
            Err(EngineError::Store(StoreError::TooLarge { bytes, limit, .. })) => {
                assert_eq!(limit, LIMIT, "{name}");
                assert!(bytes > LIMIT, "{name}: {bytes}");
            }
            other => panic!("{name}: a conversation over its bound was kept: {other:?}"),
        }
        let small = engine
            .run_stored_turn(store.as_ref(), request(&key, TTL, keep(), "small"))
            .await
            .expect(name);
        assert_eq!(small.version(), 1, "{name}: the refused turn saved nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_sent_again_while_it_runs_is_answered_once() {
    let redis = RedisServer::start();
    // Both copies load before either saves.
    let upstream = upstream(300).await;
    let engine = Arc::new(engine(&upstream, "", None).await);
    for (name, store) in stores(redis.as_ref(), "same-turn:").await {
        let copies = (0..2).map(|_| {
            let (engine, store) = (Arc::clone(&engine), Arc::clone(&store));
            tokio::spawn(async move {
                let key = key("twice", "");
                let start = Start::Interaction("count".to_owned());
                let mut request = request(&key, TTL, start, "");
                request.turn_id = Some("turn-1");
                engine
                    .run_stored_turn(store.as_ref(), request)
                    .await
                    .map(|stored| (messages(&stored), stored.version()))
            })
        });
        let mut answers = Vec::new();
        for copy in copies.collect::<Vec<_>>() {
            answers.push(copy.await.expect("task").expect(name));
        }
        let once = ("turn 1, visit 1".to_owned(), 1);
        assert_eq!(answers, [once.clone(), once], "{name}");
        assert_eq!(
            message(&engine, store.as_ref(), &key("twice", ""), TTL)
                .await
                .expect(name),
            ("turn 2, visit 2".to_owned(), 2),
            "{name}: the turn counted once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_conversation_is_reported_and_a_reset_starts_it_over() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = upstream(0).await;
    let engine = engine(&upstream, "", None).await;
    let connection = Redis::connect(&redis.url(), "corrupt:")
        .await
        .expect("connect");
    let store = connection.state_store();
    // What a bad write, a version skew or a hand edit can leave.
    let corruptions: [(&str, &[&str]); 3] = [
        ("state", &["HSET", "{key}", "state", "{not json"]),
        ("version", &["HSET", "{key}", "v", "seven"]),
        ("type", &["SET", "{key}", "a string"]),
    ];
    for (what, command) in corruptions {
        let zoe = key(&format!("broken-{what}"), "zoe");
        message(&engine, &store, &zoe, TTL).await.expect(what);
        let stored = redis.command(&["KEYS", &format!("corrupt:conversation*broken-{what}")]);
        if command[0] == "SET" {
            redis.command(&["DEL", &stored]);
        }
        let command: Vec<&str> = command
            .iter()
            .map(|part| if *part == "{key}" { &stored } else { *part })
            .collect();
        redis.command(&command);
        match message(&engine, &store, &zoe, TTL).await {
            Err(EngineError::Store(StoreError::Unreadable { conversation, .. })) => {
                assert_eq!(conversation, zoe.conversation_id, "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        let start = Start::Interaction("count".to_owned());
        let mut reset = request(&zoe, TTL, start, "");
        reset.reset = true;
        let stored = engine.run_stored_turn(&store, reset).await.expect(what);
        let (turns, _) = messages(&stored)
            .split_once(", ")
            .map(|(turns, visits)| (turns.to_owned(), visits.to_owned()))
            .expect("a count");
        assert_eq!(turns, "turn 1", "{what}: the session starts over");
        let (after, _) = message(&engine, &store, &zoe, TTL).await.expect(what);
        assert!(after.starts_with("turn 2, "), "{what}: {after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_forever_variables_expire_after_their_lifetime() {
    let redis = RedisServer::start();
    let upstream = upstream(0).await;
    let engine = engine(&upstream, "", None).await;
    // A zero lifetime keeps nothing past its turn: each conversation of
    // the user starts her visits over, in memory and in Redis alike.
    let mut stores: Vec<(&str, Arc<dyn StateStore>)> = vec![(
        "memory",
        Arc::new(MemoryStateStore::default().with_user_variables_ttl(Duration::ZERO)),
    )];
    if let Some(redis) = &redis {
        let connection = Redis::connect(&redis.url(), "forgotten:")
            .await
            .expect("connect");
        let store = connection
            .state_store()
            .with_user_variables_ttl(Duration::ZERO);
        stores.push(("redis", Arc::new(store)));
    }
    for (name, store) in stores {
        for conversation in ["c1", "c2"] {
            assert_eq!(
                message(&engine, store.as_ref(), &key(conversation, "ada"), TTL)
                    .await
                    .expect(name)
                    .0,
                "turn 1, visit 1",
                "{name}: the user's record outlived its lifetime"
            );
        }
    }
    // By default Redis keeps the user's record the product's 180 days
    // after the turn that set it (the TTL Redis reports, not a wait).
    let Some(redis) = redis else { return };
    let connection = Redis::connect(&redis.url(), "kept:")
        .await
        .expect("connect");
    let store = connection.state_store();
    message(&engine, &store, &key("c1", "grace"), TTL)
        .await
        .expect("turn");
    let ttl_ms: u64 = redis
        .command(&["PTTL", "kept:user:7:counter:5:grace"])
        .trim_start_matches(':')
        .parse()
        .expect("a TTL");
    let default_ms = patchbay_engine::DEFAULT_USER_VARIABLES_TTL.as_millis() as u64;
    assert_eq!(default_ms, 180 * 24 * 3600 * 1000);
    assert!(
        ttl_ms <= default_ms && ttl_ms > default_ms - 60_000,
        "the user's record expires in {ttl_ms} ms"
    );
}
