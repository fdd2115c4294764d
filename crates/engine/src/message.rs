//! What the bot sends and what the user sends back.

use std::fmt;

use serde::Serialize;

/// A message the bot sends: plain text (a JSON string), or a question
/// with what the user can pick (a JSON object with a `type`), documented
/// in docs/http-api.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Message {
    /// Plain text.
    Text(String),
    /// A question with choices, buttons, quick replies or cards.
    Question(QuestionMessage),
}

/// A question as the channel shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionMessage {
    /// `multiple-choice`, `buttons`, `quick-replies` or `cards`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The question's text (absent for cards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A multiple choice question's choices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// How a multiple choice question's choices are shown where the
    /// channel can: `buttons` or `quick-replies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<&'static str>,
    /// The question as plain text, for channels without rich content (a
    /// multiple choice question's numbered or lettered list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_text: Option<String>,
    /// A button question's buttons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonMessage>,
    /// A quick reply question's replies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<ButtonMessage>,
    /// A structured question's cards.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<CardMessage>,
}

/// A button or a quick reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonMessage {
    /// Its label.
    pub title: String,
    /// What a click sends back as the turn's `payload` (the label when
    /// absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// A web page it opens instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A card of a structured question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardMessage {
    /// Its title.
    pub title: String,
    /// The line under the title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Its image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Its buttons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonMessage>,
}

impl Message {
    /// The message's text: the text itself, or a question's text (a card
    /// question's first title).
    pub fn text(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Question(question) => question
                .text
                .as_deref()
                .or_else(|| question.cards.first().map(|card| card.title.as_str()))
                .unwrap_or_default(),
        }
    }
}

/// The message as a text-only channel would show it.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let question = match self {
            Self::Text(text) => return f.write_str(text),
            Self::Question(question) => question,
        };
        if let Some(fallback) = &question.fallback_text {
            return f.write_str(fallback);
        }
        let mut lines: Vec<String> = question.text.iter().cloned().collect();
        let buttons = |buttons: &[ButtonMessage]| {
            buttons
                .iter()
                .map(|button| format!("[{}]", button.title))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for group in [&question.buttons, &question.quick_replies] {
            if !group.is_empty() {
                lines.push(buttons(group));
            }
        }
        for card in &question.cards {
            lines.push(card.title.clone());
            lines.extend(card.subtitle.iter().cloned());
            if !card.buttons.is_empty() {
                lines.push(buttons(&card.buttons));
            }
        }
        f.write_str(&lines.join("\n"))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl PartialEq<str> for Message {
    fn eq(&self, other: &str) -> bool {
        matches!(self, Self::Text(text) if text == other)
    }
}

impl PartialEq<&str> for Message {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for Message {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// What the user sent: a message, and the payload of the button or quick
/// reply they clicked, if they clicked one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserMessage {
    /// The message as written (a click sends the label).
    pub text: String,
    /// The clicked button's or quick reply's payload.
    pub payload: Option<String>,
}

impl UserMessage {
    /// A typed message.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            payload: None,
        }
    }

    /// The message with the payload of a clicked button or quick reply.
    #[must_use]
    pub fn with_payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }
}

impl From<&str> for UserMessage {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<&String> for UserMessage {
    fn from(text: &String) -> Self {
        Self::new(text.as_str())
    }
}

impl From<String> for UserMessage {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}
