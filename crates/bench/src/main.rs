//! `patchbay-bench`: the rows of `cargo xtask bench`, measured side by side
//! in one run against one local upstream (docs/benchmarks.md).
//!
//! 1. raw: a bare hyper client GET of the upstream's 2 KB JSON;
//! 2. invoke: `Engine::invoke` of the bench bot's integration;
//! 3. turn: a whole `run_turn`;
//! 4. proxy: a bare hyper server making the bot's upstream call and
//!    answering its body (`proxy.rs`), under the load `serve` gets;
//! 5. serve: `patchbay serve` under the closed-loop load generator, then
//!    its RSS over a soak of turns and over SIGHUP reloads (`reload.rs`);
//! 6. node, node-shared: the same turn in Node.js (bench/node/server.js),
//!    same load, with a new `vm` context per script run and with one
//!    context shared by every run;
//! 7. stored, stored-redis: a turn of a conversation the store keeps, in
//!    memory and in a real `redis-server`;
//! 8. oauth, oauth-redis: a turn whose OAuth 2 token is read from the
//!    cache, in memory and in Redis;
//! 9. context-base, context, context-redis: a turn whose script reads and
//!    writes the Conversation Context Service (memory, Redis), against the
//!    same turn without it, interleaved.
#![allow(clippy::print_stdout)] // a report printer

mod load;
mod process;
mod proxy;
mod reload;
mod stats;
mod stores;
mod upstream;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use patchbay_engine::credentials::{MemoryTokenCache, TokenCache};
use patchbay_engine::script::{RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use serde_json::{Value, json};

use crate::load::Target;
use crate::stats::Samples;

const BOT: &str = include_str!("../bench-bot.yaml");
const BOT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-bot.yaml");
const TOKEN: &str = "bench-token-value";
const TURN_BODY: &str = r#"{"interaction":"search","message":"password","state":{"conversationId":"bench","variables":{"locale":"en","query":"password reset"}}}"#;
const EXPECTED_REPLY: &str = "Here is what I found";

/// How much of everything to do.
#[derive(Clone, Copy, Debug)]
struct Budget {
    warmup: usize,
    calls: usize,
    connections: usize,
    load: Duration,
    /// Turns the memory soak runs through `serve`.
    soak_turns: usize,
    /// How long each load of the soak runs (RSS is read after each).
    soak_chunk: Duration,
    /// SIGHUP reloads `serve` gets, RSS read as they go.
    reloads: usize,
}

impl Budget {
    fn full() -> Self {
        Self {
            warmup: 2_000,
            calls: 20_000,
            connections: 64,
            load: Duration::from_secs(10),
            soak_turns: 100_000,
            soak_chunk: Duration::from_secs(1),
            reloads: 1_000,
        }
    }

    fn quick() -> Self {
        Self {
            warmup: 50,
            calls: 300,
            connections: 64,
            load: Duration::from_millis(1500),
            soak_turns: 2_000,
            soak_chunk: Duration::from_millis(250),
            reloads: 50,
        }
    }
}

struct Options {
    budget: Budget,
    quick: bool,
    /// Only the in-process rows (raw, invoke, turn): for profiling.
    engine_only: bool,
    patchbay: PathBuf,
    node_server: PathBuf,
    out: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut quick = false;
    let mut engine_only = false;
    let mut values = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--engine-only" => engine_only = true,
            "--patchbay" | "--node-server" | "--out" => {
                let value = args
                    .next()
                    .with_context(|| format!("{arg} needs a value"))?;
                values.insert(arg, PathBuf::from(value));
            }
            other => anyhow::bail!(
                "unknown argument `{other}`; usage: patchbay-bench [--quick] [--engine-only] --patchbay BIN --node-server FILE --out FILE\n       patchbay-bench --profile-turn SECONDS\n       patchbay-bench --proxy-server UPSTREAM_ADDR"
            ),
        }
    }
    let mut take = |name: &str| {
        values
            .remove(name)
            .with_context(|| format!("{name} is required"))
    };
    Ok(Options {
        budget: if quick {
            Budget::quick()
        } else {
            Budget::full()
        },
        quick,
        engine_only,
        patchbay: take("--patchbay")?,
        node_server: take("--node-server")?,
        out: take("--out")?,
    })
}

