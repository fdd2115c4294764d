//! A closed-loop load generator: `connections` keep-alive HTTP/1.1
//! connections, each sending its next request as soon as the last answer
//! is read, for a fixed time. It runs on one thread of its own, so it takes
//! at most one core from the server it measures.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::Samples;

/// What the generator sends, and what a good answer contains.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) body: Bytes,
    pub(crate) expect: &'static str,
}

/// The outcome of a run: latencies of good answers, and bad ones counted.
#[derive(Debug)]
pub(crate) struct LoadResult {
    pub(crate) samples: Samples,
    pub(crate) errors: usize,
}

/// Runs the load for `duration` on a thread of its own.
pub(crate) fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let target = target.clone();
    std::thread::Builder::new()
        .name("bench-load".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drive(target, connections, duration))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))?
}

async fn drive(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        tasks.push(tokio::spawn(connection(target.clone(), until)));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut own, own_errors) = task.await??;
        latencies.append(&mut own);
        errors += own_errors;
    }
    Ok(LoadResult {
        samples: Samples::new(latencies, started.elapsed()),
        errors,
    })
}

async fn connection(target: Target, until: Instant) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut sender = None;
    while Instant::now() < until {
        let ready = match sender.take() {
            Some(sender) => sender,
            None => {
                let stream = TcpStream::connect(target.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
            }
        };
        let mut ready: hyper::client::conn::http1::SendRequest<Full<Bytes>> = ready;
        if ready.ready().await.is_err() {
            errors += 1;
            continue;
        }
        let request = http::Request::post(target.path.as_str())
            .header(http::header::HOST, "127.0.0.1")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(target.body.clone()))?;
        let sent = Instant::now();
        let answer = match ready.send_request(request).await {
            Ok(response) => {
                let ok = response.status() == http::StatusCode::OK;
                response
                    .into_body()
                    .collect()
                    .await
                    .ok()
                    .filter(|_| ok)
                    .map(|body| body.to_bytes())
            }
            Err(_) => None,
        };
        let latency = sent.elapsed();
        match answer {
            Some(body) if contains(&body, target.expect.as_bytes()) => {
                latencies.push(latency);
                sender = Some(ready);
            }
            // A wrong answer or a broken connection: counted, and the next
            // request goes on a new connection.
            _ => errors += 1,
        }
    }
    Ok((latencies, errors))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
