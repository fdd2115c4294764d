//! The listener loop: connections, graceful drain, bots swapped in place.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use patchbay_engine::{Engine, MemoryStateStore, StateStore};
use tokio::net::TcpListener;

use crate::Metrics;

/// Limits of the HTTP API.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The largest request body accepted.
    pub max_request_bytes: usize,
    /// How long one turn or invocation may take, end to end.
    pub deadline: Duration,
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            deadline: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            metrics: None,
            store: Arc::new(MemoryStateStore::default()),
            session_ttl: Duration::from_secs(30 * 60),
            playground: false,
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
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.options.header_timeout);
        let graceful = GracefulShutdown::new();
        let upkeep = self.shared.options.metrics.clone().map(|metrics| {
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
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let service = service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.answer(request).await) }
            });
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        self.shared.draining.store(true, Ordering::SeqCst);
        tracing::info!(
            connections = graceful.count(),
            "shutting down: draining in-flight requests"
        );
        if tokio::time::timeout(self.shared.options.drain_timeout, graceful.shutdown())
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
