//! Latency samples and what the report says of them.

use std::time::Duration;

/// Latencies of one row, and how long the row ran.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
}

impl Samples {
    pub(crate) fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self { latencies, elapsed }
    }

    pub(crate) fn count(&self) -> usize {
        self.latencies.len()
    }

    /// The `q`th quantile (0.5 for the median), in microseconds.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let last = self.latencies.len() - 1;
        // Nearest rank; the index is within 0..=last by construction.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((last as f64) * q).round() as usize;
        self.latencies[index.min(last)].as_secs_f64() * 1e6
    }

    /// Completed requests a second.
    pub(crate) fn throughput(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let count = self.latencies.len() as f64;
        count / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}
