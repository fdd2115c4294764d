//! Calls through a CONNECT proxy; the guard still judges the destination.

use patchbay_transport::{Client, Error, NetworkGuard, ProxyConfig};

use crate::get;
use patchbay_tests::servers::{self, Pki, reply};

fn proxied(proxy: &servers::Server, no_proxy: Option<&str>, pki: Option<&Pki>) -> Client {
    let url = format!("http://{}", proxy.addr);
    let config = ProxyConfig::from_lookup(|name| match name {
        "HTTP_PROXY" | "HTTPS_PROXY" => Some(url.clone()),
        "NO_PROXY" => no_proxy.map(str::to_owned),
        _ => None,
    });
    let mut builder = Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1", "localhost"]).expect("allow"))
        .proxy(config);
    if let Some(pki) = pki {
        builder = builder
            .add_root_certificates_pem(pki.ca_pem.as_bytes())
            .expect("ca");
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn http_calls_go_through_the_tunnel() {
    let (proxy, targets) = servers::connect_proxy().await;
    let upstream = servers::http(|_| async { reply(200, "via proxy") }).await;
    let response = proxied(&proxy, None, None)
        .send(get(upstream.url("/")))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"via proxy");
    assert_eq!(
        *targets.lock().expect("targets"),
        vec![upstream.addr.to_string()]
    );
}

#[tokio::test]
async fn https_calls_go_through_the_tunnel() {
    let pki = Pki::new();
    let (proxy, targets) = servers::connect_proxy().await;
    let upstream = servers::https(|_| async { reply(200, "tls via proxy") }, &pki).await;
    let response = proxied(&proxy, None, Some(&pki))
        .send(get(upstream.https_url("/")))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"tls via proxy");
    assert_eq!(targets.lock().expect("targets").len(), 1);
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let (proxy, targets) = servers::connect_proxy().await;
    let upstream = servers::http(|_| async { reply(200, "direct") }).await;
    let response = proxied(&proxy, Some("127.0.0.1"), None)
        .send(get(upstream.url("/")))
        .await
        .expect("response");
    assert_eq!(&response.body[..], b"direct");
    assert!(targets.lock().expect("targets").is_empty());
}

#[tokio::test]
async fn the_guard_still_applies_behind_a_proxy() {
    let (proxy, targets) = servers::connect_proxy().await;
    let strict = Client::builder()
        .proxy(ProxyConfig {
            http: Some(format!("http://{}", proxy.addr)),
            ..ProxyConfig::default()
        })
        .build()
        .expect("client");
    for url in ["http://169.254.169.254/latest/", "http://localhost:9/"] {
        let error = strict
            .send(get(url::Url::parse(url).expect("url")))
            .await
            .expect_err("blocked");
        assert!(matches!(error, Error::Blocked { .. }), "{url}: {error:?}");
    }
    assert!(
        targets.lock().expect("targets").is_empty(),
        "the proxy was never asked"
    );
}
