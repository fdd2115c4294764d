//! `botContext` functions over the platform: the data the caller sends
//! with a turn (its attributes: account, channel, engagement, customer and
//! personal info, metadata, Web View variables, a file, Conversation
//! Orchestrator's answer), the actions a script asks the platform for
//! (the Transfer Bot Context, escalation events), and the intent and NLU
//! getters (what the starter match knows, or the product's "nothing").
//!
//! Values are read per call from [`crate::ScriptInput::platform`], which the host
//! prepares once per turn; objects are parsed from its JSON texts anew on
//! every call, in the run's own context, so a script that changes one
//! changes nothing another call, run or bot sees.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    Scope, Signature, record, return_string, state, text, throw_range_error, throw_type_error,
};

/// What the platform knows of the conversation, as scripts read it: the
/// turn's attributes, prepared once per turn by the host (objects as JSON
/// texts, parsed per call). What is unset reads as the product's value for
/// it unset (mostly `null`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformData {
    /// `getLPAccountId()`.
    pub account_id: Option<String>,
    /// `getUserChannel()` and `getChannel()` (e.g. `lp_web`).
    pub channel: Option<String>,
    /// `getLPEngagementAttribute(name)`, by name (`campaignId`,
    /// `currentSkillId`, ...).
    pub engagement: HashMap<String, String>,
    /// `getLPCustomerInfo()`: the JSON text of an object.
    pub customer_info: Option<String>,
    /// `getLPUserPersonalInfo()`: the JSON text of an object (set only when
    /// it has a first name, last name or company, as the product says).
    pub personal_info: Option<String>,
    /// `getMetadata(name)`: the JSON text of each metadata event type's
    /// value, by type name.
    pub metadata: HashMap<String, String>,
    /// `getWebViewVariable(name)`, by name.
    pub web_view: HashMap<String, String>,
    /// `getWebViewVariables()`: the JSON text of the object of them all
    /// (`None` reads as `{}`).
    pub web_view_json: Option<String>,
    /// The file the user's message came with, if it came with one.
    pub file: Option<FileData>,
    /// `askMaven()`: the JSON text of Conversation Orchestrator's answer
    /// (`None` reads as [`NO_MAVEN_ANSWER`]).
    pub maven: Option<String>,
}

/// A file the user sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileData {
    /// Its caption (`getFileCaption()`; [`EMPTY_CAPTION`] without one).
    pub caption: Option<String>,
    /// Its type (`getFileType()`).
    pub file_type: Option<String>,
}

/// What `getFileCaption()` gives for a file sent without a caption (the
/// product's value).
pub const EMPTY_CAPTION: &str = "__EMPTYTEXT__";

/// What `askMaven()` gives when the caller sent no answer: a JSON text
/// whose `rule` has no `actions`, so the product's own example
/// (`if (!JSON.parse(answer).rule.actions)`) takes its "no actions" path.
pub const NO_MAVEN_ANSWER: &str = r#"{"rule":{}}"#;

/// `logEscalationEvent` calls a run may make; the next one throws a
/// `RangeError`.
pub const ESCALATIONS_PER_RUN: usize = 100;

/// A platform action a script asked for: an entry of the turn's `actions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The Transfer Bot Context object (`setBotTransferIntentbyDomain`,
    /// `setBotTransferIntentId`, `setBotTransferUserMessage`): one a turn,
    /// each call setting its fields over the ones before.
    BotTransferContext(TransferContext),
    /// `logEscalationEvent(userMessage, escalationType)`.
    EscalationEvent {
        /// The user message it refers to.
        user_message: String,
        /// The kind of escalation.
        escalation_type: String,
    },
}

/// What a bot-to-bot transfer carries to the receiving bot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferContext {
    /// The intent, given one way or the other (the later call wins).
    pub intent: Option<TransferIntent>,
    /// The user message to pass on.
    pub user_message: Option<String>,
}

/// The intent of a Transfer Bot Context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferIntent {
    /// `setBotTransferIntentId(intentId)`.
    Id(String),
    /// `setBotTransferIntentbyDomain(intentName, domainName)`: the platform
    /// finds the intent's id.
    ByDomain {
        /// The intent's name.
        intent_name: String,
        /// Its domain's name.
        domain_name: String,
    },
}

