//! Templates: text with `{...}` references, parsed once when the bot loads.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A template parsed into literal text and references.
///
/// Parsing never fails: text that does not form a reference (a JSON body's
/// own braces, an unclosed `{`) stays literal, and a reference patchbay does
/// not know becomes [`Reference::Unknown`], which renders as empty text and
/// which `patchbay check` reports.
#[derive(Clone, Debug)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as it is.
    Literal(String),
    /// A value looked up when the template renders.
    Reference(Reference),
}

/// What a `{...}` reference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// `{$botContext.NAME}`: a bot variable.
    BotVariable(String),
    /// `{$botContext.slot.NAME}`: a slot.
    Slot(String),
    /// `{$env.NAME}`: an environment variable of the bot.
    Env(String),
    /// `{$userMessage}`, `{$conversationId}` and the other system variables.
    System(SystemVariable),
    /// `{RDVN.key}`, `{RDVN.key.count}`, `{RDVN.key[N]}`: a custom data field.
    Field(FieldRef),
    /// A reference patchbay does not know; renders as empty text.
    Unknown(String),
}

/// The system variables of spec section 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemVariable {
    /// `{$userMessage}` (alias `{$query}`).
    UserMessage,
    /// `{$conversationId}`.
    ConversationId,
    /// `{$chatBotId}`.
    ChatBotId,
    /// `{$chatBotUserId}`.
    ChatBotUserId,
    /// `{$chatBotUserPlatformId}`.
    ChatBotUserPlatformId,
    /// `{$firstname}`.
    FirstName,
    /// `{$quickReplyPayload}`.
    QuickReplyPayload,
}

impl SystemVariable {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "userMessage" | "query" => Self::UserMessage,
            "conversationId" => Self::ConversationId,
            "chatBotId" => Self::ChatBotId,
            "chatBotUserId" => Self::ChatBotUserId,
            "chatBotUserPlatformId" => Self::ChatBotUserPlatformId,
            "firstname" => Self::FirstName,
            "quickReplyPayload" => Self::QuickReplyPayload,
            _ => return None,
        })
    }

    /// The variable's name in templates, without `$`.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserMessage => "userMessage",
            Self::ConversationId => "conversationId",
            Self::ChatBotId => "chatBotId",
            Self::ChatBotUserId => "chatBotUserId",
            Self::ChatBotUserPlatformId => "chatBotUserPlatformId",
            Self::FirstName => "firstname",
            Self::QuickReplyPayload => "quickReplyPayload",
        }
    }

    /// Every name a system variable answers to, for suggestions.
    pub(crate) const NAMES: &'static [&'static str] = &[
        "userMessage",
        "query",
        "conversationId",
        "chatBotId",
        "chatBotUserId",
        "chatBotUserPlatformId",
        "firstname",
        "quickReplyPayload",
        "botContext",
        "env",
    ];
}

/// A reference to a custom data field of an integration that already ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRef {
    /// The integration's response data variable name (or its name).
    pub owner: String,
    /// The field's key.
    pub key: String,
    /// Which part of the field's values.
    pub selector: FieldSelector,
}

/// A condition's `field` (`RDVN.key`, `RDVN.key.count`, `RDVN.key[N]`) as
/// written, parsed once when the bot loads.
#[derive(Clone, Debug)]
pub struct FieldName {
    source: String,
    reference: Option<FieldRef>,
}

impl FieldName {
    /// Parses a field name; one that is not a field reference keeps its
    /// text and has no [`FieldName::reference`] (`check` reports it).
    pub fn parse(source: &str) -> Self {
        let reference = match reference_body(&format!("{source}}}")) {
            Some(body) if body == source => match Reference::parse(body) {
                Reference::Field(field) => Some(field),
                _ => None,
            },
            _ => None,
        };
        Self {
            source: source.to_owned(),
            reference,
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The field it names, if it is a field reference.
    pub fn reference(&self) -> Option<&FieldRef> {
        self.reference.as_ref()
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for FieldName {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for FieldName {}

impl Serialize for FieldName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

impl schemars::JsonSchema for FieldName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A custom data field: RDVN.key, RDVN.key.count or RDVN.key[N]."
        })
    }
}

/// Which part of a custom data field a reference takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSelector {
    /// The field's value (one value, or the list of values).
    Value,
    /// `.count`: how many values the field holds.
    Count,
    /// `[N]`: the N-th value, from 0.
    Index(usize),
}

