//! Custom data field paths: `{$.api_RDVN.items[i].title}`, compiled at load.

use std::fmt;

use jsonpath_rust::parser::{model::JpQuery, parse_json_path};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::template::{Reference, Segment, Template};

/// A custom data field's JSONPath, compiled when the bot loads.
///
/// Written as the product writes it, `{$.api_FAQS.items[i].title}`: braces
/// around a JSONPath in which `[i]` means "each element". A path that holds
/// a template reference (`{$.api_Q.skills.{$botContext.skillId}.avgWait}`)
/// can only be compiled once its references are rendered; it is kept as a
/// [`FieldPath::Dynamic`] template for the evaluator to compile per distinct
/// rendered value.
#[derive(Clone, Debug)]
pub struct FieldPath {
    source: String,
    compiled: CompiledPath,
}

/// The compiled form of a [`FieldPath`].
#[derive(Clone, Debug)]
pub enum CompiledPath {
    /// A JSONPath known at load, compiled once.
    Static(JpQuery),
    /// A JSONPath with template references; render, then [`compile_json_path`].
    Dynamic(Template),
}

/// Why a JSONPath does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath `{path}`: {reason}")]
pub struct FieldPathError {
    path: String,
    reason: String,
}

impl FieldPath {
    /// Parses and compiles a field path as written in a bot file.
    pub fn parse(source: &str) -> Result<Self, FieldPathError> {
        let trimmed = source.trim();
        let error = |reason: String| FieldPathError {
            path: source.to_owned(),
            reason,
        };
        if trimmed.starts_with('{') != trimmed.ends_with('}') {
            return Err(error("the braces around the path do not match".to_owned()));
        }
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or(trimmed);
        let product_path = inner.replace("[i]", "[*]");
        let compiled = if product_path.contains('{') {
            let template = Template::parse(&product_path);
            // Splicing `x` for every reference, as the evaluator splices
            // values, shows whether the literal parts around them can form
            // a JSONPath at all.
            let probe = splice_path_values(&template, |_| "x".to_owned())
                .ok_or_else(|| error(MISPLACED_VALUE.to_owned()))?;
            compile_json_path(&probe).map_err(|e| error(e.reason))?;
            CompiledPath::Dynamic(template)
        } else {
            CompiledPath::Static(compile_json_path(&product_path).map_err(|e| error(e.reason))?)
        };
        Ok(Self {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The path as written in the bot file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled path.
    pub fn compiled(&self) -> &CompiledPath {
        &self.compiled
    }
}

const MISPLACED_VALUE: &str = "a template reference in a path must be (part of) a member name after `.`, alone inside `[...]`, or inside a quoted string";

/// A templated path's text with each reference's value spliced in as data,
/// never as path syntax (docs/engine.md, "Values in custom data field
/// paths"):
///
/// - after `.` (with any name characters written around it, as in
///   `.team_{$botContext.team}`), the value is one member name, written as
///   a quoted name selector: `.{x}` with `a.b` becomes `['a.b']`, with `*`
///   `['*']`;
/// - alone inside `[...]`, a whole number (digits only) is an index and
///   anything else one quoted member name;
/// - inside a quoted string of the path (a filter's operand), the value is
///   escaped for that string.
///
/// `None` when a value is empty where it would be a name, or when a
/// reference sits anywhere else: such a path matches nothing.
pub fn splice_path_values(
    template: &Template,
    mut value_of: impl FnMut(&Reference) -> String,
) -> Option<String> {
    let segments = template.segments();
    let mut out = String::new();
    let mut index = 0;
    while let Some(segment) = segments.get(index) {
        index += 1;
        let reference = match segment {
            Segment::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Segment::Reference(reference) => reference,
        };
        if let Some(quote) = open_quote(&out) {
            escape_into_quoted(&mut out, &value_of(reference), quote);
            continue;
        }
        // The whole member name: name characters written right before the
        // value, the value, and whatever values and name characters follow.
        let name_start = out
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_name_char(*c))
            .last()
            .map_or(out.len(), |(at, _)| at);
        let mut name = out.split_off(name_start);
        name.push_str(&value_of(reference));
        let mut rest = "";
        while let Some(next) = segments.get(index) {
            match next {
                Segment::Reference(reference) => name.push_str(&value_of(reference)),
                Segment::Literal(text) => {
                    let end = text.find(|c| !is_name_char(c)).unwrap_or(text.len());
                    name.push_str(&text[..end]);
                    if end < text.len() {
                        rest = &text[end..];
                        index += 1;
                        break;
                    }
                }
            }
            index += 1;
        }
        if name.is_empty() {
            return None;
        }
        if out.ends_with("..") {
            push_name_selector(&mut out, &name);
        } else if out.ends_with('.') {
            out.pop();
            push_name_selector(&mut out, &name);
        } else if out.ends_with('[') && rest.starts_with(']') {
            if name.bytes().all(|byte| byte.is_ascii_digit()) && name.parse::<u32>().is_ok() {
                out.push_str(&name);
            } else {
                out.push('\'');
                escape_into_quoted(&mut out, &name, '\'');
                out.push('\'');
            }
        } else {
            return None;
        }
        out.push_str(rest);
    }
    Some(out)
}

/// A character of a shorthand member name (RFC 9535 `name-char`).
fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || !c.is_ascii()
}

/// The quote of the string literal `path` ends inside, if any.
fn open_quote(path: &str) -> Option<char> {
    let mut quote = None;
    let mut escaped = false;
    for c in path.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
    }
    quote
}

