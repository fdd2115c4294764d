//! What the bot sends and what the user sends back.

use std::fmt;

use patchbay_script::ScriptOutput;
use serde::Serialize;

/// A message the bot sends: plain text (a JSON string), or a question
/// with what the user can pick (a JSON object with a `type`), documented
/// in docs/http-api.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Message {
    /// Plain text.
    Text(String),
    /// A question with choices, buttons, quick replies or cards; or text
    /// with a delay (`type` `text`).
    Question(QuestionMessage),
}

/// Characters a text message has at most: a longer one is sent in parts,
/// split at a word boundary, unless a script allowed long texts
/// (`setAllowMaxTextResponse(true)`), as in the product.
pub(crate) const TEXT_MESSAGE_LIMIT: usize = 320;

/// A question as the channel shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionMessage {
    /// `multiple-choice`, `buttons`, `quick-replies` or `cards`; `text`
    /// for text with a delay.
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
    /// How long the channel waits before it shows the message, in
    /// milliseconds (`setMessageDelay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u32>,
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

impl Message {
    /// A message a script sent: quick-reply message when it has replies
    /// (`sendMessageWithQuickReplies`), delayed when the run set a delay.
    pub(crate) fn from_script(
        text: String,
        quick_replies: Option<&[patchbay_script::QuickReply]>,
        delay_ms: Option<u32>,
    ) -> Self {
        let message = Self::Text(text);
        let message = match quick_replies {
            Some(replies) => message.with_quick_replies(quick_reply_buttons(replies)),
            None => message,
        };
        message.delayed(delay_ms)
    }

    /// The message shown after `delay_ms` (none, or 0: at once): text
    /// becomes `{"type": "text", "text", "delayMs"}`, an object gains
    /// `delayMs`.
    #[must_use]
    pub(crate) fn delayed(self, delay_ms: Option<u32>) -> Self {
        let Some(delay) = delay_ms.filter(|delay| *delay > 0) else {
            return self;
        };
        let mut question = match self {
            Self::Text(text) => QuestionMessage {
                kind: "text",
                text: Some(text),
                ..QuestionMessage::default()
            },
            Self::Question(question) => question,
        };
        question.delay_ms = Some(delay);
        Self::Question(question)
    }

    /// The message with quick replies (`addQuickReplies`): text becomes a
    /// `quick-replies` message; a `quick-replies` message's replies are
    /// replaced; any other question gets them as its `quickReplies`. No
    /// replies leave the message as it is.
    #[must_use]
    pub(crate) fn with_quick_replies(self, replies: Vec<ButtonMessage>) -> Self {
        if replies.is_empty() {
            return self;
        }
        let mut question = match self {
            Self::Text(text) => QuestionMessage {
                kind: "quick-replies",
                text: Some(text),
                ..QuestionMessage::default()
            },
            Self::Question(question) => question,
        };
        if question.kind == "text" {
            question.kind = "quick-replies";
        }
        question.quick_replies = replies;
        Self::Question(question)
    }

    /// The message as sent: text longer than [`TEXT_MESSAGE_LIMIT`] in
    /// parts (each keeping its delay), unless `allow_long`; anything else
    /// as it is. A text cut in parts has the bot's `secrets` masked first:
    /// a secret cut in two would no longer be recognised where the turn is
    /// shown.
    pub(crate) fn split(
        self,
        allow_long: bool,
        secrets: &patchbay_credentials::KnownSecrets,
    ) -> Vec<Self> {
        let (text, delay) = match &self {
            Self::Text(text) => (text, None),
            Self::Question(QuestionMessage {
                kind: "text",
                text: Some(text),
                delay_ms,
                ..
            }) => (text, *delay_ms),
            Self::Question(_) => return vec![self],
        };
        if allow_long || text.chars().nth(TEXT_MESSAGE_LIMIT).is_none() {
            return vec![self];
        }
        split_text(&secrets.mask(text), TEXT_MESSAGE_LIMIT)
            .into_iter()
            .map(|part| Self::Text(part).delayed(delay))
            .collect()
    }
}

