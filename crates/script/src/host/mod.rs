//! `botContext`: the host API a script sees (spec section 4). Every value
//! crosses as a string, as in the product; what the script does is recorded
//! in the run's state, never printed.

use crate::runtime::{DEBUG_TEXT_BYTES, ScriptInput, ScriptOutput};

/// Defines a host module's `install` (its functions on the `botContext`
/// template) and `references` (their addresses, which V8 needs to
/// serialize the template into the startup snapshot and to find the
/// functions again when a context is made from it), from one list of
/// `"name" => callback`, so the two cannot drift apart.
macro_rules! host_functions {
    ($($name:literal => $callback:expr),* $(,)?) => {
        pub(super) fn install<'s>(
            scope: &mut v8::PinScope<'s, '_, ()>,
            bot_context: v8::Local<'s, v8::ObjectTemplate>,
        ) -> Option<()> {
            $(
                let function = v8::FunctionTemplate::new(scope, $callback);
                let key = v8::String::new(scope, $name)?;
                bot_context.set(key.into(), function.into());
            )*
            Some(())
        }

        pub(super) fn references() -> impl Iterator<Item = v8::ExternalReference> {
            [$(v8::ExternalReference {
                function: v8::MapFnTo::map_fn_to($callback),
            }),*]
            .into_iter()
        }
    };
}

mod context;
mod flow;
mod messages;
mod platform;
mod session;

pub use flow::ALLOW_MAX_TEXT_VARIABLE;
pub use platform::{
    Action, EMPTY_CAPTION, ESCALATIONS_PER_RUN, FileData, NO_MAVEN_ANSWER, PlatformData,
    TransferContext, TransferIntent,
};

/// What one run reads and writes; kept in an isolate slot for the run. The
/// isolate is shared between threads, so what its slot holds must be
/// `Send` (checked below).
pub(crate) struct RunState {
    pub(crate) input: ScriptInput,
    pub(crate) output: ScriptOutput,
    output_bytes: usize,
    output_limit: usize,
    pub(crate) output_exceeded: bool,
}

const _: () = {
    const fn must_be_send<T: Send>() {}
    must_be_send::<RunState>();
};

impl RunState {
    pub(crate) fn new(input: ScriptInput, output_limit: usize) -> Self {
        Self {
            input,
            output: ScriptOutput::default(),
            output_bytes: 0,
            output_limit,
            output_exceeded: false,
        }
    }

    /// How large the transform's new `jsonData` may be: what the run may
    /// still output, plus the size of the response it reshapes (a
    /// transform may rewrite a response whole; it may not amplify it).
    pub(crate) fn json_data_room(&self) -> usize {
        let response = self.input.api.as_ref().map_or(0, |api| api.json_data.len());
        self.output_limit
            .saturating_sub(self.output_bytes)
            .saturating_add(response)
    }

    /// Counts output against the limit; false once it is passed.
    pub(crate) fn charge(&mut self, bytes: usize) -> bool {
        self.output_bytes = self.output_bytes.saturating_add(bytes);
        if self.output_bytes > self.output_limit {
            self.output_exceeded = true;
        }
        !self.output_exceeded
    }
}

pub(super) type Scope<'s, 'i> = v8::PinScope<'s, 'i>;

pub(super) fn state<'a>(scope: &'a mut Scope<'_, '_>) -> Option<&'a mut RunState> {
    scope.get_slot_mut::<RunState>()
}

/// The argument as JavaScript's `String(value)` gives it; `None` when that
/// threw (the exception then propagates to the script).
pub(super) fn text(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    index: i32,
) -> Option<String> {
    let string = args.get(index).to_string(scope)?;
    bounded(scope, string)
}

/// A string copied out of V8, unless it is larger than what the run may
/// still produce: then the run has passed its output limit, and the host
/// never holds a copy of the oversized value.
pub(super) fn bounded(
    scope: &mut Scope<'_, '_>,
    string: v8::Local<'_, v8::String>,
) -> Option<String> {
    let bytes = string.utf8_length(scope);
    let run = state(scope)?;
    if bytes > run.output_limit.saturating_sub(run.output_bytes) {
        run.output_exceeded = true;
        throw_range_error(scope, "script output limit exceeded");
        return None;
    }
    Some(string.to_rust_string_lossy(scope))
}

