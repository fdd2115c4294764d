//! Routes, request parsing and the JSON every answer is made of.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use patchbay_engine::{
    Attributes, AttributesError, ConversationKey, ConversationState, Engine, EngineError, Start,
    StoreError, StoredTurn, StoredTurnRequest, Turn, UserMessage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Server;
use crate::body::{BodyRate, BodyTooSlow, MinRate};
use crate::conventions::RequestContext;

/// The playground page (`serve --playground`): plain HTML, CSS and JS, no
/// build step, nothing fetched from elsewhere.
const PLAYGROUND: &[u8] = include_bytes!("playground.html");

/// A failed request: its status, a stable `code` and a message.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The methods the route takes, for a 405's `Allow`.
    allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// The error with the `Allow` header a 405 sends.
    fn allow(self, methods: &'static str) -> Self {
        Self {
            allow: Some(methods),
            ..self
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        // What the caller can do next, for the store's failures.
        let advice = match &error {
            EngineError::Store(StoreError::OutcomeUnknown(_)) => {
                " Send the turn again with the same `turnId`: if it was saved you get its answer, otherwise it runs (without a `turnId`, look before sending it again)."
            }
            EngineError::Store(StoreError::Unreadable { .. }) => {
                " It will not heal by itself: send the turn again with \"reset\": true to start the conversation over (its session is dropped; the user's variables stay)."
            }
            _ => "",
        };
        let code = error.code();
        let status = match code {
            "unknown_interaction" | "unknown_integration" => StatusCode::NOT_FOUND,
            "no_dialog" | "chain_limit" | "conversation_too_large" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            "conversation_conflict" | "conversation_corrupt" => StatusCode::CONFLICT,
            "invalid_attributes" => StatusCode::BAD_REQUEST,
            "attributes_too_large" | "message_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "script_runtime" | "store_outcome_unknown" | "store_unavailable" => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Failures of building a bot (its credentials, network list, client,
        // a script that does not compile) do not happen per turn: to a
        // caller they are the server's own.
        let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal"
        } else {
            code
        };
        Self::new(status, code, format!("{error}.{advice}"))
    }
}

/// `POST /v1/bots/{bot}/turns`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TurnRequest {
    /// The state the last turn returned; a new conversation without it.
    #[serde(default)]
    state: Option<Value>,
    /// A conversation the server keeps (instead of `state`).
    #[serde(default)]
    conversation_id: Option<String>,
    /// The user of that conversation, whose "forever" variables the server
    /// keeps across their conversations.
    #[serde(default)]
    user_id: Option<String>,
    /// The caller's id for this turn of that conversation (an idempotency
    /// key): sent again, a turn the server saved answers as it did and
    /// does not run twice.
    #[serde(default)]
    turn_id: Option<String>,
    /// Start that conversation over (e.g. after `conversation_corrupt`).
    #[serde(default)]
    reset: bool,
    /// Where the turn starts; without it, the dialog whose starter matches
    /// the message.
    #[serde(default)]
    interaction: Option<String>,
    #[serde(default)]
    message: String,
    /// The payload of the button or quick reply the user clicked.
    #[serde(default)]
    payload: Option<String>,
    /// What the platform sends with the turn (docs/http-api.md,
    /// "Attributes"): set over the conversation's, member by member.
    #[serde(default)]
    attributes: Option<Value>,
    /// Each call's response in `steps[i].call.response` (docs/http-api.md,
    /// "Responses in the trace"): refused (403 `responses_hidden`) unless
    /// the server runs with `--show-responses`.
    #[serde(default)]
    show_responses: bool,
}

/// `POST /v1/bots/{bot}/integrations/{name}/invoke`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvokeRequest {
    #[serde(default)]
    state: Option<Value>,
}

/// What a request asks for, by path (its segments percent-decoded).
enum Route {
    Playground,
    Bots,
    Health,
    Ready,
    Metrics,
    Turn { bot: String },
    Invoke { bot: String, integration: String },
}

