//! The Conversation Context Service: a store of namespaced properties in
//! three scopes (the bot's global scope, a user's, a conversation's), the
//! in-memory default, and how a turn uses it.
//!
//! Scripts read and write synchronously, as in the product, and never wait
//! on the store: before a script runs, the engine loads what it may read (a
//! [`ContextSnapshot`]: the bot's namespaces and the three scope records of
//! the turn), and after it ends, writes what it did, in order, in one
//! atomic step per run ([`ContextStore::write`]). Only scripts whose source
//! names a context function ([`uses_context_store`]) pay for the load.
//!
//! Keys are per bot: two bots never see each other's namespaces. The user
//! scope is the turn's user (`ConversationState::user_id`); a turn without
//! one keeps its user scope under its conversation instead, in a record of
//! its own (a conversation id never stands in for a user's id). A
//! namespace's time to live applies to the properties written after it was
//! set. Deleting a namespace deletes its data in every scope: the
//! namespace gets a new generation when registered again, and data of an
//! old generation is never read (records of other users and conversations
//! drop it when next written, or when they expire).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use patchbay_config::{BOT_CONTEXT_FUNCTIONS, Provision};
use patchbay_credentials::BoxFuture;
use patchbay_script::{
    CONTEXT_MAX_NAMESPACES, CONTEXT_MAX_PROPERTIES, CONTEXT_MAX_RECORD_BYTES, ContextScope,
    ContextScopeData, ContextSnapshot, ContextWrite, entry_bytes,
};

use crate::engine::Engine;
use crate::state::ConversationState;
use crate::trace::StepTrace;

/// Whose context a turn reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContextKey {
    /// The bot's name: namespaces and data are the bot's own.
    pub bot: String,
    /// Whose user scope: `None` when the turn names neither a user nor a
    /// conversation.
    pub user: Option<ContextUser>,
    /// The conversation's id; `None` when the turn names none.
    pub conversation: Option<String>,
}

/// Whose user scope a turn has.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContextUser {
    /// The user's (`chatBotUserId`): every conversation of the user.
    User(String),
    /// A turn without a user: its conversation's, in a record apart from
    /// the conversation scope and from every user's.
    Conversation(String),
}

impl ContextKey {
    /// The key of a turn of `bot` on `state`.
    pub fn of(bot: &str, state: &ConversationState) -> Self {
        let conversation =
            (!state.conversation_id.is_empty()).then(|| state.conversation_id.clone());
        let user = if state.user_id.is_empty() {
            conversation.clone().map(ContextUser::Conversation)
        } else {
            Some(ContextUser::User(state.user_id.clone()))
        };
        Self {
            bot: bot.to_owned(),
            user,
            conversation,
        }
    }

    /// The record of `scope`, if the turn has it.
    pub fn record(&self, scope: ContextScope) -> Option<RecordId> {
        match scope {
            ContextScope::Global => Some(RecordId::Global),
            ContextScope::User => self.user.clone().map(|user| match user {
                ContextUser::User(id) => RecordId::User(id),
                ContextUser::Conversation(id) => RecordId::ConversationUser(id),
            }),
            ContextScope::Conversation => self.conversation.clone().map(RecordId::Conversation),
        }
    }
}

/// One scope record of a bot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordId {
    /// The bot's global scope.
    Global,
    /// A user's scope.
    User(String),
    /// The user scope of a conversation without a user.
    ConversationUser(String),
    /// A conversation's scope.
    Conversation(String),
}

/// A write the store did not make, though the script was told it would:
/// another turn changed the namespace or filled the scope meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextRefusal {
    /// Its index in the run's writes.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// Why the context store could not load or write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextStoreError {
    /// The store did not answer, or refused, before anything was written.
    #[error("the context store is unavailable: {0}")]
    Unavailable(String),
    /// The write was sent but its answer never came: it may or may not
    /// have been made.
    #[error(
        "the context store did not confirm the write, so it may or may not have been made: {0}"
    )]
    OutcomeUnknown(String),
}

