//! Stations: the isolates scripts run in, each with a locked-down context
//! per realm (bot), the scripts it has compiled, and its watchdog. A run
//! leases an idle station and runs on the caller's own thread, under the
//! isolate's lock: no thread hand-off on the way in or out.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::host::{self, RunState};
use crate::limits::{GuardedIsolate, Watchdog};
use crate::runtime::{Limits, ScriptError, ScriptInput, ScriptOutput, ScriptRun, ScriptSource};

/// Contexts a station keeps; the least recently used goes first (its
/// scripts compile again on its next run).
const REALMS_PER_STATION: usize = 16;

/// Transform names (`api_RDVN`) a context keeps as fixed globals (one per
/// integration of the bot with a transform); a run with a name past them
/// gets an ordinary global, which the reset deletes.
const API_BINDINGS_PER_SANDBOX: usize = 16;

/// Runs of a station between two early collections ([`Station::keep_heap_low`]):
/// a collection is a few full mark-compacts of the whole isolate, which
/// every realm on it waits for, so a bot that promotes a step of garbage
/// each run (or contexts evicted run after run) makes one every this many
/// runs at most.
const RUNS_BETWEEN_EARLY_COLLECTIONS: u64 = 8;

/// The least growth of the old generation that asks for an early
/// collection.
const LEAST_COLLECTION_STEP: usize = 1024 * 1024;

thread_local! {
    /// The station this thread ran in last. V8 saves and restores an
    /// isolate's per-thread state whenever another thread takes its lock,
    /// so a thread goes back to its own station when that one is idle.
    static LAST_STATION: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The stations of one runtime, and how many of them can take a run.
pub(crate) struct Stations {
    idle: Mutex<Vec<Station>>,
    /// One permit per healthy station: a run waits here for one to be idle.
    available: Semaphore,
    limits: Limits,
    /// Stations the runtime was made with.
    size: usize,
    healthy: AtomicUsize,
    made: AtomicUsize,
    replaced: AtomicUsize,
    /// Given-up stations whose runs are still inside a builtin.
    stuck: AtomicUsize,
}

impl std::fmt::Debug for Stations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stations")
            .field("limits", &self.limits)
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

impl Stations {
    /// `size` stations, their isolates made now (on this thread, which
    /// leaves none entered), so the first runs do not pay for them.
    pub(crate) fn new(size: usize, limits: Limits) -> Arc<Self> {
        let stations = Arc::new(Self {
            idle: Mutex::new(Vec::with_capacity(size)),
            available: Semaphore::new(0),
            limits,
            size,
            healthy: AtomicUsize::new(0),
            made: AtomicUsize::new(0),
            replaced: AtomicUsize::new(0),
            stuck: AtomicUsize::new(0),
        });
        for _ in 0..size {
            if let Some(mut station) = Station::new(&stations) {
                station.guarded();
                stations.add(station);
            }
        }
        stations
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Station>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a new station in service.
    fn add(&self, station: Station) {
        self.healthy.fetch_add(1, Ordering::SeqCst);
        self.idle().push(station);
        self.available.add_permits(1);
    }

    /// Stations able to take a run (neither stuck nor failed to start).
    pub(crate) fn healthy(&self) -> usize {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Stations given up on because a stopped run did not end.
    pub(crate) fn replaced(&self) -> usize {
        self.replaced.load(Ordering::SeqCst)
    }

    /// Waits for an idle station, the one this thread used last if it is.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease<'_>, ScriptError> {
        let permit = self
            .available
            .acquire()
            .await
            .map_err(|_| ScriptError::Unavailable)?;
        Ok(self.take(permit))
    }

    /// Every station idle now, without waiting (at least one: the first is
    /// waited for).
    pub(crate) async fn lease_idle(self: &Arc<Self>) -> Result<Vec<Lease<'_>>, ScriptError> {
        let mut leases = vec![self.lease().await?];
        while let Ok(permit) = self.available.try_acquire() {
            leases.push(self.take(permit));
        }
        Ok(leases)
    }

    fn take<'a>(self: &'a Arc<Self>, permit: SemaphorePermit<'a>) -> Lease<'a> {
        let station = {
            let mut idle = self.idle();
            let last = LAST_STATION.get();
            let position = idle
                .iter()
                .position(|station| station.index == last)
                .unwrap_or(idle.len().saturating_sub(1));
            // A permit is only granted with a station idle.
            (position < idle.len()).then(|| idle.swap_remove(position))
        };
        if let Some(station) = &station {
            LAST_STATION.set(station.index);
        }
        Lease {
            station,
            stations: self,
            permit: Some(permit),
        }
    }

    /// Called by a station's watchdog when a stopped run does not end (a
    /// builtin that does not check for termination): the station is given
    /// up and a new one takes its place, unless as many as the runtime has
    /// stations are already stuck: each holds a thread, so the runtime
    /// then runs short (and says so through `is_ready`) rather than giving
    /// away every thread.
    fn give_up(self: &Arc<Self>, abandoned: &AtomicBool) {
        if abandoned.swap(true, Ordering::SeqCst) {
            return;
        }
        self.healthy.fetch_sub(1, Ordering::SeqCst);
        let stuck = self.stuck.fetch_add(1, Ordering::SeqCst) + 1;
        if stuck > self.size {
            tracing::error!(
                stuck,
                "a script run did not stop at its time limit; too many are stuck to start another isolate"
            );
            return;
        }
        self.replaced.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("patchbay_script_workers_replaced_total").increment(1);
        tracing::error!("a script run did not stop at its time limit; its isolate is replaced");
        // Its isolate is made by its first run: not on the watchdog's thread.
        if let Some(station) = Station::new(self) {
            self.add(station);
        }
    }

    /// A given-up station whose run ended at last: back in service if the
    /// runtime is short of stations, dropped otherwise.
    fn come_back(&self, station: &Station) -> bool {
        self.stuck.fetch_sub(1, Ordering::SeqCst);
        let short = self
            .healthy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |healthy| {
                (healthy < self.size).then_some(healthy + 1)
            })
            .is_ok();
        if short {
            station.abandoned.store(false, Ordering::SeqCst);
        }
        short
    }
}

