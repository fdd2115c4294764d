//! The listener loop: connections, graceful drain, bots swapped in place.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use patchbay_engine::{Engine, MemoryStateStore, StateStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Metrics;
use crate::connection::{Admission, Timeouts, serve_connection};

/// Limits of the HTTP API.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The largest request body accepted.
    pub max_request_bytes: usize,
    /// How long one turn or invocation may take, end to end.
    pub deadline: Duration,
    /// How long a client may take to send a request's head, and from
    /// connecting to its first request (a connection that sends nothing is
    /// closed after it).
    pub header_timeout: Duration,
    /// How long a connection may wait between requests (keep-alive) before
    /// it is closed. Keep it longer than a load balancer's idle timeout in
    /// front (AWS ALB: 60 s), so the balancer, not patchbay, closes first.
    pub idle_timeout: Duration,
    /// A request body must arrive within this, plus one second for every
    /// [`ServerOptions::min_body_rate`] bytes received; a stalled or
    /// trickled body answers 408 `body_timeout`.
    pub body_timeout: Duration,
    /// The slowest a request body may arrive, in bytes a second, once
    /// [`ServerOptions::body_timeout`] has passed (0: the whole body within
    /// `body_timeout`).
    pub min_body_rate: u64,
    /// Connections served at once; beyond it a few more are let in that
    /// answer only `/healthz`, `/readyz` and `/metrics`, and the rest are
    /// closed when accepted (docs/deploy.md).
    pub max_connections: usize,
    /// Streams one HTTP/2 connection may have open at once.
    pub max_concurrent_streams: u32,
    /// The host names (`Host`, or HTTP/2's `:authority`, without the port)
    /// a request may name; any when empty. Others answer 421
    /// `host_not_allowed`: a defence against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// How long in-flight requests may run after shutdown begins.
    pub drain_timeout: Duration,
    /// What `/metrics` serves; without it `/metrics` answers 404.
    pub metrics: Option<Metrics>,
    /// Where conversations live when a turn names one (`conversationId`)
    /// instead of sending its state; in this process's memory by default.
    pub store: Arc<dyn StateStore>,
    /// How long a stored conversation's session lives without a turn.
    pub session_ttl: Duration,
    /// Serve the playground page at `/` (docs/testing.md).
    pub playground: bool,
    /// Let a turn ask for each call's response in its `steps`
    /// (`showResponses`); refused with 403 `responses_hidden` otherwise.
    /// Off by default: responses may hold personal data.
    pub show_responses: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            deadline: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(10),
            min_body_rate: 1024,
            max_connections: 4096,
            max_concurrent_streams: 100,
            allowed_hosts: Vec::new(),
            drain_timeout: Duration::from_secs(30),
            metrics: None,
            store: Arc::new(MemoryStateStore::default()),
            session_ttl: Duration::from_secs(30 * 60),
            playground: false,
            show_responses: false,
        }
    }
}

/// The HTTP API over a set of bots. Cheap to clone; clones share the bots.
#[derive(Clone, Debug)]
pub struct Server {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: ServerOptions,
    bots: RwLock<HashMap<String, Arc<Engine>>>,
    pub(crate) draining: AtomicBool,
}

impl Server {
    /// A server with no bots yet.
    pub fn new(options: ServerOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                bots: RwLock::default(),
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// Serves `engine` under its bot's name, replacing the bot of that name
    /// (turns already running finish on the old one). Returns the old one.
    pub fn insert_bot(&self, engine: Engine) -> Option<Arc<Engine>> {
        let name = engine.bot().name.clone();
        self.shared
            .bots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, Arc::new(engine))
    }

    /// Stops serving the bot of that name.
    pub fn remove_bot(&self, name: &str) -> Option<Arc<Engine>> {
        self.shared
            .bots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    /// The bot of that name.
    pub fn bot(&self, name: &str) -> Option<Arc<Engine>> {
        self.shared
            .bots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Whether every bot's script workers can take a run.
    pub(crate) fn scripts_ready(&self) -> bool {
        self.shared
            .bots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .all(|engine| engine.scripts_ready())
    }

    /// The names of the bots served, sorted.
    pub fn bot_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self
            .shared
            .bots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Accepts connections (HTTP/1.1, and HTTP/2 with prior knowledge) until
    /// `shutdown` completes, then stops accepting, answers `/readyz` with
    /// 503 and lets in-flight requests finish within the drain timeout.
    /// Connections beyond [`ServerOptions::max_connections`] (and its small
    /// health reserve) are closed as soon as they are accepted.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let options = &self.shared.options;
        let builder = http_builder(options);
        let app = crate::api::app(self.clone());
        let admission = Admission::new(options.max_connections);
        let timeouts = Timeouts {
            first_request: options.header_timeout,
            idle: options.idle_timeout,
        };
        let (drain, draining) = watch::channel(false);
        let upkeep = options.metrics.clone().map(|metrics| {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(5));
                loop {
                    every.tick().await;
                    metrics.upkeep();
                }
            })
        });
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Some(admitted) = admission.admit() else {
                // Closing it at once keeps descriptors bounded; the client
                // sees the connection closed and may retry.
                metrics::counter!("patchbay_connections_refused_total").increment(1);
                tracing::debug!("connection limit reached; connection closed");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_connection(
                &builder,
                app.clone(),
                stream,
                admitted,
                timeouts,
                draining.clone(),
            ));
        }
        drop(listener);
        self.shared.draining.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: draining in-flight requests");
        let _ = drain.send(true);
        if tokio::time::timeout(options.drain_timeout, admission.all_closed())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing the remaining connections");
        }
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        Ok(())
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) with the options' limits.
fn http_builder(options: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_concurrent_streams)
        // Above the service's own head limit, so a large head is answered
        // there, in JSON (h2 itself would answer 431 with an empty body).
        .max_header_list_size(4 * crate::head::MAX_HEAD_BYTES as u32)
        // Pings find a peer that vanished while its streams run; one that
        // does not answer within the header timeout is gone.
        .keep_alive_interval(options.idle_timeout)
        .keep_alive_timeout(options.header_timeout);
    builder
}
