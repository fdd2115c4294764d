//! Templates rendered for the place their text lands in.

use std::collections::HashMap;

use patchbay_config::{FieldRef, Reference, Segment, SystemVariable, Template};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::fields::Fields;

/// What a template reads: bot variables, slots, the bot's environment, the
/// system variables and the custom data fields of integrations that ran.
#[derive(Clone, Copy)]
pub struct Values<'a> {
    /// Bot variables.
    pub variables: &'a HashMap<String, String>,
    /// Slots.
    pub slots: &'a HashMap<String, String>,
    /// The bot's environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// System variables (`userMessage`, `conversationId`, ...).
    pub system: &'a dyn Fn(SystemVariable) -> Option<String>,
    /// Custom data fields.
    pub fields: &'a Fields,
}

impl std::fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values")
            .field("variables", &self.variables.len())
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl Values<'_> {
    /// The text a reference stands for; unknown references are empty.
    pub fn lookup(&self, reference: &Reference) -> String {
        match reference {
            Reference::BotVariable(name) => self.variables.get(name).cloned().unwrap_or_default(),
            Reference::Slot(name) => self.slots.get(name).cloned().unwrap_or_default(),
            Reference::Env(name) => (self.env)(name).unwrap_or_default(),
            Reference::System(system) => (self.system)(*system).unwrap_or_default(),
            Reference::Field(field) => self.field(field),
            Reference::Unknown(_) => String::new(),
        }
    }

    /// A field reference's text: the value (a list joined by `, `), its
    /// `.count` or its `[N]`th value.
    pub fn field(&self, field: &FieldRef) -> String {
        self.fields.text(field)
    }
}

/// Where a rendered value lands, which decides its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A URL: percent-encoded as a path segment before any `?`, as a query
    /// component after it. Line breaks are refused.
    Url,
    /// A query parameter value (percent-encoded by the caller when it joins
    /// the query); line breaks are refused.
    Param,
    /// A header value; line breaks are refused.
    Header,
    /// Inside a JSON body: JSON string escaping.
    JsonBody,
    /// Plain text (messages, other bodies, condition operands).
    Text,
}

/// A value that cannot go where the template puts it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the value of `{reference}` holds a line break, which cannot go into a {place}")]
pub struct RenderError {
    /// The reference, as written.
    pub reference: String,
    /// Where it was going: `URL`, `query parameter` or `header`.
    pub place: &'static str,
}

/// RFC 3986 path segment: everything but unreserved characters and the
/// sub-delimiters a segment may hold.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A query component: as a path segment, and `&`, `=`, `+` too.
pub(crate) const QUERY_COMPONENT: &AsciiSet = &PATH_SEGMENT.add(b'&').add(b'=').add(b'+');

/// Renders `template` for `place`.
pub fn render(
    template: &Template,
    values: &Values<'_>,
    place: Place,
) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut in_query = false;
    for segment in template.segments() {
        match segment {
            Segment::Literal(text) => {
                in_query |= text.contains('?');
                out.push_str(text);
            }
            Segment::Reference(reference) => {
                let value = values.lookup(reference);
                let refused = match place {
                    Place::Url => Some("URL"),
                    Place::Param => Some("query parameter"),
                    Place::Header => Some("header"),
                    Place::JsonBody | Place::Text => None,
                };
                if let Some(place) = refused
                    && value.contains(['\r', '\n'])
                {
                    return Err(RenderError {
                        reference: reference.to_string(),
                        place,
                    });
                }
                match place {
                    // Before the path (a base URL, a host) the value is
                    // part of the URL's structure and goes in as it is.
                    Place::Url if !in_path(&out) => out.push_str(&value),
                    Place::Url if in_query => {
                        out.extend(utf8_percent_encode(&value, QUERY_COMPONENT));
                    }
                    Place::Url => out.extend(utf8_percent_encode(&value, PATH_SEGMENT)),
                    Place::JsonBody => out.push_str(&json_escape(&value)),
                    Place::Param | Place::Header | Place::Text => out.push_str(&value),
                }
            }
        }
    }
    Ok(out)
}

/// Whether rendered URL text has reached its path: a scheme, an authority
/// and a `/` after it.
fn in_path(rendered: &str) -> bool {
    rendered
        .find("://")
        .is_some_and(|at| rendered[at + 3..].contains('/'))
}

/// The value as the inside of a JSON string.
fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(variables: &'a HashMap<String, String>, fields: &'a Fields) -> Values<'a> {
        Values {
            variables,
            slots: variables,
            env: &|_| None,
            system: &|_| None,
            fields,
        }
    }

    #[test]
    fn encodes_for_each_place() {
        let variables = HashMap::from([
            ("id".to_owned(), "a/b c".to_owned()),
            ("q".to_owned(), "x&y=z".to_owned()),
            ("quote".to_owned(), "say \"hi\"\n".to_owned()),
        ]);
        let fields = Fields::default();
        let values = values(&variables, &fields);
        let url = Template::parse("https://h/o/{$botContext.id}?q={$botContext.q}");
        assert_eq!(
            render(&url, &values, Place::Url).expect("url"),
            "https://h/o/a%2Fb%20c?q=x%26y%3Dz"
        );
        let body = Template::parse(r#"{"text": "{$botContext.quote}"}"#);
        assert_eq!(
            render(&body, &values, Place::JsonBody).expect("body"),
            r#"{"text": "say \"hi\"\n"}"#
        );
        let header = Template::parse("{$botContext.quote}");
        assert_eq!(
            render(&header, &values, Place::Header),
            Err(RenderError {
                reference: "{$botContext.quote}".to_owned(),
                place: "header"
            })
        );
        let based = Template::parse("{$botContext.base}/search");
        let variables = HashMap::from([("base".to_owned(), "http://h:8/api".to_owned())]);
        let values = super::tests::values(&variables, &fields);
        assert_eq!(
            render(&based, &values, Place::Url).expect("url"),
            "http://h:8/api/search"
        );
    }
}
