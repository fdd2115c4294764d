//! The `patchbay` command.

mod auth;
mod bot_env;
mod check;
mod demo;
mod init;
mod logging;
mod run;
mod run_error;
mod serve;
mod test;
mod token_store;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use patchbay_config::{Bot, RenderStyle, Report, Severity};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure: errors in a bot file, a turn that could not run, a server that could not start
  2  usage error: a missing or malformed argument";

/// Runs chatbot API integrations: check bot files, run turns, serve them
/// over HTTP, and see it all in the demo.
#[derive(Debug, Parser)]
#[command(name = "patchbay", version, after_help = EXIT_CODES)]
struct Cli {
    /// What to log, as RUST_LOG filters it (e.g. `info`,
    /// `patchbay_engine=debug`) [default: $RUST_LOG, else `warn`, or `info`
    /// for serve].
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    /// How logs are written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load, validate and lint bot files and test files (`*.test.yaml`).
    /// Exit 0 when clean, 1 on errors.
    #[command(after_help = "\
Examples:
  patchbay check examples/faq-bot.yaml
  patchbay check examples/                  # every *.yaml under it: bots and test files
  patchbay check --deny-warnings --json examples/*.yaml")]
    Check {
        /// Bot files (YAML, or JSON when the name ends in .json), test
        /// files (`*.test.yaml`: read as test files, their bot loaded and
        /// the interactions their cases name looked up in it), or
        /// directories to search for both (`*.yaml`, `*.yml`).
        #[arg(required = true, value_name = "PATH")]
        bots: Vec<PathBuf>,
        /// Print one JSON object instead of the human report.
        #[arg(long)]
        json: bool,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run the example bots against an embedded demo API: no network, no set-up.
    #[command(after_help = "\
Examples:
  patchbay demo
  patchbay demo --serve --listen 127.0.0.1:8080
  patchbay demo --serve --api-listen 127.0.0.1:9090   # the API `patchbay init`'s bot calls")]
    Demo {
        /// Leave the demo API and `patchbay serve` running, and print curl
        /// commands to try (Ctrl-C stops).
        #[arg(long)]
        serve: bool,
        /// Where the server listens with --serve.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the demo API listens with --serve [default: a free port on
        /// 127.0.0.1].
        #[arg(long, value_name = "ADDR", requires = "serve")]
        api_listen: Option<std::net::SocketAddr>,
    },
    /// Write a bot that works and its test file into DIR (`bot.yaml`,
    /// `bot.test.yaml`), to start your own from; never replaces a file.
    #[command(after_help = "\
Examples:
  patchbay init my-bot && patchbay test my-bot
  patchbay init            # into the current directory

docs/getting-started.md walks through the files.")]
    Init {
        /// The directory (created if need be).
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of the bot file (or of the test file), for
    /// editors: docs/config.md, "Editor set-up".
    #[command(after_help = "\
Examples:
  patchbay schema > bot.schema.json
  patchbay schema --test-file > test-file.schema.json")]
    Schema {
        /// The schema of test files (`*.test.yaml`) instead of bot files.
        #[arg(long)]
        test_file: bool,
    },
    /// Serve bots over HTTP: turns, invocations, health, readiness, metrics.
    /// SIGTERM or Ctrl-C drains in-flight requests and exits 0; SIGHUP
    /// reloads the bot files (a file that no longer loads keeps its old bot).
    #[command(after_help = "\
Examples:
  patchbay serve --bot examples/faq-bot.yaml --listen 127.0.0.1:8080
  curl -s localhost:8080/v1/bots/faq-bot/turns -H 'content-type: application/json' -d '{\"interaction\":\"search\",\"message\":\"password\"}'
  kill -HUP $(pidof patchbay)   # reload the bot files
  patchbay serve --bot examples/faq-bot.yaml --playground   # then open http://127.0.0.1:8080/
  patchbay serve --bot bot.yaml --store redis://cache:6379/   # replicas share one Redis
  curl -s localhost:8080/v1/bots/faq-bot/turns -H 'content-type: application/json' -d '{\"conversationId\":\"c1\",\"message\":\"password\"}'

See docs/http-api.md for the API.")]
    Serve {
        /// A bot file to serve (repeatable).
        #[arg(long = "bot", value_name = "BOT", required = true)]
        bots: Vec<PathBuf>,
        /// Where to listen.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// An environment variable of the bots, NAME=VALUE (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Keep OAuth 2 tokens in this file instead of in memory.
        #[arg(long, value_name = "PATH", conflicts_with = "store")]
        token_store: Option<PathBuf>,
        /// Share OAuth 2 tokens, stored conversations and rate limits with
        /// every replica through this Redis
        /// (`redis://[:password@]host[:port][/db]`, `rediss://` for TLS;
        /// docs/deploy.md). Without it all three live in this process.
        #[arg(long, value_name = "URL", env = "PATCHBAY_STORE")]
        store: Option<String>,
        /// How long a stored conversation's session lives without a turn,
        /// in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 1800, value_parser = ttl_secs())]
        session_ttl_secs: u64,
        /// The most one stored conversation may hold (its session and its
        /// user's variables), in bytes; a turn that would keep more is
        /// refused (422 `conversation_too_large`) and saves nothing.
        #[arg(long, value_name = "BYTES", default_value_t = patchbay_engine::DEFAULT_MAX_CONVERSATION_BYTES)]
        max_conversation_bytes: usize,
        /// How many conversations, and users' records, the in-memory store
        /// keeps (without `--store`); past that the least recently used is
        /// evicted (`patchbay_conversations_evicted_total`).
        #[arg(long, value_name = "N", default_value_t = patchbay_engine::DEFAULT_MAX_CONVERSATIONS)]
        max_conversations: usize,
        /// How long a user's "forever" variables (`setBotVariable(name,
        /// value, session, true)`) are kept after the last turn that changed
        /// one of them, in seconds (180 days, as in the product).
        #[arg(long, value_name = "SECONDS", default_value_t = patchbay_engine::DEFAULT_USER_VARIABLES_TTL.as_secs(), value_parser = ttl_secs())]
        user_variables_ttl_secs: u64,
        /// Serve the playground at `/`: pick a bot and an interaction, run
        /// turns by hand, see each step's trace and the state.
        #[arg(long)]
        playground: bool,
        /// Let a turn ask for each call's response (status, headers, body
        /// and the document its fields read, 16 KiB each, secrets masked)
        /// in its `steps` with `"showResponses": true`; without it such a
        /// turn answers 403 `responses_hidden`. Off by default: responses
        /// may hold personal data.
        #[arg(long)]
        show_responses: bool,
        /// The largest request body accepted, in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
        max_request_bytes: usize,
        /// How long one request may take, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 30_000)]
        deadline_ms: u64,
        /// How long in-flight requests may finish after SIGTERM, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 30_000)]
        drain_timeout_ms: u64,
        #[command(flatten)]
        clients: serve::ClientLimits,
    },
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  patchbay completions bash > /etc/bash_completion.d/patchbay
  patchbay completions zsh > ~/.zfunc/_patchbay")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run one turn of a bot and show what happened: from an interaction,
    /// or from a message (where the state waits, or the dialog the
    /// starters pick). A call that reaches no upstream (a name that does
    /// not resolve, a refused or timed-out connection, TLS, an address the
    /// network guard refuses) fails the run: the turn is shown, exit 1.
    #[command(after_help = "\
Examples:
  patchbay run examples/order-status.yaml --interaction look-up-order --message 1234 \\
      --env ORDERS_BASE_URL=http://127.0.0.1:9000 --env ORDERS_API_TOKEN=secret
  patchbay run bot.yaml --message 'where is my order' --save-state s.json   # turn 1
  patchbay run bot.yaml --state s.json --message 1234 --save-state s.json   # turn 2, the answer
  patchbay run examples/support-ticket.yaml --interaction create --var subject=Crash --json
  patchbay run examples/faq-bot.yaml --interaction search --message password --record recordings/faq
  patchbay run examples/faq-bot.yaml --interaction search --message password --replay recordings/faq")]
    Run {
        /// The bot file.
        #[arg(value_name = "BOT")]
        bot: PathBuf,
        /// The interaction the turn starts at. Without it the turn starts
        /// from --message: where the state waits, or else the dialog whose
        /// starter matches it.
        #[arg(long, value_name = "NAME")]
        interaction: Option<String>,
        /// The user's message (empty when not given; required without
        /// --interaction).
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        /// The payload of the button or quick reply the user clicked (its
        /// label goes in --message).
        #[arg(long, value_name = "PAYLOAD")]
        payload: Option<String>,
        /// A bot variable, NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// An environment variable of the bot, NAME=VALUE (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// An attribute the platform sends with the turn, KEY=VALUE
        /// (repeatable; a dotted key names a member of an object:
        /// channel=lp_web, engagement.campaignId=7,
        /// customerInfo.customerId=c1; values are strings). Set over the
        /// state's attributes, member by member.
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
        /// Print one JSON object (spec section 5) instead of the trace.
        #[arg(long)]
        json: bool,
        /// Show each call's response under it: status, headers, the body as
        /// received and the document the fields read (after the transform),
        /// each cut at 16 KiB, secrets masked; with --json, as
        /// `steps[i].call.response`.
        #[arg(long)]
        show_body: bool,
        /// Where OAuth 2 tokens are kept [default: $XDG_DATA_HOME/patchbay/tokens.json].
        #[arg(long, value_name = "PATH")]
        token_store: Option<PathBuf>,
        /// Write each upstream exchange to DIR, secrets redacted, for
        /// `--replay` and test files' `replay:`.
        #[arg(long, value_name = "DIR", conflicts_with = "replay")]
        record: Option<PathBuf>,
        /// Answer every upstream call from the recordings in DIR (offline);
        /// a call with no recording fails the run.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
        /// Start from this state: the JSON `serve` answers as `state` (or
        /// a file --save-state wrote); --var values are set over it.
        #[arg(long = "state", value_name = "FILE")]
        state: Option<PathBuf>,
        /// Write the state the turn leaves to FILE (it may be --state's),
        /// for the next turn's --state.
        #[arg(long, value_name = "FILE")]
        save_state: Option<PathBuf>,
    },
    /// Run bot test files (`*.test.yaml`): each case one turn against a
    /// local upstream that answers its calls; exit 1 on any failure.
    #[command(after_help = "\
Examples:
  patchbay test                                  # every *.test.yaml under .
  patchbay test examples/faq-bot.test.yaml
  patchbay test examples --format junit > report.xml
  patchbay test examples/faq-bot.test.yaml --replay recordings/faq

See docs/testing.md for the file format.")]
    Test {
        /// Test files, or directories to search for `*.test.yaml`.
        #[arg(value_name = "PATH", default_value = ".")]
        paths: Vec<PathBuf>,
        /// How results are shown.
        #[arg(long, value_enum, default_value_t = test::Format::Human)]
        format: test::Format,
        /// Answer calls the cases do not answer from the recordings in DIR.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
    },
    /// Authorize an OAuth 2 credential (authorization-code grant with PKCE)
    /// and keep its tokens for later runs.
    #[command(after_help = "\
Examples:
  patchbay auth examples/faq-bot.yaml kb-oauth --env KB_CLIENT_ID=my-client")]
    Auth {
        /// The bot file.
        #[arg(value_name = "BOT")]
        bot: PathBuf,
        /// The credential's name.
        #[arg(value_name = "CREDENTIAL")]
        credential: String,
        /// An environment variable of the bot, NAME=VALUE (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Where tokens are kept [default: $XDG_DATA_HOME/patchbay/tokens.json].
        #[arg(long, value_name = "PATH")]
        token_store: Option<PathBuf>,
        /// How long to wait for the browser's redirect, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `run --json` promises one JSON object on stdout whatever
            // happens, arguments clap refuses included.
            let args: Vec<String> = std::env::args().collect();
            if error.use_stderr() && asks_for_run_json(&args) {
                let first_line = error.to_string();
                let first_line = first_line.lines().next().unwrap_or_default();
                let first_line = first_line.strip_prefix("error: ").unwrap_or(first_line);
                return run_error::RunError::usage(first_line).report(true);
            }
            error.exit()
        }
    };
    let run_json = matches!(cli.command, Command::Run { json: true, .. });
    let default_filter = match cli.command {
        Command::Serve { .. } | Command::Demo { serve: true, .. } => "info",
        _ => "warn",
    };
    if let Err(error) = logging::init(cli.log.as_deref(), default_filter, cli.log_format) {
        return run_error::RunError::usage(format!("--log: {error}")).report(run_json);
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Check {
            bots,
            json,
            deny_warnings,
        } => {
            let mut scripts = ScriptChecker::default();
            let reports = check::files(&bots)?
                .iter()
                .map(|path| {
                    if check::is_test_file(path) {
                        check::test_file(path)
                    } else {
                        check(path, &mut scripts)
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let errors: usize = reports.iter().map(|r| r.count(Severity::Error)).sum();
            let warnings: usize = reports.iter().map(|r| r.count(Severity::Warning)).sum();
            if json {
                let files: Vec<_> = reports.iter().map(Report::to_json).collect();
                let out = serde_json::json!({
                    "errors": errors,
                    "warnings": warnings,
                    "files": files,
                });
                writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
            } else {
                let style = if logging::color(std::io::stdout().is_terminal()) {
                    RenderStyle::Color
                } else {
                    RenderStyle::Plain
                };
                for report in &reports {
                    write!(stdout, "{}", report.render(style))?;
                    writeln!(stdout, "{}", report.summary())?;
                }
            }
            let failed = errors > 0 || (deny_warnings && warnings > 0);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Auth {
            bot,
            credential,
            env,
            token_store,
            timeout_secs,
        } => {
            let token_store = token_store.unwrap_or_else(token_store::FileTokenStore::default_path);
            let runtime = runtime()?;
            runtime.block_on(auth::run(auth::AuthOptions {
                bot: &bot,
                credential: &credential,
                env: &env,
                token_store: &token_store,
                timeout: Duration::from_secs(timeout_secs),
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            bot,
            interaction,
            message,
            payload,
            vars,
            env,
            attrs,
            json,
            show_body,
            token_store,
            record,
            replay,
            state,
            save_state,
        } => {
            // Usage mistakes get one line and exit 2, as `check` documents;
            // with --json every failure is one JSON object on stdout.
            let outcome = (|| {
                if interaction.is_none() && message.is_none() {
                    return Err(run_error::RunError::usage(
                        "`patchbay run` needs --interaction NAME or --message TEXT",
                    ));
                }
                let pairs = |flag: &str, items: &[String]| {
                    items
                        .iter()
                        .map(|item| {
                            parse_pair(item).map_err(|error| {
                                run_error::RunError::usage(format!("--{flag}: {error}"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                let vars = pairs("var", &vars)?;
                let env = pairs("env", &env)?;
                let attrs = pairs("attr", &attrs)?;
                let attributes = if attrs.is_empty() {
                    None
                } else {
                    let pairs = attrs
                        .iter()
                        .map(|(key, value)| (key.as_str(), value.as_str()));
                    Some(
                        patchbay_engine::Attributes::from_pairs(pairs)
                            .map_err(run_error::RunError::attributes)?,
                    )
                };
                let token_store =
                    token_store.unwrap_or_else(token_store::FileTokenStore::default_path);
                let runtime = runtime().map_err(|error| {
                    run_error::RunError::failed(format!("cannot start the runtime: {error}"))
                })?;
                runtime.block_on(run::run(run::RunOptions {
                    bot: &bot,
                    interaction: interaction.as_deref(),
                    message: message.as_deref().unwrap_or_default(),
                    payload: payload.as_deref(),
                    vars: &vars,
                    env: &env,
                    attributes,
                    json,
                    show_body,
                    token_store: &token_store,
                    record: record.as_deref(),
                    replay: replay.as_deref(),
                    state: state.as_deref(),
                    save_state: save_state.as_deref(),
                }))
            })();
            Ok(outcome.unwrap_or_else(|error| error.report(json)))
        }
        Command::Test {
            paths,
            format,
            replay,
        } => runtime()?.block_on(test::run(test::TestOptions {
            paths,
            format,
            replay,
        })),
        Command::Demo {
            serve,
            listen,
            api_listen,
        } => {
            let runtime = runtime()?;
            if serve {
                runtime.block_on(demo::serve(listen, api_listen))?;
            } else {
                runtime.block_on(demo::run())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            bots,
            listen,
            env,
            token_store,
            store,
            max_request_bytes,
            deadline_ms,
            drain_timeout_ms,
            session_ttl_secs,
            max_conversation_bytes,
            max_conversations,
            user_variables_ttl_secs,
            playground,
            show_responses,
            clients,
        } => {
            let env = match env.iter().map(|item| parse_pair(item)).collect() {
                Ok(env) => env,
                Err(error) => {
                    let _ = writeln!(std::io::stderr(), "error: --env: {error}");
                    return Ok(ExitCode::from(2));
                }
            };
            let runtime = runtime()?;
            runtime.block_on(serve::run(serve::ServeOptions {
                bots,
                listen,
                env,
                token_store,
                store,
                max_request_bytes,
                deadline: Duration::from_millis(deadline_ms),
                drain_timeout: Duration::from_millis(drain_timeout_ms),
                session_ttl: Duration::from_secs(session_ttl_secs.max(1)),
                conversation_limits: patchbay_engine::MemoryStoreLimits {
                    max_conversation_bytes,
                    max_conversations,
                },
                user_variables_ttl: Duration::from_secs(user_variables_ttl_secs.max(1)),
                playground,
                show_responses,
                clients,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { dir } => {
            init::run(&dir, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "patchbay", &mut stdout);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { test_file } => {
            let schema = if test_file {
                patchbay_testing::json_schema()
            } else {
                patchbay_config::json_schema()
            };
            writeln!(stdout, "{}", serde_json::to_string_pretty(&schema)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The runtime of the commands that make calls or serve.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// `NAME=VALUE`, for `--var` and `--env`.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// Whether the arguments ask for `run --json` (looked at only when clap
/// refused them, so they are read as plainly as possible: the `run`
/// subcommand and the flag anywhere after it).
fn asks_for_run_json(args: &[String]) -> bool {
    let mut after_command = args.iter().skip(1).skip_while(|arg| arg.as_str() != "run");
    after_command.next().is_some() && after_command.any(|arg| arg == "--json")
}

/// Why a bot file could not be loaded.
enum LoadError {
    /// The file could not be read.
    Unreadable(anyhow::Error),
    /// The file has errors (already printed to stderr).
    Invalid(Report),
}

/// Loads a bot file for a command that runs it: errors are printed and end
/// the command; warnings are printed and it goes on.
fn load_bot(path: &Path) -> anyhow::Result<Bot> {
    load_bot_or_report(path).map_err(|error| match error {
        LoadError::Unreadable(error) => error,
        LoadError::Invalid(report) => anyhow::anyhow!("{}", report.summary()),
    })
}

/// [`load_bot`], keeping the report of a file with errors for the caller.
fn load_bot_or_report(path: &Path) -> Result<Bot, LoadError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read bot file {}", path.display()))
        .map_err(LoadError::Unreadable)?;
    let style = if logging::color(std::io::stderr().is_terminal()) {
        RenderStyle::Color
    } else {
        RenderStyle::Plain
    };
    // With JSON logs the report is a log event, not a box between them.
    let show = |report: &Report| {
        if logging::json() {
            let diagnostics = report.to_json();
            match report.count(Severity::Error) {
                0 => tracing::warn!(%diagnostics, "{}", report.summary()),
                _ => tracing::error!(%diagnostics, "{}", report.summary()),
            }
        } else {
            let _ = write!(std::io::stderr(), "{}", report.render(style));
        }
    };
    match patchbay_config::load(&path.display().to_string(), &text) {
        Ok(loaded) => {
            if !loaded.warnings.diagnostics().is_empty() {
                show(&loaded.warnings);
            }
            Ok(loaded.bot)
        }
        Err(report) => {
            show(&report);
            Err(LoadError::Invalid(report))
        }
    }
}

fn check(path: &Path, scripts: &mut ScriptChecker) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read bot file {}", path.display()))?;
    let name = path.display().to_string();
    Ok(match patchbay_config::load(&name, &text) {
        Ok(loaded) => {
            let mut report = loaded.warnings;
            scripts.check(&loaded.scripts, &mut report)?;
            report
        }
        Err(report) => report,
    })
}

/// A lifetime in seconds: at least one, at most ten years (a clock plus a
/// larger one overflows, and Redis takes expiries in milliseconds).
fn ttl_secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=10 * 365 * 24 * 60 * 60)
}

/// Compiles a bot's scripts on V8, started only when a bot has scripts.
#[derive(Default)]
struct ScriptChecker {
    started: Option<(tokio::runtime::Runtime, patchbay_script::ScriptRuntime)>,
}

impl ScriptChecker {
    fn check(
        &mut self,
        sites: &[patchbay_config::ScriptSite],
        report: &mut Report,
    ) -> anyhow::Result<()> {
        if sites.is_empty() {
            return Ok(());
        }
        let (runtime, scripts) = match &mut self.started {
            Some(started) => started,
            None => self.started.insert((
                tokio::runtime::Builder::new_current_thread().build()?,
                patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
                    workers: 1,
                    ..patchbay_script::RuntimeOptions::default()
                }),
            )),
        };
        let realm = scripts.realm("check");
        for site in sites {
            match runtime.block_on(scripts.compile(&realm, &site.owner, &site.code)) {
                Ok(_) => {}
                Err(patchbay_script::ScriptError::Syntax {
                    line,
                    column,
                    message,
                    ..
                }) => report.add_script_error(site, line, column, &message),
                Err(other) => anyhow::bail!("cannot check scripts: {other}"),
            }
        }
        Ok(())
    }
}
