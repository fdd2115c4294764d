//! Known secrets masked in text, in every encoding patchbay itself puts
//! them in: as they are, percent-encoded (form, query, path, RFC 3986),
//! JSON-escaped, base64 at any offset (standard and URL-safe alphabets),
//! and so inside a Basic header whatever the user name.

use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

use patchbay_config::{Bot, Reference};

use crate::secret::Secret;

/// What a masked secret becomes.
pub const MASK: &str = "[redacted]";

/// Shorter values are not masked: they would blot out ordinary words.
pub const MIN_SECRET_LEN: usize = 4;

/// Base64 runs shorter than this are not looked for: shorter runs occur
/// by chance in ordinary base64 text.
const MIN_BASE64_RUN: usize = 6;

/// How long text from a server may be in our errors, in characters.
pub const MAX_UPSTREAM_TEXT_CHARS: usize = 300;

/// RFC 3986 section 2.3: everything but the unreserved characters (what
/// OAuth 1 signs with).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the `url` crate encodes in a path segment.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// One spelling of a secret to look for.
#[derive(Clone)]
struct Needle {
    text: Secret,
    /// A run of base64 that only the secret's bytes decide: a match is
    /// widened to the whole base64 word around it, so that no bit of the
    /// secret (nor the user name beside it in a Basic value) is left.
    base64: bool,
}

/// Secrets to mask in text that is shown (errors, logs, recordings,
/// reports), each in every spelling patchbay produces. Build it once from
/// the secrets a component knows, then [`KnownSecrets::mask`] text, or
/// [`KnownSecrets::sanitize`] text a server sent.
///
/// Held as [`Secret`]s: zeroed on drop, and `Debug` says only how many.
#[derive(Clone, Default)]
pub struct KnownSecrets {
    needles: Vec<Needle>,
}

impl fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KnownSecrets({} spellings)", self.needles.len())
    }
}

/// Whether an environment variable's name says it holds a secret: one of
/// the words people use for them (`API_KEY`, `DB_PASSWD`, `AUTH_TOKEN`,
/// `SESSION_COOKIE`, ...), or `PW` as a whole word (`SHOP_PW`).
fn names_a_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const WORDS: [&str; 10] = [
        "KEY",
        "SECRET",
        "TOKEN",
        "PASS",
        "PWD",
        "AUTH",
        "CREDENTIAL",
        "PRIVATE",
        "COOKIE",
        "SESSION",
    ];
    WORDS.iter().any(|word| upper.contains(word))
        || upper.split(['_', '-', '.']).any(|part| part == "PW")
}

impl KnownSecrets {
    /// The secrets of `bot`, whose environment `env` resolves: the values
    /// its credentials' secret fields name (or hold, when written in the
    /// file), of the variables its integrations' headers name, and of the
    /// variables it leaves to run time (`null`) whose names say secret
    /// (`KEY`, `SECRET`, `TOKEN`, `PASS`, `PWD`, `PW`, `AUTH`, ...).
    pub fn of_bot(bot: &Bot, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut secrets = Self::new();
        let templates = bot
            .credentials
            .iter()
            .flat_map(|credential| credential.kind.secrets())
            .map(|(_, template)| template);
        let mut names = Vec::new();
        for template in templates {
            if template.is_literal() {
                secrets.insert(&template.to_string());
            }
            names.extend(
                template
                    .references()
                    .filter_map(|reference| match reference {
                        Reference::Env(name) => Some(name.as_str()),
                        _ => None,
                    }),
            );
        }
        // What an integration sends in a header is as good as a credential.
        names.extend(
            bot.integrations
                .iter()
                .flat_map(|integration| integration.headers.values())
                .flat_map(|template| template.references())
                .filter_map(|reference| match reference {
                    Reference::Env(name) => Some(name.as_str()),
                    _ => None,
                }),
        );
        names.extend(bot.env.iter().filter_map(|(name, default)| {
            (default.is_none() && names_a_secret(name)).then_some(name.as_str())
        }));
        for name in names {
            if let Some(value) = env(name) {
                secrets.insert(&value);
            }
        }
        secrets
    }

    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it knows no secret.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Adds `secret` in each of its spellings; a value shorter than
    /// [`MIN_SECRET_LEN`] is ignored.
    pub fn insert(&mut self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        // A URL's host is lower-cased on parsing, so a secret placed there
        // is shown lower-cased (in a call's trace, in a DNS error).
        let lower = secret.to_lowercase();
        if lower != secret {
            self.push(lower, false);
        }
        for spelling in text_spellings(secret) {
            for run in base64_runs(spelling.as_bytes()) {
                self.push(run, true);
            }
            self.push(spelling, false);
        }
    }

