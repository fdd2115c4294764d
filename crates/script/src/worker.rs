//! A worker thread: one isolate, the scripts it has compiled, and its
//! watchdog.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::host::{self, RunState};
use crate::limits::{GuardedIsolate, Watchdog};
use crate::runtime::{Limits, Rendezvous, ScriptError, ScriptInput, ScriptOutput, ScriptSource};

const LOCKDOWN: &str = include_str!("lockdown.js");

pub(crate) enum Job {
    Compile {
        script: Arc<ScriptSource>,
        reply: oneshot::Sender<Result<(), ScriptError>>,
        permit: OwnedSemaphorePermit,
        rendezvous: Arc<Rendezvous>,
    },
    Run {
        script: Arc<ScriptSource>,
        input: Box<ScriptInput>,
        reply: oneshot::Sender<Result<ScriptOutput, ScriptError>>,
        permit: OwnedSemaphorePermit,
    },
}

/// Enough stack for V8's own limit (about 1 MiB) with room to spare, so
/// deep recursion ends as a `RangeError`, not a crash.
const WORKER_STACK: usize = 8 * 1024 * 1024;

pub(crate) fn spawn_worker(index: usize, jobs: Arc<Mutex<Receiver<Job>>>, limits: Limits) {
    // If no thread can be made, the queue has no reader and callers get
    // `ScriptError::Unavailable`.
    let _ = std::thread::Builder::new()
        .name(format!("patchbay-script-{index}"))
        .stack_size(WORKER_STACK)
        .spawn(move || Worker::new(index, limits).serve(&jobs));
}

/// The worker's context, locked down (`lockdown.js`) and reused by every
/// run until a run leaves it unclean or is stopped by a limit.
struct Sandbox {
    context: v8::Global<v8::Context>,
    /// Puts the global back as it was; true when it could.
    reset: v8::Global<v8::Function>,
}

/// Fields drop in declaration order: the handles into the isolate come
/// before the isolate, which must outlive them.
struct Worker {
    /// Scripts compiled as functions of the sandbox's context.
    compiled: HashMap<u64, v8::Global<v8::Function>>,
    sandbox: Option<Sandbox>,
    watchdog: Watchdog,
    limits: Limits,
    /// `None` after a heap breach: the old isolate is gone before the next
    /// is made, as V8 requires (isolates drop in reverse creation order).
    isolate: Option<GuardedIsolate>,
}

impl Worker {
    fn new(index: usize, limits: Limits) -> Self {
        Self {
            isolate: None,
            compiled: HashMap::new(),
            sandbox: None,
            watchdog: Watchdog::start(format!("patchbay-script-{index}-watchdog")),
            limits,
        }
    }

    fn serve(mut self, jobs: &Mutex<Receiver<Job>>) {
        loop {
            let job = {
                let jobs = jobs.lock().unwrap_or_else(PoisonError::into_inner);
                jobs.recv()
            };
            let Ok(job) = job else { break };
            match job {
                Job::Compile {
                    script,
                    reply,
                    permit,
                    rendezvous,
                } => {
                    let result = self.compile_only(&script);
                    drop(permit);
                    let _ = reply.send(result);
                    rendezvous.arrive_and_wait();
                }
                Job::Run {
                    script,
                    input,
                    reply,
                    permit,
                } => {
                    let result = self.run(&script, *input);
                    drop(permit);
                    let _ = reply.send(result);
                }
            }
        }
        self.watchdog.stop();
    }

    /// The sandbox, made (and locked down) when there is none.
    fn sandbox(&mut self) -> Result<&Sandbox, ScriptError> {
        if self.sandbox.is_none() {
            let isolate = isolate_in(&mut self.isolate, self.limits.heap_bytes).isolate();
            v8::scope!(let scope, isolate);
            let sandbox = host::global_template(scope).and_then(|template| {
                let context = v8::Context::new(
                    scope,
                    v8::ContextOptions {
                        global_template: Some(template),
                        ..Default::default()
                    },
                );
                let scope = &mut v8::ContextScope::new(scope, context);
                let code = v8::String::new(scope, LOCKDOWN)?;
                let reset = v8::Script::compile(scope, code, None)?.run(scope)?;
                let reset = v8::Local::<v8::Function>::try_from(reset).ok()?;
                Some(Sandbox {
                    context: v8::Global::new(scope, context),
                    reset: v8::Global::new(scope, reset),
                })
            });
            // Functions compiled in an earlier context belong to it.
            self.compiled.clear();
            self.sandbox = Some(sandbox.ok_or(ScriptError::Unavailable)?);
        }
        self.sandbox.as_ref().ok_or(ScriptError::Unavailable)
    }

