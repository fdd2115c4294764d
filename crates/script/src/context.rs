//! The Conversation Context Service as a run sees it: a snapshot of what
//! the store held for the bot, this user and this conversation when the
//! run started ([`ContextSnapshot`], loaded by the engine), and the writes
//! the run made, in order ([`ContextWrite`], written by the engine after
//! the run). Scripts read and write synchronously, as in the product, and
//! never wait on the store: a run's reads see the snapshot and its own
//! earlier writes.

use std::collections::BTreeMap;

/// The most namespaces one bot may register.
pub const CONTEXT_MAX_NAMESPACES: usize = 50;

/// The most properties one namespace holds in one scope record (the
/// bot's global scope, one user's, one conversation's).
pub const CONTEXT_MAX_PROPERTIES: usize = 1000;

/// The largest value, as JSON text, in bytes.
pub const CONTEXT_MAX_VALUE_BYTES: usize = 64 * 1024;

/// The longest property name, in bytes (UTF-8).
pub const CONTEXT_MAX_PROPERTY_BYTES: usize = 256;

/// The longest namespace name, in bytes; names are letters, digits, `_`,
/// `-` and `.`.
pub const CONTEXT_MAX_NAMESPACE_BYTES: usize = 64;

/// The most one scope record holds (every namespace's properties in the
/// bot's global scope, in one user's, in one conversation's): the sum of
/// each property's `namespace:property` name and value (JSON) in bytes.
/// A run's snapshot is at most three of these.
pub const CONTEXT_MAX_RECORD_BYTES: usize = 256 * 1024;

/// The longest a namespace's time to live may be, in seconds (ten years).
pub const CONTEXT_MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;

/// Writes one run may make to the store.
pub const CONTEXT_WRITES_PER_RUN: usize = 1000;

/// The namespaces the product's service reserves for itself: registering
/// one returns false.
pub const CONTEXT_RESERVED_NAMESPACES: &[&str] =
    &["consumer", "operational", "conversation", "custom", "sde"];

/// Whether `name` may be registered as a namespace: 1 to
/// [`CONTEXT_MAX_NAMESPACE_BYTES`] letters, digits, `_`, `-` or `.`, and
/// not one of [`CONTEXT_RESERVED_NAMESPACES`] (in any case).
pub fn valid_namespace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= CONTEXT_MAX_NAMESPACE_BYTES
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
        && !CONTEXT_RESERVED_NAMESPACES
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

/// One scope's data: namespace, then property, to the value as JSON text.
pub type ContextScopeData = BTreeMap<String, BTreeMap<String, String>>;

/// The bytes a scope record's data counts toward
/// [`CONTEXT_MAX_RECORD_BYTES`].
pub fn record_bytes(data: &ContextScopeData) -> usize {
    data.iter()
        .map(|(namespace, properties)| {
            properties
                .iter()
                .map(|(property, value)| entry_bytes(namespace, property, value))
                .sum::<usize>()
        })
        .sum()
}

/// What one property counts toward [`CONTEXT_MAX_RECORD_BYTES`]: its
/// `namespace:property` name and its value.
pub fn entry_bytes(namespace: &str, property: &str, value: &str) -> usize {
    namespace.len() + 1 + property.len() + value.len()
}

/// What the context store held for a run when it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextSnapshot {
    /// Whether the engine loaded the store for this run (it does for
    /// scripts whose source names a context function). A run without a
    /// snapshot that calls one (by a computed name) gets an error saying
    /// so; `isContextApiEnabled` is true either way.
    pub loaded: bool,
    /// Why the store could not be read, when it could not: the run's
    /// updates return false, its reads null, and `isContextApiEnabled`
    /// false.
    pub unavailable: Option<String>,
    /// The bot's namespaces and each one's time to live in seconds (0: its
    /// properties do not expire).
    pub namespaces: BTreeMap<String, u64>,
    /// The bot's global scope.
    pub global: ContextScopeData,
    /// This user's scope; `None` when the turn names neither a user nor a
    /// conversation.
    pub user: Option<ContextScopeData>,
    /// This conversation's scope; `None` when the turn names no
    /// conversation.
    pub conversation: Option<ContextScopeData>,
}

impl ContextSnapshot {
    /// A loaded snapshot of empty scopes: the global scope, a user's and a
    /// conversation's.
    pub fn empty() -> Self {
        Self {
            loaded: true,
            user: Some(ContextScopeData::new()),
            conversation: Some(ContextScopeData::new()),
            ..Self::default()
        }
    }

