//! The HTTP transport: every integration call and token request goes out
//! through here, on `hyper` and `hyper-util` with `rustls` (ring provider,
//! which builds offline with only a C compiler).
//!
//! # Invariant
//! One overall deadline per call covers DNS, connect, TLS, sending, the
//! response headers, the whole body, retries and redirects. Bodies are read
//! with a size limit, before and after decompression. Every address dialled
//! (and every IP literal in a URL, after every redirect) passes the
//! [`NetworkGuard`]. Errors name the host, never a URL's query or a header
//! value.
//!
//! # API boundary
//! [`Client`] (built by [`ClientBuilder`]) sends a [`Request`] and returns a
//! complete [`Response`] or an [`Error`]. Requests and responses use the
//! `http` crate's `Method` and `HeaderMap`, `url::Url` and `bytes::Bytes`
//! (the ecosystem's vocabulary types); hyper's own types stay inside.
//! [`Resolve`] plugs in DNS; [`RateLimiter`] hands out call slots (the
//! caller asks before sending: limits are keyed by what the caller knows,
//! an integration or a host).
#![deny(missing_docs)]

mod body;
mod client;
mod connect;
mod error;
mod guard;
mod identity;
mod rate;

pub use client::{Client, ClientBuilder, HttpVersion, Limits, Request, Response, Timings};
pub use connect::{ProxyConfig, Resolve, SystemResolver};
pub use error::{Error, Phase};
pub use guard::{InvalidAllowEntry, NetworkGuard, is_public};
pub use identity::TlsIdentity;
pub use rate::{MemoryRateLimiter, Rate, RateLimited, RateLimiter};
