//! `botContext` functions of the Conversation Context Service: namespaces
//! and their properties in the bot's global scope, the user's and the
//! conversation's. They read the run's [`ContextSnapshot`] (loaded by the
//! engine before the run) and record [`ContextWrite`]s (written by the
//! engine after it), so no call waits on the store; a run's reads see its
//! own earlier writes.
//!
//! Values are kept as JSON (`JSON.stringify` of the value) and read back
//! parsed, so numbers, strings, booleans, arrays and objects round-trip.
//! Update functions return true once the write is recorded and false for
//! what the product's service would refuse (a namespace that is not
//! registered, a reserved or malformed namespace name, a scope the turn
//! does not have, a store that could not be read); wrong arguments throw a
//! `TypeError`, and a bound passed throws a `RangeError` naming it.

use super::{Scope, Signature, state, throw_range_error, throw_type_error};
use crate::context::{
    CONTEXT_MAX_NAMESPACE_BYTES, CONTEXT_MAX_NAMESPACES, CONTEXT_MAX_PROPERTIES,
    CONTEXT_MAX_PROPERTY_BYTES, CONTEXT_MAX_RECORD_BYTES, CONTEXT_MAX_TTL_SECONDS,
    CONTEXT_MAX_VALUE_BYTES, CONTEXT_WRITES_PER_RUN, ContextScope, ContextSnapshot, ContextWrite,
    entry_bytes, record_bytes, valid_namespace,
};

host_functions! {
        "isContextApiEnabled" => is_context_api_enabled,
        "registerContextNamespace" => register_context_namespace,
        "deleteContextNamespace" => delete_context_namespace,
        "setGlobalContextData" => set_global_context_data,
        "setContextDataForUser" => set_context_data_for_user,
        "setContextDataForConversation" => set_context_data_for_conversation,
        "getGlobalContextData" => get_global_context_data,
        "getContextDataForUser" => get_context_data_for_user,
        "getContextDataForConversation" => get_context_data_for_conversation,
        "deleteGlobalContextData" => delete_global_context_data,
        "deleteContextDataForUser" => delete_context_data_for_user,
        "deleteContextDataForConversation" => delete_context_data_for_conversation,
        "deleteAllContextDataForUser" => delete_all_context_data_for_user,
        "deleteAllContextDataForConversation" => delete_all_context_data_for_conversation,
}

impl Signature {
    /// The argument at `index`, which must be a string (`TypeError`
    /// otherwise); not copied out of V8.
    fn string<'a>(
        &self,
        scope: &mut Scope<'_, '_>,
        args: &v8::FunctionCallbackArguments<'a>,
        index: usize,
    ) -> Option<v8::Local<'a, v8::String>> {
        let value = args.get(i32::try_from(index).unwrap_or(i32::MAX));
        if let Ok(string) = v8::Local::<v8::String>::try_from(value) {
            return Some(string);
        }
        let kind = if value.is_null() {
            "null".to_owned()
        } else {
            value.type_of(scope).to_rust_string_lossy(scope)
        };
        throw_type_error(
            scope,
            &format!(
                "{}: `{}` must be a string, not {kind}",
                self.shown(),
                self.params.get(index).copied().unwrap_or("argument")
            ),
        );
        None
    }

    /// The namespace (argument 0): a string, copied out when it is short
    /// enough to be one (`Some(None)` when it is longer: no namespace has
    /// that name).
    fn namespace(
        &self,
        scope: &mut Scope<'_, '_>,
        args: &v8::FunctionCallbackArguments<'_>,
    ) -> Option<Option<String>> {
        let string = self.string(scope, args, 0)?;
        if string.utf8_length(scope) > CONTEXT_MAX_NAMESPACE_BYTES {
            return Some(None);
        }
        Some(Some(string.to_rust_string_lossy(scope)))
    }

    /// The property (argument 1): a string of 1 to
    /// [`CONTEXT_MAX_PROPERTY_BYTES`] bytes (`RangeError` otherwise).
    fn property(
        &self,
        scope: &mut Scope<'_, '_>,
        args: &v8::FunctionCallbackArguments<'_>,
    ) -> Option<String> {
        let string = self.string(scope, args, 1)?;
        let bytes = string.utf8_length(scope);
        if bytes == 0 || bytes > CONTEXT_MAX_PROPERTY_BYTES {
            throw_range_error(
                scope,
                &format!(
                    "{}: a property name is 1 to {CONTEXT_MAX_PROPERTY_BYTES} bytes, not {bytes}",
                    self.shown()
                ),
            );
            return None;
        }
        Some(string.to_rust_string_lossy(scope))
    }

    /// The run's snapshot; throws an `Error` when the engine did not load
    /// one for this script (its source does not name a context function:
    /// it calls one by a computed name).
    fn snapshot<'a>(&self, scope: &'a mut Scope<'_, '_>) -> Option<&'a mut ContextSnapshot> {
        let loaded = state(scope).is_some_and(|run| run.input.context.loaded);
        if !loaded {
            let message = format!(
                "{}: the context store was not loaded for this script; name the function in its source (botContext.{}) instead of computing its name",
                self.shown(),
                self.name
            );
            if let Some(message) = v8::String::new(scope, &message) {
                let exception = v8::Exception::error(scope, message);
                scope.throw_exception(exception);
            }
            return None;
        }
        state(scope).map(|run| &mut run.input.context)
    }
}

