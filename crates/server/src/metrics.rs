//! The Prometheus recorder behind `/metrics`.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: from a cached local call to a slow upstream.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// The metrics every patchbay crate records (through the `metrics` facade),
/// rendered as Prometheus text.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// The recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

impl Metrics {
    /// Installs a Prometheus recorder as the process's `metrics` recorder.
    /// Once per process: a second call fails, as a second recorder would
    /// see nothing.
    pub fn install() -> Result<Self, MetricsError> {
        let error = |error: BuildError| MetricsError(error.to_string());
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .map_err(error)?
            .build_recorder();
        let handle = recorder.handle();
        ::metrics::set_global_recorder(recorder)
            .map_err(|_| MetricsError("a recorder is already installed".to_owned()))?;
        Ok(Self { handle })
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains buffered samples so memory stays bounded between scrapes.
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
