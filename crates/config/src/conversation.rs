//! Questions and what an answer does: the product's question interactions
//! ("Questions") and their rules ("Response Match & Actions", now "Custom
//! Rules"), with captures into variables and slots (docs/config.md,
//! "Questions").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Condition, NextAction, Pattern, StarterPattern};
use crate::template::Template;

/// The fields of a question interaction (every kind).
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(rename_all = "camelCase")]
pub struct Question {
    /// What the bot asks; every kind but `structured` has it.
    pub text: Option<Template>,
    /// The question's kind and what it offers the user.
    #[schemars(skip)]
    pub ask: Ask,
    /// JavaScript run before the question is prepared.
    pub pre_process: Option<String>,
    /// JavaScript run after the question is prepared, before it is sent
    /// (the product's order).
    pub post_process: Option<String>,
    /// JavaScript run when the answer arrives, before the rules.
    pub process_user_response: Option<String>,
    /// Rules tried on the answer; the first whose match holds wins.
    #[schemars(with = "Option<Vec<AnswerRuleForm>>")]
    pub rules: Vec<AnswerRule>,
    /// What happens to an answer no rule takes.
    pub no_match: Option<NoMatch>,
}

impl Question {
    /// The choices the user picks from by number, letter or text
    /// (multiple choice), if any.
    pub fn choices(&self) -> &[String] {
        match &self.ask {
            Ask::MultipleChoice(choice) => &choice.choices,
            _ => &[],
        }
    }
}

/// The product's question kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// A text question.
    Text,
    /// A multiple choice question.
    MultipleChoice(MultipleChoice),
    /// A button question.
    Buttons(Vec<Button>),
    /// A quick reply question.
    QuickReplies(Vec<Button>),
    /// A structured question: one card or more.
    Structured(Vec<Card>),
}

/// A multiple choice question's choices and how they are shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultipleChoice {
    /// The choices, in order.
    #[schemars(transform = choices_schema)]
    pub choices: Vec<String>,
    /// Shown as buttons (the default) or quick replies where the channel
    /// can.
    #[serde(default)]
    pub display: ChoiceDisplay,
    /// The numbering of the text-only list (`1.` or `a.`).
    #[serde(default)]
    pub list_style: ListStyle,
}

/// How a channel with rich content shows a multiple choice question.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChoiceDisplay {
    /// Buttons.
    #[default]
    Buttons,
    /// Quick reply chips.
    QuickReplies,
}

/// The numbering of a multiple choice question sent as plain text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ListStyle {
    /// `1.`, `2.`, ...
    #[default]
    Numbers,
    /// `a.`, `b.`, ...
    Letters,
}

impl ListStyle {
    /// The label of the choice at `index` (from 0): `1`, or `a`.
    pub fn label(self, index: usize) -> String {
        match self {
            Self::Numbers => (index + 1).to_string(),
            Self::Letters => letters(index),
        }
    }
}

/// The letter label of the choice at `index`: `a` to `z`, then `aa`,
/// `ab`, ... (as spreadsheet columns count).
fn letters(index: usize) -> String {
    let mut label = Vec::new();
    let mut rest = index + 1;
    while rest > 0 {
        rest -= 1;
        label.push(b'a' + u8::try_from(rest % 26).unwrap_or(0));
        rest /= 26;
    }
    label.reverse();
    String::from_utf8(label).unwrap_or_default()
}

/// A button (button and structured questions) or a quick reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Button {
    /// The label (the product's "Button Label" or quick reply "Title").
    pub title: String,
    /// What a click sends back instead of the label (the product's
    /// "Callback" or quick reply "Payload").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// A web page the button opens (the product's "Web URL" action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Button {
    /// What a click sends back: the payload, or else the label.
    pub fn sent_back(&self) -> &str {
        self.payload.as_deref().unwrap_or(&self.title)
    }
}