/// One line of the report.
struct Row {
    name: &'static str,
    what: &'static str,
    samples: Samples,
    errors: usize,
    /// The row this one is compared with: in throughput for rows under
    /// the load generator, else in p50.
    baseline: Option<&'static str>,
}

impl Row {
    /// A row measured under the closed-loop load generator.
    fn loaded(&self) -> bool {
        matches!(self.name, "proxy" | "serve" | "node" | "node-shared")
    }
}

/// What issue 22 asks of `serve` against each peer: at least this ratio of
/// its throughput, and (against Node.js) at most this ratio of its p99.
const TARGETS: [(&str, f64, Option<f64>); 3] = [
    ("proxy", 0.6, None),
    ("node", 10.0, Some(1.0 / 3.0)),
    ("node-shared", 8.0, Some(1.0 / 3.0)),
];

/// Below this RSS slope (bytes per 1,000 turns) `serve` is called flat over
/// turns: one 4 KiB page per 1,000 turns, 400 KiB over 100,000.
const FLAT_BYTES_PER_1K_TURNS: f64 = 4096.0;
/// Below this slope (bytes per 100 reloads) `serve` is called flat over
/// reloads: under 1 KiB a reload, where one reload's engine, realm and
/// compiled scripts take far more.
const FLAT_BYTES_PER_100_RELOADS: f64 = 64.0 * 1024.0;

