//! Conversations in Redis: a hash per conversation (`v`, the version, and
//! `state`, the session's JSON) that expires with the session, and a hash
//! per user of their "forever" variables that expires after the last turn
//! that set one of them (180 days by default, as in the product). The two kinds of key have their
//! own prefixes (`conversation`, `user`), and a conversation without a user
//! has no user key at all.

use std::collections::HashMap;
use std::time::Duration;

use patchbay_credentials::BoxFuture;
use patchbay_engine::{
    ConversationKey, DEFAULT_MAX_CONVERSATION_BYTES, DEFAULT_USER_VARIABLES_TTL, SaveConversation,
    StateStore, StoreError, StoredConversation,
};
use redis::{ErrorKind, RedisError};

use crate::Redis;

/// Writes a turn if the conversation is still at the version it loaded, or
/// over whatever it holds for a reset: KEYS[1] the conversation, KEYS[2]
/// the user (absent without one); ARGV[1] the expected version, ARGV[2]
/// `1` for a reset, ARGV[3] the session, ARGV[4] its lifetime in ms,
/// ARGV[5] the user's record's lifetime in ms, then the user's variables as
/// name, value pairs (the record's expiry restarts when there are any).
/// Returns the new version, or -1 on a conflict.
///
/// Every check comes before the first write, and Redis refuses a script
/// over `maxmemory` only at its first write: an error answer means nothing
/// was written.
const SAVE: &str = r"
local current
if ARGV[2] == '1' then
  current = 0
  if redis.call('TYPE', KEYS[1]).ok == 'hash' then
    current = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
  end
else
  current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
  if current ~= tonumber(ARGV[1]) then return -1 end
end
local version = current + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', version, 'state', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #ARGV >= 6 then
  for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
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
    max_conversation_bytes: usize,
    user_variables_ttl: Duration,
}

impl std::fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("redis", &self.redis)
            .field("max_conversation_bytes", &self.max_conversation_bytes)
            .field("user_variables_ttl", &self.user_variables_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            save: redis::Script::new(SAVE),
            max_conversation_bytes: DEFAULT_MAX_CONVERSATION_BYTES,
            user_variables_ttl: DEFAULT_USER_VARIABLES_TTL,
        }
    }

    /// How long a user's "forever" variables are kept after the last turn
    /// that set one of them; [`DEFAULT_USER_VARIABLES_TTL`] (180 days)
    /// unless set here. A zero lifetime keeps none past its turn.
    #[must_use]
    pub fn with_user_variables_ttl(mut self, ttl: Duration) -> Self {
        self.user_variables_ttl = ttl;
        self
    }

    /// The most one conversation may hold (session and user variables),
    /// in bytes; [`DEFAULT_MAX_CONVERSATION_BYTES`] unless set here.
    #[must_use]
    pub fn with_max_conversation_bytes(mut self, bytes: usize) -> Self {
        self.max_conversation_bytes = bytes;
        self
    }

    fn conversation_key(&self, key: &ConversationKey) -> String {
        self.redis
            .key("conversation", &[&key.bot, &key.conversation_id])
    }

    fn user_key(&self, key: &ConversationKey) -> Option<String> {
        let user = key.user_id.as_deref()?;
        Some(self.redis.key("user", &[&key.bot, user]))
    }

    fn failed(&self, what: &str, error: &RedisError) {
        tracing::warn!(redis = ?self.redis, %error, "{what} failed");
    }
}

/// Whether Redis surely did not run a save that failed with `error`: it
/// refused the connection, or it answered with an error (the script writes
/// nothing before its checks pass). A timeout or a dropped connection
/// after the script was sent leaves the outcome unknown.
fn save_surely_not_run(error: &RedisError) -> bool {
    // A reply from Redis carries its error code (`ERR`, `OOM`, `BUSY`...).
    error.is_connection_refusal() || error.code().is_some()
}

/// Whether a failed load means the stored data cannot be read (wrong type,
/// not text), rather than that Redis did not answer.
fn unreadable_data(error: &RedisError) -> bool {
    // A pipeline's error may not expose the code of the command that
    // failed, but its text names it.
    error.code() == Some("WRONGTYPE")
        || error.to_string().contains("WRONGTYPE")
        || matches!(
            error.kind(),
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType
        )
}

impl StateStore for RedisStateStore {
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>> {
        Box::pin(async move {
            let conversation = self.conversation_key(key);
            let mut pipe = redis::pipe();
            pipe.hgetall(&conversation);
            if let Some(user) = self.user_key(key) {
                pipe.hgetall(user);
            }
            let mut connection = self.redis.connection();
            let mut hashes: Vec<HashMap<String, String>> =
                pipe.query_async(&mut connection).await.map_err(|error| {
                    self.failed("loading a conversation", &error);
                    if unreadable_data(&error) {
                        StoreError::Unreadable {
                            conversation: key.conversation_id.clone(),
                            reason: error.to_string(),
                        }
                    } else {
                        StoreError::Unavailable(format!("loading a conversation: {error}"))
                    }
                })?;
            let user_variables = if hashes.len() > 1 {
                hashes.pop().unwrap_or_default()
            } else {
                HashMap::new()
            };
            let session = hashes.pop().unwrap_or_default();
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
            let conversation = self.conversation_key(save.key);
            let mut invocation = self.save.key(&conversation);
            let user = self.user_key(save.key);
            if let Some(user) = &user {
                invocation.key(user);
            }
            invocation
                .arg(save.expected_version)
                .arg(if save.replace { "1" } else { "0" })
                .arg(&save.session)
                .arg(
                    u64::try_from(save.session_ttl.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .arg(u64::try_from(self.user_variables_ttl.as_millis()).unwrap_or(u64::MAX));
            if user.is_some() {
                for (name, value) in &save.user_variables {
                    invocation.arg(*name).arg(*value);
                }
            }
            let mut connection = self.redis.connection();
            let version: i64 = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|error| {
                    self.failed("saving a conversation", &error);
                    let reason = format!("saving a conversation: {error}");
                    if save_surely_not_run(&error) {
                        StoreError::Unavailable(reason)
                    } else {
                        StoreError::OutcomeUnknown(reason)
                    }
                })?;
            u64::try_from(version).map_err(|_| StoreError::Conflict {
                conversation: save.key.conversation_id.clone(),
            })
        })
    }

    fn max_conversation_bytes(&self) -> usize {
        self.max_conversation_bytes
    }
}
