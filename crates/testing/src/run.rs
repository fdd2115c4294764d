//! Running a case: a new engine for the bot with the case's environment,
//! pointed at a local upstream that answers the case's calls, one turn,
//! and the expectations compared with what the turn showed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_engine::config::Bot;
use patchbay_engine::rules::FieldValue;
use patchbay_engine::script::{Persistence, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineError, EngineOptions, Env, Start, Turn};
use serde_json::{Value, json};

use crate::model::{Case, Expect, TestFile, UpstreamAnswer};
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
    /// What was compared: `messages`, `next`, `fields.FAQS.title`, ...
    pub what: String,
    /// What the case expected, as YAML-like lines.
    pub expected: String,
    /// What the turn showed.
    pub actual: String,
}

/// The calls of a case: its inline answers first, then its recordings.
struct CaseAnswers {
    inline: Vec<(String, Option<String>, StubResponse)>,
    recordings: Option<Recordings>,
    /// Names unanswered calls without the secrets their URLs carry.
    redactor: Redactor,
}

impl CaseAnswers {
    fn new(answers: &[UpstreamAnswer], recordings: Option<Recordings>, redactor: Redactor) -> Self {
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
        Self {
            inline,
            recordings,
            redactor,
        }
    }
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
        let inline = self.inline.iter().find(|(call, wanted, _)| {
            *call == line && wanted.as_deref().is_none_or(|wanted| Some(wanted) == query)
        });
        let found = match (inline, &self.recordings) {
            (Some((_, _, response)), _) => Ok(response.clone()),
            (None, Some(recordings)) => recordings.find(request).ok_or_else(|| {
                "neither the case's `upstream` nor its recordings answer it".to_owned()
            }),
            (None, None) => Err("the case's `upstream` has no answer for it".to_owned()),
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

/// Runs one case of `file` against `bot`, its calls answered by a local
/// upstream: the case's `upstream` first, then `recordings` (file name and
/// text of each, as [`Recordings::parse`] reads them; the caller reads the
/// case's `replay` directory).
pub async fn run_case(
    bot: &Bot,
    file: &TestFile,
    case: &Case,
    recordings: Vec<(String, String)>,
    scripts: &ScriptRuntime,
) -> Result<CaseOutcome, RunError> {
    let started = Instant::now();
    let env = env_of(bot, file, case);
    let redactor = Redactor::new(bot, env.as_ref());
    let recordings = if recordings.is_empty() {
        None
    } else {
        Some(Recordings::parse(recordings, redactor.clone())?)
    };
    let answers = Arc::new(CaseAnswers::new(
        &case.upstream,
        recordings,
        redactor.clone(),
    ));
    let stub = StubUpstream::start(Arc::clone(&answers) as Arc<dyn Answer>).await?;
    let engine = Engine::new(bot.clone(), stub_options(&stub, env, scripts)).await?;
    let mut state = ConversationState {
        conversation_id: format!("test-{}", case.name),
        ..ConversationState::default()
    };
    for (name, value) in &case.variables {
        state.set(name, value.as_str(), Persistence::Session);
    }
    let start = case
        .interaction
        .clone()
        .map_or(Start::Message, Start::Interaction);
    let mut mismatches = Vec::new();
    match engine.run_turn(state, start, &case.message).await {
        Ok(turn) => compare(&case.expect, &turn, &mut mismatches),
        Err(error) => mismatches.push(Mismatch {
            what: "turn".to_owned(),
            expected: "a turn".to_owned(),
            actual: format!("error: {error}"),
        }),
    }
    for reason in stub.take_unanswered() {
        mismatches.push(Mismatch {
            what: "upstream".to_owned(),
            expected: "an answer for every call".to_owned(),
            actual: format!("no answer for {reason}"),
        });
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

fn compare(expect: &Expect, turn: &Turn, mismatches: &mut Vec<Mismatch>) {
    let mut check = |what: &str, expected: Value, actual: Value| {
        if expected != actual {
            mismatches.push(Mismatch {
                what: what.to_owned(),
                expected: lines(&expected),
                actual: lines(&actual),
            });
        }
    };
    if let Some(messages) = &expect.messages {
        check("messages", json!(messages), json!(turn.messages));
    }
    if let Some(next) = &expect.next {
        check("next", json!(next), json!(turn.next));
    }
    if let Some(status) = expect.status {
        check("status", json!(status), json!(turn.status));
    }
    if let Some(success) = expect.success {
        check("success", json!(success), json!(turn.success));
    }
    for (key, expected) in &expect.fields {
        let (owner, field) = key.split_once('.').unwrap_or((key.as_str(), ""));
        let actual = match turn.state.fields.get(owner, field) {
            Some(FieldValue::One(one)) => json!(one),
            Some(FieldValue::Many(many)) => json!(many),
            None => Value::Null,
        };
        check(&format!("fields.{key}"), expected.clone(), actual);
    }
    for (name, expected) in &expect.variables {
        check(
            &format!("variables.{name}"),
            json!(expected),
            turn.variables
                .get(name)
                .map_or(Value::Null, |value| json!(value)),
        );
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