fn main() -> anyhow::Result<()> {
    // Modes other than the table: the proxy row's server, the turn alone.
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--proxy-server") => {
            let upstream = args
                .next()
                .context("--proxy-server needs the upstream's address")?;
            return proxy::serve(upstream.parse()?, TOKEN);
        }
        Some("--profile-turn") => {
            let seconds = args
                .next()
                .context("--profile-turn needs a number of seconds")?;
            return profile_turn(seconds.parse()?);
        }
        _ => {}
    }
    let options = options()?;
    let metrics = patchbay_server::Metrics::install()?;
    let upstream = upstream::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let budget = options.budget;
    println!(
        "patchbay bench{}: upstream on {upstream}, {} core(s)\n",
        if options.quick { " --quick" } else { "" },
        cores()
    );

    let raw = runtime.block_on(raw_row(upstream, budget))?;
    let engine = runtime.block_on(engine(upstream))?;
    let compiled_before = compilations(&metrics);
    let invoke = runtime.block_on(invoke_row(&engine, budget))?;
    let turn = runtime.block_on(turn_row(&engine, budget))?;
    let compiled_during = compilations(&metrics) - compiled_before;
    drop(engine);
    let stores = runtime.block_on(stores::measure(upstream, budget))?;
    if options.engine_only {
        // Where the engine's time went, from its own phase histograms.
        let text = metrics.render();
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|line| line.starts_with(prefix))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        for phase in ["request", "transform", "fields", "rules", "post-process"] {
            let total = sum(&format!(
                "patchbay_phase_duration_seconds_sum{{phase=\"{phase}\"}}"
            ));
            let count = sum(&format!(
                "patchbay_phase_duration_seconds_count{{phase=\"{phase}\"}}"
            ));
            println!(
                "phase {phase:<12} mean {:>8.1} µs",
                total / count.max(1.0) * 1e6
            );
        }
        let scripts = sum("patchbay_script_duration_seconds_sum")
            / sum("patchbay_script_duration_seconds_count").max(1.0);
        println!("script run   mean {:>8.1} µs", scripts * 1e6);
        let mut printed = vec![
            ("raw", &raw),
            ("invoke", &invoke),
            ("turn", &turn),
            ("context-base", &stores.context_base),
            ("context", &stores.context_memory),
        ];
        if let Some(samples) = &stores.context_redis {
            printed.push(("context-redis", samples));
        }
        for (name, samples) in printed {
            println!(
                "{name:<8} p50 {:>8.1} µs  p99 {:>8.1} µs",
                samples.quantile_us(0.5),
                samples.quantile_us(0.99)
            );
        }
        return Ok(());
    }

    let proxy = process::Server::start(proxy_command(upstream)?)?;
    let (proxy_load, _) = measure_server(&proxy, &proxy_target(proxy.addr), budget, false)?;
    drop(proxy);

    let serve = process::Server::start(serve_command(&options, upstream))?;
    let target = turn_target(serve.addr);
    let (serve_load, serve_memory) = measure_server(&serve, &target, budget, true)?;
    let reloads = runtime.block_on(reload::measure(&serve, &target, budget.reloads))?;
    drop(serve);

    let node = process::Server::start(node_command(&options, upstream, false))?;
    let (node_load, node_memory) = measure_server(&node, &turn_target(node.addr), budget, true)?;
    drop(node);

    let node_shared = process::Server::start(node_command(&options, upstream, true))?;
    let (node_shared_load, _) =
        measure_server(&node_shared, &turn_target(node_shared.addr), budget, false)?;
    drop(node_shared);

    let rows = vec![
        Row {
            name: "raw",
            what: "bare hyper GET, 2 KB JSON",
            samples: raw,
            errors: 0,
            baseline: None,
        },
        Row {
            name: "invoke",
            what: "Engine::invoke: templates, bearer, transform, 3 fields",
            samples: invoke,
            errors: 0,
            baseline: Some("raw"),
        },
        Row {
            name: "turn",
            what: "run_turn: invoke + post-process + rules + text",
            samples: turn,
            errors: 0,
            baseline: Some("raw"),
        },
        Row {
            name: "proxy",
            what: "bare hyper server: the bot's upstream call (transport Client, bearer), same load",
            samples: proxy_load.samples,
            errors: proxy_load.errors,
            baseline: None,
        },
        Row {
            name: "serve",
            what: "patchbay serve, 64 connections, closed loop",
            samples: serve_load.samples,
            errors: serve_load.errors,
            baseline: Some("proxy"),
        },
        Row {
            name: "node",
            what: "Node.js peer (http, fetch, vm, a new context per run), same load",
            samples: node_load.samples,
            errors: node_load.errors,
            baseline: None,
        },
        Row {
            name: "node-shared",
            what: "the Node.js peer with one vm context shared by every run",
            samples: node_shared_load.samples,
            errors: node_shared_load.errors,
            baseline: Some("node"),
        },
        Row {
            name: "stored",
            what: "run_stored_turn: load, turn, versioned save (memory)",
            samples: stores.stored_memory,
            errors: 0,
            baseline: Some("turn"),
        },
    ];
    let mut rows = rows;
    if let Some(samples) = stores.stored_redis {
        rows.push(Row {
            name: "stored-redis",
            what: "the same, conversation in Redis (2 round trips)",
            samples,
            errors: 0,
            baseline: Some("stored"),
        });
    }
    rows.push(Row {
        name: "oauth",
        what: "turn, OAuth 2 token from the cache (memory)",
        samples: stores.oauth_memory,
        errors: 0,
        baseline: Some("turn"),
    });
    if let Some(samples) = stores.oauth_redis {
        rows.push(Row {
            name: "oauth-redis",
            what: "the same, token cache in Redis (1 round trip)",
            samples,
            errors: 0,
            baseline: Some("oauth"),
        });
    }
    rows.push(Row {
        name: "context-base",
        what: "turn, interleaved with the context row's turns",
        samples: stores.context_base,
        errors: 0,
        baseline: Some("turn"),
    });
    rows.push(Row {
        name: "context",
        what: "turn whose script reads and writes the context store (memory)",
        samples: stores.context_memory,
        errors: 0,
        baseline: Some("context-base"),
    });
    if let Some(samples) = stores.context_redis {
        rows.push(Row {
            name: "context-redis",
            what: "the same, context store in Redis (2 round trips)",
            samples,
            errors: 0,
            baseline: Some("context"),
        });
    }
    let memory = Memories {
        serve: serve_memory,
        node: node_memory,
        reloads,
    };
    let report = report(&rows, compiled_during, &memory, &options);
    println!("{}", table(&rows, &report));
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", options.out.display()))?;
    println!("report: {}", options.out.display());
    let errors: usize = rows.iter().map(|row| row.errors).sum();
    anyhow::ensure!(errors == 0, "{errors} request(s) got a wrong answer");
    anyhow::ensure!(
        compiled_during == 0,
        "{compiled_during} compilation(s) happened during measured calls"
    );
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Row 1: the physical floor of one call.
async fn raw_row(upstream: SocketAddr, budget: Budget) -> anyhow::Result<Samples> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri =
        format!("http://{upstream}/kb/en/search?q=password%20reset&limit=3").parse()?;
    let call = || async {
        let request = http::Request::get(uri.clone())
            .header(http::header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header("x-conversation", "bench")
            .body(Empty::new())?;
        let response = client.request(request).await?;
        anyhow::ensure!(response.status() == http::StatusCode::OK);
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(body.len() > 1000);
        Ok(())
    };
    for _ in 0..budget.warmup {
        call().await?;
    }
    sequential(budget.calls, call).await
}

