//! Running a case: a new engine for the bot with the case's environment,
//! pointed at a local upstream that answers the case's calls, its turns
//! played in order on one conversation (each given the state the one
//! before left), and each turn's expectations compared with what it showed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use patchbay_engine::config::Bot;
use patchbay_engine::rules::FieldValue;
use patchbay_engine::script::{Persistence, ScriptRuntime};
use patchbay_engine::{
    ConversationState, Engine, EngineError, EngineOptions, Env, Start, Turn, UserMessage,
};
use serde_json::{Value, json};

use crate::model::{Case, Expect, ExpectedMessage, TestFile, UpstreamAnswer, expected_values};
use crate::recording::{RecordingError, Recordings, Redactor, body_response};
use crate::stub::{
    Answer, BoxFuture, StubError, StubRequest, StubResolver, StubResponse, StubUpstream,
};

/// What a case showed against what it expected. Its text holds no secret
/// the case's [`Redactor`] knows of, in any encoding: a failure's report
/// may be printed and kept by CI.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// How long it took.
    pub elapsed: Duration,
    /// Each expectation that did not hold (empty: the case passed).
    pub mismatches: Vec<Mismatch>,
}

impl CaseOutcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// One expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What was compared: `messages`, `next`, `fields.FAQS.title`, ...;
    /// in a case of turns, prefixed with the turn (`turn 2: messages`).
    pub what: String,
    /// What the case expected, as YAML-like lines.
    pub expected: String,
    /// What the turn showed.
    pub actual: String,
}

/// The recordings a case replays, each file's name and text as
/// [`Recordings::parse`] reads them (the caller reads the directories).
#[derive(Clone, Debug, Default)]
pub struct CaseRecordings {
    /// The case's (its `replay` directory's, then `--replay`'s): they
    /// answer any turn's calls that the turn's own answers do not, in
    /// recorded order across the turns.
    pub case: Vec<(String, String)>,
    /// Each turn's own `replay` directory's, by turn (a turn past the end
    /// has none).
    pub turns: Vec<Vec<(String, String)>>,
}

impl From<Vec<(String, String)>> for CaseRecordings {
    fn from(case: Vec<(String, String)>) -> Self {
        Self {
            case,
            turns: Vec::new(),
        }
    }
}

/// One turn's answers: its inline ones, then its recordings.
struct TurnAnswers {
    inline: Vec<(String, Option<String>, StubResponse)>,
    recordings: Option<Recordings>,
}

impl TurnAnswers {
    fn new(answers: &[UpstreamAnswer], recordings: Option<Recordings>) -> Self {
        let inline = answers
            .iter()
            .map(|answer| {
                let (method, url) = answer.request.split_once(' ').unwrap_or(("GET", ""));
                let (base, query) = match url.trim().split_once('?') {
                    Some((base, query)) => (base.to_owned(), Some(query.to_owned())),
                    None => (url.trim().to_owned(), None),
                };
                let headers = answer
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                let response = body_response(
                    answer.status,
                    headers,
                    answer.body.as_ref().unwrap_or(&Value::Null),
                );
                (
                    format!("{} {base}", method.to_ascii_uppercase()),
                    query,
                    response,
                )
            })
            .collect();
        Self { inline, recordings }
    }
}

/// The calls of a case: the turn being played's inline answers first,
/// then its recordings, then the case's.
struct CaseAnswers {
    turns: Vec<TurnAnswers>,
    /// The turn being played, from 0.
    current: AtomicUsize,
    recordings: Option<Recordings>,
    /// `the case's` or `turn N's`, by turn: whose `upstream` a reason names.
    whose: Vec<String>,
    /// Names unanswered calls without the secrets their URLs carry.
    redactor: Redactor,
}

impl Answer for CaseAnswers {
    fn answer<'a>(
        &'a self,
        request: &'a StubRequest,
    ) -> BoxFuture<'a, Result<StubResponse, String>> {
        let (base, query) = match request.url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (request.url.as_str(), None),
        };
        let line = format!("{} {base}", request.method);
        let index = self.current.load(Ordering::SeqCst);
        let found = match self.turns.get(index) {
            None => Err("it came after the case's last turn".to_owned()),
            Some(turn) => {
                let inline = turn.inline.iter().find(|(call, wanted, _)| {
                    *call == line && wanted.as_deref().is_none_or(|wanted| Some(wanted) == query)
                });
                let whose = self.whose.get(index).map_or("the case's", String::as_str);
                let recordings = [turn.recordings.as_ref(), self.recordings.as_ref()];
                match inline {
                    Some((_, _, response)) => Ok(response.clone()),
                    None if recordings.iter().all(Option::is_none) => {
                        Err(format!("{whose} `upstream` has no answer for it"))
                    }
                    None => recordings
                        .into_iter()
                        .flatten()
                        .find_map(|recordings| recordings.find(request))
                        .ok_or_else(|| {
                            format!("neither {whose} `upstream` nor its recordings answer it")
                        }),
                }
            }
        };
        Box::pin(std::future::ready(found))
    }

    fn shown_line(&self, request: &StubRequest) -> String {
        self.redactor.line(request)
    }
}

