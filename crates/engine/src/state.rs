//! Conversation state: a plain value that travels with each turn.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use patchbay_config::Bot;
use patchbay_rules::{FieldValue, Fields};
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
    /// Where the conversation waits: the question whose answer the next
    /// message is, set by the turn that asked. A turn from
    /// [`crate::Start::Message`] hands the message to that question's rules
    /// instead of picking a dialog by its starters; every turn replaces it
    /// (`None` when the turn did not end waiting).
    pub waiting_at: Option<String>,
    /// Slots of the dialogs the conversation is in, by dialog name; a
    /// dialog's are dropped when it ends.
    pub slots: HashMap<String, HashMap<String, String>>,
    /// Variables captured with `scope: dialog`, by dialog name; dropped
    /// when it ends.
    pub dialog_variables: HashMap<String, Vec<String>>,
    /// How many answers in a row the waiting question's rules did not
    /// take.
    pub no_match_count: u32,
    /// Questions whose dialogs were left for another (a context switch, the
    /// fallback dialog), latest last: when the dialog now running ends, the
    /// latest is asked again.
    pub return_to: Vec<String>,
    /// The dialog the turn is in, as the engine walks (not part of the
    /// JSON form: a turn starts from `waiting_at`).
    pub dialog: Option<String>,
    /// What the platform sent with the conversation's turns (their
    /// attributes, each turn's set over the ones before, member by
    /// member).
    pub attributes: crate::Attributes,
    /// The dialog whose starter matched this turn's message (the turn
    /// started from the starters, or switched context), as the engine
    /// walks (not part of the JSON form).
    pub dialog_starter: Option<String>,
}

/// The most questions [`ConversationState::return_to`] holds; older ones
/// are forgotten.
pub const MAX_RETURN_TO: usize = 8;

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

    /// Gives each of the bot's `variables` its initial value where the
    /// state holds no variable of that name: a value the conversation (or
    /// the user's "forever" variables) holds wins. The value lives for the
    /// turn only and is given again each turn, so it is never saved: a
    /// saved copy would hide a "forever" value the user gets later.
    pub(crate) fn start_from_bot_variables(&mut self, bot: &Bot) {
        for (name, value) in &bot.variables {
            if !self.variables.contains_key(name) {
                self.set(name, value.as_str(), Persistence::Request);
            }
        }
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

    /// Drops what lives as long as `dialog`: its slots and its dialog
    /// variables.
    pub(crate) fn end_dialog(&mut self, dialog: &str) {
        self.slots.remove(dialog);
        for name in self.dialog_variables.remove(dialog).unwrap_or_default() {
            self.variables.remove(&name);
        }
    }

    /// The slots of the dialog the turn is in.
    pub(crate) fn current_slots(&self) -> &HashMap<String, String> {
        static NONE: std::sync::LazyLock<HashMap<String, String>> =
            std::sync::LazyLock::new(HashMap::new);
        self.dialog
            .as_ref()
            .and_then(|dialog| self.slots.get(dialog))
            .unwrap_or(&NONE)
    }

    /// Remembers a question to ask again when the dialog entered now ends.
    pub(crate) fn push_return(&mut self, question: &str) {
        // Asked again once, from where it was left last.
        self.return_to.retain(|waiting| waiting != question);
        if self.return_to.len() >= MAX_RETURN_TO {
            self.return_to.remove(0);
        }
        self.return_to.push(question.to_owned());
    }
}

/// The state's JSON form as read: what `serve` returns and takes back.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateJson {
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    platform_user_id: String,
    #[serde(default)]
    first_name: String,
    /// Session variables.
    #[serde(default)]
    variables: BTreeMap<String, String>,
    /// Variables kept per user, across conversations.
    #[serde(default)]
    user_variables: BTreeMap<String, String>,
    #[serde(default)]
    fields: IndexMap<String, FieldJson>,
    /// Where the conversation waits (absent when it does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waiting_at: Option<String>,
    /// Slots by dialog.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    slots: BTreeMap<String, BTreeMap<String, String>>,
    /// Dialog-scoped variable names by dialog.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dialog_variables: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    no_match_count: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    return_to: Vec<String>,
    /// The platform's attributes (absent when none were sent).
    #[serde(default, skip_serializing_if = "crate::Attributes::is_empty")]
    attributes: crate::Attributes,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(count: &u32) -> bool {
    *count == 0
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FieldJson {
    One(String),
    Many(Vec<String>),
}

/// [`StateJson`] borrowed from a state, to write it without copying.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateForm<'a> {
    conversation_id: &'a str,
    user_id: &'a str,
    platform_user_id: &'a str,
    first_name: &'a str,
    variables: BTreeMap<&'a str, &'a str>,
    /// `None` where a user record keeps them (a stored session).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_variables: Option<BTreeMap<&'a str, &'a str>>,
    fields: crate::trace::FieldsForm<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_at: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    slots: BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    dialog_variables: BTreeMap<&'a str, &'a [String]>,
    #[serde(skip_serializing_if = "is_zero")]
    no_match_count: u32,
    #[serde(skip_serializing_if = "no_questions")]
    return_to: &'a [String],
    #[serde(skip_serializing_if = "no_attributes")]
    attributes: &'a crate::Attributes,
}

fn no_questions(questions: &&[String]) -> bool {
    questions.is_empty()
}

fn no_attributes(attributes: &&crate::Attributes) -> bool {
    attributes.is_empty()
}