async fn sequential<F, Fut>(calls: usize, call: F) -> anyhow::Result<Samples>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let sent = Instant::now();
        call().await?;
        latencies.push(sent.elapsed());
    }
    Ok(Samples::new(latencies, started.elapsed()))
}

async fn engine(upstream: SocketAddr) -> anyhow::Result<Engine> {
    engine_with(upstream, BOT, Arc::new(MemoryTokenCache::default())).await
}

async fn engine_with(
    upstream: SocketAddr,
    bot: &str,
    token_cache: Arc<dyn TokenCache>,
) -> anyhow::Result<Engine> {
    let loaded = patchbay_engine::config::load("bench-bot.yaml", bot)
        .map_err(|report| anyhow::anyhow!("{}", report.summary()))?;
    let env: HashMap<String, String> = HashMap::from([
        ("UPSTREAM".to_owned(), format!("http://{upstream}")),
        ("TOKEN".to_owned(), TOKEN.to_owned()),
    ]);
    let env = Arc::new(move |name: &str| env.get(name).cloned());
    let scripts = ScriptRuntime::new(RuntimeOptions::default());
    let mut options = EngineOptions::new(env, scripts);
    options.token_cache = token_cache;
    Ok(Engine::new(loaded.bot, options).await?)
}

fn bench_state() -> ConversationState {
    let mut state = ConversationState {
        conversation_id: "bench".to_owned(),
        ..ConversationState::default()
    };
    state.set(
        "locale",
        "en",
        patchbay_engine::script::Persistence::Session,
    );
    state.set(
        "query",
        "password reset",
        patchbay_engine::script::Persistence::Session,
    );
    state
}

/// Row 2: one integration, everything but the dialog.
async fn invoke_row(engine: &Engine, budget: Budget) -> anyhow::Result<Samples> {
    let call = || async {
        let mut state = bench_state();
        let invocation = engine.invoke("search", &mut state).await?;
        anyhow::ensure!(
            invocation.success && invocation.fields.len() == 3,
            "invoke failed: {:?}",
            invocation.failure
        );
        Ok(())
    };
    for _ in 0..budget.warmup {
        call().await?;
    }
    sequential(budget.calls, call).await
}

/// Row 3: a whole turn.
async fn turn_row(engine: &Engine, budget: Budget) -> anyhow::Result<Samples> {
    let call = || one_turn(engine);
    for _ in 0..budget.warmup {
        call().await?;
    }
    sequential(budget.calls, call).await
}

/// The turn row's call: one `run_turn` of the bench bot, its answer checked.
async fn one_turn(engine: &Engine) -> anyhow::Result<()> {
    let turn = engine
        .run_turn(
            bench_state(),
            Start::Interaction("search".to_owned()),
            "password",
        )
        .await?;
    anyhow::ensure!(
        turn.messages
            .first()
            .is_some_and(|m| m.text().starts_with(EXPECTED_REPLY)),
        "unexpected turn: {:?}",
        turn.messages
    );
    Ok(())
}

/// `--profile-turn SECONDS`: the turn row alone (same engine, metrics
/// recorder and upstream), warmed up and then run for `SECONDS`, for a
/// sampling profiler to watch (`cargo xtask profile`).
fn profile_turn(seconds: f64) -> anyhow::Result<()> {
    let _metrics = patchbay_server::Metrics::install()?;
    let upstream = upstream::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let engine = engine(upstream).await?;
        for _ in 0..Budget::full().warmup {
            one_turn(&engine).await?;
        }
        let started = Instant::now();
        let mut turns = 0_u32;
        while started.elapsed().as_secs_f64() < seconds {
            one_turn(&engine).await?;
            turns += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "profile-turn: {turns} turns in {elapsed:.1} s, {:.1} µs a turn",
            elapsed / f64::from(turns.max(1)) * 1e6
        );
        Ok(())
    })
}

