//! What sharing costs a turn: the conversation store and the OAuth 2 token
//! cache in Redis, each measured against its in-memory default in the same
//! run (issue 11's rows).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use patchbay_engine::credentials::{MemoryTokenCache, TokenCache};
use patchbay_engine::{
    ConversationKey, Engine, MemoryStateStore, SaveConversation, Start, StateStore, StoredTurn,
    StoredTurnRequest,
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
    Ok(StoreRows {
        stored_memory,
        stored_redis,
        oauth_memory,
        oauth_redis,
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