/// A card (tile) of a structured question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Card {
    /// The card's title.
    pub title: Template,
    /// A line under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<Template>,
    /// An image shown on the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The card's buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

/// A rule on a question's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRule {
    /// A name for traces.
    pub name: Option<String>,
    /// What the answer must be.
    pub when: AnswerMatch,
    /// Conditions on variables and fields, all of which must hold too.
    pub conditions: Vec<Condition>,
    /// Values stored when the rule wins.
    pub set: Vec<Capture>,
    /// Messages sent when the rule wins.
    pub messages: Vec<Template>,
    /// Where to go when the rule wins; the question's `next` unless given.
    pub next: Option<NextAction>,
}

/// The match types of a question's rules.
#[derive(Clone, Debug, PartialEq)]
pub enum AnswerMatch {
    /// The answer fits one of these patterns.
    Pattern(Vec<StarterPattern>),
    /// The regular expression finds a match in the answer.
    Regex(Pattern),
    /// The answer is one of these values (case and surrounding spaces
    /// ignored).
    Exact(Vec<String>),
    /// The user picked one of these choices, by number, letter or text
    /// (the product's "Evaluate Options").
    Options(Vec<ChoiceRef>),
    /// A button or quick reply with one of these payloads was clicked (or
    /// the payload was typed).
    Payload(Vec<String>),
    /// Any answer that no other rule takes; tried last.
    NoMatch,
}

/// A value a winning rule stores.
#[derive(Clone, Debug, PartialEq)]
pub struct Capture {
    /// Where it goes.
    pub target: CaptureTarget,
    /// What is stored.
    pub source: CaptureSource,
}

/// Where a captured value goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureTarget {
    /// A bot variable, for as long as `scope` says.
    Variable {
        /// The variable's name.
        name: String,
        /// How long it lives.
        scope: Scope,
    },
    /// A slot of the question's dialog.
    Slot(String),
}

/// What a capture stores.
#[derive(Clone, Debug, PartialEq)]
pub enum CaptureSource {
    /// The user's answer as written.
    Answer,
    /// The picked choice's text (multiple choice).
    Choice,
    /// The clicked button's or quick reply's payload.
    Payload,
    /// A named group of the rule's regular expression.
    Group(String),
    /// A template (`{$userMessage}`, a variable, plain text).
    Value(Template),
}

/// How long a captured variable lives (the product's durations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This turn only.
    Request,
    /// Until the dialog ends.
    Dialog,
    /// The conversation.
    #[default]
    Session,
    /// The user, across conversations.
    Forever,
}

/// What a question does with an answer no rule takes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoMatch {
    /// Sent before the question is asked again (the product's "Fallback
    /// Response").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Template>,
    /// How many times the question is asked again; without it, until an
    /// answer fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Where to go once the retries are spent; `end` unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextAction>,
}

/// A choice named in an `options` match: its number (from 1) or its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ChoiceRef {
    /// The choice's number, from 1.
    Number(usize),
    /// The choice's text.
    Title(String),
}

impl ChoiceRef {
    /// The index (from 0) of the choice this names among `choices`.
    pub fn index(&self, choices: &[String]) -> Option<usize> {
        match self {
            // A choice whose text is the number wins (`options: ["3"]`).
            Self::Number(number) => choices
                .iter()
                .position(|choice| choice.trim() == number.to_string())
                .or_else(|| number.checked_sub(1).filter(|index| *index < choices.len())),
            Self::Title(title) => choices.iter().position(|choice| same_text(choice, title)),
        }
    }
}

/// A text as answers are compared: lower case, one space between words.
pub fn normalized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Whether two texts are the same answer: case ignored, and whitespace but
/// for one space between words.
pub fn same_text(a: &str, b: &str) -> bool {
    let mut a = a.split_whitespace();
    let mut b = b.split_whitespace();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y))
                if x.eq_ignore_ascii_case(y) || x.to_lowercase() == y.to_lowercase() => {}
            _ => return false,
        }
    }
}