impl Template {
    /// Parses `source`. Never fails; see the type's documentation.
    pub fn parse(source: &str) -> Self {
        crate::count_compilation("template");
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match reference_body(after) {
                Some(body) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Reference(Reference::parse(body)));
                    rest = &after[body.len() + 1..];
                }
                None => {
                    literal.push('{');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Self {
            source: source.to_owned(),
            segments,
        }
    }

    /// The text the template was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed pieces, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The references of the template, in order.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Reference(reference) => Some(reference),
            Segment::Literal(_) => None,
        })
    }

    /// True when the template holds no reference.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }

    /// The name `NAME` when the whole template is exactly `{$env.NAME}`.
    pub fn as_env_reference(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [Segment::Reference(Reference::Env(name))] => Some(name),
            _ => None,
        }
    }
}

/// The text between `{` and its `}` when it has the shape of a reference:
/// `$name...` or `Owner.key...`, made of name characters only. Anything else
/// (JSON's `{"a": 1}`, `{ }`, a bare `{word}`) is literal text.
fn reference_body(after_open: &str) -> Option<&str> {
    let close = after_open.find('}')?;
    let body = &after_open[..close];
    let mut chars = body.chars();
    let first = chars.next()?;
    let starts_well = first == '$' || first == '_' || first.is_ascii_alphabetic();
    let name_chars = body[first.len_utf8()..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']'));
    let is_reference = starts_well && name_chars && (first == '$' || body.contains('.'));
    is_reference.then_some(body)
}

impl Reference {
    fn parse(body: &str) -> Self {
        let unknown = || Self::Unknown(body.to_owned());
        if let Some(system) = body.strip_prefix('$') {
            let (head, tail) = match system.split_once('.') {
                Some((head, tail)) => (head, Some(tail)),
                None => (system, None),
            };
            return match (head, tail) {
                ("botContext", Some(tail)) => match tail.strip_prefix("slot.") {
                    Some(slot) if is_name(slot) => Self::Slot(slot.to_owned()),
                    _ if is_name(tail) => Self::BotVariable(tail.to_owned()),
                    _ => unknown(),
                },
                ("env", Some(name)) if is_name(name) => Self::Env(name.to_owned()),
                (name, None) => SystemVariable::from_name(name).map_or_else(unknown, Self::System),
                _ => unknown(),
            };
        }
        let Some((owner, rest)) = body.split_once('.') else {
            return unknown();
        };
        let (key, selector) = if let Some(key) = rest.strip_suffix(".count") {
            (key, FieldSelector::Count)
        } else if let Some((key, index)) = rest
            .strip_suffix(']')
            .and_then(|inner| inner.rsplit_once('['))
        {
            match index.parse() {
                Ok(index) => (key, FieldSelector::Index(index)),
                Err(_) => return unknown(),
            }
        } else {
            (rest, FieldSelector::Value)
        };
        if is_identifier(owner) && is_name(key) {
            Self::Field(FieldRef {
                owner: owner.to_owned(),
                key: key.to_owned(),
                selector,
            })
        } else {
            unknown()
        }
    }
}

/// An identifier: a letter or `_`, then letters, digits or `_`.
pub(crate) fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A variable or field name: identifiers joined by `.` or `-`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.split(['.', '-']).all(|part| {
            !part.is_empty() && part.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
        })
}

/// Where a value lands in a URL, judged from the URL text before it (see
/// [`url_part`]). The value rules of each part are in docs/engine.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlPart {
    /// Before `://`: a value here would choose the scheme, host and port.
    Origin,
    /// Before an `@` of the authority: the user name or password.
    UserInfo,
    /// Part of the host, with text of the URL beside it
    /// (`https://{x}.api.example.com`).
    HostLabel,
    /// The whole host (`https://{x}/...`, `https://{x}:8443/...`).
    WholeHost,
    /// Inside an IP literal (`https://[...]`).
    IpLiteral,
    /// After the host's `:`.
    Port,
    /// The path.
    Path,
    /// The query or the fragment.
    Query,
}

impl UrlPart {
    /// True for the parts before the path (the scheme and the authority).
    pub fn is_before_path(self) -> bool {
        !matches!(self, Self::Path | Self::Query)
    }

