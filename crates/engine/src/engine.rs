//! One turn: interactions run in order until the conversation waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use patchbay_config::{
    Bot, HttpSettings, Integration, Interaction, InteractionKind, RateLimit, SystemVariable,
    Template,
};
use patchbay_credentials::{
    KnownSecrets, MemoryTokenCache, Provider, ProviderContext, TokenCache, send_authenticated,
};
use patchbay_rules::{
    PathCache, Place, Position, Step, Values, extract_fields, find_interaction, next_step, render,
    render_url, select_rule, trigger_target,
};
use patchbay_script::{
    ApiData, CustomEvent, Persistence, Script, ScriptInput, ScriptOutput, ScriptRuntime,
};
use patchbay_transport::{
    Client, Limits, MemoryRateLimiter, NetworkGuard, ProxyConfig, Rate, RateLimiter, Request,
    Resolve,
};
use serde_json::{Value, json};
use tracing::Instrument;
use url::Url;

use crate::message::{Message, UserMessage};
use crate::state::ConversationState;

/// The bot's environment, as the host resolves it.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How long a chain of interactions may run without user input.
const CHAIN_LIMIT: usize = 10;

/// The longest user message (and payload) a turn takes: every answer rule
/// reads the whole message, and a chat message is never this long.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What the engine needs besides the bot.
#[derive(Clone)]
pub struct EngineOptions {
    /// The bot's environment, as the host resolves it.
    pub env: Env,
    /// Where OAuth 2 tokens live.
    pub token_cache: Arc<dyn TokenCache>,
    /// The script runtime (shared by engines of one process).
    pub scripts: ScriptRuntime,
    /// Proxies for outbound calls.
    pub proxy: ProxyConfig,
    /// Extra CA certificates (PEM) trusted for calls.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Resolves the hosts of calls; the system resolver by default. The
    /// network guard judges every answer.
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Hands out call slots for the bot's rate limits (share one between
    /// the engines of a process, or a shared store between replicas).
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Where the Conversation Context Service keeps its data (share one
    /// between the engines of a process, or a shared store between
    /// replicas); in this engine's memory by default.
    pub context_store: Arc<dyn crate::ContextStore>,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions").finish_non_exhaustive()
    }
}

impl EngineOptions {
    /// Options with an in-memory token cache and no proxy.
    pub fn new(env: Env, scripts: ScriptRuntime) -> Self {
        Self {
            env,
            token_cache: Arc::new(MemoryTokenCache::default()),
            scripts,
            proxy: ProxyConfig::default(),
            extra_roots_pem: None,
            resolver: None,
            rate_limiter: Arc::new(MemoryRateLimiter::default()),
            context_store: Arc::new(crate::MemoryContextStore::default()),
        }
    }
}

/// Why a turn could not run (failed calls are not errors: they take the
/// failure path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No interaction of that name.
    #[error("the bot has no interaction `{0}`")]
    UnknownInteraction(String),
    /// No integration of that name.
    #[error("the bot has no integration `{0}`")]
    UnknownIntegration(String),
    /// No dialog starter matches the message, and the bot has no fallback
    /// dialog.
    #[error("no dialog starter matches the message and the bot has no fallback dialog")]
    NoDialog,
    /// The user's message (or its payload) is longer than
    /// [`MAX_MESSAGE_BYTES`].
    #[error(
        "the message is {0} bytes; a turn takes at most {MAX_MESSAGE_BYTES} (a chat message, not a document)"
    )]
    MessageTooLarge(usize),
    /// More than [`CHAIN_LIMIT`] interactions ran without user input.
    #[error(
        "more than {CHAIN_LIMIT} interactions ran without user input (a loop?); stopped at `{0}`"
    )]
    ChainLimit(String),
    /// A credential could not be built.
    #[error(transparent)]
    Credential(#[from] patchbay_credentials::CredentialError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Transport(#[from] patchbay_transport::Error),
    /// A script could not be compiled, or ran into a limit.
    #[error(transparent)]
    Script(#[from] patchbay_script::ScriptError),
    /// The bot's `network.allow` holds an entry that is not a host or range.
    #[error(transparent)]
    Network(#[from] patchbay_transport::InvalidAllowEntry),
    /// A stored conversation could not be loaded or saved.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The turn's attributes, set over the conversation's, are too large.
    #[error(transparent)]
    Attributes(#[from] crate::AttributesError),
}

/// `text` cut to at most `bytes` (at a character boundary), ending with
/// `…` when cut.
fn clip(mut text: String, bytes: usize) -> String {
    if text.len() > bytes {
        let mut end = bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl EngineError {
    /// A stable name of the error's kind, for API answers and `run --json`
    /// (one list, so that the two never name one failure two ways).
    pub fn code(&self) -> &'static str {
        use crate::store::StoreError;
        match self {
            Self::UnknownInteraction(_) => "unknown_interaction",
            Self::UnknownIntegration(_) => "unknown_integration",
            Self::NoDialog => "no_dialog",
            Self::MessageTooLarge(_) => "message_too_large",
            Self::ChainLimit(_) => "chain_limit",
            Self::Credential(patchbay_credentials::CredentialError::MissingEnv { .. }) => {
                "missing_env"
            }
            Self::Credential(_) => "invalid_credential",
            Self::Script(patchbay_script::ScriptError::Syntax { .. }) => "script_syntax",
            Self::Script(_) => "script_runtime",
            Self::Network(_) => "invalid_network",
            Self::Transport(_) => "transport",
            Self::Store(StoreError::Conflict { .. }) => "conversation_conflict",
            Self::Store(StoreError::OutcomeUnknown(_)) => "store_outcome_unknown",
            Self::Store(StoreError::Unreadable { .. }) => "conversation_corrupt",
            Self::Store(StoreError::TooLarge { .. }) => "conversation_too_large",
            Self::Store(_) => "store_unavailable",
            Self::Attributes(error) => error.code(),
        }
    }
}

/// Where a turn starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the interaction of that name.
    Interaction(String),
    /// Where the conversation waits ([`ConversationState::waiting_at`]), or
    /// else at the dialog whose starter matches the user's message, or else at
    /// the bot's fallback dialog.
    Message,
}

/// Where a turn goes in: the answer to the question the conversation waits
/// at ([`ConversationState::waiting_at`]) for a message, or else `start`.
/// A name the bot no longer has (it was reloaded since) is dropped: the
/// starters pick, as for a new message. A state saved before questions
/// had rules names the interaction after the question: the turn starts
/// there.
fn resume_where_waiting(bot: &Bot, start: Start, waiting_at: Option<String>) -> Resume {
    let Start::Message = start else {
        return Resume::Start(start);
    };
    match waiting_at.and_then(|name| find_interaction(bot, &name)) {
        Some(at) => match bot.dialogs[at.0].interactions[at.1].kind {
            InteractionKind::Question(_) => Resume::Answer(at),
            _ => Resume::Start(Start::Interaction(
                bot.dialogs[at.0].interactions[at.1].name.clone(),
            )),
        },
        None => Resume::Start(Start::Message),
    }
}

/// How a turn goes in.
enum Resume {
    /// The message answers the question at this position.
    Answer(Position),
    /// The turn starts as [`Start`] says.
    Start(Start),
}

/// What a turn gathers as it walks.
pub(crate) struct Walk {
    pub(crate) messages: Vec<Message>,
    pub(crate) steps: Vec<StepTrace>,
    pub(crate) status: Option<u16>,
    pub(crate) success: bool,
    pub(crate) ran: usize,
    /// The question that took no rule for the answer, and how many answers
    /// in a row it has not taken.
    pub(crate) no_match: Option<(String, u32)>,
    /// The platform actions of the turn's scripts, in order.
    pub(crate) actions: Vec<patchbay_script::Action>,
    /// Long texts allowed or not, quick replies waiting for a message.
    pub(crate) flow: crate::message::TurnFlow,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            steps: Vec::new(),
            status: None,
            // No call made: success, as the spec says of a turn.
            success: true,
            ran: 0,
            no_match: None,
            actions: Vec::new(),
            flow: crate::message::TurnFlow::default(),
        }
    }
}

impl Walk {
    pub(crate) fn record(&mut self, mut trace: StepTrace) {
        let flow = std::mem::take(&mut trace.flow);
        self.flow.finish(&mut trace.messages, flow);
        self.messages.extend(trace.messages.iter().cloned());
        for action in &trace.actions {
            action.clone().add_to(&mut self.actions);
        }
        self.steps.push(trace);
    }
}

/// What follows an interaction that ran.
pub(crate) enum Ran {
    /// It asked a question: the turn ends, waiting for the answer.
    Waits,
    /// The walk goes on.
    Then(Step),
}

/// An interaction's code, by when it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// `preProcess`.
    Pre,
    /// `postProcess`.
    Post,
    /// `processUserResponse`.
    ProcessUserResponse,
}