/// Where context data lives: in this process's memory
/// ([`MemoryContextStore`], the default) or shared by replicas (Redis).
pub trait ContextStore: Send + Sync + std::fmt::Debug + 'static {
    /// The bot's namespaces and, for each scope the key has, the live
    /// properties of its record.
    fn load<'a>(
        &'a self,
        key: &'a ContextKey,
    ) -> BoxFuture<'a, Result<ContextSnapshot, ContextStoreError>>;

    /// Makes `writes` in order, in one atomic step; returns those it
    /// refused (a set on a namespace no longer registered, a bound passed
    /// because of another turn's writes).
    fn write<'a>(
        &'a self,
        key: &'a ContextKey,
        writes: &'a [ContextWrite],
    ) -> BoxFuture<'a, Result<Vec<ContextRefusal>, ContextStoreError>>;
}

/// Whether a script's source names a function of the Conversation Context
/// Service other than `isContextApiEnabled` (which needs no data): the
/// engine loads the store only for those.
pub fn uses_context_store(source: &str) -> bool {
    BOT_CONTEXT_FUNCTIONS
        .iter()
        .filter(|function| {
            function.provision == Provision::ContextService
                && function.name != "isContextApiEnabled"
        })
        .any(|function| source.contains(function.name))
}

/// Milliseconds since the Unix epoch, as the memory store's clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A registered namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Namespace {
    /// Bumped each time the name is registered anew after a delete: data
    /// of another generation is not the namespace's.
    generation: u64,
    /// Its time to live in seconds (0: none).
    ttl_seconds: u64,
}

/// A bot's namespaces.
#[derive(Debug, Default)]
struct Registry {
    last_generation: u64,
    namespaces: BTreeMap<String, Namespace>,
}

/// A property's value, its namespace's generation and when it expires.
#[derive(Clone, Debug)]
struct Entry {
    generation: u64,
    /// Milliseconds since the Unix epoch; 0: never.
    expires_ms: u64,
    value: String,
}

/// One scope record: (namespace, property) to the entry.
#[derive(Clone, Debug, Default)]
struct Record {
    entries: BTreeMap<(String, String), Entry>,
    /// What its entries count toward [`CONTEXT_MAX_RECORD_BYTES`].
    bytes: usize,
}

impl Record {
    /// Drops what is not live: expired, or of a namespace no longer
    /// registered in that generation.
    fn clean(&mut self, registry: &Registry, now: u64) {
        let bytes = &mut self.bytes;
        self.entries.retain(|(namespace, property), entry| {
            let live = registry
                .namespaces
                .get(namespace)
                .is_some_and(|registered| registered.generation == entry.generation)
                && (entry.expires_ms == 0 || entry.expires_ms > now);
            if !live {
                *bytes -= entry_bytes(namespace, property, &entry.value);
            }
            live
        });
    }

    fn properties(&self, namespace: &str) -> usize {
        self.entries
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((name, _), _)| name == namespace)
            .count()
    }

    fn remove(&mut self, namespace: &str, property: &str) {
        let key = (namespace.to_owned(), property.to_owned());
        if let Some(entry) = self.entries.remove(&key) {
            self.bytes -= entry_bytes(namespace, property, &entry.value);
        }
    }

    fn remove_namespace(&mut self, namespace: &str) {
        let bytes = &mut self.bytes;
        self.entries.retain(|(name, property), entry| {
            let keep = name != namespace;
            if !keep {
                *bytes -= entry_bytes(name, property, &entry.value);
            }
            keep
        });
    }

    fn data(&self) -> ContextScopeData {
        let mut data = ContextScopeData::new();
        for ((namespace, property), entry) in &self.entries {
            data.entry(namespace.clone())
                .or_default()
                .insert(property.clone(), entry.value.clone());
        }
        data
    }
}