/// Quick replies as buttons of a message.
pub(crate) fn quick_reply_buttons(replies: &[patchbay_script::QuickReply]) -> Vec<ButtonMessage> {
    replies
        .iter()
        .map(|reply| ButtonMessage {
            title: reply.title.clone(),
            payload: reply.payload.clone(),
            url: None,
        })
        .collect()
}

/// `text` in parts of at most `limit` characters, each ending at a word
/// boundary (the spaces there dropped), a word longer than `limit` cut.
/// Linear in the text's length: each part looks no further than `limit`
/// characters ahead.
pub(crate) fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    // The byte offset of the first character past the limit, while there
    // is one.
    while let Some((past, _)) = rest.char_indices().nth(limit) {
        // The last space the part may end at: up to the one just past the
        // limit (the part then has exactly `limit` characters).
        let space_end = past + rest[past..].chars().next().map_or(0, char::len_utf8);
        let boundary = rest[..space_end]
            .char_indices()
            .rev()
            .find(|(at, c)| c.is_whitespace() && !rest[..*at].trim_end().is_empty())
            .map(|(at, _)| at);
        let (part, next) = match boundary {
            Some(at) => (rest[..at].trim_end(), &rest[at..]),
            None => rest.split_at(past),
        };
        parts.push(part.to_owned());
        rest = next.trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

/// The messages of one step of a turn as they are sent: long texts split
/// ([`Message::split`]); quick replies an earlier step added with nothing
/// to attach to (`pending`) on the step's first message; the step's own
/// (`addQuickReplies`) on the interaction's own message (`own`, an index
/// into `messages`; its last part when split), else on the step's last
/// message, else kept in `pending` for the next message of the turn.
pub(crate) fn finish_step(
    messages: &mut Vec<Message>,
    own: Option<usize>,
    added: Option<Vec<ButtonMessage>>,
    allow_long: bool,
    pending: &mut Option<Vec<ButtonMessage>>,
    secrets: &patchbay_credentials::KnownSecrets,
) {
    let mut sent = Vec::with_capacity(messages.len());
    let mut own_at = None;
    for (index, message) in std::mem::take(messages).into_iter().enumerate() {
        sent.extend(message.split(allow_long, secrets));
        if own == Some(index) {
            own_at = sent.len().checked_sub(1);
        }
    }
    if let Some(first) = sent.first_mut()
        && let Some(replies) = pending.take()
    {
        *first = first.clone().with_quick_replies(replies);
    }
    if let Some(replies) = added {
        match own_at.or_else(|| sent.len().checked_sub(1)) {
            Some(at) => sent[at] = sent[at].clone().with_quick_replies(replies),
            None => *pending = Some(replies),
        }
    }
    *messages = sent;
}

/// The messages a script run sent, as the bot sends them: with their
/// quick replies (`sendMessageWithQuickReplies`) and the run's delay
/// (`setMessageDelay`).
pub(crate) fn script_messages(output: &ScriptOutput) -> impl Iterator<Item = Message> + '_ {
    // The replies are in the order of their messages: one pass over both.
    let mut quick_replies = output.quick_reply_messages.iter().peekable();
    output
        .messages
        .iter()
        .enumerate()
        .map(move |(index, text)| {
            let replies = quick_replies
                .next_if(|(at, _)| *at == index)
                .map(|(_, replies)| replies.as_slice());
            Message::from_script(text.clone(), replies, output.message_delay_ms)
        })
}

/// What a step's scripts asked of its messages (kept in its
/// [`StepTrace`](crate::StepTrace) until the step is recorded).
#[derive(Clone, Debug, Default)]
pub(crate) struct StepFlow {
    /// The index of the interaction's own message (a text or a question)
    /// in the step's messages, if it sent one.
    pub(crate) own_message: Option<usize>,
    /// The last `addQuickReplies` of the step's scripts.
    pub(crate) quick_replies: Option<Vec<ButtonMessage>>,
    /// The last script run's `setMessageDelay`, if it called it (read after
    /// `preProcess` for the interaction's own messages).
    pub(crate) delay_ms: Option<u32>,
    /// The last `setAllowMaxTextResponse` (or write of its variable) of the
    /// step's scripts.
    pub(crate) allow_long: Option<bool>,
}

