//! The engine: composes config, credentials, transport, script and rules
//! into one turn of a conversation (spec section 3).
//!
//! # Invariant
//! Thin: it orders the steps of spec section 3 and owns no policy of its
//! own. Conversation state is a plain value passed in and returned, so a
//! server can keep it anywhere. Success is exactly status 200 or 201.
//!
//! # API boundary
//! [`Engine::new`], [`Engine::run_turn`], [`Engine::invoke`],
//! [`ConversationState`], [`Turn`] and their JSON forms;
//! [`Engine::run_stored_turn`] over a [`StateStore`] for hosts that keep
//! conversations ([`MemoryStateStore`] by default). The crates it
//! composes are re-exported ([`config`], [`script`], [`credentials`],
//! [`transport`], [`rules`]) so an embedder depends on this crate alone
//! (docs/embedding.md, `examples/embed.rs`).
#![deny(missing_docs)]

pub use patchbay_config as config;
pub use patchbay_credentials as credentials;
pub use patchbay_rules as rules;
pub use patchbay_script as script;
pub use patchbay_transport as transport;

mod context;
mod conversation;
mod engine;
mod env;
mod message;
mod platform;
mod rate;
mod request;
mod response;
mod state;
mod store;
mod trace;

pub use context::{
    ContextKey, ContextRefusal, ContextStore, ContextStoreError, ContextUser, MemoryContextLimits,
    MemoryContextStore, RecordId, uses_context_store,
};
pub use conversation::NOT_UNDERSTOOD;
pub use engine::{Engine, EngineError, EngineOptions, Env, MAX_MESSAGE_BYTES, Start};
pub use message::{ButtonMessage, CardMessage, Message, QuestionMessage, TraceParent, UserMessage};
pub use platform::{Attributes, AttributesError, MAX_ATTRIBUTES_BYTES, actions_json};
pub use response::{RESPONSE_VIEW_LIMIT, ResponseView};
pub use state::{ConversationState, MAX_RETURN_TO, Variable};
pub use store::{
    ConversationKey, DEFAULT_MAX_CONVERSATION_BYTES, DEFAULT_MAX_CONVERSATIONS,
    DEFAULT_USER_VARIABLES_TTL, MemoryStateStore, MemoryStoreLimits, SaveConversation, StateStore,
    StoreError, StoredConversation, StoredTurn, StoredTurnRequest,
};
pub use trace::{CallFailure, Invocation, Next, StepTrace, Turn};

/// An engine for `yaml` (panics with the loader's report if it does not
/// load), with one script isolate and `env` as its host environment: what
/// the crate's unit tests run turns on.
#[cfg(test)]
pub(crate) async fn test_engine(yaml: &str, env: Env) -> Engine {
    let bot = patchbay_config::load("bot.yaml", yaml)
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|report| panic!("{}", report.render(patchbay_config::RenderStyle::Plain)));
    let scripts = patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
        workers: 1,
        ..patchbay_script::RuntimeOptions::default()
    });
    Engine::new(bot, EngineOptions::new(env, scripts))
        .await
        .expect("engine")
}
