//! Redis-backed stores for patchbay, so that replicas behind a load
//! balancer behave as one (docs/deploy.md): [`RedisTokenCache`] (OAuth 2
//! tokens with a fleet-wide single flight), [`RedisStateStore`]
//! (conversations, with optimistic versioning), [`RedisRateLimiter`]
//! (GCRA buckets on Redis's clock) and [`RedisContextStore`] (the
//! Conversation Context Service's namespaces and scopes). All four share
//! one connection: [`Redis::connect`].
//!
//! # Invariant
//! Every key carries an expiry, except users' "forever" variables and
//! context data that the bot wrote without a time to live (as the product
//! keeps it: a namespace's TTL is how a bot bounds it). Each
//! store fails the way its caller can bear: the token cache and the rate
//! limiter never fail a call by themselves (reads miss, the lock and the
//! slot are granted: each replica goes on alone until Redis answers again);
//! the state store fails the turn rather than run it on a state it could
//! not read or save, and says what is known: `Unavailable` when Redis
//! surely wrote nothing, `OutcomeUnknown` when a save was sent and never
//! answered, `Unreadable` when what it holds cannot be read; the context
//! store fails the script's context calls (false, null) and records what
//! it could not write in the turn's trace. Writes that
//! must go together go in one Lua script, so a Redis that dies mid-turn
//! leaves the old state or the new one, never a mix.
//!
//! # API boundary
//! [`Redis`], the four stores (behind `patchbay-credentials`'
//! `TokenCache`, `patchbay-engine`'s `StateStore` and `ContextStore`, and
//! `patchbay-transport`'s `RateLimiter`), [`RedisError`].
#![deny(missing_docs)]

mod context_store;
mod rate_limiter;
mod state_store;
mod token_cache;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

pub use context_store::RedisContextStore;
pub use rate_limiter::RedisRateLimiter;
pub use state_store::RedisStateStore;
pub use token_cache::RedisTokenCache;

/// Redis could not be reached or set up.
#[derive(Debug, thiserror::Error)]
#[error("redis at {url}: {reason}")]
pub struct RedisError {
    url: String,
    reason: String,
}

/// A connection to Redis (reconnecting by itself after an outage) and the
/// prefix of every key; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    prefix: Arc<str>,
    /// Where it points, without credentials, for messages.
    shown: Arc<str>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` (`redis://`, `rediss://`); keys start with
    /// `prefix` (e.g. `patchbay:`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisError> {
        let shown = redact(url);
        let error = |reason: String| RedisError {
            url: shown.clone(),
            reason,
        };
        let client = redis::Client::open(url).map_err(|e| error(e.to_string()))?;
        // Short timeouts and few retries: a call waits for Redis a bounded
        // moment, then goes on without it (see the crate's invariant).
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
            shown: shown.into(),
        })
    }

    /// The OAuth 2 token cache on this connection.
    pub fn token_cache(&self) -> RedisTokenCache {
        RedisTokenCache::new(self.clone())
    }

    /// The conversation store on this connection.
    pub fn state_store(&self) -> RedisStateStore {
        RedisStateStore::new(self.clone())
    }

    /// The Conversation Context Service's store on this connection.
    pub fn context_store(&self) -> RedisContextStore {
        RedisContextStore::new(self.clone())
    }

    /// The rate limiter on this connection.
    pub fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::new(self.clone())
    }

    fn key(&self, kind: &str, parts: &[&str]) -> String {
        // Each part is length-prefixed, so that ids holding `:` cannot make
        // two keys meet.
        let mut key = format!("{}{kind}", self.prefix);
        for part in parts {
            let _ = write!(key, ":{}:{part}", part.len());
        }
        key
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    fn warn(&self, what: &str, error: &redis::RedisError) {
        tracing::warn!(redis = %self.shown, %error, "{what} failed; going on without Redis");
    }
}

/// `redis://user:password@host/0` shown as `redis://host/0`.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            super::redact("redis://:hunter2@cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(super::redact("redis://cache:6379"), "redis://cache:6379");
    }
}
