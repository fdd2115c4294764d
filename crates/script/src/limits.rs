//! V8's process-wide setup and the limits that stop a run: a watchdog for
//! time, a near-heap-limit callback for memory.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

/// Initialises V8 once per process, with code generation from strings
/// (`eval`, `new Function`) switched off for every isolate. (This V8 has no
/// flag to hide `WebAssembly`; each context removes the global instead.)
///
/// Scripts run on whichever thread runs the turn, and such a thread may
/// have been made before V8 was initialised (a tokio worker, a test
/// thread). With memory protection keys, V8 guards its code memory with a
/// key whose access a thread inherits only when it is created, so such a
/// thread faults on its first script. The JIT is the only writer of code
/// memory: `--jitless` runs scripts in V8's interpreter, writes no
/// executable memory at run time (one class of engine exploit less), and
/// leaves the keys nothing to guard (`--no-memory-protection-keys` says
/// so). The product's scripts are small; the interpreter's cost is in
/// docs/benchmarks.md. The stack limit (KiB) leaves room on a 2 MiB
/// runtime thread (tokio's default) for the frames below the script.
///
/// V8 leaves the features its flags turn on out of a startup snapshot and
/// adds them to every context it reads from one, onto intrinsics the
/// lockdown has frozen (it aborts there). So the features newer than the
/// product's scripts are off (`Temporal`, `Float16Array`, explicit resource
/// management, `Promise.try`, `RegExp.escape`, `Error.isError`,
/// `Math.sumPrecise`, base64 on `Uint8Array`, `Iterator.concat`,
/// `Map.prototype.getOrInsert`, `Atomics.pause`, `Intl.Locale` variants):
/// a smaller surface for scripts, and contexts read from the snapshot
/// (snapshot.rs) need no lockdown of their own.
pub(crate) fn initialize_v8() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        v8::V8::set_flags_from_string(concat!(
            "--disallow-code-generation-from-strings --jitless --no-memory-protection-keys",
            " --stack-size=640",
            " --no-harmony-temporal --no-js-float16array --no-js-explicit-resource-management",
            " --no-js-promise-try --no-js-regexp-escape --no-js-error-iserror --no-js-sum-precise",
            " --no-js-base-64 --no-js-iterator-sequencing --no-js-upsert --no-js-atomics-pause",
            " --no-js-intl-locale-variants",
        ));
        let platform = v8::new_default_platform(0, false).make_shared();
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
}

/// What the near-heap-limit callback reaches: the isolate's handle, to stop
/// the run, and a flag to say why it stopped.
pub(crate) struct HeapGuard {
    handle: v8::IsolateHandle,
    hit: Arc<AtomicBool>,
}

/// An isolate with a heap limit whose breach stops the run instead of
/// aborting the process. Shared: any thread may run scripts in it, one at a
/// time, under its lock.
pub(crate) struct GuardedIsolate {
    isolate: ManuallyDrop<v8::SharedIsolate>,
    guard: *mut HeapGuard,
}

// SAFETY: the guard is a `HeapGuard` (an `IsolateHandle` and an
// `Arc<AtomicBool>`, both `Send + Sync`) owned by this value alone; V8
// reaches it only from the thread that holds the isolate's lock.
#[allow(unsafe_code)]
unsafe impl Send for GuardedIsolate {}

impl GuardedIsolate {
    /// An isolate whose heap may grow to `heap_bytes` and whose ArrayBuffer
    /// contents (which live outside the heap) may take as much again. Its
    /// microtasks run only when the host asks, inside a run's time limit.
    pub(crate) fn new(heap_bytes: usize) -> Option<Self> {
        let params = crate::snapshot::isolate_params(
            v8::CreateParams::default()
                .heap_limits(0, heap_bytes)
                .array_buffer_allocator(BufferBudget::allocator(heap_bytes)),
        );
        let mut isolate = v8::Isolate::new(params);
        isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
        let guard = Box::into_raw(Box::new(HeapGuard {
            handle: isolate.thread_safe_handle(),
            hit: Arc::new(AtomicBool::new(false)),
        }));
        isolate.add_near_heap_limit_callback(near_heap_limit, guard.cast::<c_void>());
        // SAFETY: the isolate is still on the thread that made it (just
        // above), no `Global` of it was opened, and what its slots will
        // hold (`RunState`) is `Send` (asserted in `host`).
        #[allow(unsafe_code)]
        let shared = unsafe { isolate.try_into_shared() };
        match shared {
            Ok(shared) => Some(Self {
                isolate: ManuallyDrop::new(shared),
                guard,
            }),
            Err(error) => {
                // Not shareable (it never is, with nothing made in it yet):
                // the isolate drops here, on the thread that made it and
                // exiting it (dropping the error alone would leak it,
                // entered), then the guard its callback pointed to.
                drop(error.into_isolate());
                // SAFETY: the guard came from `Box::into_raw` above and the
                // isolate whose callback pointed to it is gone.
                #[allow(unsafe_code)]
                drop(unsafe { Box::from_raw(guard) });
                None
            }
        }
    }

