//! Diagnostics: what is wrong, where, and what to write instead.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The bot cannot be loaded.
    Error,
    /// The bot loads, but something is likely wrong or unsafe.
    Warning,
}

/// A stable identifier for each kind of diagnostic, for tools and docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The file is not valid YAML or JSON.
    Syntax,
    /// The file is larger than a bot file may be.
    TooLarge,
    /// A field the model does not have (often a typo).
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong type or not one of the allowed words.
    InvalidValue,
    /// A custom data field's JSONPath does not compile.
    InvalidJsonPath,
    /// A condition's regular expression does not compile.
    InvalidRegex,
    /// A dialog starter's pattern does not compile.
    InvalidPattern,
    /// Two things share a name that must be unique.
    DuplicateName,
    /// A response data variable name that is not an identifier.
    InvalidRdvn,
    /// A name reserved for next actions used as an interaction name.
    ReservedName,
    /// A credential name that no credential has.
    UnknownCredential,
    /// An integration name that no integration has.
    UnknownIntegration,
    /// An interaction name that no interaction has.
    UnknownInteraction,
    /// A dialog name that no dialog has.
    UnknownDialog,
    /// A URL template that cannot form a valid http(s) URL.
    InvalidUrl,
    /// A secret written in the file rather than as `{$env.NAME}`.
    InlineSecret,
    /// A credential whose fields do not fit together.
    InvalidCredential,
    /// A condition without the operand its comparison needs.
    InvalidCondition,
    /// A dialog without interactions.
    EmptyDialog,
    /// A script that does not parse.
    ScriptSyntax,
    /// A credential or token sent in the URL or its query string.
    SecretInUrl,
    /// A credential sent over plain `http://`.
    CredentialOverHttp,
    /// A value a conversation can set placed in a URL's host.
    CallerControlledUrl,
    /// A script that keeps data forever (per user, across conversations).
    PersistForever,
    /// A template reference that names nothing known.
    UnknownReference,
    /// An interaction that no dialog, rule or next action leads to.
    UnreachableInteraction,
    /// A script calling a `botContext` function that patchbay's
    /// `botContext` does not have (a TypeError when the script runs).
    UnknownFunction,
    /// A script calling a `botContext` function with fewer or more
    /// arguments than its signature has.
    WrongArgumentCount,
    /// A `{$botContext.slot.NAME}` reference to a slot no dialog
    /// declares: nothing fills it, so it always renders empty.
    UnfilledSlot,
    /// A question whose choices, buttons or cards do not make a question:
    /// none, two choices with the same text, more cards than the product
    /// shows.
    InvalidQuestion,
    /// An `options` match naming no choice of the question.
    UnknownChoice,
    /// A capture's `group` naming no named group of the rule's `regex`.
    UnknownGroup,
    /// A capture into a slot the question's dialog does not declare.
    UnknownSlot,
    /// A rule or capture that needs another kind of question (`options`
    /// or `from: choice` on a question without choices).
    QuestionKindMismatch,
    /// A `payload` match or capture on a question with no button or quick
    /// reply to send one.
    PayloadNeverSent,
    /// A URL whose host is a private or loopback address (written, or the
    /// default of the `{$env.NAME}` it starts with) that `network.allow`
    /// does not name: the network guard refuses every call to it.
    BlockedByNetwork,
    /// A test file whose bot file does not exist or does not load.
    BotNotLoaded,
}

