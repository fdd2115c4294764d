//! Conversations the host keeps between turns, for callers that send a
//! conversation id instead of the state: a store trait, the in-memory
//! default, and the turn that loads, runs and saves.
//!
//! A conversation's session (its session variables and fields) lives under
//! its id and expires after a time without turns; "persist forever"
//! variables live under the user's id, across conversations, and only when
//! the turn names a user; the user's record expires
//! ([`DEFAULT_USER_VARIABLES_TTL`], the product's 180 days) after the last
//! turn that set one of them (a conversation id never stands in for one, so a
//! conversation cannot reach a user's record by taking their id). A turn
//! writes both in one atomic step, and only if no other turn of the
//! conversation saved since this one loaded (optimistic versioning): two
//! concurrent turns cannot lose an update; the later one is refused and may
//! be sent again.
//!
//! A turn may carry an id ([`StoredTurnRequest::turn_id`]): the session
//! keeps the last saved turn's id and answer, so a turn sent again after an
//! unknown outcome (a store that took the write but did not confirm it)
//! gets the first answer back instead of running twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use patchbay_credentials::BoxFuture;
use patchbay_script::Persistence;
use serde_json::Value;

use crate::engine::{Engine, EngineError, Start};
use crate::state::ConversationState;
use crate::trace::Turn;

/// Which conversation, of which user, of which bot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    /// The bot's name.
    pub bot: String,
    /// The conversation's id.
    pub conversation_id: String,
    /// The user's id (`chatBotUserId`); their "forever" variables live under
    /// it. Without one there is no user record: the conversation keeps its
    /// "forever" variables in its own session.
    pub user_id: Option<String>,
}

/// What a store holds for a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredConversation {
    /// The session's version: 0 for a new conversation (or one whose
    /// session expired), then one more per saved turn.
    pub version: u64,
    /// The session as [`ConversationState::to_json`] text (without
    /// `userVariables` when the conversation has a user; its `waitingAt`
    /// says where the conversation waits), plus `lastTurn` (the last saved
    /// turn's id and answer, if it had an id).
    pub session: Option<String>,
    /// The user's "forever" variables (none without a user).
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
    /// A reset: write over whatever the store holds for the conversation,
    /// readable or not, whatever its version (`expected_version` is not
    /// checked).
    pub replace: bool,
    /// The session's new text.
    pub session: String,
    /// How long the session lives without another turn.
    pub session_ttl: Duration,
    /// The user's variables this turn set (others are left as they are, so
    /// two conversations of one user do not overwrite each other's). Empty
    /// when the conversation has no user.
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
    /// The store did not answer, or refused, before anything of the turn
    /// was written: nothing was saved.
    #[error("the conversation store is unavailable; nothing of this turn was saved: {0}")]
    Unavailable(String),
    /// The write was sent but its answer never came (a timeout, a dropped
    /// connection): the store may have saved the turn or not.
    #[error(
        "the conversation store did not confirm the save, so this turn may or may not have been saved: {0}"
    )]
    OutcomeUnknown(String),
    /// What the store holds for the conversation cannot be read. It stays
    /// so until the conversation is reset ([`StoredTurnRequest::reset`]) or
    /// its session expires.
    #[error("the stored conversation `{conversation}` cannot be read: {reason}")]
    Unreadable {
        /// The conversation's id.
        conversation: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The turn would leave the conversation holding more than the store
    /// keeps for one ([`StateStore::max_conversation_bytes`]); nothing of
    /// it was saved.
    #[error(
        "conversation `{conversation}` would hold {bytes} bytes (session and user variables), more than the {limit} kept per conversation; nothing of this turn was saved"
    )]
    TooLarge {
        /// The conversation's id.
        conversation: String,
        /// What it would hold.
        bytes: usize,
        /// What a store keeps per conversation.
        limit: usize,
    },
}

/// What a conversation may hold by default: its session's text plus its
/// user's variables, in bytes. Real conversations hold a few KiB.
pub const DEFAULT_MAX_CONVERSATION_BYTES: usize = 64 * 1024;

/// How many conversations (and as many users' records) the memory store
/// keeps by default before evicting the least recently used.
pub const DEFAULT_MAX_CONVERSATIONS: usize = 10_000;

