//! RSS over SIGHUP reloads: `patchbay serve` re-reads the bench bot's file
//! (two scripts, templates, JSONPath) `count` times, each reload followed by
//! a few turns on the new version, and its RSS is read from `/proc` as it
//! goes. A reload that leaked its realm, its compiled scripts or its engine
//! would show as a slope.
//!
//! A reload is known to be done when `/metrics` shows the compilations one
//! reload makes (learnt from the first), so no SIGHUP is sent while the last
//! one is being handled (signals would coalesce).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::Target;
use crate::process::Server;

/// Turns run on each reloaded version before the next reload.
const TURNS_PER_RELOAD: usize = 4;

/// RSS read after every so many reloads, in KiB, with the reload count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reloads {
    pub(crate) count: usize,
    /// `(reloads done, RSS in KiB)`, from before the first.
    pub(crate) points: Vec<(usize, u64)>,
    /// Compilations counted by `/metrics` for one reload.
    pub(crate) compilations_per_reload: u64,
    pub(crate) elapsed: Duration,
}

pub(crate) async fn measure(
    server: &Server,
    target: &Target,
    count: usize,
) -> anyhow::Result<Reloads> {
    let started = Instant::now();
    let mut connection = Connection::open(target).await?;
    let every = (count / 100).max(1);
    let mut points = vec![(0, server.memory_kib().0)];
    let mut per_reload = 0;
    for done in 1..=count {
        let before = connection.compilations().await?;
        hangup(server.pid())?;
        if done == 1 {
            per_reload = settle(&mut connection, before).await?;
        } else {
            wait_for(&mut connection, before + per_reload).await?;
        }
        for _ in 0..TURNS_PER_RELOAD {
            connection.turn().await?;
        }
        if done % every == 0 || done == count {
            points.push((done, server.memory_kib().0));
        }
    }
    Ok(Reloads {
        count,
        points,
        compilations_per_reload: per_reload,
        elapsed: started.elapsed(),
    })
}

fn hangup(pid: u32) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .context("cannot run `kill -HUP`")?;
    anyhow::ensure!(status.success(), "`kill -HUP {pid}` failed ({status})");
    Ok(())
}

/// The first reload: waits for the counter to move and then stand still
/// for 300 ms; returns by how much it moved.
async fn settle(connection: &mut Connection, before: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = before;
    let mut still_since = Instant::now();
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "serve showed no reload within 60 s of SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = connection.compilations().await?;
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if last > before && still_since.elapsed() > Duration::from_millis(300) {
            return Ok(last - before);
        }
    }
}

async fn wait_for(connection: &mut Connection, compilations: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while connection.compilations().await? < compilations {
        anyhow::ensure!(
            Instant::now() < deadline,
            "serve did not finish a reload within 60 s of SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// One keep-alive connection to the server, for turns and `/metrics`.
struct Connection {
    target: Target,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(target: &Target) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self {
            target: target.clone(),
            sender,
        })
    }

    async fn send(&mut self, request: http::Request<Full<Bytes>>) -> anyhow::Result<Bytes> {
        if self.sender.ready().await.is_err() {
            *self = Self::open(&self.target).await?;
            self.sender.ready().await?;
        }
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status == http::StatusCode::OK, "answer {status}");
        Ok(body)
    }

    async fn turn(&mut self) -> anyhow::Result<()> {
        let request = http::Request::post(self.target.path.as_str())
            .header(http::header::HOST, "127.0.0.1")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.target.body.clone()))?;
        let body = self.send(request).await?;
        let expect = self.target.expect.as_bytes();
        anyhow::ensure!(
            body.windows(expect.len()).any(|window| window == expect),
            "a turn after a reload got a wrong answer"
        );
        Ok(())
    }

    /// `patchbay_compiled_total`, summed over its kinds.
    async fn compilations(&mut self) -> anyhow::Result<u64> {
        let request = http::Request::get("/metrics")
            .header(http::header::HOST, "127.0.0.1")
            .body(Full::new(Bytes::new()))?;
        let body = self.send(request).await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter(|line| line.starts_with("patchbay_compiled_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }
}
