//! `botContext` functions over the conversation's data: bot variables,
//! slots, the environment, the last call, the turn's input, and the next
//! interaction.

use super::{Scope, named_call, record, return_string, state, text, throw_range_error};
use crate::runtime::{Persistence, ScriptInput, SlotWrite, VariableWrite};

host_functions! {
        "getBotVariable" => get_bot_variable,
        "setBotVariable" => set_bot_variable,
        "getSlotValue" => get_slot_value,
        "setSlotValue" => set_slot_value,
        "getEnvVariable" => get_env_variable,
        "setTriggerNextMessage" => set_trigger_next_message,
        "getApiStatusCode" => get_api_status_code,
        "isApiExecutionSuccessful" => is_api_execution_successful,
        "getCurrentUserMessage" => get_current_user_message,
        "getConversationId" => get_conversation_id,
        "getChatBotId" => get_chat_bot_id,
        "getUserPlatformId" => get_user_platform_id,
        "getQuickReplyPayload" => get_quick_reply_payload,
}

fn get_bot_variable(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    let Some(name) = text(scope, &args, 0) else {
        return;
    };
    let is_api = state(scope)
        .and_then(|state| state.input.api.as_ref())
        .is_some_and(|api| api.name == name);
    if is_api {
        // `getBotVariable("api_RDVN")` is the transform's own object.
        let context = scope.get_current_context();
        let global = context.global(scope);
        if let Some(key) = v8::String::new(scope, &name)
            && let Some(value) = global.get(scope, key.into())
        {
            rv.set(value);
        }
        return;
    }
    let value = state(scope).and_then(|state| state.input.variables.get(&name).cloned());
    match value {
        Some(value) => return_string(scope, &mut rv, &value),
        None => rv.set_null(),
    }
}

fn set_bot_variable(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(name) = text(scope, &args, 0) else {
        return;
    };
    let Some(value) = text(scope, &args, 1) else {
        return;
    };
    let session = args.get(2).boolean_value(scope);
    let forever = args.get(3).boolean_value(scope);
    let persistence = if forever {
        Persistence::Forever
    } else if session {
        Persistence::Session
    } else {
        Persistence::Request
    };
    let bytes = name.len() + value.len();
    let Some(run) = state(scope) else { return };
    if run.output.immediate_reply {
        return;
    }
    if !run.charge(bytes) {
        throw_range_error(scope, "script output limit exceeded");
        return;
    }
    // Later reads in the same run see the new value.
    run.input.variables.insert(name.clone(), value.clone());
    run.output.variables.push(VariableWrite {
        name,
        value,
        persistence,
    });
}

fn get_slot_value(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    let Some(name) = named_call(scope, &args, "getSlotValue(name)", 1) else {
        return;
    };
    match state(scope).and_then(|state| state.input.slots.get(&name).cloned()) {
        Some(value) => return_string(scope, &mut rv, &value),
        None => rv.set_null(),
    }
}

/// Bounded and ordered as `setBotVariable` is: the name and value count
/// against the run's output limit, and nothing is recorded after
/// `sendImmediateReply`.
fn set_slot_value(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(name) = named_call(scope, &args, "setSlotValue(name, value)", 2) else {
        return;
    };
    let Some(value) = text(scope, &args, 1) else {
        return;
    };
    let bytes = name.len() + value.len();
    let Some(run) = state(scope) else { return };
    if run.output.immediate_reply {
        return;
    }
    if !run.charge(bytes) {
        throw_range_error(scope, "script output limit exceeded");
        return;
    }
    // Later reads in the same run see the new value.
    run.input.slots.insert(name.clone(), value.clone());
    run.output.slots.push(SlotWrite { name, value });
}

fn get_env_variable(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    let Some(name) = text(scope, &args, 0) else {
        return;
    };
    match state(scope).and_then(|state| state.input.env.get(&name).cloned()) {
        Some(value) => return_string(scope, &mut rv, &value),
        None => rv.set_null(),
    }
}

fn set_trigger_next_message(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(message) = text(scope, &args, 0) else {
        return;
    };
    record(scope, message.len(), |output| {
        output.trigger = Some(message)
    });
}

fn get_api_status_code(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    let status = state(scope)
        .and_then(|state| state.input.api_status)
        .map(|status| status.to_string())
        .unwrap_or_default();
    return_string(scope, &mut rv, &status);
}

fn is_api_execution_successful(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    let success = state(scope).is_some_and(|state| state.input.api_success);
    rv.set_bool(success);
}

/// A getter of one input string.
pub(super) fn input_string(
    scope: &mut Scope<'_, '_>,
    rv: &mut v8::ReturnValue<'_>,
    field: fn(&ScriptInput) -> &str,
) {
    let value = state(scope)
        .map(|state| field(&state.input).to_owned())
        .unwrap_or_default();
    return_string(scope, rv, &value);
}

fn get_current_user_message(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    input_string(scope, &mut rv, |input| &input.user_message);
}

fn get_conversation_id(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    input_string(scope, &mut rv, |input| &input.conversation_id);
}

fn get_chat_bot_id(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    input_string(scope, &mut rv, |input| &input.chat_bot_id);
}

fn get_user_platform_id(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    input_string(scope, &mut rv, |input| &input.user_platform_id);
}

fn get_quick_reply_payload(
    scope: &mut Scope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    input_string(scope, &mut rv, |input| &input.quick_reply_payload);
}