/// How long a user's "forever" variables (`setBotVariable(name, value,
/// session, true)`) are kept after the last turn that set one of them: the
/// product keeps them 180 days.
pub const DEFAULT_USER_VARIABLES_TTL: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// Where conversations live between turns.
pub trait StateStore: Send + Sync + std::fmt::Debug + 'static {
    /// The conversation's session (if it has not expired) and its user's
    /// variables (none when the key names no user).
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>>;

    /// Writes the session (restarting its expiry) and the user's variables
    /// in one atomic step, if the session is still at `expected_version`
    /// ([`StoreError::Conflict`] otherwise) or `replace` is set. Returns
    /// the new version.
    fn save<'a>(&'a self, save: SaveConversation<'a>) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The most one conversation may hold, in bytes: its session's text
    /// plus its user's variables (names and values). A turn that would
    /// save more is refused with [`StoreError::TooLarge`].
    fn max_conversation_bytes(&self) -> usize {
        DEFAULT_MAX_CONVERSATION_BYTES
    }
}

/// What the memory store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStoreLimits {
    /// The most one conversation may hold, in bytes
    /// ([`StateStore::max_conversation_bytes`]).
    pub max_conversation_bytes: usize,
    /// How many conversations it keeps, and how many users' records; past
    /// that the least recently used is evicted (counted in
    /// `patchbay_conversations_evicted_total`).
    pub max_conversations: usize,
}

impl Default for MemoryStoreLimits {
    fn default() -> Self {
        Self {
            max_conversation_bytes: DEFAULT_MAX_CONVERSATION_BYTES,
            max_conversations: DEFAULT_MAX_CONVERSATIONS,
        }
    }
}

/// Conversations in this process's memory: the default, for one replica.
/// Bounded: at most [`MemoryStoreLimits::max_conversations`] sessions and
/// as many users' records, each within
/// [`MemoryStoreLimits::max_conversation_bytes`], the least recently used
/// evicted first; sessions also expire.
#[derive(Debug)]
pub struct MemoryStateStore {
    inner: Mutex<Memory>,
    max_conversation_bytes: usize,
    user_variables_ttl: Duration,
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        Self::new(MemoryStoreLimits::default())
    }
}

#[derive(Debug)]
struct Memory {
    sessions: Lru<SessionRecord>,
    users: Lru<UserRecord>,
    saves_since_sweep: usize,
}

/// A user's "forever" variables, kept until `expires` (pushed back by each
/// turn that sets one of them).
#[derive(Debug)]
struct UserRecord {
    variables: HashMap<String, String>,
    expires: Instant,
}

#[derive(Debug)]
struct SessionRecord {
    version: u64,
    text: String,
    expires: Instant,
}

/// Expired sessions and users' records are swept after this many saves, so that memory follows
/// the live conversations, not every conversation ever had.
const SWEEP_EVERY: usize = 1024;

/// A store key: the bot's name and a conversation's or a user's id (the two
/// live in separate maps, so they never meet).
type RecordKey = (String, String);

/// A map that keeps at most `capacity` entries, evicting the least recently
/// used (read or written) to make room.
#[derive(Debug)]
struct Lru<V> {
    entries: HashMap<RecordKey, (u64, V)>,
    /// Entries by their last use, oldest first.
    by_use: BTreeMap<u64, RecordKey>,
    clock: u64,
    capacity: usize,
    /// What its evictions count as, in `patchbay_conversations_evicted_total`.
    record: &'static str,
}

impl<V> Lru<V> {
    fn new(capacity: usize, record: &'static str) -> Self {
        Self {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            clock: 0,
            capacity: capacity.max(1),
            record,
        }
    }

    /// The entry, marked as just used.
    fn touch(&mut self, key: &RecordKey) -> Option<&mut V> {
        let (used, value) = self.entries.get_mut(key)?;
        self.clock += 1;
        self.by_use.remove(used);
        *used = self.clock;
        self.by_use.insert(self.clock, key.clone());
        Some(value)
    }

    /// Inserts or replaces the entry, evicting the least recently used
    /// entries past the capacity.
    fn insert(&mut self, key: RecordKey, value: V) {
        self.clock += 1;
        if let Some((used, _)) = self.entries.insert(key.clone(), (self.clock, value)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(self.clock, key);
        let mut evicted = 0u64;
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            evicted += 1;
        }
        if evicted > 0 {
            metrics::counter!("patchbay_conversations_evicted_total", "record" => self.record)
                .increment(evicted);
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let by_use = &mut self.by_use;
        self.entries.retain(|_, (used, value)| {
            let kept = keep(value);
            if !kept {
                by_use.remove(used);
            }
            kept
        });
    }
}

impl MemoryStateStore {
    /// A store within `limits`.
    pub fn new(limits: MemoryStoreLimits) -> Self {
        Self {
            inner: Mutex::new(Memory {
                sessions: Lru::new(limits.max_conversations, "session"),
                users: Lru::new(limits.max_conversations, "user"),
                saves_since_sweep: 0,
            }),
            max_conversation_bytes: limits.max_conversation_bytes,
            user_variables_ttl: DEFAULT_USER_VARIABLES_TTL,
        }
    }

