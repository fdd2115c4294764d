//! The request stage, inbound: a response decoded once (JSON, XML or
//! text) into the one immutable document every later step reads, and the
//! view of it a turn may show.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use patchbay_credentials::KnownSecrets;
use patchbay_transport::Response;
use serde_json::{Map, Value};

/// A response body decoded once: `{"api_RDVN": body}`, the body as JSON,
/// converted from XML when the `Content-Type` says XML or the body starts
/// with `<` (docs/engine.md, "XML responses"), or else one JSON string.
/// Shared ([`Arc`]) by the transform's input, the custom data fields and
/// the trace; never parsed again.
pub(crate) struct Decoded {
    /// `{"api_RDVN": body}`.
    pub(crate) document: Arc<Value>,
    /// The body is JSON as received (UTF-8, not said to be XML): the
    /// transform reads its own text, not a re-serialisation of the
    /// document.
    json_as_received: bool,
}

impl Decoded {
    /// Decodes `response`'s body under the name `api_name`.
    pub(crate) fn new(api_name: &str, response: &Response) -> Self {
        let text = String::from_utf8_lossy(&response.body);
        let says_xml = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("xml"));
        let xml = (says_xml || text.trim_start().starts_with('<'))
            .then(|| patchbay_rules::xml_to_json(&text))
            .flatten();
        let (body, json_as_received) = match xml {
            Some(document) => (document, false),
            None => {
                let as_received = !says_xml && matches!(text, Cow::Borrowed(_));
                match serde_json::from_str::<Value>(&text) {
                    Ok(body) => (body, as_received),
                    // JSON a `Value` cannot hold (a number past `f64`) is
                    // still JSON to a script.
                    Err(_) => {
                        let is_json = as_received
                            && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                        (Value::String(text.into_owned()), is_json)
                    }
                }
            }
        };
        let mut document = Map::with_capacity(1);
        document.insert(api_name.to_owned(), body);
        Self {
            document: Arc::new(Value::Object(document)),
            json_as_received,
        }
    }

    /// The transform's `jsonData`: `{"api_RDVN": <body>}` as text, a JSON
    /// body's own text spliced in as received; anything else as the
    /// document's JSON.
    pub(crate) fn transform_input(&self, api_name: &str, response: &Response) -> String {
        if self.json_as_received
            && let Ok(text) = std::str::from_utf8(&response.body)
            && let Ok(key) = serde_json::to_string(api_name)
        {
            let mut input = String::with_capacity(key.len() + text.len() + 3);
            input.push('{');
            input.push_str(&key);
            input.push(':');
            input.push_str(text);
            input.push('}');
            return input;
        }
        self.document.to_string()
    }
}

/// How many bytes of a response's body, and of the document its fields
/// read, a [`ResponseView`] keeps (16 KiB); the rest is cut at a character
/// boundary and a marker says how much there was.
pub const RESPONSE_VIEW_LIMIT: usize = 16 * 1024;

/// A call's response as a bot author needs it to write its JSONPath: the
/// status, headers (those that carry credentials or sessions masked), the
/// body as received (UTF-8, lossy) and the document the fields read (after
/// the transform), each cut at [`RESPONSE_VIEW_LIMIT`] bytes and with the
/// bot's secrets masked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseView {
    /// The status.
    pub status: u16,
    /// The headers by lower-case name, in order (repeated ones joined with
    /// `, `); a credential-like header's value is `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The body as received, cut at [`RESPONSE_VIEW_LIMIT`] bytes.
    pub body: String,
    /// The body's size in bytes.
    pub body_bytes: usize,
    /// The document the fields read (`{"api_RDVN": ...}` or what the
    /// transform left), as JSON text cut at [`RESPONSE_VIEW_LIMIT`] bytes;
    /// `None` when the fields were not read (a status other than 200 or
    /// 201).
    pub document: Option<String>,
}

