//! From a file's text to a validated [`Bot`], or to a [`Report`].

use std::ops::Range;

use serde::de::IgnoredAny;
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, Options};

use crate::diagnostic::{Code, Diagnostic, Report, ScriptSite, Severity, floor_char_boundary};
use crate::locate::{Locator, doc_path};
use crate::model::Bot;
use crate::suggest::did_you_mean;
use crate::validate;

/// The largest bot file patchbay reads. Real bots are a few hundred KiB at
/// most; the cap bounds the loader's time and memory on hostile input.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The syntax of a bot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2.
    Yaml,
    /// JSON (RFC 8259).
    Json,
}

impl Format {
    /// JSON for names ending in `.json`, YAML otherwise.
    pub fn from_file_name(file: &str) -> Self {
        if file.to_ascii_lowercase().ends_with(".json") {
            Self::Json
        } else {
            Self::Yaml
        }
    }
}

/// A bot that loaded, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated bot.
    pub bot: Bot,
    /// Warnings (lints); it holds no errors.
    pub warnings: Report,
    /// Every script of the bot and where it sits, for a script runtime to
    /// check (see [`Report::add_script_error`]).
    pub scripts: Vec<ScriptSite>,
}

/// Reads, validates and lints one bot file.
///
/// `file` names the file in diagnostics and chooses the syntax (see
/// [`Format::from_file_name`]). Returns a [`Report`] with at least one
/// error when the bot cannot be used; never panics, whatever the text.
pub fn load(file: &str, text: &str) -> Result<Loaded, Report> {
    let format = Format::from_file_name(file);
    let (bot, diagnostics, display_text, scripts) = parse_and_check(format, text);
    let report = Report::new(file, display_text, diagnostics);
    match bot {
        Some(bot) if !report.has_errors() => Ok(Loaded {
            bot,
            warnings: report,
            scripts,
        }),
        _ => Err(report),
    }
}

type Checked = (Option<Bot>, Vec<Diagnostic>, String, Vec<ScriptSite>);

fn parse_and_check(format: Format, text: &str) -> Checked {
    if text.len() > MAX_FILE_BYTES {
        let diagnostic = Diagnostic::new(
            Severity::Error,
            Code::TooLarge,
            format!(
                "the file is {} bytes; a bot file may have at most {MAX_FILE_BYTES}",
                text.len()
            ),
            0..0,
        )
        .with_help(Some("split the bot, or move data out of it".to_owned()));
        return (None, vec![diagnostic], String::new(), Vec::new());
    }
    // JSON is read by the YAML parser too, so that positions and the path
    // index work the same for both; serde_json first holds it to strict JSON.
    // Tabs are whitespace in JSON but not everywhere in YAML; in valid JSON
    // they only occur between tokens, so a space keeps meaning and offsets.
    let yaml_text = match format {
        Format::Yaml => text.to_owned(),
        Format::Json => {
            if let Err(error) = serde_json::from_str::<IgnoredAny>(text) {
                let offset = offset_of(text, error.line(), error.column().saturating_sub(1));
                let message = strip_position(&error.to_string());
                let diagnostic = Diagnostic::new(
                    Severity::Error,
                    Code::Syntax,
                    format!("invalid JSON: {message}"),
                    offset..offset,
                )
                .with_label("here");
                return (
                    None,
                    vec![diagnostic],
                    mask_secrets(text, &Locator::new("")),
                    Vec::new(),
                );
            }
            text.replace('\t', " ")
        }
    };
    let locator = Locator::new(&yaml_text);
    let display_text = mask_secrets(text, &locator);
    let mut diagnostics = Vec::new();
    let mut repaired = yaml_text;
    // Keys blanked after an invalid value: serde then misses them, and that
    // consequence is not worth a second diagnostic.
    let mut blanked_keys: Vec<(String, usize)> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let mut options = Options::default();
        options.with_snippet = false;
        options.duplicate_keys = DuplicateKeyPolicy::Error;
        // YAML 1.2 booleans only: an answer `no`, a choice `Yes` or a
        // payload `on` is text, as a bot author means it.
        options.strict_booleans = true;
        match serde_saphyr::from_str_with_options::<Bot>(&repaired, options) {
            Ok(bot) => {
                // A record whose field was blanked may now look incoherent;
                // that is the blanked field's error again, not a new one.
                let blanked_records: Vec<Range<usize>> = blanked_keys
                    .iter()
                    .filter_map(|(_, at)| locator.container_of(*at))
                    .collect();
                diagnostics.extend(validate::validate(&bot, &locator).into_iter().filter(|d| {
                    !matches!(d.code, Code::InvalidCondition | Code::InvalidCredential)
                        || !blanked_records.iter().any(|r| r.contains(&d.span.start))
                }));
                let scripts = script_sites(&bot, &locator);
                return (Some(bot), diagnostics, display_text, scripts);
            }
            Err(error) => {
                let (diagnostic, repair) = from_yaml_error(&error, &repaired, &locator, format);
                let at = diagnostic.span.start;
                // A question's rule whose match was blanked for its own
                // error (a bad regex) then has no match kind: that is the
                // same mistake, said once.
                let no_match_kind_left = !blanked_keys.is_empty()
                    && diagnostic.message.contains(crate::raw::ANSWER_MATCHES);
                let cascade = no_match_kind_left
                    || diagnostic.code == Code::MissingField
                        && blanked_keys.iter().any(|(key, key_at)| {
                            diagnostic.message == format!("missing field `{key}`")
                                && locator
                                    .container_of(*key_at)
                                    .is_some_and(|mapping| mapping.start <= at && at <= mapping.end)
                        });
                if !cascade {
                    diagnostics.push(diagnostic);
                }
                match repair {
                    Some(range) if !range.is_empty() && !covers_everything(&repaired, &range) => {
                        blanked_keys.push((key_of(&repaired[range.clone()]), range.start));
                        blank_entry(&mut repaired, range);
                    }
                    _ => break,
                }
            }
        }
    }
    (None, diagnostics, display_text, Vec::new())
}