    /// Adds the Basic credential of `user` and `password`: the password
    /// alone (see [`KnownSecrets::insert`]) and the whole `user:password`
    /// pair, as RFC 7617 encodes it and as RFC 6749 section 2.3.1 does
    /// (each part form-encoded first). `user` alone is not a secret.
    pub fn insert_basic(&mut self, user: &str, password: &str) {
        self.insert(password);
        if password.len() < MIN_SECRET_LEN {
            return;
        }
        let form = |text: &str| -> String {
            url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
        };
        let pairs = [
            format!("{user}:{password}"),
            format!("{}:{}", form(user), form(password)),
        ];
        for pair in pairs {
            self.insert(&pair);
        }
    }

    /// Adds every spelling `other` knows.
    pub fn merge(&mut self, other: &KnownSecrets) {
        for needle in &other.needles {
            self.push(needle.text.expose().to_owned(), needle.base64);
        }
    }

    fn push(&mut self, text: String, base64: bool) {
        if self
            .needles
            .iter()
            .any(|needle| needle.text.expose() == text)
        {
            return;
        }
        self.needles.push(Needle {
            text: Secret::new(text),
            base64,
        });
    }

    /// `text` with every spelling of every known secret replaced by
    /// [`MASK`]. Overlapping matches are masked as one.
    pub fn mask(&self, text: &str) -> String {
        let mut found: Vec<Range<usize>> = Vec::new();
        for needle in &self.needles {
            let spelling = needle.text.expose();
            for (start, matched) in text.match_indices(spelling) {
                let mut range = start..start + matched.len();
                if needle.base64 {
                    range = widen_to_base64_word(text, range);
                }
                found.push(range);
            }
        }
        if found.is_empty() {
            return text.to_owned();
        }
        found.sort_by_key(|range| range.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for range in found {
            match merged.last_mut() {
                Some(last) if range.start < last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        let mut masked = String::with_capacity(text.len());
        let mut shown_from = 0;
        for range in merged {
            masked.push_str(&text[shown_from..range.start]);
            masked.push_str(MASK);
            shown_from = range.end;
        }
        masked.push_str(&text[shown_from..]);
        masked
    }

    /// Text a server sent (an OAuth `error_description`, say), made fit to
    /// quote in an error: control and invisible formatting characters
    /// dropped (first, so that none can split a secret past the mask),
    /// known secrets masked, and at most `max_chars` characters kept.
    pub fn sanitize(&self, text: &str, max_chars: usize) -> String {
        let visible: String = text
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\t') {
                    ' '
                } else {
                    c
                }
            })
            .filter(|&c| !is_invisible(c))
            .collect();
        let masked = self.mask(&visible);
        match masked.char_indices().nth(max_chars) {
            Some((cut, _)) => format!("{}…", &masked[..cut]),
            None => masked,
        }
    }
}

/// Control characters, and the formatting characters that hide or reorder
/// text on a terminal (zero-width, bidirectional overrides, BOM).
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The secret as it is, JSON-escaped, and percent-encoded the ways the
/// project encodes values (form fields and query pairs, RFC 3986, path
/// segments, every non-alphanumeric byte), with upper- and lower-case hex.
fn text_spellings(secret: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut spellings = vec![
        secret.to_owned(),
        json_escaped(secret),
        form.clone(),
        form.replace('+', "%20"),
        utf8_percent_encode(secret, RFC3986).to_string(),
        utf8_percent_encode(secret, PATH_SEGMENT).to_string(),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
    ];
    let lower_hex: Vec<String> = spellings.iter().map(|s| lower_hex(s)).collect();
    spellings.extend(lower_hex);
    let mut unique: Vec<String> = Vec::with_capacity(spellings.len());
    for spelling in spellings {
        if !unique.contains(&spelling) {
            unique.push(spelling);
        }
    }
    unique
}

/// `text` as a JSON string's contents.
fn json_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if (c as u32) < 0x20 => escaped.push_str(&format!("\\u{:04x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The hex digits of `%XX` escapes in lower case.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hex_left = 0;
    for c in text.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if c == '%' {
                hex_left = 2;
            }
            out.push(c);
        }
    }
    out
}

