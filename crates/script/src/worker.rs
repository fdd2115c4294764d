//! A worker thread: one isolate, a locked-down context per realm (bot), the
//! scripts it has compiled, and its watchdog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::host::{self, RunState};
use crate::limits::{GuardedIsolate, Watchdog};
use crate::runtime::{
    Limits, Rendezvous, ScriptError, ScriptInput, ScriptOutput, ScriptRun, ScriptSource,
};

const LOCKDOWN: &str = include_str!("lockdown.js");

/// Contexts a worker keeps; the least recently used goes first (its
/// scripts compile again on its next run).
const REALMS_PER_WORKER: usize = 16;

type Reply = oneshot::Sender<ScriptRun>;

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
        reply: Reply,
        permit: OwnedSemaphorePermit,
    },
}

/// What the workers share: the job queue, the limits, and how many of them
/// can take a job.
pub(crate) struct Pool {
    jobs: Mutex<Receiver<Job>>,
    limits: Limits,
    /// Workers the runtime was made with.
    workers: usize,
    healthy: AtomicUsize,
    spawned: AtomicUsize,
    replaced: AtomicUsize,
    /// Given-up workers whose threads are still in their stuck run.
    stuck: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("limits", &self.limits)
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(jobs: Receiver<Job>, limits: Limits, workers: usize) -> Self {
        Self {
            jobs: Mutex::new(jobs),
            limits,
            workers,
            healthy: AtomicUsize::new(0),
            spawned: AtomicUsize::new(0),
            replaced: AtomicUsize::new(0),
            stuck: AtomicUsize::new(0),
        }
    }

    /// Workers able to take a job (neither stuck nor failed to start).
    pub(crate) fn healthy(&self) -> usize {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Workers given up on because a stopped run did not end.
    pub(crate) fn replaced(&self) -> usize {
        self.replaced.load(Ordering::SeqCst)
    }
}

/// Enough stack for V8's own limit (about 1 MiB) with room to spare, so
/// deep recursion ends as a `RangeError`, not a crash.
const WORKER_STACK: usize = 8 * 1024 * 1024;

/// Starts a worker on the pool's queue; false when no thread could be made
/// (then it does not count as healthy, and readiness says so when none is).
pub(crate) fn spawn_worker(pool: &Arc<Pool>) -> bool {
    let index = pool.spawned.fetch_add(1, Ordering::SeqCst);
    pool.healthy.fetch_add(1, Ordering::SeqCst);
    let worker_pool = Arc::clone(pool);
    let spawned = std::thread::Builder::new()
        .name(format!("patchbay-script-{index}"))
        .stack_size(WORKER_STACK)
        .spawn(move || match Worker::new(index, &worker_pool) {
            Some(worker) => worker.serve(),
            None => {
                worker_pool.healthy.fetch_sub(1, Ordering::SeqCst);
            }
        });
    if spawned.is_err() {
        pool.healthy.fetch_sub(1, Ordering::SeqCst);
        tracing::error!("cannot start a script worker thread");
    }
    spawned.is_ok()
}

/// What a worker shares with its watchdog: the run in flight (so a stuck
/// run's caller still gets its answer) and whether it was given up on.
struct Lifeline {
    abandoned: AtomicBool,
    in_flight: Mutex<Option<(Arc<ScriptSource>, Reply)>>,
}

impl Lifeline {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, Option<(Arc<ScriptSource>, Reply)>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the watchdog when a stopped run does not end: the caller
    /// gets its timeout now, the worker is given up (it takes jobs again
    /// only once its run ends) and a new one takes its place, unless as
    /// many threads as the runtime has workers are already stuck: each
    /// spins a core, so the runtime then runs short (and says so through
    /// `is_ready`) rather than piling up spinning threads.
    fn give_up(&self, pool: &Arc<Pool>) {
        if self.abandoned.swap(true, Ordering::SeqCst) {
            return;
        }
        // The counts first: the caller answered below may look at them.
        pool.healthy.fetch_sub(1, Ordering::SeqCst);
        let stuck = pool.stuck.fetch_add(1, Ordering::SeqCst) + 1;
        let replace = stuck <= pool.workers;
        if replace {
            pool.replaced.fetch_add(1, Ordering::SeqCst);
            metrics::counter!("patchbay_script_workers_replaced_total").increment(1);
            spawn_worker(pool);
        }
        if let Some((script, reply)) = self.in_flight().take() {
            let _ = reply.send(ScriptRun::from(ScriptError::Timeout {
                owner: script.owner.clone(),
                limit: pool.limits.time,
            }));
        }
        if replace {
            tracing::error!("a script run did not stop at its time limit; its worker is replaced");
        } else {
            tracing::error!(
                stuck,
                "a script run did not stop at its time limit; too many workers are stuck to start another"
            );
        }
    }