/// Every script of the bot, with its owner and the span of its value.
fn script_sites(bot: &Bot, locator: &Locator) -> Vec<ScriptSite> {
    let mut sites = Vec::new();
    let mut add = |owner: String, code: &str, path: Vec<crate::locate::Step>| {
        if let Some(span) = locator.value(&path) {
            sites.push(ScriptSite {
                owner,
                code: code.to_owned(),
                span,
            });
        }
    };
    for (i, integration) in bot.integrations.iter().enumerate() {
        if let Some(script) = &integration.transform_script {
            let owner = format!("integration {}, transformScript", integration.name);
            add(
                owner,
                script,
                doc_path!["integrations", i, "transformScript"],
            );
        }
    }
    for (d, dialog) in bot.dialogs.iter().enumerate() {
        for (k, interaction) in dialog.interactions.iter().enumerate() {
            for (field, script) in interaction.kind.scripts() {
                let owner = format!("interaction {}, {field}", interaction.name);
                add(
                    owner,
                    script,
                    doc_path!["dialogs", d, "interactions", k, field],
                );
            }
        }
    }
    sites
}

pub(crate) fn covers_everything(text: &str, range: &Range<usize>) -> bool {
    text[..range.start].trim().is_empty() && text[range.end..].trim().is_empty()
}

/// The key of a `key: value` entry's text (empty for a sequence element).
pub(crate) fn key_of(entry: &str) -> String {
    entry
        .split_once(':')
        .map(|(key, _)| key.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|key| !key.starts_with('-'))
        .unwrap_or_default()
        .to_owned()
}

/// How many errors the loader recovers from before it stops reading.
pub(crate) const MAX_REPAIRS: usize = 32;

/// Serde stops at the first error. To report more than one in a run, the
/// loader blanks the entry an error is about and reads the text again; the
/// blanked bytes become spaces, so every other position stays the same.
/// In flow style (JSON) the entry's comma goes too, so the rest still parses.
pub(crate) fn blank_entry(text: &mut String, range: Range<usize>) {
    let mut bytes = std::mem::take(text).into_bytes();
    let mut range = range.start.min(bytes.len())..range.end.min(bytes.len());
    let after = bytes[range.end..]
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .map(|skip| range.end + skip);
    let before = bytes[..range.start]
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace());
    match (after, before) {
        (Some(comma), _) if bytes[comma] == b',' => range.end = comma + 1,
        (_, Some(comma)) if bytes[comma] == b',' => range.start = comma,
        _ => {}
    }
    for byte in &mut bytes[range] {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
    // Only whole UTF-8 sequences between ASCII boundaries were replaced.
    *text = String::from_utf8(bytes).unwrap_or_default();
}

