//! V8's process-wide setup and the limits that stop a run: a watchdog for
//! time, a near-heap-limit callback for memory.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

/// Initialises V8 once per process, with code generation from strings
/// (`eval`, `new Function`) switched off for every isolate. (This V8 has no
/// flag to hide `WebAssembly`; each context removes the global instead.)
pub(crate) fn initialize_v8() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        v8::V8::set_flags_from_string("--disallow-code-generation-from-strings");
        let platform = v8::new_default_platform(0, false).make_shared();
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
}

/// What the near-heap-limit callback reaches: the isolate's handle, to stop
/// the run, and a flag to say why it stopped.
pub(crate) struct HeapGuard {
    handle: v8::IsolateHandle,
    hit: AtomicBool,
}

/// An isolate with a heap limit whose breach stops the run instead of
/// aborting the process.
pub(crate) struct GuardedIsolate {
    isolate: ManuallyDrop<v8::OwnedIsolate>,
    guard: *mut HeapGuard,
}

impl GuardedIsolate {
    pub(crate) fn new(heap_bytes: usize) -> Self {
        let params = v8::CreateParams::default().heap_limits(0, heap_bytes);
        let mut isolate = v8::Isolate::new(params);
        let guard = Box::into_raw(Box::new(HeapGuard {
            handle: isolate.thread_safe_handle(),
            hit: AtomicBool::new(false),
        }));
        isolate.add_near_heap_limit_callback(near_heap_limit, guard.cast::<c_void>());
        Self {
            isolate: ManuallyDrop::new(isolate),
            guard,
        }
    }

    pub(crate) fn isolate(&mut self) -> &mut v8::OwnedIsolate {
        &mut self.isolate
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

/// How far [`near_heap_limit`] raises the limit: room for V8's largest
/// single object (a string of 2^29 two-byte characters is 1 GiB).
const UNWIND_ROOM: usize = 1 << 30;

/// Stops runs that pass their time limit, from its own thread, through the
/// isolate's thread-safe handle.
#[derive(Clone)]
pub(crate) struct Watchdog {
    shared: Arc<(Mutex<WatchState>, Condvar)>,
}

struct WatchState {
    deadline: Option<Instant>,
    /// When the watchdog thread wakes up by itself; `None` while it waits
    /// to be woken. Arming only wakes it when it would otherwise wake too
    /// late, so a run costs no thread switch for the watchdog.
    sleeping_until: Option<Instant>,
    handle: Option<v8::IsolateHandle>,
    fired: bool,
    stop: bool,
}

impl Watchdog {
    pub(crate) fn start(name: String) -> Self {
        let watchdog = Self {
            shared: Arc::new((
                Mutex::new(WatchState {
                    deadline: None,
                    sleeping_until: None,
                    handle: None,
                    fired: false,
                    stop: false,
                }),
                Condvar::new(),
            )),
        };
        let shared = Arc::clone(&watchdog.shared);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let (lock, wakeup) = &*shared;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.stop {
                match state.deadline {
                    None => {
                        state.sleeping_until = None;
                        state = wakeup.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                    Some(deadline) if Instant::now() >= deadline => {
                        if let Some(handle) = &state.handle {
                            handle.terminate_execution();
                        }
                        state.fired = true;
                        state.deadline = None;
                    }
                    Some(deadline) => {
                        state.sleeping_until = Some(deadline);
                        let wait = deadline.saturating_duration_since(Instant::now());
                        state = wakeup
                            .wait_timeout(state, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        });
        // Without a watchdog no run could be bounded; refuse to go on.
        if spawned.is_err() {
            std::process::abort();
        }
        watchdog
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms the watchdog for a run on the isolate behind `handle`.
    pub(crate) fn arm(&self, handle: v8::IsolateHandle, limit: Duration) {
        let mut state = self.state();
        state.handle = Some(handle);
        state.fired = false;
        let deadline = Instant::now() + limit;
        state.deadline = Some(deadline);
        if state.sleeping_until.is_none_or(|wakes| wakes > deadline) {
            self.shared.1.notify_one();
        }
    }

    /// Disarms it after the run; returns whether it fired.
    pub(crate) fn disarm(&self) -> bool {
        let mut state = self.state();
        state.deadline = None;
        std::mem::take(&mut state.fired)
    }

    pub(crate) fn stop(&self) {
        self.state().stop = true;
        self.shared.1.notify_one();
    }
}