/// Everything compiled so far (templates, JSONPath, regexes, scripts).
fn compilations(metrics: &patchbay_server::Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("patchbay_compiled_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn serve_command(options: &Options, upstream: SocketAddr) -> Command {
    let mut command = Command::new(&options.patchbay);
    command
        .args(["serve", "--bot", BOT_PATH, "--listen", "127.0.0.1:0"])
        .args(["--log", "warn"])
        .arg("--env")
        .arg(format!("UPSTREAM=http://{upstream}"))
        .arg("--env")
        .arg(format!("TOKEN={TOKEN}"));
    command
}

/// The Node.js peer; `shared`: one `vm` context for every run of a worker.
fn node_command(options: &Options, upstream: SocketAddr, shared: bool) -> Command {
    let mut command = Command::new("node");
    command
        .arg(&options.node_server)
        .env("UPSTREAM", format!("http://{upstream}"))
        .env("TOKEN", TOKEN)
        .env("WORKERS", cores().to_string())
        .env("VM_CONTEXT", if shared { "shared" } else { "new" });
    command
}

/// This binary again, as the `proxy` row's server.
fn proxy_command(upstream: SocketAddr) -> anyhow::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--proxy-server").arg(upstream.to_string());
    Ok(command)
}

/// What the proxy is sent (the turn, which it reads and ignores) and what
/// its answer holds: the upstream's articles.
fn proxy_target(addr: SocketAddr) -> Target {
    Target {
        expect: "How to reset a password",
        ..turn_target(addr)
    }
}

fn turn_target(addr: SocketAddr) -> Target {
    Target {
        addr,
        path: "/v1/bots/bench/turns".to_owned(),
        body: Bytes::from_static(TURN_BODY.as_bytes()),
        expect: EXPECTED_REPLY,
    }
}

/// Memory of a server process over the run, in KiB.
#[derive(Clone, Debug, Default)]
struct Memory {
    after_warmup: u64,
    /// RSS once half the soak's turns were done, and how many that was:
    /// growth in the second half tells a leak from a warm-up.
    after_half: u64,
    halfway_turns: usize,
    after_soak: u64,
    peak: u64,
    /// Turns of the soak (after the warm-up and the measured load).
    soak_turns: usize,
    /// `(soak turns done, RSS in KiB)`, from the soak's start.
    points: Vec<(usize, u64)>,
}

impl Memory {
    /// The least-squares slope of RSS over the soak, bytes per 1,000 turns.
    fn slope_per_1k_turns(&self) -> Option<f64> {
        slope_bytes(&self.points, 1000.0)
    }
}

/// The readings of the second half of a series: a warm-up (pools, arenas,
/// a heap growing to its first collection) rises at the start and stops,
/// a leak goes on, so the verdict is taken on these.
fn second_half<T>(points: &[T]) -> &[T] {
    &points[points.len() / 2..]
}

/// The least-squares slope of RSS (KiB) in bytes per `unit` of `x`.
fn slope_bytes(points: &[(usize, u64)], unit: f64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let points: Vec<(f64, f64)> = points
        .iter()
        .map(|&(x, kib)| (x as f64, kib as f64 * 1024.0))
        .collect();
    stats::slope(&points).map(|slope| slope * unit)
}

/// The memory part of the report.
struct Memories {
    serve: Memory,
    node: Memory,
    reloads: reload::Reloads,
}

/// Warm-up, the measured load, then (with `soak`) a soak of `soak_turns`
/// turns for memory, RSS read after every `soak_chunk` of it.
fn measure_server(
    server: &process::Server,
    target: &Target,
    budget: Budget,
    soak: bool,
) -> anyhow::Result<(load::LoadResult, Memory)> {
    load::run(target, budget.connections, budget.load / 5)?;
    let after_warmup = server.memory_kib().0;
    let measured = load::run(target, budget.connections, budget.load)?;
    let mut soaked = 0;
    let mut points = vec![(0, server.memory_kib().0)];
    let mut halfway = None;
    let soak_started = Instant::now();
    while soak && soaked < budget.soak_turns && soak_started.elapsed() < Duration::from_secs(180) {
        let chunk = load::run(target, budget.connections, budget.soak_chunk)?;
        anyhow::ensure!(
            chunk.errors == 0,
            "{} wrong answer(s) during the soak",
            chunk.errors
        );
        soaked += chunk.samples.count();
        let rss = server.memory_kib().0;
        points.push((soaked, rss));
        if halfway.is_none() && soaked >= budget.soak_turns / 2 {
            halfway = Some((soaked, rss));
        }
    }
    let (after_soak, peak) = server.memory_kib();
    let (halfway_turns, after_half) = halfway.unwrap_or((soaked, after_soak));
    Ok((
        measured,
        Memory {
            after_warmup,
            after_half,
            halfway_turns,
            after_soak,
            peak,
            soak_turns: soaked,
            points,
        },
    ))
}

