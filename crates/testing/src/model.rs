//! The test file: `NAME.test.yaml` beside `NAME.yaml`, a list of cases.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A test file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestFile {
    /// The bot file, relative to the test file; by default the test file's
    /// name without `.test` (`faq-bot.test.yaml` tests `faq-bot.yaml`).
    #[serde(default)]
    pub bot: Option<String>,
    /// Environment variables of every case (a case's own win).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The cases, run in order, each on a new conversation.
    pub cases: Vec<Case>,
}

/// One case: where a turn starts, what the upstream answers, what must
/// come out.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    /// What it checks, for people; unique in the file.
    pub name: String,
    /// The interaction the turn starts at; without it, the dialog whose
    /// starter matches `message`.
    #[serde(default)]
    pub interaction: Option<String>,
    /// The user's message.
    #[serde(default)]
    pub message: String,
    /// Bot variables the conversation has before the turn (session).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables of this case.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What the upstream answers, call by call.
    #[serde(default)]
    pub upstream: Vec<UpstreamAnswer>,
    /// A directory of recordings (`patchbay run --record`), relative to the
    /// test file, that answers calls `upstream` does not.
    #[serde(default)]
    pub replay: Option<String>,
    /// What the turn must show.
    pub expect: Expect,
}

/// An answer of the local upstream.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamAnswer {
    /// The call it answers: `METHOD URL`. Without a query in the URL, any
    /// query matches.
    pub request: String,
    /// The status; 200 by default.
    #[serde(default = "ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body: a string is sent as it is; anything else as JSON (with
    /// `content-type: application/json` unless `headers` say otherwise).
    #[serde(default)]
    pub body: Option<Value>,
}

fn ok() -> u16 {
    200
}

/// What a turn must show; what is left out is not checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// The messages the bot sent, all of them, in order.
    #[serde(default)]
    pub messages: Option<Vec<String>>,
    /// Where the conversation goes.
    #[serde(default)]
    pub next: Option<String>,
    /// The last call's status (`null`: no response).
    #[serde(default, deserialize_with = "some")]
    pub status: Option<Option<u16>>,
    /// Whether the last call succeeded.
    #[serde(default)]
    pub success: Option<bool>,
    /// Custom data fields (`RDVN.key` to a string or a list): these, at
    /// least.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// Bot variables at the end of the turn: these, at least.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Tells `status: null` (checked: no response) from no `status` at all.
fn some<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u16>>, D::Error> {
    Option::<u16>::deserialize(deserializer).map(Some)
}

/// A test file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TestFileError {
    /// The file's name.
    pub file: String,
    /// What is wrong, with its line and column.
    pub message: String,
}

impl TestFile {
    /// Reads a test file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, TestFileError> {
        let error = |message: String| TestFileError {
            file: file.to_owned(),
            message,
        };
        let parsed: Self = serde_saphyr::from_str(text).map_err(|e| error(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for case in &parsed.cases {
            if !seen.insert(case.name.as_str()) {
                return Err(error(format!("two cases are named `{}`", case.name)));
            }
            for answer in &case.upstream {
                if answer.request.split_once(' ').is_none() {
                    return Err(error(format!(
                        "case `{}`: `request: {}` must be `METHOD URL`",
                        case.name, answer.request
                    )));
                }
            }
        }
        if parsed.cases.is_empty() {
            return Err(error("it has no cases".to_owned()));
        }
        Ok(parsed)
    }
}
