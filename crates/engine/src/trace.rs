//! What a turn produced, as the engine hands it to its host: the trace of
//! each step (`StepTrace`, the call it made: `Invocation`, why a call got
//! no response: `CallFailure`), the `Turn` and where it leaves the
//! conversation (`Next`), and their JSON forms.

use std::collections::HashMap;
use std::time::Duration;

use patchbay_script::CustomEvent;
use serde_json::{Value, json};

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
            "next": self.next.as_str(),
            "actions": crate::platform::actions_json(&self.actions),
        })
    }
}