impl Code {
    /// The key of an interaction's code field (`InteractionKind::scripts`).
    fn of_field(field: &str) -> &'static str {
        match field {
            "preProcess" => Self::Pre.key(),
            "postProcess" => Self::Post.key(),
            _ => Self::ProcessUserResponse.key(),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Pre => "pre",
            Self::Post => "post",
            Self::ProcessUserResponse => "response",
        }
    }

    fn phase(self) -> &'static str {
        match self {
            Self::Pre => "pre-process",
            Self::Post => "post-process",
            Self::ProcessUserResponse => "process-user-response",
        }
    }
}

/// What one interaction did, for the readable trace.
#[derive(Clone, Debug, Default)]
pub struct StepTrace {
    /// The interaction.
    pub interaction: String,
    /// The call it made, if any.
    pub call: Option<Invocation>,
    /// The rule that matched, by name or position.
    pub rule: Option<String>,
    /// Messages it sent.
    pub messages: Vec<Message>,
    /// Script errors (the turn goes on; a script that threw keeps what it
    /// did before, one stopped by a limit did nothing).
    pub script_errors: Vec<String>,
    /// `printDebugMessage` output of its scripts, in order, secrets masked;
    /// a last line says how many were past the per-run bound.
    pub debug: Vec<String>,
    /// `logCustomEvent` calls of its scripts, in order, secrets masked.
    pub events: Vec<CustomEvent>,
    /// The platform actions its scripts asked for, in order (one Transfer
    /// Bot Context at most).
    pub actions: Vec<patchbay_script::Action>,
    /// What its scripts asked of its messages (delay, quick replies, long
    /// texts), until the step is recorded.
    pub(crate) flow: crate::message::StepFlow,
}

