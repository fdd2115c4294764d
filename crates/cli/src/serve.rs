//! `patchbay serve`: the HTTP API as a process, with signals: SIGTERM and
//! Ctrl-C drain and stop, SIGHUP reloads the bot files.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use patchbay_credentials::{MemoryTokenCache, TokenCache};
use patchbay_engine::{
    ContextStore, Engine, EngineOptions, MemoryContextStore, MemoryStateStore, MemoryStoreLimits,
    StateStore,
};
use patchbay_script::{RuntimeOptions, ScriptRuntime};
use patchbay_server::{Metrics, Server, ServerOptions};
use patchbay_transport::{MemoryRateLimiter, ProxyConfig, RateLimiter};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::bot_env::BotEnv;
use crate::token_store::FileTokenStore;

pub(crate) struct ServeOptions {
    pub(crate) bots: Vec<PathBuf>,
    pub(crate) listen: SocketAddr,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) token_store: Option<PathBuf>,
    pub(crate) store: Option<String>,
    pub(crate) max_request_bytes: usize,
    pub(crate) deadline: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) session_ttl: Duration,
    /// What one stored conversation may hold, and how many the memory
    /// store keeps.
    pub(crate) conversation_limits: MemoryStoreLimits,
    /// How long a user's "forever" variables are kept after the last turn
    /// that set one of them, in memory and in Redis.
    pub(crate) user_variables_ttl: Duration,
    pub(crate) playground: bool,
    /// Let turns ask for each call's response (`showResponses`).
    pub(crate) show_responses: bool,
    pub(crate) clients: ClientLimits,
}

/// How `serve` treats slow, idle and numerous clients (docs/deploy.md).
#[derive(Debug, clap::Args)]
pub(crate) struct ClientLimits {
    /// How long a client may take to send a request's head, and to start
    /// its first request after connecting, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// How long a connection may wait between requests before it is
    /// closed, in milliseconds. Keep it above the idle timeout of a load
    /// balancer in front (AWS ALB: 60 s).
    #[arg(long, value_name = "MS", default_value_t = 75_000)]
    idle_timeout_ms: u64,
    /// A request body must arrive within this many milliseconds, plus 1 s
    /// per --min-body-rate bytes received; a slower one answers 408.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    body_timeout_ms: u64,
    /// The slowest a request body may arrive, in bytes a second (0: the
    /// whole body within --body-timeout-ms).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    min_body_rate: u64,
    /// Connections served at once. Beyond it 16 more may ask only
    /// /healthz, /readyz and /metrics, and the rest are closed when
    /// accepted. Lowered, with a warning, to fit the file-descriptor limit.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_connections: usize,
    /// Streams one HTTP/2 connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_concurrent_streams: u32,
    /// A host name requests may name in `Host` (repeatable; others answer
    /// 421). Default: any, or on a loopback --listen only localhost,
    /// 127.0.0.1 and ::1 (against DNS rebinding); `*` allows any.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
}

impl ClientLimits {
    /// `options` with these limits, for a server listening on `listen`.
    fn apply(&self, listen: SocketAddr, options: ServerOptions) -> ServerOptions {
        let allowed_hosts = if self.allowed_hosts.iter().any(|host| host == "*") {
            Vec::new()
        } else if self.allowed_hosts.is_empty() && listen.ip().is_loopback() {
            LOOPBACK_HOSTS.iter().map(|&host| host.to_owned()).collect()
        } else {
            self.allowed_hosts.clone()
        };
        ServerOptions {
            header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(self.body_timeout_ms.max(1)),
            min_body_rate: self.min_body_rate,
            max_connections: fit_descriptor_limit(self.max_connections, descriptor_limit()),
            max_concurrent_streams: self.max_concurrent_streams.max(1),
            allowed_hosts,
            ..options
        }
    }
}

/// The names a browser uses for a server on a loopback address.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Descriptors kept for everything but client connections: the listener,
/// Redis, logs, bot files, V8, and the health reserve's connections.
const RESERVED_DESCRIPTORS: u64 = 256;

/// `requested` connections, or fewer when the process could run out of file
/// descriptors: each connection may hold an upstream connection while its
/// turn runs, so it counts twice.
fn fit_descriptor_limit(requested: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return requested;
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if requested > fits {
        tracing::warn!(
            requested,
            lowered_to = fits,
            descriptor_limit = limit,
            "--max-connections lowered to fit the file-descriptor limit (raise `ulimit -n` to serve more)"
        );
        return fits;
    }
    requested
}