fn report(rows: &[Row], compiled_during: u64, memory: &Memories, options: &Options) -> Value {
    let find = |name: &str| rows.iter().find(|row| row.name == name);
    let p = |row: &Row, q: f64| (row.samples.quantile_us(q) * 10.0).round() / 10.0;
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let baseline = row.baseline.and_then(find);
            json!({
                "name": row.name,
                "what": row.what,
                "samples": row.samples.count(),
                "errors": row.errors,
                "p50_us": p(row, 0.5),
                "p99_us": p(row, 0.99),
                "throughput_per_s": row.samples.throughput().round(),
                "baseline": row.baseline,
                "ratio_p50": baseline.map(|base| ratio(row.samples.quantile_us(0.5), base.samples.quantile_us(0.5))),
                "ratio_p99": baseline.map(|base| ratio(row.samples.quantile_us(0.99), base.samples.quantile_us(0.99))),
                "ratio_throughput": baseline.map(|base| ratio(row.samples.throughput(), base.samples.throughput())),
            })
        })
        .collect();
    let targets: Vec<Value> = TARGETS
        .iter()
        .filter_map(|&(peer, throughput, p99)| {
            let (serve, peer_row) = (find("serve")?, find(peer)?);
            let ratio_throughput = ratio(serve.samples.throughput(), peer_row.samples.throughput());
            let ratio_p99 = ratio(
                serve.samples.quantile_us(0.99),
                peer_row.samples.quantile_us(0.99),
            );
            let met = ratio_throughput >= throughput && p99.is_none_or(|p99| ratio_p99 <= p99);
            Some(json!({
                "against": peer,
                "ratio_throughput": ratio_throughput,
                "ratio_p99": ratio_p99,
                "target_throughput_at_least": throughput,
                "target_p99_at_most": p99.map(|p99| (p99 * 100.0).round() / 100.0),
                "met": met,
            }))
        })
        .collect();
    let soak = |memory: &Memory| {
        let slope = memory.slope_per_1k_turns();
        let late = slope_bytes(second_half(&memory.points), 1000.0);
        json!({
            "rss_after_warmup_kib": memory.after_warmup,
            "rss_halfway_kib": memory.after_half,
            "halfway_turns": memory.halfway_turns,
            "rss_after_soak_kib": memory.after_soak,
            "peak_rss_kib": memory.peak,
            "soak_turns": memory.soak_turns,
            "rss_slope_bytes_per_1k_turns": slope.map(f64::round),
            "rss_slope_second_half_bytes_per_1k_turns": late.map(f64::round),
            "rss_flat": late.map(|late| late < FLAT_BYTES_PER_1K_TURNS),
            "rss_points_turns_kib": memory.points,
        })
    };
    let reloads = &memory.reloads;
    let reload_slope = slope_bytes(&reloads.points, 100.0);
    let reload_late = slope_bytes(second_half(&reloads.points), 100.0);
    let overhead = match (find("invoke"), find("raw")) {
        (Some(invoke), Some(raw)) => invoke.samples.quantile_us(0.5) - raw.samples.quantile_us(0.5),
        _ => f64::NAN,
    };
    json!({
        "quick": options.quick,
        "cores": cores(),
        "rows": json_rows,
        "serve_targets": targets,
        "engine_overhead_p50_us": (overhead * 10.0).round() / 10.0,
        "compilations_during_measured_calls": compiled_during,
        "memory": {
            "serve": soak(&memory.serve),
            "node": soak(&memory.node),
            "serve_reloads": {
                "reloads": reloads.count,
                "compilations_per_reload": reloads.compilations_per_reload,
                "seconds": (reloads.elapsed.as_secs_f64() * 10.0).round() / 10.0,
                "rss_before_kib": reloads.points.first().map(|point| point.1),
                "rss_after_kib": reloads.points.last().map(|point| point.1),
                "rss_slope_bytes_per_100_reloads": reload_slope.map(f64::round),
                "rss_slope_second_half_bytes_per_100_reloads": reload_late.map(f64::round),
                "rss_flat": reload_late.map(|late| late < FLAT_BYTES_PER_100_RELOADS),
                "rss_points_reloads_kib": reloads.points,
            },
        },
    })
}