impl Code {
    /// The code as shown to people and tools, e.g. `unknown-field`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::TooLarge => "too-large",
            Self::UnknownField => "unknown-field",
            Self::MissingField => "missing-field",
            Self::InvalidValue => "invalid-value",
            Self::InvalidJsonPath => "invalid-json-path",
            Self::InvalidRegex => "invalid-regex",
            Self::InvalidPattern => "invalid-pattern",
            Self::DuplicateName => "duplicate-name",
            Self::InvalidRdvn => "invalid-rdvn",
            Self::ReservedName => "reserved-name",
            Self::UnknownCredential => "unknown-credential",
            Self::UnknownIntegration => "unknown-integration",
            Self::UnknownInteraction => "unknown-interaction",
            Self::UnknownDialog => "unknown-dialog",
            Self::InvalidUrl => "invalid-url",
            Self::InlineSecret => "inline-secret",
            Self::InvalidCredential => "invalid-credential",
            Self::InvalidCondition => "invalid-condition",
            Self::EmptyDialog => "empty-dialog",
            Self::ScriptSyntax => "script-syntax",
            Self::SecretInUrl => "secret-in-url",
            Self::CredentialOverHttp => "credential-over-http",
            Self::CallerControlledUrl => "caller-controlled-url",
            Self::PersistForever => "persist-forever",
            Self::UnknownReference => "unknown-reference",
            Self::UnreachableInteraction => "unreachable-interaction",
            Self::UnknownFunction => "unknown-function",
            Self::WrongArgumentCount => "wrong-argument-count",
            Self::UnfilledSlot => "unfilled-slot",
            Self::InvalidQuestion => "invalid-question",
            Self::UnknownChoice => "unknown-choice",
            Self::UnknownGroup => "unknown-group",
            Self::UnknownSlot => "unknown-slot",
            Self::QuestionKindMismatch => "question-kind-mismatch",
            Self::PayloadNeverSent => "payload-never-sent",
            Self::BlockedByNetwork => "blocked-by-network",
            Self::BotNotLoaded => "bot-not-loaded",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about a bot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of finding.
    pub code: Code,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The bytes of the file it is about.
    pub span: Range<usize>,
    /// A short note shown under the span.
    pub label: Option<String>,
    /// What to do about it, e.g. "did you mean `credential`?".
    pub help: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        code: Code,
        message: impl Into<String>,
        span: Range<usize>,
    ) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    pub(crate) fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// A 1-based line and column (in characters) of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, counted in characters.
    pub column: usize,
}

/// How [`Report::render`] draws diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderStyle {
    /// Unicode box drawing with ANSI colours, for terminals.
    Color,
    /// Unicode box drawing without colours, for logs and expectations.
    Plain,
}

/// Every diagnostic found in one file, with the text to show them against.
///
/// The text kept for display has the values of secret fields masked, so a
/// rendered report never shows a secret, even one written inline by mistake.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", self.summary())]
pub struct Report {
    file: String,
    display_text: Arc<String>,
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn new(file: &str, display_text: String, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|diagnostic| (diagnostic.span.start, diagnostic.severity));
        diagnostics.dedup();
        Self {
            file: file.to_owned(),
            display_text: Arc::new(display_text),
            diagnostics,
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every diagnostic, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// How many diagnostics have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == severity)
            .count()
    }

    /// Adds a script's syntax error, found by the script runtime, at the
    /// place in the file where that script line and column sit.
    pub fn add_script_error(
        &mut self,
        site: &ScriptSite,
        line: usize,
        column: usize,
        message: &str,
    ) {
        let start = script_offset(&self.display_text, site.span.clone(), line, column);
        let end = self.display_text[start..]
            .find(['\n', ' ', ';', ')'])
            .map_or(self.display_text.len(), |length| start + length.max(1));
        let diagnostic = Diagnostic::new(
            Severity::Error,
            Code::ScriptSyntax,
            format!("{}: {message}", site.owner),
            start..end.max(start),
        )
        .with_label(format!("script line {line}, column {column}"));
        self.diagnostics.push(diagnostic);
        self.diagnostics
            .sort_by_key(|diagnostic| (diagnostic.span.start, diagnostic.severity));
    }

    /// Where a diagnostic starts, as a line and column.
    pub fn position(&self, diagnostic: &Diagnostic) -> Position {
        position_of(&self.display_text, diagnostic.span.start)
    }

