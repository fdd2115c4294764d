//! patchbay's HTTP API: the engine behind `POST /v1/bots/{bot}/turns` and
//! `POST /v1/bots/{bot}/integrations/{name}/invoke`, with `GET /v1/bots`,
//! `/healthz`, `/readyz`, Prometheus `/metrics` and, when asked, the
//! playground page at `/` (docs/http-api.md).
//!
//! # Invariant
//! The conversation lives in the request (`state`, sent back each turn) or
//! in the [`ServerOptions::store`] (`conversationId`), never in the server
//! itself, so replicas sharing a store behave as one. Every failure answers
//! JSON with a stable `code`; a failed upstream call is not a failure of
//! the request (it takes the bot's failure path and answers 200). No
//! process-level I/O: the host binds the listener, decides when to stop,
//! and swaps bots in with [`Server::insert_bot`].
//!
//! # API boundary
//! [`Server`], [`ServerOptions`], [`Metrics`].
#![deny(missing_docs)]

mod answer;
mod api;
mod body;
mod connection;
mod conventions;
mod head;
mod metrics;
mod server;
#[cfg(test)]
mod testing;
mod wire;

pub use crate::answer::TurnAnswer;
pub use crate::metrics::{Metrics, MetricsError};
pub use crate::server::{Server, ServerOptions};
