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

/// Resolves with the system resolver, then keeps only the addresses the
/// guard permits. The TCP connector dials exactly these, so the check and
/// the connection see the same answer.
#[derive(Clone, Debug)]
pub(crate) struct GuardedResolver {
    guard: Arc<NetworkGuard>,
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
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Dns {
                    host: host.clone(),
                    source,
                })?
                .collect();
            let permitted: Vec<SocketAddr> = addresses
                .iter()
                .copied()
                .filter(|address| guard.permits(Some(&host), address.ip()))
                .collect();
            match (permitted.is_empty(), addresses.first()) {
                (false, _) => Ok(permitted.into_iter()),
                (true, Some(refused)) => Err(ResolveError::Blocked {
                    host,
                    ip: refused.ip(),
                }),
                (true, None) => Err(ResolveError::Dns {
                    host,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
                }),
            }
        })
    }
}

tokio::task_local! {
    /// The phase of the call running on this task, for timeout errors.
    pub(crate) static PHASE: Arc<AtomicU8>;
}

pub(crate) fn set_phase(phase: Phase) {
    let _ = PHASE.try_with(|current| current.store(phase as u8, Ordering::Relaxed));
}

/// Marks the connect phase (DNS, TCP, TLS) of the call that asked for a
/// new connection. A pooled connection skips it entirely.
#[derive(Clone, Debug)]
pub(crate) struct PhaseConnector<C>(C);

impl<C, R> Service<http::Uri> for PhaseConnector<C>
where
    C: Service<http::Uri, Response = R>,
    C::Future: Send + 'static,
{
    type Response = R;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<R, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        set_phase(Phase::Connect);
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let connection = connecting.await;
            set_phase(Phase::Headers);
            connection
        })
    }
}

pub(crate) type Connector = PhaseConnector<HttpsConnector<HttpConnector<GuardedResolver>>>;

pub(crate) fn connector(
    guard: Arc<NetworkGuard>,
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> Connector {
    let mut tcp = HttpConnector::new_with_resolver(GuardedResolver { guard });
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    PhaseConnector(https)
}