    /// Takes the isolate's lock and enters it on this thread.
    pub(crate) fn lock(&self) -> v8::Locker<'_> {
        self.isolate.lock()
    }

    /// A handle that stops its runs from any thread.
    pub(crate) fn handle(&self) -> v8::IsolateHandle {
        self.isolate.thread_safe_handle()
    }

    /// The flag the heap limit sets when it stops a run.
    pub(crate) fn heap_hit_flag(&self) -> Arc<AtomicBool> {
        // SAFETY: `guard` came from `Box::into_raw` in `new` and is freed
        // only in `drop`.
        #[allow(unsafe_code)]
        let guard = unsafe { &*self.guard };
        Arc::clone(&guard.hit)
    }

    /// Whether the heap limit stopped the last run (and clears the flag).
    pub(crate) fn take_heap_hit(&self) -> bool {
        // SAFETY: `guard` came from `Box::into_raw` in `new` and is freed
        // only in `drop`.
        #[allow(unsafe_code)]
        let guard = unsafe { &*self.guard };
        guard.hit.swap(false, Ordering::SeqCst)
    }
}

impl Drop for GuardedIsolate {
    fn drop(&mut self) {
        // SAFETY: the isolate is dropped exactly once, here, and before the
        // guard its callback points to; the guard came from `Box::into_raw`.
        #[allow(unsafe_code)]
        unsafe {
            ManuallyDrop::drop(&mut self.isolate);
            drop(Box::from_raw(self.guard));
        }
    }
}

/// Called by V8 on the isolate's thread when the heap nears its limit.
/// Stops the run and grants the room V8 needs to unwind it, instead of
/// letting V8 abort the process.
///
/// The room must hold the allocation that is under way, which can be one
/// object far larger than the limit (`'x'.repeat(100 * 2 ** 20)` is one
/// 100 MiB string): V8 asks once per collection and aborts the process if
/// the new limit still cannot take it. So the limit grows by
/// [`UNWIND_ROOM`], about V8's largest string, not by a factor; the isolate
/// is replaced right after the run, so the room is held only until then.
#[allow(unsafe_code)]
unsafe extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the `HeapGuard` registered with this callback, alive
    // as long as the isolate (see `GuardedIsolate`).
    let guard = unsafe { &*data.cast::<HeapGuard>() };
    guard.hit.store(true, Ordering::SeqCst);
    guard.handle.terminate_execution();
    current.saturating_add(UNWIND_ROOM)
}

/// The memory behind one isolate's ArrayBuffers. V8 allocates it through
/// the embedder's allocator, outside the heap its limit watches, so without
/// a budget one `new Uint8Array(2 ** 31)` would commit gigabytes. An
/// allocation past the budget fails, and V8 (after collecting garbage once
/// and trying again) throws a `RangeError` in the script.
pub(crate) struct BufferBudget {
    live: AtomicUsize,
    limit: usize,
}

/// Backing stores are aligned as `malloc` aligns them.
const BUFFER_ALIGN: usize = 16;

impl BufferBudget {
    fn allocator(limit: usize) -> v8::UniqueRef<v8::Allocator> {
        static VTABLE: v8::RustAllocatorVtable<BufferBudget> = v8::RustAllocatorVtable {
            allocate: allocate_zeroed,
            allocate_uninitialized,
            free,
            drop: drop_budget,
        };
        let budget = Arc::new(BufferBudget {
            live: AtomicUsize::new(0),
            limit,
        });
        // SAFETY: the handle is an `Arc<BufferBudget>` turned into a raw
        // pointer, which `drop_budget` turns back exactly once, when V8
        // drops the allocator; the vtable's functions expect that type.
        #[allow(unsafe_code)]
        unsafe {
            v8::new_rust_allocator(Arc::into_raw(budget), &VTABLE)
        }
    }

    fn allocate(&self, len: usize, zeroed: bool) -> *mut c_void {
        let reserved = self
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                live.checked_add(len).filter(|total| *total <= self.limit)
            })
            .is_ok();
        let Some(layout) = buffer_layout(len).filter(|_| reserved) else {
            if reserved {
                self.live.fetch_sub(len, Ordering::SeqCst);
            }
            return std::ptr::null_mut();
        };
        // SAFETY: the layout has a non-zero size.
        #[allow(unsafe_code)]
        let data = unsafe {
            if zeroed {
                std::alloc::alloc_zeroed(layout)
            } else {
                std::alloc::alloc(layout)
            }
        };
        if data.is_null() {
            self.live.fetch_sub(len, Ordering::SeqCst);
        }
        data.cast()
    }
}

/// The layout of a backing store of `len` bytes (V8 may ask for none).
fn buffer_layout(len: usize) -> Option<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(len.max(1), BUFFER_ALIGN).ok()
}