/// The state as JSON: `conversationId`, `userId`, `platformUserId`,
/// `firstName`, `variables` (session), `userVariables` (kept per user),
/// `fields` (`"RDVN.key"` to a string or an array), `waitingAt` (the
/// question the next message answers, when the conversation waits),
/// `slots` (by dialog), `dialogVariables`, `noMatchCount` and `returnTo`
/// (when set), `attributes` (when any were sent). Request variables are
/// not part of it: they end with the turn. [`ConversationState::from_json`]
/// reads it back.
impl serde::Serialize for ConversationState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&self.form(true), serializer)
    }
}

impl ConversationState {
    /// The state's JSON form (see its `Serialize`), with or without
    /// `userVariables`.
    pub(crate) fn form(&self, with_user_variables: bool) -> StateForm<'_> {
        let mut variables = BTreeMap::new();
        let mut user_variables = BTreeMap::new();
        for (name, variable) in &self.variables {
            let map = match variable.persistence {
                Persistence::Request => continue,
                Persistence::Session => &mut variables,
                Persistence::Forever => &mut user_variables,
            };
            map.insert(name.as_str(), variable.value.as_str());
        }
        StateForm {
            conversation_id: &self.conversation_id,
            user_id: &self.user_id,
            platform_user_id: &self.platform_user_id,
            first_name: &self.first_name,
            variables,
            user_variables: with_user_variables.then_some(user_variables),
            fields: crate::trace::FieldsForm(&self.fields),
            waiting_at: self.waiting_at.as_deref(),
            slots: self
                .slots
                .iter()
                .filter(|(_, slots)| !slots.is_empty())
                .map(|(dialog, slots)| {
                    let slots = slots.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                    (dialog.as_str(), slots.collect())
                })
                .collect(),
            dialog_variables: self
                .dialog_variables
                .iter()
                .filter(|(_, names)| !names.is_empty())
                .map(|(dialog, names)| (dialog.as_str(), names.as_slice()))
                .collect(),
            no_match_count: self.no_match_count,
            return_to: &self.return_to,
            attributes: &self.attributes,
        }
    }

    /// The state as JSON ([`ConversationState`]'s `Serialize` form).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Reads a state in the form [`ConversationState::to_json`] writes, for
    /// `bot` (its integrations own the fields). Every member is optional;
    /// an unknown member or a wrong type is an error naming it.
    pub fn from_json(json: serde_json::Value, bot: &Bot) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        // serde would read an array member by member.
        if !json.is_object() {
            return Err(serde_json::Error::custom("a state is a JSON object"));
        }
        let mut json: StateJson = serde_json::from_value(json)?;
        // Slots the bot declares, of dialogs it has: a state written for
        // another version of the bot (or by hand) brings no others.
        json.slots.retain(|dialog, slots| {
            let declared = bot.dialogs.iter().find(|d| &d.name == dialog);
            slots.retain(|name, _| declared.is_some_and(|d| d.slots.contains(name)));
            !slots.is_empty()
        });
        json.dialog_variables
            .retain(|dialog, _| bot.dialogs.iter().any(|d| &d.name == dialog));
        let mut state = Self {
            conversation_id: json.conversation_id,
            user_id: json.user_id,
            platform_user_id: json.platform_user_id,
            first_name: json.first_name,
            variables: HashMap::new(),
            fields: Fields::restore(
                json.fields.into_iter().map(|(key, value)| {
                    let value = match value {
                        FieldJson::One(one) => FieldValue::One(one),
                        FieldJson::Many(many) => FieldValue::Many(many),
                    };
                    (key, value)
                }),
                &bot.integrations,
            ),
            waiting_at: json.waiting_at,
            slots: json
                .slots
                .into_iter()
                .map(|(dialog, slots)| (dialog, slots.into_iter().collect()))
                .collect(),
            dialog_variables: json.dialog_variables.into_iter().collect(),
            no_match_count: json.no_match_count,
            return_to: json.return_to,
            dialog: None,
            attributes: json.attributes,
            dialog_starter: None,
        };
        let over = state.return_to.len().saturating_sub(MAX_RETURN_TO);
        state.return_to.drain(..over);
        for (name, value) in json.variables {
            state.set(&name, value, Persistence::Session);
        }
        for (name, value) in json.user_variables {
            state.set(&name, value, Persistence::Forever);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Start;

    use super::*;

    const ASKER: &str = r#"name: asker
dialogs:
  - name: orders
    starters: ["track my order"]
    interactions:
      - name: ask
        type: question
        text: What is your order number?
        next: answer
      - name: answer
        type: text
        text: "Looking up order {$userMessage}."
        next: end
"#;

    #[tokio::test]
    async fn a_state_sent_back_goes_on_where_it_waits() {
        let engine = crate::test_engine(ASKER, Arc::new(|_: &str| None)).await;
        let asked = engine
            .run_turn(
                ConversationState::default(),
                Start::Message,
                "track my order",
            )
            .await
            .expect("turn 1");
        assert_eq!(asked.state.waiting_at.as_deref(), Some("ask"));
        // Through its JSON form, as a client holds it.
        let json = asked.state.to_json();
        assert_eq!(json["waitingAt"], "ask");
        let state = ConversationState::from_json(json, engine.bot()).expect("state");
        let answered = engine
            .run_turn(state, Start::Message, "1234")
            .await
            .expect("turn 2");
        assert_eq!(answered.messages, ["Looking up order 1234."]);
        assert_eq!(answered.state.waiting_at, None);
        assert!(answered.state.to_json().get("waitingAt").is_none());
    }
}
