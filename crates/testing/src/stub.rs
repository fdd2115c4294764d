//! The local upstream a test runs against: an HTTP CONNECT proxy on
//! 127.0.0.1 that answers every call itself. The engine is pointed at it
//! as its proxy and trusts its throwaway CA, so a call to
//! `https://kb.example.com/search` goes through the whole transport (the
//! guard, the tunnel, TLS with that host's name, HTTP/1.1 or HTTP/2) and
//! arrives here as a request for that URL.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchbay_engine::transport::{ProxyConfig, Resolve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request body the stub reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A call as it reached the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `https://host[:port]/path?query` (the port only when not the
    /// scheme's default).
    pub url: String,
    /// Headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl StubRequest {
    /// `METHOD URL`, the way tests and recordings name a call.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// An answer to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubResponse {
    /// The status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// A boxed future, for [`Answer`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers the stub's calls: from a test case, from recordings, or by
/// asking the real upstream.
pub trait Answer: Send + Sync + 'static {
    /// The answer to `request`, or why there is none (the call then gets a
    /// 501 and the test fails with that reason).
    fn answer<'a>(
        &'a self,
        request: &'a StubRequest,
    ) -> BoxFuture<'a, Result<StubResponse, String>>;

    /// The call as the stub names it when it has no answer (in
    /// [`StubUpstream::take_unanswered`] and the 501 it sends back):
    /// `METHOD URL`. An answer that knows the bot's secrets masks them
    /// here, since the URL may carry an API key.
    fn shown_line(&self, request: &StubRequest) -> String {
        request.line()
    }
}

/// The running stub; stops when dropped.
pub struct StubUpstream {
    addr: SocketAddr,
    ca_pem: String,
    unanswered: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for StubUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for StubUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the stub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    /// No loopback port.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[from] std::io::Error),
    /// The throwaway CA could not be made.
    #[error("cannot make the test CA: {0}")]
    Certificate(String),
}

impl StubUpstream {
    /// Starts the stub on 127.0.0.1 with `answers`.
    pub async fn start(answers: Arc<dyn Answer>) -> Result<Self, StubError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let authority = Arc::new(Authority::new()?);
        let ca_pem = authority.ca_pem.clone();
        let unanswered = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            answers,
            authority,
            unanswered: Arc::clone(&unanswered),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(error) = shared.tunnel(stream).await {
                        tracing::debug!(%error, "stub connection ended");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            ca_pem,
            unanswered,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy settings that send every call here.
    pub fn proxy(&self) -> ProxyConfig {
        let url = format!("http://{}", self.addr);
        ProxyConfig {
            http: Some(url.clone()),
            https: Some(url),
            no_proxy: None,
        }
    }

    /// The CA (PEM) the engine must trust for calls to reach the stub.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The calls that got no answer so far, each with its reason; taken.
    pub fn take_unanswered(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .unanswered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// Resolves every name to a documentation address (RFC 5737), so that the
/// network guard judges names as public, as their real answers would be;
/// the stub is the proxy, so that address is never dialled. `localhost`
/// stays loopback, so a bot still needs `network.allow` for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct StubResolver;

impl Resolve for StubResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost");
        let ip = if loopback {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
        };
        Box::pin(std::future::ready(Ok(vec![ip])))
    }
}

struct Shared {
    answers: Arc<dyn Answer>,
    authority: Arc<Authority>,
    unanswered: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    /// One proxy connection: `CONNECT host:port`, then TLS or plain HTTP
    /// inside the tunnel.
    async fn tunnel(self: Arc<Self>, mut stream: TcpStream) -> Result<(), String> {
        let head = read_head(&mut stream).await?;
        let target = head
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| "not a CONNECT request".to_owned())?
            .to_owned();
        stream
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .map_err(|error| error.to_string())?;
        let mut first = [0u8; 1];
        let tls =
            stream.peek(&mut first).await.map_err(|e| e.to_string())? == 1 && first[0] == 0x16;
        let (host, port) = split_target(&target);
        let scheme = if tls { "https" } else { "http" };
        let default_port = if tls { 443 } else { 80 };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let origin = if port == default_port {
            format!("{scheme}://{shown_host}")
        } else {
            format!("{scheme}://{shown_host}:{port}")
        };
        let shared = Arc::clone(&self);
        let service = service_fn(move |request: http::Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let origin = origin.clone();
            async move { Ok::<_, std::convert::Infallible>(shared.respond(&origin, request).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if tls {
            let acceptor = self.authority.acceptor(host)?;
            let stream = acceptor.accept(stream).await.map_err(|e| e.to_string())?;
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
                .map_err(|e| e.to_string())
        } else {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
                .map_err(|e| e.to_string())
        }
    }

    async fn respond(
        &self,
        origin: &str,
        request: http::Request<Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return plain(400, format!("patchbay test: cannot read the body: {error}"));
            }
        };
        let request = StubRequest {
            method: parts.method.as_str().to_owned(),
            url: format!(
                "{origin}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            ),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        match self.answers.answer(&request).await {
            Ok(answer) => {
                let mut response = http::Response::new(Full::new(answer.body));
                *response.status_mut() =
                    http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::OK);
                for (name, value) in answer.headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::try_from(name.as_str()),
                        http::HeaderValue::try_from(value.as_str()),
                    ) {
                        response.headers_mut().append(name, value);
                    }
                }
                response
            }
            Err(reason) => {
                let message = format!("{}: {reason}", self.answers.shown_line(&request));
                self.unanswered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(message.clone());
                plain(501, format!("patchbay test: no answer for {message}"))
            }
        }
    }
}

fn plain(status: u16, text: String) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
}

/// `host:port` (or `[v6]:port`) into its parts.
fn split_target(target: &str) -> (&str, u16) {
    match target.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => (
            host.trim_start_matches('[').trim_end_matches(']'),
            port.parse().unwrap_or(443),
        ),
        _ => (target, 443),
    }
}

/// Reads a request head, up to 16 KiB.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err("request head too large".to_owned());
        }
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err("closed before the head ended".to_owned()),
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The throwaway CA and the certificates it issues, one per host.
struct Authority {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    ca_pem: String,
    acceptors: Mutex<HashMap<String, tokio_rustls::TlsAcceptor>>,
}

impl Authority {
    fn new() -> Result<Self, StubError> {
        let error = |e: rcgen::Error| StubError::Certificate(e.to_string());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(error)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "patchbay test upstream CA");
        let key = rcgen::KeyPair::generate().map_err(error)?;
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).map_err(error)?;
        Ok(Self {
            ca_pem: issuer.pem(),
            issuer,
            acceptors: Mutex::new(HashMap::new()),
        })
    }

    /// A TLS acceptor with a certificate for `host` (made once per host).
    fn acceptor(&self, host: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
        let mut acceptors = self
            .acceptors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(acceptor) = acceptors.get(host) {
            return Ok(acceptor.clone());
        }
        let params =
            rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(|e| e.to_string())?;
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        acceptors.insert(host.to_owned(), acceptor.clone());
        Ok(acceptor)
    }
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn connect_targets_split_into_host_and_port() {
        assert_eq!(split_target("kb.example.com:443"), ("kb.example.com", 443));
        assert_eq!(split_target("127.0.0.1:8080"), ("127.0.0.1", 8080));
        assert_eq!(split_target("[::1]:8443"), ("::1", 8443));
        assert_eq!(split_target("kb.example.com"), ("kb.example.com", 443));
    }
}