/// A station leased for runs on this thread; back to the idle ones when
/// dropped.
pub(crate) struct Lease<'a> {
    station: Option<Station>,
    stations: &'a Arc<Stations>,
    permit: Option<SemaphorePermit<'a>>,
}

impl Lease<'_> {
    pub(crate) fn station(&mut self) -> Result<&mut Station, ScriptError> {
        self.station.as_mut().ok_or(ScriptError::Unavailable)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(station) = self.station.take() else {
            return;
        };
        let permit = self.permit.take();
        if station.abandoned.load(Ordering::SeqCst) && !self.stations.come_back(&station) {
            // Replaced: its permit went to the replacement.
            if let Some(permit) = permit {
                permit.forget();
            }
            return;
        }
        // The station first, then the permit that lets a run take it.
        self.stations.idle().push(station);
        drop(permit);
    }
}

/// How long a stopped run may take to unwind before its station counts as
/// stuck: as long again as its limit, at least 100 ms. Unwinding takes
/// microseconds; what takes longer is a builtin that does not check for
/// termination (docs/script.md lists the known ones and what bounds them).
fn stop_grace(limit: std::time::Duration) -> std::time::Duration {
    limit.max(std::time::Duration::from_millis(100))
}

/// A realm's context in a station, locked down (`lockdown.js`) and reused
/// by every run of the realm until a run leaves it unclean.
struct Sandbox {
    context: v8::Global<v8::Context>,
    /// Scripts compiled as functions of this context.
    compiled: HashMap<u64, v8::Global<v8::Function>>,
    /// Own properties of the global after the lockdown, and the fixed
    /// `api_RDVN` bindings, all of them non-configurable: a run may only
    /// add (deletable) ones.
    baseline: u32,
    /// The transform names given to runs of this context, each a global
    /// of its own: writable, non-configurable, `undefined` between runs.
    /// A fresh (configurable) global per run would leave the global with a
    /// key more than its baseline after every transform, and the reset
    /// would take its slow path (delete every key, list them again) each
    /// time.
    api_bindings: Vec<(String, v8::Global<v8::String>)>,
    /// Matched after each run to clear RegExp's legacy statics
    /// (`RegExp.$1`, `RegExp.input`, ...), which keep the last match.
    empty_match: v8::Global<v8::RegExp>,
    /// When a run last used it, in the station's run count.
    last_used: u64,
    /// Gone when the realm is dropped (its bot reloaded or removed): the
    /// context and its compiled functions go at the station's next run.
    realm: Weak<()>,
}

