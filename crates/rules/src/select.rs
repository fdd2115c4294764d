//! Rules: the first whose match holds wins.

use patchbay_config::{ApiResult, Condition, ConditionOp, Rule};

use crate::render::{Place, Values, render};

/// The index of the first rule whose match holds.
pub fn select_rule(rules: &[Rule], success: bool, values: &Values<'_>) -> Option<usize> {
    rules.iter().position(|rule| {
        let result_holds = match rule.when.api_result {
            Some(ApiResult::Success) => success,
            Some(ApiResult::Failure) => !success,
            None => true,
        };
        result_holds
            && rule
                .when
                .conditions
                .iter()
                .all(|condition| condition_holds(condition, values))
    })
}

/// Whether one condition holds.
pub fn condition_holds(condition: &Condition, values: &Values<'_>) -> bool {
    let subject = subject(condition, values);
    let operand = || {
        condition
            .value
            .as_ref()
            .and_then(|value| render(value, values, Place::Text).ok())
            .unwrap_or_default()
    };
    let numbers = || Some((number(subject.as_deref()?)?, number(&operand())?));
    match condition.op {
        ConditionOp::Equals => subject.as_deref() == Some(operand().as_str()),
        ConditionOp::NotEquals => subject.as_deref() != Some(operand().as_str()),
        ConditionOp::Contains => subject.is_some_and(|subject| subject.contains(&operand())),
        ConditionOp::Matches => match (&condition.pattern, &subject) {
            (Some(pattern), Some(subject)) => pattern.regex().is_match(subject),
            _ => false,
        },
        ConditionOp::GreaterThan => numbers().is_some_and(|(a, b)| a > b),
        ConditionOp::AtLeast => numbers().is_some_and(|(a, b)| a >= b),
        ConditionOp::LessThan => numbers().is_some_and(|(a, b)| a < b),
        ConditionOp::AtMost => numbers().is_some_and(|(a, b)| a <= b),
        ConditionOp::Empty => subject.is_none_or(|subject| subject.is_empty()),
        ConditionOp::NotEmpty => subject.is_some_and(|subject| !subject.is_empty()),
    }
}

/// The tested value: a bot variable (`None` when unset) or a field's text.
fn subject(condition: &Condition, values: &Values<'_>) -> Option<String> {
    if let Some(name) = &condition.variable {
        return values.variable(name).map(str::to_owned);
    }
    let field = condition.field.as_ref()?.reference()?;
    values
        .fields
        .get(&field.owner, &field.key)
        .map(|_| values.field(field))
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}
