//! TLS with a CA made in the test: HTTP/2 by ALPN, and untrusted servers refused.

use patchbay_transport::{Client, Error, HttpVersion, NetworkGuard};

use crate::get;
use patchbay_tests::servers::{self, Pki, reply};

fn trusting(pki: &Pki) -> Client {
    Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1", "localhost"]).expect("allow list"))
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .expect("ca")
        .build()
        .expect("client")
}

#[tokio::test]
async fn http2_over_tls() {
    let pki = Pki::new();
    let server = servers::https(
        |request| async move { reply(200, format!("{:?}", request.version())) },
        &pki,
    )
    .await;
    let client = trusting(&pki);
    for _ in 0..3 {
        let response = client
            .send(get(server.https_url("/")))
            .await
            .expect("response");
        assert_eq!(response.version, HttpVersion::Http2);
        assert_eq!(&response.body[..], b"HTTP/2.0");
    }
    assert_eq!(server.accepts(), 1, "one multiplexed connection");
}

#[tokio::test]
async fn untrusted_certificates_are_refused() {
    let pki = Pki::new();
    let server = servers::https(|_| async { reply(200, "{}") }, &pki).await;
    let client = crate::client();
    let error = client
        .send(get(server.https_url("/")))
        .await
        .expect_err("untrusted");
    assert!(matches!(error, Error::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn a_client_identity_is_presented_for_mutual_tls() {
    let pki = Pki::new();
    let server = servers::mutual_tls(|_| async { reply(200, "hello, client") }, &pki).await;
    let (certificate, key) = &pki.client_pem;
    let with_identity = Client::builder()
        .guard(NetworkGuard::with_allowed(["localhost"]).expect("allow list"))
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .expect("ca")
        .client_identity_pem(certificate.as_bytes(), key.as_bytes())
        .expect("identity")
        .build()
        .expect("client");
    let response = with_identity
        .send(get(server.https_url("/")))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"hello, client");
    let mut request = get(server.https_url("/"));
    request.limits.max_retries = 0;
    let refused = trusting(&pki).send(request).await;
    assert!(refused.is_err(), "a client without identity is refused");
}

#[tokio::test]
async fn a_call_can_carry_its_own_identity() {
    let pki = Pki::new();
    let server = servers::mutual_tls(|_| async { reply(200, "hello, caller") }, &pki).await;
    let (certificate, key) = &pki.client_pem;
    let identity =
        patchbay_transport::TlsIdentity::from_pem(certificate.as_bytes(), key.as_bytes())
            .expect("identity");
    assert!(
        !format!("{identity:?}").contains("PRIVATE"),
        "no key material in Debug"
    );
    let client = trusting(&pki);
    for _ in 0..3 {
        let mut request = get(server.https_url("/"));
        request.identity = Some(identity.clone());
        let response = client.send(request).await.expect("response");
        assert_eq!(&response.body[..], b"hello, caller");
    }
    assert_eq!(
        server.accepts(),
        1,
        "calls with one identity share a connection"
    );
    let mut anonymous = get(server.https_url("/"));
    anonymous.limits.max_retries = 0;
    assert!(
        client.send(anonymous).await.is_err(),
        "the client's own pool has no identity"
    );
}
