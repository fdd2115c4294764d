//! The HTTP transport: every integration call and token request goes out
//! through here, on `hyper` and `hyper-util` with `rustls`.
//!
//! # Invariant
//! One overall deadline per call covers DNS, connect, TLS, sending and the
//! whole response body; bodies are read with a size limit; destinations are
//! checked against the network guard after every DNS answer and redirect.
//!
//! # API boundary
//! A request/response API of its own (method, URL, headers, body in; status,
//! headers, body bytes, timings out) that keeps hyper types out of the
//! engine. Built in issue 4; this crate holds no code until then.
#![deny(missing_docs)]
