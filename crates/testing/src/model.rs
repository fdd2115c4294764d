//! The test file: `NAME.test.yaml` beside `NAME.yaml`, a list of cases.

use std::collections::BTreeMap;

use patchbay_engine::Attributes;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `$id` of the test file's schema: a name that stays, not a place the
/// schema is fetched from (`patchbay schema --test-file` prints it).
pub const TEST_FILE_SCHEMA_ID: &str = "https://patchbay.dev/schema/test-file.json";

/// The JSON Schema (draft 2020-12, `$id` [`TEST_FILE_SCHEMA_ID`]) of the
/// test file, for editors and other tools: it takes every file
/// [`TestFile::parse`] reads, and refuses what it refuses wherever a schema
/// can say so (unknown members, `turns` beside one-turn members, a case
/// without `expect`, a `request` that is not `METHOD URL`, attributes of
/// the wrong type); two cases of one name are left to `patchbay check`.
pub fn json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(TestFile)).unwrap_or_default();
    patchbay_config::finish_schema(&mut schema);
    // Attributes are JSON as the platform sends it: no scalar is text
    // there, so they are added once the text fields are widened.
    schema["$defs"]["Attributes"] = attributes_schema();
    if let Some(root) = schema.as_object_mut() {
        root.insert("$id".to_owned(), json!(TEST_FILE_SCHEMA_ID));
        root.insert("title".to_owned(), json!("patchbay test file"));
    }
    schema
}

/// A test file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
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
    #[schemars(length(min = 1))]
    pub cases: Vec<Case>,
}

/// One case: a new conversation, one turn or several played on it in
/// order, each with what the upstream answers and what must come out.
///
/// Written either with the one-turn members (`interaction`, `message`,
/// `upstream`, `expect`) or with `turns`, never both; either way it is
/// read into [`Case::turns`].
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawCase")]
pub struct Case {
    /// What it checks, for people; unique in the file.
    pub name: String,
    /// Bot variables the conversation has before its first turn (session).
    pub variables: BTreeMap<String, String>,
    /// Environment variables of this case.
    pub env: BTreeMap<String, String>,
    /// The platform's attributes the conversation has before its first
    /// turn (docs/http-api.md, "Attributes").
    pub attributes: Option<Attributes>,
    /// A directory of recordings (`patchbay run --record`), relative to the
    /// test file, that answers the calls of every turn that the turn's own
    /// `upstream` and `replay` do not.
    pub replay: Option<String>,
    /// The turns, in order, each given the state the one before left.
    pub turns: Vec<CaseTurn>,
    /// Whether the case was written with `turns` (its mismatches then name
    /// the turn: `turn 2: messages`).
    pub multi_turn: bool,
}

/// One turn of a case.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaseTurn {
    /// The interaction the turn starts at; without it, where the
    /// conversation waits, or else the dialog whose starter matches
    /// `message`.
    #[serde(default)]
    pub interaction: Option<String>,
    /// The user's message.
    #[serde(default)]
    pub message: String,
    /// The postback payload of the button or quick reply the user chose.
    #[serde(default)]
    pub payload: Option<String>,
    /// The attributes the platform sends with the turn: set over the
    /// conversation's, member by member (a member given as null is
    /// dropped).
    #[serde(default, deserialize_with = "turn_attributes")]
    #[schemars(with = "Option<AttributesSchema>")]
    pub attributes: Option<Attributes>,
    /// What the upstream answers, call by call, in this turn.
    #[serde(default)]
    pub upstream: Vec<UpstreamAnswer>,
    /// A directory of recordings, relative to the test file, that answers
    /// this turn's calls `upstream` does not (before the case's).
    #[serde(default)]
    pub replay: Option<String>,
    /// What the turn must show; nothing is checked without it.
    #[serde(default)]
    pub expect: Expect,
}

// A case as written, before it is known to be one turn or several (its
// doc comments are the schema's descriptions).