/// The diagnostic for a serde error, and the span of the entry to blank so
/// that reading can go on (see [`blank_entry`]).
pub(crate) fn from_yaml_error(
    error: &YamlError,
    text: &str,
    locator: &Locator,
    format: Format,
) -> (Diagnostic, Option<Range<usize>>) {
    let error = error.without_snippet();
    let at = error
        .location()
        .and_then(|location| {
            let byte = location.span().byte_offset().map(|offset| offset as usize);
            byte.or_else(|| {
                let line = location.line() as usize;
                let column = (location.column() as usize).saturating_sub(1);
                (line > 0).then(|| offset_of(text, line, column))
            })
        })
        .map(|offset| floor_char_boundary(text, offset));
    let point = at.unwrap_or(0);
    let token = locator
        .value_at(point)
        .filter(|value| value.len() <= 80)
        .unwrap_or_else(|| token_at(text, point));
    let mut repair = at.and_then(|offset| locator.entry_at(offset));
    let diagnostic = match error {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let span = locator.key_in_mapping_at(point, field).unwrap_or(token);
            repair = at.and_then(|_| locator.entry_at(span.start));
            Diagnostic::new(
                Severity::Error,
                Code::UnknownField,
                format!("unknown field `{field}`"),
                span,
            )
            .with_label(format!("expected one of {}", list(expected)))
            .with_help(did_you_mean(field, expected.iter().copied()))
        }
        YamlError::SerdeMissingField { field, .. } => {
            repair = at.and_then(|offset| locator.enclosing_entry(offset));
            Diagnostic::new(
                Severity::Error,
                Code::MissingField,
                format!("missing field `{field}`"),
                token,
            )
            .with_label(format!("this needs `{field}`"))
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => Diagnostic::new(
            Severity::Error,
            Code::InvalidValue,
            format!("unknown value `{variant}`"),
            token,
        )
        .with_label(format!("expected one of {}", list(expected)))
        .with_help(did_you_mean(variant, expected.iter().copied())),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Diagnostic::new(
            Severity::Error,
            Code::InvalidValue,
            format!("expected {expected}, found {unexpected}"),
            token,
        )
        .with_label(format!("expected {expected}")),
        YamlError::Unexpected { expected, .. } => {
            let expected = expected.trim_end_matches(" start");
            Diagnostic::new(
                Severity::Error,
                Code::InvalidValue,
                format!("expected a {expected} here"),
                token,
            )
            .with_label(format!("expected a {expected}"))
        }
        YamlError::Eof { .. } if text.trim().is_empty() => {
            repair = None;
            Diagnostic::new(
                Severity::Error,
                Code::MissingField,
                "the bot file is empty",
                token,
            )
            .with_help(Some(
                "a bot needs at least `name: my-bot`; see examples/".to_owned(),
            ))
        }
        YamlError::MultipleDocuments { .. } => {
            repair = None;
            Diagnostic::new(
                Severity::Error,
                Code::Syntax,
                "a bot file holds one YAML document, and this starts a second",
                token,
            )
            .with_label("second document")
            .with_help(Some("put each bot in a file of its own".to_owned()))
        }
        YamlError::DuplicateMappingKey { key, .. } => Diagnostic::new(
            Severity::Error,
            Code::DuplicateName,
            match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_owned(),
            },
            token,
        )
        .with_label("this key appears earlier in the same mapping"),
        other => {
            let message = strip_position(&other.to_string());
            let code = if message.starts_with("invalid JSONPath") {
                Code::InvalidJsonPath
            } else if message.starts_with("invalid regular expression") {
                Code::InvalidRegex
            } else if message.starts_with("invalid pattern") {
                Code::InvalidPattern
            } else {
                repair = None;
                Code::Syntax
            };
            let message = match (code, format) {
                (Code::Syntax, Format::Yaml) => format!("invalid YAML: {message}"),
                (Code::Syntax, Format::Json) => format!("invalid JSON: {message}"),
                _ => message,
            };
            let span = match code {
                Code::InvalidPattern => pattern_fault(text, token.clone(), &message),
                _ => token,
            };
            Diagnostic::new(Severity::Error, code, message, span).with_label("here")
        }
    };
    match at {
        Some(_) => (diagnostic, repair),
        None => (
            Diagnostic {
                span: 0..0,
                ..diagnostic
            },
            None,
        ),
    }
}