impl Action {
    /// Adds the action to `actions`, in order: a Transfer Bot Context is
    /// set over the one already there (keeping its place), anything else is
    /// appended.
    pub fn add_to(self, actions: &mut Vec<Action>) {
        if let Action::BotTransferContext(later) = self {
            let existing = actions.iter_mut().find_map(|action| match action {
                Action::BotTransferContext(context) => Some(context),
                Action::EscalationEvent { .. } => None,
            });
            match existing {
                Some(context) => {
                    if later.intent.is_some() {
                        context.intent = later.intent;
                    }
                    if later.user_message.is_some() {
                        context.user_message = later.user_message;
                    }
                }
                None => actions.push(Action::BotTransferContext(later)),
            }
        } else {
            actions.push(self);
        }
    }
}

host_functions! {
        // Platform data
        "getLPAccountId" => get_lp_account_id,
        "getUserChannel" => get_user_channel,
        "getChannel" => get_channel,
        "getLPEngagementAttribute" => get_lp_engagement_attribute,
        "getLPCustomerInfo" => get_lp_customer_info,
        "getLPUserPersonalInfo" => get_lp_user_personal_info,
        "getMetadata" => get_metadata,
        "getWebViewVariable" => get_web_view_variable,
        "getWebViewVariables" => get_web_view_variables,
        "getFileCaption" => get_file_caption,
        "getFileType" => get_file_type,
        "askMaven" => ask_maven,
        // Platform actions
        "setBotTransferIntentbyDomain" => set_bot_transfer_intent_by_domain,
        "setBotTransferIntentId" => set_bot_transfer_intent_id,
        "setBotTransferUserMessage" => set_bot_transfer_user_message,
        "logEscalationEvent" => log_escalation_event,
        // Intent and NLU getters
        "getDialogStarterIntent" => get_dialog_starter_intent,
        "getNamedEntities" => get_named_entities,
        "getNlpResponse" => get_nlp_response,
        "getSentiment" => get_sentiment,
        "getDisambiguatedIntentName" => get_disambiguated_intent_name,
        "getDisambiguatedIntentId" => get_disambiguated_intent_id,
}

/// Checks the call's arguments against `signature` (their count, and that
/// each is a string; an optional one may be `null` or `undefined`) and
/// copies them out (an optional one left out as `None`); throws a
/// `TypeError` naming the function otherwise.
fn arguments(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    signature: &Signature,
) -> Option<Vec<Option<String>>> {
    if !signature.check_count(scope, args) {
        return None;
    }
    let mut values = Vec::with_capacity(signature.params.len());
    for (index, param) in signature.params.iter().enumerate() {
        let slot = i32::try_from(index).unwrap_or(i32::MAX);
        let value = args.get(slot);
        if index >= signature.required && value.is_null_or_undefined() {
            values.push(None);
            continue;
        }
        if !value.is_string() {
            let kind = if value.is_null() {
                "null".to_owned()
            } else {
                value.type_of(scope).to_rust_string_lossy(scope)
            };
            throw_type_error(
                scope,
                &format!(
                    "{}: `{param}` must be a string, not {kind}",
                    signature.shown()
                ),
            );
            return None;
        }
        values.push(Some(text(scope, args, slot)?));
    }
    Some(values)
}

/// The run's platform data (shared with the run's input, not copied).
fn platform(scope: &mut Scope<'_, '_>) -> Arc<PlatformData> {
    state(scope)
        .map(|run| Arc::clone(&run.input.platform))
        .unwrap_or_default()
}

/// Returns a string, or `null` for none.
fn return_optional(scope: &mut Scope<'_, '_>, rv: &mut v8::ReturnValue<'_>, value: Option<&str>) {
    match value {
        Some(value) => return_string(scope, rv, value),
        None => rv.set_null(),
    }
}

/// Returns the value of a JSON text the host prepared, parsed anew in the
/// run's context; `null` for none.
fn return_json(scope: &mut Scope<'_, '_>, rv: &mut v8::ReturnValue<'_>, json: Option<&str>) {
    let Some(json) = json else {
        rv.set_null();
        return;
    };
    let Some(text) = v8::String::new(scope, json) else {
        throw_range_error(scope, "value too large");
        return;
    };
    // A parse error (the host's texts are JSON) leaves its exception.
    if let Some(value) = v8::json::parse(scope, text) {
        rv.set(value);
    }
}