// The bot file's form of a question is read by `crate::raw`; these give its
// schema and write it back (for tools), as one flat record.

/// Choices are texts with something in them, one at least.
fn choices_schema(schema: &mut schemars::Schema) {
    schema.insert("minItems".to_owned(), serde_json::json!(1));
    schema.insert(
        "items".to_owned(),
        serde_json::json!({ "type": ["string", "number", "boolean"], "pattern": "\\S" }),
    );
}

// The file's forms of a question's rules, read by `crate::raw` into
// `AnswerRule`, `AnswerMatch` and `Capture`: for the schema only.

/// A rule on a question's answer.
#[derive(JsonSchema)]
#[schemars(rename = "AnswerRule", rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct AnswerRuleForm {
    /// A name for traces.
    name: Option<String>,
    /// What the answer must be: exactly one of `pattern`, `regex`,
    /// `exact`, `options`, `payload` or `noMatch`, and `conditions` on
    /// variables and fields, all of which must hold too.
    #[schemars(rename = "match")]
    when: AnswerMatchForm,
    /// Values stored when the rule wins.
    set: Option<Vec<CaptureForm>>,
    /// Messages sent when the rule wins.
    messages: Option<Vec<Template>>,
    /// Where to go when the rule wins; the question's `next` unless given.
    next: Option<NextAction>,
}

/// How a question's rule matches the answer: exactly one of `pattern`,
/// `regex`, `exact`, `options`, `payload` or `noMatch`, and `conditions`
/// on variables and fields, all of which must hold too.
#[derive(JsonSchema)]
#[schemars(
    rename = "AnswerMatch",
    rename_all = "camelCase",
    deny_unknown_fields,
    transform = one_answer_match
)]
#[allow(dead_code)]
struct AnswerMatchForm {
    /// The answer fits one of these patterns (`*` matches any text,
    /// `(a|b|)` are alternates; case and surrounding punctuation ignored).
    pattern: Option<crate::schema::OneOrMany<StarterPattern>>,
    /// The regular expression finds a match in the answer; its named
    /// groups can be captured (`set: [{ slot: x, group: NAME }]`).
    regex: Option<Pattern>,
    /// The answer is one of these values (case and surrounding spaces
    /// ignored).
    exact: Option<crate::schema::OneOrMany<String>>,
    /// The user picked one of these choices, by number (from 1), letter or
    /// text (the product's "Evaluate Options").
    #[schemars(length(min = 1))]
    options: Option<Vec<ChoiceRef>>,
    /// A button or quick reply with one of these payloads was clicked (or
    /// the payload was typed).
    payload: Option<crate::schema::OneOrMany<String>>,
    /// `true`: any answer that no other rule takes; tried last.
    #[schemars(extend("enum" = [true, null]))]
    no_match: Option<bool>,
    /// Conditions on variables and fields, all of which must hold too.
    conditions: Option<Vec<Condition>>,
}

/// A question's rule matches the answer one way.
fn one_answer_match(schema: &mut schemars::Schema) {
    let kinds = ["pattern", "regex", "exact", "options", "payload", "noMatch"];
    schema.insert(
        "oneOf".to_owned(),
        kinds
            .iter()
            .map(|kind| crate::schema::present(kind))
            .collect(),
    );
}

/// A value a winning rule stores: into one `variable` or `slot`, from
/// one of `value`, `group` and `from` (the answer unless given).
#[derive(JsonSchema)]
#[schemars(
    rename = "Capture",
    rename_all = "camelCase",
    deny_unknown_fields,
    transform = one_capture
)]
#[allow(dead_code)]
struct CaptureForm {
    /// The bot variable it goes to.
    variable: Option<String>,
    /// The slot of the question's dialog it goes to (instead of a
    /// variable).
    slot: Option<String>,
    /// How long the variable lives; `session` unless given (variables
    /// only).
    scope: Option<Scope>,
    /// A template stored (`{$userMessage}`, a variable, plain text).
    value: Option<Template>,
    /// A named group of the rule's regular expression, stored.
    group: Option<String>,
    /// What of the answer is stored when neither `value` nor `group` is
    /// given; `answer` unless given.
    from: Option<CaptureFromForm>,
}