    /// How long a user's "forever" variables are kept after the last turn
    /// that set one of them; [`DEFAULT_USER_VARIABLES_TTL`] unless set here.
    #[must_use]
    pub fn with_user_variables_ttl(mut self, ttl: Duration) -> Self {
        self.user_variables_ttl = ttl;
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStateStore {
    fn load<'a>(
        &'a self,
        key: &'a ConversationKey,
    ) -> BoxFuture<'a, Result<StoredConversation, StoreError>> {
        let mut memory = self.memory();
        let now = Instant::now();
        let session = memory
            .sessions
            .touch(&(key.bot.clone(), key.conversation_id.clone()))
            .filter(|session| session.expires > now);
        let (version, session) = session.map_or((0, None), |session| {
            (session.version, Some(session.text.clone()))
        });
        let user_variables = match &key.user_id {
            Some(user) => memory
                .users
                .touch(&(key.bot.clone(), user.clone()))
                .filter(|record| record.expires > now)
                .map(|record| record.variables.clone())
                .unwrap_or_default(),
            None => HashMap::new(),
        };
        let loaded = StoredConversation {
            version,
            session,
            user_variables,
        };
        Box::pin(std::future::ready(Ok(loaded)))
    }

    fn save<'a>(&'a self, save: SaveConversation<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut memory = self.memory();
        let now = Instant::now();
        let id = (save.key.bot.clone(), save.key.conversation_id.clone());
        let current = memory
            .sessions
            .touch(&id)
            .filter(|session| session.expires > now)
            .map_or(0, |session| session.version);
        if current != save.expected_version && !save.replace {
            return Box::pin(std::future::ready(Err(StoreError::Conflict {
                conversation: save.key.conversation_id.clone(),
            })));
        }
        memory.sessions.insert(
            id,
            SessionRecord {
                version: current + 1,
                text: save.session,
                expires: now + save.session_ttl,
            },
        );
        if let Some(user) = save.key.user_id.as_ref()
            && !save.user_variables.is_empty()
        {
            let id = (save.key.bot.clone(), user.clone());
            let written = save
                .user_variables
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
            let expires = now + self.user_variables_ttl;
            match memory.users.touch(&id) {
                Some(record) if record.expires > now => {
                    record.variables.extend(written);
                    record.expires = expires;
                }
                _ => memory.users.insert(
                    id,
                    UserRecord {
                        variables: written.collect(),
                        expires,
                    },
                ),
            }
        }
        memory.saves_since_sweep += 1;
        if memory.saves_since_sweep >= SWEEP_EVERY {
            memory.saves_since_sweep = 0;
            memory.sessions.retain(|session| session.expires > now);
            memory.users.retain(|record| record.expires > now);
        }
        Box::pin(std::future::ready(Ok(current + 1)))
    }

    fn max_conversation_bytes(&self) -> usize {
        self.max_conversation_bytes
    }
}

/// The member of a stored session holding the last saved turn's id and
/// answer ([`LastTurn`]).
const LAST_TURN: &str = "lastTurn";

/// The last saved turn of a conversation, when it carried an id: what a
/// retry of it gets back. The answer is the turn's JSON form ([`Turn`]'s
/// `Serialize`), which holds neither its state (the session is that state)
/// nor its steps (they describe the first run; kept, they could push the
/// conversation past its size limit, and the turn would fail for its own
/// trace).
#[derive(serde::Deserialize)]
struct LastTurn {
    id: String,
    answer: serde_json::Map<String, Value>,
}

/// The session as a store keeps it: the state's JSON form (without the
/// user's variables when a user record keeps them) and, after a turn with
/// an id, `lastTurn`. [`Session::read`] reads it back.
#[derive(serde::Serialize)]
struct SessionForm<'a> {
    #[serde(flatten)]
    state: crate::state::StateForm<'a>,
    #[serde(rename = "lastTurn", skip_serializing_if = "Option::is_none")]
    last_turn: Option<LastTurnForm<'a>>,
}