/// Bytes the run may still output before it passes its limit.
pub(super) fn room(scope: &mut Scope<'_, '_>) -> usize {
    state(scope).map_or(0, |run| run.output_limit.saturating_sub(run.output_bytes))
}

/// How far past [`DEBUG_TEXT_BYTES`] a debug text is copied out of V8:
/// the host masks secrets before it cuts the text to size, and a secret
/// that the first cut split would no longer be recognised.
pub(super) const DEBUG_TEXT_SLACK: usize = 1024;

/// `String(value)` cut to [`DEBUG_TEXT_BYTES`] and [`DEBUG_TEXT_SLACK`]
/// (ending with `…` when cut), copied out of V8 no further than that: debug
/// output and events are bounded per call, so a large value never fails
/// the run. The host cuts it to [`DEBUG_TEXT_BYTES`] once it has masked it.
pub(super) fn capped_text(
    scope: &mut Scope<'_, '_>,
    value: v8::Local<'_, v8::Value>,
) -> Option<String> {
    let string = value.to_string(scope)?;
    let length = string.utf8_length(scope);
    let mut buffer = vec![0_u8; length.min(DEBUG_TEXT_BYTES + DEBUG_TEXT_SLACK)];
    // V8 writes whole characters only; what fits is kept.
    let written = string.write_utf8_v2(
        scope,
        &mut buffer,
        v8::WriteFlags::kReplaceInvalidUtf8,
        None,
    );
    buffer.truncate(written);
    let mut text = String::from_utf8_lossy(&buffer).into_owned();
    if written < length {
        text.push('…');
    }
    Some(text)
}

/// The most elements a `botContext` function reads from one array
/// argument. Reading an element is native work V8 cannot stop at the run's
/// time limit, and an element may be empty (costing no output), so arrays
/// are bounded by count before any element is read.
pub(crate) const MAX_ARRAY_ELEMENTS: u32 = 1000;

/// Whether `array` is within [`MAX_ARRAY_ELEMENTS`]; otherwise throws a
/// `RangeError` saying so.
pub(super) fn array_fits(scope: &mut Scope<'_, '_>, array: v8::Local<'_, v8::Array>) -> bool {
    let length = array.length();
    if length > MAX_ARRAY_ELEMENTS {
        throw_range_error(
            scope,
            &format!(
                "an array argument of botContext holds at most {MAX_ARRAY_ELEMENTS} elements; this one has {length}"
            ),
        );
        return false;
    }
    true
}

/// Each element of `array` as `String(element)`, in order; `None` when one
/// threw, or when together they pass what the run may still output (then
/// the run has passed its output limit).
pub(super) fn array_texts(
    scope: &mut Scope<'_, '_>,
    array: v8::Local<'_, v8::Array>,
) -> Option<Vec<String>> {
    if !array_fits(scope, array) {
        return None;
    }
    let mut texts = Vec::new();
    let mut total = 0_usize;
    for index in 0..array.length() {
        let item = array.get_index(scope, index)?;
        let string = item.to_string(scope)?;
        let text = bounded(scope, string)?;
        total = total.saturating_add(text.len());
        if total > room(scope) {
            if let Some(run) = state(scope) {
                run.output_exceeded = true;
            }
            throw_range_error(scope, "script output limit exceeded");
            return None;
        }
        texts.push(text);
    }
    Some(texts)
}

/// The messages a `sendMessages` or `sendImmediateReply` argument stands
/// for: each element of an array (as the product documents both), or the
/// value itself as one message.
pub(super) fn message_list(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
) -> Option<Vec<String>> {
    match v8::Local::<v8::Array>::try_from(args.get(0)) {
        Ok(array) => array_texts(scope, array),
        Err(_) => text(scope, args, 0).map(|message| vec![message]),
    }
}

pub(super) fn throw_range_error(scope: &mut Scope<'_, '_>, message: &str) {
    if let Some(message) = v8::String::new(scope, message) {
        let exception = v8::Exception::range_error(scope, message);
        scope.throw_exception(exception);
    }
}

pub(super) fn throw_type_error(scope: &mut Scope<'_, '_>, message: &str) {
    if let Some(message) = v8::String::new(scope, message) {
        let exception = v8::Exception::type_error(scope, message);
        scope.throw_exception(exception);
    }
}

/// A `botContext` function's signature, for its argument checks and their
/// messages: its name, its parameters, and how many must be given (the
/// rest may be left out).
pub(super) struct Signature {
    /// Its name.
    pub(super) name: &'static str,
    /// Its parameters.
    pub(super) params: &'static [&'static str],
    /// How many of them must be given.
    pub(super) required: usize,
}

