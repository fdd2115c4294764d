//! Logs and traces on stderr: `tracing` spans per turn, interaction,
//! integration call, attempt, token fetch and script, each closing with its
//! duration. Credentials and tokens are never put into fields; and since a
//! bot file may still place a secret where a field shows it (an
//! `{$env...}` in a URL's host names the host), every line is masked with
//! the loaded bots' secrets before it is written.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use patchbay_credentials::KnownSecrets;
use tracing_subscriber::fmt::MakeWriter;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// One readable line per event, coloured on a terminal (never with
    /// `NO_COLOR` set).
    Text,
    /// One JSON object per event.
    Json,
}

/// Installs the subscriber: `filter` (as RUST_LOG reads) if given, else
/// `$RUST_LOG`, else `default`.
pub(crate) fn init(filter: Option<&str>, default: &str, format: Format) -> anyhow::Result<()> {
    let filter = match filter {
        Some(filter) => EnvFilter::try_new(filter)?,
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(default))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MaskedStderr)
        .with_span_events(FmtSpan::CLOSE);
    let installed = match format {
        Format::Text => builder
            .with_ansi(color(std::io::stderr().is_terminal()))
            .try_init(),
        Format::Json => builder.json().try_init(),
    };
    JSON.store(matches!(format, Format::Json), Ordering::Relaxed);
    installed.map_err(|error| anyhow::anyhow!("{error}"))
}

/// Whether logs are JSON lines (`--log-format json`): then nothing else
/// (a diagnostic's box) may be written to stderr, only log events.
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether logs are JSON lines: what would be printed to stderr is logged
/// instead.
pub(crate) fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Whether to colour what goes to a stream (logs, diagnostics): never when
/// `NO_COLOR` is set to anything (https://no-color.org), always when
/// `CLICOLOR_FORCE` is (and is not `0`), else on a terminal.
pub(crate) fn color(is_terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if set("NO_COLOR").is_some() {
        false
    } else if set("CLICOLOR_FORCE").is_some_and(|value| value != "0") {
        true
    } else {
        is_terminal
    }
}

/// The secrets of the bots this process has loaded.
static SECRETS: RwLock<Option<KnownSecrets>> = RwLock::new(None);

/// Masks `secrets` in every log line from now on.
pub(crate) fn mask(secrets: &KnownSecrets) {
    let mut known = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    known.get_or_insert_with(KnownSecrets::new).merge(secrets);
}

/// Stderr, one event at a time, masked.
struct MaskedStderr;

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedEvent;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedEvent(Vec::new())
    }
}

/// One event's text, written (masked) when the formatter is done with it.
struct MaskedEvent(Vec<u8>);

impl Write for MaskedEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedEvent {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let known = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
        let masked = match known.as_ref() {
            Some(secrets) if !secrets.is_empty() => secrets.mask(&text),
            _ => text.into_owned(),
        };
        // Nowhere to report a failed write to stderr.
        let _ = std::io::stderr().write_all(masked.as_bytes());
    }
}