/// What of the answer a capture stores.
#[derive(JsonSchema)]
#[schemars(rename = "CaptureFrom", rename_all = "lowercase")]
#[allow(dead_code)]
enum CaptureFromForm {
    /// The user's answer as written.
    Answer,
    /// The picked choice's text (multiple choice).
    Choice,
    /// The clicked button's or quick reply's payload.
    Payload,
}

/// A capture names one target and at most one source; a slot has no scope.
fn one_capture(schema: &mut schemars::Schema) {
    use crate::schema::{add_rule, at_most_one, present};
    add_rule(
        schema,
        serde_json::json!({ "oneOf": [present("variable"), present("slot")] }),
    );
    add_rule(
        schema,
        serde_json::json!({ "if": present("slot"), "then": { "not": present("scope") } }),
    );
    add_rule(schema, at_most_one(&["value", "group", "from"]));
}

impl Serialize for Question {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(text) = &self.text {
            map.serialize_entry("text", text)?;
        }
        match &self.ask {
            Ask::Text => {}
            Ask::MultipleChoice(choice) => {
                map.serialize_entry("choices", &choice.choices)?;
                map.serialize_entry("display", &choice.display)?;
                map.serialize_entry("listStyle", &choice.list_style)?;
            }
            Ask::Buttons(buttons) => map.serialize_entry("buttons", buttons)?,
            Ask::QuickReplies(replies) => map.serialize_entry("quickReplies", replies)?,
            Ask::Structured(cards) => map.serialize_entry("cards", cards)?,
        }
        for (key, code) in [
            ("preProcess", &self.pre_process),
            ("postProcess", &self.post_process),
            ("processUserResponse", &self.process_user_response),
        ] {
            if let Some(code) = code {
                map.serialize_entry(key, code)?;
            }
        }
        if !self.rules.is_empty() {
            map.serialize_entry("rules", &self.rules)?;
        }
        if let Some(no_match) = &self.no_match {
            map.serialize_entry("noMatch", no_match)?;
        }
        map.end()
    }
}

impl Serialize for AnswerRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        use serde_json::{Value, json};
        let mut when = match &self.when {
            AnswerMatch::Pattern(patterns) => json!({ "pattern": patterns }),
            AnswerMatch::Regex(regex) => json!({ "regex": regex }),
            AnswerMatch::Exact(values) => json!({ "exact": values }),
            AnswerMatch::Options(options) => json!({ "options": options }),
            AnswerMatch::Payload(payloads) => json!({ "payload": payloads }),
            AnswerMatch::NoMatch => json!({ "noMatch": true }),
        };
        if !self.conditions.is_empty() {
            when["conditions"] = json!(self.conditions);
        }
        let set: Vec<Value> = self
            .set
            .iter()
            .map(|capture| {
                let mut record = match &capture.target {
                    CaptureTarget::Variable { name, scope } => {
                        json!({ "variable": name, "scope": scope })
                    }
                    CaptureTarget::Slot(name) => json!({ "slot": name }),
                };
                match &capture.source {
                    CaptureSource::Answer => {}
                    CaptureSource::Choice => record["from"] = json!("choice"),
                    CaptureSource::Payload => record["from"] = json!("payload"),
                    CaptureSource::Group(group) => record["group"] = json!(group),
                    CaptureSource::Value(value) => record["value"] = json!(value),
                }
                record
            })
            .collect();
        let mut map = serializer.serialize_map(None)?;
        if let Some(name) = &self.name {
            map.serialize_entry("name", name)?;
        }
        map.serialize_entry("match", &when)?;
        if !set.is_empty() {
            map.serialize_entry("set", &set)?;
        }
        if !self.messages.is_empty() {
            map.serialize_entry("messages", &self.messages)?;
        }
        if let Some(next) = &self.next {
            map.serialize_entry("next", next)?;
        }
        map.end()
    }
}