/// Records a write: nothing after `sendImmediateReply`; throws a
/// `RangeError` past [`CONTEXT_WRITES_PER_RUN`] or the run's output limit.
fn record_write(
    scope: &mut Scope<'_, '_>,
    signature: &Signature,
    bytes: usize,
    write: ContextWrite,
) -> bool {
    let Some(run) = state(scope) else {
        return false;
    };
    if run.output.immediate_reply {
        return false;
    }
    if run.output.context.len() >= CONTEXT_WRITES_PER_RUN {
        throw_range_error(
            scope,
            &format!(
                "{}: more than {CONTEXT_WRITES_PER_RUN} context store writes in one script run",
                signature.shown()
            ),
        );
        return false;
    }
    if !run.charge(bytes) {
        throw_range_error(scope, "script output limit exceeded");
        return false;
    }
    run.output.context.push(write);
    true
}

fn is_context_api_enabled(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature = Signature::with_required("isContextApiEnabled", &[], 0);
    if !SIGNATURE.check_count(scope, &args) {
        return;
    }
    // Enabled unless this run's snapshot could not be read.
    let enabled = state(scope).is_none_or(|run| run.input.context.unavailable.is_none());
    rv.set_bool(enabled);
}

fn register_context_namespace(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature =
        Signature::with_required("registerContextNamespace", &["namespace", "ttl"], 1);
    if !SIGNATURE.check_count(scope, &args) {
        return;
    }
    let Some(namespace) = SIGNATURE.namespace(scope, &args) else {
        return;
    };
    let ttl = args.get(1);
    let ttl_seconds = if ttl.is_null_or_undefined() {
        None
    } else {
        if !ttl.is_number() {
            let kind = ttl.type_of(scope).to_rust_string_lossy(scope);
            throw_type_error(
                scope,
                &format!(
                    "{}: `ttl` must be a number of seconds, not {kind}",
                    SIGNATURE.shown()
                ),
            );
            return;
        }
        let seconds = ttl.number_value(scope).unwrap_or(f64::NAN);
        #[allow(clippy::cast_precision_loss)] // the limit is far below 2^53
        let max = CONTEXT_MAX_TTL_SECONDS as f64;
        if !(0.0..=max).contains(&seconds) || seconds.fract() != 0.0 {
            throw_range_error(
                scope,
                &format!(
                    "{}: `ttl` is a whole number of seconds from 0 (no expiry) to {CONTEXT_MAX_TTL_SECONDS} (ten years), not {seconds}",
                    SIGNATURE.shown()
                ),
            );
            return;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above
        Some(seconds as u64)
    };
    let Some(snapshot) = SIGNATURE.snapshot(scope) else {
        return;
    };
    if snapshot.unavailable.is_some() {
        rv.set_bool(false);
        return;
    }
    // Reserved or malformed names are refused, as the product's service
    // refuses them.
    let Some(namespace) = namespace.filter(|name| valid_namespace(name)) else {
        rv.set_bool(false);
        return;
    };
    let exists = snapshot.namespaces.contains_key(&namespace);
    if !exists && snapshot.namespaces.len() >= CONTEXT_MAX_NAMESPACES {
        throw_range_error(
            scope,
            &format!(
                "{}: the bot has {CONTEXT_MAX_NAMESPACES} namespaces, the most it may register; delete one first",
                SIGNATURE.shown()
            ),
        );
        return;
    }
    let write = ContextWrite::RegisterNamespace {
        namespace: namespace.clone(),
        ttl_seconds,
    };
    if !record_write(scope, &SIGNATURE, namespace.len() + 8, write) {
        return;
    }
    if let Some(run) = state(scope) {
        let namespaces = &mut run.input.context.namespaces;
        let ttl = ttl_seconds.unwrap_or_else(|| namespaces.get(&namespace).copied().unwrap_or(0));
        namespaces.insert(namespace, ttl);
    }
    rv.set_bool(true);
}

fn delete_context_namespace(
    scope: &mut Scope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_>,
) {
    const SIGNATURE: Signature =
        Signature::with_required("deleteContextNamespace", &["namespace"], 1);
    if !SIGNATURE.check_count(scope, &args) {
        return;
    }
    let Some(namespace) = SIGNATURE.namespace(scope, &args) else {
        return;
    };
    let Some(snapshot) = SIGNATURE.snapshot(scope) else {
        return;
    };
    let Some(namespace) = namespace
        .filter(|name| snapshot.unavailable.is_none() && snapshot.namespaces.contains_key(name))
    else {
        rv.set_bool(false);
        return;
    };
    let write = ContextWrite::DeleteNamespace {
        namespace: namespace.clone(),
    };
    if !record_write(scope, &SIGNATURE, namespace.len(), write) {
        return;
    }
    if let Some(run) = state(scope) {
        let snapshot = &mut run.input.context;
        snapshot.namespaces.remove(&namespace);
        for scope in [
            ContextScope::Global,
            ContextScope::User,
            ContextScope::Conversation,
        ] {
            if let Some(data) = snapshot.scope_mut(scope) {
                data.remove(&namespace);
            }
        }
    }
    rv.set_bool(true);
}

/// What a call may act on: the namespace, when the store was read, the
/// namespace is registered and the run has the scope; `None` (the call
/// returns false or null) otherwise.
fn registered(
    snapshot: &ContextSnapshot,
    namespace: Option<String>,
    scope: ContextScope,
) -> Option<String> {
    let namespace = namespace?;
    (snapshot.unavailable.is_none()
        && snapshot.namespaces.contains_key(&namespace)
        && snapshot.scope(scope).is_some())
    .then_some(namespace)
}

/// `JSON.stringify(value)` within [`CONTEXT_MAX_VALUE_BYTES`]; throws a
/// `TypeError` for a value JSON cannot hold, a `RangeError` past the
/// bound.
fn value_json(
    scope: &mut Scope<'_, '_>,
    signature: &Signature,
    value: v8::Local<'_, v8::Value>,
) -> Option<String> {
    let not_json = |scope: &mut Scope<'_, '_>, kind: &str| {
        throw_type_error(
            scope,
            &format!(
                "{}: `value` must be something JSON can hold (a string, number, boolean, null, array or object), not {kind}",
                signature.shown()
            ),
        );
    };
    if value.is_undefined() || value.is_function() || value.is_symbol() {
        let kind = value.type_of(scope).to_rust_string_lossy(scope);
        not_json(scope, &kind);
        return None;
    }
    // Throws for a BigInt or a cycle; its exception propagates.
    let json = v8::json::stringify(scope, value)?;
    let bytes = json.utf8_length(scope);
    if bytes > CONTEXT_MAX_VALUE_BYTES {
        throw_range_error(
            scope,
            &format!(
                "{}: the value is {bytes} bytes as JSON, more than the {CONTEXT_MAX_VALUE_BYTES} a property may hold",
                signature.shown()
            ),
        );
        return None;
    }
    let json = json.to_rust_string_lossy(scope);
    // A `toJSON` that returns undefined: nothing to keep.
    if json == "undefined" {
        not_json(scope, "a value whose toJSON gives undefined");
        return None;
    }
    Some(json)
}

fn set_data(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    signature: &Signature,
    context_scope: ContextScope,
) {
    if !signature.check_count(scope, args) {
        return;
    }
    let Some(namespace) = signature.namespace(scope, args) else {
        return;
    };
    let Some(property) = signature.property(scope, args) else {
        return;
    };
    let Some(value) = value_json(scope, signature, args.get(2)) else {
        return;
    };
    let Some(snapshot) = signature.snapshot(scope) else {
        return;
    };
    let Some(namespace) = registered(snapshot, namespace, context_scope) else {
        rv.set_bool(false);
        return;
    };
    let Some(data) = snapshot.scope(context_scope) else {
        return;
    };
    let properties = data.get(&namespace);
    let old = properties.and_then(|properties| properties.get(&property));
    if old.is_none() && properties.is_some_and(|p| p.len() >= CONTEXT_MAX_PROPERTIES) {
        throw_range_error(
            scope,
            &format!(
                "{}: namespace `{namespace}` holds {CONTEXT_MAX_PROPERTIES} properties in the {} scope, the most it may",
                signature.shown(),
                context_scope.name()
            ),
        );
        return;
    }
    let old_bytes = old.map_or(0, |old| entry_bytes(&namespace, &property, old));
    let bytes = (record_bytes(data) - old_bytes) + entry_bytes(&namespace, &property, &value);
    if bytes > CONTEXT_MAX_RECORD_BYTES {
        throw_range_error(
            scope,
            &format!(
                "{}: the {} scope would hold {bytes} bytes, more than the {CONTEXT_MAX_RECORD_BYTES} it may (every namespace's properties together)",
                signature.shown(),
                context_scope.name()
            ),
        );
        return;
    }
    let charged = entry_bytes(&namespace, &property, &value);
    let write = ContextWrite::Set {
        scope: context_scope,
        namespace: namespace.clone(),
        property: property.clone(),
        value: value.clone(),
    };
    if !record_write(scope, signature, charged, write) {
        return;
    }
    if let Some(data) = state(scope).and_then(|run| run.input.context.scope_mut(context_scope)) {
        data.entry(namespace).or_default().insert(property, value);
    }
    rv.set_bool(true);
}

fn get_data(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    signature: &Signature,
    context_scope: ContextScope,
) {
    if !signature.check_count(scope, args) {
        return;
    }
    let Some(namespace) = signature.namespace(scope, args) else {
        return;
    };
    // Left out (or undefined): every property of the namespace.
    let property = if args.length() < 2 || args.get(1).is_undefined() {
        None
    } else {
        let Some(property) = signature.property(scope, args) else {
            return;
        };
        Some(property)
    };
    let Some(snapshot) = signature.snapshot(scope) else {
        return;
    };
    let properties = registered(snapshot, namespace, context_scope).and_then(|namespace| {
        snapshot
            .scope(context_scope)
            .and_then(|data| data.get(&namespace))
    });
    match property {
        Some(property) => {
            let value = properties.and_then(|properties| properties.get(&property).cloned());
            match value {
                Some(json) => return_json(scope, rv, &json),
                None => rv.set_null(),
            }
        }
        None => match properties
            .filter(|properties| !properties.is_empty())
            .cloned()
        {
            Some(properties) => return_map(scope, rv, &properties),
            // The product gives null for a namespace with nothing set.
            None => rv.set_null(),
        },
    }
}

/// Returns a stored value, parsed anew in the run's context (each read
/// gets its own copy).
fn return_json(scope: &mut Scope<'_, '_>, rv: &mut v8::ReturnValue<'_>, json: &str) {
    let Some(text) = v8::String::new(scope, json) else {
        throw_range_error(scope, "value too large");
        return;
    };
    if let Some(value) = v8::json::parse(scope, text) {
        rv.set(value);
    }
}

/// Returns every property of a namespace as an object, with the two
/// methods of the product's `java.util.HashMap` its scripts use:
/// `keySet()` (the names, as an array) and `toString()` (`{a=1, b=x}`),
/// neither enumerable (a property of that name wins).
fn return_map(
    scope: &mut Scope<'_, '_>,
    rv: &mut v8::ReturnValue<'_>,
    properties: &std::collections::BTreeMap<String, String>,
) {
    let object = v8::Object::new(scope);
    for (name, json) in properties {
        let Some(key) = v8::String::new(scope, name) else {
            return;
        };
        let Some(text) = v8::String::new(scope, json) else {
            return;
        };
        let Some(value) = v8::json::parse(scope, text) else {
            return;
        };
        if object
            .create_data_property(scope, key.into(), value)
            .is_none()
        {
            return;
        }
    }
    if !properties.contains_key("keySet") {
        let Some(function) = v8::Function::new(scope, key_set) else {
            return;
        };
        if define_hidden(scope, object, "keySet", function).is_none() {
            return;
        }
    }
    if !properties.contains_key("toString") {
        let Some(function) = v8::Function::new(scope, map_to_string) else {
            return;
        };
        if define_hidden(scope, object, "toString", function).is_none() {
            return;
        }
    }
    rv.set(object.into());
}

/// Defines a method that `for...in` and `Object.keys` do not list.
fn define_hidden(
    scope: &mut Scope<'_, '_>,
    object: v8::Local<'_, v8::Object>,
    name: &str,
    function: v8::Local<'_, v8::Function>,
) -> Option<bool> {
    let key = v8::String::new(scope, name)?;
    object.define_own_property(
        scope,
        key.into(),
        function.into(),
        v8::PropertyAttribute::DONT_ENUM,
    )
}

/// The enumerable own property names of `this`.
fn own_names<'s>(
    scope: &mut Scope<'s, '_>,
    args: &v8::FunctionCallbackArguments<'s>,
) -> Option<(v8::Local<'s, v8::Object>, v8::Local<'s, v8::Array>)> {
    let this = args.this();
    let names = this.get_own_property_names(
        scope,
        v8::GetPropertyNamesArgsBuilder::new()
            .mode(v8::KeyCollectionMode::OwnOnly)
            .property_filter(v8::PropertyFilter::ONLY_ENUMERABLE | v8::PropertyFilter::SKIP_SYMBOLS)
            .key_conversion(v8::KeyConversionMode::ConvertToString)
            .build(),
    )?;
    Some((this, names))
}