    /// Drops the sandbox (and what was compiled in it): the next run makes
    /// a new one.
    fn discard_sandbox(&mut self) {
        self.compiled.clear();
        self.sandbox = None;
    }

    fn guarded(&mut self) -> &mut GuardedIsolate {
        isolate_in(&mut self.isolate, self.limits.heap_bytes)
    }

    fn compile_only(&mut self, script: &ScriptSource) -> Result<(), ScriptError> {
        let context = self.sandbox()?.context.clone();
        let isolate = isolate_in(&mut self.isolate, self.limits.heap_bytes).isolate();
        v8::scope!(let scope, isolate);
        let context = v8::Local::new(scope, &context);
        let scope = &mut v8::ContextScope::new(scope, context);
        compile(scope, &mut self.compiled, script).map(|_| ())
    }

    fn run(
        &mut self,
        script: &ScriptSource,
        input: ScriptInput,
    ) -> Result<ScriptOutput, ScriptError> {
        let api_name = input.api.as_ref().map(|api| api.name.clone());
        let original_json = input.api.as_ref().map(|api| api.json_data.clone());
        let limits = self.limits;
        let (context, reset) = {
            let sandbox = self.sandbox()?;
            (sandbox.context.clone(), sandbox.reset.clone())
        };
        let handle = self.guarded().isolate().thread_safe_handle();
        self.guarded()
            .isolate()
            .set_slot(RunState::new(input, limits.output_bytes));
        self.watchdog.arm(handle, limits.time);
        let (outcome, clean) = {
            let isolate = isolate_in(&mut self.isolate, limits.heap_bytes).isolate();
            v8::scope!(let scope, isolate);
            let context = v8::Local::new(scope, &context);
            let scope = &mut v8::ContextScope::new(scope, context);
            let outcome = run_in_context(scope, &mut self.compiled, script, api_name.as_deref());
            let reset = v8::Local::new(scope, &reset);
            let receiver = v8::undefined(scope).into();
            let clean = reset
                .call(scope, receiver, &[])
                .is_some_and(|value| value.is_true());
            (outcome, clean)
        };
        // Every handle into the isolate goes before the isolate may.
        drop((context, reset));
        let timed_out = self.watchdog.disarm();
        let heap_hit = self.guarded().take_heap_hit();
        let isolate = self.guarded().isolate();
        // A termination requested as the run ended must not hit the next.
        isolate.cancel_terminate_execution();
        let state = isolate.remove_slot::<RunState>();
        let owner = script.owner.clone();
        if heap_hit {
            // The heap is near its limit: start over with a fresh isolate.
            self.discard_sandbox();
            self.isolate = None;
            return Err(ScriptError::HeapLimit {
                owner,
                limit: limits.heap_bytes,
            });
        }
        if !clean || timed_out {
            // A global that would not go, or a run stopped midway: this
            // context may hold what the run left; the next run gets a new one.
            self.discard_sandbox();
        }
        let Some(state) = state else {
            return Err(ScriptError::Unavailable);
        };
        if state.output_exceeded {
            return Err(ScriptError::OutputLimit {
                owner,
                limit: limits.output_bytes,
            });
        }
        let mut output = state.output;
        match outcome {
            RunOutcome::Failed(error) => Err(error),
            // Terminated by `sendImmediateReply`: a normal end.
            RunOutcome::Terminated { json_data } if output.immediate_reply && !timed_out => {
                output.json_data = json_data.filter(|json| Some(json) != original_json.as_ref());
                Ok(output)
            }
            // A script that finished is done, even if the watchdog fired
            // as it returned (that termination was cancelled above).
            RunOutcome::Completed { json_data } => {
                output.json_data = json_data.filter(|json| Some(json) != original_json.as_ref());
                Ok(output)
            }
            RunOutcome::Terminated { .. } => Err(ScriptError::Timeout {
                owner,
                limit: limits.time,
            }),
        }
    }
}

/// The worker's isolate, made on first use (and after a heap breach). A
/// free function, so that callers can borrow the worker's other fields.
fn isolate_in(slot: &mut Option<GuardedIsolate>, heap_bytes: usize) -> &mut GuardedIsolate {
    slot.get_or_insert_with(|| GuardedIsolate::new(heap_bytes))
}

