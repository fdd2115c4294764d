//! Integration tests of `patchbay-transport` against real local servers.

mod deadlines;
mod faults;
mod guard;
mod proxy;
mod redirects;
mod responses;
mod retries;
mod tls;

use std::time::Duration;

use http::Method;
use patchbay_transport::{Client, NetworkGuard, Request};

/// A client allowed to reach the loopback test servers.
fn client() -> Client {
    Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1", "localhost"]).expect("allow list"))
        .build()
        .expect("client")
}

fn get(url: url::Url) -> Request {
    Request::new(Method::GET, url)
}

/// A request with a short deadline, for tests that wait for it.
fn with_deadline(mut request: Request, deadline: Duration) -> Request {
    request.limits.deadline = deadline;
    request
}