    /// Called by a given-up worker whose run has ended at last: it takes
    /// jobs again if the runtime is short of workers, and exits otherwise.
    fn come_back(&self, pool: &Pool) -> bool {
        pool.stuck.fetch_sub(1, Ordering::SeqCst);
        let short = pool
            .healthy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |healthy| {
                (healthy < pool.workers).then_some(healthy + 1)
            })
            .is_ok();
        if short {
            self.abandoned.store(false, Ordering::SeqCst);
        }
        short
    }
}

/// How long a stopped run may take to unwind before its worker counts as
/// stuck: as long again as its limit, at least 100 ms. Unwinding takes
/// microseconds; what takes longer is a builtin that does not check for
/// termination (ICU's case mapping or normalisation of a long string).
fn stop_grace(limit: std::time::Duration) -> std::time::Duration {
    limit.max(std::time::Duration::from_millis(100))
}

/// A realm's context on this worker, locked down (`lockdown.js`) and reused
/// by every run of the realm until a run leaves it unclean.
struct Sandbox {
    context: v8::Global<v8::Context>,
    /// Scripts compiled as functions of this context.
    compiled: HashMap<u64, v8::Global<v8::Function>>,
    /// Own properties of the global after the lockdown, all of them
    /// non-configurable: a run may only add (deletable) ones.
    baseline: u32,
    /// Matched after each run to clear RegExp's legacy statics
    /// (`RegExp.$1`, `RegExp.input`, ...), which keep the last match.
    empty_match: v8::Global<v8::RegExp>,
    /// When a run last used it, in the worker's run count.
    last_used: u64,
}

/// Fields drop in declaration order: the handles into the isolate come
/// before the isolate, which must outlive them.
struct Worker {
    sandboxes: HashMap<u64, Sandbox>,
    runs: u64,
    watchdog: Watchdog,
    lifeline: Arc<Lifeline>,
    pool: Arc<Pool>,
    /// `None` after a limit was hit: the old isolate is gone before the next
    /// is made, as V8 requires (isolates drop in reverse creation order).
    isolate: Option<GuardedIsolate>,
}

/// How a run ended, as V8 left it.
enum RunOutcome {
    Completed {
        json_data: Option<String>,
    },
    /// `sendImmediateReply` ended it.
    Replied {
        json_data: Option<String>,
    },
    /// The watchdog or the heap limit stopped it.
    Stopped,
    Failed(ScriptError),
}

