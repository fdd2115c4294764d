//! The body layer: a turn's or an invocation's body is read whole before
//! its handler runs, and only when it says it is JSON, is within the size
//! limit, and keeps arriving (a body stalled or trickled a byte at a time
//! is cut off instead of holding its connection open).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Buf;
use http::{StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::api::ApiError;

/// The boxed error every body layer here reports.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How fast a request body must arrive: all of it within `grace`, plus one
/// second for every `min_bytes_per_second` bytes received (the allowance
/// grows as bytes come, so an honest large upload is never cut off, while
/// a trickle falls behind at once). `min_bytes_per_second == 0` leaves only
/// `grace`, for the whole body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyRate {
    pub(crate) grace: Duration,
    pub(crate) min_bytes_per_second: u64,
}

impl BodyRate {
    /// How long a body that has sent `received` bytes may have taken.
    fn allowance(&self, received: u64) -> Duration {
        if self.min_bytes_per_second == 0 {
            return self.grace;
        }
        // Whole seconds and the rest apart, so no float and no overflow.
        let seconds = received / self.min_bytes_per_second;
        let rest = received % self.min_bytes_per_second;
        let nanos = rest.saturating_mul(1_000_000_000) / self.min_bytes_per_second;
        self.grace
            .saturating_add(Duration::from_secs(seconds))
            .saturating_add(Duration::from_nanos(nanos))
    }
}

/// What a request body must be, as the body layer checks it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyRules {
    /// The largest body, in bytes.
    pub(crate) limit: usize,
    pub(crate) rate: BodyRate,
}

/// The body layer (module docs): the request goes on with its body read,
/// or answers 415, 413, 408 or 400. The body must say it is JSON: a
/// browser sends `application/json` across sites only after a CORS
/// preflight (which this server does not answer), so a page elsewhere
/// cannot run turns with a "simple" `text/plain` or form POST. Read before
/// the handler runs, the body's time does not count against the deadline.
pub(crate) async fn read_body(
    State(rules): State<BodyRules>,
    request: Request,
    next: Next,
) -> Response {
    match rules.read(request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

impl BodyRules {
    async fn read(&self, request: Request) -> Result<Request, ApiError> {
        let declared_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"));
        if !declared_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        let limit = self.limit;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let (parts, body) = request.into_parts();
        let rate = self.rate;
        let body = Limited::new(MinRate::new(body, rate), limit)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<LengthLimitError>() {
                    too_large()
                } else if error.is::<BodyTooSlow>() {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        format!(
                            "the request body did not arrive in time: {} ms, plus 1 s per {} bytes",
                            rate.grace.as_millis(),
                            rate.min_bytes_per_second
                        ),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_body",
                        "the request body could not be read",
                    )
                }
            })?
            .to_bytes();
        Ok(Request::from_parts(parts, axum::body::Body::from(body)))
    }
}

/// The body fell behind its [`BodyRate`].
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(crate) struct BodyTooSlow;

/// `inner`, cut off with [`BodyTooSlow`] once it falls behind `rate`.
pub(crate) struct MinRate<B> {
    inner: B,
    rate: BodyRate,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<B> MinRate<B> {
    /// Starts the clock now.
    pub(crate) fn new(inner: B, rate: BodyRate) -> Self {
        let started = Instant::now();
        Self {
            inner,
            rate,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + rate.allowance(0))),
        }
    }
}

impl<B> Body for MinRate<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.remaining() as u64);
                    let deadline = this.started + this.rate.allowance(this.received);
                    this.deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_grows_with_the_bytes_received() {
        let rate = BodyRate {
            grace: Duration::from_secs(10),
            min_bytes_per_second: 1000,
        };
        assert_eq!(rate.allowance(0), Duration::from_secs(10));
        assert_eq!(rate.allowance(1500), Duration::from_millis(11_500));
        assert_eq!(rate.allowance(u64::MAX), rate.allowance(u64::MAX));
        let no_rate = BodyRate {
            min_bytes_per_second: 0,
            ..rate
        };
        assert_eq!(no_rate.allowance(1 << 40), Duration::from_secs(10));
    }
}

#[cfg(test)]
mod layer_tests {
    use std::time::Duration;

    use axum::Router;
    use axum::middleware::from_fn_with_state;
    use axum::routing::post;

    use super::*;
    use crate::testing::{raw, request, send, serve};

    #[tokio::test]
    async fn the_body_layer_reads_json_within_the_limit_and_the_rate() {
        let rules = BodyRules {
            limit: 16,
            rate: BodyRate {
                grace: Duration::from_millis(300),
                min_bytes_per_second: 1000,
            },
        };
        let routes = Router::new()
            .route("/echo", post(|body: String| async move { body }))
            .route_layer(from_fn_with_state(rules, read_body));
        let addr = serve(routes).await;

        let fits = r#"{"a": "123456"}"#;
        let answer = send(addr, request(addr, "POST", "/echo", fits), fits).await;
        assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, fits));

        let plain = request(addr, "POST", "/echo", "").header("content-type", "text/plain");
        let answer = send(addr, plain, fits).await;
        assert_eq!(answer.status, 415, "{answer:?}");
        assert_eq!(answer.code(), "unsupported_media_type");

        let large = r#"{"a": "12345678"}"#;
        let answer = send(addr, request(addr, "POST", "/echo", large), large).await;
        assert_eq!(answer.status, 413, "{answer:?}");
        assert_eq!(answer.code(), "request_too_large");

        // No Content-Length to go by: cut off while reading.
        let chunked = format!(
            "POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n11\r\n{large}\r\n0\r\n\r\n"
        );
        let answer = raw(addr, chunked.as_bytes(), Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        assert!(answer.contains("request_too_large"), "{answer}");

        let started = std::time::Instant::now();
        let stalled = b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{";
        let answer = raw(addr, stalled, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
