//! `botContext` functions that send messages, debug output and events.

use super::flow::{quick_replies_argument, quick_replies_bytes};
use super::{Scope, capped_text, message_list, record, record_trace, state, takes, text};
use crate::runtime::{CustomEvent, DEBUG_MESSAGES_PER_RUN, EVENTS_PER_RUN, ScriptOutput};

host_functions! {
        "sendMessage" => send_message,
        "sendMessages" => send_messages,
        "sendImmediateReply" => send_immediate_reply,
        "sendMessageWithQuickReplies" => send_message_with_quick_replies,
        "printDebugMessage" => print_debug_message,
        "logCustomEvent" => log_custom_event,
}

fn send_message(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(message) = text(scope, &args, 0) else {
        return;
    };
    record(scope, message.len(), |output| output.messages.push(message));
}

fn send_messages(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(messages) = message_list(scope, &args) else {
        return;
    };
    let bytes = messages.iter().map(String::len).sum();
    record(scope, bytes, |output| output.messages.extend(messages));
}

/// A message with quick replies (`"Title~payload"`, at most 10, titles of
/// at most 20 characters); with none, the text alone, as `sendMessage`.
fn send_message_with_quick_replies(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: &str = "sendMessageWithQuickReplies(message, quickReplies)";
    if !takes(scope, &args, SIGNATURE, 2) {
        return;
    }
    let Some(replies) = quick_replies_argument(scope, &args, 1, SIGNATURE) else {
        return;
    };
    let Some(message) = text(scope, &args, 0) else {
        return;
    };
    let bytes = message.len() + quick_replies_bytes(&replies);
    record(scope, bytes, |output| {
        if !replies.is_empty() {
            output
                .quick_reply_messages
                .push((output.messages.len(), replies));
        }
        output.messages.push(message);
    });
}

fn send_immediate_reply(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    let Some(messages) = message_list(scope, &args) else {
        return;
    };
    let bytes = messages.iter().map(String::len).sum();
    record(scope, bytes, |output| {
        output.messages.extend(messages);
        output.immediate_reply = true;
    });
    // Ends the script here: termination cannot be caught by `try`.
    if state(scope).is_some_and(|state| state.output.immediate_reply) {
        scope.terminate_execution();
    }
}

/// Whether a debug message or event may still be kept: false after
/// `sendImmediateReply`, and past `kept` calls (then the call is counted
/// in `dropped`).
fn keeps_another(
    scope: &mut Scope<'_, '_>,
    kept: fn(&ScriptOutput) -> usize,
    limit: usize,
    dropped: fn(&mut ScriptOutput) -> &mut usize,
) -> bool {
    let Some(run) = state(scope) else {
        return false;
    };
    if run.output.immediate_reply {
        return false;
    }
    if kept(&run.output) >= limit {
        *dropped(&mut run.output) += 1;
        return false;
    }
    true
}

fn print_debug_message(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    if !keeps_another(
        scope,
        |output| output.debug.len(),
        DEBUG_MESSAGES_PER_RUN,
        |output| &mut output.debug_dropped,
    ) {
        return;
    }
    let Some(message) = capped_text(scope, args.get(0)) else {
        return;
    };
    record_trace(scope, |output| output.debug.push(message));
}

fn log_custom_event(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_>,
) {
    if !keeps_another(
        scope,
        |output| output.events.len(),
        EVENTS_PER_RUN,
        |output| &mut output.events_dropped,
    ) {
        return;
    }
    let Some(user_message) = capped_text(scope, args.get(0)) else {
        return;
    };
    let Some(name) = capped_text(scope, args.get(1)) else {
        return;
    };
    // The detail is optional in the product: left out, it is empty.
    let detail = args.get(2);
    let detail = if detail.is_null_or_undefined() {
        String::new()
    } else {
        let Some(detail) = capped_text(scope, detail) else {
            return;
        };
        detail
    };
    record_trace(scope, |output| {
        output.events.push(CustomEvent {
            user_message,
            name,
            detail,
        });
    });
}