impl StepFlow {
    /// Takes what one script run asked.
    pub(crate) fn take_run(&mut self, output: &ScriptOutput) {
        if let Some(replies) = &output.added_quick_replies {
            self.quick_replies = Some(quick_reply_buttons(replies));
        }
        self.delay_ms = output.message_delay_ms;
        if let Some(write) = output
            .variables
            .iter()
            .rev()
            .find(|write| write.name == patchbay_script::ALLOW_MAX_TEXT_VARIABLE)
        {
            self.allow_long = Some(write.value.trim().eq_ignore_ascii_case("true"));
        }
    }
}

/// What carries from step to step of a turn for its messages.
#[derive(Debug, Default)]
pub(crate) struct TurnFlow {
    /// Whether long texts go whole (`setAllowMaxTextResponse(true)`, kept
    /// in the conversation's session variable).
    allow_long: bool,
    /// Quick replies a step added when it sent no message: for the turn's
    /// next message.
    pending: Option<Vec<ButtonMessage>>,
    /// The bot's secrets, masked in a text before it is cut in parts.
    secrets: std::sync::Arc<patchbay_credentials::KnownSecrets>,
}

impl TurnFlow {
    /// As the conversation left it.
    pub(crate) fn new(
        state: &crate::ConversationState,
        secrets: std::sync::Arc<patchbay_credentials::KnownSecrets>,
    ) -> Self {
        Self {
            secrets,
            allow_long: state
                .variables
                .get(patchbay_script::ALLOW_MAX_TEXT_VARIABLE)
                .is_some_and(|allow| allow.value.trim().eq_ignore_ascii_case("true")),
            pending: None,
        }
    }

    /// A step's messages as they are sent ([`finish_step`]), the flag its
    /// scripts set applying from this step on.
    pub(crate) fn finish(&mut self, messages: &mut Vec<Message>, step: StepFlow) {
        if let Some(allow) = step.allow_long {
            self.allow_long = allow;
        }
        finish_step(
            messages,
            step.own_message,
            step.quick_replies,
            self.allow_long,
            &mut self.pending,
            &self.secrets,
        );
    }

    /// Ends the turn: quick replies still waiting for a message are
    /// dropped, which the last step's debug output says.
    pub(crate) fn end(&mut self, steps: &mut [crate::StepTrace]) {
        if self.pending.take().is_some()
            && let Some(last) = steps.last_mut()
        {
            last.debug.push(
                "(addQuickReplies: no message followed in this turn; its quick replies were dropped)"
                    .to_owned(),
            );
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
    /// What the platform sends with the message (its attributes): set over
    /// the conversation's, member by member, as the turn starts.
    pub attributes: Option<crate::Attributes>,
    /// Keep each call's response in the turn's trace
    /// ([`crate::Invocation::response`]): off by default, for privacy
    /// (docs/http-api.md, "Responses in the trace").
    pub show_responses: bool,
}

impl UserMessage {
    /// A typed message.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            payload: None,
            attributes: None,
            show_responses: false,
        }
    }

    /// The message with the payload of a clicked button or quick reply.
    #[must_use]
    pub fn with_payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// The message with the attributes the platform sends with it.
    #[must_use]
    pub fn with_attributes(mut self, attributes: crate::Attributes) -> Self {
        self.attributes = Some(attributes);
        self
    }

    /// The message with each call's response kept in the turn's trace
    /// ([`crate::Invocation::response`]).
    #[must_use]
    pub fn with_show_responses(mut self) -> Self {
        self.show_responses = true;
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

/// The caller's W3C Trace Context (`traceparent`,
/// <https://www.w3.org/TR/trace-context/>): every upstream call a turn or
/// an invocation makes within [`TraceParent::scope`] sends `traceparent`
/// with its trace id and a span id of its own, so a tracing system shows
/// the upstream calls under the caller's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    parent_id: String,
    flags: u8,
}

tokio::task_local! {
    static TRACE_PARENT: TraceParent;
}

impl TraceParent {
    /// A `traceparent` header's value, if it is one: version `00` (or a
    /// later one, read as `00`), 32 and 16 lowercase hex digits not all
    /// zero, two of flags.
    pub fn parse(value: &str) -> Option<Self> {
        let hex = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let mut parts = value.trim().splitn(5, '-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let rest = parts.next();
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || rest.is_none())
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && hex(flags, 2);
        valid.then(|| Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags: u8::from_str_radix(flags, 16).unwrap_or(0),
        })
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The caller's span id: 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    /// The `traceparent` of one call made under this one: the same trace
    /// and flags, a new span id.
    pub fn child(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(self.trace_id.as_bytes());
        hasher.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let span = hasher.finish().max(1);
        format!("00-{}-{span:016x}-{:02x}", self.trace_id, self.flags)
    }