/// A getter of no arguments over the platform data.
fn getter(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    name: &'static str,
    read: fn(&PlatformData) -> Option<&str>,
) {
    if arguments(scope, args, &Signature::new(name, &[])).is_none() {
        return;
    }
    let platform = platform(scope);
    return_optional(scope, rv, read(&platform));
}

fn get_lp_account_id(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    getter(scope, &args, &mut rv, "getLPAccountId", |platform| {
        platform.account_id.as_deref()
    });
}

fn get_user_channel(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    getter(scope, &args, &mut rv, "getUserChannel", |platform| {
        platform.channel.as_deref()
    });
}

/// The deprecated spelling of `getUserChannel`.
fn get_channel(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    getter(scope, &args, &mut rv, "getChannel", |platform| {
        platform.channel.as_deref()
    });
}

/// A getter of one value by name from one of the platform data's maps.
fn by_name(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    signature: &Signature,
    map: fn(&PlatformData) -> &HashMap<String, String>,
    json: bool,
) {
    let Some(values) = arguments(scope, args, signature) else {
        return;
    };
    let name = values.into_iter().next().flatten().unwrap_or_default();
    let platform = platform(scope);
    let value = map(&platform).get(&name).map(String::as_str);
    if json {
        return_json(scope, rv, value);
    } else {
        return_optional(scope, rv, value);
    }
}

fn get_lp_engagement_attribute(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("getLPEngagementAttribute", &["name"]);
    by_name(
        scope,
        &args,
        &mut rv,
        &SIGNATURE,
        |platform| &platform.engagement,
        false,
    );
}

fn get_metadata(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("getMetadata", &["metadataEventTypeName"]);
    by_name(
        scope,
        &args,
        &mut rv,
        &SIGNATURE,
        |platform| &platform.metadata,
        true,
    );
}

fn get_web_view_variable(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("getWebViewVariable", &["variableName"]);
    by_name(
        scope,
        &args,
        &mut rv,
        &SIGNATURE,
        |platform| &platform.web_view,
        false,
    );
}

/// A getter of no arguments returning an object parsed from a JSON text.
fn json_getter(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    name: &'static str,
    read: fn(&PlatformData) -> Option<&str>,
) {
    if arguments(scope, args, &Signature::new(name, &[])).is_none() {
        return;
    }
    let platform = platform(scope);
    return_json(scope, rv, read(&platform));
}

fn get_web_view_variables(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    json_getter(scope, &args, &mut rv, "getWebViewVariables", |platform| {
        Some(platform.web_view_json.as_deref().unwrap_or("{}"))
    });
}

fn get_lp_customer_info(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    json_getter(scope, &args, &mut rv, "getLPCustomerInfo", |platform| {
        platform.customer_info.as_deref()
    });
}

fn get_lp_user_personal_info(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    json_getter(scope, &args, &mut rv, "getLPUserPersonalInfo", |platform| {
        platform.personal_info.as_deref()
    });
}

fn get_file_caption(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    getter(scope, &args, &mut rv, "getFileCaption", |platform| {
        platform.file.as_ref().map(|file| {
            file.caption
                .as_deref()
                .filter(|caption| !caption.is_empty())
                .unwrap_or(EMPTY_CAPTION)
        })
    });
}

fn get_file_type(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    getter(scope, &args, &mut rv, "getFileType", |platform| {
        platform
            .file
            .as_ref()
            .and_then(|file| file.file_type.as_deref())
    });
}

/// `askMaven()` or `askMaven(conversationId, consumerId, groupId)` (each
/// optional): the answer the caller sent, as a JSON text, whatever the
/// arguments name.
fn ask_maven(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature {
        name: "askMaven",
        params: &["conversationId", "consumerId", "groupId"],
        required: 0,
    };
    if arguments(scope, &args, &SIGNATURE).is_none() {
        return;
    }
    let platform = platform(scope);
    let answer = platform.maven.as_deref().unwrap_or(NO_MAVEN_ANSWER);
    return_string(scope, &mut rv, answer);
}