impl Worker {
    fn new(index: usize, pool: &Arc<Pool>) -> Option<Self> {
        let lifeline = Arc::new(Lifeline {
            abandoned: AtomicBool::new(false),
            in_flight: Mutex::new(None),
        });
        let watchdog = {
            let lifeline = Arc::clone(&lifeline);
            let pool = Arc::clone(pool);
            let grace = stop_grace(pool.limits.time);
            Watchdog::start(
                format!("patchbay-script-{index}-watchdog"),
                grace,
                move || lifeline.give_up(&pool),
            )
        };
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(error) => {
                // Without a watchdog no run could be bounded: this worker
                // takes no job.
                tracing::error!(%error, "cannot start a script watchdog thread");
                return None;
            }
        };
        Some(Self {
            sandboxes: HashMap::new(),
            runs: 0,
            watchdog,
            lifeline,
            pool: Arc::clone(pool),
            isolate: None,
        })
    }

    fn serve(mut self) {
        loop {
            if self.lifeline.abandoned.load(Ordering::SeqCst)
                && !self.lifeline.come_back(&self.pool)
            {
                break;
            }
            let job = {
                let jobs = self
                    .pool
                    .jobs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
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
                    *self.lifeline.in_flight() = Some((Arc::clone(&script), reply));
                    let run = match self.run(&script, *input) {
                        Ok(output) => ScriptRun {
                            output,
                            error: None,
                        },
                        Err(failed) => failed,
                    };
                    drop(permit);
                    if let Some((_, reply)) = self.lifeline.in_flight().take() {
                        let _ = reply.send(run);
                    }
                }
            }
        }
        self.watchdog.stop();
    }

    fn guarded(&mut self) -> &mut GuardedIsolate {
        let heap_bytes = self.pool.limits.heap_bytes;
        self.isolate
            .get_or_insert_with(|| GuardedIsolate::new(heap_bytes))
    }

    /// Drops every context and the isolate: the next run starts afresh.
    /// After a run was stopped by a limit nothing of that isolate is
    /// trusted again (its microtask queue may hold the stopped run's jobs).
    fn discard_isolate(&mut self) {
        self.sandboxes.clear();
        self.isolate = None;
    }

    /// Drops the isolate when, after a run and a full collection, more
    /// than half its heap is still held. Frozen objects can still take
    /// memory that no reset sees (private fields added to them, the
    /// `Symbol.for` registry), so one bot could otherwise fill the heap run
    /// after run until another bot's run meets the limit. A full
    /// collection costs milliseconds; it only happens past half the heap,
    /// which the scripts bots run never reach.
    fn start_afresh_if_heap_is_held(&mut self) {
        let half = self.pool.limits.heap_bytes / 2;
        let Some(guarded) = self.isolate.as_mut() else {
            return;
        };
        let isolate = guarded.isolate();
        if isolate.get_heap_statistics().used_heap_size() <= half {
            return;
        }
        isolate.low_memory_notification();
        if isolate.get_heap_statistics().used_heap_size() > half {
            tracing::debug!("a script worker's heap stays over half full; it starts afresh");
            self.discard_isolate();
        }
    }

    /// Makes the realm's sandbox when there is none, evicting the least
    /// recently used one when the worker holds too many.
    fn ensure_sandbox(&mut self, realm: u64) -> Result<(), ScriptError> {
        self.runs += 1;
        let now = self.runs;
        if let Some(sandbox) = self.sandboxes.get_mut(&realm) {
            sandbox.last_used = now;
            return Ok(());
        }
        if self.sandboxes.len() >= REALMS_PER_WORKER
            && let Some(oldest) = self
                .sandboxes
                .iter()
                .min_by_key(|(_, sandbox)| sandbox.last_used)
                .map(|(id, _)| *id)
        {
            self.sandboxes.remove(&oldest);
        }
        let sandbox = {
            let isolate = self.guarded().isolate();
            v8::scope!(let scope, isolate);
            new_sandbox(scope, now)
        };
        self.drop_isolate_after_heap_hit()?;
        self.sandboxes
            .insert(realm, sandbox.ok_or(ScriptError::Unavailable)?);
        Ok(())
    }

    fn compile_only(&mut self, script: &ScriptSource) -> Result<(), ScriptError> {
        self.ensure_sandbox(script.realm)?;
        let Some(isolate) = self.isolate.as_mut() else {
            return Err(ScriptError::Unavailable);
        };
        let Some(sandbox) = self.sandboxes.get_mut(&script.realm) else {
            return Err(ScriptError::Unavailable);
        };
        let result = {
            v8::scope!(let scope, isolate.isolate());
            let context = v8::Local::new(scope, &sandbox.context);
            let scope = &mut v8::ContextScope::new(scope, context);
            compile(scope, &mut sandbox.compiled, script).map(|_| ())
        };
        self.drop_isolate_after_heap_hit()?;
        result
    }

    /// After the heap limit was reached outside a run (making a context,
    /// compiling), the isolate is dropped, so that no later run (another
    /// bot's) is stopped by what is left of it.
    fn drop_isolate_after_heap_hit(&mut self) -> Result<(), ScriptError> {
        let hit = self
            .isolate
            .as_mut()
            .is_some_and(|isolate| isolate.take_heap_hit());
        if hit {
            self.discard_isolate();
            return Err(ScriptError::Unavailable);
        }
        Ok(())
    }

    /// The run's output, or its error with what took effect before it (a
    /// script that threw keeps the `botContext` calls it made; a limit
    /// keeps nothing).
    #[allow(clippy::result_large_err)] // the error carries the run's output, moved once a run
    fn run(
        &mut self,
        script: &ScriptSource,
        input: ScriptInput,
    ) -> Result<ScriptOutput, ScriptRun> {
        let limits = self.pool.limits;
        let api_name = input.api.as_ref().map(|api| api.name.clone());
        let original_json = input.api.as_ref().map(|api| api.json_data.clone());
        self.ensure_sandbox(script.realm)?;
        let (Some(guarded), Some(sandbox)) =
            (self.isolate.as_mut(), self.sandboxes.get_mut(&script.realm))
        else {
            return Err(ScriptError::Unavailable.into());
        };
        let heap_hit = guarded.heap_hit_flag();
        let watchdog = &self.watchdog;
        let stopped = || watchdog.fired() || heap_hit.load(Ordering::SeqCst);
        let isolate = guarded.isolate();
        isolate.set_slot(RunState::new(input, limits.output_bytes));
        watchdog.arm(isolate.thread_safe_handle(), limits.time);
        // Everything that may run script code (the function, its
        // microtasks, jsonData's getters and toJSON) runs inside the limit.
        let (outcome, clean) = {
            v8::scope!(let scope, &mut *isolate);
            let context = v8::Local::new(scope, &sandbox.context);
            let scope = &mut v8::ContextScope::new(scope, context);
            let outcome = run_in_context(
                scope,
                &mut sandbox.compiled,
                script,
                api_name.as_deref(),
                &stopped,
            );
            let clean = !matches!(outcome, RunOutcome::Stopped) && reset(scope, sandbox);
            if clean && !stopped() {
                // The reset calls no script code; if anything ever did
                // queue a job, it runs here, in this run, under its limit,
                // never in a later run (another bot's: the queue is the
                // isolate's).
                scope.perform_microtask_checkpoint();
            }
            (outcome, clean)
        };
        let timed_out = self.watchdog.disarm();
        let heap_hit = guarded.take_heap_hit();
        let isolate = guarded.isolate();
        // A termination requested as the run ended must not hit the next.
        isolate.cancel_terminate_execution();
        let state = isolate.remove_slot::<RunState>();
        let owner = script.owner.clone();
        if heap_hit {
            self.discard_isolate();
            return Err(ScriptError::HeapLimit {
                owner,
                limit: limits.heap_bytes,
            }
            .into());
        }
        if timed_out || matches!(outcome, RunOutcome::Stopped) {
            self.discard_isolate();
            return Err(ScriptError::Timeout {
                owner,
                limit: limits.time,
            }
            .into());
        }
        if !clean {
            // A global that would not go: this context may hold what the
            // run left; the realm's next run gets a new one.
            self.sandboxes.remove(&script.realm);
        }
        self.start_afresh_if_heap_is_held();
        let Some(mut state) = state else {
            return Err(ScriptError::Unavailable.into());
        };
        let output_limit = || ScriptError::OutputLimit {
            owner: owner.clone(),
            limit: limits.output_bytes,
        };
        if state.output_exceeded {
            return Err(output_limit().into());
        }
        let json_data = match outcome {
            RunOutcome::Completed { json_data } | RunOutcome::Replied { json_data } => json_data,
            // What the script did before it threw stays done, as in the
            // product (its `jsonData` is not read).
            RunOutcome::Failed(error) => {
                return Err(ScriptRun {
                    output: state.output,
                    error: Some(error),
                });
            }
            RunOutcome::Stopped => None,
        };
        // The transform's result is output like any other, beside the
        // response it reshapes.
        let json_data = json_data.filter(|json| Some(json) != original_json.as_ref());
        if json_data
            .as_ref()
            .is_some_and(|json| json.len() > state.json_data_room())
        {
            return Err(output_limit().into());
        }
        state.output.json_data = json_data;
        Ok(state.output)
    }
}

