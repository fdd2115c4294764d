//! The client: deadline, retries and redirects around hyper-util's pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION,
    PROXY_AUTHORIZATION, RETRY_AFTER,
};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::CertificateDer;
use tracing::Instrument;
use url::Url;

use crate::body::{decode, innermost, read_limited};
use crate::connect::{
    CALL, CallState, Connector, ProxyConfig, Resolve, ResolveError, SystemResolver, connector,
    set_phase,
};
use crate::error::{Error, Phase};
use crate::guard::NetworkGuard;
use crate::identity::{TlsIdentity, parse_certificates};

/// Per-call limits. The defaults follow the product: one 20 s deadline with
/// up to 3 retries inside it, 5 MiB bodies, 5 redirects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One deadline for the whole call: connect, TLS, sending, headers, the
    /// whole body, every retry and redirect.
    pub deadline: Duration,
    /// The longest a new connection (DNS, TCP, TLS) may take, within the
    /// deadline.
    pub connect_timeout: Duration,
    /// Retries after a failed attempt, where retrying is safe.
    pub max_retries: u32,
    /// The largest body accepted, before and after decompression.
    pub max_body_bytes: usize,
    /// Redirects followed; 0 returns a redirect response as it is.
    pub max_redirects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            max_body_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// One HTTP call to make.
///
/// Its `Debug` output shows the URL without its query, which may carry a
/// secret, and the body's length only.
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An absolute http or https URL.
    pub url: Url,
    /// Headers. Mark credential values with [`HeaderValue::set_sensitive`]:
    /// they are dropped when a redirect leaves the origin, and print as
    /// `Sensitive` in debug output.
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
    /// The call's limits.
    pub limits: Limits,
    /// A client certificate to present (mutual TLS) instead of the
    /// client's own, if any.
    pub identity: Option<TlsIdentity>,
}

impl Request {
    /// A request without headers or body, with the default limits.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            limits: Limits::default(),
            identity: None,
        }
    }
}

/// The protocol a response came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
}

/// A complete response: status, headers and the whole (decoded) body.
///
/// Its `Debug` output shows the URL without its query and the body's length.
#[derive(Clone)]
pub struct Response {
    /// The status code; any status is data, not an error.
    pub status: u16,
    /// The protocol used.
    pub version: HttpVersion,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, decompressed.
    pub body: Bytes,
    /// The URL that answered, after redirects.
    pub url: Url,
    /// How long it took, and how many attempts and redirects.
    pub timings: Timings,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &Redacted(&self.url))
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("limits", &self.limits)
            .field("identity", &self.identity)
            .finish()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("url", &Redacted(&self.url))
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("timings", &self.timings)
            .finish()
    }
}

/// A URL shown without its query and fragment.
struct Redacted<'a>(&'a Url);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        write!(
            f,
            "\"{}{}",
            &url[..url::Position::AfterPath],
            if url.query().is_some() {
                "?[redacted]"
            } else {
                ""
            }
        )?;
        f.write_str("\"")
    }
}

/// Where the time of a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// From the start of the call to the complete body.
    pub total: Duration,
    /// From the start of the call to the final response's headers.
    pub headers: Duration,
    /// Attempts made, retries included.
    pub attempts: u32,
    /// Redirects followed.
    pub redirects: u32,
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    settings: PoolSettings,
    identity: Option<TlsIdentity>,
}

/// What every connection pool of a client shares.
struct PoolSettings {
    guard: Arc<NetworkGuard>,
    resolver: Arc<dyn Resolve>,
    extra_roots: Vec<CertificateDer<'static>>,
    connect_timeout: Duration,
    max_header_bytes: usize,
    proxy: ProxyConfig,
}

impl std::fmt::Debug for PoolSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSettings")
            .field("guard", &self.guard)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            settings: PoolSettings {
                guard: Arc::new(NetworkGuard::new()),
                resolver: Arc::new(SystemResolver),
                extra_roots: Vec::new(),
                connect_timeout: Duration::from_secs(5),
                max_header_bytes: 64 * 1024,
                proxy: ProxyConfig::default(),
            },
            identity: None,
        }
    }
}

impl ClientBuilder {
    /// The network guard; by default every non-public address is refused.
    pub fn guard(mut self, guard: NetworkGuard) -> Self {
        self.settings.guard = Arc::new(guard);
        self
    }