impl Route {
    /// The route's name in metrics (never the bot's or caller's text).
    fn label(&self) -> &'static str {
        match self {
            Self::Playground => "playground",
            Self::Bots => "bots",
            Self::Health => "healthz",
            Self::Ready => "readyz",
            Self::Metrics => "metrics",
            Self::Turn { .. } => "turns",
            Self::Invoke { .. } => "invoke",
        }
    }

    fn method(&self) -> Method {
        match self {
            Self::Playground | Self::Bots | Self::Health | Self::Ready | Self::Metrics => {
                Method::GET
            }
            Self::Turn { .. } | Self::Invoke { .. } => Method::POST,
        }
    }

    /// Whether the route answers `method`: its own, and `HEAD` where it
    /// takes `GET`.
    fn allows(&self, method: &Method) -> bool {
        let own = self.method();
        *method == own || (*method == Method::HEAD && own == Method::GET)
    }

    /// The route's `Allow` header.
    fn allow(&self) -> &'static str {
        if self.method() == Method::GET {
            "GET, HEAD"
        } else {
            "POST"
        }
    }

    /// Health, readiness and metrics: read-only, no conversation data, and
    /// asked by probes and scrapers that name the host by its address.
    fn is_operational(&self) -> bool {
        matches!(self, Self::Health | Self::Ready | Self::Metrics)
    }
}

/// The route of a path, `None` when there is none; an error when a segment
/// does not decode to one UTF-8 segment.
fn route(path: &str) -> Result<Option<Route>, ApiError> {
    let segments = path
        .trim_start_matches('/')
        .split('/')
        .map(decode_segment)
        .collect::<Result<Vec<_>, _>>()?;
    let segments: Vec<&str> = segments.iter().map(AsRef::as_ref).collect();
    Ok(Some(match segments.as_slice() {
        [""] => Route::Playground,
        ["v1", "bots"] => Route::Bots,
        ["healthz"] => Route::Health,
        ["readyz"] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["v1", "bots", bot, "turns"] if !bot.is_empty() => Route::Turn {
            bot: (*bot).to_owned(),
        },
        ["v1", "bots", bot, "integrations", integration, "invoke"]
            if !bot.is_empty() && !integration.is_empty() =>
        {
            Route::Invoke {
                bot: (*bot).to_owned(),
                integration: (*integration).to_owned(),
            }
        }
        _ => return Ok(None),
    }))
}

/// One path segment, percent-decoded. A segment that decodes to `/` would
/// be two segments to anything that decodes the path whole, and one that
/// is not UTF-8 names nothing: both are refused.
fn decode_segment(raw: &str) -> Result<std::borrow::Cow<'_, str>, ApiError> {
    let bad_path = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_path", message);
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad_path("a path segment decodes to invalid UTF-8"))?;
    if decoded.contains('/') {
        return Err(bad_path(
            "a path segment may not encode `/` (%2F); names never contain it",
        ));
    }
    Ok(decoded)
}

