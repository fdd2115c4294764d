//! patchbay's HTTP API: the engine behind `POST /v1/bots/{bot}/turns` and
//! `POST /v1/bots/{bot}/integrations/{name}/invoke`, with `/healthz`,
//! `/readyz` and Prometheus `/metrics` (docs/http-api.md).
//!
//! # Invariant
//! Stateless: the conversation state travels in each request and comes back
//! in each response, so replicas behind any load balancer behave as one.
//! Every failure answers JSON with a stable `code`; a failed upstream call is
//! not a failure of the request (it takes the bot's failure path and answers
//! 200). No process-level I/O: the host binds the listener, decides when to
//! stop, and swaps bots in with [`Server::insert_bot`].
//!
//! # API boundary
//! [`Server`], [`ServerOptions`], [`Metrics`].
#![deny(missing_docs)]

mod api;
mod metrics;
mod server;

pub use crate::metrics::{Metrics, MetricsError};
pub use crate::server::{Server, ServerOptions};
