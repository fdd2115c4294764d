//! What every answer carries whatever its route: the access-log layer (a
//! request id, the caller's trace, one access-log line) and errors as RFC
//! 9457 problem details (docs/http-api.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use patchbay_engine::TraceParent;
use serde::Serialize;

/// `X-Request-Id`: taken from the request when it is a usable id, else
/// made up; always sent back.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a caller.
pub(crate) const MAX_REQUEST_ID: usize = 128;

/// A server error's `code` and message, carried on its answer for the
/// access-log layer to log with the request id.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The access-log layer: gives the request its id (the caller's, or a new
/// one) and sends it back, runs the request in the caller's trace
/// (`traceparent`, passed on to upstream calls), and logs one line when it
/// is answered, with the route's pattern (`unknown` when none matched;
/// never the path itself: it holds bot and integration names).
pub(crate) async fn access_log(request: Request, next: Next) -> Response {
    let context = RequestContext::new(request.method(), request.headers());
    let answered = next.run(request);
    let mut response = match context.trace.clone() {
        Some(trace) => trace.scope(answered).await,
        None => answered.await,
    };
    context.finish(&mut response);
    response
}

/// What is known of a request before it is answered.
struct RequestContext {
    started: Instant,
    method: Method,
    request_id: String,
    trace: Option<TraceParent>,
}

impl RequestContext {
    fn new(method: &Method, headers: &HeaderMap) -> Self {
        let request_id = headers
            .get(&REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .filter(|id| valid_request_id(id))
            .map_or_else(new_request_id, str::to_owned);
        let trace = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(TraceParent::parse);
        Self {
            started: Instant::now(),
            method: method.clone(),
            request_id,
            trace,
        }
    }

    /// Sends the request id back and logs the access line (after the
    /// failure, for a server error).
    fn finish(&self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        if let Some(failure) = response.extensions().get::<Failure>() {
            tracing::warn!(
                code = failure.code,
                message = %failure.message,
                request_id = %self.request_id,
                "request failed"
            );
        }
        let route = response
            .extensions()
            .get::<MatchedPath>()
            .map_or("unknown", MatchedPath::as_str);
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "patchbay::access",
            method = %self.method,
            route,
            status = response.status().as_u16(),
            duration_ms = (elapsed * 1000.0).round() / 1000.0,
            request_id = %self.request_id,
            trace_id = self.trace.as_ref().map(TraceParent::trace_id),
            "request"
        );
    }
}

/// A caller's request id is kept when it is 1 to 128 printable ASCII
/// characters (no spaces or controls: it goes into logs and a header).
fn valid_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A new request id: 32 hex digits, unique in the process and unlikely
/// to repeat across replicas.
fn new_request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut high = std::collections::hash_map::RandomState::new().build_hasher();
    high.write_u64(count);
    let mut low = std::collections::hash_map::RandomState::new().build_hasher();
    low.write_u64(count ^ u64::from(std::process::id()));
    format!("{:016x}{:016x}", high.finish(), low.finish())
}

/// An error body: RFC 9457 problem details (`type`, `title`, `status`,
/// `detail`) with the stable `code`, and the `error` object callers read
/// (`{"code", "message"}`).
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// Where a problem type is documented: docs/http-api.md's `code` table.
pub(crate) const PROBLEM_TYPE_BASE: &str = "https://patchbay.dev/problems/";

/// The media type of error bodies.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// An error body as text.
pub(crate) fn problem_json(status: StatusCode, code: &str, message: &str) -> String {
    let problem = Problem {
        kind: format!("{PROBLEM_TYPE_BASE}{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: message,
        code,
        error: ErrorDetail { code, message },
    };
    // Strings and a number cannot fail to serialize; the fallback keeps
    // the `error` object.
    serde_json::to_string(&problem)
        .unwrap_or_else(|_| format!(r#"{{"error":{{"code":"{code}","message":""}}}}"#))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use serde_json::Value;
    use tower::ServiceBuilder;

    use super::*;
    use crate::testing::{call, request, send, serve};

    /// Log lines written as JSON, kept.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The access line with this request id.
        fn access_line(&self, request_id: &str) -> Value {
            let text = String::from_utf8(self.0.lock().expect("log").clone()).expect("utf-8");
            let lines: Vec<Value> = text
                .lines()
                .filter(|line| line.contains("patchbay::access"))
                .map(|line| serde_json::from_str(line).expect("json"))
                .filter(|line: &Value| line["fields"]["request_id"] == request_id)
                .collect();
            assert_eq!(lines.len(), 1, "{request_id}:\n{text}");
            lines[0].clone()
        }
    }

    #[tokio::test]
    async fn the_access_log_layer_gives_each_request_an_id_and_one_line() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        // The test's runtime has one thread: the server's tasks log here.
        let _log = tracing::subscriber::set_default(subscriber);
        let routes =
            crate::api::publish_route(Router::new().route("/healthz", get(|| async { "ok" })));
        let addr = serve(
            ServiceBuilder::new()
                .layer(from_fn(access_log))
                .service(routes),
        )
        .await;

        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let asked = request(addr, "GET", "/healthz", "")
            .header("x-request-id", "caller-42")
            .header("traceparent", traceparent);
        let answer = send(addr, asked, "").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-request-id"), "caller-42");
        let line = log.access_line("caller-42");
        assert_eq!(line["level"], "INFO", "{line}");
        let fields = &line["fields"];
        assert_eq!(fields["method"], "GET", "{line}");
        assert_eq!(fields["route"], "/healthz", "{line}");
        assert_eq!(fields["status"], 200, "{line}");
        assert_eq!(
            fields["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{line}"
        );
        assert!(fields["duration_ms"].as_f64().is_some(), "{line}");

        let asked = request(addr, "GET", "/nowhere", "").header("x-request-id", "has space");
        let answer = send(addr, asked, "").await;
        let id = answer.header("x-request-id");
        assert_eq!(id.len(), 32, "{answer:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let line = log.access_line(id);
        assert_eq!(line["fields"]["route"], "unknown", "{line}");
        assert_eq!(line["fields"]["status"], 404, "{line}");

        let first = call(addr, "GET", "/healthz").await;
        let second = call(addr, "GET", "/healthz").await;
        assert_ne!(first.header("x-request-id"), second.header("x-request-id"));
    }

    #[test]
    fn request_ids_are_kept_only_when_printable_and_short() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(
            RequestContext::new(&Method::GET, &headers).request_id,
            "abc-123"
        );
        for bad in ["has space", "", &"x".repeat(129)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).expect("value"));
            let id = RequestContext::new(&Method::GET, &headers).request_id;
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32);
        }
        let first = new_request_id();
        assert_ne!(first, new_request_id());
    }

    #[test]
    fn errors_are_problem_details_with_the_error_object() {
        let body = problem_json(StatusCode::NOT_FOUND, "unknown_bot", "no bot named `x`");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json["type"], "https://patchbay.dev/problems/unknown_bot");
        assert_eq!(json["title"], "Not Found");
        assert_eq!(json["status"], 404);
        assert_eq!(json["detail"], "no bot named `x`");
        assert_eq!(json["code"], "unknown_bot");
        assert_eq!(json["error"]["code"], "unknown_bot");
        assert_eq!(json["error"]["message"], "no bot named `x`");
    }
}