fn key_set<'s>(
    scope: &mut Scope<'s, '_>,
    args: v8::FunctionCallbackArguments<'s>,
    mut rv: v8::ReturnValue<'s>,
) {
    if let Some((_, names)) = own_names(scope, &args) {
        rv.set(names.into());
    }
}

fn map_to_string<'s>(
    scope: &mut Scope<'s, '_>,
    args: v8::FunctionCallbackArguments<'s>,
    mut rv: v8::ReturnValue<'s>,
) {
    let Some((this, names)) = own_names(scope, &args) else {
        return;
    };
    // A script may add properties to the map it was given: its text is
    // made in native code, which the time limit cannot stop.
    if !super::array_fits(scope, names) {
        return;
    }
    let mut parts = Vec::new();
    let mut bytes = 0_usize;
    for index in 0..names.length() {
        let Some(name) = names.get_index(scope, index) else {
            return;
        };
        let Some(value) = this.get(scope, name) else {
            return;
        };
        let shown = if value.is_string() || value.is_null_or_undefined() {
            value.to_string(scope)
        } else {
            v8::json::stringify(scope, value)
        };
        let Some(shown) = shown else {
            return;
        };
        let part = format!(
            "{}={}",
            name.to_rust_string_lossy(scope),
            shown.to_rust_string_lossy(scope)
        );
        bytes += part.len();
        // As large as what the store holds, at most.
        if bytes > 4 * CONTEXT_MAX_RECORD_BYTES {
            throw_range_error(scope, "value too large");
            return;
        }
        parts.push(part);
    }
    super::return_string(scope, &mut rv, &format!("{{{}}}", parts.join(", ")));
}

