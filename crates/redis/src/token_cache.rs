//! OAuth 2 tokens shared by every replica, with a fleet-wide single flight.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_credentials::{BoxFuture, CachedToken, Secret, TokenCache};
use serde::{Deserialize, Serialize};

use crate::Redis;

/// OAuth 2 tokens in Redis, shared by every process that uses the same
/// Redis and prefix. Tokens are secrets at rest there: give Redis a
/// password (`redis://:password@host`) or TLS (`rediss://`), and keep it
/// on a private network.
pub struct RedisTokenCache {
    redis: Redis,
    /// The lock value this process set, per key, so that it releases only
    /// its own lock.
    held: Mutex<HashMap<String, String>>,
    release: redis::Script,
    discard: redis::Script,
}

impl std::fmt::Debug for RedisTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenCache")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// A token as stored: its secrets in the clear (see [`RedisTokenCache`]).
#[derive(Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    token_type: String,
    expires_at_ms: Option<u64>,
    refresh_at_ms: Option<u64>,
    refresh_token: Option<String>,
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Deletes KEYS[1] when its value is ARGV[1] (a lock still ours).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Deletes KEYS[1] when it holds the access token ARGV[1].
const DISCARD: &str = r"
local stored = redis.call('GET', KEYS[1])
if stored and cjson.decode(stored).access_token == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

impl RedisTokenCache {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            held: Mutex::new(HashMap::new()),
            release: redis::Script::new(RELEASE),
            discard: redis::Script::new(DISCARD),
        }
    }

    fn token_key(&self, key: &str) -> String {
        self.redis.key("token", &[key])
    }

    fn lock_key(&self, key: &str) -> String {
        self.redis.key("lock", &[key])
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unavailable(&self, what: &str, error: &redis::RedisError) {
        self.redis.warn(what, error);
    }
}

impl TokenCache for RedisTokenCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>> {
        Box::pin(async move {
            let mut connection = self.redis.connection();
            let stored: Option<String> = match redis::cmd("GET")
                .arg(self.token_key(key))
                .query_async(&mut connection)
                .await
            {
                Ok(stored) => stored,
                Err(error) => {
                    self.unavailable("reading a token", &error);
                    return None;
                }
            };
            let stored: StoredToken = serde_json::from_str(&stored?).ok()?;
            Some(CachedToken {
                access_token: Secret::new(stored.access_token),
                token_type: stored.token_type,
                expires_at: stored.expires_at_ms.map(time),
                refresh_at: stored.refresh_at_ms.map(time),
                refresh_token: stored.refresh_token.map(Secret::new),
            })
        })
    }

    fn put<'a>(&'a self, key: &'a str, token: CachedToken) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let stored = StoredToken {
                access_token: token.access_token.expose().to_owned(),
                token_type: token.token_type.clone(),
                expires_at_ms: token.expires_at.map(millis),
                refresh_at_ms: token.refresh_at.map(millis),
                refresh_token: token.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            };
            let Ok(value) = serde_json::to_string(&stored) else {
                return;
            };
            let mut command = redis::cmd("SET");
            command.arg(self.token_key(key)).arg(value);
            // A token without a refresh token dies with itself; one with a
            // refresh token is kept (the refresh grant needs it).
            if let (Some(expires_at), None) = (token.expires_at, &token.refresh_token) {
                let left = expires_at
                    .duration_since(SystemTime::now())
                    .map_or(1, |left| {
                        u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
                    });
                command.arg("PX").arg(left);
            }
            let mut connection = self.redis.connection();
            if let Err(error) = command.query_async::<()>(&mut connection).await {
                self.unavailable("storing a token", &error);
            }
        })
    }

    fn discard<'a>(&'a self, key: &'a str, access_token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.redis.connection();
            let discarded = self
                .discard
                .key(self.token_key(key))
                .arg(access_token)
                .invoke_async::<i64>(&mut connection)
                .await;
            if let Err(error) = discarded {
                self.unavailable("discarding a token", &error);
            }
        })
    }

    fn acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let holder = format!("{:016x}", fastrand::u64(..));
            let mut connection = self.redis.connection();
            let set: Result<Option<String>, _> = redis::cmd("SET")
                .arg(self.lock_key(key))
                .arg(&holder)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                .query_async(&mut connection)
                .await;
            match set {
                Ok(Some(_)) => {
                    self.held().insert(key.to_owned(), holder);
                    true
                }
                Ok(None) => false,
                Err(error) => {
                    self.unavailable("taking the fetch lock", &error);
                    true
                }
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(holder) = self.held().remove(key) else {
                return;
            };
            let mut connection = self.redis.connection();
            let released = self
                .release
                .key(self.lock_key(key))
                .arg(holder)
                .invoke_async::<i64>(&mut connection)
                .await;
            if let Err(error) = released {
                self.unavailable("releasing the fetch lock", &error);
            }
        })
    }
}