/// Header names whose value is never shown: cookies, credentials and
/// sessions; and any name with one of [`HIDDEN_HEADER_WORDS`].
const HIDDEN_HEADERS: [&str; 6] = [
    "set-cookie",
    "set-cookie2",
    "cookie",
    "authorization",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Words in a header's name that say its value is a credential.
const HIDDEN_HEADER_WORDS: [&str; 7] = [
    "auth",
    "token",
    "secret",
    "key",
    "session",
    "password",
    "signature",
];

impl ResponseView {
    pub(crate) fn new(response: &Response, secrets: &KnownSecrets) -> Self {
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in &response.headers {
            let name = name.as_str();
            let hidden = HIDDEN_HEADERS.contains(&name)
                || HIDDEN_HEADER_WORDS.iter().any(|word| name.contains(word));
            let value = if hidden {
                patchbay_credentials::MASK.to_owned()
            } else {
                secrets.mask(&String::from_utf8_lossy(value.as_bytes()))
            };
            match headers.iter_mut().find(|(seen, _)| seen == name) {
                Some((_, joined)) if !hidden => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                Some(_) => {}
                None => headers.push((name.to_owned(), value)),
            }
        }
        Self {
            status: response.status,
            headers,
            body: truncated(
                &secrets.mask(&String::from_utf8_lossy(&response.body)),
                response.body.len(),
            ),
            body_bytes: response.body.len(),
            document: None,
        }
    }

    /// Shows `document` (the one the fields read), masked and cut.
    pub(crate) fn show_document(&mut self, document: &Value, secrets: &KnownSecrets) {
        let text = document.to_string();
        self.document = Some(truncated(&secrets.mask(&text), text.len()));
    }
}

/// The view as JSON: `status`, `headers` (an object), `body`, `bodyBytes`,
/// `document` (text or null).
impl serde::Serialize for ResponseView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Headers<'a>(&'a [(String, String)]);
        impl serde::Serialize for Headers<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
            }
        }
        let mut json = serializer.serialize_struct("ResponseView", 5)?;
        json.serialize_field("status", &self.status)?;
        json.serialize_field("headers", &Headers(&self.headers))?;
        json.serialize_field("body", &self.body)?;
        json.serialize_field("bodyBytes", &self.body_bytes)?;
        json.serialize_field("document", &self.document)?;
        json.end()
    }
}

/// `text` (masked) cut at [`RESPONSE_VIEW_LIMIT`] bytes (at a character
/// boundary), with `…[truncated: N bytes in all]` when it was longer, `N`
/// the size of what it shows (`total`, before masking).
fn truncated(text: &str, total: usize) -> String {
    if text.len() <= RESPONSE_VIEW_LIMIT {
        return text.to_owned();
    }
    let mut end = RESPONSE_VIEW_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated: {total} bytes in all]", &text[..end])
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderValue;

    use super::*;
    use serde_json::json;

    fn response(content_type: Option<&str>, body: &[u8]) -> Response {
        let mut headers = http::HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(content_type).expect("a header value"),
            );
        }
        Response {
            status: 200,
            version: patchbay_transport::HttpVersion::Http1,
            headers,
            body: Bytes::copy_from_slice(body),
            url: url::Url::parse("https://example.com/").expect("a URL"),
            timings: patchbay_transport::Timings {
                total: std::time::Duration::ZERO,
                headers: std::time::Duration::ZERO,
                attempts: 1,
                redirects: 0,
            },
        }
    }

    /// What `response_document` and `api_json_text` gave before the
    /// response was decoded once: the document, and the transform's text.
    fn decoded(content_type: Option<&str>, body: &[u8]) -> (Value, String) {
        let response = response(content_type, body);
        let decoded = Decoded::new("api_X", &response);
        let input = decoded.transform_input("api_X", &response);
        ((*decoded.document).clone(), input)
    }

    #[test]
    fn a_body_is_decoded_as_json_xml_or_text() {
        let (document, input) = decoded(Some("application/json"), br#"{"a": [1, 2.50]}"#);
        assert_eq!(document, json!({ "api_X": { "a": [1, 2.5] } }));
        // The body's own text, as received.
        assert_eq!(input, r#"{"api_X":{"a": [1, 2.50]}}"#);

        let (document, input) = decoded(None, b"<r><a id=\"1\">x</a></r>");
        assert_eq!(
            document,
            json!({ "api_X": { "r": { "a": { "@id": "1", "#text": "x" } } } })
        );
        assert_eq!(input, document.to_string());

        // Said to be XML, and not XML: JSON still, re-serialised.
        let (document, input) = decoded(Some("text/xml"), b"[1, 2]");
        assert_eq!(document, json!({ "api_X": [1, 2] }));
        assert_eq!(input, r#"{"api_X":[1,2]}"#);

        let (document, input) = decoded(Some("text/plain"), b"plain words");
        assert_eq!(document, json!({ "api_X": "plain words" }));
        assert_eq!(input, r#"{"api_X":"plain words"}"#);

        // JSON past what a number can hold: text to the fields, JSON to a
        // script.
        let (document, input) = decoded(None, b"[1e400]");
        assert_eq!(document, json!({ "api_X": "[1e400]" }));
        assert_eq!(input, r#"{"api_X":[1e400]}"#);

        // Not UTF-8: read lossily, never spliced.
        let (document, input) = decoded(None, b"\"a\xffb\"");
        assert_eq!(document, json!({ "api_X": "a\u{fffd}b" }));
        assert_eq!(input, document.to_string());
    }
}
