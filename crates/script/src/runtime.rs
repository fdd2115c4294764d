//! The public face: a runtime handle, its options, inputs and outputs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::station::Stations;

/// Limits of one script run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time a run may take.
    pub time: Duration,
    /// Heap an isolate may use; a run that needs more ends with
    /// [`ScriptError::HeapLimit`].
    pub heap_bytes: usize,
    /// Bytes a run may produce in messages, variable and slot writes,
    /// events and debug output together; a transform's new `jsonData` may
    /// take this much beyond the size of the response it reshapes.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(1),
            heap_bytes: 64 * 1024 * 1024,
            output_bytes: 1024 * 1024,
        }
    }
}

/// How a runtime is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Isolates, each with its watchdog thread: how many runs can be in V8
    /// at once (default: one more than the cores, 2 to 5). A run takes an
    /// idle one and runs on the caller's thread.
    pub workers: usize,
    /// Runs of one realm (one bot) waiting or running at once; its other
    /// runs wait their turn outside, so a bot whose scripts are slow cannot
    /// take every isolate (and the threads running them) from the others
    /// (default: all isolates but one). One conversation holds at most one
    /// run at a time.
    pub realm_share: usize,
    /// Limits of every run.
    pub limits: Limits,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        // One isolate more than the cores (at least two, at most five): a
        // bot may run as many scripts at once as there are cores to run
        // them, and one isolate is always left for the other bots. With as
        // many isolates as cores, a 2-core server ran one script at a
        // time per bot, and a turn's two scripts queued for it twice.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (cores + 1).clamp(2, 5);
        Self {
            workers,
            realm_share: workers - 1,
            limits: Limits::default(),
        }
    }
}

/// Where one bot's scripts run: a context of their own in each isolate (its
/// own frozen builtins and global), and a bounded share of the isolates.
/// When the last handle to it (its scripts hold one) is dropped, each
/// isolate drops its context and compiled functions at its next run.
/// Make one per bot load with [`ScriptRuntime::realm`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Realm {
    inner: Arc<RealmInner>,
}

/// `Debug` names the realm only: the conversations in flight are ids a
/// log must not list.
struct RealmInner {
    id: u64,
    name: String,
    /// Runs of this realm queued or running.
    share: Arc<Semaphore>,
    /// The run each conversation has queued or running, by conversation id.
    conversations: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Isolates hold it weakly, to know when to let the realm's context go.
    alive: Arc<()>,
}

impl std::fmt::Debug for RealmInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realm")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Realm {
    /// The name it was made with (the bot's).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Waits for a place in the realm's share and the conversation's turn.
    async fn admit(
        &self,
        conversation: &str,
    ) -> Result<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>), ScriptError> {
        // An empty id is no conversation (an `invoke`, a CLI run): those
        // share only the realm's bound.
        let turn = if conversation.is_empty() {
            None
        } else {
            let semaphore = {
                let mut conversations = self
                    .inner
                    .conversations
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Forget conversations nobody waits on, so the map stays as
                // small as the runs in flight.
                conversations.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
                Arc::clone(
                    conversations
                        .entry(conversation.to_owned())
                        .or_insert_with(|| Arc::new(Semaphore::new(1))),
                )
            };
            Some(
                semaphore
                    .acquire_owned()
                    .await
                    .map_err(|_| ScriptError::Unavailable)?,
            )
        };
        let share = Arc::clone(&self.inner.share)
            .acquire_owned()
            .await
            .map_err(|_| ScriptError::Unavailable)?;
        Ok((share, turn))
    }
}

/// A script checked by [`ScriptRuntime::compile`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Script {
    pub(crate) source: Arc<ScriptSource>,
    realm: Realm,
}

#[derive(Debug)]
pub(crate) struct ScriptSource {
    pub(crate) id: u64,
    /// The realm's id: the context it runs in in each isolate.
    pub(crate) realm: u64,
    /// Whether the realm is still held (see `RealmInner::alive`).
    pub(crate) realm_alive: Weak<()>,
    pub(crate) owner: String,
    pub(crate) code: String,
}

impl Script {
    /// Who the script belongs to, as named in errors (e.g.
    /// `integration search-articles, transformScript`).
    pub fn owner(&self) -> &str {
        &self.source.owner
    }
}

/// The response a transform script reshapes: a global `name` (e.g.
/// `api_FAQS`) whose `jsonData` is `{"api_FAQS": <body>}` as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiData {
    /// The global's name, `api_` followed by the response data variable.
    pub name: String,
    /// The JSON text the script sees in `jsonData`.
    pub json_data: String,
}