impl Server {
    /// Answers one request; never fails (failures are JSON answers).
    pub(crate) async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let context = RequestContext::new(request.method(), request.headers());
        let started = context.started;
        let path = request.uri().path().to_owned();
        let (label, result) = match route(&path) {
            _ if head_bytes(&request) > MAX_HEAD_BYTES => (
                "unknown",
                Err(ApiError::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large",
                    format!("the request's head is larger than {MAX_HEAD_BYTES} bytes"),
                )),
            ),
            Err(error) => ("unknown", Err(error)),
            Ok(None) => (
                "unknown",
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no route for {path}"),
                )),
            ),
            Ok(Some(route)) if !route.allows(request.method()) => (
                route.label(),
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{path} takes {}", route.method()),
                )
                .allow(route.allow())),
            ),
            Ok(Some(route)) if !route.is_operational() && !self.host_allowed(&request) => (
                route.label(),
                Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "host_not_allowed",
                    "this server does not answer for that host (serve --allowed-host)",
                )),
            ),
            Ok(Some(route)) => {
                let label = route.label();
                let dispatched = self.dispatch(route, request);
                match context.trace.clone() {
                    Some(trace) => (label, trace.scope(dispatched).await),
                    None => (label, dispatched.await),
                }
            }
        };
        let mut response = result.unwrap_or_else(|error| {
            if error.status.is_server_error() {
                tracing::warn!(
                    code = error.code,
                    message = %error.message,
                    request_id = %context.request_id,
                    "request failed"
                );
            }
            let mut response = error_response(error.status, error.code, &error.message);
            if let Some(allow) = error.allow {
                response
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            response
        });
        context.finish(crate::conventions::route_pattern(label), &mut response);
        metrics::counter!(
            "patchbay_requests_total",
            "route" => label,
            "status" => response.status().as_str().to_owned()
        )
        .increment(1);
        metrics::histogram!("patchbay_request_duration_seconds", "route" => label)
            .record(started.elapsed().as_secs_f64());
        response
    }

    /// Whether the host the request names (`Host`, or the URI's authority
    /// in HTTP/2) is one of [`crate::ServerOptions::allowed_hosts`]; any is
    /// when none are set, and so is a request naming none (browsers always
    /// name one).
    fn host_allowed(&self, request: &Request<Incoming>) -> bool {
        let allowed = &self.shared.options.allowed_hosts;
        if allowed.is_empty() {
            return true;
        }
        let host = match request.uri().host() {
            Some(host) => Some(host.to_owned()),
            None => request
                .headers()
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<http::uri::Authority>().ok())
                .map(|authority| authority.host().to_owned()),
        };
        match host {
            None => !request.headers().contains_key(header::HOST),
            Some(host) => {
                let host = normalize_host(&host);
                allowed
                    .iter()
                    .any(|allowed| normalize_host(allowed) == host)
            }
        }
    }

    async fn dispatch(
        &self,
        route: Route,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        match route {
            Route::Playground if self.shared.options.playground => {
                let mut response = Response::new(Full::new(Bytes::from_static(PLAYGROUND)));
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                // The page's script and style are inline; it may only call
                // this server.
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    header::HeaderValue::from_static(
                        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                    ),
                );
                Ok(response)
            }
            Route::Playground => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the playground is off (patchbay serve --playground)",
            )),
            Route::Bots => {
                let bots: Vec<Value> = self
                    .bot_names()
                    .iter()
                    .filter_map(|name| self.bot(name))
                    .map(|engine| {
                        let bot = engine.bot();
                        json!({
                            "name": bot.name,
                            "description": bot.description,
                            "interactions": bot.interactions().map(|(_, i)| i.name.as_str()).collect::<Vec<_>>(),
                            "integrations": bot.integrations.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Ok(json_response(StatusCode::OK, &json!({ "bots": bots })))
            }
            Route::Health => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
            Route::Ready => {
                let bots = self.bot_names();
                if self.shared.draining.load(Ordering::SeqCst) {
                    Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "shutting_down",
                        "the server is shutting down",
                    ))
                } else if bots.is_empty() {
                    Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no_bots",
                        "no bot is loaded",
                    ))
                } else if !self.scripts_ready() {
                    Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "scripts_unavailable",
                        "no script worker is available (see patchbay_script_workers_replaced_total)",
                    ))
                } else {
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({"status": "ready", "bots": bots}),
                    ))
                }
            }
            Route::Metrics => match &self.shared.options.metrics {
                Some(metrics) => {
                    let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    Ok(response)
                }
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "metrics are not enabled",
                )),
            },
            Route::Turn { bot } => {
                let engine = self.engine(&bot)?;
                let body: TurnRequest = self.read_json(request).await?;
                let key = stored_conversation(&bot, &body)?;
                let TurnRequest {
                    state: sent,
                    interaction,
                    message,
                    payload,
                    turn_id,
                    reset,
                    attributes,
                    show_responses,
                    ..
                } = body;
                if show_responses && !self.shared.options.show_responses {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "responses_hidden",
                        "this server does not show upstream responses: start it with --show-responses",
                    ));
                }
                let attributes = attributes
                    .map(Attributes::from_json)
                    .transpose()
                    .map_err(attributes_error)?;
                let message = UserMessage {
                    text: message,
                    payload,
                    attributes,
                    show_responses,
                };
                let start = interaction.map_or(Start::Message, Start::Interaction);
                let deadline = self.shared.options.deadline;
                let conversation = match key {
                    Some(key) => Conversation::Stored(key),
                    None => Conversation::Sent(Box::new(state(sent, &engine)?)),
                };
                let run = async {
                    match conversation {
                        Conversation::Stored(key) => {
                            let options = &self.shared.options;
                            let request = StoredTurnRequest {
                                key: &key,
                                start,
                                message,
                                session_ttl: options.session_ttl,
                                turn_id: turn_id.as_deref(),
                                reset,
                            };
                            let stored = engine.run_stored_turn(options.store.as_ref(), request);
                            stored.await.map(|stored| {
                                let outcome = match &stored {
                                    StoredTurn::Ran { turn, .. } => turn_outcome(turn),
                                    StoredTurn::Replayed { .. } => "replayed",
                                };
                                (stored.answer(), Some(stored.version()), outcome)
                            })
                        }
                        Conversation::Sent(state) => {
                            let turn = engine.run_turn(*state, start, message).await;
                            turn.map(|turn| (turn.answer_json(), None, turn_outcome(&turn)))
                        }
                    }
                };
                let turn = tokio::time::timeout(deadline, run)
                    .await
                    .map_err(|_| deadline_exceeded(deadline))?;
                let outcome = match &turn {
                    Ok((_, _, outcome)) => *outcome,
                    Err(_) => "error",
                };
                metrics::counter!(
                    "patchbay_turns_total",
                    "bot" => engine.bot().name.clone(),
                    "outcome" => outcome
                )
                .increment(1);
                let (mut json, version, _) = turn?;
                if let Some(version) = version {
                    json["version"] = json!(version);
                }
                Ok(answer(&engine, &json))
            }
            Route::Invoke { bot, integration } => {
                let engine = self.engine(&bot)?;
                let body: InvokeRequest = self.read_json(request).await?;
                let mut state = state(body.state, &engine)?;
                let deadline = self.shared.options.deadline;
                let invocation =
                    tokio::time::timeout(deadline, engine.invoke(&integration, &mut state))
                        .await
                        .map_err(|_| deadline_exceeded(deadline))??;
                let mut json = invocation.to_json();
                json["state"] = state.to_json();
                Ok(answer(&engine, &json))
            }
        }
    }

    fn engine(&self, bot: &str) -> Result<std::sync::Arc<Engine>, ApiError> {
        self.bot(bot).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_bot",
                format!("no bot named `{bot}` is loaded"),
            )
        })
    }

    /// Reads a JSON body within the size limit and the body rate; an empty
    /// body reads as `{}`. The body must say it is JSON: a browser sends
    /// `application/json` across sites only after a CORS preflight (which
    /// this server does not answer), so a page elsewhere cannot run turns
    /// with a "simple" `text/plain` or form POST.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        request: Request<Incoming>,
    ) -> Result<T, ApiError> {
        let declared_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"));
        if !declared_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        let options = &self.shared.options;
        let rate = BodyRate {
            grace: options.body_timeout,
            min_bytes_per_second: options.min_body_rate,
        };
        let limit = options.max_request_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let body = Limited::new(MinRate::new(request.into_body(), rate), limit)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else if error.is::<BodyTooSlow>() {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        format!(
                            "the request body did not arrive in time: {} ms, plus 1 s per {} bytes",
                            rate.grace.as_millis(),
                            rate.min_bytes_per_second
                        ),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_body",
                        "the request body could not be read",
                    )
                }
            })?
            .to_bytes();
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(body).map_err(|error| {
            let code = if error.is_data() {
                "invalid_request"
            } else {
                "invalid_json"
            };
            ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
        })
    }
}