    /// One line for the whole file: its name and how many errors and warnings.
    pub fn summary(&self) -> String {
        let errors = self.count(Severity::Error);
        let warnings = self.count(Severity::Warning);
        format!("{}: {errors} error(s), {warnings} warning(s)", self.file)
    }

    /// Draws every diagnostic with its source lines, a caret under the span,
    /// the label and the help.
    pub fn render(&self, style: RenderStyle) -> String {
        let theme = match style {
            RenderStyle::Color => GraphicalTheme::unicode(),
            RenderStyle::Plain => GraphicalTheme::unicode_nocolor(),
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let source = NamedSource::new(&self.file, Arc::clone(&self.display_text));
        let mut out = String::new();
        for diagnostic in &self.diagnostics {
            let Position { line, column } = self.position(diagnostic);
            let severity = match diagnostic.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "{severity}[{}]: {}:{line}:{column}: {}\n",
                diagnostic.code, self.file, diagnostic.message
            ));
            let shown = Shown {
                diagnostic,
                source: &source,
            };
            // Writing into a String cannot fail.
            let _ = handler.render_report(&mut out, &shown);
        }
        out
    }

    /// The report as JSON for tools: file, counts and every diagnostic with
    /// its line and column.
    pub fn to_json(&self) -> serde_json::Value {
        let diagnostics: Vec<_> = self
            .diagnostics
            .iter()
            .map(|diagnostic| {
                let Position { line, column } = self.position(diagnostic);
                serde_json::json!({
                    "severity": diagnostic.severity,
                    "code": diagnostic.code,
                    "message": diagnostic.message,
                    "line": line,
                    "column": column,
                    "label": diagnostic.label,
                    "help": diagnostic.help,
                })
            })
            .collect();
        serde_json::json!({
            "file": self.file,
            "errors": self.count(Severity::Error),
            "warnings": self.count(Severity::Warning),
            "diagnostics": diagnostics,
        })
    }
}

/// A script of the bot and where its text sits in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSite {
    /// Who the script belongs to, e.g. `integration search, transformScript`.
    pub owner: String,
    /// The script's code.
    pub code: String,
    /// The bytes of the file that hold the script's value.
    pub span: Range<usize>,
}

/// The byte offset of a script's 1-based `line` and `column` in the file:
/// inside a block scalar (`|` or `>`), lines count from the first content
/// line and columns start after the block's indentation; in a flow scalar,
/// line 1 starts at the value (after its quote).
pub(crate) fn script_offset(text: &str, value: Range<usize>, line: usize, column: usize) -> usize {
    let Some(value_text) = text.get(value.clone()) else {
        return value.start.min(text.len());
    };
    let column = column.saturating_sub(1);
    // A block scalar's value starts at its first content line; the `|` or
    // `>` indicator (with any chomping or indentation digits) comes before.
    let before = text[..value.start].trim_end();
    let indicator =
        before.trim_end_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let start = if indicator.ends_with(['|', '>']) {
        let line_start = text[..value.start]
            .rfind('\n')
            .map_or(0, |newline| newline + 1);
        let indent = value.start - line_start;
        let mut offset = line_start;
        for _ in 1..line {
            match text[offset..].find('\n') {
                Some(newline) => offset += newline + 1,
                None => break,
            }
        }
        offset + indent + column
    } else if line <= 1 {
        value.start + usize::from(value_text.starts_with(['"', '\''])) + column
    } else {
        value.start
    };
    let line_end = text[start.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |end| start.min(text.len()) + end);
    floor_char_boundary(text, start.min(line_end))
}

pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A diagnostic paired with its source, in the shape miette draws.
struct Shown<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a NamedSource<Arc<String>>,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = &self.diagnostic.span;
        let label = LabeledSpan::new_primary_with_span(
            self.diagnostic.label.clone(),
            (span.start, span.len()),
        );
        Some(Box::new(std::iter::once(label)))
    }
}