fn delete_data(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    signature: &Signature,
    context_scope: ContextScope,
) {
    if !signature.check_count(scope, args) {
        return;
    }
    let Some(namespace) = signature.namespace(scope, args) else {
        return;
    };
    let Some(property) = signature.property(scope, args) else {
        return;
    };
    let Some(snapshot) = signature.snapshot(scope) else {
        return;
    };
    let Some(namespace) = registered(snapshot, namespace, context_scope) else {
        rv.set_bool(false);
        return;
    };
    let charged = entry_bytes(&namespace, &property, "");
    let write = ContextWrite::Delete {
        scope: context_scope,
        namespace: namespace.clone(),
        property: property.clone(),
    };
    if !record_write(scope, signature, charged, write) {
        return;
    }
    if let Some(data) = state(scope).and_then(|run| run.input.context.scope_mut(context_scope))
        && let Some(properties) = data.get_mut(&namespace)
    {
        properties.remove(&property);
        if properties.is_empty() {
            data.remove(&namespace);
        }
    }
    // Deleting a property that is not set succeeds, as a delete does.
    rv.set_bool(true);
}

fn delete_all_data(
    scope: &mut Scope<'_, '_>,
    args: &v8::FunctionCallbackArguments<'_>,
    rv: &mut v8::ReturnValue<'_>,
    signature: &Signature,
    context_scope: ContextScope,
) {
    if !signature.check_count(scope, args) {
        return;
    }
    let Some(namespace) = signature.namespace(scope, args) else {
        return;
    };
    let Some(snapshot) = signature.snapshot(scope) else {
        return;
    };
    let Some(namespace) = registered(snapshot, namespace, context_scope) else {
        rv.set_bool(false);
        return;
    };
    let write = ContextWrite::DeleteAll {
        scope: context_scope,
        namespace: namespace.clone(),
    };
    if !record_write(scope, signature, namespace.len(), write) {
        return;
    }
    if let Some(data) = state(scope).and_then(|run| run.input.context.scope_mut(context_scope)) {
        data.remove(&namespace);
    }
    rv.set_bool(true);
}