/// The base64 characters that only `bytes` decide, wherever `bytes` sits
/// in the encoded text: for each of the three offsets modulo 3, the
/// encoding's characters that hold no bit of what comes before or after,
/// in the standard and the URL-safe alphabet.
fn base64_runs(bytes: &[u8]) -> Vec<String> {
    let mut runs = Vec::new();
    for offset in 0..3 {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(bytes);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&shifted);
        // The first character free of the leading filler bytes' bits, and
        // the end of the last one within the secret's own bits.
        let start = [0, 2, 3][offset];
        let end = shifted.len() * 8 / 6;
        let Some(run) = encoded.get(start..end) else {
            continue;
        };
        if run.len() < MIN_BASE64_RUN {
            continue;
        }
        let url_safe = run.replace('+', "-").replace('/', "_");
        if url_safe != run {
            runs.push(url_safe);
        }
        runs.push(run.to_owned());
    }
    runs
}

/// `range` grown over the base64 characters (both alphabets, padding)
/// around it.
fn widen_to_base64_word(text: &str, range: Range<usize>) -> Range<usize> {
    let bytes = text.as_bytes();
    let is_base64 =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=');
    let mut start = range.start;
    while start > 0 && is_base64(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = range.end;
    while end < bytes.len() && is_base64(bytes[end]) {
        end += 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "canary-s3cr3t/+&= é";

    fn known() -> KnownSecrets {
        let mut known = KnownSecrets::new();
        known.insert(SECRET);
        known
    }

    fn base64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn every_spelling_is_masked() {
        let known = known();
        let form: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let spelled = [
            SECRET.to_owned(),
            form.clone(),
            form.to_ascii_lowercase(),
            utf8_percent_encode(SECRET, RFC3986).to_string(),
            utf8_percent_encode(SECRET, NON_ALPHANUMERIC).to_string(),
            json_escaped(SECRET),
        ];
        for spelling in spelled {
            let text = format!("before {spelling} after");
            assert_eq!(known.mask(&text), "before [redacted] after", "{spelling}");
        }
    }

    #[test]
    fn base64_is_masked_at_any_offset_and_whole() {
        let known = known();
        for prefix in ["", "a", "ab", "abc", "user:", "bot:client:"] {
            let encoded = base64(&format!("{prefix}{SECRET} and more"));
            let url_safe = encoded.replace('+', "-").replace('/', "_");
            for text in [encoded, url_safe] {
                let header = format!("Authorization: Basic {text}, done");
                assert_eq!(
                    known.mask(&header),
                    "Authorization: Basic [redacted], done",
                    "{prefix}"
                );
            }
        }
    }

    #[test]
    fn a_basic_pair_is_masked_in_both_encodings() {
        let mut known = KnownSecrets::new();
        known.insert_basic("bot:client", "s3:cr\u{e9}t/\u{263a}");
        let form = |text: &str| -> String {
            url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
        };
        let rfc6749 = base64(&format!(
            "{}:{}",
            form("bot:client"),
            form("s3:cr\u{e9}t/\u{263a}")
        ));
        let rfc7617 = base64("bot:client:s3:cr\u{e9}t/\u{263a}");
        for value in [rfc6749, rfc7617] {
            assert_eq!(known.mask(&format!("Basic {value}")), "Basic [redacted]");
        }
    }

    #[test]
    fn other_text_stays() {
        let known = known();
        let text = "invalid_client: the client is unknown (see https://h/1?a=b)";
        assert_eq!(known.mask(text), text);
        assert_eq!(KnownSecrets::new().mask(SECRET), SECRET);
        let mut short = KnownSecrets::new();
        short.insert("abc");
        assert!(short.is_empty());
    }

    #[test]
    fn overlapping_and_adjacent_matches_are_masked_as_one() {
        let mut known = KnownSecrets::new();
        known.insert("secret-one");
        known.insert("one-two-three");
        assert_eq!(
            known.mask("secret-one-two-three!"),
            "[redacted]!",
            "overlapping"
        );
        assert_eq!(known.mask("secret-onesecret-one"), "[redacted][redacted]");
    }

    #[test]
    fn sanitize_drops_controls_before_masking_and_bounds_length() {
        let known = known();
        let split = SECRET.replacen('r', "r\u{0}\u{200B}", 1);
        let text = format!("bad\r\nrequest\u{1b}[31m {split}");
        assert_eq!(
            known.sanitize(&text, MAX_UPSTREAM_TEXT_CHARS),
            "bad  request[31m [redacted]"
        );
        assert_eq!(known.sanitize("ééééé", 3), "ééé…");
        assert_eq!(known.sanitize("short", 5), "short");
    }

    #[test]
    fn debug_shows_no_secret() {
        assert!(!format!("{:?}", known()).contains("canary"));
    }
}
