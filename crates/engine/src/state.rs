//! Conversation state: a plain value that travels with each turn.

use std::collections::HashMap;

use patchbay_rules::Fields;
use patchbay_script::Persistence;

/// A bot variable and how long it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// Its value.
    pub value: String,
    /// How long it lives.
    pub persistence: Persistence,
}

/// Everything a conversation carries from turn to turn.
#[derive(Clone, Debug, Default)]
pub struct ConversationState {
    /// The conversation's id.
    pub conversation_id: String,
    /// The user's id for the bot (`chatBotUserId`).
    pub user_id: String,
    /// The user's id on their platform.
    pub platform_user_id: String,
    /// The user's first name.
    pub first_name: String,
    /// Bot variables.
    pub variables: HashMap<String, Variable>,
    /// Custom data fields of the integrations that ran.
    pub fields: Fields,
}

impl ConversationState {
    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>, persistence: Persistence) {
        self.variables.insert(
            name.to_owned(),
            Variable {
                value: value.into(),
                persistence,
            },
        );
    }

    /// The variables as plain strings.
    pub fn values(&self) -> HashMap<String, String> {
        self.variables
            .iter()
            .map(|(name, variable)| (name.clone(), variable.value.clone()))
            .collect()
    }

    /// Drops what lives for one turn only.
    pub(crate) fn end_turn(&mut self) {
        self.variables
            .retain(|_, variable| variable.persistence != Persistence::Request);
    }
}