fn ratio(value: f64, base: f64) -> f64 {
    (value / base * 100.0).round() / 100.0
}

/// What the report says of a slope: flat, not flat, or none measured.
fn verdict(flat: &Value) -> &'static str {
    match flat.as_bool() {
        Some(true) => "flat",
        Some(false) => "NOT flat",
        None => "no slope (too few samples)",
    }
}

fn kib(bytes: &Value) -> String {
    bytes
        .as_f64()
        .map_or_else(|| "?".to_owned(), |bytes| format!("{:+.1}", bytes / 1024.0))
}

fn table(rows: &[Row], report: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:>10} {:>10} {:>10}  {:<20} what",
        "row", "p50 µs", "p99 µs", "req/s", "vs baseline"
    );
    for (row, json) in rows
        .iter()
        .zip(report["rows"].as_array().into_iter().flatten())
    {
        let versus = match row.baseline {
            Some(base) if row.loaded() => {
                format!("×{} thr ({base})", json["ratio_throughput"])
            }
            Some(base) => format!("×{} p50 ({base})", json["ratio_p50"]),
            None => "baseline".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<13} {:>10.1} {:>10.1} {:>10.0}  {:<20} {}",
            row.name,
            row.samples.quantile_us(0.5),
            row.samples.quantile_us(0.99),
            row.samples.throughput(),
            versus,
            row.what
        );
    }
    let _ = writeln!(out);
    for target in report["serve_targets"].as_array().into_iter().flatten() {
        let against = target["against"].as_str().unwrap_or("?");
        let mut line = format!(
            "serve vs {against:<12} ×{} throughput (target ≥ {})",
            target["ratio_throughput"],
            target["target_throughput_at_least"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
        if let Some(p99) = target["target_p99_at_most"].as_f64() {
            let _ = write!(line, ", ×{} p99 (target ≤ {p99})", target["ratio_p99"]);
        }
        let met = if target["met"].as_bool() == Some(true) {
            "met"
        } else {
            "NOT met"
        };
        let _ = writeln!(out, "{line}: {met}");
    }
    let memory = &report["memory"];
    let _ = writeln!(
        out,
        "\nengine overhead (invoke − raw, p50): {} µs; compilations during measured calls: {}",
        report["engine_overhead_p50_us"], report["compilations_during_measured_calls"]
    );
    for name in ["serve", "node"] {
        let m = &memory[name];
        let _ = writeln!(
            out,
            "{name} memory: peak RSS {} KiB; RSS {} KiB after warm-up, {} KiB when the soak began, {} KiB after {} soak turns, {} KiB after {}",
            m["peak_rss_kib"],
            m["rss_after_warmup_kib"],
            m["rss_points_turns_kib"][0][1],
            m["rss_halfway_kib"],
            m["halfway_turns"],
            m["rss_after_soak_kib"],
            m["soak_turns"]
        );
        let _ = writeln!(
            out,
            "{name} RSS slope over {} soak turns: {} KiB per 1k turns (least squares, {} samples), {} in the second half: {}",
            m["soak_turns"],
            kib(&m["rss_slope_bytes_per_1k_turns"]),
            m["rss_points_turns_kib"].as_array().map_or(0, Vec::len),
            kib(&m["rss_slope_second_half_bytes_per_1k_turns"]),
            verdict(&m["rss_flat"])
        );
    }
    let r = &memory["serve_reloads"];
    let _ = writeln!(
        out,
        "serve RSS slope over {} SIGHUP reloads ({} compilations each, {} s): {} KiB per 100 reloads (least squares, {} samples), {} in the second half ({} KiB before, {} KiB after): {}",
        r["reloads"],
        r["compilations_per_reload"],
        r["seconds"],
        kib(&r["rss_slope_bytes_per_100_reloads"]),
        r["rss_points_reloads_kib"].as_array().map_or(0, Vec::len),
        kib(&r["rss_slope_second_half_bytes_per_100_reloads"]),
        r["rss_before_kib"],
        r["rss_after_kib"],
        verdict(&r["rss_flat"])
    );
    let _ = writeln!(
        out,
        "(flat: a second-half slope under {} KiB per 1k turns, under {} KiB per 100 reloads)",
        FLAT_BYTES_PER_1K_TURNS / 1024.0,
        FLAT_BYTES_PER_100_RELOADS / 1024.0
    );
    out
}
