//! `botContext` functions that shape the conversation's flow: message
//! delay and length, quick replies added to a message, the clicked
//! button's payload, matching an answer to options, and business hours.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::{
    Scope, array_texts, bounded, record, return_string, state, takes, throw_range_error,
    throw_type_error,
};
use crate::runtime::{Persistence, QuickReply, VariableWrite};

/// Quick replies a message may have (the product's limit).
pub(crate) const MAX_QUICK_REPLIES: usize = 10;

/// Characters a quick reply's title may have (the product's limit).
pub(crate) const MAX_QUICK_REPLY_TITLE: usize = 20;

/// The longest delay `setMessageDelay` takes, in milliseconds.
pub(crate) const MAX_MESSAGE_DELAY_MS: u32 = 60_000;

/// The session variable `setAllowMaxTextResponse` sets (`"true"` or
/// `"false"`); the engine splits long text messages unless it is `"true"`.
pub const ALLOW_MAX_TEXT_VARIABLE: &str = "system_allowMaxTextResponse";

host_functions! {
        "setMessageDelay" => set_message_delay,
        "setAllowMaxTextResponse" => set_allow_max_text_response,
        "addQuickReplies" => add_quick_replies,
        "addQuickReples" => add_quick_reples,
        "getButtonPayload" => get_button_payload,
        "evaluateOptions" => evaluate_options,
        "getHoursType" => get_hours_type,
}

/// What a value is, for messages: `typeof`, but `null` and `array` named.
pub(super) fn kind_of(scope: &mut Scope<'_, '_>, value: v8::Local<'_, v8::Value>) -> String {
    if value.is_null() {
        "null".to_owned()
    } else if value.is_array() {
        "an array".to_owned()
    } else {
        value.type_of(scope).to_rust_string_lossy(scope)
    }
}

/// The string argument at `index`, copied out as [`super::text`] does;
/// a `TypeError` naming `signature` and `what` when it is not a string.
pub(super) fn string_argument(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    index: i32,
    signature: &str,
    what: &str,
) -> Option<String> {
    let value = args.get(index);
    let Ok(string) = v8::Local::<v8::String>::try_from(value) else {
        let kind = kind_of(scope, value);
        throw_type_error(
            scope,
            &format!("botContext.{signature}: {what} must be a string, not {kind}"),
        );
        return None;
    };
    bounded(scope, string)
}

/// The array argument at `index`, each element a string; a `TypeError`
/// naming `signature` and `what` otherwise.
fn string_array_argument(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    index: i32,
    signature: &str,
    what: &str,
) -> Option<Vec<String>> {
    let value = args.get(index);
    let Ok(array) = v8::Local::<v8::Array>::try_from(value) else {
        let kind = kind_of(scope, value);
        throw_type_error(
            scope,
            &format!("botContext.{signature}: {what} must be an array of strings, not {kind}"),
        );
        return None;
    };
    if !super::array_fits(scope, array) {
        return None;
    }
    for position in 0..array.length() {
        let item = array.get_index(scope, position)?;
        if !item.is_string() {
            let kind = kind_of(scope, item);
            throw_type_error(
                scope,
                &format!(
                    "botContext.{signature}: {what} must be an array of strings; item {position} is {kind}"
                ),
            );
            return None;
        }
    }
    array_texts(scope, array)
}