/// Fields drop in declaration order: the handles into the isolate come
/// before the isolate.
pub(crate) struct Station {
    sandboxes: HashMap<u64, Sandbox>,
    runs: u64,
    /// The old generation's size after the isolate's last full collection.
    heap_floor: usize,
    /// The run count before which no early collection is made.
    quiet_until: u64,
    /// Full collections made after runs ([`HeapUsage::collections`]).
    collections: u64,
    index: usize,
    limits: Limits,
    watchdog: Watchdog,
    /// Set by the watchdog when it gives the station up.
    abandoned: Arc<AtomicBool>,
    /// `None` after a limit was hit: the next run makes a new one.
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

impl Station {
    /// A station with its watchdog (its isolate comes with its first run);
    /// `None` when no watchdog thread could be made: without one no run
    /// could be bounded, so the station is not put in service, and
    /// readiness says so when none is.
    fn new(stations: &Arc<Stations>) -> Option<Self> {
        let index = stations.made.fetch_add(1, Ordering::SeqCst);
        let abandoned = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let abandoned = Arc::clone(&abandoned);
            let grace = stop_grace(stations.limits.time);
            let stations = Arc::downgrade(stations);
            Watchdog::start(
                format!("patchbay-script-{index}-watchdog"),
                grace,
                move || {
                    if let Some(stations) = stations.upgrade() {
                        stations.give_up(&abandoned);
                    }
                },
            )
        };
        match watchdog {
            Ok(watchdog) => Some(Self {
                sandboxes: HashMap::new(),
                runs: 0,
                heap_floor: 0,
                quiet_until: 0,
                collections: 0,
                index,
                limits: stations.limits,
                watchdog,
                abandoned,
                isolate: None,
            }),
            Err(error) => {
                tracing::error!(%error, "cannot start a script watchdog thread");
                None
            }
        }
    }

    /// The isolate, made if there is none. `None` only if V8 would not
    /// share it (it always does: nothing is made in it before).
    fn guarded(&mut self) -> Option<&mut GuardedIsolate> {
        if self.isolate.is_none() {
            self.isolate = GuardedIsolate::new(self.limits.heap_bytes);
        }
        self.isolate.as_mut()
    }

    /// Drops every context and the isolate: the next run starts afresh.
    /// After a run was stopped by a limit nothing of that isolate is
    /// trusted again (its microtask queue may hold the stopped run's jobs).
    fn discard_isolate(&mut self) {
        self.sandboxes.clear();
        self.isolate = None;
        self.heap_floor = 0;
    }

    /// After each run: a full collection when the old generation has grown
    /// by a sixteenth of the heap limit since the last one, and a new
    /// isolate when, even after one, more than half the heap is held.
    ///
    /// V8 itself collects the old generation late: garbage that
    /// scavenges promote (a run's strings and parsed JSON that outlive a
    /// scavenge) stays until the old generation reaches its allocation
    /// limit, half the heap limit at first (32 MB of a 64 MB isolate),
    /// then the live size plus at least 8 MB. Setting a small initial old
    /// generation (`heap_limits(initial, _)`, `--initial-old-space-size`)
    /// moved the first collection only (measured with
    /// `examples/soak.rs`), so RSS rose by about 40 KiB per 1,000 runs for
    /// hundreds of thousands of runs per isolate. Collecting here keeps
    /// each isolate's heap within a step of its live size: a collection
    /// of a few milliseconds every tens of thousands of runs, and
    /// `low_memory_notification` gives the freed pages back.
    ///
    /// Frozen objects can still take memory that no reset sees (private
    /// fields added to them, the `Symbol.for` registry), so one bot could
    /// otherwise fill the heap run after run until another bot's run meets
    /// the limit: past half the heap after a collection, the isolate goes.
    ///
    /// The step grows with what the last collection left (a live size of
    /// its own does not ask for collection after collection), and early
    /// collections are [`RUNS_BETWEEN_EARLY_COLLECTIONS`] runs apart.
    fn keep_heap_low(&mut self) {
        let half = self.limits.heap_bytes / 2;
        let step = (self.limits.heap_bytes / 16)
            .max(self.heap_floor)
            .max(LEAST_COLLECTION_STEP);
        let Some(guarded) = self.isolate.as_ref() else {
            return;
        };
        let held = {
            let mut isolate = guarded.lock();
            let used = isolate.get_heap_statistics().used_heap_size();
            let old = used.saturating_sub(young_generation(&mut isolate));
            let early = old > self.heap_floor.saturating_add(step) && self.runs >= self.quiet_until;
            if used <= half && !early {
                return;
            }
            self.collections += 1;
            self.quiet_until = self.runs + RUNS_BETWEEN_EARLY_COLLECTIONS;
            isolate.low_memory_notification();
            let used = isolate.get_heap_statistics().used_heap_size();
            self.heap_floor = used.saturating_sub(young_generation(&mut isolate));
            used > half
        };
        if held {
            tracing::debug!("a script isolate's heap stays over half full; it starts afresh");
            self.discard_isolate();
        }
    }