    /// Resolves host names with `resolver` instead of the system resolver.
    /// Its answers still pass the guard.
    pub fn resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.settings.resolver = resolver;
        self
    }

    /// Trusts the CA certificates of a PEM bundle besides the webpki roots.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        self.settings
            .extra_roots
            .extend(parse_certificates(pem, "CA certificate")?);
        Ok(self)
    }

    /// Presents a client certificate (mutual TLS) on every call that does
    /// not carry an identity of its own.
    pub fn client_identity_pem(mut self, certificate: &[u8], key: &[u8]) -> Result<Self, Error> {
        self.identity = Some(TlsIdentity::from_pem(certificate, key)?);
        Ok(self)
    }

    /// The connect timeout of connections hyper-util finishes in the
    /// background, after the call that started them gave up (calls use
    /// [`Limits::connect_timeout`]); default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Sends calls through proxies (CONNECT tunnels); none by default.
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.settings.proxy = proxy;
        self
    }

    /// The largest response head accepted; default 64 KiB.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_header_bytes = bytes.max(8 * 1024);
        self
    }

    /// Builds the client and its connection pool.
    pub fn build(self) -> Result<Client, Error> {
        let default_pool = self.settings.pool(self.identity.as_ref())?;
        Ok(Client {
            shared: Arc::new(Shared {
                default_pool,
                by_identity: Mutex::new(HashMap::new()),
                settings: self.settings,
            }),
        })
    }
}

type Pool = legacy::Client<Connector, Full<Bytes>>;

impl PoolSettings {
    /// A connection pool whose TLS presents `identity`, if any.
    fn pool(&self, identity: Option<&TlsIdentity>) -> Result<Pool, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let trusted = identity.map(TlsIdentity::trusted).unwrap_or_default();
        for certificate in self.extra_roots.iter().chain(trusted) {
            roots.add(certificate.clone()).map_err(|error| {
                Error::InvalidRequest(format!("unusable CA certificate: {error}"))
            })?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::InvalidRequest(error.to_string()))?
            .with_root_certificates(roots);
        let tls = match identity {
            Some(identity) => tls
                .with_client_auth_cert(identity.chain(), identity.key())
                .map_err(|error| {
                    Error::InvalidRequest(format!("unusable client certificate: {error}"))
                })?,
            None => tls.with_no_client_auth(),
        };
        Ok(legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http1_max_buf_size(self.max_header_bytes)
            .http2_max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .build(connector(
                Arc::clone(&self.guard),
                Arc::clone(&self.resolver),
                tls,
                self.connect_timeout,
                &self.proxy,
            )))
    }
}

/// An HTTP client with connection pools per origin (HTTP/1.1 keep-alive,
/// HTTP/2 by ALPN) and per client identity. Cheap to clone; clones share
/// the pools.
#[derive(Clone, Debug)]
pub struct Client {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    default_pool: Pool,
    by_identity: Mutex<HashMap<u64, Pool>>,
    settings: PoolSettings,
}

impl Client {
    /// A client with the default settings (see [`ClientBuilder`]).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for a client with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The pool for calls presenting `identity`, made on first use.
    fn pool(&self, identity: Option<&TlsIdentity>) -> Result<Pool, Error> {
        let Some(identity) = identity else {
            return Ok(self.shared.default_pool.clone());
        };
        // A poisoned lock only means another call panicked while inserting;
        // the map itself is still sound.
        let mut pools = self
            .shared
            .by_identity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(&identity.fingerprint()) {
            return Ok(pool.clone());
        }
        let pool = self.shared.settings.pool(Some(identity))?;
        pools.insert(identity.fingerprint(), pool.clone());
        Ok(pool)
    }

