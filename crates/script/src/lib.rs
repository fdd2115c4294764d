//! The script runtime: transform scripts and pre/post-process code run on
//! V8 with the `botContext` host API of spec section 4.
//!
//! # Invariant
//! Scripts reach nothing of the host: no I/O, no timers, no modules, no
//! WebAssembly, no code generation from strings. Every entry into V8 for a
//! run (the script, its promise jobs, the reading of its results) has a
//! wall-clock limit, a heap limit, an array-buffer budget and output
//! limits, and a run that breaks one ends as a [`ScriptError`], never as a
//! crash or `Ok(undefined)`; the isolate is then replaced. Each bot's
//! scripts run in a [`Realm`]: a locked-down context of its own in each
//! isolate (every intrinsic frozen, globals reset natively after every run,
//! replaced when a run leaves it unclean), so no state crosses
//! conversations or bots. What a script does (messages, variable and slot
//! writes, trigger, events, debug output) comes back as data in
//! [`ScriptOutput`]; nothing is printed.
//!
//! # API boundary
//! [`ScriptRuntime`] owns the isolates; a run leases an idle one and runs
//! on the caller's thread under the isolate's lock (no thread hand-off):
//! [`ScriptRuntime::realm`] makes a bot's realm, [`ScriptRuntime::compile`]
//! compiles a script in it in every isolate at bot load and returns a
//! [`Script`] handle, [`ScriptRuntime::run`] runs it with a
//! [`ScriptInput`].
#![deny(missing_docs)]

mod context;
mod host;
mod limits;
mod runtime;
mod snapshot;
mod station;

pub use context::{
    CONTEXT_MAX_NAMESPACE_BYTES, CONTEXT_MAX_NAMESPACES, CONTEXT_MAX_PROPERTIES,
    CONTEXT_MAX_PROPERTY_BYTES, CONTEXT_MAX_RECORD_BYTES, CONTEXT_MAX_TTL_SECONDS,
    CONTEXT_MAX_VALUE_BYTES, CONTEXT_RESERVED_NAMESPACES, CONTEXT_WRITES_PER_RUN, ContextScope,
    ContextScopeData, ContextSnapshot, ContextWrite, entry_bytes, record_bytes, valid_namespace,
};
pub use host::ALLOW_MAX_TEXT_VARIABLE;
pub use host::{
    Action, EMPTY_CAPTION, ESCALATIONS_PER_RUN, FileData, NO_MAVEN_ANSWER, PlatformData,
    TransferContext, TransferIntent,
};
pub use runtime::{
    ApiData, CustomEvent, DEBUG_MESSAGES_PER_RUN, DEBUG_TEXT_BYTES, EVENTS_PER_RUN, HeapUsage,
    Limits, Persistence, QuickReply, Realm, RuntimeOptions, Script, ScriptError, ScriptInput,
    ScriptOutput, ScriptRun, ScriptRuntime, SlotWrite, VariableWrite,
};