/// One integration call.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// The integration.
    pub integration: String,
    /// `METHOD URL`, the query shown as `?[redacted]`.
    pub request_line: String,
    /// The status, `None` after a transport failure.
    pub status: Option<u16>,
    /// Status 200 or 201.
    pub success: bool,
    /// Why no response came back, when none did.
    pub failure: Option<CallFailure>,
    /// How long it took.
    pub elapsed: Duration,
    /// The fields extracted.
    pub fields: Vec<(String, patchbay_rules::FieldValue)>,
    /// The response as received and as the fields read it, when the turn
    /// asked for it ([`UserMessage::show_responses`]) and one came back.
    pub response: Option<ResponseView>,
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
    fn new(response: &patchbay_transport::Response, secrets: &KnownSecrets) -> Self {
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

    /// The view as JSON: `status`, `headers` (an object), `body`,
    /// `bodyBytes`, `document` (text or null).
    pub fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        json!({
            "status": self.status,
            "headers": headers,
            "body": self.body,
            "bodyBytes": self.body_bytes,
            "document": self.document,
        })
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

/// Why a call got no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFailure {
    /// A stable name: `render`, `credential`, `rate-limited`, or the
    /// transport's kind
    /// (`timeout`, `connect`, `dns`, `tls`, `blocked`, `too-large`,
    /// `too-many-redirects`, `protocol`, `invalid-request`).
    pub kind: &'static str,
    /// What happened, for people (never a secret).
    pub message: String,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CallFailure {
    fn render(message: impl Into<String>) -> Self {
        Self {
            kind: "render",
            message: message.into(),
        }
    }
}

impl From<patchbay_credentials::SendError> for CallFailure {
    fn from(error: patchbay_credentials::SendError) -> Self {
        let kind = match &error {
            patchbay_credentials::SendError::Transport(transport) => transport.kind(),
            _ => "credential",
        };
        Self {
            kind,
            message: error.to_string(),
        }
    }
}

impl From<patchbay_transport::Error> for CallFailure {
    fn from(error: patchbay_transport::Error) -> Self {
        Self {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl Invocation {
    /// The call as JSON: `integration`, `request`, `status`, `success`,
    /// `failure` (`{kind, message}` or null), `elapsedMs`, `fields`; and
    /// `response` ([`ResponseView::to_json`]) when the turn kept it.
    pub fn to_json(&self) -> Value {
        let mut json = json!({
            "integration": self.integration,
            "request": self.request_line,
            "status": self.status,
            "success": self.success,
            "failure": self.failure.as_ref().map(|failure| json!({
                "kind": failure.kind,
                "message": failure.message,
            })),
            "elapsedMs": duration_ms(self.elapsed),
            "fields": fields_json(self.fields.iter().map(|(key, value)| (key.as_str(), value))),
        });
        if let (Some(response), Some(members)) = (&self.response, json.as_object_mut()) {
            members.insert("response".to_owned(), response.to_json());
        }
        json
    }
}

impl StepTrace {
    /// The step as JSON: `interaction`, `call` (see [`Invocation::to_json`]),
    /// `rule`, `messages`, `scriptErrors`, `debug` (strings), `events`
    /// (`{userMessage, eventName, eventDetail}`, the product's names).
    pub fn to_json(&self) -> Value {
        json!({
            "interaction": self.interaction,
            "call": self.call.as_ref().map(Invocation::to_json),
            "rule": self.rule,
            "messages": self.messages,
            "scriptErrors": self.script_errors,
            "debug": self.debug,
            "events": self.events.iter().map(|event| json!({
                "userMessage": event.user_message,
                "eventName": event.name,
                "eventDetail": event.detail,
            })).collect::<Vec<_>>(),
            "actions": crate::platform::actions_json(&self.actions),
        })
    }
}

fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Fields as a JSON object: `"RDVN.key"` to a string or an array.
pub(crate) fn fields_json<'a>(
    fields: impl Iterator<Item = (&'a str, &'a patchbay_rules::FieldValue)>,
) -> Value {
    let fields: serde_json::Map<String, Value> = fields
        .map(|(key, value)| {
            let value = match value {
                patchbay_rules::FieldValue::One(one) => json!(one),
                patchbay_rules::FieldValue::Many(many) => json!(many),
            };
            (key.to_owned(), value)
        })
        .collect();
    Value::Object(fields)
}

/// The outcome of a turn.
#[derive(Clone, Debug)]
pub struct Turn {
    /// The state to pass to the next turn.
    pub state: ConversationState,
    /// Messages the bot sent, in order.
    pub messages: Vec<Message>,
    /// Where the conversation goes: an interaction name, `end`,
    /// `close-dialog` or `close-conversation`.
    pub next: String,
    /// The last call's status.
    pub status: Option<u16>,
    /// Whether the last call succeeded (true when no call was made).
    pub success: bool,
    /// What each interaction did.
    pub steps: Vec<StepTrace>,
    /// Bot variables as they were at the end of the turn (this turn's
    /// request-scoped ones included; fields are in `state.fields`).
    pub variables: HashMap<String, String>,
    /// The platform actions the turn's scripts asked for, in order: one
    /// Transfer Bot Context at most (its fields set by the latest calls),
    /// and escalation events.
    pub actions: Vec<patchbay_script::Action>,
}

impl Turn {
    /// The text of each message, in order ([`Message::text`]).
    pub fn texts(&self) -> Vec<&str> {
        self.messages.iter().map(Message::text).collect()
    }

    /// The JSON of spec section 5: `status`, `success`, `variables`,
    /// `fields`, `messages`, `next`.
    pub fn to_json(&self) -> Value {
        let fields = fields_json(self.state.fields.iter());
        let mut variables: Vec<_> = self.variables.iter().collect();
        variables.sort();
        let variables: serde_json::Map<String, Value> = variables
            .into_iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        json!({
            "status": self.status,
            "success": self.success,
            "variables": variables,
            "fields": fields,
            "messages": self.messages,
            "next": self.next,
            "actions": crate::platform::actions_json(&self.actions),
        })
    }
}

/// A bot, ready to run turns: its credentials built, its scripts compiled.
pub struct Engine {
    pub(crate) bot: Arc<Bot>,
    client: Client,
    providers: HashMap<String, Arc<dyn Provider>>,
    scripts: ScriptRuntime,
    compiled: HashMap<String, Script>,
    env: Env,
    /// The bot's environment as scripts see it (the variables it declares),
    /// resolved once.
    script_env: HashMap<String, String>,
    paths: Mutex<PathCache>,
    /// The bot's failure message, parsed once.
    failure_message: Template,
    /// The bot's secrets, to mask in what a host shows of a turn.
    secrets: Arc<KnownSecrets>,
    rate_limiter: Arc<dyn RateLimiter>,
    /// The Conversation Context Service's store.
    pub(crate) context_store: Arc<dyn crate::ContextStore>,
    /// The scripts (by key) whose source names a context function: the
    /// store is loaded for those only.
    pub(crate) context_scripts: std::collections::HashSet<String>,
    /// Rate limits by integration name, then by host.
    integration_rates: HashMap<String, RateSlot>,
    host_rates: HashMap<String, RateSlot>,
}

/// A rate limit as the engine applies it: its limiter key, made once.
#[derive(Debug)]
struct RateSlot {
    key: String,
    rate: Rate,
    /// `integration NAME` or `host NAME`, for messages.
    what: String,
}

impl RateSlot {
    fn new(key: String, what: String, limit: &RateLimit) -> Option<Self> {
        let rate = Rate::new(
            limit.calls,
            Duration::from_millis(limit.period_ms),
            limit.burst,
        )?;
        Some(Self { key, rate, what })
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bot", &self.bot.name)
            .finish_non_exhaustive()
    }
}

/// A script's key: `i:NAME` for transforms, `pre:NAME`, `post:NAME` and
/// `response:NAME` for interaction code.
fn script_key(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

impl Engine {
    /// Prepares a bot: the HTTP client (its guard from `network.allow`),
    /// every credential's provider, every script compiled.
    pub async fn new(bot: Bot, options: EngineOptions) -> Result<Self, EngineError> {
        let mut builder = Client::builder()
            .guard(NetworkGuard::with_allowed(&bot.network.allow)?)
            .proxy(options.proxy.clone());
        if let Some(pem) = &options.extra_roots_pem {
            builder = builder.add_root_certificates_pem(pem)?;
        }
        if let Some(resolver) = &options.resolver {
            builder = builder.resolver(Arc::clone(resolver));
        }
        let client = builder.build()?;
        let context = ProviderContext::new(client.clone(), Arc::clone(&options.token_cache));
        let lookup = |name: &str| (options.env)(name);
        let mut providers = HashMap::new();
        for credential in &bot.credentials {
            let provider = patchbay_credentials::build(credential, &lookup, &context)?;
            providers.insert(credential.name.clone(), provider);
        }
        // One realm per bot load: its scripts get contexts of their own.
        let realm = options.scripts.realm(&bot.name);
        let mut compiled = HashMap::new();
        let mut context_scripts = std::collections::HashSet::new();
        for integration in &bot.integrations {
            if let Some(code) = &integration.transform_script {
                let owner = format!("integration {}, transformScript", integration.name);
                let script = options.scripts.compile(&realm, &owner, code).await?;
                if crate::context::uses_context_store(code) {
                    context_scripts.insert(script_key("i", &integration.name));
                }
                compiled.insert(script_key("i", &integration.name), script);
            }
        }
        for (_, interaction) in bot.interactions() {
            for (field, source) in interaction.kind.scripts() {
                let owner = format!("interaction {}, {field}", interaction.name);
                let script = options.scripts.compile(&realm, &owner, source).await?;
                if crate::context::uses_context_store(source) {
                    context_scripts.insert(script_key(Code::of_field(field), &interaction.name));
                }
                compiled.insert(script_key(Code::of_field(field), &interaction.name), script);
            }
        }
        let script_env = bot
            .env
            .keys()
            .filter_map(|name| (options.env)(name).map(|value| (name.clone(), value)))
            .collect();
        let integration_rates = bot
            .integrations
            .iter()
            .filter_map(|integration| {
                let limit = integration.rate_limit.as_ref()?;
                let key = format!("integration:{}/{}", bot.name, integration.name);
                let what = format!("integration `{}`", integration.name);
                Some((integration.name.clone(), RateSlot::new(key, what, limit)?))
            })
            .collect();
        let host_rates = bot
            .network
            .rate_limits
            .iter()
            .filter_map(|(host, limit)| {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                let slot = RateSlot::new(format!("host:{host}"), format!("host `{host}`"), limit)?;
                Some((host, slot))
            })
            .collect();
        let secrets = Arc::new(KnownSecrets::of_bot(&bot, &|name: &str| {
            (options.env)(name)
        }));
        Ok(Self {
            secrets,
            rate_limiter: options.rate_limiter,
            context_store: options.context_store,
            context_scripts,
            integration_rates,
            host_rates,
            failure_message: Template::parse(bot.failure_message()),
            script_env,
            bot: Arc::new(bot),
            client,
            providers,
            scripts: options.scripts,
            compiled,
            env: options.env,
            paths: Mutex::new(PathCache::default()),
        })
    }

    /// The bot this engine runs.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The bot's secrets ([`KnownSecrets::of_bot`]), to mask in what a host
    /// shows of a turn (its answer, its logs): an upstream may echo a
    /// credential into a field or a message.
    pub fn secrets(&self) -> &KnownSecrets {
        &self.secrets
    }

    /// Whether a script worker is there to run this bot's scripts (false
    /// only while every worker is stuck and none could be started in its
    /// place; see `ScriptRuntime::is_ready`).
    pub fn scripts_ready(&self) -> bool {
        self.scripts.is_ready()
    }

    /// Runs one turn from `start`, with the user's `message` (text, or a
    /// [`UserMessage`] with a clicked button's payload).
    pub async fn run_turn(
        &self,
        state: ConversationState,
        start: Start,
        message: impl Into<UserMessage>,
    ) -> Result<Turn, EngineError> {
        let span = tracing::info_span!("turn", bot = %self.bot.name, conversation = %state.conversation_id);
        self.run_turn_inner(state, start, &message.into())
            .instrument(span)
            .await
    }

    async fn run_turn_inner(
        &self,
        mut state: ConversationState,
        start: Start,
        input: &UserMessage,
    ) -> Result<Turn, EngineError> {
        let bot = &*self.bot;
        let longest = input
            .text
            .len()
            .max(input.payload.as_ref().map_or(0, String::len));
        if longest > MAX_MESSAGE_BYTES {
            return Err(EngineError::MessageTooLarge(longest));
        }
        state.start_from_bot_variables(bot);
        if let Some(attributes) = &input.attributes {
            state.attributes.merge(attributes)?;
        }
        state.dialog_starter = None;
        let waiting = state.waiting_at.take();
        // The dialog the conversation waits in is the one the turn is in.
        state.dialog = waiting
            .as_deref()
            .and_then(|name| find_interaction(bot, name))
            .map(|(dialog, _)| bot.dialogs[dialog].name.clone());
        let mut walk = Walk {
            flow: crate::message::TurnFlow::new(&state, Arc::clone(&self.secrets)),
            ..Walk::default()
        };
        let mut step = match resume_where_waiting(bot, start, waiting) {
            Resume::Answer(question) => self.answer(question, &mut state, input, &mut walk).await,
            Resume::Start(Start::Interaction(name)) => Step::Interaction(
                find_interaction(bot, &name).ok_or(EngineError::UnknownInteraction(name))?,
            ),
            Resume::Start(Start::Message) => {
                let matched = trigger_target(bot, &input.text);
                state.dialog_starter = matched.map(|at| bot.dialogs[at.0].name.clone());
                Step::Interaction(
                    matched
                        .or_else(|| patchbay_rules::fallback_start(bot))
                        .ok_or(EngineError::NoDialog)?,
                )
            }
        };
        let next = loop {
            let position = match step {
                Step::Interaction(position) => position,
                Step::CloseConversation => {
                    state.return_to.clear();
                    self.leave_dialog(&mut state, None);
                    break "close-conversation".to_owned();
                }
                Step::End | Step::CloseDialog => {
                    // The dialog is done: back to a question a context
                    // switch or the fallback dialog left, unless the bot
                    // said not to (the product's `skipPreviousDialog`).
                    let skip = state
                        .variables
                        .get("skipPreviousDialog")
                        .is_some_and(|skip| skip.value.trim().eq_ignore_ascii_case("true"));
                    if skip {
                        state.return_to.clear();
                    }
                    // A question the bot no longer has (it was reloaded)
                    // is skipped for the one under it.
                    if let Some(question) = std::iter::from_fn(|| state.return_to.pop())
                        .find_map(|name| find_interaction(bot, &name))
                    {
                        step = Step::Interaction(question);
                        continue;
                    }
                    self.leave_dialog(&mut state, None);
                    break if step == Step::End {
                        "end"
                    } else {
                        "close-dialog"
                    }
                    .to_owned();
                }
            };
            walk.ran += 1;
            let interaction = &bot.dialogs[position.0].interactions[position.1];
            if walk.ran > CHAIN_LIMIT {
                return Err(EngineError::ChainLimit(interaction.name.clone()));
            }
            self.leave_dialog(&mut state, Some(position.0));
            match self
                .run_interaction(position, &mut state, input, &mut walk)
                .await?
            {
                Ran::Waits => break interaction.name.clone(),
                Ran::Then(then) => step = then,
            }
        };
        // A turn ends waiting only at a question: its answer is the next
        // message.
        state.waiting_at = find_interaction(bot, &next).map(|_| next.clone());
        state.no_match_count = match &walk.no_match {
            Some((question, count)) if state.waiting_at.as_ref() == Some(question) => *count,
            _ => 0,
        };
        walk.flow.end(&mut walk.steps);
        self.end_left_dialogs(&mut state);
        let variables = state.values();
        state.end_turn();
        state.dialog = None;
        state.dialog_starter = None;
        Ok(Turn {
            state,
            messages: walk.messages,
            actions: walk.actions,
            next,
            status: walk.status,
            success: walk.success,
            steps: walk.steps,
            variables,
        })
    }

    /// Runs one interaction and says what follows it.
    async fn run_interaction(
        &self,
        position: Position,
        state: &mut ConversationState,
        input: &UserMessage,
        walk: &mut Walk,
    ) -> Result<Ran, EngineError> {
        let bot = &*self.bot;
        let interaction = &bot.dialogs[position.0].interactions[position.1];
        let span = tracing::debug_span!("interaction", name = %interaction.name);
        let mut trace = StepTrace {
            interaction: interaction.name.clone(),
            ..StepTrace::default()
        };
        let mut action = interaction.next.clone();
        let last = LastCall {
            status: walk.status,
            success: walk.success,
        };
        let pre = self
            .interaction_code(Code::Pre, interaction, state, input, last, &mut trace)
            .instrument(span.clone())
            .await;
        // `setMessageDelay` in preProcess: for the interaction's own
        // messages too.
        let own_delay = trace.flow.delay_ms;
        match &interaction.kind {
            InteractionKind::Text(text) => {
                let text = self.text(&text.text, state, input);
                trace.flow.own_message = Some(trace.messages.len());
                trace.messages.push(Message::Text(text).delayed(own_delay));
            }
            InteractionKind::Question(question) => {
                let message = self.question_message(question, state, input);
                trace.flow.own_message = Some(trace.messages.len());
                trace.messages.push(message.delayed(own_delay));
            }
            InteractionKind::Integration(call) => {
                let integration = bot
                    .integrations
                    .iter()
                    .find(|integration| integration.name == call.integration)
                    .ok_or_else(|| EngineError::UnknownIntegration(call.integration.clone()))?;
                let invocation = self
                    .call(integration, state, input, &mut trace)
                    .instrument(span.clone())
                    .await;
                walk.status = invocation.status;
                walk.success = invocation.success;
                trace.call = Some(invocation);
            }
        }
        let last = LastCall {
            status: walk.status,
            success: walk.success,
        };
        let post = self
            .interaction_code(Code::Post, interaction, state, input, last, &mut trace)
            .instrument(span)
            .await;
        if let InteractionKind::Integration(call) = &interaction.kind {
            let rules_started = Instant::now();
            let success = walk.success;
            let chosen = self.with_values(state, input, |values| {
                select_rule(&call.rules, success, values)
            });
            observe_phase("rules", rules_started);
            match chosen {
                Some(index) => {
                    let rule = &call.rules[index];
                    trace.rule = Some(
                        rule.name
                            .clone()
                            .unwrap_or_else(|| format!("rule {}", index + 1)),
                    );
                    for text in &rule.messages {
                        let text = self.text(text, state, input);
                        trace.messages.push(Message::Text(text).delayed(own_delay));
                    }
                    if let Some(next) = &rule.next {
                        action = next.clone();
                    }
                }
                None if !success => {
                    let text = self.text(&self.failure_message, state, input);
                    trace.messages.push(Message::Text(text).delayed(own_delay));
                }
                None => {}
            }
        }
        let waits = matches!(interaction.kind, InteractionKind::Question(_));
        let trigger = post.or(pre);
        walk.record(trace);
        Ok(
            match trigger
                .as_deref()
                .and_then(|text| trigger_target(bot, text))
            {
                Some(target) => Ran::Then(Step::Interaction(target)),
                None if waits => Ran::Waits,
                None => Ran::Then(next_step(bot, position, &action)),
            },
        )
    }

    /// Invokes one integration on `state`, outside any dialog.
    pub async fn invoke(
        &self,
        integration: &str,
        state: &mut ConversationState,
    ) -> Result<Invocation, EngineError> {
        let integration = self
            .bot
            .integrations
            .iter()
            .find(|candidate| candidate.name == integration)
            .ok_or_else(|| EngineError::UnknownIntegration(integration.to_owned()))?;
        state.start_from_bot_variables(&self.bot);
        let mut trace = StepTrace::default();
        Ok(self
            .call(integration, state, &UserMessage::default(), &mut trace)
            .await)
    }

    /// Bot variables as templates and scripts see them: the state's, then
    /// the fields as `RDVN.key`, `RDVN.key.count` and `RDVN.key[N]`.
    fn variables(&self, state: &ConversationState) -> HashMap<String, String> {
        let mut values = state.values();
        values.extend(state.fields.as_variables());
        values
    }

    /// Calls `f` with what templates and conditions read in `state`.
    pub(crate) fn with_values<R>(
        &self,
        state: &ConversationState,
        message: &UserMessage,
        f: impl FnOnce(&Values<'_>) -> R,
    ) -> R {
        let variables = self.variables(state);
        let slots = state.current_slots();
        let env = |name: &str| (self.env)(name);
        let system = |system: SystemVariable| Some(system_value(&self.bot, state, message, system));
        f(&Values {
            variables: &variables,
            slots,
            env: &env,
            system: &system,
            fields: &state.fields,
        })
    }

    pub(crate) fn text(
        &self,
        template: &Template,
        state: &ConversationState,
        message: &UserMessage,
    ) -> String {
        self.with_values(state, message, |values| {
            render(template, values, Place::Text).unwrap_or_default()
        })
    }

    /// Runs an interaction's code of one kind, if it has any, applies what
    /// it did, and returns the trigger it set.
    pub(crate) async fn interaction_code(
        &self,
        code: Code,
        interaction: &Interaction,
        state: &mut ConversationState,
        message: &UserMessage,
        last: LastCall,
        trace: &mut StepTrace,
    ) -> Option<String> {
        let key = script_key(code.key(), &interaction.name);
        if !self.compiled.contains_key(&key) {
            return None;
        }
        let started = Instant::now();
        let output = self.script(&key, state, message, None, last, trace).await;
        observe_phase(code.phase(), started);
        let output = output?;
        apply(&self.bot, state, &output, trace);
        output.trigger
    }

    /// Runs a compiled script, if the bot has one under `key`. What it did
    /// takes effect even when it then threw, as in the product (its error
    /// is recorded in the trace); a run stopped by a limit did nothing.
    async fn script(
        &self,
        key: &str,
        state: &ConversationState,
        message: &UserMessage,
        api: Option<ApiData>,
        last: LastCall,
        trace: &mut StepTrace,
    ) -> Option<ScriptOutput> {
        let script = self.compiled.get(key)?;
        let context = self
            .context_snapshot(key, script.owner(), state, trace)
            .await;
        let input = ScriptInput {
            variables: self.script_variables(state),
            env: self.script_env.clone(),
            user_message: message.text.clone(),
            conversation_id: state.conversation_id.clone(),
            chat_bot_id: self.bot.name.clone(),
            user_platform_id: state.platform_user_id.clone(),
            quick_reply_payload: message.payload.clone().unwrap_or_default(),
            api_status: last.status,
            api_success: last.success,
            api,
            slots: state.current_slots().clone(),
            platform: state.attributes.platform(),
            dialog_starter_intent: state.dialog_starter.clone(),
            now_ms: Some(now_ms()),
            context,
        };
        let run = self.scripts.run_keeping_effects(script, input).await;
        self.write_context(script.owner(), state, &run.output.context, trace)
            .await;
        if let Some(error) = &run.error {
            tracing::warn!(%error, "script failed");
            trace.script_errors.push(error.to_string());
        }
        self.trace_debug_output(&run.output, trace);
        Some(run.output)
    }

    /// Bot variables as scripts see them: as templates and conditions do,
    /// which is custom data fields under their integration's name too
    /// (`getBotVariable("name.key.count")`, as the product documents),
    /// resolved as `{name.key}` is in a template.
    fn script_variables(&self, state: &ConversationState) -> HashMap<String, String> {
        let mut values = self.variables(state);
        for integration in &self.bot.integrations {
            if integration.name == integration.response_data_variable {
                continue;
            }
            for (key, _) in &integration.custom_data_fields {
                let Some(value) = state.fields.get(&integration.name, key) else {
                    continue;
                };
                values.extend(value.as_variables(&format!("{}.{key}", integration.name)));
            }
        }
        values
    }

    /// Adds a run's `printDebugMessage` and `logCustomEvent` output to the
    /// step's trace and to the log (debug level), with the bot's secrets
    /// masked: a script may print a token it was given.
    fn trace_debug_output(&self, output: &ScriptOutput, trace: &mut StepTrace) {
        // Masked, then cut to size: cut first, a secret split by the cut
        // would no longer be recognised.
        let shown = |text: &str| clip(self.secrets.mask(text), patchbay_script::DEBUG_TEXT_BYTES);
        for message in &output.debug {
            let message = shown(message);
            tracing::debug!(text = %message, "printDebugMessage");
            trace.debug.push(message);
        }
        if output.debug_dropped > 0 {
            trace.debug.push(format!(
                "({} more debug messages not kept: at most {} a script run)",
                output.debug_dropped,
                patchbay_script::DEBUG_MESSAGES_PER_RUN
            ));
        }
        for event in &output.events {
            let event = CustomEvent {
                user_message: shown(&event.user_message),
                name: shown(&event.name),
                detail: shown(&event.detail),
            };
            tracing::debug!(
                event_name = %event.name,
                event_detail = %event.detail,
                user_message = %event.user_message,
                "logCustomEvent"
            );
            trace.events.push(event);
        }
        if output.events_dropped > 0 {
            trace.debug.push(format!(
                "({} more custom events not kept: at most {} a script run)",
                output.events_dropped,
                patchbay_script::EVENTS_PER_RUN
            ));
        }
    }

    /// The call of spec section 3, steps 1 to 6.
    async fn call(
        &self,
        integration: &Integration,
        state: &mut ConversationState,
        message: &UserMessage,
        trace: &mut StepTrace,
    ) -> Invocation {
        let span = tracing::info_span!("integration", bot = %self.bot.name, integration = %integration.name);
        self.call_inner(integration, state, message, trace)
            .instrument(span)
            .await
    }

    async fn call_inner(
        &self,
        integration: &Integration,
        state: &mut ConversationState,
        message: &UserMessage,
        trace: &mut StepTrace,
    ) -> Invocation {
        let started = Instant::now();
        let rdvn = &integration.response_data_variable;
        let mut invocation = Invocation {
            integration: integration.name.clone(),
            request_line: format!(
                "{} {}",
                integration.method.as_str(),
                integration.url.as_str()
            ),
            ..Invocation::default()
        };
        let outcome = self
            .send(integration, state, message, &mut invocation)
            .await;
        invocation.elapsed = started.elapsed();
        observe_phase("request", started);
        metrics::histogram!(
            "patchbay_integration_duration_seconds",
            "bot" => self.bot.name.clone(),
            "integration" => integration.name.clone()
        )
        .record(invocation.elapsed.as_secs_f64());
        let status_variable = format!("api_{rdvn}Status");
        let response = match outcome {
            Ok(response) => response,
            Err(failure) => {
                tracing::info!(kind = failure.kind, %failure, "call failed");
                count_upstream(integration, "none", failure.kind);
                invocation.failure = Some(failure);
                state.set(&status_variable, "", Persistence::Session);
                return invocation;
            }
        };
        invocation.status = Some(response.status);
        invocation.success = matches!(response.status, 200 | 201);
        if message.show_responses {
            invocation.response = Some(ResponseView::new(&response, &self.secrets));
        }
        count_upstream(
            integration,
            status_class(response.status),
            if invocation.success { "" } else { "status" },
        );
        state.set(
            &status_variable,
            response.status.to_string(),
            Persistence::Session,
        );
        if !invocation.success {
            return invocation;
        }
        let api_name = format!("api_{rdvn}");
        let transform = script_key("i", &integration.name);
        let document = if self.compiled.contains_key(&transform) {
            let transform_started = Instant::now();
            let json_data = api_json_text(&api_name, &response);
            let api = ApiData {
                name: api_name.clone(),
                json_data: json_data.clone(),
            };
            let last = LastCall {
                status: invocation.status,
                success: invocation.success,
            };
            let output = self
                .script(&transform, state, message, Some(api), last, trace)
                .await;
            let mut transformed = None;
            if let Some(output) = output {
                if let Some(json_data) = &output.json_data {
                    match serde_json::from_str(json_data) {
                        Ok(document) => transformed = Some(document),
                        Err(_) => trace.script_errors.push(format!(
                            "integration {}: transformScript left jsonData that is not JSON",
                            integration.name
                        )),
                    }
                }
                apply(&self.bot, state, &output, trace);
            }
            let document = transformed.unwrap_or_else(|| {
                serde_json::from_str(&json_data)
                    .unwrap_or_else(|_| json!({ api_name: response_document(&response) }))
            });
            observe_phase("transform", transform_started);
            document
        } else {
            json!({ api_name: response_document(&response) })
        };
        if let Some(view) = &mut invocation.response {
            let text = document.to_string();
            view.document = Some(truncated(&self.secrets.mask(&text), text.len()));
        }
        let fields_started = Instant::now();
        let fields = self.with_values(state, message, |values| {
            let mut paths = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
            extract_fields(integration, &document, values, &mut paths)
        });
        observe_phase("fields", fields_started);
        invocation.fields = fields.clone();
        state.fields.store(integration, fields);
        invocation
    }

    /// Renders the request, applies the credential and sends it.
    async fn send(
        &self,
        integration: &Integration,
        state: &ConversationState,
        message: &UserMessage,
        invocation: &mut Invocation,
    ) -> Result<patchbay_transport::Response, CallFailure> {
        let request = self
            .with_values(state, message, |values| {
                build_request(integration, values, invocation)
            })
            .map_err(CallFailure::render)?;
        let mut request = Request {
            limits: limits(&self.bot.http, &integration.http),
            ..request
        };
        // The caller's trace (W3C Trace Context) reaches the upstream, unless
        // the bot sets `traceparent` itself.
        if let Some(parent) = crate::message::TraceParent::current()
            && let Ok(value) = HeaderValue::from_str(&parent.child())
        {
            request
                .headers
                .entry(HeaderName::from_static("traceparent"))
                .or_insert(value);
        }
        let waited = self
            .wait_for_rate_slots(integration, &request.url, request.limits.deadline)
            .await?;
        request.limits.deadline = request
            .limits
            .deadline
            .saturating_sub(waited)
            .max(Duration::from_millis(1));
        match integration
            .credential
            .as_ref()
            .and_then(|name| self.providers.get(name))
        {
            Some(provider) => {
                Ok(send_authenticated(&self.client, provider.as_ref(), request).await?)
            }
            None => Ok(self.client.send(request).await?),
        }
    }
}

impl Engine {
    /// Takes a slot under the integration's and the host's rate limits, if
    /// any, and waits for the later one: the wait counts against the call's
    /// deadline, and a slot past it fails the call at once.
    async fn wait_for_rate_slots(
        &self,
        integration: &Integration,
        url: &Url,
        deadline: Duration,
    ) -> Result<Duration, CallFailure> {
        let by_host = url.host_str().and_then(|host| self.host_rates.get(host));
        let mut wait = Duration::ZERO;
        for slot in [self.integration_rates.get(&integration.name), by_host]
            .into_iter()
            .flatten()
        {
            match self
                .rate_limiter
                .reserve(&slot.key, slot.rate, deadline)
                .await
            {
                Ok(slot_wait) => wait = wait.max(slot_wait),
                Err(limited) => {
                    return Err(CallFailure {
                        kind: "rate-limited",
                        message: format!(
                            "the rate limit of {} (one call per {} ms, {} at once) has no slot within the call's {} ms deadline; the next is in {} ms",
                            slot.what,
                            slot.rate.interval().as_millis(),
                            slot.rate.burst(),
                            deadline.as_millis(),
                            limited.wait.as_millis()
                        ),
                    });
                }
            }
        }
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis(), "waiting for a rate-limit slot");
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }
}

/// Renders an integration's request: URL, params, headers, body.
fn build_request(
    integration: &Integration,
    values: &Values<'_>,
    invocation: &mut Invocation,
) -> Result<Request, String> {
    let rendered = render_url(&integration.url, values).map_err(|error| error.to_string())?;
    let mut url =
        Url::parse(&rendered.text).map_err(|error| format!("the URL is not valid: {error}"))?;
    // A host chosen by a conversation's value gets the credential only
    // when the bot named it (docs/engine.md, "URL rendering").
    if rendered.host_is_open {
        let host = url.host_str().unwrap_or_default();
        if !integration.allows_host(host) {
            return Err(format!(
                "the URL's host `{host}` comes from a conversation's value and is not in the integration's `allowedHosts`"
            ));
        }
    }
    if !integration.params.is_empty() {
        let mut query = url.query().map(str::to_owned).unwrap_or_default();
        for (key, value) in &integration.params {
            let value = render(value, values, Place::Param).map_err(|error| error.to_string())?;
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&encode_query(key));
            query.push('=');
            query.push_str(&encode_query(&value));
        }
        url.set_query(Some(&query));
    }
    invocation.request_line = format!(
        "{} {}{}",
        integration.method.as_str(),
        &url[..url::Position::AfterPath],
        if url.query().is_some() {
            "?[redacted]"
        } else {
            ""
        }
    );
    let method = Method::from_bytes(integration.method.as_str().as_bytes())
        .map_err(|_| "unknown method".to_owned())?;
    let mut request = Request::new(method, url);
    if integration.default_headers {
        let json = HeaderValue::from_static("application/json;charset=UTF-8");
        request.headers.insert(ACCEPT, json.clone());
        request.headers.insert(CONTENT_TYPE, json);
    }
    for (name, value) in &integration.headers {
        let value = render(value, values, Place::Header).map_err(|error| error.to_string())?;
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("the value of header `{name}` is not valid"))?;
        request.headers.insert(name, value);
    }
    if let Some(body) = &integration.body {
        let is_json = request
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("json"));
        let place = if is_json {
            Place::JsonBody
        } else {
            Place::Text
        };
        let body = render(body, values, place).map_err(|error| error.to_string())?;
        request.body = Bytes::from(body);
    }
    Ok(request)
}

/// A response body as the steps after the call see it: JSON as it is, XML
/// converted (docs/engine.md), anything else as one JSON string.
fn response_document(response: &patchbay_transport::Response) -> Value {
    let text = String::from_utf8_lossy(&response.body);
    let says_xml = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("xml"));
    if (says_xml || text.trim_start().starts_with('<'))
        && let Some(document) = patchbay_rules::xml_to_json(&text)
    {
        return document;
    }
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

/// Records how long one phase of a call or turn took.
fn observe_phase(phase: &'static str, started: Instant) {
    metrics::histogram!("patchbay_phase_duration_seconds", "phase" => phase)
        .record(started.elapsed().as_secs_f64());
}

/// Counts one upstream outcome: its status class (`none` when no response
/// came) and, for a failure, its kind.
fn count_upstream(integration: &Integration, class: &'static str, failure: &'static str) {
    metrics::counter!(
        "patchbay_upstream_responses_total",
        "integration" => integration.name.clone(),
        "class" => class
    )
    .increment(1);
    if !failure.is_empty() {
        metrics::counter!("patchbay_call_failures_total", "kind" => failure).increment(1);
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `{"api_RDVN": <body>}` as the text a transform script reads: a JSON
/// body's own text, spliced in without a parse and a re-serialisation;
/// anything else as the document the later steps would see.
fn api_json_text(api_name: &str, response: &patchbay_transport::Response) -> String {
    let says_xml = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("xml"));
    if !says_xml
        && let Ok(text) = std::str::from_utf8(&response.body)
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        && let Ok(key) = serde_json::to_string(api_name)
    {
        return format!("{{{key}:{text}}}");
    }
    json!({ api_name: response_document(response) }).to_string()
}

/// The last call's outcome, as scripts read it.
#[derive(Clone, Copy)]
pub(crate) struct LastCall {
    pub(crate) status: Option<u16>,
    pub(crate) success: bool,
}

/// Applies what a script did to the state and the trace.
pub(crate) fn apply(
    bot: &Bot,
    state: &mut ConversationState,
    output: &ScriptOutput,
    trace: &mut StepTrace,
) {
    for write in &output.variables {
        state.set(&write.name, write.value.clone(), write.persistence);
    }
    // A slot belongs to the dialog the turn is in, which must declare it.
    let dialog = state
        .dialog
        .as_ref()
        .and_then(|name| bot.dialogs.iter().find(|dialog| &dialog.name == name));
    for write in &output.slots {
        match dialog {
            Some(dialog) if dialog.slots.contains(&write.name) => {
                state
                    .slots
                    .entry(dialog.name.clone())
                    .or_default()
                    .insert(write.name.clone(), write.value.clone());
            }
            Some(dialog) => trace.script_errors.push(format!(
                "setSlotValue: dialog `{}` declares no slot `{}` (its `slots`)",
                dialog.name, write.name
            )),
            None => trace.script_errors.push(format!(
                "setSlotValue(`{}`): slots belong to a dialog, and this script runs outside one",
                write.name
            )),
        }
    }
    trace.flow.take_run(output);
    trace
        .messages
        .extend(crate::message::script_messages(output));
    for action in &output.actions {
        action.clone().add_to(&mut trace.actions);
    }
}

/// The time, in milliseconds since the Unix epoch (`getHoursType`).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn system_value(
    bot: &Bot,
    state: &ConversationState,
    message: &UserMessage,
    system: SystemVariable,
) -> String {
    match system {
        // The bot's id is its name, as `getChatBotId()` gives it.
        SystemVariable::ChatBotId => bot.name.clone(),
        SystemVariable::UserMessage => message.text.clone(),
        SystemVariable::ConversationId => state.conversation_id.clone(),
        SystemVariable::ChatBotUserId => state.user_id.clone(),
        SystemVariable::ChatBotUserPlatformId => state.platform_user_id.clone(),
        SystemVariable::FirstName => state.first_name.clone(),
        SystemVariable::QuickReplyPayload => message.payload.clone().unwrap_or_default(),
    }
}

/// The call's limits: the integration's settings over the bot's over the
/// transport's defaults.
fn limits(bot: &HttpSettings, integration: &HttpSettings) -> Limits {
    let settings = integration.or(bot);
    let defaults = Limits::default();
    Limits {
        deadline: settings
            .timeout_ms
            .map_or(defaults.deadline, Duration::from_millis),
        connect_timeout: settings
            .connect_timeout_ms
            .map_or(defaults.connect_timeout, Duration::from_millis),
        max_retries: settings.retries.unwrap_or(defaults.max_retries),
        max_body_bytes: settings
            .max_response_bytes
            .and_then(|bytes| usize::try_from(bytes).ok())
            .unwrap_or(defaults.max_body_bytes),
        max_redirects: settings.max_redirects.unwrap_or(defaults.max_redirects),
    }
}

fn encode_query(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