/// One case: a new conversation, one turn (`message`, `interaction`,
/// `upstream`, `expect`) or several (`turns`), never both.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "Case", transform = one_form_of_case)]
struct RawCase {
    /// What it checks, for people; unique in the file.
    name: String,
    /// Bot variables the conversation has before its first turn (session).
    #[serde(default)]
    variables: BTreeMap<String, String>,
    /// Environment variables of this case (over the file's).
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The platform's attributes the conversation has before its first
    /// turn (docs/http-api.md, "Attributes").
    #[serde(default)]
    #[schemars(with = "Option<AttributesSchema>")]
    attributes: Option<Attributes>,
    /// A directory of recordings (`patchbay run --record`), relative to the
    /// test file, that answers the calls of every turn that the turn's own
    /// `upstream` and `replay` do not.
    #[serde(default)]
    replay: Option<String>,
    /// The turns, in order, each given the state the one before left (a
    /// case of several turns).
    #[serde(default)]
    #[schemars(length(min = 1))]
    turns: Option<Vec<CaseTurn>>,
    /// The interaction the turn starts at (a one-turn case); without it,
    /// the dialog whose starter matches `message`.
    #[serde(default)]
    interaction: Option<String>,
    /// The user's message (a one-turn case).
    #[serde(default)]
    message: Option<String>,
    /// What the upstream answers, call by call (a one-turn case).
    #[serde(default)]
    upstream: Option<Vec<UpstreamAnswer>>,
    /// What the turn must show (a one-turn case, where it is required).
    #[serde(default)]
    expect: Option<Expect>,
}

/// A case's schema is that of the case as written.
impl JsonSchema for Case {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Case".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawCase::json_schema(generator)
    }
}

/// A case has `turns` or the one-turn members, and a one-turn case has
/// `expect`.
fn one_form_of_case(schema: &mut schemars::Schema) {
    let present = |field: &str| json!({ "required": [field], "properties": { field: { "not": { "type": "null" } } } });
    let absent = json!({ "type": "null" });
    schema.insert("if".to_owned(), present("turns"));
    schema.insert(
        "then".to_owned(),
        json!({
            "properties": {
                "interaction": absent,
                "message": absent,
                "upstream": absent,
                "expect": absent,
            }
        }),
    );
    schema.insert("else".to_owned(), present("expect"));
}

/// The schema of attributes, a reference to the definition
/// [`json_schema`] adds.
struct AttributesSchema;

impl JsonSchema for AttributesSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Attributes".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "$ref": "#/$defs/Attributes" })
    }
}

/// The members attributes may have and their JSON types, as
/// `patchbay_engine::Attributes` checks them (docs/http-api.md,
/// "Attributes"); each may be `null`, which drops it.
fn attributes_schema() -> Value {
    let strings = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let member = |schema: Value, description: &str| {
        let mut schema = schema;
        if let Some(Value::String(kind)) = schema.get("type").cloned() {
            schema["type"] = json!([kind, "null"]);
        }
        schema["description"] = json!(description);
        schema
    };
    json!({
        "type": "object",
        "description": "What the platform knows of the conversation (docs/http-api.md, \"Attributes\"): set over the conversation's member by member; a member given as null is dropped.",
        "additionalProperties": false,
        "properties": {
            "accountId": member(json!({ "type": "string" }), "The account id: getLPAccountId()."),
            "channel": member(json!({ "type": "string" }), "The channel (lp_web, lp_sms, lp_inapp, lp_whatsapp, ...): getUserChannel()."),
            "engagement": member(strings.clone(), "Engagement attributes (campaignId, engagementId, currentSkillId, ...): getLPEngagementAttribute(name)."),
            "customerInfo": member(json!({ "type": "object" }), "The customer info (customerId, ctype, balance, ...): getLPCustomerInfo()."),
            "personalInfo": member(json!({ "type": "object" }), "Personal info (firstname, lastname, company, contacts, ...): getLPUserPersonalInfo()."),
            "metadata": member(json!({ "type": "object" }), "A metadata event type's name to its value: getMetadata(name)."),
            "webView": member(strings, "Web view variables: getWebViewVariable(name), getWebViewVariables()."),
            "file": member(
                json!({
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "caption": { "type": ["string", "null"] },
                        "type": { "type": ["string", "null"] }
                    }
                }),
                "The file the message came with: getFileCaption(), getFileType().",
            ),
            "maven": { "description": "Conversation Orchestrator's Next Actions answer, any JSON: askMaven()." }
        }
    })
}

