//! What every answer carries whatever its route: a request id, the
//! caller's trace, one access-log line, `Allow` on 405, `HEAD` where `GET`
//! is, and errors as RFC 9457 problem details (docs/http-api.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use patchbay_engine::TraceParent;
use serde::Serialize;

/// `X-Request-Id`: taken from the request when it is a usable id, else
/// made up; always sent back.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a caller.
pub(crate) const MAX_REQUEST_ID: usize = 128;

/// What is known of a request before it is routed.
pub(crate) struct RequestContext {
    pub(crate) started: Instant,
    pub(crate) method: Method,
    pub(crate) request_id: String,
    pub(crate) trace: Option<TraceParent>,
}

impl RequestContext {
    pub(crate) fn new(method: &Method, headers: &HeaderMap) -> Self {
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

    /// Whether the request asks only for the head of what `GET` answers.
    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// Sends the request id back, empties a `HEAD` answer (its
    /// `Content-Length` stays the `GET` body's), and logs the access line.
    pub(crate) fn finish(&self, route: &str, response: &mut Response<Full<Bytes>>) {
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        if self.is_head() {
            let length = hyper::body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0);
            *response.body_mut() = Full::new(Bytes::new());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
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

/// The route pattern a route label stands for, as the access log shows it
/// (never the path itself: it holds bot and integration names).
pub(crate) fn route_pattern(label: &str) -> &'static str {
    match label {
        "playground" => "/",
        "bots" => "/v1/bots",
        "healthz" => "/healthz",
        "readyz" => "/readyz",
        "metrics" => "/metrics",
        "turns" => "/v1/bots/{bot}/turns",
        "invoke" => "/v1/bots/{bot}/integrations/{name}/invoke",
        _ => "unknown",
    }
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
    use super::*;

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