/// The functions of one kind for each scope.
macro_rules! scoped {
    ($($function:ident => $body:ident($name:literal, [$($param:literal),*], $required:literal, $scope:ident);)*) => {$(
        fn $function(
            scope: &mut Scope<'_, '_>,
            args: v8::FunctionCallbackArguments<'_>,
            mut rv: v8::ReturnValue<'_>,
        ) {
            const SIGNATURE: Signature = Signature::with_required($name, &[$($param),*], $required);
            $body(scope, &args, &mut rv, &SIGNATURE, ContextScope::$scope);
        }
    )*};
}

scoped! {
    set_global_context_data => set_data("setGlobalContextData", ["namespace", "property", "value"], 3, Global);
    set_context_data_for_user => set_data("setContextDataForUser", ["namespace", "property", "value"], 3, User);
    set_context_data_for_conversation => set_data("setContextDataForConversation", ["namespace", "property", "value"], 3, Conversation);
    get_global_context_data => get_data("getGlobalContextData", ["namespace", "property"], 2, Global);
    get_context_data_for_user => get_data("getContextDataForUser", ["namespace", "property"], 1, User);
    get_context_data_for_conversation => get_data("getContextDataForConversation", ["namespace", "property"], 1, Conversation);
    delete_global_context_data => delete_data("deleteGlobalContextData", ["namespace", "property"], 2, Global);
    delete_context_data_for_user => delete_data("deleteContextDataForUser", ["namespace", "property"], 2, User);
    delete_context_data_for_conversation => delete_data("deleteContextDataForConversation", ["namespace", "property"], 2, Conversation);
    delete_all_context_data_for_user => delete_all_data("deleteAllContextDataForUser", ["namespace"], 1, User);
    delete_all_context_data_for_conversation => delete_all_data("deleteAllContextDataForConversation", ["namespace"], 1, Conversation);
}