/// What a run sees through `botContext`.
#[derive(Clone, Debug, Default)]
pub struct ScriptInput {
    /// Bot variables (custom data fields included, as `RDVN.key`).
    pub variables: HashMap<String, String>,
    /// The current dialog's slots, by name (`getSlotValue`).
    pub slots: HashMap<String, String>,
    /// Environment variables of the bot.
    pub env: HashMap<String, String>,
    /// The user's current message.
    pub user_message: String,
    /// The conversation's id.
    pub conversation_id: String,
    /// The bot's id.
    pub chat_bot_id: String,
    /// The user's id on their platform.
    pub user_platform_id: String,
    /// The payload of the quick reply the user chose, if any.
    pub quick_reply_payload: String,
    /// The last call's status (`None` after a transport failure).
    pub api_status: Option<u16>,
    /// Whether the last call succeeded (status 200 or 201).
    pub api_success: bool,
    /// The response a transform script works on.
    pub api: Option<ApiData>,
    /// The Conversation Context Service as the run starts: what the store
    /// held for the bot, this user and this conversation.
    pub context: crate::ContextSnapshot,
    /// What the platform sent with the turn (its attributes), prepared
    /// once per turn and shared by its runs.
    pub platform: Arc<crate::PlatformData>,
    /// The dialog whose starter matched the turn's message
    /// (`getDialogStarterIntent`), if one did.
    pub dialog_starter_intent: Option<String>,
    /// The time `getHoursType` classifies, in milliseconds since the Unix
    /// epoch (the engine gives the turn's time); `None`: the system clock
    /// when the function is called.
    pub now_ms: Option<i64>,
}

/// How long a variable written by a script lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// This turn only (`persistForSession` false).
    Request,
    /// The conversation (`persistForSession` true).
    Session,
    /// The user, across conversations (`persistForever` true).
    Forever,
}

/// A `setBotVariable` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableWrite {
    /// The variable.
    pub name: String,
    /// Its new value, as a string.
    pub value: String,
    /// How long it lives.
    pub persistence: Persistence,
}

/// A `setSlotValue` call: a slot of the current dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotWrite {
    /// The slot.
    pub name: String,
    /// Its new value, as a string.
    pub value: String,
}

/// A `logCustomEvent` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomEvent {
    /// The user message it refers to.
    pub user_message: String,
    /// The event's name.
    pub name: String,
    /// Free detail.
    pub detail: String,
}

/// A quick reply: its title, and the payload a click sends back (written
/// `Title~payload` in scripts, the payload optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuickReply {
    /// What the user sees (at most 20 characters).
    pub title: String,
    /// What a click sends back as the turn's payload, if any.
    pub payload: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptOutput {
    /// Messages to send, in order.
    pub messages: Vec<String>,
    /// Variable writes, in order.
    pub variables: Vec<VariableWrite>,
    /// Slot writes, in order.
    pub slots: Vec<SlotWrite>,
    /// The text given to `setTriggerNextMessage`, if any (the last one).
    pub trigger: Option<String>,
    /// Custom events, in order.
    pub events: Vec<CustomEvent>,
    /// `printDebugMessage` output, in order.
    pub debug: Vec<String>,
    /// The transform's `jsonData` after the run, when it changed.
    pub json_data: Option<String>,
    /// Whether `sendImmediateReply` ended the script.
    pub immediate_reply: bool,
    /// `printDebugMessage` calls past [`DEBUG_MESSAGES_PER_RUN`]: counted,
    /// not kept.
    pub debug_dropped: usize,
    /// `logCustomEvent` calls past [`EVENTS_PER_RUN`]: counted, not kept.
    pub events_dropped: usize,
    /// Writes to the Conversation Context Service, in order (the engine
    /// makes them once the run is over).
    pub context: Vec<crate::ContextWrite>,
    /// Platform actions, in order (one Transfer Bot Context at most).
    pub actions: Vec<crate::Action>,
    /// The quick replies of messages sent with
    /// `sendMessageWithQuickReplies`: the message's index in `messages`,
    /// and its replies.
    pub quick_reply_messages: Vec<(usize, Vec<QuickReply>)>,
    /// The last `addQuickReplies` call's replies: for the last message the
    /// interaction sends.
    pub added_quick_replies: Option<Vec<QuickReply>>,
    /// The last `setMessageDelay` call's delay, in milliseconds: for every
    /// message of the run.
    pub message_delay_ms: Option<u32>,
}

/// `printDebugMessage` calls a run keeps; later ones are counted in
/// [`ScriptOutput::debug_dropped`].
pub const DEBUG_MESSAGES_PER_RUN: usize = 100;

/// `logCustomEvent` calls a run keeps; later ones are counted in
/// [`ScriptOutput::events_dropped`].
pub const EVENTS_PER_RUN: usize = 100;