impl TryFrom<RawCase> for Case {
    type Error = String;

    fn try_from(raw: RawCase) -> Result<Self, String> {
        let one_turn: Vec<&str> = [
            ("interaction", raw.interaction.is_some()),
            ("message", raw.message.is_some()),
            ("upstream", raw.upstream.is_some()),
            ("expect", raw.expect.is_some()),
        ]
        .into_iter()
        .filter_map(|(member, given)| given.then_some(member))
        .collect();
        let name = raw.name;
        let (turns, multi_turn) = match raw.turns {
            Some(_) if !one_turn.is_empty() => {
                return Err(format!(
                    "case `{name}` has both `turns` and {}: give its turns' `message`, `interaction`, `upstream` and `expect` inside `turns`, or leave `turns` out for a one-turn case",
                    one_turn
                        .iter()
                        .map(|member| format!("`{member}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Some(turns) if turns.is_empty() => {
                return Err(format!("case `{name}` has no turns (`turns: []`)"));
            }
            Some(turns) => (turns, true),
            None => {
                let Some(expect) = raw.expect else {
                    return Err(format!(
                        "case `{name}` needs `expect` (or `turns`, each with its own)"
                    ));
                };
                let turn = CaseTurn {
                    interaction: raw.interaction,
                    message: raw.message.unwrap_or_default(),
                    payload: None,
                    attributes: None,
                    upstream: raw.upstream.unwrap_or_default(),
                    replay: None,
                    expect,
                };
                (vec![turn], false)
            }
        };
        Ok(Self {
            name,
            variables: raw.variables,
            env: raw.env,
            attributes: raw.attributes,
            replay: raw.replay,
            turns,
            multi_turn,
        })
    }
}

impl Case {
    /// How a mismatch of its `index`th turn (from 0) names what differs:
    /// `turn 2: messages` in a case of turns, `messages` in a one-turn case.
    pub fn turn_label(&self, index: usize, what: &str) -> String {
        if self.multi_turn {
            format!("turn {}: {what}", index + 1)
        } else {
            what.to_owned()
        }
    }
}

/// An answer of the local upstream.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamAnswer {
    /// The call it answers: `METHOD URL`. Without a query in the URL, any
    /// query matches.
    #[schemars(regex(pattern = " "))]
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
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// The messages the bot sent, all of them, in order.
    #[serde(default)]
    pub messages: Option<Vec<ExpectedMessage>>,
    /// Where the conversation goes.
    #[serde(default)]
    pub next: Option<String>,
    /// The last call's status (`null`: no response).
    #[serde(default, deserialize_with = "some")]
    pub status: Option<Option<u16>>,
    /// Whether the last call succeeded.
    #[serde(default)]
    pub success: Option<bool>,
    /// Custom data fields (`RDVN.key` to a value or a list of values; a
    /// value is a list of one, `null` a field that is not there): these,
    /// at least.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ExpectedField>")]
    pub fields: BTreeMap<String, Value>,
    /// Bot variables at the end of the turn: these, at least.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The platform actions the turn asked for, all of them, in order,
    /// each with these members at least (`{ type: escalation-event,
    /// escalationType: ... }`).
    #[serde(default)]
    pub actions: Option<Vec<serde_json::Map<String, Value>>>,
}

/// A message a turn must send.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectedMessage {
    /// Text: matches a plain text message of that text, or a structured
    /// one (a question with choices, buttons, a card, ...) whose `text` it
    /// is.
    Text(String),
    /// Members: match a structured message that has each of them, with an
    /// equal value (it may have more).
    Members(serde_json::Map<String, Value>),
}

impl JsonSchema for ExpectedMessage {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExpectedMessage".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number", "boolean", "object"],
            "description": "A text (a plain message of that text, or a structured one whose `text` it is), or members a structured message must have with equal values (`{ type: question, text: ... }`)."
        })
    }
}