/// The quick replies an array of `"Title~payload"` strings stands for (the
/// payload optional): at most [`MAX_QUICK_REPLIES`], each title at most
/// [`MAX_QUICK_REPLY_TITLE`] characters, as the product allows. Throws a
/// `TypeError` (not an array of strings) or `RangeError` (past a limit, or
/// a reply without a title) naming `signature`.
pub(super) fn quick_replies_argument(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    index: i32,
    signature: &str,
) -> Option<Vec<QuickReply>> {
    // The count is checked before any element is read.
    if let Ok(array) = v8::Local::<v8::Array>::try_from(args.get(index)) {
        let count = array.length() as usize;
        if count > MAX_QUICK_REPLIES {
            throw_range_error(
                scope,
                &format!(
                    "botContext.{signature}: {count} quick replies; a message has at most {MAX_QUICK_REPLIES}"
                ),
            );
            return None;
        }
    }
    let texts = string_array_argument(
        scope,
        args,
        index,
        signature,
        "the quick replies (\"Title~payload\")",
    )?;
    let mut replies = Vec::with_capacity(texts.len());
    for (position, text) in texts.iter().enumerate() {
        match parse_quick_reply(text) {
            Ok(reply) => replies.push(reply),
            Err(why) => {
                throw_range_error(
                    scope,
                    &format!("botContext.{signature}: quick reply {position} {why}"),
                );
                return None;
            }
        }
    }
    Some(replies)
}

/// `Title~payload` (the payload optional, and empty as none): the title
/// trimmed, the payload as written.
pub(crate) fn parse_quick_reply(text: &str) -> Result<QuickReply, String> {
    let (title, payload) = match text.split_once('~') {
        Some((title, payload)) => (title.trim(), Some(payload)),
        None => (text.trim(), None),
    };
    if title.is_empty() {
        return Err(format!("(`{text}`) has no title: write \"Title~payload\""));
    }
    let characters = title.chars().count();
    if characters > MAX_QUICK_REPLY_TITLE {
        return Err(format!(
            "has a title of {characters} characters (`{title}`); a title has at most {MAX_QUICK_REPLY_TITLE}"
        ));
    }
    Ok(QuickReply {
        title: title.to_owned(),
        payload: payload
            .filter(|payload| !payload.is_empty())
            .map(str::to_owned),
    })
}

/// Bytes quick replies count against the run's output limit.
pub(super) fn quick_replies_bytes(replies: &[QuickReply]) -> usize {
    replies
        .iter()
        .map(|reply| reply.title.len() + reply.payload.as_ref().map_or(0, String::len))
        .sum()
}

fn set_message_delay(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: &str = "setMessageDelay(delay_value)";
    if !takes(scope, &args, SIGNATURE, 1) {
        return;
    }
    let value = args.get(0);
    let number = value.number_value(scope).unwrap_or(f64::NAN);
    if !value.is_number() || !number.is_finite() || number.fract() != 0.0 {
        let shown = if value.is_number() {
            number.to_string()
        } else {
            kind_of(scope, value)
        };
        throw_type_error(
            scope,
            &format!(
                "botContext.{SIGNATURE}: the delay must be a whole number of milliseconds, not {shown}"
            ),
        );
        return;
    }
    if !(0.0..=f64::from(MAX_MESSAGE_DELAY_MS)).contains(&number) {
        throw_range_error(
            scope,
            &format!(
                "botContext.{SIGNATURE}: the delay is {number} ms; it must be from 0 to {MAX_MESSAGE_DELAY_MS}"
            ),
        );
        return;
    }
    // In range and whole, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let delay = number as u32;
    record(scope, 4, |output| output.message_delay_ms = Some(delay));
}

fn set_allow_max_text_response(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: &str = "setAllowMaxTextResponse(value)";
    if !takes(scope, &args, SIGNATURE, 1) {
        return;
    }
    let value = args.get(0);
    if !value.is_boolean() {
        let kind = kind_of(scope, value);
        throw_type_error(
            scope,
            &format!("botContext.{SIGNATURE}: the value must be true or false, not {kind}"),
        );
        return;
    }
    let value = value.boolean_value(scope).to_string();
    let name = ALLOW_MAX_TEXT_VARIABLE.to_owned();
    let Some(run) = state(scope) else { return };
    if run.output.immediate_reply {
        return;
    }
    if !run.charge(name.len() + value.len()) {
        throw_range_error(scope, "script output limit exceeded");
        return;
    }
    // Later reads in the same run see it, as `setBotVariable`'s do.
    run.input.variables.insert(name.clone(), value.clone());
    run.output.variables.push(VariableWrite {
        name,
        value,
        persistence: Persistence::Session,
    });
}