    /// A full collection, after the contexts of dropped realms went: V8
    /// would otherwise keep their memory until its heap nears the limit,
    /// so every reload of a bot would add to the process (milliseconds,
    /// once per reload and isolate).
    fn collect_garbage(&mut self) {
        if let Some(guarded) = self.isolate.as_ref() {
            let mut isolate = guarded.lock();
            isolate.low_memory_notification();
            let used = isolate.get_heap_statistics().used_heap_size();
            self.heap_floor = used.saturating_sub(young_generation(&mut isolate));
        }
    }

    /// Makes the realm's sandbox when there is none, evicting those of
    /// dropped realms, and the least recently used one when the station
    /// holds too many.
    fn ensure_sandbox(&mut self, script: &ScriptSource) -> Result<(), ScriptError> {
        self.runs += 1;
        let now = self.runs;
        let before = self.sandboxes.len();
        self.sandboxes
            .retain(|_, sandbox| sandbox.realm.strong_count() > 0);
        if self.sandboxes.len() < before {
            self.collect_garbage();
        }
        if let Some(sandbox) = self.sandboxes.get_mut(&script.realm) {
            sandbox.last_used = now;
            return Ok(());
        }
        if self.sandboxes.len() >= REALMS_PER_STATION
            && let Some(oldest) = self
                .sandboxes
                .iter()
                .min_by_key(|(_, sandbox)| sandbox.last_used)
                .map(|(id, _)| *id)
        {
            self.sandboxes.remove(&oldest);
        }
        let guarded = self.guarded().ok_or(ScriptError::Unavailable)?;
        let sandbox = {
            let mut isolate = guarded.lock();
            v8::scope!(let scope, &mut *isolate);
            new_sandbox(scope, now, Weak::clone(&script.realm_alive))
        };
        self.drop_isolate_after_heap_hit()?;
        self.sandboxes
            .insert(script.realm, sandbox.ok_or(ScriptError::Unavailable)?);
        Ok(())
    }

    /// The isolate's heap: bytes used by live and not yet collected
    /// objects, bytes V8 holds for it, and the full collections made after
    /// runs (`None` before its first run).
    pub(crate) fn heap_usage(&self) -> Option<(usize, usize, u64)> {
        let guarded = self.isolate.as_ref()?;
        let mut isolate = guarded.lock();
        let statistics = isolate.get_heap_statistics();
        Some((
            statistics.used_heap_size(),
            statistics.total_heap_size(),
            self.collections,
        ))
    }