/// Why a case could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A recording it replays cannot be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The local upstream did not start.
    #[error(transparent)]
    Stub(#[from] StubError),
    /// The bot did not start (a credential without its environment, a
    /// script that does not compile).
    #[error("the bot does not start: {0}")]
    Bot(#[from] EngineError),
}

/// Runs one case of `file` against `bot`: its turns in order on one
/// conversation, each turn's calls answered by a local upstream from the
/// turn's `upstream`, then the turn's recordings, then the case's
/// (`recordings`; the caller reads the `replay` directories).
///
/// A turn that does not run (an engine error) ends the case: the state it
/// would have passed on is lost. A turn whose expectations do not hold
/// does not: the next turn is played on the state it left, and every
/// mismatch is reported, named by its turn.
pub async fn run_case(
    bot: &Bot,
    file: &TestFile,
    case: &Case,
    recordings: impl Into<CaseRecordings>,
    scripts: &ScriptRuntime,
) -> Result<CaseOutcome, RunError> {
    let started = Instant::now();
    let env = env_of(bot, file, case);
    let redactor = Redactor::new(bot, env.as_ref());
    let CaseRecordings {
        case: case_recordings,
        turns: mut turn_recordings,
    } = recordings.into();
    let parse = |files: Vec<(String, String)>| -> Result<Option<Recordings>, RecordingError> {
        Ok(if files.is_empty() {
            None
        } else {
            Some(Recordings::parse(files, redactor.clone())?)
        })
    };
    turn_recordings.resize_with(case.turns.len(), Vec::new);
    let turns = case
        .turns
        .iter()
        .zip(turn_recordings)
        .map(|(turn, files)| Ok(TurnAnswers::new(&turn.upstream, parse(files)?)))
        .collect::<Result<Vec<_>, RecordingError>>()?;
    let whose = (0..case.turns.len())
        .map(|index| {
            if case.multi_turn {
                format!("turn {}'s", index + 1)
            } else {
                "the case's".to_owned()
            }
        })
        .collect();
    let answers = Arc::new(CaseAnswers {
        turns,
        current: AtomicUsize::new(0),
        recordings: parse(case_recordings)?,
        whose,
        redactor: redactor.clone(),
    });
    let stub = StubUpstream::start(Arc::clone(&answers) as Arc<dyn Answer>).await?;
    let engine = Engine::new(bot.clone(), stub_options(&stub, env, scripts)).await?;
    let mut state = ConversationState {
        conversation_id: format!("test-{}", case.name),
        ..ConversationState::default()
    };
    for (name, value) in &case.variables {
        state.set(name, value.as_str(), Persistence::Session);
    }
    if let Some(attributes) = &case.attributes {
        // Read as a state's are: a member given as null is not set.
        state.attributes = attributes.clone();
    }
    let mut mismatches = Vec::new();
    for (index, turn) in case.turns.iter().enumerate() {
        answers.current.store(index, Ordering::SeqCst);
        let label = |what: &str| case.turn_label(index, what);
        let start = turn
            .interaction
            .clone()
            .map_or(Start::Message, Start::Interaction);
        let mut message = UserMessage::new(turn.message.as_str());
        if let Some(payload) = &turn.payload {
            message = message.with_payload(payload.as_str());
        }
        if let Some(attributes) = &turn.attributes {
            message = message.with_attributes(attributes.clone());
        }
        let ran = match engine.run_turn(state, start, message).await {
            Ok(played) => Some(played),
            Err(error) => {
                mismatches.push(Mismatch {
                    what: label("turn"),
                    expected: "a turn".to_owned(),
                    actual: format!("error: {error}"),
                });
                None
            }
        };
        if let Some(played) = &ran {
            compare(&turn.expect, played, &mut mismatches, &label);
        }
        for reason in stub.take_unanswered() {
            mismatches.push(Mismatch {
                what: label("upstream"),
                expected: "an answer for every call".to_owned(),
                actual: format!("no answer for {reason}"),
            });
        }
        match ran {
            Some(played) => state = played.state,
            None => break,
        }
    }
    // What the turn showed may repeat a secret an upstream echoed, or a
    // credential error; a report is printed and kept, so none survives.
    for mismatch in &mut mismatches {
        for text in [
            &mut mismatch.what,
            &mut mismatch.expected,
            &mut mismatch.actual,
        ] {
            *text = redactor.text(text);
        }
    }
    Ok(CaseOutcome {
        name: case.name.clone(),
        elapsed: started.elapsed(),
        mismatches,
    })
}

/// Engine options that send every call to `stub`.
pub fn stub_options(stub: &StubUpstream, env: Env, scripts: &ScriptRuntime) -> EngineOptions {
    let mut options = EngineOptions::new(env, scripts.clone());
    options.proxy = stub.proxy();
    options.extra_roots_pem = Some(stub.ca_pem().as_bytes().to_vec());
    options.resolver = Some(Arc::new(StubResolver));
    options
}

/// A case's environment: its own, the file's, the bot's defaults, and for
/// a variable supplied at run time that none gives, `test-NAME` (a case
/// needs no real secret: its calls never leave the machine).
fn env_of(bot: &Bot, file: &TestFile, case: &Case) -> Env {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (name, default) in &bot.env {
        let value = default.clone().unwrap_or_else(|| format!("test-{name}"));
        env.insert(name.clone(), value);
    }
    env.extend(file.env.clone());
    env.extend(case.env.clone());
    Arc::new(move |name: &str| env.get(name).cloned())
}

fn compare(
    expect: &Expect,
    turn: &Turn,
    mismatches: &mut Vec<Mismatch>,
    label: &dyn Fn(&str) -> String,
) {
    // Whether it holds is decided by the caller; the values are only shown.
    let mut report = |what: &str, holds: bool, expected: &Value, actual: &Value| {
        if !holds {
            mismatches.push(Mismatch {
                what: label(what),
                expected: lines(expected),
                actual: lines(actual),
            });
        }
    };
    if let Some(messages) = &expect.messages {
        let actual = match serde_json::to_value(&turn.messages).unwrap_or_default() {
            Value::Array(items) => items,
            other => vec![other],
        };
        let holds = messages.len() == actual.len()
            && messages
                .iter()
                .zip(&actual)
                .all(|(expected, actual)| expected.matches(actual));
        let shown = actual
            .iter()
            .enumerate()
            .map(|(index, message)| match messages.get(index) {
                // What matches is shown as it was expected, so the diff
                // marks only what differs.
                Some(expected) if expected.matches(message) => expected.shown(),
                _ => shown_message(message),
            })
            .collect();
        report(
            "messages",
            holds,
            &Value::Array(messages.iter().map(ExpectedMessage::shown).collect()),
            &Value::Array(shown),
        );
    }
    let mut check = |what: &str, expected: Value, actual: Value| {
        report(what, expected == actual, &expected, &actual);
    };
    if let Some(next) = &expect.next {
        check("next", json!(next), json!(turn.next.as_str()));
    }
    if let Some(status) = expect.status {
        check("status", json!(status), json!(turn.status));
    }
    if let Some(success) = expect.success {
        check("success", json!(success), json!(turn.success));
    }
    for (key, expected) in &expect.fields {
        let (owner, field) = key.split_once('.').unwrap_or((key.as_str(), ""));
        let actual = turn.state.fields.get(owner, field);
        let holds = field_matches(expected, actual);
        let actual = match actual {
            Some(FieldValue::One(one)) => json!(one),
            Some(FieldValue::Many(many)) => json!(many),
            None => Value::Null,
        };
        report(&format!("fields.{key}"), holds, expected, &actual);
    }
    if let Some(expected) = &expect.actions {
        let actual = patchbay_engine::actions_json(&turn.actions);
        let actual = actual.as_array().cloned().unwrap_or_default();
        // An expected action names the members it checks.
        let matches = |expected: &serde_json::Map<String, Value>, actual: &Value| {
            expected
                .iter()
                .all(|(member, value)| actual.get(member) == Some(value))
        };
        let holds = expected.len() == actual.len()
            && expected
                .iter()
                .zip(&actual)
                .all(|(expected, actual)| matches(expected, actual));
        // What matches is shown as it was expected, so the diff marks only
        // what differs.
        let shown = actual
            .iter()
            .enumerate()
            .map(|(index, action)| match expected.get(index) {
                Some(expected) if matches(expected, action) => Value::Object(expected.clone()),
                _ => action.clone(),
            })
            .collect();
        let expected = Value::Array(expected.iter().cloned().map(Value::Object).collect());
        report("actions", holds, &expected, &Value::Array(shown));
    }
    for (name, expected) in &expect.variables {
        let actual = turn
            .variables
            .get(name)
            .map_or(Value::Null, |value| json!(value));
        report(
            &format!("variables.{name}"),
            actual == json!(expected),
            &json!(expected),
            &actual,
        );
    }
}

/// Whether a field is as expected: a value is a list of one (`Lamp` is
/// the single match `Lamp`, as `[Lamp]` is), `null` a field not there.
fn field_matches(expected: &Value, actual: Option<&FieldValue>) -> bool {
    expected_values(expected)
        .is_some_and(|wanted| wanted.as_deref() == actual.map(FieldValue::values))
}

impl ExpectedMessage {
    /// Whether a message the turn sent (as JSON: a string for plain text,
    /// an object for a structured message) is this one.
    fn matches(&self, actual: &Value) -> bool {
        match (self, actual) {
            (Self::Text(text), Value::String(actual)) => text == actual,
            (Self::Text(text), Value::Object(actual)) => {
                actual.get("text").and_then(Value::as_str) == Some(text.as_str())
            }
            (Self::Members(members), Value::Object(actual)) => members
                .iter()
                .all(|(name, value)| actual.get(name) == Some(value)),
            _ => false,
        }
    }

    /// How a diff shows it: text as it is, members as one line of JSON.
    fn shown(&self) -> Value {
        match self {
            Self::Text(text) => Value::String(text.clone()),
            Self::Members(members) => Value::String(Value::Object(members.clone()).to_string()),
        }
    }
}

/// A message the turn sent, as a diff shows it: text as it is, a
/// structured message as one line of JSON.
fn shown_message(message: &Value) -> Value {
    match message {
        Value::String(_) => message.clone(),
        other => Value::String(other.to_string()),
    }
}

/// A value as the lines a diff compares: one line per list item.
fn lines(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| format!("- {}", scalar(item)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => scalar(other),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> ExpectedMessage {
        ExpectedMessage::Text(text.to_owned())
    }

    fn members(value: Value) -> ExpectedMessage {
        match value {
            Value::Object(members) => ExpectedMessage::Members(members),
            other => panic!("not a mapping: {other}"),
        }
    }

    #[test]
    fn expected_text_matches_a_plain_message_or_a_structured_one_s_text() {
        let question = json!({
            "type": "question",
            "text": "Which size?",
            "choices": [{ "title": "S", "payload": "s" }, { "title": "M", "payload": "m" }]
        });
        assert!(text("Hello").matches(&json!("Hello")));
        assert!(!text("Hello").matches(&json!("Hello!")));
        assert!(text("Which size?").matches(&question));
        assert!(!text("Which colour?").matches(&question));
        assert!(!text("Hello").matches(&json!({ "type": "card" })));
    }

    #[test]
    fn expected_members_match_a_structured_message_that_has_them() {
        let question = json!({
            "type": "question",
            "text": "Which size?",
            "choices": [{ "title": "S", "payload": "s" }]
        });
        assert!(members(json!({ "type": "question" })).matches(&question));
        assert!(members(json!({ "type": "question", "text": "Which size?" })).matches(&question));
        assert!(
            members(json!({ "choices": [{ "title": "S", "payload": "s" }] })).matches(&question)
        );
        assert!(!members(json!({ "type": "card" })).matches(&question));
        assert!(!members(json!({ "choices": [] })).matches(&question));
        assert!(!members(json!({ "buttons": [] })).matches(&question));
        assert!(
            !members(json!({ "text": "Which size?" })).matches(&json!("Which size?")),
            "members match structured messages only"
        );
    }

    #[test]
    fn a_diff_shows_members_and_structured_messages_as_one_line() {
        assert_eq!(text("Hi").shown(), json!("Hi"));
        assert_eq!(
            members(json!({ "type": "card" })).shown(),
            json!(r#"{"type":"card"}"#)
        );
        let card = json!({ "type": "card", "text": "T" });
        let shown = shown_message(&card);
        let line = shown.as_str().expect("a line");
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(serde_json::from_str::<Value>(line).expect("JSON"), card);
        assert_eq!(shown_message(&json!("Hi")), json!("Hi"));
    }

    #[test]
    fn an_expected_field_value_is_a_list_of_one() {
        let one = FieldValue::One("Lamp".to_owned());
        let two = FieldValue::Many(vec!["Lamp".to_owned(), "Mug".to_owned()]);
        let none = FieldValue::Many(Vec::new());
        assert!(field_matches(&json!("Lamp"), Some(&one)));
        assert!(field_matches(&json!(["Lamp"]), Some(&one)));
        assert!(!field_matches(&json!("Mug"), Some(&one)));
        assert!(field_matches(&json!(["Lamp", "Mug"]), Some(&two)));
        assert!(!field_matches(&json!("Lamp"), Some(&two)));
        assert!(field_matches(&json!([]), Some(&none)));
        assert!(field_matches(&json!(null), None));
        assert!(!field_matches(&json!(null), Some(&one)));
        assert!(!field_matches(&json!("Lamp"), None));
        assert!(field_matches(
            &json!(3),
            Some(&FieldValue::One("3".to_owned()))
        ));
    }
}