/// Read by hand: a YAML `yes` or `1.5` is a choice's text, not a refusal.
impl<'de> Deserialize<'de> for ChoiceRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = ChoiceRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a choice's number (from 1) or its text")
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<ChoiceRef, E> {
                Ok(usize::try_from(number)
                    .map_or_else(|_| ChoiceRef::Title(number.to_string()), ChoiceRef::Number))
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<ChoiceRef, E> {
                match u64::try_from(number) {
                    Ok(number) => self.visit_u64(number),
                    Err(_) => Ok(ChoiceRef::Title(number.to_string())),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<ChoiceRef, E> {
                Ok(ChoiceRef::Title(number.to_string()))
            }

            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<ChoiceRef, E> {
                Ok(ChoiceRef::Title(value.to_string()))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ChoiceRef, E> {
                Ok(ChoiceRef::Title(text.to_owned()))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_labels_go_on_past_z() {
        let label = |index| ListStyle::Letters.label(index);
        assert_eq!(label(0), "a");
        assert_eq!(label(25), "z");
        assert_eq!(label(26), "aa");
        assert_eq!(label(27), "ab");
        assert_eq!(label(701), "zz");
        assert_eq!(label(702), "aaa");
        assert_eq!(ListStyle::Numbers.label(26), "27");
    }

    #[test]
    fn empty_choices_and_empty_match_lists_are_refused() {
        for (rule, says) in [
            ("choices: [Yes, \"  \"]", "a choice is empty"),
            (
                "choices: [Yes]\n        rules: [{ match: { exact: [] } }]",
                "an empty list",
            ),
            (
                "choices: [Yes]\n        rules: [{ match: { pattern: [] } }]",
                "an empty list",
            ),
            (
                "choices: [Yes]\n        rules: [{ match: { options: [] } }]",
                "an empty list",
            ),
        ] {
            let text = format!(
                "name: b\ndialogs:\n  - name: d\n    interactions:\n      - name: q\n        type: multiple-choice\n        text: Sure?\n        {rule}\n"
            );
            let report = crate::load("b.yaml", &text).expect_err(rule);
            let shown = report.render(crate::RenderStyle::Plain);
            assert!(shown.contains(says), "{rule}: {shown}");
        }
    }

    #[test]
    fn yaml_words_and_numbers_in_answer_rules_are_text() {
        let bot = crate::load(
            "b.yaml",
            r#"name: b
dialogs:
  - name: d
    interactions:
      - name: q
        type: multiple-choice
        text: Sure?
        choices: [Yes, No, "42"]
        rules:
          - match: { exact: no }
          - match: { exact: [yes, 42, 1.5, true] }
          - match: { payload: yes }
          - match: { pattern: no }
          - match: { options: [Yes, 3, No] }
"#,
        )
        .unwrap_or_else(|report| panic!("{}", report.render(crate::RenderStyle::Plain)))
        .bot;
        let crate::InteractionKind::Question(question) = &bot.dialogs[0].interactions[0].kind
        else {
            panic!("a question");
        };
        let exact = |rule: &AnswerRule| match &rule.when {
            AnswerMatch::Exact(values) => values.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(exact(&question.rules[0]), ["no"]);
        assert_eq!(exact(&question.rules[1]), ["yes", "42", "1.5", "true"]);
        assert_eq!(
            question.rules[2].when,
            AnswerMatch::Payload(vec!["yes".to_owned()])
        );
        let AnswerMatch::Options(options) = &question.rules[4].when else {
            panic!("options");
        };
        let indices: Vec<_> = options
            .iter()
            .map(|option| option.index(question.choices()))
            .collect();
        assert_eq!(indices, [Some(0), Some(2), Some(1)]);
    }
}