    /// Sends a request and reads the whole response, within the request's
    /// deadline. Any status is a response; errors are failures to get one.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let host = host_of(&request.url);
        let deadline = request.limits.deadline;
        let state = CallState::new(request.limits.connect_timeout);
        let started = Instant::now();
        let call = CALL.scope(Arc::clone(&state), self.follow(request, started));
        let span = tracing::debug_span!("http.call", host = %host);
        match tokio::time::timeout(deadline, call.instrument(span)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                host,
                phase: state.phase(),
                deadline,
            }),
        }
    }

    async fn follow(&self, request: Request, started: Instant) -> Result<Response, Error> {
        let Request {
            mut method,
            mut url,
            mut headers,
            mut body,
            limits,
            identity,
        } = request;
        let pool = self.pool(identity.as_ref())?;
        let deadline = started + limits.deadline;
        if !headers.contains_key(ACCEPT_ENCODING) {
            headers.insert(
                ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, deflate, br"),
            );
        }
        let mut attempts = 0;
        let mut redirects = 0;
        loop {
            let host = host_of(&url);
            let response = self
                .attempts(
                    &pool,
                    &method,
                    &url,
                    &headers,
                    &body,
                    &limits,
                    deadline,
                    &mut attempts,
                )
                .await?;
            let headers_at = started.elapsed();
            let status = response.status().as_u16();
            // hyper bounds its read buffer, but a head can end up to about
            // twice that size before it notices; the limit is exact here.
            let head_bytes: usize = response
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum();
            // Both framings at once is how responses get smuggled past a
            // proxy or split on a pooled connection (RFC 9112, 6.3): refused,
            // and the connection is not reused (its body is never read).
            if response
                .headers()
                .contains_key(http::header::TRANSFER_ENCODING)
                && response
                    .headers()
                    .contains_key(http::header::CONTENT_LENGTH)
            {
                return Err(Error::Protocol {
                    host,
                    reason: "both Content-Length and Transfer-Encoding framed the response"
                        .to_owned(),
                });
            }
            if head_bytes > self.shared.settings.max_header_bytes {
                return Err(Error::TooLarge {
                    host,
                    what: "headers",
                    limit: self.shared.settings.max_header_bytes,
                });
            }
            if limits.max_redirects > 0 && matches!(status, 301 | 302 | 303 | 307 | 308) {
                if redirects >= limits.max_redirects {
                    return Err(Error::TooManyRedirects {
                        host,
                        limit: limits.max_redirects,
                    });
                }
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|location| location.to_str().ok())
                    .and_then(|location| url.join(location).ok())
                    .filter(|next| matches!(next.scheme(), "http" | "https"))
                    .ok_or_else(|| Error::Protocol {
                        host: host.clone(),
                        reason: format!("redirect {status} without a usable http(s) Location"),
                    })?;
                if next.origin() != url.origin() {
                    strip_credentials(&mut headers);
                }
                let becomes_get =
                    status == 303 || (matches!(status, 301 | 302) && method == Method::POST);
                if becomes_get && method != Method::HEAD {
                    method = Method::GET;
                    body = Bytes::new();
                    headers.remove(CONTENT_TYPE);
                    headers.remove(CONTENT_LENGTH);
                }
                tracing::debug!(status, to = %next.host_str().unwrap_or_default(), "redirect");
                url = next;
                redirects += 1;
                continue;
            }
            set_phase(Phase::Body);
            let (parts, incoming) = response.into_parts();
            let mut response_headers = parts.headers;
            let raw =
                read_limited(incoming, &response_headers, limits.max_body_bytes, &host).await?;
            let body = decode(raw, &mut response_headers, limits.max_body_bytes, &host)?;
            return Ok(Response {
                status,
                version: match parts.version {
                    http::Version::HTTP_2 => HttpVersion::Http2,
                    _ => HttpVersion::Http1,
                },
                headers: response_headers,
                body,
                url,
                timings: Timings {
                    total: started.elapsed(),
                    headers: headers_at,
                    attempts,
                    redirects,
                },
            });
        }
    }

    /// One hop, retried where that is safe.
    #[allow(clippy::too_many_arguments)] // the hop's state, threaded through the retry loop
    async fn attempts(
        &self,
        pool: &Pool,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: &Bytes,
        limits: &Limits,
        deadline: Instant,
        attempts: &mut u32,
    ) -> Result<http::Response<Incoming>, Error> {
        let host = host_of(url);
        if let Err(ip) = self.shared.settings.guard.check_url(url) {
            return Err(Error::Blocked { host, ip });
        }
        let uri: http::Uri = url.as_str().parse().map_err(|_| {
            Error::InvalidRequest(format!("`{host}` is not a valid request target"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        // A user name or password in a URL would never be sent (hyper
        // drops it) but would be kept in the connection pool's key, which
        // its debug log prints.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidRequest(format!(
                "the URL to `{host}` holds a user name or password; a credential of type `basic` sends them"
            )));
        }
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut retries = 0;
        loop {
            *attempts += 1;
            set_phase(Phase::Headers);
            let mut request = http::Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = headers.clone();
            let span = tracing::debug_span!("http.attempt", attempt = *attempts, method = %method, host = %host);
            let outcome = pool.request(request).instrument(span).await;
            let may_retry = retries < limits.max_retries;
            let wait = match &outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::debug!(attempt = *attempts, status, "attempt answered");
                    if !(may_retry && idempotent && matches!(status, 429 | 502 | 503 | 504)) {
                        return outcome.map_err(|error| {
                            classify(&error, &host, self.shared.settings.max_header_bytes)
                        });
                    }
                    retry_after(response.headers()).unwrap_or_else(|| backoff(retries))
                }
                Err(error) => {
                    let failure = classify(error, &host, self.shared.settings.max_header_bytes);
                    tracing::debug!(attempt = *attempts, error = %failure, "attempt failed");
                    let nothing_sent =
                        error.is_connect() && matches!(failure, Error::Connect { .. });
                    let reset = !error.is_connect() && is_reset(error);
                    if !(may_retry && (nothing_sent || (idempotent && reset))) {
                        return Err(failure);
                    }
                    backoff(retries)
                }
            };
            if Instant::now() + wait >= deadline {
                // Waiting would pass the deadline: the last answer stands.
                return outcome.map_err(|error| {
                    classify(&error, &host, self.shared.settings.max_header_bytes)
                });
            }
            drop(outcome);
            set_phase(Phase::Backoff);
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}