/// Bytes kept of a debug message and of each part of a custom event (UTF-8,
/// cut at a character boundary; a cut text ends with `…`).
pub const DEBUG_TEXT_BYTES: usize = 4096;

/// What a run did and how it ended, from
/// [`ScriptRuntime::run_keeping_effects`]. As in the product, `botContext`
/// calls take effect when they are made: a script that throws keeps what it
/// did before it threw. A run stopped by a limit (time, heap, output) keeps
/// nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptRun {
    /// What took effect: everything a completed run did, what a failed run
    /// did before its error, nothing when a limit stopped it.
    pub output: ScriptOutput,
    /// Why the run did not complete, if it did not.
    pub error: Option<ScriptError>,
}

impl ScriptRun {
    /// The output of a run that completed, or its error (dropping what a
    /// failed run did before it).
    pub fn into_result(self) -> Result<ScriptOutput, ScriptError> {
        match self.error {
            None => Ok(self.output),
            Some(error) => Err(error),
        }
    }
}

impl From<ScriptError> for ScriptRun {
    /// A run that failed before doing anything, or whose effects are
    /// dropped (a limit).
    fn from(error: ScriptError) -> Self {
        Self {
            output: ScriptOutput::default(),
            error: Some(error),
        }
    }
}

/// Why a script did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script does not parse.
    #[error("{owner}: syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// Who the script belongs to.
        owner: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// V8's message.
        message: String,
    },
    /// The script threw.
    #[error("{owner}: {message} (line {line})")]
    Exception {
        /// Who the script belongs to.
        owner: String,
        /// The exception as text.
        message: String,
        /// 1-based line, 0 when unknown.
        line: usize,
    },
    /// The run took longer than allowed.
    #[error("{owner}: stopped after {}ms, the script time limit; nothing it did is kept", limit.as_millis())]
    Timeout {
        /// Who the script belongs to.
        owner: String,
        /// The limit.
        limit: Duration,
    },
    /// The run needed more memory than allowed.
    #[error("{owner}: stopped at the {limit}-byte script heap limit; nothing it did is kept")]
    HeapLimit {
        /// Who the script belongs to.
        owner: String,
        /// The limit.
        limit: usize,
    },
    /// The run produced more output than allowed.
    #[error(
        "{owner}: produced more than {limit} bytes of messages, variables, slots and events; nothing it did is kept"
    )]
    OutputLimit {
        /// Who the script belongs to.
        owner: String,
        /// The limit.
        limit: usize,
    },
    /// The runtime's workers are gone (a bug, or shutdown).
    #[error("the script runtime is not running")]
    Unavailable,
}

impl ScriptError {
    /// A stable name of the error's kind, for metrics and API results.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "syntax",
            Self::Exception { .. } => "exception",
            Self::Timeout { .. } => "timeout",
            Self::HeapLimit { .. } => "heap-limit",
            Self::OutputLimit { .. } => "output-limit",
            Self::Unavailable => "unavailable",
        }
    }
}

/// V8 heap use, summed over isolates ([`ScriptRuntime::heap_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Isolates counted (those idle, with a heap).
    pub isolates: usize,
    /// Bytes of objects, live or garbage not yet collected.
    pub used_bytes: usize,
    /// Bytes V8 holds for the heaps.
    pub total_bytes: usize,
    /// Full collections the isolates made after runs, to keep promoted
    /// garbage from growing their heaps.
    pub collections: u64,
}

/// Owns the isolates scripts run in. Cheap to clone; clones share them.
/// Dropping the last clone drops them.
#[derive(Clone, Debug)]
pub struct ScriptRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stations: Arc<Stations>,
    next_id: AtomicU64,
    realm_share: usize,
}

impl ScriptRuntime {
    /// Makes the isolates.
    pub fn new(options: RuntimeOptions) -> Self {
        crate::limits::initialize_v8();
        Self {
            inner: Arc::new(Inner {
                stations: Stations::new(options.workers.max(1), options.limits),
                next_id: AtomicU64::new(1),
                realm_share: options.realm_share.max(1),
            }),
        }
    }

    /// A new realm for one bot's scripts (one per bot load: a reloaded bot
    /// gets a fresh context, and isolates let the old one go).
    pub fn realm(&self, name: &str) -> Realm {
        Realm {
            inner: Arc::new(RealmInner {
                id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                name: name.to_owned(),
                share: Arc::new(Semaphore::new(self.inner.realm_share)),
                conversations: Mutex::new(HashMap::new()),
                alive: Arc::new(()),
            }),
        }
    }

