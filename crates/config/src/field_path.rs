//! Custom data field paths: `{$.api_RDVN.items[i].title}`, compiled at load.

use std::fmt;

use jsonpath_rust::parser::{model::JpQuery, parse_json_path};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::template::{Segment, Template};

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
            // Rendering every reference as a plain name shows whether the
            // literal parts around them can form a JSONPath at all.
            let probe: String = template
                .segments()
                .iter()
                .map(|segment| match segment {
                    Segment::Literal(text) => text.as_str(),
                    Segment::Reference(_) => "x",
                })
                .collect();
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

    #[test]
    fn broken_paths_are_rejected() {
        let error = FieldPath::parse("{$.api_FAQS.items[}").expect_err("invalid path");
        assert!(error.to_string().contains("{$.api_FAQS.items[}"), "{error}");
        assert!(error.to_string().contains("expected"), "{error}");
    }
}
