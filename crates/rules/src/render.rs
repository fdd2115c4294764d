//! Templates rendered for the place their text lands in.

use std::collections::HashMap;

use std::ops::Range;

use patchbay_config::{
    FieldRef, Reference, Segment, SystemVariable, Template, UrlPart, fixes_domain_after_value,
    is_dns_label, is_host_name, url_part,
};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::fields::Fields;

/// Bot variables by name, read where they are kept (a map of names to
/// values, or a conversation's state): nothing is copied to read one.
pub trait Variables {
    /// The value of the variable `name`, if it is set.
    fn variable(&self, name: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> Variables for HashMap<String, String, S> {
    fn variable(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// What a template reads: bot variables, slots, the bot's environment, the
/// system variables and the custom data fields of integrations that ran.
#[derive(Clone, Copy)]
pub struct Values<'a> {
    /// Bot variables. A custom data field's forms (`RDVN.key`,
    /// `RDVN.key.count`, `RDVN.key[N]`) are read from [`Values::fields`]
    /// first, as scripts see them.
    pub variables: &'a dyn Variables,
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
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl Values<'_> {
    /// The bot variable `name`: a custom data field's form
    /// ([`Fields::variable`]) over the variables.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.fields
            .variable(name)
            .or_else(|| self.variables.variable(name))
    }

    /// The text a reference stands for; unknown references are empty.
    pub fn lookup(&self, reference: &Reference) -> String {
        match reference {
            Reference::BotVariable(name) => self.variable(name).unwrap_or_default().to_owned(),
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
    /// A URL, with the rules of [`render_url`]: a value is one DNS label in
    /// part of the host, a host name as the whole host, one path segment
    /// in the path (never `.` or `..`), a query component after `?`.
    /// Rendering for this place gives the text only: use [`render_url`]
    /// to learn whether the values chose the host.
    Url,
    /// A query parameter value (percent-encoded by the caller when it joins
    /// the query); line breaks are refused.
    Param,
    /// A header value; line breaks are refused.
    Header,
    /// A JSON body: inside a JSON string of the template a value is
    /// string-escaped; outside one, a value that is itself JSON goes in as
    /// that JSON and anything else as a JSON string (docs/engine.md,
    /// "Values in a JSON body").
    JsonBody,
    /// Plain text (messages, other bodies, condition operands).
    Text,
}

/// A value that cannot go where the template puts it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A line break bound for a URL, a query parameter or a header.
    #[error("the value of `{reference}` holds a line break, which cannot go into a {place}")]
    LineBreak {
        /// The reference, as written.
        reference: String,
        /// Where it was going: `URL`, `query parameter` or `header`.
        place: &'static str,
    },
    /// A value in part of a URL's host that is not one DNS label.
    #[error(
        "the value of `{reference}` goes into the URL's host and must be one DNS label (1 to 63 letters, digits or `-`): no `.`, `:`, `@`, `/`, `?`, `#`, `%` or other character"
    )]
    NotOneLabel {
        /// The reference, as written.
        reference: String,
    },
    /// A value that is a URL's whole host but not a host name.
    #[error(
        "the value of `{reference}` is the URL's host and must be a host name (DNS labels joined by `.`), with no port, user, path, query or fragment"
    )]
    NotAHost {
        /// The reference, as written.
        reference: String,
    },
    /// A value that would choose a part of the URL no value may choose.
    #[error(
        "`{reference}` would choose the URL's {part}, which only the bot's own text and {{$env...}} values may"
    )]
    ForbiddenUrlPart {
        /// The reference, as written.
        reference: String,
        /// The part: `scheme and host`, `port`, ...
        part: &'static str,
    },
    /// A value that makes a path segment `.` or `..` (in any spelling URL
    /// parsers read as one), which would climb the path.
    #[error(
        "the value of `{reference}` makes the path segment `{segment}`, which would move up the URL's path"
    )]
    DotSegment {
        /// The reference, as written.
        reference: String,
        /// The segment it made.
        segment: String,
    },
}

