//! What a turn produced, as the engine hands it to its host: the trace of
//! each step (`StepTrace`, the call it made: `Invocation`, why a call got
//! no response: `CallFailure`), the `Turn` and where it leaves the
//! conversation (`Next`), and their JSON forms (`Serialize`).

use std::collections::HashMap;
use std::time::Duration;

use patchbay_script::CustomEvent;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::platform::ActionsForm;

use crate::message::Message;
use crate::response::ResponseView;
use crate::state::ConversationState;

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
    pub(crate) fn render(message: impl Into<String>) -> Self {
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

/// The call as JSON: `integration`, `request`, `status`, `success`,
/// `failure` (`{kind, message}` or null), `elapsedMs`, `fields`; and
/// `response` ([`ResponseView`]) when the turn kept it.
impl Serialize for Invocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = serializer.serialize_struct("Invocation", 8)?;
        json.serialize_field("integration", &self.integration)?;
        json.serialize_field("request", &self.request_line)?;
        json.serialize_field("status", &self.status)?;
        json.serialize_field("success", &self.success)?;
        json.serialize_field("failure", &self.failure)?;
        json.serialize_field("elapsedMs", &duration_ms(self.elapsed))?;
        json.serialize_field("fields", &FieldList(&self.fields))?;
        if let Some(response) = &self.response {
            json.serialize_field("response", response)?;
        }
        json.end()
    }
}

impl Serialize for CallFailure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = serializer.serialize_struct("CallFailure", 2)?;
        json.serialize_field("kind", self.kind)?;
        json.serialize_field("message", &self.message)?;
        json.end()
    }
}

/// The step as JSON: `interaction`, `call` ([`Invocation`]), `rule`,
/// `messages`, `scriptErrors`, `debug` (strings), `events`
/// (`{userMessage, eventName, eventDetail}`, the product's names),
/// `actions` ([`ActionsForm`]).
impl Serialize for StepTrace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = serializer.serialize_struct("StepTrace", 8)?;
        json.serialize_field("interaction", &self.interaction)?;
        json.serialize_field("call", &self.call)?;
        json.serialize_field("rule", &self.rule)?;
        json.serialize_field("messages", &self.messages)?;
        json.serialize_field("scriptErrors", &self.script_errors)?;
        json.serialize_field("debug", &self.debug)?;
        json.serialize_field("events", &EventsForm(&self.events))?;
        json.serialize_field("actions", &ActionsForm(&self.actions))?;
        json.end()
    }
}

/// `logCustomEvent` calls as JSON, in the product's names.
struct EventsForm<'a>(&'a [CustomEvent]);

impl Serialize for EventsForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Event<'a> {
            user_message: &'a str,
            event_name: &'a str,
            event_detail: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|event| Event {
            user_message: &event.user_message,
            event_name: &event.name,
            event_detail: &event.detail,
        }))
    }
}

fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Fields as a JSON object: `"RDVN.key"` to a string or an array.
pub(crate) struct FieldsForm<'a>(pub(crate) &'a patchbay_rules::Fields);

impl Serialize for FieldsForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, FieldForm(value))))
    }
}

/// An invocation's fields, in the same form as [`FieldsForm`].
struct FieldList<'a>(&'a [(String, patchbay_rules::FieldValue)]);

impl Serialize for FieldList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, FieldForm(value))))
    }
}

/// One field: a string, or an array of them.
struct FieldForm<'a>(&'a patchbay_rules::FieldValue);

impl Serialize for FieldForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            patchbay_rules::FieldValue::One(one) => serializer.serialize_str(one),
            patchbay_rules::FieldValue::Many(many) => many.serialize(serializer),
        }
    }
}

/// The outcome of a turn.
#[derive(Clone, Debug)]
pub struct Turn {
    /// The state to pass to the next turn.
    pub state: ConversationState,
    /// Messages the bot sent, in order.
    pub messages: Vec<Message>,
    /// Where the conversation goes: waiting at a question, or not (its JSON
    /// name is [`Next::as_str`]).
    pub next: Next,
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

/// How a turn ends: where the conversation goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// It waits at this question (by name): the next message answers it
    /// ([`ConversationState::waiting_at`]).
    Waiting(String),
    /// The dialog ended (`end`, or past its last interaction), with no
    /// question on the return stack to ask again.
    End,
    /// `close-dialog`.
    CloseDialog,
    /// `close-conversation`.
    CloseConversation,
}

impl Next {
    /// The name the turn's JSON gives it (`next`): the question's name,
    /// `end`, `close-dialog` or `close-conversation`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Waiting(question) => question,
            Self::End => "end",
            Self::CloseDialog => "close-dialog",
            Self::CloseConversation => "close-conversation",
        }
    }

    /// The question the conversation waits at, if it waits.
    pub fn waiting_at(&self) -> Option<&str> {
        match self {
            Self::Waiting(question) => Some(question),
            Self::End | Self::CloseDialog | Self::CloseConversation => None,
        }
    }
}

/// The turn as JSON, the form of spec section 5: `actions`
/// ([`ActionsForm`]), `fields`, `messages`, `next` ([`Next::as_str`]),
/// `status`, `success`, `variables` (by name). Its `state` and `steps` are
/// for the host to add, as it answers ([`ConversationState`] and
/// [`StepTrace`] are `Serialize` too).
impl Serialize for Turn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let variables: std::collections::BTreeMap<&str, &str> = self
            .variables
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let mut json = serializer.serialize_struct("Turn", 7)?;
        json.serialize_field("actions", &ActionsForm(&self.actions))?;
        json.serialize_field("fields", &FieldsForm(&self.state.fields))?;
        json.serialize_field("messages", &self.messages)?;
        json.serialize_field("next", self.next.as_str())?;
        json.serialize_field("status", &self.status)?;
        json.serialize_field("success", &self.success)?;
        json.serialize_field("variables", &variables)?;
        json.end()
    }
}

impl std::fmt::Display for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Turn {
    /// The text of each message, in order ([`Message::text`]).
    pub fn texts(&self) -> Vec<&str> {
        self.messages.iter().map(Message::text).collect()
    }
}