/// The soft limit on open files (`ulimit -n`), where the system says it.
fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What every bot of the process shares.
struct Shared {
    env: HashMap<String, String>,
    scripts: ScriptRuntime,
    token_cache: Arc<dyn TokenCache>,
    rate_limiter: Arc<dyn RateLimiter>,
    /// Every bot's context data (keyed by bot), kept across reloads.
    context_store: Arc<dyn ContextStore>,
    proxy: ProxyConfig,
}

impl Shared {
    async fn engine(&self, path: &Path) -> anyhow::Result<Engine> {
        let bot = crate::load_bot(path)?;
        let env = BotEnv::with_overrides(&bot, self.env.clone());
        let mut options = EngineOptions::new(
            Arc::new(move |name: &str| env.get(name)),
            self.scripts.clone(),
        );
        options.token_cache = Arc::clone(&self.token_cache);
        options.rate_limiter = Arc::clone(&self.rate_limiter);
        options.context_store = Arc::clone(&self.context_store);
        options.proxy = self.proxy.clone();
        let engine = Engine::new(bot, options)
            .await
            .with_context(|| format!("cannot start {}", path.display()))?;
        crate::logging::mask(engine.secrets());
        Ok(engine)
    }
}

pub(crate) async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let stores = match &options.store {
        Some(url) => {
            shared_stores(
                url,
                &options.conversation_limits,
                options.user_variables_ttl,
            )
            .await?
        }
        None => Stores::in_memory(options.conversation_limits, options.user_variables_ttl),
    };
    let token_cache: Arc<dyn TokenCache> = match (stores.token_cache, &options.token_store) {
        (Some(shared), _) => shared,
        (None, Some(path)) => Arc::new(FileTokenStore::open(path)?),
        (None, None) => Arc::new(MemoryTokenCache::default()),
    };
    let shared = Shared {
        env: options.env.into_iter().collect(),
        scripts: ScriptRuntime::new(RuntimeOptions::default()),
        token_cache,
        rate_limiter: stores.rate_limiter,
        context_store: stores.context,
        proxy: ProxyConfig::from_lookup(|name| std::env::var(name).ok()),
    };
    let server = Server::new(ServerOptions {
        max_request_bytes: options.max_request_bytes,
        deadline: options.deadline,
        drain_timeout: options.drain_timeout,
        metrics: Some(Metrics::install()?),
        session_ttl: options.session_ttl,
        playground: options.playground,
        show_responses: options.show_responses,
        store: stores.conversations,
        ..options
            .clients
            .apply(options.listen, ServerOptions::default())
    });
    let mut names = HashMap::new();
    for path in &options.bots {
        let engine = shared.engine(path).await?;
        names.insert(path.clone(), engine.bot().name.clone());
        if let Some(previous) = server.insert_bot(engine) {
            anyhow::bail!(
                "two bot files define the bot `{}`; names must be unique",
                previous.bot().name
            );
        }
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    // Signals are taken before the listening line: a script that sends
    // SIGHUP as soon as it reads it must not kill the server (SIGHUP's
    // default action).
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    announce(&server, listener.local_addr()?)?;
    let reloads = {
        let server = server.clone();
        let paths = options.bots.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reload(&server, &shared, &paths, &mut names).await;
            }
        })
    };
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
        }
    };
    server.serve(listener, shutdown).await?;
    reloads.abort();
    tracing::info!("stopped");
    Ok(())
}

/// What replicas share: in this process by default, in Redis with `--store`.
struct Stores {
    /// `None`: the token store chosen by `--token-store`, or memory.
    token_cache: Option<Arc<dyn TokenCache>>,
    conversations: Arc<dyn StateStore>,
    rate_limiter: Arc<dyn RateLimiter>,
    /// The Conversation Context Service's data.
    context: Arc<dyn ContextStore>,
}

impl Stores {
    fn in_memory(limits: MemoryStoreLimits, user_variables_ttl: Duration) -> Self {
        Self {
            token_cache: None,
            conversations: Arc::new(
                MemoryStateStore::new(limits).with_user_variables_ttl(user_variables_ttl),
            ),
            rate_limiter: Arc::new(MemoryRateLimiter::default()),
            context: Arc::new(MemoryContextStore::default()),
        }
    }
}