/// A rendered URL and whether the template fixed its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedUrl {
    /// The URL's text.
    pub text: String,
    /// True when values (not the bot's text or `{$env...}`) chose the host:
    /// the whole host, or a label with less than a two-label domain fixed
    /// after it (`https://api.{x}`). The caller then holds the host to a
    /// list the bot names.
    pub host_is_open: bool,
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
    match place {
        Place::Url => return render_url(template, values).map(|url| url.text),
        Place::JsonBody => return Ok(render_json_body(template, values)),
        Place::Param | Place::Header | Place::Text => {}
    }
    let mut out = String::new();
    for segment in template.segments() {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Reference(reference) => {
                let value = values.lookup(reference);
                let refused = match place {
                    Place::Param => Some("query parameter"),
                    Place::Header => Some("header"),
                    Place::Url | Place::JsonBody | Place::Text => None,
                };
                if let Some(place) = refused {
                    refuse_line_breaks(reference, &value, place)?;
                }
                out.push_str(&value);
            }
        }
    }
    Ok(out)
}

/// Renders a URL template. The bot's own text and `{$env...}` values give
/// the URL its shape and go in as they are before the path; any other
/// value is held to the part it lands in (docs/engine.md, "URL rendering"):
///
/// - part of the host: one DNS label;
/// - the whole host: a host name (the caller then checks the host against
///   the bot's list, [`RenderedUrl::host_is_open`]);
/// - the scheme, user, port or an IP literal: refused;
/// - the path: one segment, percent-encoded (`/`, `\`, `%`, `?`, `#`
///   included), and refused when the segment it is part of is `.` or `..`
///   in any spelling URL parsers read as one (`%2e`, `.%2E`, ...), so no
///   value can move up the path;
/// - the query or fragment: a query component.
///
/// A line break anywhere is refused.
pub fn render_url(template: &Template, values: &Values<'_>) -> Result<RenderedUrl, RenderError> {
    let segments = template.segments();
    let mut out = String::new();
    let mut host_is_open = false;
    let mut last_label_end = None;
    let mut path_values: Vec<(Range<usize>, &Reference)> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let reference = match segment {
            Segment::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Segment::Reference(reference) => reference,
        };
        let value = values.lookup(reference);
        refuse_line_breaks(reference, &value, "URL")?;
        let after = match segments.get(index + 1) {
            Some(Segment::Literal(text)) => Some(text.as_str()),
            Some(Segment::Reference(_)) => None,
            None => Some(""),
        };
        let part = url_part(&out, after);
        let start = out.len();
        match part {
            UrlPart::Path => out.extend(utf8_percent_encode(&value, PATH_SEGMENT)),
            UrlPart::Query => out.extend(utf8_percent_encode(&value, QUERY_COMPONENT)),
            // The bot's environment is the bot's own: a base URL or a host
            // from `{$env.BASE}` goes in as it is.
            _ if matches!(reference, Reference::Env(_)) => out.push_str(&value),
            UrlPart::HostLabel if is_dns_label(&value) => {
                out.push_str(&value);
                last_label_end = Some(out.len());
            }
            UrlPart::HostLabel => {
                return Err(RenderError::NotOneLabel {
                    reference: reference.to_string(),
                });
            }
            UrlPart::WholeHost if is_host_name(&value) => {
                out.push_str(&value);
                host_is_open = true;
            }
            UrlPart::WholeHost => {
                return Err(RenderError::NotAHost {
                    reference: reference.to_string(),
                });
            }
            UrlPart::Origin | UrlPart::UserInfo | UrlPart::IpLiteral | UrlPart::Port => {
                return Err(RenderError::ForbiddenUrlPart {
                    reference: reference.to_string(),
                    part: part.describe(),
                });
            }
        }
        if part == UrlPart::Path && !matches!(reference, Reference::Env(_)) {
            path_values.push((start..out.len(), reference));
        }
    }
    host_is_open |= last_label_end.is_some_and(|end| !fixes_domain_after_value(&out[end..]));
    refuse_dot_segments(&out, &path_values)?;
    Ok(RenderedUrl {
        text: out,
        host_is_open,
    })
}

fn refuse_line_breaks(
    reference: &Reference,
    value: &str,
    place: &'static str,
) -> Result<(), RenderError> {
    if value.contains(['\r', '\n']) {
        return Err(RenderError::LineBreak {
            reference: reference.to_string(),
            place,
        });
    }
    Ok(())
}