fn add_quick_replies(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    add_quick_replies_as(scope, &args, "addQuickReplies(array)");
}

/// The product's deprecated misspelling, kept as it is.
fn add_quick_reples(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    add_quick_replies_as(scope, &args, "addQuickReples(array)");
}

fn add_quick_replies_as(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    signature: &str,
) {
    if !takes(scope, args, signature, 1) {
        return;
    }
    let Some(replies) = quick_replies_argument(scope, args, 0, signature) else {
        return;
    };
    record(scope, quick_replies_bytes(&replies), |output| {
        output.added_quick_replies = Some(replies);
    });
}

fn get_button_payload(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    // The product's name for the same value where buttons send it.
    super::session::input_string(scope, &mut rv, |input| &input.quick_reply_payload);
}

fn evaluate_options(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: &str = "evaluateOptions(userResponse, options)";
    if !takes(scope, &args, SIGNATURE, 2) {
        return;
    }
    let Some(response) = string_argument(scope, &args, 0, SIGNATURE, "userResponse") else {
        return;
    };
    let Some(options) = string_array_argument(scope, &args, 1, SIGNATURE, "options") else {
        return;
    };
    match match_option(&response, &options) {
        Some(option) => return_string(scope, &mut rv, option),
        None => rv.set_null(),
    }
}

fn get_hours_type(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: &str = "getHoursType(hoursSpec, zoneIdStr)";
    if !takes(scope, &args, SIGNATURE, 2) {
        return;
    }
    let Some(spec) = string_array_argument(scope, &args, 0, SIGNATURE, "hoursSpec") else {
        return;
    };
    let Some(zone) = string_argument(scope, &args, 1, SIGNATURE, "zoneIdStr") else {
        return;
    };
    let now_ms = state(scope).and_then(|state| state.input.now_ms);
    let now = match now_ms {
        Some(ms) => Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH),
        None => Timestamp::now(),
    };
    match hours_type(&spec, &zone, now) {
        Ok(Some(key)) => return_string(scope, &mut rv, &key),
        Ok(None) => rv.set_null(),
        Err(why) => throw_range_error(scope, &format!("botContext.{SIGNATURE}: {why}")),
    }
}

/// The option `response` picks, as `evaluateOptions` matches it (case and
/// spaces aside): first by an option's label (`A`, `A)`) or the whole
/// option (`A)Yes`, `A) Yes`), then by its text (`Yes`); `None` when
/// nothing matches. An option is labelled when it starts with one letter
/// or up to three digits followed by `)`, `.`, `:` or `-` and text.
pub(crate) fn match_option<'a>(response: &str, options: &'a [String]) -> Option<&'a String> {
    let response_words = words(response);
    if response_words.is_empty() {
        return None;
    }
    let response_squashed = squashed(response);
    let by_label = options.iter().find(|option| {
        let Some((label, punctuation, _)) = labelled(option) else {
            return false;
        };
        let label = label.to_lowercase();
        response_words == label
            || response_words == format!("{label}{punctuation}")
            || response_squashed == squashed(option)
    });
    by_label.or_else(|| {
        options.iter().find(|option| {
            let text = labelled(option).map_or(option.as_str(), |(_, _, text)| text);
            !text.trim().is_empty() && words(text) == response_words
        })
    })
}