#[cfg(feature = "redis")]
async fn shared_stores(
    url: &str,
    limits: &MemoryStoreLimits,
    user_variables_ttl: Duration,
) -> anyhow::Result<Stores> {
    let redis = patchbay_redis::Redis::connect(url, "patchbay:").await?;
    let conversations = redis
        .state_store()
        .with_max_conversation_bytes(limits.max_conversation_bytes)
        .with_user_variables_ttl(user_variables_ttl);
    Ok(Stores {
        token_cache: Some(Arc::new(redis.token_cache())),
        conversations: Arc::new(conversations),
        rate_limiter: Arc::new(redis.rate_limiter()),
        context: Arc::new(redis.context_store()),
    })
}

#[cfg(not(feature = "redis"))]
async fn shared_stores(
    _url: &str,
    _limits: &MemoryStoreLimits,
    _user_variables_ttl: Duration,
) -> anyhow::Result<Stores> {
    anyhow::bail!(
        "--store needs Redis support: this patchbay was built without the `redis` feature"
    )
}

/// Prints where the server listens, the one line scripts and tests wait for.
pub(crate) fn announce(server: &Server, address: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "patchbay serve: listening on http://{address} (bots: {})",
        server.bot_names().join(", ")
    )?;
    stdout.flush()?;
    Ok(())
}

/// Reloads every bot file. A file that no longer loads keeps its old bot,
/// and so do files that would serve the same bot name (startup refuses
/// them too): no bot silently replaces another. `names` holds the bot each
/// file serves.
async fn reload(
    server: &Server,
    shared: &Shared,
    paths: &[PathBuf],
    names: &mut HashMap<PathBuf, String>,
) {
    let mut loaded = Vec::new();
    for path in paths {
        match shared.engine(path).await {
            Ok(engine) => loaded.push((path.clone(), engine)),
            Err(error) => tracing::error!(
                file = %path.display(),
                error = format!("{error:#}"),
                "reload rejected; the previous version keeps serving"
            ),
        }
    }
    refuse_shared_names(&mut loaded, names);
    let served_before: HashSet<String> = names.values().cloned().collect();
    for (path, engine) in loaded {
        let name = engine.bot().name.clone();
        server.insert_bot(engine);
        tracing::info!(file = %path.display(), bot = %name, "reloaded");
        names.insert(path, name);
    }
    // Only now: a bot renamed to another's old name (a swap) must not be
    // removed as that other's old version.
    let served: HashSet<&String> = names.values().collect();
    for old in served_before.iter().filter(|name| !served.contains(name)) {
        server.remove_bot(old);
    }
}

/// Drops from `loaded` every file whose bot's name another file would serve
/// too after the reload (a file not reloaded goes on serving its old name),
/// logging why, until every name is served by one file.
fn refuse_shared_names(loaded: &mut Vec<(PathBuf, Engine)>, names: &HashMap<PathBuf, String>) {
    loop {
        let mut files_by_name: HashMap<&str, Vec<&Path>> = HashMap::new();
        for (path, old_name) in names {
            let name = loaded
                .iter()
                .find(|(reloaded, _)| reloaded == path)
                .map_or(old_name.as_str(), |(_, engine)| engine.bot().name.as_str());
            files_by_name.entry(name).or_default().push(path);
        }
        let refused: Vec<(PathBuf, String, String)> = loaded
            .iter()
            .filter_map(|(path, engine)| {
                let name = engine.bot().name.as_str();
                let files = files_by_name.get(name).filter(|files| files.len() > 1)?;
                let mut files: Vec<String> = files
                    .iter()
                    .map(|file| file.display().to_string())
                    .collect();
                files.sort();
                Some((path.clone(), name.to_owned(), files.join(", ")))
            })
            .collect();
        if refused.is_empty() {
            return;
        }
        for (path, name, files) in &refused {
            tracing::error!(
                file = %path.display(),
                bot = %name,
                files = %files,
                "reload rejected: more than one bot file would serve the bot `{name}` (names must be unique); the previous version keeps serving"
            );
        }
        loaded.retain(|(path, _)| !refused.iter().any(|(refused, _, _)| refused == path));
    }
}
