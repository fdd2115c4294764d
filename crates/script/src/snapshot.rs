//! The startup snapshot: a context already locked down (`lockdown.js` run
//! over the `botContext` template), serialised once per process, so that a
//! realm's new context is read from it instead of built and frozen again
//! (the lockdown walks every intrinsic: milliseconds, against well under
//! one to read the context back).

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::host;

const LOCKDOWN: &str = include_str!("lockdown.js");

/// Where the locked-down context is in the snapshot.
const LOCKED_DOWN: usize = 0;

/// The snapshot, made on first use; `None` if V8 would not make one (each
/// new context is then built and locked down on its own).
pub(crate) fn blob() -> Option<&'static [u8]> {
    static BLOB: OnceLock<Option<Box<[u8]>>> = OnceLock::new();
    BLOB.get_or_init(|| {
        // On a thread of its own: the creator isolate is entered on the
        // thread that makes it, which must not be one that holds another.
        std::thread::Builder::new()
            .name("patchbay-script-snapshot".to_owned())
            .spawn(make)
            .ok()?
            .join()
            .ok()
            .flatten()
    })
    .as_deref()
}

/// What an isolate needs to read contexts from the snapshot: the blob, and
/// the address of every native function its templates hold.
pub(crate) fn isolate_params(params: v8::CreateParams) -> v8::CreateParams {
    match blob() {
        Some(blob) => params
            .snapshot_blob(v8::StartupData::from(blob))
            .external_references(Cow::Owned(host::external_references())),
        None => params,
    }
}

/// A new locked-down context for a realm.
pub(crate) fn new_context<'s>(
    scope: &mut v8::PinScope<'s, '_, ()>,
) -> Option<v8::Local<'s, v8::Context>> {
    if blob().is_none() {
        return locked_down(scope, false);
    }
    let context = v8::Context::from_snapshot(scope, LOCKED_DOWN, v8::ContextOptions::default())?;
    finish(&mut v8::ContextScope::new(scope, context), context)?;
    Some(context)
}

/// What V8 adds to a context it reads from a snapshot, taken care of
/// natively: `Error` (which has just been given `stackTraceLimit`) is
/// frozen, and the `SharedArrayBuffer` global V8 puts back is deleted.
/// The feature flags of `limits::initialize_v8` keep V8 from adding more.
fn finish(scope: &mut v8::PinScope<'_, '_>, context: v8::Local<'_, v8::Context>) -> Option<()> {
    let global = context.global(scope);
    let shared_memory = v8::String::new(scope, "SharedArrayBuffer")?;
    global.delete(scope, shared_memory.into())?;
    let error = v8::String::new(scope, "Error")?;
    let error = global.get(scope, error.into())?.to_object(scope)?;
    let frozen = error.set_integrity_level(scope, v8::IntegrityLevel::Frozen)?;
    let gone = global.has_own_property(scope, shared_memory.into()) == Some(false);
    (frozen && gone).then_some(())
}

fn make() -> Option<Box<[u8]>> {
    let mut creator =
        v8::Isolate::snapshot_creator(Some(Cow::Owned(host::external_references())), None);
    let made = {
        v8::scope!(let scope, &mut creator);
        let plain = v8::Context::new(scope, v8::ContextOptions::default());
        scope.set_default_context(plain);
        locked_down(scope, true).map(|context| scope.add_context(context))
    };
    // The creator must make its blob even when the context failed.
    let blob = creator.create_blob(v8::FunctionCodeHandling::Keep)?;
    (made == Some(LOCKED_DOWN)).then(|| Box::from(&*blob))
}

/// A context of the `botContext` template with the lockdown run in it
/// (`Error` left unfrozen when the context is for the snapshot).
fn locked_down<'s>(
    scope: &mut v8::PinScope<'s, '_, ()>,
    for_snapshot: bool,
) -> Option<v8::Local<'s, v8::Context>> {
    let template = host::global_template(scope)?;
    let context = v8::Context::new(
        scope,
        v8::ContextOptions {
            global_template: Some(template),
            ..Default::default()
        },
    );
    let scope = &mut v8::ContextScope::new(scope, context);
    let code = v8::String::new(scope, LOCKDOWN)?;
    let lockdown = v8::Script::compile(scope, code, None)?.run(scope)?;
    let lockdown = v8::Local::<v8::Function>::try_from(lockdown).ok()?;
    let receiver = v8::undefined(scope).into();
    let for_snapshot = v8::Boolean::new(scope, for_snapshot).into();
    let is_proxy = v8::Function::new(scope, host::is_proxy)?.into();
    lockdown.call(scope, receiver, &[for_snapshot, is_proxy])?;
    Some(context)
}

#[cfg(test)]
mod tests {
    /// The snapshot is made, with every host function (their addresses are
    /// its external references): without it each new context would be
    /// built and locked down again (milliseconds), and nothing else says so.
    #[test]
    fn the_snapshot_is_made() {
        crate::limits::initialize_v8();
        assert!(super::blob().is_some());
    }
}
