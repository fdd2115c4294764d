//! Conversations in Redis: a hash per conversation (`v`, the version, and
//! `state`, the session's JSON) that expires with the session, and a hash
//! per user of their "forever" variables.

use std::collections::HashMap;

use patchbay_credentials::BoxFuture;
use patchbay_engine::{
    ConversationKey, SaveConversation, StateStore, StoreError, StoredConversation,
};

use crate::Redis;

/// Writes a turn if the conversation is still at the version it loaded:
/// KEYS[1] the conversation, KEYS[2] the user; ARGV[1] the expected
/// version, ARGV[2] the session, ARGV[3] its lifetime in ms, then the
/// user's variables as name, value pairs. Returns the new version, or -1.
const SAVE: &str = r"
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
local version = current + 1
redis.call('HSET', KEYS[1], 'v', version, 'state', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return version";

/// Conversations shared by every replica that uses the same Redis and
/// prefix. Sessions hold what the bot stored (its variables and fields);
/// like the bot's own logs, treat that Redis as holding user data.
///
/// Both keys of a conversation are written by one script, so with Redis
/// Cluster they would need one slot; use a single Redis (with a replica for
/// failover) for the state store.
pub struct RedisStateStore {
    redis: Redis,
    save: redis::Script,
}

impl std::fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            save: redis::Script::new(SAVE),
        }
    }

    fn keys(&self, key: &ConversationKey) -> (String, String) {
        let user = if key.user_id.is_empty() {
            &key.conversation_id
        } else {
            &key.user_id
        };
        (
            self.redis
                .key("conversation", &[&key.bot, &key.conversation_id]),
            self.redis.key("user", &[&key.bot, user]),
        )
    }

    fn unavailable(&self, what: &str, error: &redis::RedisError) -> StoreError {
        tracing::warn!(redis = ?self.redis, %error, "{what} failed");
        StoreError::Unavailable(format!("{what}: {error}"))
    }
}

impl StateStore for RedisStateStore {
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>> {
        Box::pin(async move {
            let (conversation, user) = self.keys(key);
            let mut connection = self.redis.connection();
            let (session, user_variables): (HashMap<String, String>, HashMap<String, String>) =
                redis::pipe()
                    .hgetall(&conversation)
                    .hgetall(&user)
                    .query_async(&mut connection)
                    .await
                    .map_err(|error| self.unavailable("loading a conversation", &error))?;
            let version = match session.get("v") {
                Some(version) => version.parse().map_err(|_| StoreError::Unreadable {
                    conversation: key.conversation_id.clone(),
                    reason: "its version is not a number".to_owned(),
                })?,
                None => 0,
            };
            Ok(StoredConversation {
                version,
                session: session.get("state").cloned(),
                user_variables,
            })
        })
    }

    fn save<'a>(&'a self, save: SaveConversation<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let (conversation, user) = self.keys(save.key);
            let mut invocation = self.save.key(&conversation);
            invocation
                .key(&user)
                .arg(save.expected_version)
                .arg(&save.session)
                .arg(
                    u64::try_from(save.session_ttl.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
            for (name, value) in &save.user_variables {
                invocation.arg(*name).arg(*value);
            }
            let mut connection = self.redis.connection();
            let version: i64 = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("saving a conversation", &error))?;
            u64::try_from(version).map_err(|_| StoreError::Conflict {
                conversation: save.key.conversation_id.clone(),
            })
        })
    }
}
