//! Routes, request parsing and the JSON every answer is made of.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use patchbay_engine::{ConversationKey, ConversationState, Engine, EngineError, Start, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Server;

/// The playground page (`serve --playground`): plain HTML, CSS and JS, no
/// build step, nothing fetched from elsewhere.
const PLAYGROUND: &[u8] = include_bytes!("playground.html");

/// A failed request: its status, a stable `code` and a message.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let (status, code) = match &error {
            EngineError::UnknownInteraction(_) => (StatusCode::NOT_FOUND, "unknown_interaction"),
            EngineError::UnknownIntegration(_) => (StatusCode::NOT_FOUND, "unknown_integration"),
            EngineError::NoDialog => (StatusCode::UNPROCESSABLE_ENTITY, "no_dialog"),
            EngineError::ChainLimit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "chain_limit"),
            EngineError::Script(_) => (StatusCode::SERVICE_UNAVAILABLE, "script_runtime"),
            EngineError::Store(StoreError::Conflict { .. }) => {
                (StatusCode::CONFLICT, "conversation_conflict")
            }
            EngineError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, error.to_string())
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
    /// Where the turn starts; without it, the dialog whose starter matches
    /// the message.
    #[serde(default)]
    interaction: Option<String>,
    #[serde(default)]
    message: String,
}

/// `POST /v1/bots/{bot}/integrations/{name}/invoke`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvokeRequest {
    #[serde(default)]
    state: Option<Value>,
}

/// What a request asks for, by path.
enum Route<'a> {
    Playground,
    Bots,
    Health,
    Ready,
    Metrics,
    Turn { bot: &'a str },
    Invoke { bot: &'a str, integration: &'a str },
}

impl Route<'_> {
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
}

fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match segments.as_slice() {
        [""] => Route::Playground,
        ["v1", "bots"] => Route::Bots,
        ["healthz"] => Route::Health,
        ["readyz"] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["v1", "bots", bot, "turns"] if !bot.is_empty() => Route::Turn { bot },
        ["v1", "bots", bot, "integrations", integration, "invoke"]
            if !bot.is_empty() && !integration.is_empty() =>
        {
            Route::Invoke { bot, integration }
        }
        _ => return None,
    })
}

impl Server {
    /// Answers one request; never fails (failures are JSON answers).
    pub(crate) async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let (label, result) = match route(&path) {
            None => (
                "unknown",
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no route for {path}"),
                )),
            ),
            Some(route) if route.method() != request.method() => (
                route.label(),
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{path} takes {}", route.method()),
                )),
            ),
            Some(route) => (route.label(), self.dispatch(route, request).await),
        };
        let response = result.unwrap_or_else(|error| {
            if error.status.is_server_error() {
                tracing::warn!(code = error.code, message = %error.message, "request failed");
            }
            json_response(
                error.status,
                &json!({"error": {"code": error.code, "message": error.message}}),
            )
        });
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

    async fn dispatch(
        &self,
        route: Route<'_>,
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
                let engine = self.engine(bot)?;
                let body: TurnRequest = self.read_json(request).await?;
                let key = stored_conversation(bot, &body)?;
                let TurnRequest {
                    state: sent,
                    interaction,
                    message,
                    ..
                } = body;
                let start = interaction.map_or(Start::Message, Start::Interaction);
                let deadline = self.shared.options.deadline;
                let conversation = match key {
                    Some(key) => Conversation::Stored(key),
                    None => Conversation::Sent(state(sent, &engine)?),
                };
                let run = async {
                    match conversation {
                        Conversation::Stored(key) => {
                            let options = &self.shared.options;
                            let stored = engine.run_stored_turn(
                                options.store.as_ref(),
                                &key,
                                options.session_ttl,
                                start,
                                &message,
                            );
                            stored
                                .await
                                .map(|stored| (stored.turn, Some(stored.version)))
                        }
                        Conversation::Sent(state) => {
                            let turn = engine.run_turn(state, start, &message).await;
                            turn.map(|turn| (turn, None))
                        }
                    }
                };
                let turn = tokio::time::timeout(deadline, run)
                    .await
                    .map_err(|_| deadline_exceeded(deadline))?;
                let outcome = match &turn {
                    Ok((turn, _)) if turn.success => "success",
                    Ok(_) => "failure",
                    Err(_) => "error",
                };
                metrics::counter!(
                    "patchbay_turns_total",
                    "bot" => engine.bot().name.clone(),
                    "outcome" => outcome
                )
                .increment(1);
                let (turn, version) = turn?;
                let mut json = turn.to_json();
                json["state"] = turn.state.to_json();
                if let Some(version) = version {
                    json["version"] = json!(version);
                }
                json["steps"] = turn.steps.iter().map(|step| step.to_json()).collect();
                Ok(json_response(StatusCode::OK, &json))
            }
            Route::Invoke { bot, integration } => {
                let engine = self.engine(bot)?;
                let body: InvokeRequest = self.read_json(request).await?;
                let mut state = state(body.state, &engine)?;
                let deadline = self.shared.options.deadline;
                let invocation =
                    tokio::time::timeout(deadline, engine.invoke(integration, &mut state))
                        .await
                        .map_err(|_| deadline_exceeded(deadline))??;
                let mut json = invocation.to_json();
                json["state"] = state.to_json();
                Ok(json_response(StatusCode::OK, &json))
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

    /// Reads a JSON body within the size limit; an empty body reads as `{}`.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        request: Request<Incoming>,
    ) -> Result<T, ApiError> {
        let limit = self.shared.options.max_request_bytes;
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
        let body = Limited::new(request.into_body(), limit)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    too_large()
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
    Sent(ConversationState),
    /// The store, by the request's `conversationId`.
    Stored(ConversationKey),
}

/// The stored conversation a turn names, if it names one.
fn stored_conversation(bot: &str, body: &TurnRequest) -> Result<Option<ConversationKey>, ApiError> {
    let Some(conversation_id) = &body.conversation_id else {
        if body.user_id.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`userId` goes with `conversationId`",
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
    let user_id = body.user_id.clone().unwrap_or_default();
    if user_id.len() > MAX_ID_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("`userId` must be at most {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(Some(ConversationKey {
        bot: bot.to_owned(),
        conversation_id: conversation_id.clone(),
        user_id,
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

fn json_response(status: StatusCode, json: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