/// A new context for a realm: the global template, the lockdown, and what
/// the native reset needs.
fn new_sandbox(scope: &mut v8::PinScope<'_, '_, ()>, now: u64) -> Option<Sandbox> {
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
    v8::Script::compile(scope, code, None)?.run(scope)?;
    let global = context.global(scope);
    let baseline = own_keys(scope, global)?.length();
    let pattern = v8::String::new(scope, "(?:)")?;
    let empty_match = v8::RegExp::new(scope, pattern, v8::RegExpCreationFlags::empty())?;
    Some(Sandbox {
        context: v8::Global::new(scope, context),
        compiled: HashMap::new(),
        baseline,
        empty_match: v8::Global::new(scope, empty_match),
        last_used: now,
    })
}

/// Every own property key of `object`, strings and symbols.
fn own_keys<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    object: v8::Local<'s, v8::Object>,
) -> Option<v8::Local<'s, v8::Array>> {
    object.get_own_property_names(
        scope,
        v8::GetPropertyNamesArgsBuilder::new()
            .mode(v8::KeyCollectionMode::OwnOnly)
            .property_filter(v8::PropertyFilter::ALL_PROPERTIES)
            .index_filter(v8::IndexFilter::IncludeIndices)
            .key_conversion(v8::KeyConversionMode::KeepNumbers)
            .build(),
    )
}

