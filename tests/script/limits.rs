//! Limits: time, heap, recursion, output; each ends the run with a clear
//! error, and the runtime keeps working.

use std::time::{Duration, Instant};

use patchbay_script::{ScriptError, ScriptInput};

use crate::{run, runtime};

#[tokio::test]
async fn syntax_errors_name_line_and_column() {
    let runtime = runtime();
    let error = runtime
        .compile(
            &runtime.realm("test bot"),
            "integration search, transformScript",
            "var a = 1;\nvar b = ;\n",
        )
        .await
        .expect_err("syntax error");
    match error {
        ScriptError::Syntax {
            owner,
            line,
            column,
            message,
        } => {
            assert_eq!(owner, "integration search, transformScript");
            assert_eq!((line, column), (2, 9));
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_endless_loop_ends_at_the_time_limit() {
    let runtime = runtime();
    let started = Instant::now();
    let error = run(&runtime, "while (true) {}", ScriptInput::default())
        .await
        .expect_err("stopped");
    let elapsed = started.elapsed();
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    assert!(
        elapsed < Duration::from_millis(300).mul_f64(1.5),
        "took {elapsed:?}"
    );
    assert_still_serves(&runtime).await;
}

/// The runtime goes on after a run that broke a limit.
async fn assert_still_serves(runtime: &patchbay_script::ScriptRuntime) {
    let after = run(
        runtime,
        "botContext.sendMessage('still here')",
        ScriptInput::default(),
    )
    .await
    .expect("the runtime goes on");
    assert_eq!(after.messages, vec!["still here"]);
}

#[tokio::test]
async fn a_caught_termination_is_still_a_timeout() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "for (;;) { try { while (true) {} } catch (e) { botContext.sendMessage('caught'); } }",
        ScriptInput::default(),
    )
    .await
    .expect_err("stopped");
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn a_heap_bomb_ends_cleanly_and_the_next_run_works() {
    let runtime = runtime();
    let error = run(
        &runtime,
        // Big steps, so that the heap fills well before the time limit even
        // on a slow, loaded machine.
        "var keep = []; while (true) { keep.push(new Array(1000000).fill(1.5)); }",
        ScriptInput::default(),
    )
    .await
    .expect_err("heap limit");
    assert!(matches!(error, ScriptError::HeapLimit { .. }), "{error:?}");
    let after = run(
        &runtime,
        "botContext.sendMessage('recovered')",
        ScriptInput::default(),
    )
    .await
    .expect("a fresh isolate");
    assert_eq!(after.messages, vec!["recovered"]);
}

#[tokio::test]
async fn deep_recursion_is_a_range_error() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "function f(n) { return f(n + 1) + 1; } f(0);",
        ScriptInput::default(),
    )
    .await
    .expect_err("stack overflow");
    match error {
        ScriptError::Exception { message, .. } => {
            assert!(
                message.contains("Maximum call stack size exceeded"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn output_is_bounded() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "for (var i = 0; i < 100000; i++) { botContext.sendMessage('x'.repeat(100)); }",
        ScriptInput::default(),
    )
    .await
    .expect_err("too much output");
    assert!(
        matches!(error, ScriptError::OutputLimit { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_thrown_error_names_its_line() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "var a = 1;\nthrow new TypeError('bad input');",
        ScriptInput::default(),
    )
    .await
    .expect_err("throws");
    assert_eq!(
        error.to_string(),
        "test script: TypeError: bad input (line 2)"
    );
}

fn transform_input(json: &str) -> ScriptInput {
    ScriptInput {
        api: Some(patchbay_script::ApiData {
            name: "api_X".to_owned(),
            json_data: json.to_owned(),
        }),
        ..ScriptInput::default()
    }
}

/// Code that would run after the time limit: a promise job that loops, a
/// `jsonData` getter or `toJSON` the host reads after the script, an
/// exception whose `toString` loops. Each is stopped by the limit, reported
/// as a timeout (never as success), and the worker goes on.
#[tokio::test]
async fn nothing_runs_past_the_time_limit() {
    let runtime = runtime();
    let cases = [
        "Promise.resolve().then(function () { for (;;) {} }); for (;;) {}",
        "Promise.resolve().then(function () { for (;;) {} });",
        "function again() { Promise.resolve().then(again); } again();",
        "Object.defineProperty(api_X, 'jsonData', { get: function () { for (;;) {} } });",
        "api_X.jsonData = { toJSON: function () { for (;;) {} } };",
        "throw { toString: function () { for (;;) {} } };",
    ];
    for code in cases {
        let started = Instant::now();
        let error = run(&runtime, code, transform_input(r#"{"api_X":{}}"#))
            .await
            .expect_err(code);
        assert!(
            matches!(error, ScriptError::Timeout { .. }),
            "`{code}`: {error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "`{code}` took {:?}",
            started.elapsed()
        );
        assert_still_serves(&runtime).await;
    }
    // Each was stopped by the limit itself, not by giving up on a worker.
    assert_eq!(runtime.replaced_workers(), 0);
}

/// A builtin that does not check for termination (`join` over a 32 MiB
/// typed array, about 0.3 s, far past the 10 ms limit and its 100 ms
/// grace) keeps running after the limit: its caller, whose thread it runs
/// on, gets the timeout when it returns; the isolate is replaced and
/// counted, and the next run is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolate_that_cannot_be_stopped_is_replaced() {
    let runtime = patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
        workers: 1,
        realm_share: 1,
        limits: patchbay_script::Limits {
            time: Duration::from_millis(10),
            heap_bytes: 64 * 1024 * 1024,
            output_bytes: 64 * 1024,
        },
    });
    let error = run(&runtime, STUCK, ScriptInput::default())
        .await
        .expect_err("stopped");
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    assert_eq!(runtime.replaced_workers(), 1);
    assert!(runtime.is_ready());
    let after = run(
        &runtime,
        "botContext.sendMessage('new isolate')",
        ScriptInput::default(),
    )
    .await
    .expect("a new isolate");
    assert_eq!(after.messages, vec!["new isolate"]);
}

/// Takes about 0.3 s per 32 MiB in `join`, which checks for no termination.
const STUCK: &str = "new Uint8Array(2 ** 25).join().length";

#[tokio::test]
async fn array_buffers_are_bounded() {
    let runtime = runtime();
    let before = patchbay_tests::rss_kib("self");
    for code in [
        "var b = new ArrayBuffer(0, { maxByteLength: 2 ** 31 }); b.resize(2 ** 31); new Uint8Array(b).fill(1);",
        "var b = new Uint8Array(1).buffer.constructor; var r = new b(0, { maxByteLength: 2 ** 31 }); r.resize(2 ** 31);",
        "new Uint8Array(512 * 1024 * 1024).fill(1);",
        "var keep = []; for (var i = 0; i < 64; i++) { keep.push(new Uint8Array(16 * 1024 * 1024).fill(1)); }",
    ] {
        let started = Instant::now();
        let error = run(&runtime, code, ScriptInput::default())
            .await
            .expect_err(code);
        // V8 refuses the allocation (a RangeError), or counts the
        // refused memory against the heap and stops the run.
        match &error {
            ScriptError::Exception { message, .. } => {
                assert!(message.contains("RangeError"), "`{code}`: {message}")
            }
            ScriptError::HeapLimit { .. } => {}
            other => panic!("`{code}`: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "`{code}` took {:?}",
            started.elapsed()
        );
    }
    let growth = patchbay_tests::rss_kib("self").saturating_sub(before);
    assert!(growth < 256 * 1024, "RSS grew by {growth} KiB");
    let fits = run(
        &runtime,
        "botContext.sendMessage(String(new Uint8Array(1024 * 1024).fill(7)[5]));",
        ScriptInput::default(),
    )
    .await
    .expect("a buffer within the budget");
    assert_eq!(fits.messages, vec!["7"]);
}

/// A transform's `jsonData` is output like messages and variables.
#[tokio::test]
async fn json_data_counts_against_the_output_limit() {
    let runtime = runtime();
    for code in [
        "api_X.jsonData = 'x'.repeat(20 * 1024 * 1024);",
        "api_X.jsonData = { big: 'x'.repeat(1024 * 1024) };",
    ] {
        let error = run(&runtime, code, transform_input(r#"{"api_X":{}}"#))
            .await
            .expect_err(code);
        assert!(
            matches!(error, ScriptError::OutputLimit { .. }),
            "`{code}`: {error:?}"
        );
    }
    let small = run(
        &runtime,
        "api_X.jsonData = JSON.stringify({ api_X: { n: 1 } });",
        transform_input(r#"{"api_X":{}}"#),
    )
    .await
    .expect("fits");
    assert_eq!(small.json_data.as_deref(), Some(r#"{"api_X":{"n":1}}"#));
}

/// Two callers keep a bot's slow script running on every worker they can
/// get; another bot's runs keep their latency, because one realm holds at
/// most its share of the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_bot_does_not_starve_the_others() {
    let limit = Duration::from_millis(500);
    let runtime = patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
        workers: 2,
        realm_share: 1,
        limits: patchbay_script::Limits {
            time: limit,
            ..patchbay_script::Limits::default()
        },
    });
    let slow = runtime.realm("slow");
    let quick = runtime.realm("quick");
    // Catastrophic backtracking, as a hostile input makes a bot's regex do.
    let backtrack = runtime
        .compile(
            &slow,
            "slow",
            "/^(a+)+$/.test(botContext.getCurrentUserMessage());",
        )
        .await
        .expect("compiles");
    let answer = runtime
        .compile(&quick, "quick", "botContext.sendMessage('ok');")
        .await
        .expect("compiles");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hogs = Vec::new();
    for caller in 0..4 {
        let (runtime, backtrack, stop) = (runtime.clone(), backtrack.clone(), stop.clone());
        hogs.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let input = ScriptInput {
                    user_message: format!("{}!", "a".repeat(40)),
                    conversation_id: format!("hog-{caller}"),
                    ..ScriptInput::default()
                };
                let _ = runtime.run(&backtrack, input).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::new();
    for turn in 0..20 {
        let started = Instant::now();
        let input = ScriptInput {
            conversation_id: format!("quick-{turn}"),
            ..ScriptInput::default()
        };
        let output = runtime.run(&answer, input).await.expect("runs");
        assert_eq!(output.messages, vec!["ok"]);
        times.push(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for hog in hogs {
        let _ = hog.await;
    }
    times.sort();
    let p50 = times[times.len() / 2];
    // Without the share, each quick run waits behind the slow ones (about
    // the time limit); with it, one worker is always free for it.
    assert!(p50 < limit / 4, "quick bot's p50 {p50:?} behind a slow bot");
}

/// After `sendImmediateReply` nothing of the script runs: not a promise job
/// it queued before (which here would rewrite the transform's jsonData, or
/// spin), so the reply stands.
#[tokio::test]
async fn nothing_runs_after_an_immediate_reply() {
    let runtime = runtime();
    for code in [
        "Promise.resolve().then(function () { api_X.jsonData = '{\"api_X\":\"late\"}'; }); botContext.sendImmediateReply('hi');",
        "Promise.resolve().then(function () { for (;;) {} }); botContext.sendImmediateReply('hi');",
        // A reply from a promise job or from jsonData's getter is a reply.
        "Promise.resolve().then(function () { botContext.sendImmediateReply('hi'); for (;;) {} });",
        "Object.defineProperty(api_X, 'jsonData', { get: function () { botContext.sendImmediateReply('hi'); for (;;) {} } });",
    ] {
        let output = run(&runtime, code, transform_input(r#"{"api_X":{}}"#))
            .await
            .unwrap_or_else(|error| panic!("`{code}`: {error:?}"));
        assert_eq!(output.messages, vec!["hi"], "`{code}`");
        assert_eq!(output.json_data, None, "`{code}`");
    }
}

/// A transform may rewrite its response whole (as big as it came), but not
/// amplify it past the output limit.
#[tokio::test]
async fn json_data_may_be_as_large_as_the_response() {
    let runtime = runtime();
    let body = format!(r#"{{"api_X":{{"text":"{}"}}}}"#, "x".repeat(200 * 1024));
    let rewritten = run(
        &runtime,
        "var data = JSON.parse(api_X.jsonData); data.api_X.seen = true; api_X.jsonData = JSON.stringify(data);",
        transform_input(&body),
    )
    .await
    .expect("a rewrite the size of the response");
    assert!(
        rewritten
            .json_data
            .is_some_and(|json| json.contains("\"seen\":true"))
    );
}

/// A given-up isolate holds its caller's thread until its builtin returns,
/// so no more are replaced than the runtime has isolates: a second stuck
/// run, while the first still is, gets no replacement; both isolates come
/// back when their builtins return.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn stuck_isolates_are_replaced_only_up_to_the_isolate_count() {
    let runtime = patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
        workers: 1,
        realm_share: 2,
        limits: patchbay_script::Limits {
            time: Duration::from_millis(10),
            heap_bytes: 128 * 1024 * 1024,
            output_bytes: 64 * 1024,
        },
    });
    // About 0.6 s: the second run is found stuck while the first still is.
    let stuck = "new Uint8Array(2 ** 26).join().length";
    let runs = (0..2).map(|_| {
        let runtime = runtime.clone();
        tokio::spawn(async move { run(&runtime, stuck, ScriptInput::default()).await })
    });
    for handle in runs.collect::<Vec<_>>() {
        let error = handle.await.expect("joined").expect_err("stopped");
        assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    }
    assert_eq!(runtime.replaced_workers(), 1, "only one replacement");
    assert!(runtime.is_ready(), "the stuck isolates came back");
    assert_still_serves(&runtime).await;
}

/// A `jsonData` getter or `toJSON` that throws is the script's error, not a
/// success with the response unchanged.
#[tokio::test]
async fn a_throwing_json_data_is_an_error() {
    let runtime = runtime();
    for code in [
        "Object.defineProperty(api_X, 'jsonData', { get: function () { throw new TypeError('no data'); } });",
        "api_X.jsonData = { toJSON: function () { throw new TypeError('no data'); } };",
    ] {
        let error = run(&runtime, code, transform_input(r#"{"api_X":{}}"#))
            .await
            .expect_err(code);
        match error {
            ScriptError::Exception { message, .. } => {
                assert!(message.contains("no data"), "`{code}`: {message}")
            }
            other => panic!("`{code}`: {other:?}"),
        }
    }
}

/// Arrays given to `botContext` are read in native code, which the time
/// limit cannot stop, and empty elements cost no output: their length is
/// bounded before any element is read (an attack with ten million empty
/// strings held workers for minutes and gigabytes).
#[tokio::test]
async fn array_arguments_are_bounded_before_they_are_read() {
    let runtime = crate::runtime();
    for call in [
        r#"botContext.getHoursType(new Array(4000000).fill(""), "UTC")"#,
        r#"botContext.evaluateOptions("x", new Array(4000000).fill(""))"#,
        r#"botContext.sendMessages(new Array(4000000).fill(""))"#,
        r#"botContext.sendImmediateReply(new Array(4000000).fill(""))"#,
    ] {
        let code = format!(
            "try {{ {call}; botContext.sendMessage('read'); }} catch (e) {{ botContext.sendMessage(e.name + ': ' + e.message); }}"
        );
        let output = crate::run(&runtime, &code, ScriptInput::default())
            .await
            .unwrap_or_else(|error| panic!("{call}: {error}"));
        let said = output.messages.join(" / ");
        assert!(
            said.starts_with("RangeError") && said.contains("at most 1000"),
            "{call}: {said}"
        );
    }
    // At the bound, an array is read.
    let output = crate::run(
        &runtime,
        r#"botContext.sendMessages(new Array(1000).fill("m"));"#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages.len(), 1000);
}

/// Generic array methods walk `length` inside builtins that never check
/// for termination, so an array-like with a length no heap holds would
/// hold the caller's thread far past the limit (for ever at 2^53). The
/// lockdown refuses such lengths before the builtin starts; without it,
/// each of these runs for seconds and ends as a timeout.
#[tokio::test]
async fn array_methods_refuse_lengths_no_heap_holds() {
    let runtime = runtime();
    let long = "{ length: 2 ** 26 }";
    let deep = "(function () { var p = { 0: 5 }; for (var i = 0; i < 200; i++) p = Object.create(p); var o = Object.create(p); o.length = 2 ** 20; return o; })()";
    let cases = [
        format!("Array.prototype.lastIndexOf.call({long}, 1)"),
        format!("Array.prototype.join.call({long})"),
        format!("Array.prototype.toString.call({long})"),
        format!("Array.prototype.forEach.call({long}, function () {{}})"),
        format!("Array.prototype.reduce.call({long}, function () {{}}, 0)"),
        format!("Array.prototype.reverse.call({long})"),
        format!("Array.prototype.sort.call({long})"),
        format!("Array.prototype.copyWithin.call({long}, 0, 1)"),
        format!("Array.prototype.shift.call({long})"),
        format!("Array.prototype.filter.call({long}, function () {{}})"),
        "const a = [1]; a.length = 2 ** 32 - 1; a.lastIndexOf(2)".to_owned(),
        format!("[].concat(Object.assign({long}, {{ [Symbol.isConcatSpreadable]: true }}))"),
        // A shorter length over a deep prototype chain: each index is
        // looked up along the chain (an outside attack held a thread for
        // minutes this way).
        format!("Array.prototype.indexOf.call({deep}, 1)"),
        format!("new Uint8Array(2 ** 20).set({deep})"),
        format!("Uint8Array.from({deep})"),
        format!("Array.from({deep})"),
        // A chain deeper than any cap on the walk: 250,000 x 20,001 lookups.
        "var p = { 0: 5 }; for (var i = 0; i < 20000; i++) p = Object.create(p); var o = Object.create(p); o.length = 250000; Array.prototype.indexOf.call(o, 1)".to_owned(),
        // A length that answers the check one way and the builtin another.
        "var calls = 0; Array.prototype.lastIndexOf.call({ get length() { return calls++ ? 2 ** 40 : 1; } }, 1)".to_owned(),
        "Array.prototype.lastIndexOf.call({ length: { valueOf: function () { return 2 ** 40; } } }, 1)".to_owned(),
        "Array.prototype.lastIndexOf.call(new Proxy({ length: 1 }, {}), 1)".to_owned(),
    ];
    for code in &cases {
        let started = Instant::now();
        let error = run(&runtime, code, ScriptInput::default())
            .await
            .expect_err(code);
        match &error {
            ScriptError::Exception { message, .. } => assert!(
                message.contains("RangeError") && message.contains("a length over 4194304"),
                "`{code}`: {message}"
            ),
            other => panic!("`{code}`: {other:?} after {:?}", started.elapsed()),
        }
    }
    // Arrays of ordinary lengths are untouched.
    let output = run(
        &runtime,
        "const a = [3, 1, 2]; function args() { return Array.prototype.slice.call(arguments); } const big = new Uint8Array(2 ** 23); big.set(new Uint8Array(2 ** 23)); botContext.sendMessage([a.sort().join('-'), a.lastIndexOf(3), [].concat(a, [4]).length, args(1, 2).length, Array.from('abc').length, Uint8Array.from(big).length].join(' '))",
        ScriptInput::default(),
    )
    .await
    .expect("ordinary arrays");
    assert_eq!(output.messages, vec!["1-2-3 2 4 2 3 8388608"]);
}

/// Scripts run on the caller's thread, which may have been made before V8
/// was initialised (a tokio worker, a test thread). On CPUs with memory
/// protection keys such a thread faults on its first script unless V8 runs
/// without JIT code to protect (`--jitless --no-memory-protection-keys`);
/// without those flags this test dies with SIGSEGV. Each test runs in its
/// own process under nextest, so V8 is initialised here for the first time.
#[test]
fn a_thread_made_before_v8_starts_runs_scripts() {
    let (start, started) = std::sync::mpsc::channel::<patchbay_script::ScriptRuntime>();
    let early = std::thread::spawn(move || {
        let runtime = started.recv().expect("a runtime");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(async {
                run(
                    &runtime,
                    "botContext.sendMessage([1, 2, 3].map(x => x * 2).join())",
                    ScriptInput::default(),
                )
                .await
            })
    });
    start.send(runtime()).expect("sent");
    let output = early.join().expect("no crash").expect("ran");
    assert_eq!(output.messages, vec!["2,4,6"]);
}

/// A run that a builtin holds past its limit holds its own turn, not the
/// runtime: on a multi-threaded runtime the thread it runs on hands its
/// queue and the I/O driver to another before V8 is entered. Here the
/// runtime has one worker; without the hand-off the timer below waits for
/// the builtin (about a second), as did a whole server's `/healthz` (100 s)
/// in an outside attack.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_run_past_its_limit_holds_its_turn_not_the_runtime() {
    let runtime = patchbay_script::ScriptRuntime::new(patchbay_script::RuntimeOptions {
        workers: 1,
        realm_share: 1,
        limits: patchbay_script::Limits {
            time: Duration::from_millis(10),
            heap_bytes: 256 * 1024 * 1024,
            output_bytes: 64 * 1024,
        },
    });
    let script = crate::compile(&runtime, "new Uint8Array(2 ** 27).join().length").await;
    let stuck = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.run(&script, ScriptInput::default()).await }
    });
    // The run is inside the builtin well before this.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    tokio::spawn(tokio::time::sleep(Duration::from_millis(10)))
        .await
        .expect("the timer task");
    let waited = started.elapsed();
    let error = stuck.await.expect("joined").expect_err("stopped");
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    assert!(
        waited < Duration::from_millis(300),
        "a 10 ms timer took {waited:?} while a run was stuck"
    );
}

/// A script nested too deeply for V8's parser fails to compile with a
/// message that has no position (V8 reports column -1 as `usize::MAX`):
/// a syntax error, not a panic (an outside attack made `serve`, `check`
/// and every later reload panic with one).
#[tokio::test]
async fn a_script_too_deep_to_parse_is_a_syntax_error() {
    let runtime = runtime();
    let code = format!("var x = {}1{};", "[".repeat(200_000), "]".repeat(200_000));
    let error = runtime
        .compile(&runtime.realm("deep"), "deep script", &code)
        .await
        .expect_err("too deep");
    assert!(matches!(error, ScriptError::Syntax { .. }), "{error:?}");
}

/// Garbage that outlives a scavenge (a run's strings and arrays) is
/// promoted to the old generation, which V8 collects only once it reaches
/// half the heap limit at first, then its live size plus 8 MB or more: each
/// isolate's memory rose run after run for hundreds of thousands of runs.
/// The station collects once the old generation has grown by a sixteenth
/// of the heap limit (2 MiB here), so the heap stays near its live size.
#[tokio::test]
async fn promoted_garbage_is_collected_early() {
    let runtime = runtime();
    let script = crate::compile(
        &runtime,
        // About 1 MB that lives across the run's scavenges, then is garbage.
        "var keep = []; for (var i = 0; i < 20000; i++) { keep.push('item ' + i); } botContext.sendMessage(String(keep.length));",
    )
    .await;
    let mut highest = 0;
    for _ in 0..200 {
        runtime
            .run(&script, ScriptInput::default())
            .await
            .expect("runs");
        let heap = runtime.heap_usage().await.expect("heap");
        highest = highest.max(heap.used_bytes);
    }
    // The heap limit is 32 MiB; V8 alone reached 15-16 MiB here, the
    // station's collections (a step and at most 8 runs of growth) about 9.
    assert!(
        highest < 12 * 1024 * 1024,
        "the heap reached {highest} bytes"
    );
}

/// An early collection is a few full mark-compacts of the whole isolate,
/// which every bot on it waits for: a bot whose every run promotes more
/// than a step of garbage gets one every few runs, not one a run.
#[tokio::test]
async fn early_collections_are_runs_apart() {
    let runtime = runtime();
    let script = crate::compile(
        &runtime,
        // About 4 MB a run, twice the step of this 32 MiB heap.
        "var keep = []; for (var i = 0; i < 4000; i++) { keep.push('x'.repeat(1000) + i); } botContext.sendMessage(String(keep.length));",
    )
    .await;
    let runs = 48;
    for _ in 0..runs {
        runtime
            .run(&script, ScriptInput::default())
            .await
            .expect("runs");
    }
    let heap = runtime.heap_usage().await.expect("heap");
    assert!(heap.collections >= 2, "{heap:?}");
    assert!(heap.collections <= runs / 8 + 1, "{heap:?}");
}