/// An option's label, the punctuation after it, and its text: `A)Yes` is
/// `("A", ')', "Yes")`.
fn labelled(option: &str) -> Option<(&str, char, &str)> {
    let option = option.trim();
    let end = option
        .char_indices()
        .find(|(_, c)| !c.is_alphanumeric())
        .map_or(option.len(), |(at, _)| at);
    let label = &option[..end];
    let one_letter = label.chars().count() == 1 && label.chars().all(char::is_alphabetic);
    let digits = (1..=3).contains(&label.len()) && label.chars().all(|c| c.is_ascii_digit());
    if !one_letter && !digits {
        return None;
    }
    let punctuation = option[end..]
        .chars()
        .next()
        .filter(|c| matches!(c, ')' | '.' | ':' | '-'))?;
    let text = option[end + punctuation.len_utf8()..].trim();
    if text.is_empty() {
        return None;
    }
    Some((label, punctuation, text))
}

/// Lower case, words separated by one space.
fn words(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Lower case, without spaces.
fn squashed(text: &str) -> String {
    text.split_whitespace().collect::<String>().to_lowercase()
}

/// What an hours entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qualifier {
    /// Every day.
    Any,
    /// One day of the week.
    Day(Weekday),
    /// One date.
    Date(Date),
}

impl Qualifier {
    /// Which entry wins when several match: a date's over a day's over
    /// the generic ones.
    fn specificity(self) -> u8 {
        match self {
            Self::Any => 0,
            Self::Day(_) => 1,
            Self::Date(_) => 2,
        }
    }

    fn applies(self, date: Date) -> bool {
        match self {
            Self::Any => true,
            Self::Day(day) => date.weekday() == day,
            Self::Date(only) => date == only,
        }
    }
}

/// One entry of `getHoursType`'s spec: `[QUALIFIER|]KEY~H:MM~H:MM`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HoursEntry<'a> {
    qualifier: Qualifier,
    key: &'a str,
    /// Minutes after midnight, from 0 to 1439.
    start: u16,
    end: u16,
}

impl HoursEntry<'_> {
    /// Whether the minute of the day `minute` is within the entry: from
    /// its start (inclusive) to its end (exclusive), past midnight when the
    /// end comes before the start (the early part then being the same
    /// day's), the whole day when they are equal.
    fn covers(&self, minute: u16) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => (self.start..self.end).contains(&minute),
            std::cmp::Ordering::Greater => minute >= self.start || minute < self.end,
        }
    }
}

/// Parses one entry, or says what is wrong with it.
fn parse_hours_entry(entry: &str) -> Result<HoursEntry<'_>, String> {
    const FORM: &str = "write KEY~H:MM~H:MM, after DAYNAME| or MM.DD.YYYY| for one day or date";
    let (qualifier, rest) = match entry.split_once('|') {
        Some((qualifier, rest)) => (Some(qualifier.trim()), rest),
        None => (None, entry),
    };
    let parts: Vec<&str> = rest.split('~').map(str::trim).collect();
    let [key, start, end] = parts.as_slice() else {
        return Err(format!("the entry `{entry}` is not KEY~START~END ({FORM})"));
    };
    if key.is_empty() || key.contains('|') {
        return Err(format!("the entry `{entry}` has no key ({FORM})"));
    }
    let time = |text: &str| {
        parse_time(text).ok_or_else(|| {
            format!("the entry `{entry}` has `{text}` for a time (H:MM, from 0:00 to 24:00)")
        })
    };
    let (start, end) = (time(start)?, time(end)?);
    let qualifier = match qualifier {
        None => Qualifier::Any,
        Some(qualifier) => parse_qualifier(qualifier).ok_or_else(|| {
            format!(
                "the entry `{entry}` is for `{qualifier}`, which is neither a day (MONDAY to SUNDAY) nor a date (MM.DD.YYYY)"
            )
        })?,
    };
    Ok(HoursEntry {
        qualifier,
        key,
        start,
        end,
    })
}

/// `H:MM` or `HH:MM` as minutes after midnight (24:00 is midnight too).
fn parse_time(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |text: &str, lengths: std::ops::RangeInclusive<usize>| {
        (lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u16>().ok())
            .flatten()
    };
    let hours = digits(hours, 1..=2)?;
    let minutes = digits(minutes, 2..=2)?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return None;
    }
    Some((hours * 60 + minutes) % (24 * 60))
}

