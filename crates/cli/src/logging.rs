//! Logs and traces on stderr: `tracing` spans per turn, interaction,
//! integration call, attempt, token fetch and script, each closing with its
//! duration. Nothing logged carries a secret (credentials and tokens are
//! never put into fields), so no filter needs to scrub.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// One readable line per event, coloured on a terminal.
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
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE);
    let installed = match format {
        Format::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder.json().try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("{error}"))
}