impl Signature {
    /// A signature whose parameters must all be given.
    pub(super) const fn new(name: &'static str, params: &'static [&'static str]) -> Self {
        Self::with_required(name, params, params.len())
    }

    /// A signature whose first `required` parameters must be given.
    pub(super) const fn with_required(
        name: &'static str,
        params: &'static [&'static str],
        required: usize,
    ) -> Self {
        Self {
            name,
            params,
            required,
        }
    }

    /// `botContext.name(a, b?)`.
    pub(super) fn shown(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(index, param)| {
                if index < self.required {
                    (*param).to_owned()
                } else {
                    format!("{param}?")
                }
            })
            .collect();
        format!("botContext.{}({})", self.name, params.join(", "))
    }

    /// How many arguments it takes, in words.
    fn count(&self) -> String {
        let (min, max) = (self.required, self.params.len());
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if max == 0 {
            "no arguments".to_owned()
        } else if min == max {
            format!("{min} argument{}", plural(min))
        } else {
            format!("{min} to {max} arguments")
        }
    }

    /// Throws a `TypeError` unless the call has as many arguments as the
    /// signature takes.
    pub(super) fn check_count(
        &self,
        scope: &mut Scope<'_, '_>,
        args: &v8::FunctionCallbackArguments<'_>,
    ) -> bool {
        let given = usize::try_from(args.length()).unwrap_or_default();
        if (self.required..=self.params.len()).contains(&given) {
            return true;
        }
        throw_type_error(
            scope,
            &format!("{} takes {}, {given} given", self.shown(), self.count()),
        );
        false
    }
}

/// Whether `signature` (e.g. `setMessageDelay(delay_value)`) got at least
/// `needed` arguments; otherwise throws a `TypeError` saying so.
pub(super) fn takes(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    signature: &str,
    needed: i32,
) -> bool {
    let given = args.length();
    if given >= needed {
        return true;
    }
    let plural = if needed == 1 { "" } else { "s" };
    throw_type_error(
        scope,
        &format!("botContext.{signature} takes {needed} argument{plural}, {given} given"),
    );
    false
}

/// Checks that `function` (its signature for messages, e.g.
/// `setSlotValue(name, value)`) got at least `needed` arguments and that
/// the first, a name, is a string; otherwise throws a `TypeError` saying
/// so and returns `None`. The name is then copied out as [`text`] does.
pub(super) fn named_call(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    function: &str,
    needed: i32,
) -> Option<String> {
    if !takes(scope, args, function, needed) {
        return None;
    }
    let name = args.get(0);
    if !name.is_string() {
        let kind = name.type_of(scope).to_rust_string_lossy(scope);
        // `typeof null` is "object"; say what it is.
        let kind = if name.is_null() {
            "null".to_owned()
        } else {
            kind
        };
        throw_type_error(
            scope,
            &format!("botContext.{function}: the slot's name must be a string, not {kind}"),
        );
        return None;
    }
    text(scope, args, 0)
}

pub(super) fn return_string(scope: &mut Scope<'_, '_>, rv: &mut v8::ReturnValue<'_>, value: &str) {
    match v8::String::new(scope, value) {
        Some(value) => rv.set(value.into()),
        None => throw_range_error(scope, "value too large"),
    }
}

/// Records output, or throws once the run's output limit is passed. After
/// `sendImmediateReply` nothing more is recorded: the script has ended, even
/// while V8 is still unwinding it.
/// Records debug output or an event: bounded by count and size on their
/// own ([`DEBUG_MESSAGES_PER_RUN`], [`EVENTS_PER_RUN`], each text
/// [`DEBUG_TEXT_BYTES`]), so not charged to the run's output limit: a
/// script's debugging must never be why it fails (or keeps nothing).
pub(super) fn record_trace(scope: &mut Scope<'_, '_>, write: impl FnOnce(&mut ScriptOutput)) {
    let Some(state) = state(scope) else { return };
    if !state.output.immediate_reply {
        write(&mut state.output);
    }
}

pub(super) fn record(
    scope: &mut Scope<'_, '_>,
    bytes: usize,
    write: impl FnOnce(&mut ScriptOutput),
) {
    let Some(state) = state(scope) else { return };
    if state.output.immediate_reply {
        return;
    }
    if state.charge(bytes) {
        write(&mut state.output);
    } else {
        throw_range_error(scope, "script output limit exceeded");
    }
}