/// Makes `writes` on a bot's registry and the records of the key's scopes
/// (already cleaned), in order; returns the refusals. The same rules as
/// the Redis store's script.
fn apply(
    registry: &mut Registry,
    records: &mut BTreeMap<ContextScope, Record>,
    writes: &[ContextWrite],
    now: u64,
) -> Vec<ContextRefusal> {
    let mut refusals = Vec::new();
    let mut refuse = |index: usize, reason: String| refusals.push(ContextRefusal { index, reason });
    for (index, write) in writes.iter().enumerate() {
        match write {
            ContextWrite::RegisterNamespace {
                namespace,
                ttl_seconds,
            } => {
                if let Some(registered) = registry.namespaces.get_mut(namespace) {
                    if let Some(ttl) = ttl_seconds {
                        registered.ttl_seconds = *ttl;
                    }
                } else if registry.namespaces.len() >= CONTEXT_MAX_NAMESPACES {
                    refuse(
                        index,
                        format!("the bot has {CONTEXT_MAX_NAMESPACES} namespaces, the most it may"),
                    );
                } else {
                    registry.last_generation += 1;
                    registry.namespaces.insert(
                        namespace.clone(),
                        Namespace {
                            generation: registry.last_generation,
                            ttl_seconds: ttl_seconds.unwrap_or(0),
                        },
                    );
                }
            }
            ContextWrite::DeleteNamespace { namespace } => {
                registry.namespaces.remove(namespace);
                for record in records.values_mut() {
                    record.remove_namespace(namespace);
                }
            }
            ContextWrite::Set {
                scope,
                namespace,
                property,
                value,
            } => {
                let Some(registered) = registry.namespaces.get(namespace).copied() else {
                    refuse(index, not_registered(namespace));
                    continue;
                };
                let Some(record) = records.get_mut(scope) else {
                    refuse(index, no_scope(*scope));
                    continue;
                };
                let key = (namespace.clone(), property.clone());
                let old = record
                    .entries
                    .get(&key)
                    .map(|old| entry_bytes(namespace, property, &old.value));
                if old.is_none() && record.properties(namespace) >= CONTEXT_MAX_PROPERTIES {
                    refuse(index, too_many_properties(namespace, *scope));
                    continue;
                }
                let bytes =
                    record.bytes - old.unwrap_or(0) + entry_bytes(namespace, property, value);
                if bytes > CONTEXT_MAX_RECORD_BYTES {
                    refuse(index, too_large(*scope, bytes));
                    continue;
                }
                record.bytes = bytes;
                let expires_ms = match registered.ttl_seconds {
                    0 => 0,
                    ttl => now.saturating_add(ttl.saturating_mul(1000)),
                };
                record.entries.insert(
                    key,
                    Entry {
                        generation: registered.generation,
                        expires_ms,
                        value: value.clone(),
                    },
                );
            }
            ContextWrite::Delete {
                scope,
                namespace,
                property,
            } => {
                if let Some(record) = records.get_mut(scope) {
                    record.remove(namespace, property);
                }
            }
            ContextWrite::DeleteAll { scope, namespace } => {
                if let Some(record) = records.get_mut(scope) {
                    record.remove_namespace(namespace);
                }
            }
        }
    }
    refusals
}

fn not_registered(namespace: &str) -> String {
    format!("namespace `{namespace}` is no longer registered (another turn deleted it)")
}

fn no_scope(scope: ContextScope) -> String {
    format!("the turn has no {} scope", scope.name())
}

fn too_many_properties(namespace: &str, scope: ContextScope) -> String {
    format!(
        "namespace `{namespace}` holds {CONTEXT_MAX_PROPERTIES} properties in the {} scope, the most it may",
        scope.name()
    )
}

fn too_large(scope: ContextScope, bytes: usize) -> String {
    format!(
        "the {} scope would hold {bytes} bytes, more than the {CONTEXT_MAX_RECORD_BYTES} it may",
        scope.name()
    )
}

/// What the memory store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryContextLimits {
    /// Scope records kept for each bot (its global scope, users',
    /// conversations'); past that its least recently used is evicted.
    pub max_records: usize,
    /// Bytes kept in a bot's records together (each at most
    /// [`CONTEXT_MAX_RECORD_BYTES`]); past that its least recently used
    /// records are evicted.
    pub max_bytes: usize,
}

impl Default for MemoryContextLimits {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Context data in this process's memory: the default, for one replica.
/// Bounded ([`MemoryContextLimits`]): the least recently used records are
/// evicted (counted in `patchbay_context_records_evicted_total`). Lost
/// when the process ends; use Redis (`serve --store`) to keep it.
///
/// Each bot has its own records and its own limits: one bot (or callers
/// driving one bot through many users and conversations) can only evict
/// its own data, never another bot's.
#[derive(Debug)]
pub struct MemoryContextStore {
    inner: Mutex<HashMap<String, Memory>>,
    limits: MemoryContextLimits,
}

impl Default for MemoryContextStore {
    fn default() -> Self {
        Self::new(MemoryContextLimits::default())
    }
}

type MemoryKey = (String, RecordId);

#[derive(Debug, Default)]
struct Memory {
    registries: HashMap<String, Registry>,
    records: HashMap<MemoryKey, (u64, Record)>,
    by_use: BTreeMap<u64, MemoryKey>,
    clock: u64,
    bytes: usize,
}

impl Memory {
    /// The record, cleaned and marked as just used.
    fn touch(&mut self, key: &MemoryKey, now: u64) -> Option<&Record> {
        let registry = self.registries.get(&key.0);
        let (used, record) = self.records.get_mut(key)?;
        self.clock += 1;
        self.by_use.remove(used);
        *used = self.clock;
        self.by_use.insert(self.clock, key.clone());
        let before = record.bytes;
        match registry {
            Some(registry) => record.clean(registry, now),
            None => *record = Record::default(),
        }
        self.bytes -= before - record.bytes;
        Some(record)
    }

