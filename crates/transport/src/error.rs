//! Why a call failed, in terms a bot author can act on.

use std::net::IpAddr;
use std::time::Duration;

/// Where in a call time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Resolving, connecting or the TLS handshake.
    Connect = 0,
    /// Sending the request and waiting for the response headers.
    Headers = 1,
    /// Reading the response body.
    Body = 2,
    /// Waiting before a retry.
    Backoff = 3,
}

impl Phase {
    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Connect,
            1 => Self::Headers,
            2 => Self::Body,
            _ => Self::Backoff,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Connect => "while connecting",
            Self::Headers => "while waiting for the response headers",
            Self::Body => "while reading the response body",
            Self::Backoff => "while waiting to retry",
        }
    }
}

/// A failed call. Messages name the host, never the full URL, whose query
/// may carry a secret, and never a header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call's deadline passed.
    #[error("no complete response from {host} within {}ms ({})", deadline.as_millis(), phase.describe())]
    Timeout {
        /// The host called.
        host: String,
        /// Where the call was when time ran out.
        phase: Phase,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The connection was refused, reset before a response, or could not
    /// be made within the connect timeout.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The host called.
        host: String,
        /// What the system said.
        reason: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Dns {
        /// The host called.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host called.
        host: String,
        /// What rustls said.
        reason: String,
    },
    /// The network guard refused the address.
    #[error(
        "calls to {ip} ({host}) are not allowed; add it to the bot's `network.allow` if it is meant"
    )]
    Blocked {
        /// The host called.
        host: String,
        /// The refused address.
        ip: IpAddr,
    },
    /// The response (or its headers, or its decompressed body) is larger
    /// than allowed.
    #[error("the response from {host} is larger than the {limit}-byte limit on its {what}")]
    TooLarge {
        /// The host called.
        host: String,
        /// `body`, `decompressed body` or `headers`.
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// More redirects than allowed, or a redirect loop.
    #[error("{host} redirected more than {limit} times")]
    TooManyRedirects {
        /// The host that sent the last redirect.
        host: String,
        /// The redirect limit.
        limit: u32,
    },
    /// The server broke HTTP: malformed framing, invalid headers, a reset
    /// mid-body, an undecodable compressed body.
    #[error("{host} sent an invalid response: {reason}")]
    Protocol {
        /// The host called.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// The request itself cannot be sent (bad URL, scheme, header).
    #[error("the request cannot be sent: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// A stable name of the failure's kind, for metrics and API results.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Dns { .. } => "dns",
            Self::Tls { .. } => "tls",
            Self::Blocked { .. } => "blocked",
            Self::TooLarge { .. } => "too-large",
            Self::TooManyRedirects { .. } => "too-many-redirects",
            Self::Protocol { .. } => "protocol",
            Self::InvalidRequest(_) => "invalid-request",
        }
    }
}
