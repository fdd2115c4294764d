//! Credential providers: turn a named credential of the bot file into an
//! enhanced request (Basic, access token, API key, OAuth 2 with a token
//! cache, mutual TLS, OAuth 1), so that an integration never spells a
//! secret out.
//!
//! # Invariant
//! Secret material never appears in `Debug`, `Display`, errors or traces:
//! it prints as `[redacted]`. Token requests go through
//! `patchbay-transport`, so its deadlines and network guard apply to them.
//!
//! # API boundary
//! A provider trait that applies a credential to a request and can be told
//! that the server rejected a token. Built in issue 5; this crate holds no
//! code until then.
#![deny(missing_docs)]
