//! The patchbay bot file: one typed model read from YAML or JSON, with every
//! template, JSONPath and regular expression compiled at load, validated,
//! and linted.
//!
//! # Invariant
//! A [`Bot`] returned by [`load`] is valid: names are unique, every reference
//! resolves, every path and pattern is compiled. Nothing in it is parsed
//! again per call. This crate does no I/O: callers pass the file's name and
//! text and decide where diagnostics go.
//!
//! # API boundary
//! [`load`] (text in, [`Loaded`] or a [`Report`] out), the model types, and
//! [`json_schema`] (with [`BOT_SCHEMA_ID`] and [`finish_schema`]). A
//! [`Report`] holds [`Diagnostic`]s with byte spans and renders them (file,
//! line, column, the source line with a caret, and a suggestion), or turns
//! them into JSON.
#![deny(missing_docs)]

mod bot_context;
mod conversation;
mod diagnostic;
mod document;
mod field_path;
mod load;
mod locate;
mod model;
mod pattern;
mod raw;
mod schema;
mod suggest;
mod template;
mod validate;

pub use bot_context::{
    BOT_CONTEXT_FUNCTIONS, BotContextFunction, Documented, Provision, bot_context_function,
};
pub use conversation::{
    AnswerMatch, AnswerRule, Ask, Button, Capture, CaptureSource, CaptureTarget, Card,
    ChoiceDisplay, ChoiceRef, ListStyle, MultipleChoice, NoMatch, Question, Scope, normalized,
    same_text,
};
pub use diagnostic::{Code, Diagnostic, Position, RenderStyle, Report, ScriptSite, Severity};
pub use document::{DocStep, Document, did_you_mean};
pub use field_path::{
    CompiledPath, FieldPath, FieldPathError, compile_json_path, splice_path_values,
};
pub use load::{Format, Loaded, MAX_FILE_BYTES, load};
pub use model::*;
pub use pattern::{CompiledPattern, PatternError};
pub use schema::{BOT_SCHEMA_ID, finish_schema};
pub use template::{
    FieldName, FieldRef, FieldSelector, Reference, Segment, SystemVariable, Template, UrlPart,
    fixes_domain_after_value, is_dns_label, is_host_name, url_part,
};

/// The JSON Schema (draft 2020-12, `$id` [`BOT_SCHEMA_ID`]) of the bot
/// file, for editors and other tools: it takes every file [`load`] reads
/// into a bot, and refuses what [`load`] refuses wherever a schema can say
/// so (unknown fields, the fields of each `type`, wrong values); what needs
/// the whole bot (names that resolve, compiled URLs and paths) is left to
/// [`load`].
pub fn json_schema() -> serde_json::Value {
    schema::bot_schema()
}

/// Counts one compilation (`patchbay_compiled_total{kind}`): everything is
/// compiled when a bot loads, so in a steady state this counter stands
/// still; `cargo xtask bench` checks that it does.
pub(crate) fn count_compilation(kind: &'static str) {
    metrics::counter!("patchbay_compiled_total", "kind" => kind).increment(1);
}