/// The scope `v8::tc_scope!` makes inside a handle scope.
type TryCatchScope<'p, 's, 'o, 'i> = v8::PinnedRef<'p, v8::TryCatch<'s, 'o, v8::HandleScope<'i>>>;

enum RunOutcome {
    Completed { json_data: Option<String> },
    Terminated { json_data: Option<String> },
    Failed(ScriptError),
}

fn run_in_context(
    scope: &mut v8::PinScope<'_, '_>,
    compiled: &mut HashMap<u64, v8::Global<v8::Function>>,
    script: &ScriptSource,
    api_name: Option<&str>,
) -> RunOutcome {
    if host::install_api(scope).is_none() {
        return RunOutcome::Failed(ScriptError::Exception {
            owner: script.owner.clone(),
            message: "the botContext API could not be set up".to_owned(),
            line: 0,
        });
    }
    let function = match compile(scope, compiled, script) {
        Ok(function) => function,
        Err(error) => return RunOutcome::Failed(error),
    };
    v8::tc_scope!(let try_catch, scope);
    let function = v8::Local::new(try_catch, &function);
    // `this` is the global, as at the top level of a script.
    let receiver = try_catch.get_current_context().global(try_catch).into();
    let finished = function.call(try_catch, receiver, &[]).is_some();
    let terminated = try_catch.has_terminated();
    let failure = if finished || terminated {
        None
    } else {
        Some(exception(try_catch, &script.owner))
    };
    if terminated {
        // Reading jsonData back needs a running isolate.
        try_catch.cancel_terminate_execution();
    }
    let json_data = api_name.and_then(|name| host::read_json_data(try_catch, name));
    match (failure, terminated) {
        (Some(error), _) => RunOutcome::Failed(error),
        (None, true) => RunOutcome::Terminated { json_data },
        (None, false) => RunOutcome::Completed { json_data },
    }
}

/// The script as a function of the current context, compiled the first
/// time. A function body, so that its top-level `var`s and functions are
/// the run's own and leave nothing on the global.
fn compile(
    scope: &mut v8::PinScope<'_, '_>,
    compiled: &mut HashMap<u64, v8::Global<v8::Function>>,
    script: &ScriptSource,
) -> Result<v8::Global<v8::Function>, ScriptError> {
    if let Some(function) = compiled.get(&script.id) {
        return Ok(function.clone());
    }
    metrics::counter!("patchbay_compiled_total", "kind" => "script").increment(1);
    v8::tc_scope!(let try_catch, scope);
    let syntax_error = |try_catch: &mut TryCatchScope<'_, '_, '_, '_>| {
        let (line, column, message) = match try_catch.message() {
            Some(message) => (
                message.get_line_number(try_catch).unwrap_or(0),
                message.get_start_column() + 1,
                message
                    .get(try_catch)
                    .to_rust_string_lossy(try_catch)
                    .trim_start_matches("Uncaught ")
                    .to_owned(),
            ),
            None => (0, 0, "the script does not compile".to_owned()),
        };
        ScriptError::Syntax {
            owner: script.owner.clone(),
            line,
            column,
            message,
        }
    };
    let Some(code) = v8::String::new(try_catch, &script.code) else {
        return Err(ScriptError::Syntax {
            owner: script.owner.clone(),
            line: 0,
            column: 0,
            message: "the script is too large".to_owned(),
        });
    };
    let mut source = v8::script_compiler::Source::new(code, None);
    let Some(function) = v8::script_compiler::compile_function(
        try_catch,
        &mut source,
        &[],
        &[],
        v8::script_compiler::CompileOptions::NoCompileOptions,
        v8::script_compiler::NoCacheReason::NoReason,
    ) else {
        return Err(syntax_error(try_catch));
    };
    let global = v8::Global::new(try_catch, function);
    compiled.insert(script.id, global.clone());
    Ok(global)
}

fn exception(try_catch: &mut TryCatchScope<'_, '_, '_, '_>, owner: &str) -> ScriptError {
    let line = try_catch
        .message()
        .and_then(|message| message.get_line_number(try_catch))
        .unwrap_or(0);
    let message = try_catch
        .exception()
        .and_then(|exception| exception.to_string(try_catch))
        .map(|text| text.to_rust_string_lossy(try_catch))
        .unwrap_or_else(|| "the script threw".to_owned());
    ScriptError::Exception {
        owner: owner.to_owned(),
        message,
        line,
    }
}