/// The character a pattern error names (`... (at character N)`) within the
/// pattern's token, when the token writes the pattern's text as it is
/// (plain, or quoted with no escape before it); else the whole token.
fn pattern_fault(text: &str, token: Range<usize>, message: &str) -> Range<usize> {
    let nth = message
        .rsplit_once("(at character ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1));
    let Some((nth, raw)) = nth.zip(text.get(token.clone())) else {
        return token;
    };
    let (skip, escape) = match raw.chars().next() {
        Some('"') => (1, Some("\\")),
        Some('\'') => (1, Some("''")),
        _ => (0, None),
    };
    let content = &raw[skip..];
    match content.char_indices().nth(nth) {
        Some((at, c)) if escape.is_none_or(|escape| !content[..at].contains(escape)) => {
            let start = token.start + skip + at;
            start..start + c.len_utf8()
        }
        _ => token,
    }
}

/// serde-saphyr and serde_json end messages with their own "at line L,
/// column C"; diagnostics carry the position separately.
pub(crate) fn strip_position(message: &str) -> String {
    let message = message.lines().next().unwrap_or(message);
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    // The parser's words for a `null` where text belongs name Rust types.
    if message.starts_with("cannot deserialize null into string") {
        return "expected text, found null".to_owned();
    }
    message.to_owned()
}

fn list(words: &[&str]) -> String {
    words
        .iter()
        .map(|word| format!("`{word}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The byte offset of a 1-based line and a 0-based character column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        .min(text.len());
    let rest = &text[line_start..];
    line_start
        + rest
            .char_indices()
            .take_while(|(_, c)| *c != '\n')
            .nth(column)
            .map_or_else(
                || rest.find('\n').unwrap_or(rest.len()),
                |(offset, _)| offset,
            )
}

/// The span of the word-like token starting at `offset`, for a caret that
/// underlines a whole key or value rather than one character.
fn token_at(text: &str, offset: usize) -> Range<usize> {
    let rest = &text[offset..];
    let len = rest
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || matches!(c, ':' | ',' | '}' | ']'))
        .map_or(rest.len(), |(end, _)| end);
    offset..offset + len
}

/// Credential fields that hold secrets, by their names in the file.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "token",
    "clientSecret",
    "privateKey",
    "pkcs12",
    "value",
    "consumerSecret",
    "tokenSecret",
];

/// A copy of `text` for display, with the value of every secret field of
/// every credential blanked (byte for byte, so spans stay valid), unless it
/// is only an `{$env.NAME}` reference. Lines the path index could not reach
/// (after a syntax error) are blanked by their key, and so is any PEM
/// private key block.
fn mask_secrets(text: &str, locator: &Locator) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut blank = |range: Range<usize>| {
        let value = &text[range.clone()];
        let reference = value.trim_matches(|c| c == '"' || c == '\'');
        let is_env_reference = reference.starts_with("{$env.")
            && reference.ends_with('}')
            && reference.matches('{').count() == 1;
        if !is_env_reference {
            for byte in &mut bytes[range] {
                if !byte.is_ascii_whitespace() {
                    *byte = b'*';
                }
            }
        }
    };
    let secret_values: Vec<Range<usize>> =
        locator.values_under("credentials", SECRET_FIELDS).collect();
    for range in secret_values {
        // A secret kept in the bot's own `env` section is still a secret.
        let value = text[range.clone()].trim_matches(|c| c == '"' || c == '\'');
        let env_name = value
            .strip_prefix("{$env.")
            .and_then(|rest| rest.strip_suffix('}'));
        if let Some(env_value) =
            env_name.and_then(|name| locator.exact_value(&doc_path!["env", name]))
        {
            blank(env_value);
        }
        blank(range);
    }
    let mut offset = 0;
    let mut in_pem = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start().trim_start_matches(['-', ' ', '"', '\'']);
        let starts_pem = line.contains("-----BEGIN") && line.contains("PRIVATE KEY");
        if starts_pem {
            in_pem = true;
        }
        if in_pem {
            blank(offset..offset + line.trim_end().len());
            in_pem = !line.contains("-----END");
        } else if SECRET_FIELDS
            .iter()
            .filter(|key| !matches!(**key, "value" | "token"))
            .any(|key| trimmed.starts_with(key))
            && let Some(colon) = line.find(':')
        {
            let value_start = offset + colon + 1;
            let value_end = offset + line.trim_end().len();
            if value_start < value_end {
                blank(value_start..value_end);
            }
        }
        offset += line.len();
    }
    // Every replaced byte was replaced by ASCII '*' and every multi-byte
    // sequence was replaced whole, so the bytes stay UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.replace(|_: char| true, "*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_offsets() {
        let text = "a\nbé c\n";
        assert_eq!(offset_of(text, 2, 3), 6);
        assert_eq!(&text[token_at(text, 6)], "c");
    }

    #[test]
    fn secrets_are_masked_for_display() {
        let text = "name: b\ncredentials:\n  - name: c\n    type: basic\n    username: u\n    password: hunter2\n  - name: d\n    type: access-token\n    token: \"{$env.T}\"\n";
        let masked = mask_secrets(text, &Locator::new(text));
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(masked.contains("{$env.T}"), "{masked}");
        assert_eq!(masked.len(), text.len());
    }
}