/// Where a turn's conversation comes from.
enum Conversation {
    /// The request's `state` (a new conversation without one).
    Sent(Box<ConversationState>),
    /// The store, by the request's `conversationId`.
    Stored(ConversationKey),
}

/// A turn's outcome in `patchbay_turns_total`.
fn turn_outcome(turn: &Turn) -> &'static str {
    if turn.success { "success" } else { "failure" }
}

/// The stored conversation a turn names, if it names one.
fn stored_conversation(bot: &str, body: &TurnRequest) -> Result<Option<ConversationKey>, ApiError> {
    let Some(conversation_id) = &body.conversation_id else {
        if body.user_id.is_some() || body.turn_id.is_some() || body.reset {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`userId`, `turnId` and `reset` go with `conversationId`",
            ));
        }
        return Ok(None);
    };
    if body.state.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send `state` (you keep the conversation) or `conversationId` (the server keeps it), not both",
        ));
    }
    if conversation_id.is_empty() || conversation_id.len() > MAX_ID_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("`conversationId` must be 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    for (member, id) in [("userId", &body.user_id), ("turnId", &body.turn_id)] {
        if id.as_ref().is_some_and(|id| id.len() > MAX_ID_BYTES) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("`{member}` must be at most {MAX_ID_BYTES} bytes"),
            ));
        }
    }
    Ok(Some(ConversationKey {
        bot: bot.to_owned(),
        conversation_id: conversation_id.clone(),
        // An empty `userId` names no user, as an absent one does.
        user_id: body.user_id.clone().filter(|user| !user.is_empty()),
    }))
}