/// Refuses a path segment that holds (part of) a value and that URL
/// parsers read as `.` or `..`: `url::Url`, like browsers, removes such
/// segments and the one before, percent-encoded dots included.
fn refuse_dot_segments(
    url: &str,
    path_values: &[(Range<usize>, &Reference)],
) -> Result<(), RenderError> {
    let Some((path_start, path)) = url
        .find("://")
        .and_then(|scheme_end| {
            let after = scheme_end + 3;
            url[after..]
                .find(['/', '\\', '?', '#'])
                .map(|at| after + at)
        })
        .map(|start| {
            let rest = &url[start..];
            (
                start,
                rest.find(['?', '#']).map_or(rest, |end| &rest[..end]),
            )
        })
    else {
        return Ok(());
    };
    let mut segment_start = path_start;
    for segment in path.split(['/', '\\']) {
        let segment_end = segment_start + segment.len();
        let made_by = path_values
            .iter()
            .find(|(range, _)| range.start < segment_end && segment_start < range.end);
        if let Some((_, reference)) = made_by
            && is_dot_segment(segment)
        {
            return Err(RenderError::DotSegment {
                reference: reference.to_string(),
                segment: segment.to_owned(),
            });
        }
        segment_start = segment_end + 1;
    }
    Ok(())
}

/// `.` or `..`, with any dot written `%2e` or `%2E`: the WHATWG URL
/// standard's single- and double-dot path segments.
fn is_dot_segment(segment: &str) -> bool {
    let dots = segment.to_ascii_lowercase().replace("%2e", ".");
    dots == "." || dots == ".."
}

/// Renders a JSON body template. Where a value lands is judged from the
/// template's own text: inside one of its strings the value is
/// string-escaped; elsewhere it is a whole JSON value, its own text when it
/// is valid JSON (`5`, `true`, `[1,"x"]`), else a JSON string. A JSON value
/// is self-delimiting, so no value can close a string, add members or end
/// the document.
fn render_json_body(template: &Template, values: &Values<'_>) -> String {
    let mut out = String::new();
    let mut scan = JsonScan::default();
    for segment in template.segments() {
        match segment {
            Segment::Literal(text) => {
                scan.read(text);
                out.push_str(text);
            }
            Segment::Reference(reference) => {
                let value = values.lookup(reference);
                if scan.in_string {
                    // A `\` the template left open would escape the value's
                    // first character; close it as an escaped backslash.
                    if std::mem::take(&mut scan.escaped) {
                        out.push('\\');
                    }
                    out.push_str(&json_escape(&value));
                } else {
                    out.push_str(&json_value(&value));
                }
            }
        }
    }
    out
}

/// Where a JSON text's scan stands: inside a string, after a `\` in one.
#[derive(Default)]
struct JsonScan {
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    fn read(&mut self, text: &str) {
        for c in text.chars() {
            if !self.in_string {
                self.in_string = c == '"';
            } else if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_string = false;
            }
        }
    }
}

