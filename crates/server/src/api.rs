//! The routes (docs/http-api.md), their handlers, the JSON every failure
//! answers, and the layers every request passes on its way to them.
//!
//! Outermost first, [`app`] stacks: the access log with the request id
//! (`conventions.rs`), the request metrics (`metrics.rs`), the request
//! head's checks (`head.rs`), then [`router`]. Inside it, the pages and the
//! API answer only the allowed hosts ([`allowed_host`]), and turns and
//! invocations read their whole body first (`body.rs`) and run under the
//! deadline ([`with_deadline`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, OriginalUri, Path, Request, State};
use axum::handler::Handler;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::BodyExt;
use patchbay_engine::{
    Attributes, AttributesError, ConversationKey, ConversationState, Engine, EngineError, Start,
    StoreError, StoredTurn, StoredTurnRequest, Turn, UserMessage,
};
use serde::Deserialize;

use crate::answer::{InvokeAnswer, TurnAnswer};
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder};

use crate::Server;
use crate::body::{BodyRate, BodyRules, read_body};
use crate::conventions::{Failure, PROBLEM_JSON, problem_json};

/// The playground page (`serve --playground`): plain HTML, CSS and JS, no
/// build step, nothing fetched from elsewhere.
const PLAYGROUND: &[u8] = include_bytes!("playground.html");

/// Every request's service: the router inside the layers all requests
/// pass, whatever their route.
pub(crate) type App = BoxCloneSyncService<Request, Response, Infallible>;

/// The server's [`router`] inside, outermost first: the access log and
/// request id, the request metrics, the request head's checks.
pub(crate) fn app(server: Server) -> App {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(from_fn(crate::conventions::access_log))
            .layer(from_fn(crate::metrics::record_request))
            .layer(from_fn(crate::head::check_head))
            .service(router(server)),
    )
}

/// The routes. A `GET` route answers `HEAD` too; a route asked with a
/// method it does not take answers 405 with `Allow`, a path no route has
/// 404. Health, readiness and metrics answer any host; the pages and the
/// API only the allowed ones. A turn or an invocation reads its whole body
/// first (JSON, the size limit, the minimum rate), then runs under the
/// deadline.
pub(crate) fn router(server: Server) -> Router {
    let options = &server.shared.options;
    let body = BodyRules {
        limit: options.max_request_bytes,
        rate: BodyRate {
            grace: options.body_timeout,
            min_bytes_per_second: options.min_body_rate,
        },
    };
    let hosts: Arc<[String]> = options
        .allowed_hosts
        .iter()
        .map(|host| normalize_host(host))
        .collect();
    // A method router's own layers wrap its handler, not its 405: the
    // method is checked first, then the host, the body, the deadline.
    let hosted = |route: MethodRouter<Server>| {
        route.route_layer(from_fn_with_state(Arc::clone(&hosts), allowed_host))
    };
    let runs = |route| {
        let route = with_deadline(route, options.deadline);
        hosted(route.route_layer(from_fn_with_state(body, read_body)))
    };
    let routes = Router::new()
        .route("/healthz", takes_get(health))
        .route("/readyz", takes_get(ready))
        .route("/metrics", takes_get(metrics))
        .route("/", hosted(takes_get(playground)))
        .route("/v1/bots", hosted(takes_get(bots)))
        .route("/v1/bots/{bot}/turns", runs(takes_post(turn)))
        .route(
            "/v1/bots/{bot}/integrations/{name}/invoke",
            runs(takes_post(invoke)),
        )
        .fallback(not_found);
    publish_route(routes).with_state(server)
}

/// `routes` with the route that answered (its [`MatchedPath`]) put on each
/// answer, for the access log and the metrics outside the router; no path
/// on the answer is the fallback's `unknown`.
pub(crate) fn publish_route<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.layer(from_fn(|request: Request, next: Next| async move {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let mut response = next.run(request).await;
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
        response
    }))
}

/// `route` under `deadline`: a request that has not been answered within
/// it answers 504 `deadline_exceeded` (its turn or invocation is dropped).
pub(crate) fn with_deadline<S: Clone + Send + Sync + 'static>(
    route: MethodRouter<S>,
    deadline: Duration,
) -> MethodRouter<S> {
    route.route_layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                deadline_exceeded(deadline)
            }))
            .timeout(deadline),
    )
}

/// A route read with `GET` (and `HEAD`).
fn takes_get<H: Handler<T, Server>, T: 'static>(handler: H) -> MethodRouter<Server> {
    get(handler).fallback(|OriginalUri(uri): OriginalUri| async move {
        ApiError::method_not_allowed(&uri, Method::GET)
    })
}

/// A route sent with `POST`.
fn takes_post<H: Handler<T, Server>, T: 'static>(handler: H) -> MethodRouter<Server> {
    post(handler).fallback(|OriginalUri(uri): OriginalUri| async move {
        ApiError::method_not_allowed(&uri, Method::POST)
    })
}

