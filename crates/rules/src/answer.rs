//! A question's answer: which rule takes it, and what its captures store.

use patchbay_config::{
    AnswerMatch, AnswerRule, CaptureSource, CaptureTarget, Question, letter, same_text,
};

use crate::render::{Place, Values, render};
use crate::select::condition_holds;

/// What the user sent in answer to a question.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The message as written (or the clicked button's label).
    pub text: &'a str,
    /// The payload of the clicked button or quick reply, if any.
    pub payload: Option<&'a str>,
}

impl Answer<'_> {
    /// What a click sent back: the payload, or else the text.
    fn sent_back(&self) -> &str {
        self.payload.unwrap_or(self.text)
    }
}

/// The choice (index from 0) an answer picks among `choices`: the choice's
/// text (or a payload equal to it), else its number (`2`, `2.`, `2)`), else
/// its letter (`b`, `b.`, `b)`), as the product's text-only list offers.
pub fn picked_choice(choices: &[String], answer: &Answer<'_>) -> Option<usize> {
    let by_text = |text: &str| choices.iter().position(|choice| same_text(choice, text));
    if let Some(index) = answer
        .payload
        .and_then(by_text)
        .or_else(|| by_text(answer.text))
    {
        return Some(index);
    }
    let label = answer
        .text
        .trim()
        .trim_end_matches(['.', ')'])
        .trim_end()
        .to_lowercase();
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return label
            .parse::<usize>()
            .ok()
            .and_then(|number| number.checked_sub(1))
            .filter(|index| *index < choices.len());
    }
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => (0..choices.len()).find(|&index| letter(index) == Some(c)),
        _ => None,
    }
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
        AnswerMatch::Exact(values) => values.iter().any(|value| same_text(value, answer.text)),
        AnswerMatch::Options(options) => {
            let choices = question.choices();
            picked_choice(choices, answer).is_some_and(|picked| {
                options
                    .iter()
                    .any(|option| option.index(choices) == Some(picked))
            })
        }
        AnswerMatch::Payload(payloads) => payloads
            .iter()
            .any(|payload| same_text(payload, answer.sent_back())),
        AnswerMatch::NoMatch => true,
    }
}

/// What a winning rule's captures store, in order: each target with its
/// value (empty when its source has none: no choice picked, no group
/// matched).
pub fn captured<'q>(
    question: &Question,
    rule: &'q AnswerRule,
    answer: &Answer<'_>,
    values: &Values<'_>,
) -> Vec<(&'q CaptureTarget, String)> {
    let groups = match &rule.when {
        AnswerMatch::Regex(regex) => regex.regex().captures(answer.text),
        _ => None,
    };
    rule.set
        .iter()
        .map(|capture| {
            let value = match &capture.source {
                CaptureSource::Answer => answer.text.to_owned(),
                CaptureSource::Choice => picked_choice(question.choices(), answer)
                    .map(|index| question.choices()[index].clone())
                    .unwrap_or_default(),
                CaptureSource::Payload => answer.sent_back().to_owned(),
                CaptureSource::Group(name) => groups
                    .as_ref()
                    .and_then(|groups| groups.name(name))
                    .map(|group| group.as_str().to_owned())
                    .unwrap_or_default(),
                CaptureSource::Value(template) => {
                    render(template, values, Place::Text).unwrap_or_default()
                }
            };
            (&capture.target, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices() -> Vec<String> {
        ["Track an order", "Return an item", "A"]
            .map(String::from)
            .to_vec()
    }

    fn pick(text: &str) -> Option<usize> {
        picked_choice(
            &choices(),
            &Answer {
                text,
                payload: None,
            },
        )
    }

    #[test]
    fn a_choice_is_picked_by_text_number_or_letter() {
        assert_eq!(pick(" track AN order "), Some(0));
        assert_eq!(pick("2"), Some(1));
        assert_eq!(pick("2."), Some(1));
        assert_eq!(pick("b)"), Some(1));
        assert_eq!(pick("B"), Some(1));
        // A choice's own text wins over a letter.
        assert_eq!(pick("a"), Some(2));
        assert_eq!(pick("4"), None);
        assert_eq!(pick("0"), None);
        assert_eq!(pick("d"), None);
        assert_eq!(pick("99999999999999999999999999"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("track"), None);
    }
}