/// Records a platform action: its texts count against the run's output
/// limit, and nothing is recorded after `sendImmediateReply`.
fn record_action(scope: &mut Scope<'_, '_>, bytes: usize, action: Action) {
    record(scope, bytes, |output| action.add_to(&mut output.actions));
}

fn set_bot_transfer_intent_by_domain(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new(
        "setBotTransferIntentbyDomain",
        &["intentName", "domainName"],
    );
    let Some(values) = arguments(scope, &args, &SIGNATURE) else {
        return;
    };
    let mut values = values.into_iter().map(Option::unwrap_or_default);
    let intent_name = values.next().unwrap_or_default();
    let domain_name = values.next().unwrap_or_default();
    let bytes = intent_name.len() + domain_name.len();
    let context = TransferContext {
        intent: Some(TransferIntent::ByDomain {
            intent_name,
            domain_name,
        }),
        user_message: None,
    };
    record_action(scope, bytes, Action::BotTransferContext(context));
}

fn set_bot_transfer_intent_id(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("setBotTransferIntentId", &["intentId"]);
    let Some(values) = arguments(scope, &args, &SIGNATURE) else {
        return;
    };
    let intent_id = values.into_iter().next().flatten().unwrap_or_default();
    let bytes = intent_id.len();
    let context = TransferContext {
        intent: Some(TransferIntent::Id(intent_id)),
        user_message: None,
    };
    record_action(scope, bytes, Action::BotTransferContext(context));
}

fn set_bot_transfer_user_message(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("setBotTransferUserMessage", &["userMessage"]);
    let Some(values) = arguments(scope, &args, &SIGNATURE) else {
        return;
    };
    let user_message = values.into_iter().next().flatten().unwrap_or_default();
    let bytes = user_message.len();
    let context = TransferContext {
        intent: None,
        user_message: Some(user_message),
    };
    record_action(scope, bytes, Action::BotTransferContext(context));
}

fn log_escalation_event(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature =
        Signature::new("logEscalationEvent", &["userMessage", "escalationType"]);
    let Some(values) = arguments(scope, &args, &SIGNATURE) else {
        return;
    };
    let logged = state(scope).map_or(0, |run| {
        run.output
            .actions
            .iter()
            .filter(|action| matches!(action, Action::EscalationEvent { .. }))
            .count()
    });
    if logged >= ESCALATIONS_PER_RUN {
        throw_range_error(
            scope,
            &format!(
                "botContext.logEscalationEvent: at most {ESCALATIONS_PER_RUN} escalation events a script run"
            ),
        );
        return;
    }
    let mut values = values.into_iter().map(Option::unwrap_or_default);
    let user_message = values.next().unwrap_or_default();
    let escalation_type = values.next().unwrap_or_default();
    let bytes = user_message.len() + escalation_type.len();
    let event = Action::EscalationEvent {
        user_message,
        escalation_type,
    };
    record_action(scope, bytes, event);
}

fn get_dialog_starter_intent(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    if arguments(scope, &args, &Signature::new("getDialogStarterIntent", &[])).is_none() {
        return;
    }
    let intent = state(scope).and_then(|run| run.input.dialog_starter_intent.clone());
    return_optional(scope, &mut rv, intent.as_deref());
}

/// `getNamedEntities(name)`: no NLU engine recognises entities here, so
/// none are found: an empty array (the product's example guards with
/// `entities != null && entities.length > 0`).
fn get_named_entities(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::new("getNamedEntities", &["entityName"]);
    if arguments(scope, &args, &SIGNATURE).is_none() {
        return;
    }
    rv.set(v8::Array::new(scope, 0).into());
}

/// An NLU getter with nothing to give: `null`, the product's "nothing".
fn nothing(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    name: &'static str,
) {
    if arguments(scope, args, &Signature::new(name, &[])).is_some() {
        rv.set_null();
    }
}

fn get_nlp_response(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    nothing(scope, &args, &mut rv, "getNlpResponse");
}

fn get_sentiment(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    nothing(scope, &args, &mut rv, "getSentiment");
}

fn get_disambiguated_intent_name(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    nothing(scope, &args, &mut rv, "getDisambiguatedIntentName");
}

fn get_disambiguated_intent_id(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    nothing(scope, &args, &mut rv, "getDisambiguatedIntentId");
}