/// A failed request: its status, a stable `code` and a message.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The methods the route takes, for a 405's `Allow`.
    allow: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// 404 for a path no route has.
    pub(crate) fn not_found(uri: &Uri) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {}", uri.path()),
        )
    }

    /// 405 for a route that takes only `method` (and `HEAD` with `GET`).
    fn method_not_allowed(uri: &Uri, method: Method) -> Self {
        let allow = if method == Method::GET {
            "GET, HEAD"
        } else {
            "POST"
        };
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} takes {method}", uri.path()),
            )
        }
    }
}

/// Problem details (RFC 9457) that keep the `error` object,
/// `{"code", "message"}`; a server error also carries its [`Failure`] for
/// the access log to report.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = problem_json(self.status, self.code, &self.message);
        let mut response =
            (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status.is_server_error() {
            response.extensions_mut().insert(Failure {
                code: self.code,
                message: self.message,
            });
        }
        response
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

async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found(&uri)
}

async fn playground(State(server): State<Server>) -> Result<Response, ApiError> {
    if !server.shared.options.playground {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the playground is off (patchbay serve --playground)",
        ));
    }
    // The page's script and style are inline; it may only call this server.
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ];
    Ok((headers, PLAYGROUND).into_response())
}

async fn bots(State(server): State<Server>) -> Response {
    let bots: Vec<Value> = server
        .bot_names()
        .iter()
        .filter_map(|name| server.bot(name))
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
    json_response(json!({ "bots": bots }).to_string())
}

async fn health() -> Response {
    json_response(json!({"status": "ok"}).to_string())
}

async fn ready(State(server): State<Server>) -> Result<Response, ApiError> {
    let bots = server.bot_names();
    if server.shared.draining.load(Ordering::SeqCst) {
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
    } else if !server.scripts_ready() {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "scripts_unavailable",
            "no script worker is available (see patchbay_script_workers_replaced_total)",
        ))
    } else {
        Ok(json_response(
            json!({"status": "ready", "bots": bots}).to_string(),
        ))
    }
}

async fn metrics(State(server): State<Server>) -> Result<Response, ApiError> {
    match &server.shared.options.metrics {
        Some(metrics) => Ok((
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            metrics.render(),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are not enabled",
        )),
    }
}

async fn turn(
    State(server): State<Server>,
    Path(bot): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let engine = server.engine(&bot)?;
    let body: TurnRequest = json_body(request).await?;
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
    let options = &server.shared.options;
    if show_responses && !options.show_responses {
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
    match key {
        Some(key) => {
            let request = StoredTurnRequest {
                key: &key,
                start,
                message,
                session_ttl: options.session_ttl,
                turn_id: turn_id.as_deref(),
                reset,
            };
            let stored = engine
                .run_stored_turn(options.store.as_ref(), request)
                .await;
            let outcome = match &stored {
                Ok(StoredTurn::Ran { turn, .. }) => turn_outcome(turn),
                Ok(StoredTurn::Replayed { .. }) => "replayed",
                Err(_) => "error",
            };
            count_turn(&engine, outcome);
            answer(&engine, &TurnAnswer::stored(&stored?))
        }
        None => {
            let state = state(sent, &engine)?;
            let turn = engine.run_turn(state, start, message).await;
            count_turn(&engine, turn.as_ref().map_or("error", turn_outcome));
            answer(&engine, &TurnAnswer::new(&turn?))
        }
    }
}

/// Counts a turn in `patchbay_turns_total` by its outcome.
fn count_turn(engine: &Engine, outcome: &'static str) {
    metrics::counter!(
        "patchbay_turns_total",
        "bot" => engine.bot().name.clone(),
        "outcome" => outcome
    )
    .increment(1);
}

async fn invoke(
    State(server): State<Server>,
    Path((bot, integration)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let engine = server.engine(&bot)?;
    let body: InvokeRequest = json_body(request).await?;
    let mut state = state(body.state, &engine)?;
    let invocation = engine.invoke(&integration, &mut state).await?;
    answer(
        &engine,
        &InvokeAnswer {
            call: &invocation,
            state: &state,
        },
    )
}

impl Server {
    fn engine(&self, bot: &str) -> Result<Arc<Engine>, ApiError> {
        self.bot(bot).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_bot",
                format!("no bot named `{bot}` is loaded"),
            )
        })
    }
}

/// The request's body as JSON (the body layer has read it, within its
/// limits); an empty body reads as `{}`.
async fn json_body<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the request body could not be read",
            )
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

fn deadline_exceeded(deadline: Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
        format!(
            "the request took longer than the {} ms deadline",
            deadline.as_millis()
        ),
    )
}

