//! A real OAuth 2 token endpoint (RFC 6749) and a protected resource
//! (RFC 6750) that count requests and can misbehave on demand.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::servers::{self, Reply, Server, reply};
use base64::Engine as _;
use http_body_util::BodyExt;

/// The client the token endpoint knows; the secret has `:` and non-ASCII.
pub const CLIENT_ID: &str = "bot:client";
pub const CLIENT_SECRET: &str = "s3:cr\u{e9}t/\u{263a}";

/// What the servers saw, and how they should misbehave.
#[derive(Debug, Default)]
pub struct State {
    pub token_requests: AtomicUsize,
    pub resource_requests: AtomicUsize,
    /// Seconds each token lives; 3600 unless set.
    pub lifetime: AtomicU64,
    /// Milliseconds the token endpoint waits before answering.
    pub delay: AtomicU64,
    /// When set, the token endpoint answers this status with this body.
    pub refuse: Mutex<Option<(u16, String)>>,
    /// When set, the resource answers this status whatever the token.
    pub resource_status: AtomicU16,
    /// Tokens the resource treats as revoked.
    pub revoked: Mutex<HashSet<String>>,
    /// How the client authenticated on each token request.
    pub client_auth: Mutex<Vec<&'static str>>,
    /// The form fields of the last token request.
    pub last_form: Mutex<HashMap<String, String>>,
    issued: Mutex<HashMap<String, Instant>>,
    /// Codes handed out by /authorize: code -> (PKCE challenge, redirect).
    codes: Mutex<HashMap<String, (String, String)>>,
    refresh_tokens: Mutex<HashSet<String>>,
    /// The grant of each token request, in order.
    pub grants: Mutex<Vec<String>>,
}

/// The running token endpoint, authorization endpoint and resource.
#[derive(Debug)]
pub struct OAuthServer {
    pub server: Server,
    pub state: Arc<State>,
}

impl OAuthServer {
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        state.lifetime.store(3600, Ordering::SeqCst);
        let shared = Arc::clone(&state);
        let server = servers::http(move |request| {
            let state = Arc::clone(&shared);
            async move {
                match request.uri().path() {
                    "/token" => token(&state, request).await,
                    "/authorize" => authorize(&state, &request),
                    _ => resource(&state, &request),
                }
            }
        })
        .await;
        Self { server, state }
    }

    pub fn auth_url(&self) -> String {
        self.server.url("/authorize").to_string()
    }

    pub fn token_url(&self) -> String {
        self.server.url("/token").to_string()
    }

    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    pub fn resource_requests(&self) -> usize {
        self.state.resource_requests.load(Ordering::SeqCst)
    }
}

fn json(status: u16, body: String) -> Reply {
    reply(status, body)
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    json(
        status,
        format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
    )
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

async fn token(state: &State, request: http::Request<hyper::body::Incoming>) -> Reply {
    let number = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = state.delay.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some((status, body)) = state.refuse.lock().expect("refuse").clone() {
        return json(status, body);
    }
    let header = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    // RFC 6749 section 2.3.1: id and secret are form-encoded, then Basic.
    let (id, secret, how) = match header.as_deref().and_then(|h| h.strip_prefix("Basic ")) {
        Some(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default();
            let (id, secret) = decoded.split_once(':').unwrap_or_default();
            (form_decode(id), form_decode(secret), "header")
        }
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
            "body",
        ),
    };
    state.client_auth.lock().expect("auth").push(how);
    *state.last_form.lock().expect("form") = form.clone();
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    }
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    state.grants.lock().expect("grants").push(grant.clone());
    let mut refresh = String::new();
    match grant.as_str() {
        "client_credentials" => {}
        "refresh_token" => {
            let known = form.get("refresh_token").is_some_and(|token| {
                state
                    .refresh_tokens
                    .lock()
                    .expect("refresh")
                    .contains(token)
            });
            if !known {
                return oauth_error(400, "invalid_grant", "unknown refresh token");
            }
        }
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = state.codes.lock().expect("codes").remove(&code)
            else {
                return oauth_error(400, "invalid_grant", "unknown or used code");
            };
            // RFC 7636 section 4.6: S256 of the verifier is the challenge.
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if computed != challenge || form.get("redirect_uri") != Some(&redirect) {
                return oauth_error(400, "invalid_grant", "PKCE or redirect mismatch");
            }
            refresh = format!("refresh-{number}");
            state
                .refresh_tokens
                .lock()
                .expect("refresh")
                .insert(refresh.clone());
        }
        _ => return oauth_error(400, "unsupported_grant_type", "unknown grant"),
    }
    let access = format!("tok-{number}");
    state
        .issued
        .lock()
        .expect("issued")
        .insert(access.clone(), Instant::now());
    let lifetime = state.lifetime.load(Ordering::SeqCst);
    let refresh = if refresh.is_empty() {
        String::new()
    } else {
        format!(r#","refresh_token":"{refresh}""#)
    };
    json(
        200,
        format!(
            r#"{{"access_token":"{access}","token_type":"bearer","expires_in":{lifetime}{refresh}}}"#
        ),
    )
}

/// Approves every request at once: redirects back with a code bound to the
/// PKCE challenge and the redirect URI.
fn authorize(state: &State, request: &http::Request<hyper::body::Incoming>) -> Reply {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("response_type") != "code"
        || field("client_id") != CLIENT_ID
        || field("code_challenge_method") != "S256"
    {
        return oauth_error(400, "invalid_request", "expected a PKCE code request");
    }
    let code = format!("code-{}", state.codes.lock().expect("codes").len() + 1);
    let redirect = field("redirect_uri");
    state
        .codes
        .lock()
        .expect("codes")
        .insert(code.clone(), (field("code_challenge"), redirect.clone()));
    let mut location = url::Url::parse(&redirect).expect("redirect uri");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"));
    let mut response = reply(302, "");
    response
        .headers_mut()
        .insert("location", location.as_str().parse().expect("header"));
    response
}

fn resource(state: &State, request: &http::Request<hyper::body::Incoming>) -> Reply {
    state.resource_requests.fetch_add(1, Ordering::SeqCst);
    let status = state.resource_status.load(Ordering::SeqCst);
    if status != 0 {
        return json(status, r#"{"error":"forbidden"}"#.to_owned());
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let issued = state.issued.lock().expect("issued").get(&token).copied();
    let lifetime = Duration::from_secs(state.lifetime.load(Ordering::SeqCst));
    let valid = issued.is_some_and(|at| at.elapsed() < lifetime)
        && !state.revoked.lock().expect("revoked").contains(&token);
    if !valid {
        let mut response = json(401, r#"{"error":"invalid_token"}"#.to_owned());
        response.headers_mut().insert(
            "www-authenticate",
            r#"Bearer realm="api", error="invalid_token""#
                .parse()
                .expect("header"),
        );
        return response;
    }
    json(200, format!(r#"{{"token":"{token}"}}"#))
}