/// `['name']`.
fn push_name_selector(out: &mut String, name: &str) {
    out.push_str("['");
    escape_into_quoted(out, name, '\'');
    out.push_str("']");
}

/// `text` as the inside of a JSONPath string literal quoted with `quote`.
fn escape_into_quoted(out: &mut String, text: &str, quote: char) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

/// Compiles a JSONPath (RFC 9535 syntax, as `jsonpath-rust` reads it).
pub fn compile_json_path(path: &str) -> Result<JpQuery, FieldPathError> {
    crate::count_compilation("json-path");
    parse_json_path(path).map_err(|error| FieldPathError {
        path: path.to_owned(),
        reason: first_line(&error.to_string()),
    })
}

/// `jsonpath-rust` reports parse errors as pest's multi-line drawing; the
/// first line that says what went wrong is the useful part in a diagnostic.
fn first_line(message: &str) -> String {
    let lines = || message.lines().map(str::trim);
    let column = lines()
        .find_map(|line| line.split_once("--> ").map(|(_, position)| position))
        .and_then(|position| position.split(':').nth(1))
        .map(|column| format!(" at character {column}"))
        .unwrap_or_default();
    match lines().find_map(|line| line.strip_prefix("= ")) {
        Some(reason) => format!("{reason}{column}"),
        None => lines().next().unwrap_or_default().to_owned(),
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for FieldPath {}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for FieldPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldPath".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A JSONPath in braces, e.g. {$.api_FAQS.items[i].title}; [i] means each element."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_paths_compile() {
        let path = FieldPath::parse("{$.api_FAQS.items[i].title}").expect("valid path");
        assert!(matches!(path.compiled(), CompiledPath::Static(_)));
    }

    #[test]
    fn templated_paths_stay_dynamic() {
        let path =
            FieldPath::parse("{$.api_Q.skills.{$botContext.skillId}.avgWait}").expect("valid path");
        assert!(matches!(path.compiled(), CompiledPath::Dynamic(_)));
    }

    /// `path` with every reference spliced as `value`.
    fn spliced(path: &str, value: &str) -> Option<String> {
        splice_path_values(&Template::parse(path), |_| value.to_owned())
    }

    #[test]
    fn a_spliced_value_is_one_member_name() {
        let path = "$.api_Q.skills.{$botContext.v}.avgWait";
        for (value, expected) in [
            ("billing", "$.api_Q.skills['billing'].avgWait"),
            ("*", "$.api_Q.skills['*'].avgWait"),
            ("..", "$.api_Q.skills['..'].avgWait"),
            ("a.b", "$.api_Q.skills['a.b'].avgWait"),
            ("[0]", "$.api_Q.skills['[0]'].avgWait"),
            ("$", "$.api_Q.skills['$'].avgWait"),
            ("?(@.x)", "$.api_Q.skills['?(@.x)'].avgWait"),
            ("it's", r"$.api_Q.skills['it\'s'].avgWait"),
            (r"a\b", r"$.api_Q.skills['a\\b'].avgWait"),
            ("x']..*['", r"$.api_Q.skills['x\']..*[\''].avgWait"),
            ("tab\t", r"$.api_Q.skills['tab\u0009'].avgWait"),
        ] {
            let text = spliced(path, value).expect("a name");
            assert_eq!(text, expected, "{value:?}");
            let query = compile_json_path(&text).expect("compiles");
            // The query names exactly that member, and nothing else.
            let document = serde_json::json!({
                "api_Q": {"skills": {
                    value: {"avgWait": 1},
                    "billing": {"avgWait": 2},
                    "other": {"avgWait": 3},
                }}
            });
            let found = jsonpath_rust::query::js_path_process(&query, &document).expect("runs");
            let found: Vec<_> = found.into_iter().map(|found| found.val().clone()).collect();
            let expected = if value == "billing" { 2 } else { 1 };
            assert_eq!(found, [serde_json::json!(expected)], "{value:?}");
        }
        assert_eq!(spliced(path, ""), None, "an empty name matches nothing");
    }

    #[test]
    fn names_written_around_a_value_are_part_of_it() {
        assert_eq!(
            spliced("$.skills.team_{$botContext.v}_eu.wait", "a.b").as_deref(),
            Some("$.skills['team_a.b_eu'].wait")
        );
        assert_eq!(
            spliced("$..{$botContext.v}", "*").as_deref(),
            Some("$..['*']")
        );
        assert_eq!(
            spliced("$.a.{$botContext.v}{$botContext.v}", "x").as_deref(),
            Some("$.a['xx']")
        );
    }

    #[test]
    fn in_brackets_a_number_is_an_index_and_anything_else_a_name() {
        let path = "$.list[{$botContext.v}].name";
        assert_eq!(spliced(path, "1").as_deref(), Some("$.list[1].name"));
        assert_eq!(spliced(path, "*").as_deref(), Some("$.list['*'].name"));
        assert_eq!(spliced(path, "-1").as_deref(), Some("$.list['-1'].name"));
        assert_eq!(spliced(path, "0:2").as_deref(), Some("$.list['0:2'].name"));
        assert_eq!(spliced(path, ""), None);
    }

    #[test]
    fn inside_a_quoted_string_a_value_is_escaped_text() {
        assert_eq!(
            spliced(
                "$.items[?@.id == '{$botContext.v}'].name",
                "x' || true || '"
            )
            .as_deref(),
            Some(r"$.items[?@.id == 'x\' || true || \''].name")
        );
    }

    #[test]
    fn a_reference_where_no_name_goes_is_refused_at_load() {
        let error = FieldPath::parse("{$.items[?@.n > {$botContext.min}].name}")
            .expect_err("a value as a filter's number");
        assert!(error.to_string().contains("member name"), "{error}");
    }

    #[test]
    fn broken_paths_are_rejected() {
        let error = FieldPath::parse("{$.api_FAQS.items[}").expect_err("invalid path");
        assert!(error.to_string().contains("{$.api_FAQS.items[}"), "{error}");
        assert!(error.to_string().contains("expected"), "{error}");
    }
}
