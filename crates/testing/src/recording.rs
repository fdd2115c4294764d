//! Recordings: each upstream exchange of a real run, secrets redacted, as
//! one JSON document; and the answers a replay gives from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use patchbay_engine::config::{Bot, CredentialKind};
use patchbay_engine::credentials::KnownSecrets;
use patchbay_engine::transport::{Client, NetworkGuard, Request};
use serde_json::{Value, json};

use crate::stub::{Answer, BoxFuture, StubRequest, StubResponse};

/// What secrets become in a recording.
pub const REDACTED: &str = patchbay_engine::credentials::MASK;

/// Header names whose values are always credentials.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// JSON members and form fields that hold secrets in token exchanges.
const SECRET_MEMBERS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "code",
    "code_verifier",
];

/// Takes secrets out of exchanges and of what is shown about them: the
/// values of the bot's secret environment variables wherever they appear,
/// in every encoding patchbay produces (as they are, percent- and
/// form-encoded, JSON-escaped, base64 at any offset, so inside a Basic
/// header too), credential headers, token members of JSON and form
/// bodies, and credential query parameters.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: KnownSecrets,
    headers: Vec<String>,
    query_params: Vec<String>,
}

impl Redactor {
    /// For `bot`, whose environment `env` resolves: its secrets are
    /// [`KnownSecrets::of_bot`]'s.
    pub fn new(bot: &Bot, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut redactor = Self {
            headers: CREDENTIAL_HEADERS.iter().map(|&h| h.to_owned()).collect(),
            secrets: KnownSecrets::of_bot(bot, env),
            ..Self::default()
        };
        for credential in &bot.credentials {
            if let CredentialKind::ApiKey(key) = &credential.kind {
                if let Some(header) = &key.header {
                    redactor.headers.push(header.to_ascii_lowercase());
                }
                if let Some(param) = &key.query_param {
                    redactor.query_params.push(param.clone());
                }
            }
        }
        redactor
    }

    /// `text` with every known secret masked, in any of its spellings:
    /// for output about a run (replay errors, test failures, traces).
    pub fn text(&self, text: &str) -> String {
        self.secrets.mask(text)
    }

    /// A call as errors name it, `METHOD URL`, its URL redacted.
    pub fn line(&self, request: &StubRequest) -> String {
        format!("{} {}", request.method, self.url(&request.url))
    }

    /// A URL with its credential query parameters and secrets redacted.
    pub fn url(&self, url: &str) -> String {
        let Ok(mut parsed) = url::Url::parse(url) else {
            return self.text(url);
        };
        if parsed.query().is_some() && !self.query_params.is_empty() {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(name, value)| {
                    let value = if self.query_params.iter().any(|p| *p == name) {
                        REDACTED.to_owned()
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        self.text(parsed.as_str())
    }

    fn headers(&self, headers: &[(String, String)]) -> BTreeMap<String, String> {
        headers
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name))
            .map(|(name, value)| {
                let value = if self.headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                    REDACTED.to_owned()
                } else {
                    self.text(value)
                };
                (name.to_ascii_lowercase(), value)
            })
            .collect()
    }