    /// The part, for people: "scheme and host", "port", ...
    pub fn describe(self) -> &'static str {
        match self {
            Self::Origin => "scheme and host",
            Self::UserInfo => "user name or password",
            Self::HostLabel | Self::WholeHost => "host",
            Self::IpLiteral => "IP address",
            Self::Port => "port",
            Self::Path => "path",
            Self::Query => "query",
        }
    }
}

/// The characters that end a URL's authority. `\` counts: for `http` and
/// `https`, URL parsers read it as `/`.
const AUTHORITY_END: [char; 4] = ['/', '\\', '?', '#'];

/// Where a value placed right after `before` (the URL text so far) lands.
/// `after` is the text that follows the value when it is fixed (literal
/// text, `""` at the end of the template), `None` when another reference
/// follows; it tells a whole host from a part of one.
pub fn url_part(before: &str, after: Option<&str>) -> UrlPart {
    let Some(scheme_end) = before.find("://") else {
        return UrlPart::Origin;
    };
    let authority = &before[scheme_end + 3..];
    if let Some(end) = authority.find(AUTHORITY_END) {
        return if authority[end..].contains(['?', '#']) {
            UrlPart::Query
        } else {
            UrlPart::Path
        };
    }
    let rest_of_authority =
        after.map(|after| after.find(AUTHORITY_END).map_or(after, |end| &after[..end]));
    if rest_of_authority.is_some_and(|rest| rest.contains('@')) {
        return UrlPart::UserInfo;
    }
    let host_so_far = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(literal) = host_so_far.strip_prefix('[') {
        return match literal.split_once(']') {
            None => UrlPart::IpLiteral,
            Some(_) => UrlPart::Port,
        };
    }
    if host_so_far.contains(':') {
        return UrlPart::Port;
    }
    let host_ends_after = after.is_some_and(|after| {
        after.is_empty() || after.starts_with(|c: char| c == ':' || AUTHORITY_END.contains(&c))
    });
    if host_so_far.is_empty() && host_ends_after {
        UrlPart::WholeHost
    } else {
        UrlPart::HostLabel
    }
}

/// Whether the host text that follows a value in the host (`rest`, up to
/// the end of the URL) fixes a domain of at least two labels, as
/// `.api.example.com` after `{x}` does. When it does not
/// (`https://api.{x}`, `https://{x}.{y}`), the value chooses the domain:
/// the host is open.
pub fn fixes_domain_after_value(rest: &str) -> bool {
    let host_rest = rest
        .find(|c: char| c == ':' || AUTHORITY_END.contains(&c))
        .map_or(rest, |end| &rest[..end]);
    host_rest
        .split_once('.')
        .is_some_and(|(_, domain)| domain.split('.').filter(|label| !label.is_empty()).count() >= 2)
}

/// One DNS label of a host name: 1 to 63 ASCII letters, digits and `-`.
/// Nothing else may come from a value placed in part of a host: no `.`,
/// port, user, path, `%`-escape or non-ASCII letter (which IDNA could map
/// to a `.`).
pub fn is_dns_label(text: &str) -> bool {
    (1..=63).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A host name: DNS labels joined by `.`, at most 253 bytes.
pub fn is_host_name(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// The reference as it is written in a template, e.g. `{$env.KEY}`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BotVariable(name) => write!(f, "{{$botContext.{name}}}"),
            Self::Slot(name) => write!(f, "{{$botContext.slot.{name}}}"),
            Self::Env(name) => write!(f, "{{$env.{name}}}"),
            Self::System(system) => write!(f, "{{${}}}", system.name()),
            Self::Field(field) => match field.selector {
                FieldSelector::Value => write!(f, "{{{}.{}}}", field.owner, field.key),
                FieldSelector::Count => write!(f, "{{{}.{}.count}}", field.owner, field.key),
                FieldSelector::Index(index) => {
                    write!(f, "{{{}.{}[{index}]}}", field.owner, field.key)
                }
            },
            Self::Unknown(body) => write!(f, "{{{body}}}"),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Ok(Self::parse(&source))
    }
}

impl schemars::JsonSchema for Template {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Template".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Text with {$botContext.NAME}, {$env.NAME}, {$userMessage} or {RDVN.key} references."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(source: &str) -> Vec<Reference> {
        Template::parse(source).references().cloned().collect()
    }

