//! A question's answer: which rule takes it, and what its captures store.

use patchbay_config::{
    AnswerMatch, AnswerRule, Ask, Capture, CaptureSource, MultipleChoice, Question, normalized,
};

use crate::render::{Place, Values, render};
use crate::select::condition_holds;

/// What the user sent in answer to a question, with the forms rules
/// compare made once: an answer may be long, and every choice, exact value
/// and payload is compared with it.
#[derive(Clone, Debug)]
pub struct Answer<'a> {
    /// The message as written (or the clicked button's label).
    pub text: &'a str,
    /// The payload of the clicked button or quick reply, if any.
    pub payload: Option<&'a str>,
    /// `text` in lower case, one space between words.
    normalized_text: String,
    /// What a click sent back (the payload, or else the text), normalized.
    normalized_sent_back: Option<String>,
}

impl<'a> Answer<'a> {
    /// An answer: the message and the clicked button's payload.
    pub fn new(text: &'a str, payload: Option<&'a str>) -> Self {
        Self {
            text,
            payload,
            normalized_text: normalized(text),
            normalized_sent_back: payload.map(normalized),
        }
    }

    /// What a click sent back: the payload, or else the text.
    fn sent_back(&self) -> &str {
        self.payload.unwrap_or(self.text)
    }

    fn is(&self, value: &str) -> bool {
        normalized(value) == self.normalized_text
    }

    fn sent_back_is(&self, value: &str) -> bool {
        normalized(value)
            == *self
                .normalized_sent_back
                .as_ref()
                .unwrap_or(&self.normalized_text)
    }
}

/// The choice (index from 0) an answer picks among a multiple choice
/// question's choices: the choice's text (or a payload equal to it), else
/// its label in the question's list style (`2`, `2.`, `2)` for numbers;
/// `b`, `b.`, `b)` for letters), as the product's text-only list offers.
pub fn picked_choice(choice: &MultipleChoice, answer: &Answer<'_>) -> Option<usize> {
    let choices = &choice.choices;
    let by_payload = answer
        .normalized_sent_back
        .as_ref()
        .and_then(|sent| choices.iter().position(|c| normalized(c) == *sent));
    if let Some(index) = by_payload.or_else(|| choices.iter().position(|c| answer.is(c))) {
        return Some(index);
    }
    // A label is short: no longer answer is one.
    let label = answer
        .normalized_text
        .get(..answer.normalized_text.len().min(8))
        .filter(|_| answer.normalized_text.len() <= 8)?
        .trim_end_matches(['.', ')'])
        .trim_end();
    if label.is_empty() {
        return None;
    }
    (0..choices.len()).find(|&index| choice.list_style.label(index) == label)
}

/// The rule (its index) that takes `answer`: the first, in order, whose
/// match and conditions hold, `noMatch` rules tried after all others (the
/// product's order).
pub fn select_answer_rule(
    question: &Question,
    answer: &Answer<'_>,
    values: &Values<'_>,
) -> Option<usize> {
    let holds = |rule: &AnswerRule| {
        rule.conditions
            .iter()
            .all(|condition| condition_holds(condition, values))
    };
    let is_no_match = |rule: &AnswerRule| matches!(rule.when, AnswerMatch::NoMatch);
    question
        .rules
        .iter()
        .position(|rule| !is_no_match(rule) && answer_fits(question, rule, answer) && holds(rule))
        .or_else(|| {
            question
                .rules
                .iter()
                .position(|rule| is_no_match(rule) && holds(rule))
        })
}

/// Whether the answer fits a rule's match (its conditions aside).
fn answer_fits(question: &Question, rule: &AnswerRule, answer: &Answer<'_>) -> bool {
    match &rule.when {
        AnswerMatch::Pattern(patterns) => patterns.iter().any(|p| p.matches(answer.text)),
        AnswerMatch::Regex(regex) => regex.regex().is_match(answer.text),
        AnswerMatch::Exact(values) => values.iter().any(|value| answer.is(value)),
        AnswerMatch::Options(options) => {
            let Ask::MultipleChoice(choice) = &question.ask else {
                return false;
            };
            picked_choice(choice, answer).is_some_and(|picked| {
                options
                    .iter()
                    .any(|option| option.index(&choice.choices) == Some(picked))
            })
        }
        AnswerMatch::Payload(payloads) => payloads.iter().any(|p| answer.sent_back_is(p)),
        AnswerMatch::NoMatch => true,
    }
}

/// The named groups of a winning rule's regex in the answer, found once
/// for all its captures (`None` when no capture reads a group).
pub fn capture_groups<'t>(rule: &AnswerRule, answer: &Answer<'t>) -> Option<regex::Captures<'t>> {
    let reads_groups = rule
        .set
        .iter()
        .any(|capture| matches!(capture.source, CaptureSource::Group(_)));
    match &rule.when {
        AnswerMatch::Regex(regex) if reads_groups => regex.regex().captures(answer.text),
        _ => None,
    }
}

/// The value one of a winning rule's captures stores (empty when its
/// source has none: no choice picked, no group matched); `groups` are the
/// rule's [`capture_groups`]. The engine stores each before it reads the
/// next, so a capture's `value` template sees the ones before it.
pub fn capture_value(
    question: &Question,
    capture: &Capture,
    answer: &Answer<'_>,
    groups: Option<&regex::Captures<'_>>,
    values: &Values<'_>,
) -> String {
    match &capture.source {
        CaptureSource::Answer => answer.text.to_owned(),
        CaptureSource::Choice => match &question.ask {
            Ask::MultipleChoice(choice) => picked_choice(choice, answer)
                .map(|index| choice.choices[index].clone())
                .unwrap_or_default(),
            _ => String::new(),
        },
        CaptureSource::Payload => answer.sent_back().to_owned(),
        CaptureSource::Group(name) => groups
            .and_then(|groups| groups.name(name))
            .map(|group| group.as_str().to_owned())
            .unwrap_or_default(),
        CaptureSource::Value(template) => render(template, values, Place::Text).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use patchbay_config::{ChoiceDisplay, ListStyle};

    use super::*;

    fn choice(list_style: ListStyle) -> MultipleChoice {
        MultipleChoice {
            choices: ["Track an order", "Return an item", "A"]
                .map(String::from)
                .to_vec(),
            display: ChoiceDisplay::Buttons,
            list_style,
        }
    }

    fn pick(text: &str) -> Option<usize> {
        picked_choice(&choice(ListStyle::Numbers), &Answer::new(text, None))
    }

    fn pick_lettered(text: &str) -> Option<usize> {
        picked_choice(&choice(ListStyle::Letters), &Answer::new(text, None))
    }

    #[test]
    fn a_choice_is_picked_by_its_text_or_its_label_in_the_list_style() {
        assert_eq!(pick(" track AN order "), Some(0));
        assert_eq!(pick("2"), Some(1));
        assert_eq!(pick("2."), Some(1));
        assert_eq!(pick("2)"), Some(1));
        // Letters label a lettered list only.
        assert_eq!(pick("b"), None);
        assert_eq!(pick_lettered("b)"), Some(1));
        assert_eq!(pick_lettered("B"), Some(1));
        assert_eq!(pick_lettered("2"), None);
        // A choice's own text wins over a label.
        assert_eq!(pick_lettered("a"), Some(2));
        assert_eq!(pick("4"), None);
        assert_eq!(pick("0"), None);
        assert_eq!(pick("99999999999999999999999999"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("track"), None);
    }
}