/// Puts the global back as the lockdown left it; true when it could. Done
/// natively: deleting an ordinary object's properties and matching a
/// regular expression made here call no function a script can reach.
fn reset(scope: &mut v8::PinScope<'_, '_>, sandbox: &Sandbox) -> bool {
    let context = scope.get_current_context();
    let global = context.global(scope);
    let Some(keys) = own_keys(scope, global) else {
        return false;
    };
    // The lockdown's own bindings are non-configurable, so the same count
    // means the run added none: most runs delete and recount nothing.
    let only_baseline = keys.length() == sandbox.baseline || {
        for index in 0..keys.length() {
            if let Some(key) = keys.get_index(scope, index) {
                // The lockdown's own bindings refuse (non-configurable).
                let _ = global.delete(scope, key);
            }
        }
        own_keys(scope, global).is_some_and(|keys| keys.length() == sandbox.baseline)
    };
    let empty_match = v8::Local::new(scope, &sandbox.empty_match);
    let cleared =
        v8::String::new(scope, "").is_some_and(|empty| empty_match.exec(scope, empty).is_some());
    // A global a run made non-extensible cannot take the next run's
    // implicit globals; one it made non-configurable did not go.
    let extensible = v8::String::new(scope, "\u{0}patchbay-probe").is_some_and(|probe| {
        // Defined, not assigned: no setter or Proxy trap is looked for.
        let undefined = v8::undefined(scope).into();
        let added = global.create_data_property(scope, probe.into(), undefined) == Some(true)
            && global.has_own_property(scope, probe.into()) == Some(true);
        global.delete(scope, probe.into());
        added
    });
    cleared && extensible && only_baseline
}

/// The scope `v8::tc_scope!` makes inside a handle scope.
type TryCatchScope<'p, 's, 'o, 'i> = v8::PinnedRef<'p, v8::TryCatch<'s, 'o, v8::HandleScope<'i>>>;

