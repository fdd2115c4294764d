//! Conversations the host keeps between turns, for callers that send a
//! conversation id instead of the state: a store trait, the in-memory
//! default, and the turn that loads, runs and saves.
//!
//! A conversation's session (its session variables and fields) lives under
//! its id and expires after a time without turns; "persist forever"
//! variables live under the user's id, across conversations. A turn writes
//! both in one atomic step, and only if no other turn of the conversation
//! saved since this one loaded (optimistic versioning): two concurrent
//! turns cannot lose an update; the later one is refused and may be sent
//! again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use patchbay_credentials::BoxFuture;
use patchbay_rules::find_interaction;
use patchbay_script::Persistence;
use serde_json::Value;

use crate::engine::{Engine, EngineError, Start, Turn};
use crate::state::ConversationState;

/// Which conversation, of which user, of which bot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    /// The bot's name.
    pub bot: String,
    /// The conversation's id.
    pub conversation_id: String,
    /// The user's id (`chatBotUserId`); their "forever" variables live under
    /// it. Empty: the conversation's id stands in.
    pub user_id: String,
}

impl ConversationKey {
    fn user(&self) -> &str {
        if self.user_id.is_empty() {
            &self.conversation_id
        } else {
            &self.user_id
        }
    }
}

/// What a store holds for a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredConversation {
    /// The session's version: 0 for a new conversation (or one whose
    /// session expired), then one more per saved turn.
    pub version: u64,
    /// The session as [`ConversationState::to_json`] text, without
    /// `userVariables`, plus `waitingAt`: the interaction the conversation
    /// waits at, if any.
    pub session: Option<String>,
    /// The user's "forever" variables.
    pub user_variables: HashMap<String, String>,
}

/// One turn's writes.
#[derive(Clone, Debug)]
pub struct SaveConversation<'a> {
    /// Whose.
    pub key: &'a ConversationKey,
    /// The version loaded; the save is refused if the session is no longer
    /// at it.
    pub expected_version: u64,
    /// The session's new text.
    pub session: String,
    /// How long the session lives without another turn.
    pub session_ttl: Duration,
    /// The user's variables this turn set (others are left as they are, so
    /// two conversations of one user do not overwrite each other's).
    pub user_variables: Vec<(&'a str, &'a str)>,
}

/// Why a store could not load or save.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another turn of the conversation saved while this one ran.
    #[error(
        "conversation `{conversation}` changed while this turn ran; nothing of this turn was saved, send it again"
    )]
    Conflict {
        /// The conversation's id.
        conversation: String,
    },
    /// The store did not answer, or answered with an error.
    #[error("the conversation store is unavailable: {0}")]
    Unavailable(String),
    /// What the store holds for the conversation cannot be read.
    #[error("the stored conversation `{conversation}` cannot be read: {reason}")]
    Unreadable {
        /// The conversation's id.
        conversation: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where conversations live between turns.
pub trait StateStore: Send + Sync + std::fmt::Debug + 'static {
    /// The conversation's session (if it has not expired) and its user's
    /// variables.
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>>;

    /// Writes the session (restarting its expiry) and the user's variables
    /// in one atomic step, if the session is still at `expected_version`
    /// ([`StoreError::Conflict`] otherwise). Returns the new version.
    fn save<'a>(&'a self, save: SaveConversation<'a>) -> BoxFuture<'a, Result<u64, StoreError>>;
}

/// Conversations in this process's memory: the default, for one replica.
/// Sessions expire; users' variables stay for the process's lifetime.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    sessions: HashMap<(String, String), Session>,
    users: HashMap<(String, String), HashMap<String, String>>,
    saves_since_sweep: usize,
}

#[derive(Debug)]
struct Session {
    version: u64,
    text: String,
    expires: Instant,
}

/// Expired sessions are swept after this many saves, so that memory follows
/// the live conversations, not every conversation ever had.
const SWEEP_EVERY: usize = 1024;

impl MemoryStateStore {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStateStore {
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>> {
        let memory = self.memory();
        let now = Instant::now();
        let session = memory
            .sessions
            .get(&(key.bot.clone(), key.conversation_id.clone()))
            .filter(|session| session.expires > now);
        let loaded = StoredConversation {
            version: session.map_or(0, |session| session.version),
            session: session.map(|session| session.text.clone()),
            user_variables: memory
                .users
                .get(&(key.bot.clone(), key.user().to_owned()))
                .cloned()
                .unwrap_or_default(),
        };
        Box::pin(std::future::ready(Ok(loaded)))
    }