    fn take(&mut self, key: &MemoryKey) -> Option<Record> {
        let (used, record) = self.records.remove(key)?;
        self.by_use.remove(&used);
        self.bytes -= record.bytes;
        Some(record)
    }

    fn put(&mut self, key: MemoryKey, record: Record, limits: MemoryContextLimits) {
        if record.entries.is_empty() {
            return;
        }
        self.clock += 1;
        self.bytes += record.bytes;
        self.by_use.insert(self.clock, key.clone());
        self.records.insert(key, (self.clock, record));
        let mut evicted = 0_u64;
        while self.records.len() > limits.max_records.max(1) || self.bytes > limits.max_bytes {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, record)) = self.records.remove(&oldest) {
                self.bytes -= record.bytes;
            }
            evicted += 1;
        }
        if evicted > 0 {
            metrics::counter!("patchbay_context_records_evicted_total").increment(evicted);
        }
    }
}

impl MemoryContextStore {
    /// A store within `limits`.
    pub fn new(limits: MemoryContextLimits) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const SCOPES: [ContextScope; 3] = [
    ContextScope::Global,
    ContextScope::User,
    ContextScope::Conversation,
];

impl ContextStore for MemoryContextStore {
    fn load<'a>(
        &'a self,
        key: &'a ContextKey,
    ) -> BoxFuture<'a, Result<ContextSnapshot, ContextStoreError>> {
        let now = now_ms();
        let mut bots = self.memory();
        let memory = bots.entry(key.bot.clone()).or_default();
        let namespaces = memory
            .registries
            .get(&key.bot)
            .map(|registry| {
                registry
                    .namespaces
                    .iter()
                    .map(|(name, namespace)| (name.clone(), namespace.ttl_seconds))
                    .collect()
            })
            .unwrap_or_default();
        let mut snapshot = ContextSnapshot {
            loaded: true,
            namespaces,
            ..ContextSnapshot::default()
        };
        for scope in SCOPES {
            let Some(record) = key.record(scope) else {
                continue;
            };
            let data = memory
                .touch(&(key.bot.clone(), record), now)
                .map(Record::data)
                .unwrap_or_default();
            match scope {
                ContextScope::Global => snapshot.global = data,
                ContextScope::User => snapshot.user = Some(data),
                ContextScope::Conversation => snapshot.conversation = Some(data),
            }
        }
        Box::pin(std::future::ready(Ok(snapshot)))
    }

    fn write<'a>(
        &'a self,
        key: &'a ContextKey,
        writes: &'a [ContextWrite],
    ) -> BoxFuture<'a, Result<Vec<ContextRefusal>, ContextStoreError>> {
        let now = now_ms();
        let mut bots = self.memory();
        let memory = bots.entry(key.bot.clone()).or_default();
        let mut registry = memory.registries.remove(&key.bot).unwrap_or_default();
        let mut records = BTreeMap::new();
        // Only the records the writes are about (all of the key's for a
        // namespace deleted): the others stay as recently used as they were.
        let touched = |scope: ContextScope| {
            writes.iter().any(|write| match write {
                ContextWrite::RegisterNamespace { .. } => false,
                ContextWrite::DeleteNamespace { .. } => true,
                ContextWrite::Set { scope: at, .. }
                | ContextWrite::Delete { scope: at, .. }
                | ContextWrite::DeleteAll { scope: at, .. } => *at == scope,
            })
        };
        for scope in SCOPES.into_iter().filter(|scope| touched(*scope)) {
            if let Some(id) = key.record(scope) {
                let mut record = memory.take(&(key.bot.clone(), id)).unwrap_or_default();
                record.clean(&registry, now);
                records.insert(scope, record);
            }
        }
        let refusals = apply(&mut registry, &mut records, writes, now);
        for (scope, record) in records {
            if let Some(id) = key.record(scope) {
                memory.put((key.bot.clone(), id), record, self.limits);
            }
        }
        if !registry.namespaces.is_empty() || registry.last_generation > 0 {
            memory.registries.insert(key.bot.clone(), registry);
        }
        Box::pin(std::future::ready(Ok(refusals)))
    }
}

