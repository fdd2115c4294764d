//! Credential providers: turn a named credential of the bot file into an
//! enhanced request (Basic, access token, API key, OAuth 2 with a token
//! cache, OAuth 1 signatures, mutual TLS), so that an integration never
//! spells a secret out.
//!
//! # Invariant
//! Secret material never appears in `Debug`, `Display`, errors or traces:
//! it is held in [`Secret`] (printed `[redacted]`, zeroed on drop) and put
//! into requests as sensitive header values. Token requests go through
//! `patchbay-transport`, so its deadline and network guard apply to them,
//! and token endpoints are never followed through redirects. Text a token
//! endpoint sends back (`error`, `error_description`) is quoted only with
//! the credential's secrets masked in every encoding, control characters
//! dropped and its length bounded: an endpoint that reflects its request
//! cannot put the client secret into an error.
//!
//! # API boundary
//! [`build`] turns a `patchbay_config::Credential` into a [`Provider`];
//! [`send_authenticated`] applies it, sends the call and, when the server
//! rejects the token, retries once with a fresh one. [`TokenCache`] (with
//! [`MemoryTokenCache`]) is where OAuth 2 tokens live between calls;
//! [`authorize`] runs the authorization-code grant that fills it.
//! [`KnownSecrets`] masks known secrets in text in every encoding patchbay
//! produces; text a token endpoint sends passes through it before it
//! enters an error.
#![deny(missing_docs)]

mod env;
mod error;
mod oauth1;
mod oauth2;
mod provider;
mod redact;
mod secret;

pub use env::EnvLookup;
pub use error::CredentialError;
pub use oauth2::{Authorization, CachedToken, MemoryTokenCache, TokenCache, authorize};
pub use provider::{BoxFuture, Provider, ProviderContext, SendError, build, send_authenticated};
pub use redact::{KnownSecrets, MASK, MAX_UPSTREAM_TEXT_CHARS, MIN_SECRET_LEN};
pub use secret::Secret;