/// Runs the script, its promise jobs and the reading of its result. After
/// a limit stopped any of them, V8 is not entered again: a termination that
/// V8 has already unwound no longer stops the code that runs next.
fn run_in_context(
    scope: &mut v8::PinScope<'_, '_>,
    compiled: &mut HashMap<u64, v8::Global<v8::Function>>,
    script: &ScriptSource,
    api_name: Option<&str>,
    stopped: &dyn Fn() -> bool,
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
    if stopped() {
        return RunOutcome::Stopped;
    }
    // The only other termination is `sendImmediateReply`'s.
    if try_catch.has_terminated() && !host::replied(try_catch) {
        return RunOutcome::Stopped;
    }
    // The exception's text may come from its own `toString`.
    let failure =
        (!finished && !host::replied(try_catch)).then(|| exception(try_catch, &script.owner));
    if !host::replied(try_catch) {
        try_catch.perform_microtask_checkpoint();
        if stopped() {
            return RunOutcome::Stopped;
        }
    }
    // A reply from the body or from a promise job.
    let replied = settle_reply(try_catch);
    if let Some(error) = failure {
        return RunOutcome::Failed(error);
    }
    let json_data = api_name.and_then(|name| host::read_json_data(try_catch, name));
    // A `jsonData` getter or `toJSON` that threw is the script's error; one
    // that replied ended the script there.
    let replied = settle_reply(try_catch) || replied;
    let failure = (try_catch.has_caught() && !replied).then(|| exception(try_catch, &script.owner));
    // Reading jsonData may call the script's getters or `toJSON`, which may
    // queue promise jobs of their own.
    if !replied {
        try_catch.perform_microtask_checkpoint();
    }
    if stopped() {
        return RunOutcome::Stopped;
    }
    if let Some(error) = failure {
        return RunOutcome::Failed(error);
    }
    if replied {
        RunOutcome::Replied { json_data }
    } else {
        RunOutcome::Completed { json_data }
    }
}

/// Whether `sendImmediateReply` ended the script. If so, the promise jobs
/// it left are dropped (running the queue while a termination is requested
/// makes V8 delete it whole: a job left there would run in the next run on
/// the worker, maybe another bot's), and the termination is taken back, so
/// that V8 may be entered again (to read `jsonData`, to reset the global)
/// without running anything of the script's.
fn settle_reply(try_catch: &mut TryCatchScope<'_, '_, '_, '_>) -> bool {
    let replied = host::replied(try_catch);
    if replied {
        try_catch.terminate_execution();
        try_catch.perform_microtask_checkpoint();
        try_catch.cancel_terminate_execution();
        try_catch.reset();
    }
    replied
}

/// The script as a function of the current context, compiled the first
/// time. A function body, so that its top-level `var`s and functions are
/// the run's own and leave nothing on the global. The function object
/// itself is frozen (with its `prototype`), since every run reaches it as
/// `arguments.callee`.
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
    if !freeze_function(try_catch, function) {
        return Err(ScriptError::Unavailable);
    }
    let global = v8::Global::new(try_catch, function);
    compiled.insert(script.id, global.clone());
    Ok(global)
}

/// Freezes a compiled script's function and its `prototype` object.
fn freeze_function(
    scope: &mut v8::PinScope<'_, '_>,
    function: v8::Local<'_, v8::Function>,
) -> bool {
    let frozen = |scope: &mut v8::PinScope<'_, '_>, object: v8::Local<'_, v8::Object>| {
        object.set_integrity_level(scope, v8::IntegrityLevel::Frozen) == Some(true)
    };
    let Some(key) = v8::String::new(scope, "prototype") else {
        return false;
    };
    let prototype = function
        .get(scope, key.into())
        .and_then(|value| value.to_object(scope));
    frozen(scope, function.into()) && prototype.is_none_or(|prototype| frozen(scope, prototype))
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