/// The longest conversation or user id a turn may name (they become store
/// keys).
const MAX_ID_BYTES: usize = 256;

/// The state a request carries, or a new conversation's.
fn state(json: Option<Value>, engine: &Engine) -> Result<ConversationState, ApiError> {
    match json {
        None => Ok(ConversationState::default()),
        Some(json) => ConversationState::from_json(json, engine.bot()).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_state",
                format!("state: {error}"),
            )
        }),
    }
}

/// A turn's `attributes` that are not what the documentation describes:
/// 400 `invalid_attributes`, or 413 `attributes_too_large`.
fn attributes_error(error: AttributesError) -> ApiError {
    let status = match error.code() {
        "attributes_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code(), error.to_string())
}

fn deadline_exceeded(deadline: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
        format!(
            "the request took longer than the {} ms deadline",
            deadline.as_millis()
        ),
    )
}

/// The largest request head answered: its URI and header fields, each
/// field counted with 32 bytes of overhead as HTTP/2 counts it. hyper's and
/// h2's own limits sit above it (they answer with an empty body), so a head
/// too large for this one gets a JSON answer.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The size of a request's head as [`MAX_HEAD_BYTES`] counts it.
fn head_bytes(request: &Request<Incoming>) -> usize {
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    let uri = request.uri();
    let target = uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    fields
        + target
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
}

/// An error answer: problem details (RFC 9457) that keep the `error`
/// object, `{"code", "message"}`.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = crate::conventions::problem_json(status, code, message);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(crate::conventions::PROBLEM_JSON),
    );
    response
}

/// A host name as compared: lower case, without brackets or a final dot.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A turn's or an invocation's answer, with the bot's secrets masked: an
/// upstream may echo a credential (a Basic header, a key in its URL) into
/// a field, a message or the call's trace.
fn answer(engine: &Engine, json: &Value) -> Response<Full<Bytes>> {
    text_response(StatusCode::OK, engine.secrets().mask(&json.to_string()))
}

fn json_response(status: StatusCode, json: &Value) -> Response<Full<Bytes>> {
    text_response(status, json.to_string())
}

fn text_response(status: StatusCode, json: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
