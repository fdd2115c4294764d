//! What sharing costs a turn: the conversation store and the OAuth 2 token
//! cache in Redis, each measured against its in-memory default in the same
//! run (issue 11's rows); and what the Conversation Context Service costs a
//! turn whose script reads and writes it, in memory and in Redis (issue
//! 20's rows).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_engine::credentials::{MemoryTokenCache, TokenCache};
use patchbay_engine::script::{ContextWrite, RuntimeOptions, ScriptRuntime};
use patchbay_engine::{
    ContextKey, ContextStore, ConversationKey, Engine, EngineOptions, MemoryContextStore,
    MemoryStateStore, SaveConversation, Start, StateStore, StoredTurn, StoredTurnRequest,
};
use patchbay_redis::Redis;
use patchbay_tests::redis::RedisServer;

use crate::stats::Samples;
use crate::{BOT, Budget, EXPECTED_REPLY, engine_with, sequential};

/// The bench bot with its bearer token fetched by OAuth 2 client
/// credentials from the upstream's `/token` (then read from the cache on
/// every call).
fn oauth_bot() -> anyhow::Result<String> {
    let bearer = "    type: access-token\n    token: \"{$env.TOKEN}\"\n    tokenType: Bearer\n";
    anyhow::ensure!(BOT.contains(bearer), "the bench bot's credential changed");
    Ok(BOT.replace(
        bearer,
        "    type: oauth2\n    grant: client-credentials\n    clientId: bench\n    clientSecret: \"{$env.TOKEN}\"\n    tokenUrl: \"{$env.UPSTREAM}/token\"\n",
    ))
}

/// The four rows: stored turns in memory and in Redis, OAuth 2 turns with
/// the token cached in memory and in Redis. `None` for the Redis rows when
/// `redis-server` is not installed (said on stderr by the harness).
pub(crate) struct StoreRows {
    pub(crate) stored_memory: Samples,
    pub(crate) stored_redis: Option<Samples>,
    pub(crate) oauth_memory: Samples,
    pub(crate) oauth_redis: Option<Samples>,
    /// The bench turn without context functions, interleaved call by call
    /// with `context_memory` (same engine options, same load).
    pub(crate) context_base: Samples,
    pub(crate) context_memory: Samples,
    pub(crate) context_redis: Option<Samples>,
}

pub(crate) async fn measure(upstream: SocketAddr, budget: Budget) -> anyhow::Result<StoreRows> {
    let redis_server = RedisServer::start();
    let redis = match &redis_server {
        Some(server) => Some(Redis::connect(&server.url(), "bench:").await?),
        None => None,
    };
    let engine = engine_with(upstream, BOT, Arc::new(MemoryTokenCache::default())).await?;
    let stored_memory = stored_turns(&engine, &MemoryStateStore::default(), budget).await?;
    let stored_redis = match &redis {
        Some(redis) => Some(stored_turns(&engine, &redis.state_store(), budget).await?),
        None => None,
    };
    drop(engine);
    let oauth = oauth_bot()?;
    let oauth_memory = oauth_turns(
        upstream,
        &oauth,
        Arc::new(MemoryTokenCache::default()),
        budget,
    )
    .await?;
    let oauth_redis = match &redis {
        Some(redis) => {
            Some(oauth_turns(upstream, &oauth, Arc::new(redis.token_cache()), budget).await?)
        }
        None => None,
    };
    let (context_base, context_memory) =
        context_turns(upstream, Arc::new(MemoryContextStore::default()), budget).await?;
    let context_redis = match &redis {
        Some(redis) => Some(
            context_turns(upstream, Arc::new(redis.context_store()), budget)
                .await?
                .1,
        ),
        None => None,
    };
    Ok(StoreRows {
        stored_memory,
        stored_redis,
        oauth_memory,
        oauth_redis,
        context_base,
        context_memory,
        context_redis,
    })
}

fn expect_reply(messages: &[patchbay_engine::Message]) -> anyhow::Result<()> {
    anyhow::ensure!(
        messages
            .first()
            .is_some_and(|m| m.text().starts_with(EXPECTED_REPLY)),
        "unexpected turn: {messages:?}"
    );
    Ok(())
}

/// Turns of one conversation the store keeps: a load and a versioned save
/// around each.
async fn stored_turns(
    engine: &Engine,
    store: &dyn StateStore,
    budget: Budget,
) -> anyhow::Result<Samples> {
    let key = ConversationKey {
        bot: "bench".to_owned(),
        conversation_id: "bench".to_owned(),
        user_id: Some("bench-user".to_owned()),
    };
    let call = || async {
        let stored = engine
            .run_stored_turn(
                store,
                StoredTurnRequest {
                    key: &key,
                    start: Start::Interaction("search".to_owned()),
                    message: "password".into(),
                    session_ttl: Duration::from_secs(600),
                    turn_id: None,
                    reset: false,
                },
            )
            .await?;
        match &stored {
            StoredTurn::Ran { turn, .. } => expect_reply(&turn.messages),
            StoredTurn::Replayed { .. } => anyhow::bail!("a turn without an id was replayed"),
        }
    };
    // The conversation starts with the variables the other rows send.
    store
        .save(SaveConversation {
            key: &key,
            expected_version: 0,
            replace: false,
            session: crate::bench_state().to_json().to_string(),
            session_ttl: Duration::from_secs(600),
            user_variables: Vec::new(),
        })
        .await?;
    for _ in 0..budget.warmup {
        call().await?;
    }
    sequential(budget.calls, call).await
}