    /// Whether an isolate is there to run scripts: false while every one
    /// is held by a run that termination could not stop (each is replaced
    /// as soon as it is found stuck, up to as many as the runtime has;
    /// this stays false only if no watchdog thread could be made).
    pub fn is_ready(&self) -> bool {
        self.inner.stations.healthy() > 0
    }

    /// Isolates given up on so far: a run stopped at its time limit that
    /// had not ended after as long again (a builtin that does not check for
    /// termination). Each was replaced. Also counted in
    /// `patchbay_script_workers_replaced_total`.
    pub fn replaced_workers(&self) -> usize {
        self.inner.stations.replaced()
    }

    /// The V8 heaps of the isolates idle now (it waits for one if none
    /// is): what a soak or a metric watches to tell garbage waiting for a
    /// collection from memory held.
    pub async fn heap_usage(&self) -> Result<HeapUsage, ScriptError> {
        let mut usage = HeapUsage::default();
        for mut lease in self.inner.stations.lease_idle().await? {
            if let Some((used, total, collections)) = lease.station()?.heap_usage() {
                usage.isolates += 1;
                usage.used_bytes += used;
                usage.total_bytes += total;
                usage.collections += collections;
            }
        }
        Ok(usage)
    }

    /// Compiles a script in `realm` in every idle isolate (at bot load, so
    /// that no run compiles; an isolate busy meanwhile compiles it at its
    /// first run) and returns its handle, or its syntax error.
    pub async fn compile(
        &self,
        realm: &Realm,
        owner: &str,
        code: &str,
    ) -> Result<Script, ScriptError> {
        let script = Script {
            source: Arc::new(ScriptSource {
                id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                realm: realm.inner.id,
                realm_alive: Arc::downgrade(&realm.inner.alive),
                owner: owner.to_owned(),
                code: code.to_owned(),
            }),
            realm: realm.clone(),
        };
        for mut lease in self.inner.stations.lease_idle().await? {
            // A bot file's script may be large: its parse holds this thread
            // only, as a run does.
            let station = lease.station()?;
            on_this_thread(|| station.compile_only(&script.source))?;
        }
        Ok(script)
    }

    /// Runs a script in its realm's context, on this thread, leaving the
    /// context as it found it: the output of a run that completed, or its
    /// error (what a script that threw did before it is dropped; see
    /// [`ScriptRuntime::run_keeping_effects`]).
    pub async fn run(
        &self,
        script: &Script,
        input: ScriptInput,
    ) -> Result<ScriptOutput, ScriptError> {
        self.run_keeping_effects(script, input).await.into_result()
    }

    /// Runs a script as [`ScriptRuntime::run`] does, and returns what took
    /// effect together with the error, if any: a script that threw keeps
    /// the `botContext` calls it made before (messages, variables, slots,
    /// the trigger, debug output, events); a run stopped by a limit keeps
    /// nothing.
    ///
    /// It waits (asynchronously) for its realm's share, its conversation's
    /// previous run and an idle isolate; the run itself is a call on this
    /// thread that returns within the time limit (docs/script.md says what
    /// that holds up).
    pub async fn run_keeping_effects(&self, script: &Script, input: ScriptInput) -> ScriptRun {
        let span = tracing::debug_span!("script", owner = %script.source.owner);
        let started = std::time::Instant::now();
        let run = async {
            let _admitted = match script.realm.admit(&input.conversation_id).await {
                Ok(admitted) => admitted,
                Err(error) => return ScriptRun::from(error),
            };
            let mut lease = match self.inner.stations.lease().await {
                Ok(lease) => lease,
                Err(error) => return ScriptRun::from(error),
            };
            let station = match lease.station() {
                Ok(station) => station,
                Err(error) => return ScriptRun::from(error),
            };
            on_this_thread(|| match station.run(&script.source, input) {
                Ok(output) => ScriptRun {
                    output,
                    error: None,
                },
                Err(failed) => failed,
            })
        }
        .instrument(span)
        .await;
        metrics::histogram!("patchbay_script_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let outcome = run.error.as_ref().map_or("ok", ScriptError::kind);
        metrics::counter!("patchbay_script_runs_total", "outcome" => outcome).increment(1);
        run
    }
}

/// Runs `run` (a script run: V8 on this thread) here. On a multi-threaded
/// tokio runtime, tokio is told first that this thread blocks: its worker's
/// queue and the I/O driver go to another thread while the run lasts. A
/// run ends within its limit, but a builtin that never checks for
/// termination can hold its thread far longer; it must hold only its own
/// turn, never the server (an outside attack froze `/healthz` for 100 s
/// before this). On a current-thread runtime (a CLI run, a test) the run
/// is a plain call: there is no other worker to hand the rest to.
fn on_this_thread<T>(run: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(run)
    } else {
        run()
    }
}
