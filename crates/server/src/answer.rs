//! The answers of the HTTP API as they go on the wire: serde forms that
//! borrow what the engine returned and are written straight to text (no
//! `serde_json::Value` tree in between), then masked once.

use patchbay_engine::{ConversationState, Invocation, StepTrace, StoredTurn, Turn};
use serde::Serialize;
use serde_json::{Map, Value};

/// A turn's answer (`POST /v1/bots/{bot}/turns`, and what `patchbay run`
/// prints): the turn's JSON form (spec section 5: `status`, `success`,
/// `variables`, `fields`, `messages`, `next`, `actions`), its `state`, what
/// each interaction did (`steps`), and for a conversation the server keeps,
/// the session's `version`. A replayed turn (a retry of the last saved
/// turn's id) answers what that turn answered, with the state as stored
/// now and no `steps` (they describe the first run).
#[derive(Debug, Serialize)]
pub struct TurnAnswer<'a> {
    #[serde(flatten)]
    outcome: Outcome<'a>,
    state: &'a ConversationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<&'a [StepTrace]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

/// What the turn answered: the turn itself, or what a store kept of it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome<'a> {
    Ran(&'a Turn),
    Replayed(&'a Map<String, Value>),
}

impl<'a> TurnAnswer<'a> {
    /// The answer to a turn whose state the caller keeps.
    pub fn new(turn: &'a Turn) -> Self {
        Self {
            outcome: Outcome::Ran(turn),
            state: &turn.state,
            steps: Some(&turn.steps),
            version: None,
        }
    }

    /// The answer to a turn of a conversation a store keeps.
    pub fn stored(stored: &'a StoredTurn) -> Self {
        match stored {
            StoredTurn::Ran { turn, version } => Self {
                version: Some(*version),
                ..Self::new(turn)
            },
            StoredTurn::Replayed {
                answer,
                state,
                version,
            } => Self {
                outcome: Outcome::Replayed(answer),
                state,
                steps: None,
                version: Some(*version),
            },
        }
    }
}

/// An integration's answer (`POST /v1/bots/{bot}/integrations/{name}`): the
/// call ([`Invocation`]'s JSON form) and the `state` it left.
#[derive(Debug, Serialize)]
pub(crate) struct InvokeAnswer<'a> {
    #[serde(flatten)]
    pub(crate) call: &'a Invocation,
    pub(crate) state: &'a ConversationState,
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_engine::Next;
    use serde_json::json;

    #[test]
    fn a_replayed_turn_answers_the_kept_outcome_with_the_state_as_stored_now() {
        let state = ConversationState {
            conversation_id: "c-1".to_owned(),
            ..ConversationState::default()
        };
        let kept = json!({"messages": ["hello"], "next": "end", "success": true});
        let stored = StoredTurn::Replayed {
            answer: kept.as_object().cloned().expect("an object"),
            state: Box::new(state),
            version: 7,
        };
        let answer = serde_json::to_value(TurnAnswer::stored(&stored)).expect("json");
        assert_eq!(answer["messages"], json!(["hello"]));
        assert_eq!(answer["next"], "end");
        assert_eq!(answer["state"]["conversationId"], "c-1");
        assert_eq!(answer["version"], 7);
        assert!(answer.get("steps").is_none(), "{answer}");
    }

    #[test]
    fn a_turn_answers_its_outcome_state_and_steps_without_a_version() {
        let mut step = StepTrace::default();
        step.interaction = "search".to_owned();
        let turn = Turn {
            state: ConversationState::default(),
            messages: Vec::new(),
            next: Next::End,
            status: Some(200),
            success: true,
            steps: vec![step],
            variables: [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned()),
            ]
            .into_iter()
            .collect(),
            actions: Vec::new(),
        };
        let answer = serde_json::to_value(TurnAnswer::new(&turn)).expect("json");
        assert_eq!(answer["status"], 200);
        assert_eq!(answer["next"], "end");
        assert_eq!(answer["variables"], json!({"a": "1", "b": "2"}));
        assert_eq!(answer["steps"][0]["interaction"], "search");
        assert_eq!(answer["state"]["fields"], json!({}));
        assert!(answer.get("version").is_none(), "{answer}");
    }
}
