//! The connector stack: a resolver that applies the network guard to every
//! DNS answer, hyper-util's TCP connector, rustls, and a thin layer that
//! tells the call which phase it is in.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::error::Phase;
use crate::guard::NetworkGuard;

/// Why the resolver gave no address to dial.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("cannot resolve `{host}`: {source}")]
    Dns {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{host}` resolves to {ip}, which the network guard refuses")]
    Blocked { host: String, ip: IpAddr },
}

/// Turns a host name into the addresses to dial. The client asks on every
/// new connection (it keeps no answers of its own), and the network guard
/// judges each answer, so a resolver cannot open what the guard refuses.
///
/// Platforms plug in their own DNS (a caching resolver, service discovery)
/// with [`ClientBuilder::resolver`](crate::ClientBuilder::resolver); the
/// default is [`SystemResolver`].
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `host` stands for, in the order to try them.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|address| address.ip())
                .collect())
        })
    }
}

/// Resolves, then keeps only the addresses the guard permits. The TCP
/// connector dials exactly these, so the check and the connection see the
/// same answer.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    guard: Arc<NetworkGuard>,
    resolver: Arc<dyn Resolve>,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = Arc::clone(&self.guard);
        let resolver = Arc::clone(&self.resolver);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = resolver
                .resolve(&host)
                .await
                .map_err(|source| ResolveError::Dns {
                    host: host.clone(),
                    source,
                })?;
            let permitted: Vec<SocketAddr> = addresses
                .iter()
                .filter(|ip| guard.permits(Some(&host), **ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            match (permitted.is_empty(), addresses.first()) {
                (false, _) => Ok(permitted.into_iter()),
                (true, Some(refused)) => Err(ResolveError::Blocked { host, ip: *refused }),
                (true, None) => Err(ResolveError::Dns {
                    host,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
                }),
            }
        })
    }
}

/// What the connector needs to know about the call it connects for.
#[derive(Debug)]
pub(crate) struct CallState {
    phase: AtomicU8,
    connect_timeout: Duration,
}

impl CallState {
    pub(crate) fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            phase: AtomicU8::new(Phase::Connect as u8),
            connect_timeout,
        })
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }
}

tokio::task_local! {
    /// The call running on this task.
    pub(crate) static CALL: Arc<CallState>;
}

pub(crate) fn set_phase(phase: Phase) {
    let _ = CALL.try_with(|call| call.phase.store(phase as u8, Ordering::Relaxed));
}

/// Marks the connect phase (DNS, TCP, TLS) of the call that asked for a new
/// connection, and bounds it by the call's connect timeout. A pooled
/// connection skips it entirely. (When hyper-util finishes a connection in
/// the background, no call is attached, and the TCP connector's own
/// timeout applies.)
#[derive(Clone, Debug)]
pub(crate) struct PhaseConnector<C>(C);

impl<C, R> Service<http::Uri> for PhaseConnector<C>
where
    C: Service<http::Uri, Response = R>,
    C::Future: Send + 'static,
    C::Error: From<std::io::Error>,
{
    type Response = R;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<R, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        set_phase(Phase::Connect);
        let timeout = CALL.try_with(|call| call.connect_timeout).ok();
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let connection = match timeout {
                Some(timeout) => match tokio::time::timeout(timeout, connecting).await {
                    Ok(connection) => connection,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no connection within the {}ms connect timeout",
                            timeout.as_millis()
                        ),
                    )
                    .into()),
                },
                None => connecting.await,
            };
            set_phase(Phase::Headers);
            connection
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Proxies for outbound calls, as `HTTP_PROXY`, `HTTPS_PROXY` and
/// `NO_PROXY` describe them. Both kinds are used through a CONNECT tunnel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The proxy for `http://` URLs.
    pub http: Option<String>,
    /// The proxy for `https://` URLs.
    pub https: Option<String>,
    /// Hosts, domains and ranges reached directly (`NO_PROXY` syntax).
    pub no_proxy: Option<String>,
}

impl ProxyConfig {
    /// Reads the usual variables through `lookup` (upper case first, then
    /// lower case). The caller chooses where they come from: the library
    /// itself never reads the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str| {
            lookup(name)
                .or_else(|| lookup(&name.to_ascii_lowercase()))
                .filter(|value| !value.trim().is_empty())
        };
        Self {
            http: read("HTTP_PROXY"),
            https: read("HTTPS_PROXY"),
            no_proxy: read("NO_PROXY"),
        }
    }

    fn matcher(&self) -> Option<Matcher> {
        if self.http.is_none() && self.https.is_none() {
            return None;
        }
        let mut builder = Matcher::builder();
        if let Some(http) = &self.http {
            builder = builder.http(http);
        }
        if let Some(https) = &self.https {
            builder = builder.https(https);
        }
        if let Some(no_proxy) = &self.no_proxy {
            builder = builder.no(no_proxy);
        }
        Some(builder.build())
    }
}

/// Opens the TCP connection of a call: directly, through the guarded
/// resolver, or through a CONNECT tunnel when a proxy applies. The proxy
/// itself may be a private address (that is where proxies live); the
/// destination is still judged by the guard, on its own DNS answer.
#[derive(Clone)]
pub(crate) struct Dial {
    direct: HttpConnector<GuardedResolver>,
    resolver: GuardedResolver,
    proxy: Option<(Arc<Matcher>, HttpConnector)>,
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial")
            .field("proxied", &self.proxy.is_some())
            .finish()
    }
}

impl Service<http::Uri> for Dial {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let intercept = self
            .proxy
            .as_ref()
            .and_then(|(matcher, plain)| Some((matcher.intercept(&uri)?, plain.clone())));
        let Some((intercept, plain)) = intercept else {
            let connecting = self.direct.call(uri);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let mut tunnel = Tunnel::new(intercept.uri().clone(), plain);
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let mut resolver = self.resolver.clone();
        Box::pin(async move {
            if let Some(host) = uri.host()
                && host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_err()
            {
                let name: Name = host.parse()?;
                resolver.call(name).await?;
            }
            tunnel.call(uri).await.map_err(Into::into)
        })
    }
}

pub(crate) type Connector = PhaseConnector<HttpsConnector<Dial>>;

pub(crate) fn connector(
    guard: Arc<NetworkGuard>,
    resolver: Arc<dyn Resolve>,
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    proxy: &ProxyConfig,
) -> Connector {
    let resolver = GuardedResolver { guard, resolver };
    let mut direct = HttpConnector::new_with_resolver(resolver.clone());
    direct.enforce_http(false);
    direct.set_nodelay(true);
    direct.set_connect_timeout(Some(connect_timeout));
    let proxy = proxy.matcher().map(|matcher| {
        let mut plain = HttpConnector::new();
        plain.set_nodelay(true);
        plain.set_connect_timeout(Some(connect_timeout));
        (Arc::new(matcher), plain)
    });
    let dial = Dial {
        direct,
        resolver,
        proxy,
    };
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(dial);
    PhaseConnector(https)
}
