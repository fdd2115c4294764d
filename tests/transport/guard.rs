//! The network guard: every non-public address class refused, in every
//! spelling, unless the allow list names it.

use http::Method;
use patchbay_transport::{Client, Error, NetworkGuard, Request};

use patchbay_tests::servers::{self, reply};

/// URLs whose host must be refused by default. Odd IPv4 spellings are
/// normalised by the URL parser, then judged.
const REFUSED: &[&str] = &[
    "http://0.0.0.0/",
    "http://0.1.2.3/",
    "http://127.0.0.1/",
    "http://127.255.255.254/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0177.0.0.01/",
    "http://127.1/",
    "http://127.0.1/",
    "http://10.0.0.1/",
    "http://012.0.0.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://0xc0.0xa8.1.1/",
    "http://169.254.169.254/",
    "http://2852039166/",
    "http://100.64.0.1/",
    "http://100.127.255.255/",
    "http://192.0.0.8/",
    "http://198.18.0.1/",
    "http://198.19.255.255/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[::]/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[febf::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/",
    "https://127.0.0.1:8443/path?q=1",
];

/// Public addresses, in odd spellings too, that must pass.
const PERMITTED: &[&str] = &[
    "http://93.184.216.34/",
    "http://1572395042/",
    "http://8.8.8.8/",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[64:ff9b::808:808]/",
    "http://[2002:808:808::]/",
    "http://172.32.0.1/",
    "http://100.128.0.1/",
    "http://api.example.com/",
];

#[test]
fn every_non_public_spelling_is_refused() {
    let guard = NetworkGuard::new();
    for spelling in REFUSED {
        let url = url::Url::parse(spelling).expect(spelling);
        assert!(guard.check_url(&url).is_err(), "{spelling} slipped through");
    }
    assert!(REFUSED.len() >= 40);
}

#[test]
fn public_addresses_are_permitted() {
    let guard = NetworkGuard::new();
    for spelling in PERMITTED {
        let url = url::Url::parse(spelling).expect(spelling);
        assert!(guard.check_url(&url).is_ok(), "{spelling} was refused");
    }
}

#[test]
fn the_allow_list_opens_exactly_what_it_names() {
    let guard = NetworkGuard::with_allowed(["127.0.0.0/8", "::1", "10.1.2.3"]).expect("allow");
    let refused = |spelling: &str| {
        guard
            .check_url(&url::Url::parse(spelling).expect("url"))
            .is_err()
    };
    assert!(!refused("http://2130706433/"));
    assert!(!refused("http://[::ffff:127.0.0.1]/"));
    assert!(!refused("http://[::1]/"));
    assert!(!refused("http://10.1.2.3/"));
    assert!(refused("http://10.1.2.4/"));
    assert!(refused("http://169.254.169.254/"));
}

#[tokio::test]
async fn loopback_calls_are_refused_before_connecting_unless_allowed() {
    let server = servers::http(|_| async { reply(200, "{}") }).await;
    let strict = Client::new().expect("client");
    for host in ["127.0.0.1", "2130706433", "127.1", "localhost"] {
        let url = url::Url::parse(&format!("http://{host}:{}/", server.addr.port())).expect("url");
        let error = strict
            .send(Request::new(Method::GET, url))
            .await
            .expect_err("blocked");
        assert!(matches!(error, Error::Blocked { .. }), "{host}: {error:?}");
    }
    assert_eq!(server.accepts(), 0, "nothing was dialled");
    let allowed = Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1"]).expect("allow"))
        .build()
        .expect("client");
    for host in ["127.0.0.1", "2130706433", "127.1", "localhost"] {
        let url = url::Url::parse(&format!("http://{host}:{}/", server.addr.port())).expect("url");
        let response = allowed.send(Request::new(Method::GET, url)).await;
        assert_eq!(response.expect(host).status, 200);
    }
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_blocked() {
    let server = servers::http(|_| async {
        let mut response = reply(302, "");
        response.headers_mut().insert(
            "location",
            "http://169.254.169.254/latest/meta-data/"
                .parse()
                .expect("header"),
        );
        response
    })
    .await;
    let error = crate::client()
        .send(Request::new(Method::GET, server.url("/")))
        .await
        .expect_err("blocked");
    assert!(matches!(error, Error::Blocked { .. }), "{error:?}");
}