    pub(crate) fn compile_only(&mut self, script: &ScriptSource) -> Result<(), ScriptError> {
        self.ensure_sandbox(script)?;
        let (Some(guarded), Some(sandbox)) =
            (self.isolate.as_ref(), self.sandboxes.get_mut(&script.realm))
        else {
            return Err(ScriptError::Unavailable);
        };
        let result = {
            let mut isolate = guarded.lock();
            v8::scope!(let scope, &mut *isolate);
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
            .as_ref()
            .is_some_and(GuardedIsolate::take_heap_hit);
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
    pub(crate) fn run(
        &mut self,
        script: &ScriptSource,
        input: ScriptInput,
    ) -> Result<ScriptOutput, ScriptRun> {
        let limits = self.limits;
        let api_name = input.api.as_ref().map(|api| api.name.clone());
        let original_json = input.api.as_ref().map(|api| api.json_data.clone());
        self.ensure_sandbox(script)?;
        let (Some(guarded), Some(sandbox)) =
            (self.isolate.as_ref(), self.sandboxes.get_mut(&script.realm))
        else {
            return Err(ScriptError::Unavailable.into());
        };
        let heap_hit = guarded.heap_hit_flag();
        let watchdog = &self.watchdog;
        let stopped = || watchdog.fired() || heap_hit.load(Ordering::SeqCst);
        let (outcome, clean, timed_out, state) = {
            let mut isolate = guarded.lock();
            isolate.set_slot(RunState::new(input, limits.output_bytes));
            watchdog.arm(guarded.handle(), limits.time);
            // Everything that may run script code (the function, its
            // microtasks, jsonData's getters and toJSON) runs inside the limit.
            let (outcome, clean) = {
                v8::scope!(let scope, &mut *isolate);
                let context = v8::Local::new(scope, &sandbox.context);
                let scope = &mut v8::ContextScope::new(scope, context);
                let installed = install_api(scope, sandbox, api_name.as_deref());
                let outcome = run_in_context(
                    scope,
                    &mut sandbox.compiled,
                    script,
                    installed,
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
            let timed_out = watchdog.disarm();
            // A termination requested as the run ended must not hit the next.
            isolate.cancel_terminate_execution();
            let state = isolate.remove_slot::<RunState>();
            (outcome, clean, timed_out, state)
        };
        let heap_hit = guarded.take_heap_hit();
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
        self.keep_heap_low();
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

impl Drop for Station {
    fn drop(&mut self) {
        self.watchdog.stop();
    }
}

/// Bytes used in the young generation (new space and its large objects):
/// garbage a scavenge takes, which says nothing of what the old generation
/// holds.
fn young_generation(isolate: &mut v8::Isolate) -> usize {
    static YOUNG: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let spaces = YOUNG.get_or_init(|| {
        (0..isolate.number_of_heap_spaces())
            .filter(|&index| {
                isolate
                    .get_heap_space_statistics(index)
                    .is_some_and(|space| space.space_name().to_bytes().starts_with(b"new_"))
            })
            .collect()
    });
    spaces
        .iter()
        .filter_map(|&index| isolate.get_heap_space_statistics(index))
        .map(|space| space.space_used_size())
        .sum()
}

/// A new context for a realm: the global template, the lockdown, and what
/// the native reset needs.
fn new_sandbox(scope: &mut v8::PinScope<'_, '_, ()>, now: u64, realm: Weak<()>) -> Option<Sandbox> {
    let context = crate::snapshot::new_context(scope)?;
    let scope = &mut v8::ContextScope::new(scope, context);
    let global = context.global(scope);
    let baseline = own_keys(scope, global)?.length();
    let pattern = v8::String::new(scope, "(?:)")?;
    let empty_match = v8::RegExp::new(scope, pattern, v8::RegExpCreationFlags::empty())?;
    Some(Sandbox {
        context: v8::Global::new(scope, context),
        compiled: HashMap::new(),
        baseline,
        api_bindings: Vec::new(),
        empty_match: v8::Global::new(scope, empty_match),
        last_used: now,
        realm,
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

/// Defines the run's `api_RDVN` global, as a fixed binding of the sandbox
/// while it has room for one more; whether the run may go on.
fn install_api(
    scope: &mut v8::PinScope<'_, '_>,
    sandbox: &mut Sandbox,
    name: Option<&str>,
) -> bool {
    let Some(name) = name else {
        return true;
    };
    let known = sandbox.api_bindings.iter().any(|(bound, _)| bound == name);
    let fixed = known || sandbox.api_bindings.len() < API_BINDINGS_PER_SANDBOX;
    let Some(defined) = host::install_api(scope, fixed) else {
        return false;
    };
    if fixed && defined && !known {
        let Some(key) = v8::String::new(scope, name) else {
            return false;
        };
        sandbox
            .api_bindings
            .push((name.to_owned(), v8::Global::new(scope, key)));
        sandbox.baseline += 1;
    }
    true
}

/// Puts the global back as the lockdown left it; true when it could. Done
/// natively: defining and deleting an ordinary object's own data
/// properties and matching a regular expression made here call no
/// function a script can reach.
fn reset(scope: &mut v8::PinScope<'_, '_>, sandbox: &Sandbox) -> bool {
    let context = scope.get_current_context();
    let global = context.global(scope);
    // The fixed `api_RDVN` bindings hold `undefined` between runs, whoever
    // wrote them; one a run made read-only refuses, and the context goes.
    let undefined: v8::Local<'_, v8::Value> = v8::undefined(scope).into();
    let bindings_cleared = sandbox.api_bindings.iter().all(|(_, key)| {
        let key = v8::Local::new(scope, key);
        global.define_own_property(
            scope,
            key.into(),
            undefined,
            v8::PropertyAttribute::DONT_DELETE,
        ) == Some(true)
    });
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
    bindings_cleared && cleared && extensible && only_baseline
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
    api_installed: bool,
    api_name: Option<&str>,
    stopped: &dyn Fn() -> bool,
) -> RunOutcome {
    if !api_installed {
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
                message.get_start_column().checked_add(1).unwrap_or(0),
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