/// An expected field's values, for the schema: one value, a list of
/// values, or `null` (the field is not there).
struct ExpectedField;

impl JsonSchema for ExpectedField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExpectedField".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": ["string", "number", "boolean", "null"] },
                { "type": "array", "items": { "type": ["string", "number", "boolean"] } }
            ],
            "description": "A value or a list of values the field must have; null: the field is not there."
        })
    }
}

impl<'de> Deserialize<'de> for ExpectedMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self::Text(text)),
            Value::Number(number) => Ok(Self::Text(number.to_string())),
            Value::Bool(flag) => Ok(Self::Text(flag.to_string())),
            Value::Object(members) => Ok(Self::Members(members)),
            other => Err(serde::de::Error::custom(format!(
                "an expected message is a text or a mapping of members (`{{ type: question, text: ... }}`), not `{other}`"
            ))),
        }
    }
}

/// A turn's attributes as sent: a member given as null stays, to drop the
/// conversation's.
fn turn_attributes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Attributes>, D::Error> {
    Option::<Value>::deserialize(deserializer)?
        .map(Attributes::from_json)
        .transpose()
        .map_err(serde::de::Error::custom)
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
        match parsed.problems().into_iter().next() {
            Some(problem) => Err(error(problem.message)),
            None => Ok(parsed),
        }
    }

    /// What is wrong with a test file that reads: two cases of one name, a
    /// `request` that is not `METHOD URL`, an expected field that is no
    /// field's value, no cases; in file order.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (c, case) in self.cases.iter().enumerate() {
            let case_path = vec![PathStep::key("cases"), PathStep::Index(c)];
            if !seen.insert(case.name.as_str()) {
                problems.push(Problem {
                    path: [case_path.clone(), vec![PathStep::key("name")]].concat(),
                    duplicate: true,
                    message: format!("two cases are named `{}`", case.name),
                });
            }
            for (index, turn) in case.turns.iter().enumerate() {
                let turn_path = if case.multi_turn {
                    [
                        case_path.clone(),
                        vec![PathStep::key("turns"), PathStep::Index(index)],
                    ]
                    .concat()
                } else {
                    case_path.clone()
                };
                let mut at = |path: Vec<PathStep>, what: String| {
                    problems.push(Problem {
                        path: [turn_path.clone(), path].concat(),
                        duplicate: false,
                        message: format!("case `{}`: {}", case.name, case.turn_label(index, &what)),
                    });
                };
                for (k, answer) in turn.upstream.iter().enumerate() {
                    if answer.request.split_once(' ').is_none() {
                        at(
                            vec![
                                PathStep::key("upstream"),
                                PathStep::Index(k),
                                PathStep::key("request"),
                            ],
                            format!("`request: {}` must be `METHOD URL`", answer.request),
                        );
                    }
                }
                for (key, value) in &turn.expect.fields {
                    if expected_values(value).is_none() {
                        at(
                            vec![
                                PathStep::key("expect"),
                                PathStep::key("fields"),
                                PathStep::key(key),
                            ],
                            format!(
                                "`expect.fields.{key}` must be a value or a list of values, not `{value}`"
                            ),
                        );
                    }
                }
            }
        }
        if self.cases.is_empty() {
            problems.push(Problem {
                path: vec![PathStep::key("cases")],
                duplicate: false,
                message: "it has no cases".to_owned(),
            });
        }
        problems
    }
}