    fn save<'a>(&'a self, save: SaveConversation<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut memory = self.memory();
        let now = Instant::now();
        let id = (save.key.bot.clone(), save.key.conversation_id.clone());
        let current = memory
            .sessions
            .get(&id)
            .filter(|session| session.expires > now)
            .map_or(0, |session| session.version);
        if current != save.expected_version {
            return Box::pin(std::future::ready(Err(StoreError::Conflict {
                conversation: save.key.conversation_id.clone(),
            })));
        }
        memory.sessions.insert(
            id,
            Session {
                version: current + 1,
                text: save.session,
                expires: now + save.session_ttl,
            },
        );
        if !save.user_variables.is_empty() {
            let user = memory
                .users
                .entry((save.key.bot.clone(), save.key.user().to_owned()))
                .or_default();
            for (name, value) in save.user_variables {
                user.insert(name.to_owned(), value.to_owned());
            }
        }
        memory.saves_since_sweep += 1;
        if memory.saves_since_sweep >= SWEEP_EVERY {
            memory.saves_since_sweep = 0;
            memory.sessions.retain(|_, session| session.expires > now);
        }
        Box::pin(std::future::ready(Ok(current + 1)))
    }
}

/// The member of a stored session naming where the conversation waits.
const WAITING_AT: &str = "waitingAt";

/// A turn of a stored conversation, and the version it saved.
#[derive(Debug)]
pub struct StoredTurn {
    /// The turn.
    pub turn: Turn,
    /// The session's version after it.
    pub version: u64,
}

impl Engine {
    /// Runs a turn of a conversation `store` keeps: loads it (a new one if
    /// it has none or its session expired), runs the turn, and saves the
    /// session (alive `session_ttl` more) and the user's variables the turn
    /// set. Nothing is saved when the turn fails or another turn of the
    /// conversation saved first ([`StoreError::Conflict`]).
    ///
    /// The store remembers where the conversation waits (the interaction
    /// after a question), so [`Start::Message`] goes on there with the
    /// user's answer; with nothing waiting, it starts the dialog whose
    /// starter matches the message, as in [`Engine::run_turn`].
    pub async fn run_stored_turn(
        &self,
        store: &dyn StateStore,
        key: &ConversationKey,
        session_ttl: Duration,
        start: Start,
        message: &str,
    ) -> Result<StoredTurn, EngineError> {
        let loaded = store.load(key).await?;
        let unreadable = |reason: String| StoreError::Unreadable {
            conversation: key.conversation_id.clone(),
            reason,
        };
        let (mut state, waiting_at) = match &loaded.session {
            Some(text) => {
                let mut json: Value =
                    serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
                let waiting_at = json
                    .as_object_mut()
                    .and_then(|members| members.remove(WAITING_AT))
                    .and_then(|at| at.as_str().map(str::to_owned));
                let state = ConversationState::from_json(json, self.bot())
                    .map_err(|e| unreadable(e.to_string()))?;
                (state, waiting_at)
            }
            None => (ConversationState::default(), None),
        };
        let start = match (start, waiting_at) {
            (Start::Message, Some(at)) if find_interaction(self.bot(), &at).is_some() => {
                Start::Interaction(at)
            }
            (start, _) => start,
        };
        state.conversation_id.clone_from(&key.conversation_id);
        state.user_id.clone_from(&key.user_id);
        // A name the conversation holds for itself (session) keeps its
        // value; the user's "forever" value fills in the rest.
        for (name, value) in &loaded.user_variables {
            if !state.variables.contains_key(name) {
                state.set(name, value.as_str(), Persistence::Forever);
            }
        }
        let turn = self.run_turn(state, start, message).await?;
        let mut session = turn.state.to_json();
        if let Some(members) = session.as_object_mut() {
            members.remove("userVariables");
            if find_interaction(self.bot(), &turn.next).is_some() {
                members.insert(WAITING_AT.to_owned(), Value::String(turn.next.clone()));
            }
        }
        let user_variables = turn
            .state
            .variables
            .iter()
            .filter(|(name, variable)| {
                variable.persistence == Persistence::Forever
                    && loaded.user_variables.get(*name) != Some(&variable.value)
            })
            .map(|(name, variable)| (name.as_str(), variable.value.as_str()))
            .collect();
        let version = store
            .save(SaveConversation {
                key,
                expected_version: loaded.version,
                session: session.to_string(),
                session_ttl,
                user_variables,
            })
            .await?;
        Ok(StoredTurn { turn, version })
    }
}
