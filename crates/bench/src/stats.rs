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

/// The least-squares slope of `y` over `x` (`None` with fewer than two
/// distinct `x`).
pub(crate) fn slope(points: &[(f64, f64)]) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_slope_of_a_line_and_of_a_flat_series() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), 3.0 * f64::from(x) + 7.0))
            .collect();
        let slope = super::slope(&line).expect("a slope");
        assert!((slope - 3.0).abs() < 1e-9, "{slope}");
        assert_eq!(super::slope(&[(1.0, 5.0), (2.0, 5.0)]), Some(0.0));
        assert_eq!(super::slope(&[(1.0, 5.0)]), None);
        assert_eq!(super::slope(&[(1.0, 5.0), (1.0, 6.0)]), None);
    }
}