/// A mistake in a test file that reads, and where it is.
pub(crate) struct Problem {
    /// The path of the value it is about.
    pub(crate) path: Vec<PathStep>,
    /// Two cases share a name (else: a value that is not allowed).
    pub(crate) duplicate: bool,
    /// What is wrong, naming the case and turn.
    pub(crate) message: String,
}

/// One step of a [`Problem`]'s path.
#[derive(Clone, Debug)]
pub(crate) enum PathStep {
    Key(String),
    Index(usize),
}

impl PathStep {
    fn key(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

/// An expected field as the values it must have: a value is a list of one;
/// `Some(None)` for `null` (the field is not there); `None` for what is no
/// field's value (a mapping, a list holding one).
pub(crate) fn expected_values(value: &Value) -> Option<Option<Vec<String>>> {
    fn one(value: &Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Null => Some(None),
        Value::Array(items) => items.iter().map(one).collect::<Option<_>>().map(Some),
        other => one(other).map(|value| Some(vec![value])),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<TestFile, TestFileError> {
        TestFile::parse("t.test.yaml", text)
    }

    #[test]
    fn a_one_turn_case_reads_as_it_always_did() {
        let file = parse(
            r#"cases:
  - name: one
    interaction: look-up
    message: "1234"
    variables: { locale: en }
    replay: recordings
    upstream:
      - request: GET https://orders.example.com/v1/orders/1234
        body: { status: shipped }
    expect:
      messages: [Shipped]
      next: end
"#,
        )
        .expect("parses");
        let case = &file.cases[0];
        assert!(!case.multi_turn);
        assert_eq!(case.replay.as_deref(), Some("recordings"));
        assert_eq!(case.variables["locale"], "en");
        assert_eq!(case.turns.len(), 1);
        let turn = &case.turns[0];
        assert_eq!(turn.interaction.as_deref(), Some("look-up"));
        assert_eq!(turn.message, "1234");
        assert_eq!(turn.payload, None);
        assert_eq!(turn.upstream.len(), 1);
        assert_eq!(
            turn.expect.messages,
            Some(vec![ExpectedMessage::Text("Shipped".to_owned())])
        );
        assert_eq!(turn.expect.next.as_deref(), Some("end"));
        assert_eq!(case.turn_label(0, "messages"), "messages");
    }

    #[test]
    fn a_case_of_turns_reads_each_turn() {
        let file = parse(
            r#"cases:
  - name: asks then looks up
    variables: { locale: en }
    env: { ORDERS_API_TOKEN: t }
    turns:
      - message: where is my order
        expect: { messages: ["What is your order number?"], next: look-up-order }
      - message: A-1234
        replay: recordings/turn-2
        upstream:
          - request: GET https://orders.example.com/v1/orders/A-1234
            body: { status: shipped }
        expect:
          messages: [{ type: question, text: Anything else? }, 42]
          fields: { ORDER.status: shipped, ORDER.items: [Lamp, Mug] }
      - interaction: menu
        payload: YES
"#,
        )
        .expect("parses");
        let case = &file.cases[0];
        assert!(case.multi_turn);
        assert_eq!(case.env["ORDERS_API_TOKEN"], "t");
        assert_eq!(case.turns.len(), 3);
        assert_eq!(case.turns[0].message, "where is my order");
        assert_eq!(case.turns[0].interaction, None);
        assert_eq!(case.turns[0].expect.next.as_deref(), Some("look-up-order"));
        let second = &case.turns[1];
        assert_eq!(second.replay.as_deref(), Some("recordings/turn-2"));
        assert_eq!(second.upstream.len(), 1);
        let mut members = serde_json::Map::new();
        members.insert("type".to_owned(), json!("question"));
        members.insert("text".to_owned(), json!("Anything else?"));
        assert_eq!(
            second.expect.messages,
            Some(vec![
                ExpectedMessage::Members(members),
                ExpectedMessage::Text("42".to_owned())
            ])
        );
        assert_eq!(second.expect.fields["ORDER.status"], json!("shipped"));
        let third = &case.turns[2];
        assert_eq!(third.interaction.as_deref(), Some("menu"));
        assert_eq!(third.payload.as_deref(), Some("YES"));
        assert_eq!(third.message, "");
        assert!(third.expect.messages.is_none(), "expect is optional");
        assert_eq!(case.turn_label(1, "messages"), "turn 2: messages");
    }

    #[test]
    fn a_case_with_both_turns_and_one_turn_members_is_refused_by_name() {
        let error = parse(
            r#"cases:
  - name: confused
    message: hello
    expect: { next: end }
    turns:
      - message: hello
"#,
        )
        .expect_err("both forms");
        let text = error.to_string();
        assert!(text.starts_with("t.test.yaml: "), "{text}");
        assert!(
            text.contains("case `confused` has both `turns` and `message`, `expect`"),
            "{text}"
        );
    }

    #[test]
    fn a_case_needs_turns_or_expect_and_turns_need_a_turn() {
        let error = parse("cases:\n  - name: nothing\n    message: hi\n").expect_err("no expect");
        assert!(
            error
                .to_string()
                .contains("case `nothing` needs `expect` (or `turns`"),
            "{error}"
        );
        let error = parse("cases:\n  - name: empty\n    turns: []\n").expect_err("no turns");
        assert!(
            error.to_string().contains("case `empty` has no turns"),
            "{error}"
        );
        let error = parse("cases:\n  - name: typo\n    turns:\n      - mesage: hi\n")
            .expect_err("unknown member of a turn");
        assert!(error.to_string().contains("mesage"), "{error}");
    }

    #[test]
    fn a_bad_request_line_names_its_turn() {
        let error = parse(
            r#"cases:
  - name: two
    turns:
      - message: hi
      - message: there
        upstream: [{ request: "https://x.example.com" }]
"#,
        )
        .expect_err("no method");
        assert!(
            error.to_string().contains(
                "case `two`: turn 2: `request: https://x.example.com` must be `METHOD URL`"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_expected_field_is_a_value_or_a_list_of_values() {
        assert_eq!(
            expected_values(&json!("Lamp")),
            Some(Some(vec!["Lamp".to_owned()]))
        );
        assert_eq!(
            expected_values(&json!(["Lamp"])),
            Some(Some(vec!["Lamp".to_owned()]))
        );
        assert_eq!(
            expected_values(&json!([3, true])),
            Some(Some(vec!["3".to_owned(), "true".to_owned()]))
        );
        assert_eq!(expected_values(&json!(null)), Some(None));
        assert_eq!(expected_values(&json!({ "a": 1 })), None);
        assert_eq!(expected_values(&json!([["a"]])), None);

        let file = parse(
            "cases:\n  - name: scalar\n    expect:\n      fields: { ORDER.items: Lamp, ORDER.total: 12 }\n",
        )
        .expect("a scalar field");
        let fields = &file.cases[0].turns[0].expect.fields;
        assert_eq!(fields["ORDER.items"], json!("Lamp"));
        let error = parse(
            "cases:\n  - name: mapping\n    expect:\n      fields: { ORDER.items: { a: 1 } }\n",
        )
        .expect_err("a mapping is no field's value");
        assert!(
            error.to_string().contains(
                "case `mapping`: `expect.fields.ORDER.items` must be a value or a list of values"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_expected_message_is_text_or_a_mapping() {
        let error = parse("cases:\n  - name: list\n    expect:\n      messages: [[a]]\n")
            .expect_err("a list is no message");
        assert!(
            error
                .to_string()
                .contains("an expected message is a text or a mapping"),
            "{error}"
        );
    }
}
