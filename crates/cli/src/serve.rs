//! `patchbay serve`: the HTTP API as a process, with signals: SIGTERM and
//! Ctrl-C drain and stop, SIGHUP reloads the bot files.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use patchbay_credentials::{MemoryTokenCache, TokenCache};
use patchbay_engine::{Engine, EngineOptions, MemoryStateStore, StateStore};
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
    pub(crate) playground: bool,
}

/// What every bot of the process shares.
struct Shared {
    env: HashMap<String, String>,
    scripts: ScriptRuntime,
    token_cache: Arc<dyn TokenCache>,
    rate_limiter: Arc<dyn RateLimiter>,
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
        options.proxy = self.proxy.clone();
        Engine::new(bot, options)
            .await
            .with_context(|| format!("cannot start {}", path.display()))
    }
}

pub(crate) async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let stores = match &options.store {
        Some(url) => shared_stores(url).await?,
        None => Stores::default(),
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
        proxy: ProxyConfig::from_lookup(|name| std::env::var(name).ok()),
    };
    let server = Server::new(ServerOptions {
        max_request_bytes: options.max_request_bytes,
        deadline: options.deadline,
        drain_timeout: options.drain_timeout,
        metrics: Some(Metrics::install()?),
        session_ttl: options.session_ttl,
        playground: options.playground,
        store: stores.conversations,
        ..ServerOptions::default()
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
    announce(&server, listener.local_addr()?)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
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
}

impl Default for Stores {
    fn default() -> Self {
        Self {
            token_cache: None,
            conversations: Arc::new(MemoryStateStore::default()),
            rate_limiter: Arc::new(MemoryRateLimiter::default()),
        }
    }
}

#[cfg(feature = "redis")]
async fn shared_stores(url: &str) -> anyhow::Result<Stores> {
    let redis = patchbay_redis::Redis::connect(url, "patchbay:").await?;
    Ok(Stores {
        token_cache: Some(Arc::new(redis.token_cache())),
        conversations: Arc::new(redis.state_store()),
        rate_limiter: Arc::new(redis.rate_limiter()),
    })
}

#[cfg(not(feature = "redis"))]
async fn shared_stores(_url: &str) -> anyhow::Result<Stores> {
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

/// Reloads every bot file; a file that no longer loads keeps its old bot.
async fn reload(
    server: &Server,
    shared: &Shared,
    paths: &[PathBuf],
    names: &mut HashMap<PathBuf, String>,
) {
    for path in paths {
        match shared.engine(path).await {
            Ok(engine) => {
                let name = engine.bot().name.clone();
                server.insert_bot(engine);
                if let Some(old) = names.insert(path.clone(), name.clone())
                    && old != name
                {
                    server.remove_bot(&old);
                }
                tracing::info!(file = %path.display(), bot = %name, "reloaded");
            }
            Err(error) => tracing::error!(
                file = %path.display(),
                error = format!("{error:#}"),
                "reload rejected; the previous version keeps serving"
            ),
        }
    }
}