#[allow(unsafe_code)]
unsafe extern "C" fn allocate_zeroed(budget: &BufferBudget, len: usize) -> *mut c_void {
    budget.allocate(len, true)
}

#[allow(unsafe_code)]
unsafe extern "C" fn allocate_uninitialized(budget: &BufferBudget, len: usize) -> *mut c_void {
    budget.allocate(len, false)
}

#[allow(unsafe_code)]
unsafe extern "C" fn free(budget: &BufferBudget, data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    if let Some(layout) = buffer_layout(len) {
        // SAFETY: V8 frees what this allocator gave it, with the length it
        // asked for, so the layout is the one it was allocated with.
        unsafe { std::alloc::dealloc(data.cast(), layout) };
        budget.live.fetch_sub(len, Ordering::SeqCst);
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn drop_budget(budget: *const BufferBudget) {
    // SAFETY: `budget` came from `Arc::into_raw` in `BufferBudget::allocator`
    // and V8 calls this once, when it drops the allocator.
    drop(unsafe { Arc::from_raw(budget) });
}

/// How far [`near_heap_limit`] raises the limit: room for V8's largest
/// single object (a string of 2^29 two-byte characters is 1 GiB).
const UNWIND_ROOM: usize = 1 << 30;

/// Stops runs that pass their time limit, from its own thread, through the
/// isolate's thread-safe handle; and when a stopped run still has not ended
/// after a grace period (V8 checks for termination only at certain points,
/// and some builtins run long between them), declares the worker stuck.
pub(crate) struct Watchdog {
    shared: Arc<(Mutex<WatchState>, Condvar)>,
}

struct WatchState {
    deadline: Option<Instant>,
    /// Set when the watchdog fired: by then the run must have ended.
    stuck_at: Option<Instant>,
    /// When the watchdog thread wakes up by itself; `None` while it waits
    /// to be woken. Arming only wakes it when it would otherwise wake too
    /// late, so a run costs no thread switch for the watchdog.
    sleeping_until: Option<Instant>,
    handle: Option<v8::IsolateHandle>,
    fired: bool,
    stop: bool,
    /// Whether a run was armed since the watchdog last woke.
    armed_since_wake: bool,
}

impl Watchdog {
    /// Starts the watchdog thread; `on_stuck` runs on it (at most once per
    /// armed run) when a run outlives its limit by `grace`.
    pub(crate) fn start(
        name: String,
        grace: Duration,
        on_stuck: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let watchdog = Self {
            shared: Arc::new((
                Mutex::new(WatchState {
                    deadline: None,
                    stuck_at: None,
                    sleeping_until: None,
                    handle: None,
                    fired: false,
                    stop: false,
                    armed_since_wake: false,
                }),
                Condvar::new(),
            )),
        };
        let shared = Arc::clone(&watchdog.shared);
        std::thread::Builder::new().name(name).spawn(move || {
            let (lock, wakeup) = &*shared;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.stop {
                let now = Instant::now();
                if state.deadline.is_some_and(|deadline| now >= deadline) {
                    if let Some(handle) = &state.handle {
                        handle.terminate_execution();
                    }
                    state.fired = true;
                    state.deadline = None;
                    state.stuck_at = Some(now + grace);
                }
                if state.stuck_at.is_some_and(|stuck_at| now >= stuck_at) {
                    state.stuck_at = None;
                    on_stuck();
                }
                // While runs come, nap instead of waiting to be woken: an
                // arm then finds the watchdog due to wake before its
                // deadline and wakes no thread. Idle, it waits.
                let nap = std::mem::take(&mut state.armed_since_wake).then(|| now + grace / 4);
                match state.deadline.or(state.stuck_at).or(nap) {
                    None => {
                        state.sleeping_until = None;
                        state = wakeup.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                    Some(wake) => {
                        state.sleeping_until = Some(wake);
                        let wait = wake.saturating_duration_since(Instant::now());
                        state = wakeup
                            .wait_timeout(state, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        })?;
        Ok(watchdog)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms the watchdog for a run on the isolate behind `handle`.
    pub(crate) fn arm(&self, handle: v8::IsolateHandle, limit: Duration) {
        let mut state = self.state();
        state.handle = Some(handle);
        state.armed_since_wake = true;
        state.fired = false;
        state.stuck_at = None;
        let deadline = Instant::now() + limit;
        state.deadline = Some(deadline);
        if state.sleeping_until.is_none_or(|wakes| wakes > deadline) {
            self.shared.1.notify_one();
        }
    }

    /// Whether it fired during the armed run.
    pub(crate) fn fired(&self) -> bool {
        self.state().fired
    }

    /// Disarms it after the run; returns whether it fired.
    pub(crate) fn disarm(&self) -> bool {
        let mut state = self.state();
        state.deadline = None;
        state.stuck_at = None;
        std::mem::take(&mut state.fired)
    }

    pub(crate) fn stop(&self) {
        self.state().stop = true;
        self.shared.1.notify_one();
    }
}