/// Drops what authenticates the caller before a request leaves its origin.
fn strip_credentials(headers: &mut HeaderMap) {
    for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
        headers.remove(name);
    }
    let sensitive: Vec<_> = headers
        .iter()
        .filter(|(_, value)| value.is_sensitive())
        .map(|(name, _)| name.clone())
        .collect();
    for name in sensitive {
        headers.remove(name);
    }
}

/// Exponential backoff with jitter: 100 ms, 200 ms, 400 ms... capped at
/// 2 s, each between half and all of that.
fn backoff(retry: u32) -> Duration {
    let ceiling = 100u64.saturating_mul(1 << retry.min(5)).min(2_000);
    Duration::from_millis(ceiling / 2 + fastrand::u64(0..=ceiling / 2))
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "(no host)".to_owned(),
    }
}

fn is_reset(error: &legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>()
            && (hyper_error.is_incomplete_message() || hyper_error.is_canceled())
        {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = next_in_chain(current);
    }
    false
}

/// The next error in a chain. `io::Error` hides the error it wraps from
/// `source()` (rustls's handshake errors arrive wrapped twice), so look
/// inside it.
fn next_in_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
        None => error.source(),
    }
}

/// Turns hyper-util's error into ours by what its chain holds.
fn classify(error: &legacy::Error, host: &str, max_header_bytes: usize) -> Error {
    let host = host.to_owned();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(resolve) = current.downcast_ref::<ResolveError>() {
            return match resolve {
                ResolveError::Blocked { ip, .. } => Error::Blocked { host, ip: *ip },
                ResolveError::Dns { source, .. } => Error::Dns {
                    host,
                    reason: source.to_string(),
                },
            };
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Error::Tls {
                host,
                reason: tls.to_string(),
            };
        }
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>() {
            // hyper 1 has no predicate for an oversized head; its message is stable.
            if hyper_error.is_parse() && hyper_error.to_string().contains("too large") {
                return Error::TooLarge {
                    host,
                    what: "headers",
                    limit: max_header_bytes,
                };
            }
            if hyper_error.is_parse() || hyper_error.is_incomplete_message() {
                return Error::Protocol {
                    host,
                    reason: innermost(current),
                };
            }
        }
        source = next_in_chain(current);
    }
    if error.is_connect() {
        Error::Connect {
            host,
            reason: innermost(error),
        }
    } else {
        Error::Protocol {
            host,
            reason: innermost(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let date = httpdate::fmt_http_date(later);
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&date).expect("header"));
        let wait = retry_after(&headers).expect("date");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means now"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for retry in 0..10 {
            let ceiling = Duration::from_millis((100u64 << retry.min(5)).min(2_000));
            let wait = backoff(retry);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "retry {retry}: {wait:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_query() {
        let url = Url::parse("https://api.example.com/v1/search?api_key=secret").expect("url");
        let request = Request::new(Method::GET, url);
        let shown = format!("{request:?}");
        assert!(
            shown.contains("https://api.example.com/v1/search?[redacted]"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