/// Whole turns whose credential reads its token from `cache` on each call.
async fn oauth_turns(
    upstream: SocketAddr,
    bot: &str,
    cache: Arc<dyn TokenCache>,
    budget: Budget,
) -> anyhow::Result<Samples> {
    let engine = engine_with(upstream, bot, cache).await?;
    let call = || async {
        let turn = engine
            .run_turn(
                crate::bench_state(),
                Start::Interaction("search".to_owned()),
                "password",
            )
            .await?;
        expect_reply(&turn.messages)
    };
    for _ in 0..budget.warmup {
        call().await?;
    }
    sequential(budget.calls, call).await
}

/// The bench bot whose post-process also uses the Conversation Context
/// Service: reads the user's visit count and writes it back plus one,
/// writes the conversation's last message, reads a global property (one
/// load before the script, one write after).
fn context_bot() -> anyhow::Result<String> {
    let post = "          botContext.setBotVariable(\"found\", botContext.getBotVariable(\"FAQS.titles.count\"), true, false);\n";
    anyhow::ensure!(BOT.contains(post), "the bench bot's post-process changed");
    Ok(BOT.replace(
        post,
        &format!(
            "{post}          var visits = botContext.getContextDataForUser(\"bench\", \"visits\") || 0;\n          botContext.setContextDataForUser(\"bench\", \"visits\", visits + 1);\n          botContext.setContextDataForConversation(\"bench\", \"last\", botContext.getCurrentUserMessage());\n          botContext.getGlobalContextData(\"bench\", \"threshold\");\n"
        ),
    ))
}

/// Whole turns of one user whose post-process reads and writes `store`,
/// each right after the same turn of the bench bot without context
/// functions (so that both see the same load); the two rows' samples.
/// Checks at the end that every turn's write was made.
async fn context_turns(
    upstream: SocketAddr,
    store: Arc<dyn ContextStore>,
    budget: Budget,
) -> anyhow::Result<(Samples, Samples)> {
    let engine = |bot: String| {
        let store = Arc::clone(&store);
        async move {
            let loaded = patchbay_engine::config::load("bench-bot.yaml", &bot)
                .map_err(|report| anyhow::anyhow!("{}", report.summary()))?;
            let env: std::collections::HashMap<String, String> = std::collections::HashMap::from([
                ("UPSTREAM".to_owned(), format!("http://{upstream}")),
                ("TOKEN".to_owned(), crate::TOKEN.to_owned()),
            ]);
            let env = Arc::new(move |name: &str| env.get(name).cloned());
            let mut options =
                EngineOptions::new(env, ScriptRuntime::new(RuntimeOptions::default()));
            options.context_store = store;
            anyhow::Ok(Engine::new(loaded.bot, options).await?)
        }
    };
    let plain = engine(BOT.to_owned()).await?;
    let context = engine(context_bot()?).await?;
    let state = || {
        let mut state = crate::bench_state();
        state.user_id = "bench-user".to_owned();
        state
    };
    let key = ContextKey::of("bench", &state());
    let register = [ContextWrite::RegisterNamespace {
        namespace: "bench".to_owned(),
        ttl_seconds: None,
    }];
    anyhow::ensure!(store.write(&key, &register).await?.is_empty());
    for _ in 0..budget.warmup {
        timed_turn(&plain, state()).await?;
        timed_turn(&context, state()).await?;
    }
    let mut latencies = (Vec::new(), Vec::new());
    for _ in 0..budget.calls {
        latencies.0.push(timed_turn(&plain, state()).await?);
        latencies.1.push(timed_turn(&context, state()).await?);
    }
    let visits = store
        .load(&key)
        .await?
        .user
        .and_then(|user| user.get("bench")?.get("visits").cloned());
    let expected = (budget.warmup + budget.calls).to_string();
    anyhow::ensure!(
        visits.as_deref() == Some(expected.as_str()),
        "the context store holds {visits:?} visits, not {expected}"
    );
    // Each row's throughput over its own calls' time.
    let samples = |latencies: Vec<Duration>| {
        let total = latencies.iter().sum();
        Samples::new(latencies, total)
    };
    Ok((samples(latencies.0), samples(latencies.1)))
}

/// One bench turn on `engine`, checked (no script error, the reply); how
/// long it took.
async fn timed_turn(
    engine: &Engine,
    state: patchbay_engine::ConversationState,
) -> anyhow::Result<Duration> {
    let sent = Instant::now();
    let turn = engine
        .run_turn(state, Start::Interaction("search".to_owned()), "password")
        .await?;
    let elapsed = sent.elapsed();
    let errors: Vec<&String> = turn
        .steps
        .iter()
        .flat_map(|step| &step.script_errors)
        .collect();
    anyhow::ensure!(errors.is_empty(), "context turn failed: {errors:?}");
    expect_reply(&turn.messages)?;
    Ok(elapsed)
}