/// [`LastTurn`] as written.
#[derive(serde::Serialize)]
struct LastTurnForm<'a> {
    id: &'a str,
    answer: &'a Turn,
}

/// A turn of a conversation a store keeps.
#[derive(Clone, Debug)]
pub struct StoredTurnRequest<'a> {
    /// Whose conversation.
    pub key: &'a ConversationKey,
    /// Where the turn starts ([`Start::Message`] goes on where the
    /// conversation waits, if it waits: the session's `waitingAt`).
    pub start: Start,
    /// The user's message.
    pub message: crate::UserMessage,
    /// How long the session lives after this turn without another.
    pub session_ttl: Duration,
    /// The caller's id for this turn (an idempotency key, unique per turn
    /// of the conversation). When the conversation's last saved turn had
    /// this id, its answer comes back and nothing runs.
    pub turn_id: Option<&'a str>,
    /// Start the conversation over: what the store holds for its session
    /// (readable or not, whatever its version) is dropped and replaced by
    /// this turn's; the user's variables stay.
    pub reset: bool,
}

/// A stored turn's outcome.
#[derive(Debug)]
pub enum StoredTurn {
    /// The turn ran and was saved.
    Ran {
        /// The turn.
        turn: Box<Turn>,
        /// The session's version after it.
        version: u64,
    },
    /// The conversation's last saved turn had the request's id: nothing
    /// ran; this is what it answered.
    Replayed {
        /// The turn's JSON form ([`Turn`]'s `Serialize`) as saved.
        answer: serde_json::Map<String, Value>,
        /// The conversation's state as stored now.
        state: Box<ConversationState>,
        /// The session's version (the one that turn saved).
        version: u64,
    },
}

impl StoredTurn {
    /// The session's version after the turn.
    pub fn version(&self) -> u64 {
        match self {
            Self::Ran { version, .. } | Self::Replayed { version, .. } => *version,
        }
    }

    /// The conversation's state after the turn.
    pub fn state(&self) -> &ConversationState {
        match self {
            Self::Ran { turn, .. } => &turn.state,
            Self::Replayed { state, .. } => state,
        }
    }
}

/// A stored session, read.
struct Session {
    state: ConversationState,
    last_turn: Option<LastTurn>,
}

impl Session {
    fn read(text: &str, engine: &Engine) -> Result<Self, String> {
        let mut json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let members = json
            .as_object_mut()
            .ok_or_else(|| "the session is not a JSON object".to_owned())?;
        let mut last_turn = members
            .remove(LAST_TURN)
            .map(serde_json::from_value::<LastTurn>)
            .transpose()
            .map_err(|e| format!("{LAST_TURN}: {e}"))?;
        // A replay adds these itself; a session written by hand could hold
        // them, and the answer would name them twice.
        if let Some(last) = &mut last_turn {
            last.answer
                .retain(|member, _| !matches!(member.as_str(), "state" | "steps" | "version"));
        }
        let state = ConversationState::from_json(json, engine.bot()).map_err(|e| e.to_string())?;
        Ok(Self { state, last_turn })
    }
}

