//! One client connection's life: admitted under the connection limit (or
//! into the small reserve that only answers health, readiness and metrics),
//! given a deadline for its first request and an idle timeout between
//! requests, and closed when it outstays either.
//!
//! Why not only hyper's own timers: hyper-util's auto builder reads the
//! first bytes (to tell HTTP/1.1 from HTTP/2) with no timeout, hyper's
//! HTTP/1.1 header timeout starts only once a head has begun, and an
//! HTTP/2 connection with no stream open has no timeout at all. Counting
//! requests in flight here covers all three the same way.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::api::{ApiError, App};
use crate::wire::JsonProtocolErrors;

/// How long a connection told to close (idle, or idle at shutdown) may
/// take to go before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Connections admitted beyond the limit that may only ask `/healthz`,
/// `/readyz` and `/metrics` (one request each), so a platform's probes
/// still get an answer while the limit is reached.
pub(crate) const HEALTH_RESERVE: usize = 16;

/// How long a reserve connection may take to ask.
const RESERVE_FIRST_REQUEST: Duration = Duration::from_secs(1);

/// The paths a reserve connection may ask.
const OPERATIONAL_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Which connections are let in: at most `limit` serving everything, then
/// at most [`HEALTH_RESERVE`] serving health only; the rest are closed as
/// soon as they are accepted, so descriptors stay bounded.
#[derive(Debug)]
pub(crate) struct Admission {
    regular: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    limit: u32,
}

/// A connection's place, held as long as the connection lives.
pub(crate) struct Admitted {
    /// Let in from the reserve: health, readiness and metrics only.
    health_only: bool,
    _place: OwnedSemaphorePermit,
}

impl Admission {
    pub(crate) fn new(limit: usize) -> Self {
        // At least one connection; a semaphore counts in u32 at most.
        let limit = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        Self {
            regular: Arc::new(Semaphore::new(limit as usize)),
            reserve: Arc::new(Semaphore::new(HEALTH_RESERVE)),
            limit,
        }
    }

    /// A place for a new connection, or `None`: close it.
    pub(crate) fn admit(&self) -> Option<Admitted> {
        if let Ok(place) = Arc::clone(&self.regular).try_acquire_owned() {
            return Some(Admitted {
                health_only: false,
                _place: place,
            });
        }
        let place = Arc::clone(&self.reserve).try_acquire_owned().ok()?;
        Some(Admitted {
            health_only: true,
            _place: place,
        })
    }

    /// Resolves once every admitted connection has closed.
    pub(crate) async fn all_closed(&self) {
        let _ = self.regular.acquire_many(self.limit).await;
        let _ = self.reserve.acquire_many(HEALTH_RESERVE as u32).await;
    }
}

/// How long a connection may wait for requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// From accepting the connection to its first request's head.
    pub(crate) first_request: Duration,
    /// From the end of one request to the head of the next.
    pub(crate) idle: Duration,
}

/// The requests in flight on one connection, watched by [`supervise`].
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.changed.notify_one();
        }
        InFlight(Arc::clone(self))
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }
}

/// One request in flight; ends when dropped, even when hyper drops the
/// request's future (a reset stream, a closed connection).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_one();
        }
    }
}

/// The service of one connection: counts its requests in flight, and on a
/// reserve connection answers only the operational paths; the rest is the
/// [`App`]'s.
#[derive(Clone)]
pub(crate) struct ConnectionService {
    app: App,
    activity: Arc<Activity>,
    health_only: bool,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let app = self.app.clone();
        let health_only = self.health_only;
        Box::pin(async move {
            let _in_flight = in_flight;
            if health_only && !OPERATIONAL_PATHS.contains(&request.uri().path()) {
                let mut response = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_connections",
                    "the server is at its connection limit; try again shortly",
                )
                .into_response();
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return Ok(response);
            }
            app.oneshot(request.map(Body::new)).await
        })
    }
}

type HttpConnection = auto::Connection<
    'static,
    JsonProtocolErrors<TokioIo<TcpStream>>,
    ConnectionService,
    TokioExecutor,
>;

/// Serves `stream` until it closes, outstays its timeouts, or the server
/// drains; `admitted` is given back when it ends.
pub(crate) fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    app: App,
    stream: TcpStream,
    admitted: Admitted,
    timeouts: Timeouts,
    drain: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let activity = Arc::new(Activity::default());
    let health_only = admitted.health_only;
    let service = ConnectionService {
        app,
        activity: Arc::clone(&activity),
        health_only,
    };
    let connection = builder
        .serve_connection(JsonProtocolErrors::new(TokioIo::new(stream)), service)
        .into_owned();
    let timeouts = if health_only {
        // A probe asks at once and asks once: a reserve place is given back
        // quickly even when a client took it only to hold it.
        Timeouts {
            first_request: timeouts.first_request.min(RESERVE_FIRST_REQUEST),
            idle: Duration::ZERO,
        }
    } else {
        timeouts
    };
    async move {
        metrics::gauge!("patchbay_connections_open").increment(1.0);
        supervise(connection, &activity, timeouts, drain).await;
        metrics::gauge!("patchbay_connections_open").decrement(1.0);
        drop(admitted);
    }
}

/// Drives `connection`, closing it when it waits too long for a request.
async fn supervise(
    connection: HttpConnection,
    activity: &Activity,
    timeouts: Timeouts,
    mut drain: watch::Receiver<bool>,
) {
    let mut connection = pin!(connection);
    let mut deadline = Some(Instant::now() + timeouts.first_request);
    let mut served = false;
    let mut closing = false;
    let mut drained = false;
    loop {
        let wait = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {
                served = true;
                deadline = activity.is_idle().then(|| {
                    Instant::now() + if closing { CLOSE_GRACE } else { timeouts.idle }
                });
            }
            () = wait => {
                if !activity.is_idle() {
                    deadline = None;
                } else if closing {
                    tracing::debug!("connection did not close when told to; dropped");
                    return;
                } else {
                    let phase = if served { "idle" } else { "first_request" };
                    metrics::counter!("patchbay_connections_timed_out_total", "phase" => phase)
                        .increment(1);
                    tracing::debug!(phase, "connection timed out waiting for a request");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                    deadline = Some(Instant::now() + CLOSE_GRACE);
                }
            }
            _ = drain.changed(), if !drained => {
                drained = true;
                if !closing {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                if activity.is_idle() {
                    deadline = Some(Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}
