//! The Prometheus recorder behind `/metrics`, and the metrics layer that
//! counts and times every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
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
        describe();
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

/// The metrics layer: `patchbay_requests_total` by route and status, and
/// `patchbay_request_duration_seconds` by route, for every request.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route_label(response.extensions().get::<MatchedPath>());
    ::metrics::counter!(
        "patchbay_requests_total",
        "route" => route,
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    ::metrics::histogram!("patchbay_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A route's name in metrics: a word for its pattern (never the bot's or
/// caller's text); `unknown` when no route matched.
fn route_label(route: Option<&MatchedPath>) -> &'static str {
    match route.map(MatchedPath::as_str) {
        Some("/") => "playground",
        Some("/v1/bots") => "bots",
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        Some("/metrics") => "metrics",
        Some("/v1/bots/{bot}/turns") => "turns",
        Some("/v1/bots/{bot}/integrations/{name}/invoke") => "invoke",
        _ => "unknown",
    }
}

/// Gives every metric patchbay records its `# HELP` line (docs/deploy.md,
/// "Metrics"); a test scrapes `/metrics` and fails on a family without one.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "patchbay_requests_total",
        "HTTP requests answered, by route and status."
    );
    describe_histogram!(
        "patchbay_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route."
    );
    describe_counter!(
        "patchbay_turns_total",
        "Turns run, by bot and outcome (success, failure, replayed, error)."
    );
    describe_gauge!("patchbay_connections_open", "Client connections open.");
    describe_counter!(
        "patchbay_connections_refused_total",
        "Connections closed when accepted: the connection limit was reached."
    );
    describe_counter!(
        "patchbay_connections_timed_out_total",
        "Connections closed for a slow or idle client, by phase."
    );
    describe_histogram!(
        "patchbay_integration_duration_seconds",
        Unit::Seconds,
        "Time of one integration call (its attempts, token and transform), by bot and integration."
    );
    describe_histogram!(
        "patchbay_phase_duration_seconds",
        Unit::Seconds,
        "Time spent in each phase of a turn (render, send, transform, rules, ...)."
    );
    describe_counter!(
        "patchbay_upstream_responses_total",
        "Upstream call outcomes, by integration and status class (none: no response)."
    );
    describe_counter!(
        "patchbay_call_failures_total",
        "Failed upstream calls, by kind (dns, connect, tls, timeout, blocked, ...)."
    );
    describe_counter!(
        "patchbay_token_fetches_total",
        "OAuth 2.0 token fetches, by credential and outcome."
    );
    describe_counter!(
        "patchbay_compiled_total",
        "Compilations (templates, paths, rules, scripts), by kind; still in a steady state."
    );
    describe_counter!("patchbay_script_runs_total", "Script runs, by outcome.");
    describe_histogram!(
        "patchbay_script_duration_seconds",
        Unit::Seconds,
        "Time of one script run."
    );
    describe_counter!(
        "patchbay_script_workers_replaced_total",
        "Script workers replaced (after a timeout or a crash)."
    );
    describe_counter!(
        "patchbay_conversations_evicted_total",
        "Conversations the memory store dropped to stay within its limits."
    );
    describe_counter!(
        "patchbay_context_records_evicted_total",
        "Conversation Context Service records dropped to stay within their limits, by record."
    );
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use axum::Router;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceBuilder;

    use super::*;
    use crate::testing::{call, serve};

    /// The process's recorder, installed by the first test that needs it.
    fn metrics() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(|| Metrics::install().expect("recorder"))
    }

    /// A sample's value in `text`, 0 when it is not there.
    fn sample(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().expect("number"))
    }

    #[tokio::test]
    async fn the_metrics_layer_counts_and_times_requests_by_route_and_status() {
        let metrics = metrics();
        let routes =
            crate::api::publish_route(Router::new().route("/healthz", get(|| async { "ok" })));
        let addr = serve(
            ServiceBuilder::new()
                .layer(from_fn(record_request))
                .service(routes),
        )
        .await;
        let ok = r#"patchbay_requests_total{route="healthz",status="200"}"#;
        let missing = r#"patchbay_requests_total{route="unknown",status="404"}"#;
        let timed = r#"patchbay_request_duration_seconds_count{route="healthz"}"#;
        let before = metrics.render();
        assert_eq!(call(addr, "GET", "/healthz").await.status, 200);
        assert_eq!(call(addr, "GET", "/healthz").await.status, 200);
        assert_eq!(call(addr, "GET", "/nowhere").await.status, 404);
        let after = metrics.render();
        for (name, more) in [(ok, 2.0), (missing, 1.0), (timed, 2.0)] {
            assert_eq!(
                sample(&after, name) - sample(&before, name),
                more,
                "{name}:\n{after}"
            );
        }
    }
}