impl Engine {
    /// Runs a turn of a conversation `store` keeps: loads it (a new one if
    /// it has none or its session expired), runs the turn, and saves the
    /// session (alive `session_ttl` more) and the user's variables the turn
    /// set. Nothing is saved when the turn fails, when another turn of the
    /// conversation saved first ([`StoreError::Conflict`]), or when the
    /// conversation would outgrow [`StateStore::max_conversation_bytes`]
    /// ([`StoreError::TooLarge`]).
    ///
    /// The session keeps where the conversation waits (the state's
    /// `waiting_at`: the interaction after a question), so
    /// [`Start::Message`] goes on there with the user's answer; with
    /// nothing waiting, it starts the dialog whose starter matches the
    /// message, as [`Engine::run_turn`] does for any state.
    ///
    /// With a [`StoredTurnRequest::turn_id`], a turn whose id is the last
    /// saved turn's is not run again: its answer comes back
    /// ([`StoredTurn::Replayed`]), also when it is found after a conflict.
    pub async fn run_stored_turn(
        &self,
        store: &dyn StateStore,
        request: StoredTurnRequest<'_>,
    ) -> Result<StoredTurn, EngineError> {
        let StoredTurnRequest {
            key,
            start,
            message,
            session_ttl,
            turn_id,
            reset,
        } = request;
        let unreadable = |reason: String| StoreError::Unreadable {
            conversation: key.conversation_id.clone(),
            reason,
        };
        let loaded = match store.load(key).await {
            Ok(loaded) => loaded,
            // A reset writes over whatever is there; the user's variables
            // are not seen by this one turn (they stay stored).
            Err(StoreError::Unreadable { .. }) if reset => StoredConversation::default(),
            Err(error) => return Err(error.into()),
        };
        let session = loaded
            .session
            .as_deref()
            .map(|text| Session::read(text, self).map_err(unreadable));
        if let (Some(Ok(session)), Some(id)) = (&session, turn_id)
            && let Some(replayed) = replay(session, id, key, &loaded)
        {
            return Ok(replayed);
        }
        let state = match session {
            Some(Ok(session)) if !reset => session.state,
            Some(Err(error)) if !reset => return Err(error.into()),
            _ => ConversationState::default(),
        };
        let state = with_user(state, key, &loaded.user_variables);
        let turn = self.run_turn(state, start, message).await?;
        let session_text = session_text(&turn, key, turn_id)?;
        let user_variables: Vec<(&str, &str)> = match key.user_id {
            Some(_) => turn
                .state
                .variables
                .iter()
                .filter(|(name, variable)| {
                    variable.persistence == Persistence::Forever
                        && loaded.user_variables.get(*name) != Some(&variable.value)
                })
                .map(|(name, variable)| (name.as_str(), variable.value.as_str()))
                .collect(),
            None => Vec::new(),
        };
        let bytes = session_text.len() + user_record_bytes(&loaded.user_variables, &user_variables);
        let limit = store.max_conversation_bytes();
        if bytes > limit {
            return Err(StoreError::TooLarge {
                conversation: key.conversation_id.clone(),
                bytes,
                limit,
            }
            .into());
        }
        let saved = store
            .save(SaveConversation {
                key,
                expected_version: loaded.version,
                replace: reset,
                session: session_text,
                session_ttl,
                user_variables,
            })
            .await;
        match saved {
            Ok(version) => Ok(StoredTurn::Ran {
                turn: Box::new(turn),
                version,
            }),
            // The turn that saved first may be this one, sent before and
            // still running when it was sent again.
            Err(StoreError::Conflict { conversation }) => match turn_id {
                Some(id) => self
                    .replay_after_conflict(store, key, id)
                    .await?
                    .ok_or(EngineError::Store(StoreError::Conflict { conversation })),
                None => Err(StoreError::Conflict { conversation }.into()),
            },
            Err(error) => Err(error.into()),
        }
    }

    async fn replay_after_conflict(
        &self,
        store: &dyn StateStore,
        key: &ConversationKey,
        id: &str,
    ) -> Result<Option<StoredTurn>, EngineError> {
        let loaded = store.load(key).await?;
        let Some(Ok(session)) = loaded
            .session
            .as_deref()
            .map(|text| Session::read(text, self))
        else {
            return Ok(None);
        };
        Ok(replay(&session, id, key, &loaded))
    }
}

/// The answer kept for turn `id`, if it is the conversation's last saved
/// turn, with the state as stored now.
fn replay(
    session: &Session,
    id: &str,
    key: &ConversationKey,
    loaded: &StoredConversation,
) -> Option<StoredTurn> {
    let last = session.last_turn.as_ref().filter(|last| last.id == id)?;
    Some(StoredTurn::Replayed {
        answer: last.answer.clone(),
        state: Box::new(with_user(
            session.state.clone(),
            key,
            &loaded.user_variables,
        )),
        version: loaded.version,
    })
}

/// The session a turn leaves ([`SessionForm`]).
fn session_text(
    turn: &Turn,
    key: &ConversationKey,
    turn_id: Option<&str>,
) -> Result<String, StoreError> {
    let session = SessionForm {
        state: turn.state.form(key.user_id.is_none()),
        last_turn: turn_id.map(|id| LastTurnForm { id, answer: turn }),
    };
    // Only a map with other keys than strings fails, and it has none.
    serde_json::to_string(&session).map_err(|error| {
        StoreError::Unavailable(format!("the session could not be written: {error}"))
    })
}

/// The state a turn starts from: the conversation's ids, and the user's
/// "forever" variables where the session holds no value of that name.
fn with_user(
    mut state: ConversationState,
    key: &ConversationKey,
    user_variables: &HashMap<String, String>,
) -> ConversationState {
    state.conversation_id.clone_from(&key.conversation_id);
    state.user_id = key.user_id.clone().unwrap_or_default();
    for (name, value) in user_variables {
        if !state.variables.contains_key(name) {
            state.set(name, value.as_str(), Persistence::Forever);
        }
    }
    state
}