impl Engine {
    /// The snapshot a script gets: loaded when its source names a context
    /// function; an unavailable one (updates false, reads null) when the
    /// store could not be read, with the error in the trace.
    pub(crate) async fn context_snapshot(
        &self,
        uses_context: bool,
        owner: &str,
        state: &ConversationState,
        trace: &mut StepTrace,
    ) -> ContextSnapshot {
        if !uses_context {
            return ContextSnapshot::default();
        }
        let key = ContextKey::of(&self.bot.name, state);
        match self.context_store.load(&key).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, "context store load failed");
                trace.script_errors.push(format!(
                    "{owner}: {error}; its context functions returned false and null"
                ));
                ContextSnapshot::unavailable(error.to_string())
            }
        }
    }

    /// Writes what a script did to the context store, after the run; what
    /// the store refused or could not take is a script error in the trace.
    pub(crate) async fn write_context(
        &self,
        owner: &str,
        state: &ConversationState,
        writes: &[ContextWrite],
        trace: &mut StepTrace,
    ) {
        if writes.is_empty() {
            return;
        }
        let key = ContextKey::of(&self.bot.name, state);
        match self.context_store.write(&key, writes).await {
            Ok(refusals) => {
                for refusal in refusals {
                    let function = writes
                        .get(refusal.index)
                        .map_or("a context function", ContextWrite::function);
                    tracing::warn!(function, reason = %refusal.reason, "context write refused");
                    trace.script_errors.push(format!(
                        "{owner}: botContext.{function} returned true, but the context store refused the write: {}",
                        refusal.reason
                    ));
                }
            }
            Err(error) => {
                tracing::warn!(%error, writes = writes.len(), "context store write failed");
                let count = writes.len();
                let (writes, was) = if count == 1 {
                    ("write", "was")
                } else {
                    ("writes", "were")
                };
                let outcome = match error {
                    ContextStoreError::OutcomeUnknown(_) => "may not have been made",
                    _ => &format!("{was} not made"),
                };
                trace.script_errors.push(format!(
                    "{owner}: {count} context store {writes} of this script {outcome}: {error}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str, conversation: &str) -> ContextKey {
        ContextKey::of(
            "bot",
            &ConversationState {
                conversation_id: conversation.to_owned(),
                user_id: user.to_owned(),
                ..ConversationState::default()
            },
        )
    }

    fn set(scope: ContextScope, namespace: &str, property: &str, value: &str) -> ContextWrite {
        ContextWrite::Set {
            scope,
            namespace: namespace.to_owned(),
            property: property.to_owned(),
            value: value.to_owned(),
        }
    }

    fn register(namespace: &str, ttl_seconds: Option<u64>) -> ContextWrite {
        ContextWrite::RegisterNamespace {
            namespace: namespace.to_owned(),
            ttl_seconds,
        }
    }

    #[test]
    fn the_user_scope_of_a_turn_without_a_user_is_its_conversation() {
        let key = key("", "c1");
        assert_eq!(
            key.record(ContextScope::User),
            Some(RecordId::ConversationUser("c1".to_owned()))
        );
        assert_eq!(
            key.record(ContextScope::Conversation),
            Some(RecordId::Conversation("c1".to_owned()))
        );
        let nobody = super::tests::key("", "");
        assert_eq!(nobody.record(ContextScope::User), None);
        assert_eq!(nobody.record(ContextScope::Conversation), None);
        assert_eq!(nobody.record(ContextScope::Global), Some(RecordId::Global));
    }

    #[test]
    fn scripts_naming_a_context_function_load_the_store() {
        assert!(uses_context_store("botContext.getContextDataForUser('n')"));
        assert!(uses_context_store(
            "var bc = botContext; bc.registerContextNamespace('n');"
        ));
        assert!(!uses_context_store("botContext.isContextApiEnabled()"));
        assert!(!uses_context_store("botContext.sendMessage('hi')"));
    }

    #[tokio::test]
    async fn a_deleted_namespace_takes_its_data_in_every_scope() {
        let store = MemoryContextStore::default();
        let ada = key("ada", "c1");
        let bob = key("bob", "c2");
        let refused = store
            .write(
                &ada,
                &[register("n", None), set(ContextScope::User, "n", "p", "1")],
            )
            .await
            .expect("write");
        assert!(refused.is_empty(), "{refused:?}");
        store
            .write(&bob, &[set(ContextScope::User, "n", "p", "2")])
            .await
            .expect("write");
        // Deleted through Ada's turn, registered again: Bob's old value is
        // of the old generation.
        store
            .write(
                &ada,
                &[
                    ContextWrite::DeleteNamespace {
                        namespace: "n".to_owned(),
                    },
                    register("n", None),
                ],
            )
            .await
            .expect("write");
        let loaded = store.load(&bob).await.expect("load");
        assert_eq!(loaded.namespaces.len(), 1);
        assert_eq!(loaded.user, Some(ContextScopeData::new()), "{loaded:?}");
    }

    #[tokio::test]
    async fn the_store_refuses_a_set_on_a_namespace_another_turn_deleted() {
        let store = MemoryContextStore::default();
        let ada = key("ada", "c1");
        let refused = store
            .write(&ada, &[set(ContextScope::Global, "gone", "p", "1")])
            .await
            .expect("write");
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].reason.contains("no longer registered"),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn the_memory_store_evicts_the_least_recently_used_record() {
        let store = MemoryContextStore::new(MemoryContextLimits {
            max_records: 2,
            ..MemoryContextLimits::default()
        });
        let global = key("", "");
        store
            .write(
                &global,
                &[
                    register("n", None),
                    set(ContextScope::Global, "n", "p", "1"),
                ],
            )
            .await
            .expect("write");
        for user in ["u1", "u2"] {
            store
                .write(&key(user, ""), &[set(ContextScope::User, "n", "p", "1")])
                .await
                .expect("write");
        }
        // Two records kept: the global one was the least recently used.
        assert!(store.load(&global).await.expect("load").global.is_empty());
        let u2 = store.load(&key("u2", "")).await.expect("load");
        assert_eq!(u2.user.expect("user scope").len(), 1);
    }

    /// Callers driving one bot through many users (or a hostile bot
    /// writing many records) evict only that bot's data.
    #[tokio::test]
    async fn one_bot_filling_the_memory_store_evicts_only_its_own_records() {
        let store = MemoryContextStore::new(MemoryContextLimits {
            max_records: 2,
            ..MemoryContextLimits::default()
        });
        let of = |bot: &str, user: &str| {
            ContextKey::of(
                bot,
                &ConversationState {
                    user_id: user.to_owned(),
                    ..ConversationState::default()
                },
            )
        };
        let victim = of("victim", "alice");
        store
            .write(
                &victim,
                &[
                    register("n", None),
                    set(ContextScope::Global, "n", "p", "1"),
                    set(ContextScope::User, "n", "p", "1"),
                ],
            )
            .await
            .expect("write");
        store
            .write(&of("evil", ""), &[register("n", None)])
            .await
            .expect("write");
        for user in 0..20 {
            store
                .write(
                    &of("evil", &format!("u{user}")),
                    &[set(ContextScope::User, "n", "p", "1")],
                )
                .await
                .expect("write");
        }
        let kept = store.load(&victim).await.expect("load");
        assert_eq!(kept.global.len(), 1, "the victim's global scope");
        assert_eq!(kept.user.expect("user scope").len(), 1, "alice's");
    }

    #[tokio::test]
    async fn properties_expire_with_the_ttl_they_were_written_under() {
        let store = MemoryContextStore::default();
        let ada = key("ada", "c1");
        store
            .write(
                &ada,
                &[
                    register("n", Some(0)),
                    set(ContextScope::Conversation, "n", "kept", "1"),
                    register("n", Some(1)),
                    set(ContextScope::Conversation, "n", "short", "1"),
                ],
            )
            .await
            .expect("write");
        let now = store.load(&ada).await.expect("load");
        assert_eq!(now.conversation.expect("scope")["n"].len(), 2);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let later = store.load(&ada).await.expect("load");
        let data = later.conversation.expect("scope");
        assert_eq!(data["n"].keys().collect::<Vec<_>>(), ["kept"], "{data:?}");
        assert_eq!(later.namespaces["n"], 1, "the namespace outlives its ttl");
    }
}