/// A day's name (any case) or a date `MM.DD.YYYY` (month and day of one or
/// two digits).
fn parse_qualifier(text: &str) -> Option<Qualifier> {
    let day = match text.to_ascii_uppercase().as_str() {
        "MONDAY" => Some(Weekday::Monday),
        "TUESDAY" => Some(Weekday::Tuesday),
        "WEDNESDAY" => Some(Weekday::Wednesday),
        "THURSDAY" => Some(Weekday::Thursday),
        "FRIDAY" => Some(Weekday::Friday),
        "SATURDAY" => Some(Weekday::Saturday),
        "SUNDAY" => Some(Weekday::Sunday),
        _ => None,
    };
    if let Some(day) = day {
        return Some(Qualifier::Day(day));
    }
    let mut parts = text.split('.');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |text: &str, lengths: std::ops::RangeInclusive<usize>| {
        (lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<i16>().ok())
            .flatten()
    };
    let month = i8::try_from(number(month, 1..=2)?).ok()?;
    let day = i8::try_from(number(day, 1..=2)?).ok()?;
    let year = number(year, 4..=4)?;
    Date::new(year, month, day).ok().map(Qualifier::Date)
}

/// The key of the entry of `spec` that covers `now` in the time zone
/// `zone` (an IANA name), as `getHoursType` gives it: a date's entry over
/// a day's over a generic one, and among entries as specific, the later
/// in `spec`; `None` when no entry covers it. Times are the zone's wall
/// clock at minute granularity. Every entry is checked, so a malformed
/// one is an error whatever the time.
pub(crate) fn hours_type(
    spec: &[String],
    zone: &str,
    now: Timestamp,
) -> Result<Option<String>, String> {
    let entries = spec
        .iter()
        .map(|entry| parse_hours_entry(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let time_zone = TimeZone::get(zone.trim()).map_err(|_| {
        format!("`{zone}` is not a time zone (an IANA name, such as America/Los_Angeles)")
    })?;
    let local = time_zone.to_datetime(now);
    let date = local.date();
    let minute =
        u16::try_from(i16::from(local.hour()) * 60 + i16::from(local.minute())).unwrap_or_default();
    let mut best: Option<&HoursEntry<'_>> = None;
    for entry in &entries {
        if !entry.qualifier.applies(date) || !entry.covers(minute) {
            continue;
        }
        if best.is_none_or(|best| entry.qualifier.specificity() >= best.qualifier.specificity()) {
            best = Some(entry);
        }
    }
    Ok(best.map(|entry| entry.key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|entry| (*entry).to_owned()).collect()
    }

    fn at(instant: &str) -> Timestamp {
        instant.parse().expect("an instant")
    }

    /// The product's documented example.
    fn documented() -> Vec<String> {
        spec(&[
            "REG_HOURS~8:00~20:00",
            "AFTER_HOURS~20:00~8:00",
            "FRIDAY|WKEND_REG_HOURS~8:00~17:00",
            "FRIDAY|WKEND_AFTER_HOURS~17:00~08:00",
            "SATURDAY|WKEND_REG_HOURS~10:00~15:00",
            "SATURDAY|WKEND_AFTER_HOURS~15:00~10:00",
            "11.22.2018|HOLIDAY_THANKS~0:00~23:59",
            "12.25.2018|HOLIDAY_XMAS~0:00~23:59",
        ])
    }

    fn kind(spec: &[String], zone: &str, instant: &str) -> Option<String> {
        hours_type(spec, zone, at(instant)).expect("valid")
    }

    #[test]
    fn the_documented_example_by_day_date_and_time() {
        let spec = documented();
        let la = "America/Los_Angeles";
        // Wednesday 2018-11-21, 09:00 PST (17:00 UTC).
        assert_eq!(
            kind(&spec, la, "2018-11-21T17:00:00Z").as_deref(),
            Some("REG_HOURS")
        );
        // 07:59 and 08:00: the start is inclusive, the end exclusive.
        assert_eq!(
            kind(&spec, la, "2018-11-21T15:59:59Z").as_deref(),
            Some("AFTER_HOURS")
        );
        assert_eq!(
            kind(&spec, la, "2018-11-21T16:00:00Z").as_deref(),
            Some("REG_HOURS")
        );
        assert_eq!(
            kind(&spec, la, "2018-11-22T03:59:00Z").as_deref(),
            Some("REG_HOURS")
        );
        // 20:00 on Wednesday is after hours (wrapping past midnight).
        assert_eq!(
            kind(&spec, la, "2018-11-22T04:00:00Z").as_deref(),
            Some("AFTER_HOURS")
        );
        // Thanksgiving (a Thursday): the date beats the generic entries.
        assert_eq!(
            kind(&spec, la, "2018-11-22T20:00:00Z").as_deref(),
            Some("HOLIDAY_THANKS")
        );
        // 23:59 is past the holiday's end (exclusive): after hours.
        assert_eq!(
            kind(&spec, la, "2018-11-23T07:59:00Z").as_deref(),
            Some("AFTER_HOURS")
        );
        // Friday 2018-11-23: the day's entries beat the generic ones.
        assert_eq!(
            kind(&spec, la, "2018-11-23T17:00:00Z").as_deref(),
            Some("WKEND_REG_HOURS")
        );
        assert_eq!(
            kind(&spec, la, "2018-11-24T02:00:00Z").as_deref(),
            Some("WKEND_AFTER_HOURS")
        );
        // The same instant elsewhere is another local time.
        // Tuesday 2018-11-20 17:00 UTC: 09:00 in Los Angeles, 18:00 in
        // Paris, 02:00 on Wednesday in Tokyo; on Wednesday at 17:00 UTC,
        // Thanksgiving has begun in Tokyo.
        assert_eq!(
            kind(&spec, la, "2018-11-20T17:00:00Z").as_deref(),
            Some("REG_HOURS")
        );
        assert_eq!(
            kind(&spec, "Europe/Paris", "2018-11-20T17:00:00Z").as_deref(),
            Some("REG_HOURS")
        );
        assert_eq!(
            kind(&spec, "Asia/Tokyo", "2018-11-20T17:00:00Z").as_deref(),
            Some("AFTER_HOURS")
        );
        assert_eq!(
            kind(&spec, "Asia/Tokyo", "2018-11-21T17:00:00Z").as_deref(),
            Some("HOLIDAY_THANKS")
        );
        // Sunday has no entry of its own: the generic ones.
        assert_eq!(
            kind(&spec, la, "2018-11-25T20:00:00Z").as_deref(),
            Some("REG_HOURS")
        );
    }

    #[test]
    fn among_entries_as_specific_the_later_wins() {
        let spec = spec(&["A~9:00~17:00", "B~12:00~13:00", "MONDAY|C~0:00~0:00"]);
        // Tuesday 2026-03-10 12:30 UTC.
        assert_eq!(
            kind(&spec, "UTC", "2026-03-10T12:30:00Z").as_deref(),
            Some("B")
        );
        assert_eq!(
            kind(&spec, "UTC", "2026-03-10T11:30:00Z").as_deref(),
            Some("A")
        );
        assert_eq!(kind(&spec, "UTC", "2026-03-10T18:00:00Z"), None);
        // Monday: the day's all-day entry beats the generic ones.
        assert_eq!(
            kind(&spec, "UTC", "2026-03-09T12:30:00Z").as_deref(),
            Some("C")
        );
        let reversed = spec.iter().rev().cloned().collect::<Vec<_>>();
        assert_eq!(
            kind(&reversed, "UTC", "2026-03-10T12:30:00Z").as_deref(),
            Some("A")
        );
    }

    #[test]
    fn equal_start_and_end_is_the_whole_day_and_24_00_is_midnight() {
        for entry in ["ALWAYS~0:00~0:00", "ALWAYS~0:00~24:00", "ALWAYS~9:30~9:30"] {
            let spec = spec(&[entry]);
            for instant in [
                "2026-01-01T00:00:00Z",
                "2026-01-01T09:29:59Z",
                "2026-01-01T23:59:59Z",
            ] {
                assert_eq!(
                    kind(&spec, "UTC", instant).as_deref(),
                    Some("ALWAYS"),
                    "{entry} at {instant}"
                );
            }
        }
    }

    #[test]
    fn the_zone_s_wall_clock_across_daylight_saving_changes() {
        let spec = self::spec(&["EARLY~0:00~2:00", "NIGHT~2:00~3:00", "DAY~3:00~0:00"]);
        let la = "America/Los_Angeles";
        // 2026-03-08: at 02:00 PST the clocks go to 03:00 PDT.
        assert_eq!(
            kind(&spec, la, "2026-03-08T09:59:00Z").as_deref(),
            Some("EARLY")
        ); // 01:59 PST
        assert_eq!(
            kind(&spec, la, "2026-03-08T10:00:00Z").as_deref(),
            Some("DAY")
        ); // 03:00 PDT
        // The day before and after, 10:00 UTC is 02:00 PST and 03:00 PDT.
        assert_eq!(
            kind(&spec, la, "2026-03-07T10:00:00Z").as_deref(),
            Some("NIGHT")
        );
        assert_eq!(
            kind(&spec, la, "2026-03-09T10:00:00Z").as_deref(),
            Some("DAY")
        );
        // 2026-11-01: at 02:00 PDT the clocks go back to 01:00 PST, so
        // 01:30 comes twice, and both are early.
        assert_eq!(
            kind(&spec, la, "2026-11-01T08:30:00Z").as_deref(),
            Some("EARLY")
        ); // 01:30 PDT
        assert_eq!(
            kind(&spec, la, "2026-11-01T09:30:00Z").as_deref(),
            Some("EARLY")
        ); // 01:30 PST
        assert_eq!(
            kind(&spec, la, "2026-11-01T10:30:00Z").as_deref(),
            Some("NIGHT")
        ); // 02:30 PST
        // A day qualifier follows the local date, not UTC's: Sunday
        // 2026-11-01 23:30 PST is Monday in UTC.
        let sunday = self::spec(&["SUNDAY|SUN~0:00~0:00", "MONDAY|MON~0:00~0:00"]);
        assert_eq!(
            kind(&sunday, la, "2026-11-02T07:30:00Z").as_deref(),
            Some("SUN")
        );
        assert_eq!(
            kind(&sunday, "UTC", "2026-11-02T07:30:00Z").as_deref(),
            Some("MON")
        );
    }

    #[test]
    fn a_day_s_wrapping_entry_covers_that_day_s_early_hours() {
        let spec = spec(&["OPEN~8:00~17:00", "FRIDAY|LATE~17:00~8:00"]);
        // Friday 2026-03-13 03:00 UTC: the day's early part.
        assert_eq!(
            kind(&spec, "UTC", "2026-03-13T03:00:00Z").as_deref(),
            Some("LATE")
        );
        // Saturday 03:00: not Friday.
        assert_eq!(kind(&spec, "UTC", "2026-03-14T03:00:00Z"), None);
        // Day names in any case; dates with one-digit month and day.
        let spec = self::spec(&["friday|F~0:00~0:00", "3.9.2026|D~0:00~0:00"]);
        assert_eq!(
            kind(&spec, "UTC", "2026-03-13T03:00:00Z").as_deref(),
            Some("F")
        );
        assert_eq!(
            kind(&spec, "UTC", "2026-03-09T03:00:00Z").as_deref(),
            Some("D")
        );
    }

    #[test]
    fn bad_entries_and_zones_are_named() {
        let now = at("2026-03-10T12:00:00Z");
        for (entry, says) in [
            ("REG_HOURS~8:00", "is not KEY~START~END"),
            ("REG_HOURS~8:00~20:00~x", "is not KEY~START~END"),
            ("~8:00~20:00", "has no key"),
            ("REG~8~20:00", "`8` for a time"),
            ("REG~8:00~25:00", "`25:00` for a time"),
            ("REG~8:60~20:00", "`8:60` for a time"),
            ("REG~24:30~20:00", "`24:30` for a time"),
            ("FUNDAY|REG~8:00~20:00", "is for `FUNDAY`"),
            ("02.30.2026|REG~8:00~20:00", "is for `02.30.2026`"),
            ("2026-12-25|REG~8:00~20:00", "is for `2026-12-25`"),
        ] {
            let error = hours_type(&spec(&["OK~0:00~0:00", entry]), "UTC", now).expect_err(entry);
            assert!(
                error.contains(entry) && error.contains(says),
                "{entry}: {error}"
            );
        }
        let error = hours_type(&spec(&["OK~0:00~0:00"]), "Mars/Olympus", now).expect_err("zone");
        assert!(
            error.contains("`Mars/Olympus` is not a time zone"),
            "{error}"
        );
        assert_eq!(hours_type(&[], "UTC", now), Ok(None));
    }

    #[test]
    fn options_match_by_label_text_or_whole() {
        let options = spec(&["A)Yes", "B) No", "C. Maybe later", "Skip"]);
        for (response, expected) in [
            ("A", Some("A)Yes")),
            (" a) ", Some("A)Yes")),
            ("yes", Some("A)Yes")),
            ("A) Yes", Some("A)Yes")),
            ("a)yes", Some("A)Yes")),
            ("b", Some("B) No")),
            ("B)No", Some("B) No")),
            ("NO", Some("B) No")),
            ("c.", Some("C. Maybe later")),
            ("maybe   LATER", Some("C. Maybe later")),
            ("skip", Some("Skip")),
            ("D", None),
            ("Ye", None),
            ("", None),
            ("   ", None),
        ] {
            assert_eq!(
                match_option(response, &options).map(String::as_str),
                expected,
                "{response:?}"
            );
        }
        // A label is matched before another option's text.
        let options = spec(&["A)B", "B)Yes"]);
        assert_eq!(
            match_option("b", &options).map(String::as_str),
            Some("B)Yes")
        );
        // Numbers label too; text that starts like one does not.
        let options = spec(&["1) One", "12. Twelve", "Mr. Smith"]);
        assert_eq!(
            match_option("12", &options).map(String::as_str),
            Some("12. Twelve")
        );
        assert_eq!(match_option("mr", &options), None);
        assert_eq!(
            match_option("mr. smith", &options).map(String::as_str),
            Some("Mr. Smith")
        );
    }

    #[test]
    fn quick_replies_parse_title_and_payload() {
        assert_eq!(
            parse_quick_reply(" Ranch ~sauce01"),
            Ok(QuickReply {
                title: "Ranch".to_owned(),
                payload: Some("sauce01".to_owned())
            })
        );
        assert_eq!(
            parse_quick_reply("Honey Mustard"),
            Ok(QuickReply {
                title: "Honey Mustard".to_owned(),
                payload: None
            })
        );
        assert_eq!(
            parse_quick_reply("Yes~").map(|reply| reply.payload),
            Ok(None)
        );
        assert_eq!(
            parse_quick_reply("a~b~c").map(|reply| reply.payload),
            Ok(Some("b~c".to_owned()))
        );
        assert!(parse_quick_reply("~payload").is_err());
        assert!(parse_quick_reply(&"x".repeat(20)).is_ok());
        assert!(
            parse_quick_reply(&"é".repeat(20)).is_ok(),
            "characters, not bytes"
        );
        assert!(
            parse_quick_reply(&"x".repeat(21))
                .expect_err("too long")
                .contains("21 characters")
        );
    }
}