    /// A body as a recording keeps it: JSON when it is JSON (token members
    /// redacted), form fields redacted, other text as text.
    fn body(&self, body: &[u8]) -> Value {
        let text = String::from_utf8_lossy(body);
        if let Ok(mut json) = serde_json::from_str::<Value>(&text) {
            redact_members(&mut json);
            let redacted = self.text(&json.to_string());
            return serde_json::from_str(&redacted).unwrap_or(Value::String(redacted));
        }
        if text.contains('=') && !text.contains(' ') && !text.contains('\n') {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
                .map(|(name, value)| {
                    let value = if SECRET_MEMBERS.contains(&name.as_ref()) {
                        REDACTED.to_owned()
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect();
            let form = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            return Value::String(self.text(&form));
        }
        Value::String(self.text(&text))
    }

    /// The exchange as a recording keeps it.
    pub fn exchange(&self, request: &StubRequest, response: &StubResponse) -> Value {
        json!({
            "request": {
                "method": request.method,
                "url": self.url(&request.url),
                "headers": self.headers(&request.headers),
                "body": self.body(&request.body),
            },
            "response": {
                "status": response.status,
                "headers": self.headers(&response.headers),
                "body": self.body(&response.body),
            },
        })
    }
}

fn redact_members(json: &mut Value) {
    match json {
        Value::Object(members) => {
            for (name, value) in members.iter_mut() {
                if SECRET_MEMBERS.contains(&name.as_str()) && value.is_string() {
                    *value = Value::String(REDACTED.to_owned());
                } else {
                    redact_members(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_members),
        _ => {}
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "host",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| h.eq_ignore_ascii_case(name))
}

/// Why a [`Recorder`] cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// The bot's `network.allow` holds an entry that is not a host or range.
    #[error(transparent)]
    Network(#[from] patchbay_engine::transport::InvalidAllowEntry),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] patchbay_engine::transport::Error),
}

/// Answers calls by making them for real, and keeps each exchange,
/// redacted, for [`Recorder::take`].
pub struct Recorder {
    client: Client,
    redactor: Redactor,
    exchanges: Mutex<Vec<(String, Value)>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Calls out with a client whose guard is the bot's `network.allow`.
    pub fn new(bot: &Bot, redactor: Redactor) -> Result<Self, RecorderError> {
        let guard = NetworkGuard::with_allowed(&bot.network.allow)?;
        let client = Client::builder().guard(guard).build()?;
        Ok(Self {
            client,
            redactor,
            exchanges: Mutex::new(Vec::new()),
        })
    }

    /// The exchanges so far, each with a file name (`001-GET-host-path.json`
    /// style, in call order); taken.
    pub fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(
            &mut *self
                .exchanges
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Answer for Recorder {
    fn answer<'a>(
        &'a self,
        request: &'a StubRequest,
    ) -> BoxFuture<'a, Result<StubResponse, String>> {
        Box::pin(async move {
            let url = url::Url::parse(&request.url).map_err(|e| e.to_string())?;
            let method =
                http::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
            let mut outgoing = Request::new(method, url);
            for (name, value) in &request.headers {
                if is_hop_by_hop(name) || name.eq_ignore_ascii_case("accept-encoding") {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::try_from(name.as_str()),
                    http::HeaderValue::try_from(value.as_str()),
                ) {
                    outgoing.headers.append(name, value);
                }
            }
            outgoing.body = request.body.clone();
            outgoing.limits.max_redirects = 0;
            let response = self
                .client
                .send(outgoing)
                .await
                .map_err(|error| format!("the real upstream failed: {error}"))?;
            let answer = StubResponse {
                status: response.status,
                headers: response
                    .headers
                    .iter()
                    .filter(|(name, _)| !is_hop_by_hop(name.as_str()))
                    .map(|(name, value)| {
                        (
                            name.as_str().to_owned(),
                            String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: response.body,
            };
            let mut exchanges = self
                .exchanges
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let name = file_name(
                exchanges.len() + 1,
                &request.method,
                &self.redactor.url(&request.url),
            );
            exchanges.push((name, self.redactor.exchange(request, &answer)));
            Ok(answer)
        })
    }

    fn shown_line(&self, request: &StubRequest) -> String {
        self.redactor.line(request)
    }
}

/// `007-GET-kb.example.com-search.json`, from the redacted URL (a path
/// may hold a secret too).
fn file_name(number: usize, method: &str, url: &str) -> String {
    let place: String = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect();
    format!("{number:03}-{method}-{}.json", place.trim_end_matches('-'))
}

/// A recording that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("recording {file}: {message}")]
pub struct RecordingError {
    /// The file's name.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// Answers from recordings: a call gets the recorded response of the same
/// method and URL (compared after redaction); several recordings of one
/// call answer in order, the last one repeating.
#[derive(Debug, Default)]
pub struct Recordings {
    redactor: Redactor,
    by_call: HashMap<String, Vec<StubResponse>>,
    used: Mutex<HashMap<String, usize>>,
}

impl Recordings {
    /// Reads recordings (file name, text), in the order given.
    pub fn parse(
        files: impl IntoIterator<Item = (String, String)>,
        redactor: Redactor,
    ) -> Result<Self, RecordingError> {
        let mut by_call: HashMap<String, Vec<StubResponse>> = HashMap::new();
        for (file, text) in files {
            let error = |message: String| RecordingError {
                file: file.clone(),
                message,
            };
            let json: Value = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
            let request = &json["request"];
            let (Some(method), Some(url)) = (request["method"].as_str(), request["url"].as_str())
            else {
                return Err(error(
                    "it needs `request.method` and `request.url`".to_owned(),
                ));
            };
            let response = &json["response"];
            let status = response["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .ok_or_else(|| error("it needs `response.status`".to_owned()))?;
            let headers: Vec<(String, String)> = response["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                .collect();
            by_call
                .entry(format!("{method} {url}"))
                .or_default()
                .push(body_response(status, headers, &response["body"]));
        }
        Ok(Self {
            redactor,
            by_call,
            used: Mutex::new(HashMap::new()),
        })
    }

    /// How many calls the recordings answer.
    pub fn len(&self) -> usize {
        self.by_call.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_call.is_empty()
    }

    /// The recorded answer to `request`, if any.
    pub fn find(&self, request: &StubRequest) -> Option<StubResponse> {
        let call = format!("{} {}", request.method, self.redactor.url(&request.url));
        let answers = self.by_call.get(&call)?;
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        let next = used.entry(call).or_insert(0);
        let answer = answers.get(*next).or_else(|| answers.last())?.clone();
        *next += 1;
        Some(answer)
    }
}

impl Answer for Recordings {
    fn answer<'a>(
        &'a self,
        request: &'a StubRequest,
    ) -> BoxFuture<'a, Result<StubResponse, String>> {
        let found = self
            .find(request)
            .ok_or_else(|| "no recording of this call".to_owned());
        Box::pin(std::future::ready(found))
    }

    fn shown_line(&self, request: &StubRequest) -> String {
        self.redactor.line(request)
    }
}

/// A response whose body is given as JSON (an object or array is sent as
/// JSON, a string as it is).
pub(crate) fn body_response(
    status: u16,
    mut headers: Vec<(String, String)>,
    body: &Value,
) -> StubResponse {
    let body = match body {
        Value::Null => Bytes::new(),
        Value::String(text) => Bytes::from(text.clone()),
        other => {
            if !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
            }
            Bytes::from(other.to_string())
        }
    };
    StubResponse {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = r#"name: redacted
env:
  SHOP_KEY: null
  CLIENT_SECRET: null
  BASE: null
credentials:
  - name: shop
    type: api-key
    queryParam: key
    value: "{$env.SHOP_KEY}"
  - name: auth
    type: oauth2
    grant: client-credentials
    clientId: bot
    clientSecret: "{$env.CLIENT_SECRET}"
    tokenUrl: https://auth.example.com/token
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.BASE}/items"
    credential: shop
"#;

    fn redactor() -> Redactor {
        let bot = patchbay_engine::config::load("redacted.yaml", BOT)
            .map_err(|report| report.summary())
            .expect("bot")
            .bot;
        Redactor::new(&bot, &|name| match name {
            "SHOP_KEY" => Some("shop-secret-1".to_owned()),
            "CLIENT_SECRET" => Some("client-secret-2".to_owned()),
            "BASE" => Some("https://shop.example.com".to_owned()),
            _ => None,
        })
    }

    fn request(url: &str, headers: &[(&str, &str)], body: &str) -> StubRequest {
        StubRequest {
            method: "POST".to_owned(),
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn no_secret_survives_in_any_place() {
        let redactor = redactor();
        let request = request(
            "https://shop.example.com/items?key=shop-secret-1&q=mug",
            &[
                ("authorization", "Basic Ym90OmNsaWVudC1zZWNyZXQtMg=="),
                ("x-note", "sent with shop-secret-1"),
            ],
            "grant_type=client_credentials&client_secret=client-secret-2&scope=read",
        );
        let response = StubResponse {
            status: 200,
            headers: vec![("set-cookie".to_owned(), "session=abc".to_owned())],
            body: Bytes::from_static(
                br#"{"access_token":"at-3","refresh_token":"rt-4","token_type":"Bearer","echo":"client-secret-2"}"#,
            ),
        };
        let exchange = redactor.exchange(&request, &response);
        let text = exchange.to_string();
        for secret in [
            "shop-secret-1",
            "client-secret-2",
            "at-3",
            "rt-4",
            "Ym90",
            "abc",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // What is not secret stays readable: the host, the other parameters
        // and members.
        assert_eq!(
            exchange["request"]["url"],
            "https://shop.example.com/items?key=%5Bredacted%5D&q=mug"
        );
        assert_eq!(
            exchange["request"]["body"],
            "grant_type=client_credentials&client_secret=%5Bredacted%5D&scope=read"
        );
        assert_eq!(exchange["response"]["body"]["token_type"], "Bearer");
        assert_eq!(exchange["response"]["body"]["echo"], REDACTED);
    }

    /// Decodes base64 words and percent escapes the way a reader of the
    /// recording could, independently of the redactor.
    fn readable_forms(text: &str) -> String {
        use base64::Engine as _;
        let mut forms = vec![text.to_owned()];
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/')) {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(word) {
                forms.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let decoded: Vec<String> = forms
            .iter()
            .map(|form| {
                url::form_urlencoded::parse(format!("x={}", form.replace('&', "%26")).as_bytes())
                    .map(|(_, value)| value.into_owned())
                    .collect()
            })
            .collect();
        forms.extend(decoded);
        forms.join("\n")
    }

    #[test]
    fn no_secret_survives_in_any_encoding_an_upstream_echoes() {
        const KEY: &str = "shop/key+1&= x";
        const SECRET: &str = "client:secret/2";
        let redactor = Redactor::new(
            &patchbay_engine::config::load("redacted.yaml", BOT)
                .map_err(|report| report.summary())
                .expect("bot")
                .bot,
            &|name| match name {
                "SHOP_KEY" => Some(KEY.to_owned()),
                "CLIENT_SECRET" => Some(SECRET.to_owned()),
                _ => None,
            },
        );
        let form: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("bot:{SECRET}"),
        );
        let url = format!("https://shop.example.com/keys/{form}/items?key={form}&again={form}");
        let request = request(&url, &[("x-forwarded-auth", &format!("Basic {basic}"))], "");
        let echoed = serde_json::json!({
            "url": url,
            "authorization": format!("Basic {basic}"),
            "secret": SECRET,
        });
        let response = StubResponse {
            status: 200,
            headers: vec![
                ("x-echo-authorization".to_owned(), format!("Basic {basic}")),
                ("x-echo-query".to_owned(), format!("key={form}")),
            ],
            body: Bytes::from(echoed.to_string()),
        };
        let exchange = redactor.exchange(&request, &response).to_string();
        let recorded = file_name(1, "GET", &redactor.url(&url));
        // Even mangled into a file name, the key in the path is not kept.
        assert_eq!(
            recorded,
            "001-GET-shop.example.com-keys--redacted--items.json"
        );
        for text in [exchange, recorded, redactor.line(&request)] {
            let forms = readable_forms(&text);
            for secret in [KEY, SECRET] {
                assert!(!forms.contains(secret), "{secret} readable in {text}");
            }
        }
        assert_eq!(
            redactor.line(&request),
            "POST https://shop.example.com/keys/[redacted]/items?key=%5Bredacted%5D&again=[redacted]"
        );
    }

    /// A call the recordings do not answer is named in the stub's list and
    /// in its 501, both printed by `run --replay`: without the API key.
    #[tokio::test]
    async fn an_unanswered_call_is_named_without_its_key() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let recordings = Recordings::parse([], redactor()).expect("no recordings");
        let stub = crate::StubUpstream::start(std::sync::Arc::new(recordings))
            .await
            .expect("stub");
        let mut stream = tokio::net::TcpStream::connect(stub.addr())
            .await
            .expect("connect");
        stream
            .write_all(b"CONNECT shop.example.com:80 HTTP/1.1\r\nHost: shop.example.com:80\r\n\r\n")
            .await
            .expect("connect request");
        let mut established = [0u8; 39];
        stream.read_exact(&mut established).await.expect("tunnel");
        stream
            .write_all(b"GET /items?key=shop%2Dsecret%2D1&q=mug HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("answer");
        let unanswered = stub.take_unanswered();
        assert_eq!(
            unanswered,
            [
                "GET http://shop.example.com/items?key=%5Bredacted%5D&q=mug: no recording of this call"
            ]
        );
        assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
        assert!(
            answer.contains(
                "no answer for GET http://shop.example.com/items?key=%5Bredacted%5D&q=mug"
            ),
            "{answer}"
        );
        for text in [answer, unanswered.join("")] {
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn a_replay_finds_a_call_by_its_redacted_url() {
        let recorded = redactor().exchange(
            &request("https://shop.example.com/items?key=shop-secret-1", &[], ""),
            &StubResponse {
                status: 200,
                headers: Vec::new(),
                body: Bytes::from_static(b"{\"name\":\"Blue mug\"}"),
            },
        );
        let recordings =
            Recordings::parse([("001.json".to_owned(), recorded.to_string())], redactor())
                .expect("recordings");
        let found = recordings
            .find(&request(
                "https://shop.example.com/items?key=shop-secret-1",
                &[],
                "",
            ))
            .expect("the recorded call");
        assert_eq!(&found.body[..], br#"{"name":"Blue mug"}"#);
        assert!(
            recordings
                .find(&request("https://shop.example.com/other", &[], ""))
                .is_none()
        );
    }
}