    /// Runs `future` (a turn, an invocation) with its upstream calls in
    /// this trace.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        TRACE_PARENT.scope(self, future).await
    }

    /// The trace the running turn is in, if the caller sent one.
    pub(crate) fn current() -> Option<Self> {
        TRACE_PARENT.try_with(Clone::clone).ok()
    }
}

#[cfg(test)]
mod tests {
    use patchbay_credentials::KnownSecrets;

    #[test]
    fn traceparent_is_read_as_the_specification_writes_it() {
        use super::TraceParent;
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(good).expect("valid");
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parent.child();
        assert!(
            child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{child}"
        );
        assert!(child.ends_with("-01") && child.len() == 55, "{child}");
        assert_ne!(child, good);
        assert_eq!(
            TraceParent::parse(&child).expect("child").trace_id(),
            parent.trace_id()
        );
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    use super::*;

    fn words(count: usize, word: &str) -> String {
        vec![word; count].join(" ")
    }

    #[test]
    fn long_text_splits_at_the_last_word_boundary_within_the_limit() {
        // 64 five-letter words and spaces: 383 characters.
        let text = words(64, "abcde");
        let parts = split_text(&text, 320);
        // 53 words and their spaces are 317 characters.
        assert_eq!(parts, vec![words(53, "abcde"), words(11, "abcde")]);
        assert_eq!(parts.join(" "), text);
        // A space just past the limit ends a part of exactly the limit.
        let exact = format!("{} {}", "x".repeat(320), "tail");
        assert_eq!(
            split_text(&exact, 320),
            vec!["x".repeat(320), "tail".to_owned()]
        );
        // Up to the limit, one part.
        let fits = "y".repeat(320);
        assert_eq!(split_text(&fits, 320), vec![fits.clone()]);
    }

    /// A script may send a megabyte of text, and a run thousands of
    /// messages: splitting them and pairing them with their quick replies
    /// takes one pass, not one per part or per message.
    #[test]
    fn large_outputs_take_linear_time() {
        let started = std::time::Instant::now();
        let text = "word ".repeat(2 * 1024 * 1024 / 5);
        let parts = Message::Text(text).split(false, &KnownSecrets::default());
        assert_eq!(parts.len(), 2 * 1024 * 1024 / 5 / 64 + 1);
        let count = 200_000;
        let output = ScriptOutput {
            messages: vec!["m".to_owned(); count],
            quick_reply_messages: (0..count)
                .map(|at| {
                    let reply = patchbay_script::QuickReply {
                        title: "t".to_owned(),
                        payload: None,
                    };
                    (at, vec![reply])
                })
                .collect(),
            ..ScriptOutput::default()
        };
        let sent: Vec<Message> = script_messages(&output).collect();
        assert!(
            sent.iter()
                .all(|message| matches!(message, Message::Question(_)))
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_word_longer_than_the_limit_is_cut_and_characters_are_counted() {
        let text = format!("short {}", "é".repeat(700));
        let parts = split_text(&text, 320);
        assert_eq!(
            parts,
            vec![
                "short".to_owned(),
                "é".repeat(320),
                "é".repeat(320),
                "é".repeat(60)
            ]
        );
        // Line breaks are word boundaries too; runs of spaces go.
        let text = format!("{}\n\n   {}", "a".repeat(300), "b".repeat(50));
        assert_eq!(
            split_text(&text, 320),
            vec!["a".repeat(300), "b".repeat(50)]
        );
    }

    #[test]
    fn split_keeps_the_delay_and_leaves_questions_whole() {
        let long = words(70, "word");
        let parts = Message::Text(long.clone())
            .delayed(Some(500))
            .split(false, &KnownSecrets::default());
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| matches!(
            part,
            Message::Question(QuestionMessage {
                kind: "text",
                delay_ms: Some(500),
                ..
            })
        )));
        assert_eq!(
            Message::Text(long.clone())
                .split(true, &KnownSecrets::default())
                .len(),
            1
        );
        let question = Message::Text(long).with_quick_replies(vec![ButtonMessage {
            title: "Ok".to_owned(),
            payload: None,
            url: None,
        }]);
        assert_eq!(
            question.clone().split(false, &KnownSecrets::default()),
            vec![question]
        );
    }

    fn reply(title: &str) -> Vec<ButtonMessage> {
        vec![ButtonMessage {
            title: title.to_owned(),
            payload: Some(title.to_lowercase()),
            url: None,
        }]
    }

    fn replies_of(message: &Message) -> Vec<&str> {
        match message {
            Message::Question(question) => question
                .quick_replies
                .iter()
                .map(|reply| reply.title.as_str())
                .collect(),
            Message::Text(_) => Vec::new(),
        }
    }

    #[test]
    fn added_quick_replies_go_to_the_own_message_else_the_last_else_the_next() {
        let mut pending = None;
        // The own message (index 1), split: its last part.
        let mut messages = vec![
            Message::Text("before".to_owned()),
            Message::Text(words(70, "word")),
            Message::Text("after".to_owned()),
        ];
        finish_step(
            &mut messages,
            Some(1),
            Some(reply("A")),
            false,
            &mut pending,
            &KnownSecrets::default(),
        );
        let attached: Vec<Vec<&str>> = messages.iter().map(replies_of).collect();
        assert_eq!(attached, vec![vec![], vec![], vec!["A"], vec![]]);
        // No own message: the last.
        let mut messages = vec![Message::Text("x".to_owned()), Message::Text("y".to_owned())];
        finish_step(
            &mut messages,
            None,
            Some(reply("B")),
            false,
            &mut pending,
            &KnownSecrets::default(),
        );
        assert_eq!(replies_of(&messages[1]), vec!["B"]);
        assert_eq!(replies_of(&messages[0]), Vec::<&str>::new());
        // No message at all: the next step's first.
        let mut none = Vec::new();
        finish_step(
            &mut none,
            None,
            Some(reply("C")),
            false,
            &mut pending,
            &KnownSecrets::default(),
        );
        assert!(none.is_empty());
        let mut next = vec![Message::Text("z".to_owned()), Message::Text("w".to_owned())];
        finish_step(
            &mut next,
            None,
            None,
            false,
            &mut pending,
            &KnownSecrets::default(),
        );
        assert_eq!(replies_of(&next[0]), vec!["C"]);
        assert!(pending.is_none());
        // An empty list attaches nothing.
        let mut messages = vec![Message::Text("x".to_owned())];
        finish_step(
            &mut messages,
            Some(0),
            Some(Vec::new()),
            false,
            &mut pending,
            &KnownSecrets::default(),
        );
        assert_eq!(messages, vec![Message::Text("x".to_owned())]);
    }

    #[test]
    fn wire_shapes_of_delayed_and_quick_reply_messages() {
        let delayed = Message::Text("Hi".to_owned()).delayed(Some(2000));
        assert_eq!(
            serde_json::to_value(&delayed).expect("json"),
            serde_json::json!({"type": "text", "text": "Hi", "delayMs": 2000})
        );
        assert_eq!(
            Message::Text("Hi".to_owned()).delayed(Some(0)),
            Message::Text("Hi".to_owned())
        );
        let with = delayed.with_quick_replies(reply("Yes"));
        assert_eq!(
            serde_json::to_value(&with).expect("json"),
            serde_json::json!({
                "type": "quick-replies",
                "text": "Hi",
                "quickReplies": [{"title": "Yes", "payload": "yes"}],
                "delayMs": 2000
            })
        );
        assert_eq!(with.to_string(), "Hi\n[Yes]");
    }
}
