//! How `patchbay run` fails: a stable code (the codes `serve` answers with
//! where the failure is the same), a message, the exit code, and what a
//! tool needs beside them. With `--json` it is printed as one JSON object
//! on stdout, `{"error": {"code", "message", ...}}`, so that every outcome
//! of `run --json` is one object; without it, as `error: ...` on stderr.

use std::io::Write;
use std::process::ExitCode;

use patchbay_config::Report;
use patchbay_engine::EngineError;
use serde_json::{Map, Value, json};

/// A `run` that did not end in a turn shown as success.
#[derive(Debug)]
pub(crate) struct RunError {
    /// Stable, for tools: `usage`, `bot_unreadable`, `invalid_bot`, ...
    code: &'static str,
    /// For people; may change.
    message: String,
    /// The process's exit code: 2 for usage mistakes, 1 otherwise.
    exit: u8,
    /// More members of the error object (a bot's diagnostics, the calls a
    /// replay had no answer for).
    details: Box<Map<String, Value>>,
    /// The turn, when one ran before the failure (a replay miss).
    turn: Option<Box<Value>>,
    /// Lines already meant for stderr in the human form (a replay miss
    /// names each call on its own line).
    human_lines: Vec<String>,
}

impl RunError {
    fn new(code: &'static str, exit: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            exit,
            details: Box::default(),
            turn: None,
            human_lines: Vec::new(),
        }
    }

    /// A missing or malformed argument (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", 2, message)
    }

    /// The bot has no interaction of that name (exit 2, as a usage mistake).
    pub(crate) fn unknown_interaction(message: impl Into<String>) -> Self {
        Self::new("unknown_interaction", 2, message)
    }

    /// The `--state` file could not be read, or is not a state (`serve`'s
    /// code for a bad `state`).
    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Self::new("invalid_state", 1, message)
    }

    /// `--attr` pairs that are not attributes (`serve`'s codes for bad
    /// `attributes`: `invalid_attributes`, `attributes_too_large`).
    pub(crate) fn attributes(error: patchbay_engine::AttributesError) -> Self {
        Self::new(error.code(), 2, format!("--attr: {error}"))
    }

    /// The `--save-state` file could not be written.
    pub(crate) fn state_unwritable(message: impl Into<String>) -> Self {
        Self::new("state_unwritable", 1, message)
    }

    /// The bot file could not be read.
    pub(crate) fn bot_unreadable(message: impl Into<String>) -> Self {
        Self::new("bot_unreadable", 1, message)
    }

    /// The bot file has errors; `diagnostics` is the report as JSON
    /// ([`Report::to_json`]: secrets masked).
    pub(crate) fn invalid_bot(report: &Report) -> Self {
        let mut error = Self::new("invalid_bot", 1, report.summary());
        error
            .details
            .insert("diagnostics".to_owned(), report.to_json());
        error
    }

    /// Recordings could not be read or written.
    pub(crate) fn recordings(message: impl Into<String>) -> Self {
        Self::new("recordings", 1, message)
    }

    /// A replay had no recording for these calls (already redacted); the
    /// turn ran on the failure path for them.
    pub(crate) fn replay_miss(calls: Vec<String>, turn: Value) -> Self {
        let mut error = Self::new(
            "replay_miss",
            1,
            format!("{} call(s) had no recording to answer them", calls.len()),
        );
        error.human_lines = calls
            .iter()
            .map(|call| format!("no answer for {call}"))
            .collect();
        error.details.insert(
            "calls".to_owned(),
            Value::Array(calls.into_iter().map(Value::String).collect()),
        );
        error.turn = Some(Box::new(turn));
        error
    }

    /// Calls that never reached their upstream (a name that does not
    /// resolve, a refused or timed-out connection, a TLS failure, an
    /// address the network guard refuses): `calls` each with why (already
    /// redacted). The turn ran, on the failure path for them.
    pub(crate) fn upstream_unreachable(calls: Vec<String>, turn: Value) -> Self {
        let mut error = Self::new(
            "upstream_unreachable",
            1,
            format!("{} call(s) did not reach the upstream", calls.len()),
        );
        error.human_lines = calls
            .iter()
            .map(|call| format!("no response to {call}"))
            .collect();
        error.details.insert(
            "calls".to_owned(),
            Value::Array(calls.into_iter().map(Value::String).collect()),
        );
        error.turn = Some(Box::new(turn));
        error
    }

    /// Anything else that stopped the run (the message says what).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new("failed", 1, message)
    }

    /// Why the engine could not build or run the turn, with `serve`'s code
    /// where `serve` has one for the same failure.
    pub(crate) fn engine(error: &EngineError, message: impl Into<String>) -> Self {
        let code = error.code();
        Self::new(code, 1, message)
    }

    /// The same error with its message replaced (by a redacted one).
    pub(crate) fn map_message(mut self, redact: impl Fn(&str) -> String) -> Self {
        self.message = redact(&self.message);
        self.human_lines = self.human_lines.iter().map(|line| redact(line)).collect();
        self
    }

    /// The stable code.
    #[cfg(test)]
    fn code(&self) -> &'static str {
        self.code
    }

    /// The error as `run --json` prints it.
    pub(crate) fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".to_owned(), Value::from(self.code));
        error.insert("message".to_owned(), Value::from(self.message.clone()));
        error.extend(self.details.as_ref().clone());
        let mut json = json!({ "error": error });
        if let Some(turn) = &self.turn {
            json["turn"] = turn.as_ref().clone();
        }
        json
    }

    /// Prints the error (JSON on stdout, or lines on stderr) and returns
    /// the exit code.
    pub(crate) fn report(&self, json: bool) -> ExitCode {
        if json {
            let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_else(|_| {
                format!(r#"{{"error":{{"code":"{}","message":""}}}}"#, self.code)
            });
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        } else {
            let mut stderr = std::io::stderr().lock();
            for line in &self.human_lines {
                let _ = writeln!(stderr, "error: {line}");
            }
            if self.human_lines.is_empty() {
                let _ = writeln!(stderr, "error: {}", self.message);
            }
        }
        ExitCode::from(self.exit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_failures_keep_serves_codes() {
        let chain = EngineError::ChainLimit("a".to_owned());
        assert_eq!(
            RunError::engine(&chain, chain.to_string()).code(),
            "chain_limit"
        );
        let json = RunError::engine(&chain, "stopped").to_json();
        assert_eq!(json["error"]["code"], "chain_limit");
        assert_eq!(json["error"]["message"], "stopped");
        assert!(json.get("turn").is_none());
    }
}