/// A value as one whole JSON value: its own text when it is valid JSON,
/// else a JSON string holding it.
fn json_value(value: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok() {
        value.trim().to_owned()
    } else {
        serde_json::Value::String(value.to_owned()).to_string()
    }
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
            env: &|name| (name == "BASE").then(|| "http://h:8/api".to_owned()),
            system: &|_| None,
            fields,
        }
    }

    /// `template` rendered as a URL with the bot variable `v` set to `value`.
    fn url_with(template: &str, value: &str) -> Result<RenderedUrl, RenderError> {
        let variables = HashMap::from([("v".to_owned(), value.to_owned())]);
        let fields = Fields::default();
        render_url(&Template::parse(template), &values(&variables, &fields))
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
            Err(RenderError::LineBreak {
                reference: "{$botContext.quote}".to_owned(),
                place: "header"
            })
        );
        let based = Template::parse("{$env.BASE}/search");
        assert_eq!(
            render(&based, &values, Place::Url).expect("url"),
            "http://h:8/api/search"
        );
    }

    /// `template` rendered as a JSON body with the bot variable `v` set to
    /// `value`.
    fn json_body_with(template: &str, value: &str) -> String {
        let variables = HashMap::from([("v".to_owned(), value.to_owned())]);
        let fields = Fields::default();
        render(
            &Template::parse(template),
            &values(&variables, &fields),
            Place::JsonBody,
        )
        .expect("a body")
    }

    #[test]
    fn outside_a_json_string_a_value_is_one_whole_json_value() {
        let template = r#"{"v": {$botContext.v}, "n": 1}"#;
        for (value, expected) in [
            (r#"[1,2,"x"]"#, r#"{"v": [1,2,"x"], "n": 1}"#),
            ("5", r#"{"v": 5, "n": 1}"#),
            (" -2.5e3 ", r#"{"v": -2.5e3, "n": 1}"#),
            ("true", r#"{"v": true, "n": 1}"#),
            ("null", r#"{"v": null, "n": 1}"#),
            (r#""quoted""#, r#"{"v": "quoted", "n": 1}"#),
            (r#"{"a": {"b": []}}"#, r#"{"v": {"a": {"b": []}}, "n": 1}"#),
            ("", r#"{"v": "", "n": 1}"#),
            ("Ann", r#"{"v": "Ann", "n": 1}"#),
            (
                r#"1, "admin": true"#,
                r#"{"v": "1, \"admin\": true", "n": 1}"#,
            ),
            (r#"1}, {"x": 2"#, r#"{"v": "1}, {\"x\": 2", "n": 1}"#),
            ("[1,", r#"{"v": "[1,", "n": 1}"#),
            (r#""a"}"#, r#"{"v": "\"a\"}", "n": 1}"#),
            ("NaN", r#"{"v": "NaN", "n": 1}"#),
            ("line\nbreak", r#"{"v": "line\nbreak", "n": 1}"#),
        ] {
            let body = json_body_with(template, value);
            assert_eq!(body, expected, "{value:?}");
            let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
            let members = parsed.as_object().map(serde_json::Map::len);
            assert_eq!(members, Some(2), "{value:?} added members: {body}");
        }
    }

    #[test]
    fn inside_a_json_string_a_value_is_string_escaped() {
        for (template, value, expected) in [
            (
                r#"{"t": "{$botContext.v}"}"#,
                r#"say "hi"\"#,
                r#"{"t": "say \"hi\"\\"}"#,
            ),
            (
                r#"{"t": "x {$botContext.v} y"}"#,
                "[1]",
                r#"{"t": "x [1] y"}"#,
            ),
            // An escaped quote in the template does not end its string.
            (r#"{"t": "a\" {$botContext.v}"}"#, "5", r#"{"t": "a\" 5"}"#),
            // The template's `{` inside a string is text.
            (r#"{"t": "{ {$botContext.v}"}"#, "5", r#"{"t": "{ 5"}"#),
            // A backslash the template leaves open escapes no value.
            (
                r#"{"t": "a\{$botContext.v}"}"#,
                r#"", "x": ""#,
                r#"{"t": "a\\\", \"x\": \""}"#,
            ),
        ] {
            let body = json_body_with(template, value);
            assert_eq!(body, expected, "{template} {value:?}");
            let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
            assert_eq!(parsed.as_object().map(serde_json::Map::len), Some(1));
        }
    }

    #[test]
    fn a_value_after_a_json_string_is_outside_it() {
        let body = json_body_with(r#"["a\\", {$botContext.v}]"#, "7");
        assert_eq!(body, r#"["a\\", 7]"#);
    }

    #[test]
    fn a_value_in_part_of_the_host_is_one_dns_label() {
        let template = "http://{$botContext.v}.api.example.com/v1/orders";
        let rendered = url_with(template, "acme-eu").expect("one label");
        assert_eq!(rendered.text, "http://acme-eu.api.example.com/v1/orders");
        assert!(!rendered.host_is_open, "the template fixes api.example.com");
        for attack in [
            "evil.example:443/x?",
            "evil.example",
            "evil.example:443#",
            "evil.example#",
            "x@evil.example",
            "evil.example\\",
            "evil.example/",
            "evil.example?",
            "127.0.0.1:8080",
            "[::1]",
            "evil%2Eexample",
            "evil%2eexample%3A443%2F",
            "evil\u{FF0E}example",
            "evil\u{3002}example",
            "",
            &"a".repeat(64),
        ] {
            assert_eq!(
                url_with(template, attack),
                Err(RenderError::NotOneLabel {
                    reference: "{$botContext.v}".to_owned()
                }),
                "{attack:?}"
            );
        }
    }

    #[test]
    fn a_value_that_is_the_whole_host_is_a_host_name_and_opens_the_host() {
        for template in [
            "https://{$botContext.v}/v1",
            "https://{$botContext.v}:8443/v1",
            "https://{$botContext.v}?q=1",
            "https://{$botContext.v}",
        ] {
            let rendered = url_with(template, "orders.example.com").expect("a host");
            assert!(rendered.host_is_open, "{template}");
            for attack in [
                "evil.example:443",
                "evil.example/x?",
                "user@evil.example",
                "[::1]",
                "evil%2eexample",
                "evil..example",
                "evil.example.",
                "evil\u{FF0E}example",
            ] {
                assert_eq!(
                    url_with(template, attack),
                    Err(RenderError::NotAHost {
                        reference: "{$botContext.v}".to_owned()
                    }),
                    "{template} {attack:?}"
                );
            }
        }
    }

    #[test]
    fn a_label_without_a_fixed_domain_after_it_opens_the_host() {
        for (template, open) in [
            ("https://{$botContext.v}.api.example.com/", false),
            ("https://{$botContext.v}-eu.example.com/", false),
            ("https://api.{$botContext.v}.example.com/", false),
            ("https://api.{$botContext.v}/", true),
            ("https://api.{$botContext.v}:8443/", true),
            ("https://{$botContext.v}.com/", true),
            ("https://{$botContext.v}{$botContext.v}.example.com/", false),
        ] {
            assert_eq!(
                url_with(template, "acme").map(|url| url.host_is_open),
                Ok(open),
                "{template}"
            );
        }
    }

    #[test]
    fn no_value_chooses_the_scheme_user_port_or_an_address() {
        for (template, part) in [
            ("{$botContext.v}/search", "scheme and host"),
            ("{$botContext.v}://h/", "scheme and host"),
            ("https://{$botContext.v}@h/", "user name or password"),
            ("https://u:{$botContext.v}@h/", "user name or password"),
            ("https://h:{$botContext.v}/", "port"),
            ("https://[::{$botContext.v}]/", "IP address"),
        ] {
            assert_eq!(
                url_with(template, "80"),
                Err(RenderError::ForbiddenUrlPart {
                    reference: "{$botContext.v}".to_owned(),
                    part
                }),
                "{template}"
            );
        }
    }

    #[test]
    fn the_bots_environment_may_shape_the_url() {
        let fields = Fields::default();
        let variables = HashMap::new();
        let values = values(&variables, &fields);
        let rendered =
            render_url(&Template::parse("{$env.BASE}/search"), &values).expect("a base URL");
        assert_eq!(rendered.text, "http://h:8/api/search");
        assert!(!rendered.host_is_open);
    }

    #[test]
    fn a_path_value_is_one_segment_and_never_a_dot_segment() {
        let template = "http://h/v1/orders/{$botContext.v}?include=items";
        for (value, path) in [
            ("42", "/v1/orders/42"),
            ("%2e%2e", "/v1/orders/%252e%252e"),
            (".%2E", "/v1/orders/.%252E"),
            ("a/../..", "/v1/orders/a%2F..%2F.."),
            ("..\\..", "/v1/orders/..%5C.."),
            ("...", "/v1/orders/..."),
            ("..a", "/v1/orders/..a"),
        ] {
            let rendered = url_with(template, value).expect("one segment");
            assert_eq!(
                rendered.text,
                format!("http://h{path}?include=items"),
                "{value:?}"
            );
        }
        for value in [".", ".."] {
            assert!(
                matches!(
                    url_with(template, value),
                    Err(RenderError::DotSegment { .. })
                ),
                "{value:?}"
            );
        }
        // A value that completes a dot segment with the bot's own text.
        for (template, value) in [
            ("http://h/v1/.{$botContext.v}/x", "."),
            ("http://h/v1/%2e{$botContext.v}/x", "."),
            ("http://h/v1/{$botContext.v}.", "."),
            ("http://h/v1/{$botContext.v}{$botContext.v}", "."),
            ("http://h/v1\\{$botContext.v}", ".."),
        ] {
            assert!(
                matches!(
                    url_with(template, value),
                    Err(RenderError::DotSegment { .. })
                ),
                "{template} {value:?}"
            );
        }
        // Dots in the query are only text.
        let rendered = url_with("http://h/v1?q={$botContext.v}", "..").expect("query");
        assert_eq!(rendered.text, "http://h/v1?q=..");
    }

    #[test]
    fn line_breaks_are_refused_in_every_part_of_a_url() {
        for template in [
            "https://{$botContext.v}/",
            "https://h/{$botContext.v}",
            "https://h/?q={$botContext.v}",
        ] {
            assert!(
                matches!(
                    url_with(template, "a\r\nb"),
                    Err(RenderError::LineBreak { place: "URL", .. })
                ),
                "{template}"
            );
        }
    }
}
