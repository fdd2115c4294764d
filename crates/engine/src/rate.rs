//! The bot's rate limits as calls take them: an integration's
//! `rateLimit` and its host's `network.rateLimits`, their limiter keys
//! made once when the bot loads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use patchbay_config::{Bot, RateLimit};
use patchbay_transport::{Rate, RateLimiter};
use url::Url;

use crate::CallFailure;

/// A rate limit as the engine applies it: its limiter key, made once.
#[derive(Debug)]
struct RateSlot {
    key: String,
    rate: Rate,
    /// `integration NAME` or `host NAME`, for messages.
    what: String,
}

impl RateSlot {
    fn new(key: String, what: String, limit: &RateLimit) -> Option<Self> {
        let rate = Rate::new(
            limit.calls,
            Duration::from_millis(limit.period_ms),
            limit.burst,
        )?;
        Some(Self { key, rate, what })
    }
}

/// A bot's rate limits, with the limiter that hands out their slots.
pub(crate) struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    /// By integration index.
    integrations: Vec<Option<RateSlot>>,
    /// By host, lower case, without a trailing dot.
    hosts: HashMap<String, RateSlot>,
}

impl RateLimits {
    pub(crate) fn new(bot: &Bot, limiter: Arc<dyn RateLimiter>) -> Self {
        let integrations = bot
            .integrations
            .iter()
            .map(|integration| {
                let limit = integration.rate_limit.as_ref()?;
                let key = format!("integration:{}/{}", bot.name, integration.name);
                let what = format!("integration `{}`", integration.name);
                RateSlot::new(key, what, limit)
            })
            .collect();
        let hosts = bot
            .network
            .rate_limits
            .iter()
            .filter_map(|(host, limit)| {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                let slot = RateSlot::new(format!("host:{host}"), format!("host `{host}`"), limit)?;
                Some((host, slot))
            })
            .collect();
        Self {
            limiter,
            integrations,
            hosts,
        }
    }

    /// Takes a slot under the rate limits of the integration at
    /// `integration` (an index) and of `url`'s host, if any, and waits for
    /// the later one: the wait counts against the call's deadline, and a
    /// slot past it fails the call at once. Returns how long it waited.
    pub(crate) async fn wait(
        &self,
        integration: usize,
        url: &Url,
        deadline: Duration,
    ) -> Result<Duration, CallFailure> {
        let by_host = url.host_str().and_then(|host| self.hosts.get(host));
        let by_integration = self.integrations.get(integration).and_then(Option::as_ref);
        let mut wait = Duration::ZERO;
        for slot in [by_integration, by_host].into_iter().flatten() {
            match self.limiter.reserve(&slot.key, slot.rate, deadline).await {
                Ok(slot_wait) => wait = wait.max(slot_wait),
                Err(limited) => {
                    return Err(CallFailure {
                        kind: "rate-limited",
                        message: format!(
                            "the rate limit of {} (one call per {} ms, {} at once) has no slot within the call's {} ms deadline; the next is in {} ms",
                            slot.what,
                            slot.rate.interval().as_millis(),
                            slot.rate.burst(),
                            deadline.as_millis(),
                            limited.wait.as_millis()
                        ),
                    });
                }
            }
        }
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis(), "waiting for a rate-limit slot");
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }
}
