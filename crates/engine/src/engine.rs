//! One turn: interactions run in order until the conversation waits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use patchbay_config::{Bot, Integration, InteractionKind, SystemVariable, Template};
use patchbay_credentials::{
    KnownSecrets, MemoryTokenCache, ProviderContext, TokenCache, send_authenticated,
};
use patchbay_rules::{
    BotIndex, PathCache, Place, Position, Step, Values, Variables, extract_fields, render,
    select_rule,
};
use patchbay_script::{
    ApiData, CustomEvent, Persistence, Script, ScriptInput, ScriptOutput, ScriptRuntime,
};
use patchbay_transport::{
    Client, MemoryRateLimiter, NetworkGuard, ProxyConfig, RateLimiter, Resolve,
};
use tracing::Instrument;

use crate::env::ResolvedEnv;
use crate::message::{Message, UserMessage};
use crate::rate::RateLimits;
use crate::request::RequestPlan;
use crate::response::{Decoded, ResponseView};
use crate::state::{ConversationState, Variable};
use crate::trace::{CallFailure, Invocation, Next, StepTrace, Turn};

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
fn resume_where_waiting(
    bot: &Bot,
    names: &BotIndex,
    start: Start,
    waiting_at: Option<String>,
) -> Resume {
    let Start::Message = start else {
        return Resume::Start(start);
    };
    match waiting_at.and_then(|name| names.interaction(&name)) {
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
    /// Where an interaction's compiled code of this kind is kept.
    fn index(self) -> usize {
        match self {
            Self::Pre => 0,
            Self::Post => 1,
            Self::ProcessUserResponse => 2,
        }
    }

    /// The kind of an interaction's code field (`InteractionKind::scripts`).
    fn of_field(field: &str) -> Self {
        match field {
            "preProcess" => Self::Pre,
            "postProcess" => Self::Post,
            _ => Self::ProcessUserResponse,
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

/// A bot, ready to run turns: its credentials built, its scripts compiled,
/// its names resolved, its environment read, each integration's request
/// planned.
pub struct Engine {
    pub(crate) bot: Arc<Bot>,
    /// The bot's names resolved to positions and indices.
    pub(crate) names: BotIndex,
    client: Client,
    scripts: ScriptRuntime,
    /// Each integration's `transformScript`, by integration index.
    transforms: Vec<Option<Compiled>>,
    /// Each interaction's code, by position, then by [`Code::index`].
    codes: HashMap<Position, [Option<Compiled>; 3]>,
    /// The bot's environment, read once.
    env: ResolvedEnv,
    paths: PathCache,
    /// Each integration's request plan, by integration index.
    requests: Vec<RequestPlan>,
    /// The bot's failure message, parsed once.
    failure_message: Template,
    /// The bot's secrets, to mask in what a host shows of a turn.
    secrets: Arc<KnownSecrets>,
    /// The bot's rate limits and the limiter of their slots.
    rates: RateLimits,
    /// The Conversation Context Service's store.
    pub(crate) context_store: Arc<dyn crate::ContextStore>,
}

/// A compiled script and whether its source names a context function (the
/// context store is loaded for those only).
pub(crate) struct Compiled {
    script: Script,
    pub(crate) uses_context: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bot", &self.bot.name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Prepares a bot: the HTTP client (its guard from `network.allow`),
    /// every credential's provider, every script compiled, the bot's
    /// environment read (once: a reload builds a new engine), its names
    /// resolved and each integration's request planned.
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
        let env = ResolvedEnv::new(&bot, &options.env);
        // Credentials render their fields now, from the same values.
        let lookup = |name: &str| env.get(name).map(Cow::into_owned);
        let context = ProviderContext::new(client.clone(), Arc::clone(&options.token_cache));
        let mut providers = HashMap::new();
        for credential in &bot.credentials {
            let provider = patchbay_credentials::build(credential, &lookup, &context)?;
            providers.insert(credential.name.clone(), provider);
        }
        // One realm per bot load: its scripts get contexts of their own.
        let realm = options.scripts.realm(&bot.name);
        let mut transforms = Vec::with_capacity(bot.integrations.len());
        for integration in &bot.integrations {
            let compiled = match &integration.transform_script {
                Some(code) => {
                    let owner = format!("integration {}, transformScript", integration.name);
                    Some(Compiled {
                        script: options.scripts.compile(&realm, &owner, code).await?,
                        uses_context: crate::context::uses_context_store(code),
                    })
                }
                None => None,
            };
            transforms.push(compiled);
        }
        let mut codes: HashMap<Position, [Option<Compiled>; 3]> = HashMap::new();
        for (d, dialog) in bot.dialogs.iter().enumerate() {
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                for (field, source) in interaction.kind.scripts() {
                    let owner = format!("interaction {}, {field}", interaction.name);
                    let script = options.scripts.compile(&realm, &owner, source).await?;
                    codes.entry((d, k)).or_default()[Code::of_field(field).index()] =
                        Some(Compiled {
                            script,
                            uses_context: crate::context::uses_context_store(source),
                        });
                }
            }
        }
        let requests = bot
            .integrations
            .iter()
            .map(|integration| RequestPlan::new(&bot, integration, &providers))
            .collect();
        let secrets = Arc::new(KnownSecrets::of_bot(&bot, &lookup));
        Ok(Self {
            secrets,
            rates: RateLimits::new(&bot, options.rate_limiter),
            context_store: options.context_store,
            names: BotIndex::new(&bot),
            requests,
            failure_message: Template::parse(bot.failure_message()),
            env,
            bot: Arc::new(bot),
            client,
            scripts: options.scripts,
            transforms,
            codes,
            paths: PathCache::default(),
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
            .and_then(|name| self.names.interaction(name))
            .map(|(dialog, _)| bot.dialogs[dialog].name.clone());
        let mut walk = Walk {
            flow: crate::message::TurnFlow::new(&state, Arc::clone(&self.secrets)),
            ..Walk::default()
        };
        let mut step = match resume_where_waiting(bot, &self.names, start, waiting) {
            Resume::Answer(question) => self.answer(question, &mut state, input, &mut walk).await,
            Resume::Start(Start::Interaction(name)) => Step::Interaction(
                self.names
                    .interaction(&name)
                    .ok_or(EngineError::UnknownInteraction(name))?,
            ),
            Resume::Start(Start::Message) => {
                let matched = self.names.trigger_target(bot, &input.text);
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
                    break Next::CloseConversation;
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
                        .find_map(|name| self.names.interaction(&name))
                    {
                        step = Step::Interaction(question);
                        continue;
                    }
                    self.leave_dialog(&mut state, None);
                    break if step == Step::End {
                        Next::End
                    } else {
                        Next::CloseDialog
                    };
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
                Ran::Waits => break Next::Waiting(interaction.name.clone()),
                Ran::Then(then) => step = then,
            }
        };
        // A turn ends waiting only at a question: its answer is the next
        // message.
        state.waiting_at = next.waiting_at().map(str::to_owned);
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
            .interaction_code(Code::Pre, position, state, input, last, &mut trace)
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
                let integration = self
                    .names
                    .integration(&call.integration)
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
            .interaction_code(Code::Post, position, state, input, last, &mut trace)
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
                .and_then(|text| self.names.trigger_target(bot, text))
            {
                Some(target) => Ran::Then(Step::Interaction(target)),
                None if waits => Ran::Waits,
                None => Ran::Then(self.names.next_step(bot, position, &action)),
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
            .names
            .integration(integration)
            .ok_or_else(|| EngineError::UnknownIntegration(integration.to_owned()))?;
        state.start_from_bot_variables(&self.bot);
        let mut trace = StepTrace::default();
        Ok(self
            .call(integration, state, &UserMessage::default(), &mut trace)
            .await)
    }

    /// Calls `f` with what templates and conditions read in `state`, all
    /// of it borrowed: the state's variables and slots, the custom data
    /// fields (which also stand for the variables `RDVN.key`,
    /// `RDVN.key.count` and `RDVN.key[N]`), the environment read at load,
    /// the system variables. Nothing is copied to make it.
    pub(crate) fn with_values<R>(
        &self,
        state: &ConversationState,
        message: &UserMessage,
        f: impl FnOnce(&Values<'_>) -> R,
    ) -> R {
        let env = |name: &str| self.env.get(name).map(Cow::into_owned);
        let system = |system: SystemVariable| Some(system_value(&self.bot, state, message, system));
        f(&Values {
            variables: &StateVariables(&state.variables),
            slots: state.current_slots(),
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
        position: Position,
        state: &mut ConversationState,
        message: &UserMessage,
        last: LastCall,
        trace: &mut StepTrace,
    ) -> Option<String> {
        let compiled = self.codes.get(&position)?[code.index()].as_ref()?;
        let started = Instant::now();
        let output = self
            .script(compiled, state, message, None, last, trace)
            .await;
        observe_phase(code.phase(), started);
        self.apply(state, &output, trace);
        output.trigger
    }

    /// Runs a compiled script. What it did takes effect even when it then
    /// threw, as in the product (its error is recorded in the trace); a run
    /// stopped by a limit did nothing.
    async fn script(
        &self,
        compiled: &Compiled,
        state: &ConversationState,
        message: &UserMessage,
        api: Option<ApiData>,
        last: LastCall,
        trace: &mut StepTrace,
    ) -> ScriptOutput {
        let script = &compiled.script;
        let context = self
            .context_snapshot(compiled.uses_context, script.owner(), state, trace)
            .await;
        let input = ScriptInput {
            variables: self.script_variables(state),
            env: self.env.for_scripts.clone(),
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
        run.output
    }

    /// Bot variables as scripts see them: as templates and conditions do,
    /// which is custom data fields under their integration's name too
    /// (`getBotVariable("name.key.count")`, as the product documents),
    /// resolved as `{name.key}` is in a template.
    /// The one copy a turn makes of its variables, because a script run
    /// owns its input ([`ScriptInput::variables`]).
    fn script_variables(&self, state: &ConversationState) -> HashMap<String, String> {
        let mut values = state.values();
        values.extend(state.fields.as_variables());
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

    /// The call of spec section 3, steps 1 to 6, of the integration at
    /// `integration` (an index).
    async fn call(
        &self,
        integration: usize,
        state: &mut ConversationState,
        message: &UserMessage,
        trace: &mut StepTrace,
    ) -> Invocation {
        let name = &self.bot.integrations[integration].name;
        let span = tracing::info_span!("integration", bot = %self.bot.name, integration = %name);
        self.call_inner(integration, state, message, trace)
            .instrument(span)
            .await
    }

    async fn call_inner(
        &self,
        at: usize,
        state: &mut ConversationState,
        message: &UserMessage,
        trace: &mut StepTrace,
    ) -> Invocation {
        let integration = &self.bot.integrations[at];
        let plan = &self.requests[at];
        let started = Instant::now();
        let mut invocation = Invocation {
            integration: integration.name.clone(),
            request_line: format!(
                "{} {}",
                integration.method.as_str(),
                integration.url.as_str()
            ),
            ..Invocation::default()
        };
        let outcome = self.send(at, state, message, &mut invocation).await;
        invocation.elapsed = started.elapsed();
        observe_phase("request", started);
        metrics::histogram!(
            "patchbay_integration_duration_seconds",
            "bot" => self.bot.name.clone(),
            "integration" => integration.name.clone()
        )
        .record(invocation.elapsed.as_secs_f64());
        let response = match outcome {
            Ok(response) => response,
            Err(failure) => {
                tracing::info!(kind = failure.kind, %failure, "call failed");
                count_upstream(integration, "none", failure.kind);
                invocation.failure = Some(failure);
                state.set(&plan.status_variable, "", Persistence::Session);
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
            &plan.status_variable,
            response.status.to_string(),
            Persistence::Session,
        );
        if !invocation.success {
            return invocation;
        }
        // Decoded once; the transform's input, the fields and the trace
        // share it.
        let decoded = Decoded::new(&plan.api_name, &response);
        let document = match &self.transforms[at] {
            Some(transform) => {
                let transform_started = Instant::now();
                let api = ApiData {
                    name: plan.api_name.clone(),
                    json_data: decoded.transform_input(&plan.api_name, &response),
                };
                let last = LastCall {
                    status: invocation.status,
                    success: invocation.success,
                };
                let output = self
                    .script(transform, state, message, Some(api), last, trace)
                    .await;
                let mut transformed = None;
                if let Some(json_data) = &output.json_data {
                    match serde_json::from_str(json_data) {
                        Ok(document) => transformed = Some(Arc::new(document)),
                        Err(_) => trace.script_errors.push(format!(
                            "integration {}: transformScript left jsonData that is not JSON",
                            integration.name
                        )),
                    }
                }
                self.apply(state, &output, trace);
                observe_phase("transform", transform_started);
                transformed.unwrap_or(decoded.document)
            }
            None => decoded.document,
        };
        if let Some(view) = &mut invocation.response {
            view.show_document(&document, &self.secrets);
        }
        let fields_started = Instant::now();
        let fields = self.with_values(state, message, |values| {
            extract_fields(integration, &document, values, &self.paths)
        });
        observe_phase("fields", fields_started);
        invocation.fields = fields.clone();
        state.fields.store(integration, fields);
        invocation
    }

    /// Renders the request (its plan), applies the credential and sends it.
    async fn send(
        &self,
        at: usize,
        state: &ConversationState,
        message: &UserMessage,
        invocation: &mut Invocation,
    ) -> Result<patchbay_transport::Response, CallFailure> {
        let integration = &self.bot.integrations[at];
        let plan = &self.requests[at];
        let mut request = self
            .with_values(state, message, |values| {
                plan.render(integration, values, &mut invocation.request_line)
            })
            .map_err(CallFailure::render)?;
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
            .rates
            .wait(at, &request.url, request.limits.deadline)
            .await?;
        request.limits.deadline = request
            .limits
            .deadline
            .saturating_sub(waited)
            .max(Duration::from_millis(1));
        match &plan.provider {
            Some(provider) => {
                Ok(send_authenticated(&self.client, provider.as_ref(), request).await?)
            }
            None => Ok(self.client.send(request).await?),
        }
    }

    /// Applies what a script did to the state and the trace.
    fn apply(&self, state: &mut ConversationState, output: &ScriptOutput, trace: &mut StepTrace) {
        for write in &output.variables {
            state.set(&write.name, write.value.clone(), write.persistence);
        }
        // A slot belongs to the dialog the turn is in, which must declare it.
        let dialog = state
            .dialog
            .as_deref()
            .and_then(|name| self.names.dialog(name))
            .map(|dialog| &self.bot.dialogs[dialog]);
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
}

/// Bot variables read where the state keeps them.
struct StateVariables<'a>(&'a HashMap<String, Variable>);

impl Variables for StateVariables<'_> {
    fn variable(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|variable| variable.value.as_str())
    }
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

/// The last call's outcome, as scripts read it.
#[derive(Clone, Copy)]
pub(crate) struct LastCall {
    pub(crate) status: Option<u16>,
    pub(crate) success: bool,
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