/// The template of the sandbox's global object: `botContext` with its
/// methods (frozen by the lockdown, like every builtin).
pub(crate) fn global_template<'s>(
    scope: &mut v8::PinScope<'s, '_, ()>,
) -> Option<v8::Local<'s, v8::ObjectTemplate>> {
    let bot_context = v8::ObjectTemplate::new(scope);
    session::install(scope, bot_context)?;
    context::install(scope, bot_context)?;
    messages::install(scope, bot_context)?;
    flow::install(scope, bot_context)?;
    platform::install(scope, bot_context)?;
    let global = v8::ObjectTemplate::new(scope);
    // The global is extensible (scripts make implicit globals), so without
    // this a script could swap its prototype for a Proxy whose traps the
    // next run's (or the host's) global lookups would call.
    global.set_immutable_proto();
    let key = v8::String::new(scope, "botContext")?;
    global.set(key.into(), bot_context.into());
    Some(global)
}

/// The address of every host function, for the startup snapshot.
pub(crate) fn external_references() -> Vec<v8::ExternalReference> {
    std::iter::once(v8::ExternalReference {
        function: v8::MapFnTo::map_fn_to(is_proxy),
    })
    .chain(session::references())
    .chain(context::references())
    .chain(messages::references())
    .chain(flow::references())
    .chain(platform::references())
    .collect()
}

/// `isProxy(value)`, which only the lockdown holds (in closures no script
/// reaches): whether a value is a Proxy, which no script can tell.
pub(crate) fn is_proxy(
    _scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    rv.set_bool(args.get(0).is_proxy());
}

/// Whether `sendImmediateReply` ended the run.
pub(crate) fn replied(scope: &mut Scope<'_, '_>) -> bool {
    state(scope).is_some_and(|state| state.output.immediate_reply)
}

/// Adds the transform's `api_RDVN` object to the global for a run. As a
/// `fixed` binding it is defined non-configurable (writable): the sandbox
/// keeps it and its reset puts `undefined` back in it after each run, so
/// the global's keys stay those of the baseline and the reset's cheap
/// path holds. Otherwise it is an ordinary (configurable) property, which
/// the reset deletes with the run's other globals. Whether it was defined
/// (a name the lockdown holds, such as `Object`, refuses it, and the run
/// goes on without it, as before); `None` when V8 could not make it.
pub(crate) fn install_api(scope: &mut Scope<'_, '_>, fixed: bool) -> Option<bool> {
    let context = scope.get_current_context();
    let global = context.global(scope);
    let api = state(scope).and_then(|state| state.input.api.clone());
    if let Some(api) = api {
        // Defined, not assigned: an assignment would look for setters
        // along the prototype chain.
        let object = v8::Object::new(scope);
        let key = v8::String::new(scope, "jsonData")?;
        let value = v8::String::new(scope, &api.json_data)?;
        object.create_data_property(scope, key.into(), value.into())?;
        let name = v8::String::new(scope, &api.name)?;
        return if fixed {
            global.define_own_property(
                scope,
                name.into(),
                object.into(),
                v8::PropertyAttribute::DONT_DELETE,
            )
        } else {
            global.create_data_property(scope, name.into(), object.into())
        };
    }
    Some(false)
}

/// The transform's `jsonData` after the run, as text, checked against
/// [`RunState::json_data_room`] before it is copied out of V8: a transform
/// that builds a huge `jsonData` ends with the output-limit error.
pub(crate) fn read_json_data(scope: &mut Scope<'_, '_>, name: &str) -> Option<String> {
    let context = scope.get_current_context();
    let global = context.global(scope);
    let key = v8::String::new(scope, name)?;
    let object = global.get(scope, key.into())?.to_object(scope)?;
    let key = v8::String::new(scope, "jsonData")?;
    let value = object.get(scope, key.into())?;
    let text = if value.is_string() {
        value.to_string(scope)?
    } else {
        // An object assigned to jsonData is what the script meant: its JSON.
        v8::json::stringify(scope, value)?
    };
    let bytes = text.utf8_length(scope);
    let run = state(scope)?;
    if bytes > run.json_data_room() {
        run.output_exceeded = true;
        return None;
    }
    Some(text.to_rust_string_lossy(scope))
}