    /// A loaded snapshot for a run the store could not be read for.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            loaded: true,
            unavailable: Some(reason.into()),
            ..Self::default()
        }
    }

    /// The data of `scope`, if the run has that scope.
    pub fn scope(&self, scope: ContextScope) -> Option<&ContextScopeData> {
        match scope {
            ContextScope::Global => Some(&self.global),
            ContextScope::User => self.user.as_ref(),
            ContextScope::Conversation => self.conversation.as_ref(),
        }
    }

    /// The data of `scope`, to change, if the run has that scope.
    pub fn scope_mut(&mut self, scope: ContextScope) -> Option<&mut ContextScopeData> {
        match scope {
            ContextScope::Global => Some(&mut self.global),
            ContextScope::User => self.user.as_mut(),
            ContextScope::Conversation => self.conversation.as_mut(),
        }
    }
}

/// A scope of the Conversation Context Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContextScope {
    /// The bot's: every conversation sees it.
    Global,
    /// The user's: every conversation of the user sees it (the
    /// conversation's own when the turn names no user).
    User,
    /// The conversation's.
    Conversation,
}

impl ContextScope {
    /// The scope's name in messages and store keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::User => "user",
            Self::Conversation => "conversation",
        }
    }
}

/// One write a run made to the context store, in the order it made them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextWrite {
    /// `registerContextNamespace`: creates the namespace, or sets the time
    /// to live of an existing one when `ttl_seconds` is given.
    RegisterNamespace {
        /// The namespace.
        namespace: String,
        /// Its time to live in seconds, if given (0: no expiry).
        ttl_seconds: Option<u64>,
    },
    /// `deleteContextNamespace`: the namespace and its data in every
    /// scope.
    DeleteNamespace {
        /// The namespace.
        namespace: String,
    },
    /// `setGlobalContextData`, `setContextDataForUser`,
    /// `setContextDataForConversation`.
    Set {
        /// Where.
        scope: ContextScope,
        /// The namespace.
        namespace: String,
        /// The property.
        property: String,
        /// Its value, as JSON text.
        value: String,
    },
    /// `deleteGlobalContextData`, `deleteContextDataForUser`,
    /// `deleteContextDataForConversation`.
    Delete {
        /// Where.
        scope: ContextScope,
        /// The namespace.
        namespace: String,
        /// The property.
        property: String,
    },
    /// `deleteAllContextDataForUser`, `deleteAllContextDataForConversation`.
    DeleteAll {
        /// Where.
        scope: ContextScope,
        /// The namespace.
        namespace: String,
    },
}

impl ContextWrite {
    /// The namespace it is about.
    pub fn namespace(&self) -> &str {
        match self {
            Self::RegisterNamespace { namespace, .. }
            | Self::DeleteNamespace { namespace }
            | Self::Set { namespace, .. }
            | Self::Delete { namespace, .. }
            | Self::DeleteAll { namespace, .. } => namespace,
        }
    }

    /// The script function that made it, for messages.
    pub fn function(&self) -> &'static str {
        match self {
            Self::RegisterNamespace { .. } => "registerContextNamespace",
            Self::DeleteNamespace { .. } => "deleteContextNamespace",
            Self::Set { scope, .. } => match scope {
                ContextScope::Global => "setGlobalContextData",
                ContextScope::User => "setContextDataForUser",
                ContextScope::Conversation => "setContextDataForConversation",
            },
            Self::Delete { scope, .. } => match scope {
                ContextScope::Global => "deleteGlobalContextData",
                ContextScope::User => "deleteContextDataForUser",
                ContextScope::Conversation => "deleteContextDataForConversation",
            },
            Self::DeleteAll { scope, .. } => match scope {
                // No function deletes a whole namespace's global data.
                ContextScope::Global => "deleteContextNamespace",
                ContextScope::User => "deleteAllContextDataForUser",
                ContextScope::Conversation => "deleteAllContextDataForConversation",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        assert!(valid_namespace("airlineTicketingBot"));
        assert!(valid_namespace("a.b-c_1"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("has space"));
        assert!(!valid_namespace("colon:inside"));
        assert!(!valid_namespace(
            &"n".repeat(CONTEXT_MAX_NAMESPACE_BYTES + 1)
        ));
        for reserved in CONTEXT_RESERVED_NAMESPACES {
            assert!(!valid_namespace(reserved));
            assert!(!valid_namespace(&reserved.to_uppercase()));
        }
    }
}
