//! Real local servers for the integration tests: hyper (plain and TLS, HTTP/1.1
//! and HTTP/2) and raw TCP for servers that break HTTP on purpose. All bind
//! 127.0.0.1 on port 0.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub type Reply = http::Response<Full<Bytes>>;
type Handler = Arc<
    dyn Fn(http::Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync,
>;

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }

    pub fn https_url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("https://localhost:{}{path}", self.addr.port())).expect("url")
    }

    /// TCP connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .expect("response")
}

/// A hyper server answering with `handler`.
pub async fn http<F, Fut>(handler: F) -> Server
where
    F: Fn(http::Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    serve(boxed(handler), None).await
}

/// A hyper server behind TLS (ALPN h2 and http/1.1).
pub async fn https<F, Fut>(handler: F, pki: &Pki) -> Server
where
    F: Fn(http::Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    serve(boxed(handler), Some(pki.acceptor())).await
}

/// A hyper server behind TLS that requires a client certificate.
pub async fn mutual_tls<F, Fut>(handler: F, pki: &Pki) -> Server
where
    F: Fn(http::Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    serve(boxed(handler), Some(pki.acceptor_with(true))).await
}

fn boxed<F, Fut>(handler: F) -> Handler
where
    F: Fn(http::Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |request| Box::pin(handler(request)))
}

async fn serve(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepts);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Server {
        addr,
        accepts,
        task,
    }
}

/// A TCP server that runs `script` on every connection, for servers that
/// misbehave on purpose.
pub async fn raw<F, Fut>(script: F) -> Server
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepts);
    let script = Arc::new(script);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn((script)(stream));
        }
    });
    Server {
        addr,
        accepts,
        task,
    }
}

/// Reads a request head (through the blank line) from a raw connection.
pub async fn read_head(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A test CA and a server certificate for `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    /// A client certificate and key (PEM) issued by the same CA.
    pub client_pem: (String, String),
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { .. }")
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    pub fn new() -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "patchbay test CA");
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server = server_params
            .signed_by(&server_key, &ca)
            .expect("server cert");
        let client_params = rcgen::CertificateParams::new(vec!["patchbay-client".to_owned()])
            .expect("client params");
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let client = client_params
            .signed_by(&client_key, &ca)
            .expect("client cert");
        Self {
            ca_pem: ca.pem(),
            client_pem: (client.pem(), client_key.serialize_pem()),
            server_chain: vec![server.der().clone()],
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        }
    }

    /// The client certificate and key as a base64 PKCS#12 bundle.
    pub fn client_pkcs12(&self, password: &str) -> String {
        use base64::Engine as _;
        let (certificate, key) = &self.client_pem;
        let certificate = rustls::pki_types::CertificateDer::from_pem_slice(certificate.as_bytes())
            .expect("certificate pem");
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(key.as_bytes())
            .expect("pkcs8 pem");
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8; 20],
            p12_keystore::PrivateKey::from_der(key.secret_pkcs8_der()).expect("key"),
            [p12_keystore::Certificate::from_der(certificate.as_ref()).expect("certificate")],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "client",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let bundle = store.writer(password).write().expect("pkcs12");
        base64::engine::general_purpose::STANDARD.encode(bundle)
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor_with(false)
    }

    /// An acceptor that requires a client certificate from this CA.
    pub fn acceptor_with(&self, require_client: bool) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("protocols");
        let builder = if require_client {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in
                rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes())
            {
                roots.add(certificate.expect("ca pem")).expect("root");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// A CONNECT proxy that tunnels to 127.0.0.1 only, recording each target.
pub async fn connect_proxy() -> (Server, Arc<std::sync::Mutex<Vec<String>>>) {
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&targets);
    let server = raw(move |mut stream| {
        let seen = Arc::clone(&seen);
        async move {
            use tokio::io::AsyncWriteExt;
            let head = read_head(&mut stream).await;
            let target = head
                .strip_prefix("CONNECT ")
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_default()
                .to_owned();
            seen.lock().expect("targets").push(target.clone());
            let port = target.rsplit(':').next().unwrap_or_default();
            let Ok(mut upstream) = TcpStream::connect(format!("127.0.0.1:{port}")).await else {
                let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            };
            if stream
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await
                .is_ok()
            {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            }
        }
    })
    .await;
    (server, targets)
}