/// The size of a user's record once `written` is saved over `stored`:
/// names and values, in bytes.
fn user_record_bytes(stored: &HashMap<String, String>, written: &[(&str, &str)]) -> usize {
    let stored_bytes: usize = stored
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    written.iter().fold(stored_bytes, |bytes, (name, value)| {
        let replaced = stored.get(*name).map_or(0, |old| name.len() + old.len());
        bytes.saturating_sub(replaced) + name.len() + value.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conversation: &str, user: Option<&str>) -> ConversationKey {
        ConversationKey {
            bot: "bot".to_owned(),
            conversation_id: conversation.to_owned(),
            user_id: user.map(str::to_owned),
        }
    }

    fn save<'a>(key: &'a ConversationKey, expected_version: u64) -> SaveConversation<'a> {
        SaveConversation {
            key,
            expected_version,
            replace: false,
            session: "{}".to_owned(),
            session_ttl: Duration::from_secs(60),
            user_variables: vec![("visits", "1")],
        }
    }

    #[tokio::test]
    async fn the_memory_store_evicts_the_least_recently_used_conversation() {
        let store = MemoryStateStore::new(MemoryStoreLimits {
            max_conversations: 2,
            ..MemoryStoreLimits::default()
        });
        let (a, b, c) = (key("a", None), key("b", None), key("c", None));
        store.save(save(&a, 0)).await.expect("a");
        store.save(save(&b, 0)).await.expect("b");
        // Reading `a` makes `b` the least recently used.
        store.load(&a).await.expect("load a");
        store.save(save(&c, 0)).await.expect("c");
        let version = |loaded: StoredConversation| loaded.version;
        assert_eq!(version(store.load(&a).await.expect("a")), 1);
        assert_eq!(version(store.load(&b).await.expect("b")), 0, "evicted");
        assert_eq!(version(store.load(&c).await.expect("c")), 1);
    }

    #[tokio::test]
    async fn users_records_are_bounded_too() {
        let store = MemoryStateStore::new(MemoryStoreLimits {
            max_conversations: 2,
            ..MemoryStoreLimits::default()
        });
        let keys: Vec<_> = (0..3)
            .map(|i| key(&format!("c{i}"), Some(&format!("u{i}"))))
            .collect();
        for key in &keys {
            store.save(save(key, 0)).await.expect("save");
        }
        let visits = |loaded: StoredConversation| loaded.user_variables.len();
        assert_eq!(visits(store.load(&keys[0]).await.expect("u0")), 0);
        assert_eq!(visits(store.load(&keys[2]).await.expect("u2")), 1);
    }

    #[tokio::test]
    async fn without_a_user_nothing_is_written_under_the_conversation_id() {
        let store = MemoryStateStore::default();
        store
            .save(save(&key("alice", None), 0))
            .await
            .expect("save");
        let alice = store
            .load(&key("other", Some("alice")))
            .await
            .expect("load");
        assert!(alice.user_variables.is_empty(), "{alice:?}");
    }

    #[tokio::test]
    async fn users_records_expire() {
        let kept = MemoryStateStore::default();
        let expired = MemoryStateStore::default().with_user_variables_ttl(Duration::ZERO);
        for (store, expected) in [(&kept, 1), (&expired, 0)] {
            let ada = key("c1", Some("ada"));
            store.save(save(&ada, 0)).await.expect("save");
            let loaded = store.load(&key("c2", Some("ada"))).await.expect("load");
            assert_eq!(loaded.user_variables.len(), expected, "{loaded:?}");
        }
        // A live record is extended by a later turn of the user.
        let ada = key("c3", Some("ada"));
        let mut later = save(&ada, 0);
        later.user_variables = vec![("name", "Ada")];
        kept.save(later).await.expect("save");
        let loaded = kept.load(&ada).await.expect("load");
        assert_eq!(loaded.user_variables.len(), 2, "{loaded:?}");
    }

    #[test]
    fn a_user_record_counts_names_and_values_once() {
        let stored = HashMap::from([("a".to_owned(), "123".to_owned())]);
        assert_eq!(user_record_bytes(&stored, &[]), 4);
        assert_eq!(user_record_bytes(&stored, &[("a", "1")]), 2);
        assert_eq!(user_record_bytes(&stored, &[("bb", "1")]), 7);
    }
}
