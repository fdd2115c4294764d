//! Rate limits shared by every replica: one GCRA timestamp per key, on
//! Redis's clock (so replicas' clocks need not agree).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use patchbay_transport::{Rate, RateLimited, RateLimiter};

use crate::Redis;

/// The GCRA step of `patchbay-transport`'s memory limiter, in microseconds:
/// KEYS[1] the bucket; ARGV[1] the interval, ARGV[2] the tolerance,
/// ARGV[3] the longest wait. Returns {1, wait} with the slot taken, or
/// {0, wait} with nothing taken.
const RESERVE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now - tonumber(ARGV[2])
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return {0, wait} end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 1)
return {1, wait}";

/// Call slots shared by every replica that uses the same Redis and prefix.
/// When Redis does not answer, the slot is granted (the crate's invariant):
/// a Redis outage must not stop every call of the fleet.
pub struct RedisRateLimiter {
    redis: Redis,
    reserve: redis::Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            reserve: redis::Script::new(RESERVE),
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl RateLimiter for RedisRateLimiter {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        max_wait: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Duration, RateLimited>> + Send + 'a>> {
        Box::pin(async move {
            let mut connection = self.redis.connection();
            let reserved: Result<(i64, u64), _> = self
                .reserve
                .key(self.redis.key("rate", &[key]))
                .arg(micros(rate.interval()))
                .arg(micros(rate.tolerance()))
                .arg(micros(max_wait))
                .invoke_async(&mut connection)
                .await;
            match reserved {
                Ok((1, wait)) => Ok(Duration::from_micros(wait)),
                Ok((_, wait)) => Err(RateLimited {
                    wait: Duration::from_micros(wait),
                }),
                Err(error) => {
                    self.redis.warn("taking a rate-limit slot", &error);
                    Ok(Duration::ZERO)
                }
            }
        })
    }
}