/// The host layer: a request naming a host (`Host`, or the URI's authority
/// in HTTP/2) that is not one of `allowed` (normalized) answers 421
/// `host_not_allowed`; any host passes when none are set, and so does a
/// request naming none (browsers always name one).
pub(crate) async fn allowed_host(
    State(allowed): State<Arc<[String]>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed.is_empty() || host_allowed(&allowed, &request) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this server does not answer for that host (serve --allowed-host)",
        )
        .into_response()
    }
}

fn host_allowed(allowed: &[String], request: &Request) -> bool {
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
        Some(host) => allowed.contains(&normalize_host(&host)),
    }
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
/// `body` as JSON text, the bot's secrets masked.
fn answer(engine: &Engine, body: &impl serde::Serialize) -> Result<Response, ApiError> {
    let text = serde_json::to_string(body).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the answer could not be written: {error}"),
        )
    })?;
    Ok(json_response(engine.secrets().mask(&text)))
}

fn json_response(json: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerOptions;
    use crate::testing::{call, request, send, serve};

    #[tokio::test]
    async fn the_router_answers_routes_head_405_and_404_as_json() {
        let addr = serve(router(Server::new(ServerOptions::default()))).await;

        let health = call(addr, "GET", "/healthz").await;
        assert_eq!(health.status, 200, "{health:?}");
        assert_eq!(health.body, r#"{"status":"ok"}"#);
        assert_eq!(health.header("content-type"), "application/json");
        let head = call(addr, "HEAD", "/healthz").await;
        assert_eq!(head.status, 200, "{head:?}");
        assert_eq!(head.body, "");
        assert_eq!(head.header("content-type"), "application/json");
        assert_eq!(head.header("content-length"), health.body.len().to_string());

        for (method, path, allow) in [
            ("POST", "/healthz", "GET, HEAD"),
            ("DELETE", "/v1/bots", "GET, HEAD"),
            ("GET", "/v1/bots/shop/turns", "POST"),
            ("HEAD", "/v1/bots/shop/integrations/item/invoke", "POST"),
        ] {
            let refused = call(addr, method, path).await;
            assert_eq!(refused.status, 405, "{method} {path}: {refused:?}");
            assert_eq!(refused.header("allow"), allow, "{method} {path}");
            assert_eq!(refused.header("content-type"), PROBLEM_JSON);
            if method != "HEAD" {
                assert_eq!(refused.code(), "method_not_allowed");
            }
        }
        for (method, path, body, status, code) in [
            ("GET", "/nowhere", "", 404, "not_found"),
            ("GET", "/v1/bots/", "", 404, "not_found"),
            ("GET", "/", "", 404, "not_found"),
            ("GET", "/metrics", "", 404, "not_found"),
            ("GET", "/readyz", "", 503, "no_bots"),
            ("POST", "/v1/bots/shop/turns", "{}", 404, "unknown_bot"),
            (
                "POST",
                "/v1/bots/shop/integrations/item/invoke",
                "{}",
                404,
                "unknown_bot",
            ),
        ] {
            let answer = send(addr, request(addr, method, path, body), body).await;
            assert_eq!(
                (answer.status.as_u16(), answer.code()),
                (status, code.to_owned()),
                "{method} {path}: {answer:?}"
            );
        }
        let bots = call(addr, "GET", "/v1/bots").await;
        assert_eq!(
            (bots.status.as_u16(), bots.body.as_str()),
            (200, r#"{"bots":[]}"#)
        );
    }

    #[tokio::test]
    async fn the_deadline_layer_answers_504_when_the_handler_runs_too_long() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }
        let deadline = Duration::from_millis(200);
        let routes = Router::new()
            .route("/slow", with_deadline(get(slow), deadline))
            .route("/fast", with_deadline(get(|| async { "fast" }), deadline));
        let addr = serve(routes).await;
        let started = std::time::Instant::now();
        let late = call(addr, "GET", "/slow").await;
        assert_eq!(late.status, 504, "{late:?}");
        assert_eq!(late.code(), "deadline_exceeded");
        assert!(late.body.contains("200 ms deadline"), "{late:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let fast = call(addr, "GET", "/fast").await;
        assert_eq!((fast.status.as_u16(), fast.body.as_str()), (200, "fast"));
    }

    #[tokio::test]
    async fn the_host_layer_answers_421_for_a_host_not_allowed() {
        let hosts: Arc<[String]> = Arc::from(vec!["localhost".to_owned()]);
        let page = get(|| async { "page" }).route_layer(from_fn_with_state(hosts, allowed_host));
        let routes = Router::new().route("/", page);
        let addr = serve(routes).await;
        for (host, status) in [
            ("evil.example", 421),
            ("localhost.evil.example:80", 421),
            ("localhost:8080", 200),
            ("LOCALHOST.", 200),
        ] {
            let asked = http::Request::get("/").header("host", host);
            let answer = send(addr, asked, "").await;
            assert_eq!(answer.status, status, "{host}: {answer:?}");
            if status == 421 {
                assert_eq!(answer.code(), "host_not_allowed");
            }
        }
    }
}