    #[test]
    fn parses_every_reference_kind() {
        let template = Template::parse(
            "{$botContext.q}{$botContext.slot.city}{$env.KEY}{$query}{FAQS.title}{FAQS.title.count}{FAQS.title[2]}{$nope}",
        );
        let expected = vec![
            Reference::BotVariable("q".into()),
            Reference::Slot("city".into()),
            Reference::Env("KEY".into()),
            Reference::System(SystemVariable::UserMessage),
            Reference::Field(FieldRef {
                owner: "FAQS".into(),
                key: "title".into(),
                selector: FieldSelector::Value,
            }),
            Reference::Field(FieldRef {
                owner: "FAQS".into(),
                key: "title".into(),
                selector: FieldSelector::Count,
            }),
            Reference::Field(FieldRef {
                owner: "FAQS".into(),
                key: "title".into(),
                selector: FieldSelector::Index(2),
            }),
            Reference::Unknown("$nope".into()),
        ];
        assert_eq!(template.references().cloned().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn json_braces_stay_literal() {
        let template = Template::parse(r#"{"q": "{$botContext.q}", "n": {}, "w": "{word}"}"#);
        assert_eq!(
            template.segments(),
            &[
                Segment::Literal(r#"{"q": ""#.into()),
                Segment::Reference(Reference::BotVariable("q".into())),
                Segment::Literal(r#"", "n": {}, "w": "{word}"}"#.into()),
            ]
        );
    }

    #[test]
    fn unclosed_brace_is_literal() {
        assert!(refs("a {$botContext.x").is_empty());
        assert_eq!(
            Template::parse("{").segments(),
            &[Segment::Literal("{".into())]
        );
    }

    #[test]
    fn field_names_parse_once() {
        let name = FieldName::parse("FAQS.title.count");
        assert_eq!(
            name.reference(),
            Some(&FieldRef {
                owner: "FAQS".into(),
                key: "title".into(),
                selector: FieldSelector::Count,
            })
        );
        assert_eq!(FieldName::parse("not a field").reference(), None);
        assert_eq!(FieldName::parse("x}{$env.A").reference(), None);
    }

    #[test]
    fn url_parts_are_judged_from_the_text_before_and_after() {
        for (before, after, part) in [
            ("", Some("/search"), UrlPart::Origin),
            ("https://", Some(".api.example.com/"), UrlPart::HostLabel),
            ("https://api.", Some(""), UrlPart::HostLabel),
            ("https://", None, UrlPart::HostLabel),
            ("https://", Some("/v1"), UrlPart::WholeHost),
            ("https://", Some(":8443/v1"), UrlPart::WholeHost),
            ("https://", Some(""), UrlPart::WholeHost),
            ("https://", Some("@h/"), UrlPart::UserInfo),
            ("https://u:", Some("@h/"), UrlPart::UserInfo),
            ("https://u@", Some("/"), UrlPart::WholeHost),
            ("https://h:", Some("/"), UrlPart::Port),
            ("https://[::", Some("]/"), UrlPart::IpLiteral),
            ("https://[::1]:", Some("/"), UrlPart::Port),
            ("https://h/v1/", Some(""), UrlPart::Path),
            ("https://h\\v1\\", Some(""), UrlPart::Path),
            ("https://h/v1?q=", Some(""), UrlPart::Query),
            ("https://h?q=", Some(""), UrlPart::Query),
            ("https://h/v1#", Some(""), UrlPart::Query),
        ] {
            assert_eq!(url_part(before, after), part, "{before:?} {after:?}");
        }
    }

    #[test]
    fn labels_and_host_names() {
        assert!(is_dns_label("acme-eu1"));
        for not_a_label in ["", "a.b", "a:1", "a@b", "a%2e", "a\u{FF0E}b", "a_b"] {
            assert!(!is_dns_label(not_a_label), "{not_a_label:?}");
        }
        assert!(is_dns_label(&"a".repeat(63)) && !is_dns_label(&"a".repeat(64)));
        assert!(is_host_name("eu.orders.example.com"));
        for not_a_host in ["", "a..b", "a.", ".a", "a:1", "[::1]"] {
            assert!(!is_host_name(not_a_host), "{not_a_host:?}");
        }
        assert!(fixes_domain_after_value(".api.example.com/v1"));
        assert!(fixes_domain_after_value("-eu.example.com:8443/"));
        assert!(!fixes_domain_after_value(".com/"));
        assert!(!fixes_domain_after_value("/v1"));
    }

    #[test]
    fn env_reference_alone() {
        assert_eq!(Template::parse("{$env.S}").as_env_reference(), Some("S"));
        assert_eq!(Template::parse("x{$env.S}").as_env_reference(), None);
    }
}
