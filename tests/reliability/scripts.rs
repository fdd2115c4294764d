//! Hostile scripts through whole turns: each ends with a clear script error
//! (or is simply harmless) in bounded time, the turn goes on to its call,
//! nothing crosses conversations, and many such turns in a row leave the
//! process as it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_engine::script::{Limits, RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use patchbay_tests::servers::{self, reply};

use crate::{Row, item_bot, report, rss_kib};

/// The scripts' time limit here: short, so that many turns stay quick.
const TIME_LIMIT: Duration = Duration::from_millis(100);

/// What a hostile pre-process script must end as.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A script error containing one of these.
    Error(&'static [&'static str]),
    /// No error, and this message from the script.
    Says(&'static str),
}

const CASES: &[(&str, &str, Expect)] = &[
    (
        "infinite-loop",
        "while (true) {}",
        Expect::Error(&["time limit"]),
    ),
    (
        "caught-termination",
        "for (;;) { try { while (true) {} } catch (e) {} }",
        Expect::Error(&["time limit"]),
    ),
    (
        "heap-bomb",
        "var keep = []; while (true) { keep.push(new Array(1000000).fill(1.5)); }",
        // Whichever limit it reaches first (a slow build fills the heap
        // more slowly than the clock runs).
        Expect::Error(&["heap limit", "time limit"]),
    ),
    (
        "deep-recursion",
        "function down(n) { return down(n + 1) + 1; } down(0);",
        Expect::Error(&["RangeError"]),
    ),
    (
        "string-100mb",
        "botContext.sendMessage('x'.repeat(100 * 1024 * 1024));",
        // Flattening 100 MiB is one builtin call, which may outlast the
        // 100 ms limit on a slow machine.
        Expect::Error(&[
            "heap limit",
            "Invalid string length",
            "bytes of messages",
            "time limit",
        ]),
    ),
    (
        // One huge allocation: V8 builds it as a rope, so this is cheap
        // and fine; a flat string of that size would be over the heap
        // limit in one go (see `string-100mb`).
        "largest-string",
        "var s = 'x'.repeat(Math.pow(2, 29) - 24); botContext.sendMessage(String(s.length));",
        Expect::Says("536870888"),
    ),
    (
        "variable-10mb",
        "botContext.setBotVariable('big', 'x'.repeat(10 * 1024 * 1024), true, false);",
        Expect::Error(&["bytes of messages"]),
    ),
    (
        "host-probes",
        "botContext.sendMessage([typeof require, typeof process, typeof fetch, typeof Deno, typeof WebAssembly, typeof setTimeout, typeof XMLHttpRequest].join(','));",
        Expect::Says("undefined,undefined,undefined,undefined,undefined,undefined,undefined"),
    ),
    (
        "dynamic-import",
        "var loaded = 'no'; import('node:fs').then(function () { loaded = 'yes'; }, function () {}); botContext.sendMessage(loaded);",
        Expect::Says("no"),
    ),
    ("eval", "eval('1 + 1');", Expect::Error(&["EvalError"])),
    (
        "function-from-string",
        "new Function('return 1')();",
        Expect::Error(&["EvalError"]),
    ),
    (
        "prototype-pollution",
        "Object.prototype.polluted = 'yes'; Array.prototype.map = null; JSON.stringify = null; botContext.sendMessage(typeof ({}).polluted + ',' + typeof [].map);",
        Expect::Says("undefined,function"),
    ),
    (
        "global-write",
        "leaked = 'secret of conversation A'; globalThis.alsoLeaked = 'A'; botContext.sendMessage('written');",
        Expect::Says("written"),
    ),
    (
        "global-read",
        "botContext.sendMessage(typeof leaked + ',' + typeof alsoLeaked + ',' + typeof polluted);",
        Expect::Says("undefined,undefined,undefined"),
    ),
];

fn bot() -> String {
    let interactions: Vec<(&str, &str)> =
        CASES.iter().map(|(name, code, _)| (*name, *code)).collect();
    item_bot("hostile", &interactions)
}

async fn engine(upstream: &servers::Server) -> Engine {
    let bot = patchbay_tests::bot("hostile.yaml", &bot());
    let base = format!("http://{}", upstream.addr);
    let env = Arc::new(move |name: &str| (name == "UPSTREAM").then(|| base.clone()));
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        realm_share: 1,
        limits: Limits {
            time: TIME_LIMIT,
            heap_bytes: 32 * 1024 * 1024,
            output_bytes: 256 * 1024,
        },
    });
    Engine::new(bot, EngineOptions::new(env, scripts))
        .await
        .expect("engine")
}

async fn run_case(engine: &Engine, index: usize, name: &str, expect: Expect) -> Row {
    let state = ConversationState {
        // A new conversation each time: nothing may carry over.
        conversation_id: format!("conversation-{index}"),
        ..ConversationState::default()
    };
    let started = Instant::now();
    let turn = engine
        .run_turn(state, Start::Interaction(name.to_owned()), "")
        .await;
    let time = started.elapsed();
    let (observed, pass) = match turn {
        Ok(turn) => {
            let errors = turn
                .steps
                .iter()
                .flat_map(|step| step.script_errors.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            let went_on = turn.messages.last().is_some_and(|m| m == "FOUND Blue mug");
            let pass = went_on
                && match expect {
                    Expect::Error(needles) => needles.iter().any(|needle| errors.contains(needle)),
                    Expect::Says(text) => {
                        errors.is_empty() && turn.messages.first().is_some_and(|m| m == text)
                    }
                };
            let said = turn.texts().join(" / ");
            let said: String = said.chars().take(120).collect();
            (format!("errors: [{errors}]; bot: {said}"), pass)
        }
        Err(error) => (format!("turn error: {error}"), false),
    };
    Row {
        case: name.to_owned(),
        expected: match expect {
            Expect::Error(needles) => {
                format!("script error ({}), turn goes on", needles.join(" or "))
            }
            Expect::Says(text) => format!("no error, says `{text}`"),
        },
        observed,
        // Bounded: the time limit, an isolate's replacement, the call.
        pass: pass && time < TIME_LIMIT + Duration::from_secs(2),
        time,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_scripts_end_cleanly_and_leave_nothing_behind() {
    let upstream = servers::http(|_| async { reply(200, r#"{"name":"Blue mug"}"#) }).await;
    let engine = engine(&upstream).await;
    let mut rows = Vec::new();
    for (index, (name, _, expect)) in CASES.iter().enumerate() {
        rows.push(run_case(&engine, index, name, *expect).await);
    }
    // Many such turns in a row: every one still passes, memory stays.
    let turns: usize = std::env::var("PATCHBAY_RELIABILITY_TURNS")
        .ok()
        .and_then(|turns| turns.parse().ok())
        .unwrap_or(2 * CASES.len());
    let before = rss_kib();
    let started = Instant::now();
    let mut failures = 0;
    for turn in 0..turns {
        let (name, _, expect) = CASES[turn % CASES.len()];
        if !run_case(&engine, turn, name, expect).await.pass {
            failures += 1;
        }
    }
    let after = rss_kib();
    rows.push(Row {
        case: format!("{turns} hostile turns in a row"),
        expected: "every one as above; RSS within 64 MiB".to_owned(),
        observed: format!("{failures} failed; RSS {before} KiB → {after} KiB"),
        time: started.elapsed(),
        pass: failures == 0 && after.saturating_sub(before) < 64 * 1024,
    });
    report("scripts", &rows);
}
