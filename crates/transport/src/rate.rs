//! Outbound rate limits: a GCRA bucket per key ("generic cell rate
//! algorithm": one timestamp per key, the theoretical arrival time of the
//! next call), in memory here and in a shared store behind the same trait.
//!
//! Slots are reserved, not polled: a call that must wait learns how long
//! and holds its place, so waiting callers go in order and none spins.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A rate: `calls` per `period`, evenly spaced, with up to `burst` calls at
/// once after a quiet time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    interval: Duration,
    burst: u32,
}

impl Rate {
    /// `calls` per `period`, `burst` at once; `None` when any is zero.
    pub fn new(calls: u32, period: Duration, burst: u32) -> Option<Self> {
        if calls == 0 || period.is_zero() || burst == 0 {
            return None;
        }
        Some(Self {
            interval: (period / calls).max(Duration::from_nanos(1)),
            burst,
        })
    }

    /// The spacing of calls at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Calls that may go at once after a quiet time.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How far ahead of the steady rate calls may run: `burst - 1`
    /// intervals.
    pub fn tolerance(&self) -> Duration {
        self.interval * (self.burst - 1)
    }
}

/// A call refused because its slot is further away than it may wait.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the rate limit has no slot for {} ms", wait.as_millis())]
pub struct RateLimited {
    /// How long the call would have had to wait.
    pub wait: Duration,
}

/// Hands out call slots per key.
pub trait RateLimiter: Send + Sync + std::fmt::Debug + 'static {
    /// Reserves the next slot under `key` if it comes within `max_wait`,
    /// and returns how long to wait before calling (zero: now). Otherwise
    /// reserves nothing and returns how long the call would have waited.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        max_wait: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Duration, RateLimited>> + Send + 'a>>;
}

/// One GCRA step: given the key's theoretical arrival time `tat` (None for a
/// new key) and `now`, either the wait and the new `tat`, or the refusal.
/// (`patchbay-redis` runs the same arithmetic as a Lua script.)
fn gcra<T>(
    tat: Option<T>,
    now: T,
    rate: Rate,
    max_wait: Duration,
) -> Result<(Duration, T), RateLimited>
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T> + std::ops::Sub<T, Output = Duration>,
{
    let tat = tat.map_or(now, |tat| tat.max(now));
    let wait = (tat - now).saturating_sub(rate.tolerance());
    if wait > max_wait {
        return Err(RateLimited { wait });
    }
    Ok((wait, tat + rate.interval()))
}

/// Buckets in this process's memory: the default, for one replica.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    buckets: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter for MemoryRateLimiter {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        max_wait: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Duration, RateLimited>> + Send + 'a>> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let outcome = gcra(buckets.get(key).copied(), now, rate, max_wait).map(|(wait, tat)| {
            buckets.insert(key.to_owned(), tat);
            wait
        });
        Box::pin(std::future::ready(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn calls_are_spaced_by_the_interval_after_the_burst() {
        let rate = Rate::new(10, ms(1000), 3).expect("rate");
        let start = Duration::ZERO;
        let mut tat = None;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let (wait, next) = gcra(tat, start, rate, ms(10_000)).expect("slot");
            waits.push(wait.as_millis());
            tat = Some(next);
        }
        assert_eq!(waits, [0, 0, 0, 100, 200]);
    }

    #[test]
    fn a_slot_past_the_deadline_is_refused_and_not_taken() {
        let rate = Rate::new(1, ms(1000), 1).expect("rate");
        let (_, tat) = gcra(None, Duration::ZERO, rate, ms(0)).expect("first");
        let refused = gcra(Some(tat), Duration::ZERO, rate, ms(500)).expect_err("full");
        assert_eq!(refused.wait, ms(1000));
        // Nothing was taken: a second later the slot is free.
        let (wait, _) = gcra(Some(tat), ms(1000), rate, ms(0)).expect("free");
        assert_eq!(wait, Duration::ZERO);
    }

    #[test]
    fn zero_rates_are_not_rates() {
        assert!(Rate::new(0, ms(1000), 1).is_none());
        assert!(Rate::new(1, Duration::ZERO, 1).is_none());
        assert!(Rate::new(1, ms(1000), 0).is_none());
    }
}
