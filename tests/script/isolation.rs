//! Scripts reach nothing of the host, and no run sees another's state.

use patchbay_script::{ApiData, ScriptError, ScriptInput};

use crate::{compile, compile_in, run, runtime};

#[tokio::test]
async fn host_facilities_are_absent() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        botContext.sendMessage([typeof require, typeof fetch, typeof process, typeof setTimeout,
            typeof WebAssembly, typeof Deno, typeof XMLHttpRequest].join(","));
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec!["undefined,undefined,undefined,undefined,undefined,undefined,undefined"]
    );
}

#[tokio::test]
async fn code_from_strings_is_refused() {
    let runtime = runtime();
    for code in [
        "eval('1 + 1')",
        "new Function('return 1')()",
        "Function('return 1')()",
    ] {
        let error = run(&runtime, code, ScriptInput::default())
            .await
            .expect_err(code);
        match error {
            ScriptError::Exception { message, .. } => {
                assert!(message.contains("EvalError"), "{code}: {message}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn dynamic_import_goes_nowhere() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var p = import("fs");
        botContext.sendMessage(String(p instanceof Promise));
        "#,
        ScriptInput::default(),
    )
    .await;
    // Either the import is refused at once, or it returns a promise that
    // never loads anything: no module reaches the script.
    match output {
        Ok(output) => assert_eq!(output.messages, vec!["true"]),
        Err(ScriptError::Exception { message, .. }) => {
            assert!(!message.is_empty());
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn globals_do_not_cross_runs() {
    let runtime = runtime();
    let bot = runtime.realm("one bot");
    let writer = compile_in(
        &runtime,
        &bot,
        "leaked = 'yes'; globalThis.other = 1; Object.prototype.polluted = true; var declared = 1;",
    )
    .await;
    let reader = compile_in(
        &runtime,
        &bot,
        r#"botContext.sendMessage([typeof leaked, typeof other, typeof ({}).polluted, typeof declared].join(","));"#,
    )
    .await;
    runtime
        .run(&writer, ScriptInput::default())
        .await
        .expect("writes");
    let output = runtime
        .run(&reader, ScriptInput::default())
        .await
        .expect("reads");
    assert_eq!(
        output.messages,
        vec!["undefined,undefined,undefined,undefined"]
    );
}

/// Each worker reuses one locked-down context; these are the ways a run
/// could try to leave something for the next one (another conversation).
#[tokio::test]
async fn nothing_a_run_leaves_reaches_the_next() {
    let runtime = runtime();
    // One bot: its runs share a context on the worker.
    let bot = runtime.realm("one bot");
    let writers = [
        // Builtins and their prototypes are frozen: writes fail silently
        // in sloppy code and throw in strict code.
        "JSON.parse = function () { return 'hijacked'; }; Array.prototype.push = null; Math.stash = 'A';",
        "'use strict'; try { Object.prototype.polluted = 1; } catch (e) {} try { String.prototype.trim = null; } catch (e) {}",
        "botContext.sendMessage = function () {}; botContext.stash = 'A';",
        "Object.getPrototypeOf(globalThis).stash = 'A'; globalThis.__proto__.other = 'A';",
        // A global that cannot be deleted, and a global that refuses new
        // properties: the context is replaced.
        "Object.defineProperty(globalThis, 'sticky', { value: 'A', configurable: false });",
        "Object.preventExtensions(globalThis);",
        // RegExp's legacy statics hold the last match.
        "/secret-(\\d+)/.exec('secret-42');",
        "function declared() { return 'A'; } var local = 'A'; implicit = 'A'; this.viaThis = 'A';",
    ];
    let reader = compile_in(
        &runtime,
        &bot,
        r#"
        implicitNext = 1; // new globals still work in every run
        var seen = [
          JSON.parse('"ok"'), typeof [].push, typeof Math.stash, typeof ({}).polluted,
          typeof "".trim, typeof botContext.stash, typeof Object.getPrototypeOf(globalThis).stash,
          typeof sticky, String(RegExp.$1), String(RegExp.input), typeof declared, typeof local,
          typeof implicit, typeof viaThis, typeof FinalizationRegistry, typeof WeakRef,
          typeof SharedArrayBuffer, typeof Atomics,
        ];
        botContext.sendMessage(seen.join(","));
        "#,
    )
    .await;
    let expected = "ok,function,undefined,undefined,function,undefined,undefined,undefined,,,undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined";
    for writer in writers {
        let script = compile_in(&runtime, &bot, writer).await;
        let _ = runtime.run(&script, ScriptInput::default()).await;
        let output = runtime
            .run(&reader, ScriptInput::default())
            .await
            .unwrap_or_else(|error| panic!("after `{writer}`: {error}"));
        assert_eq!(output.messages, vec![expected], "after `{writer}`");
    }
}

/// The transform's `api_RDVN` global stays on the context between runs (a
/// fixed binding: a fresh global each run left the global a key over its
/// baseline after every transform, and the reset then deleted every key):
/// it holds nothing of a run in the next, whoever wrote it and however, and
/// a run that pins it read-only loses the context.
#[tokio::test]
async fn the_transform_global_holds_nothing_between_runs() {
    let runtime = runtime();
    let bot = runtime.realm("one bot");
    let api = |data: &str| ScriptInput {
        api: Some(ApiData {
            name: "api_X".to_owned(),
            json_data: format!(r#"{{"api_X":"{data}"}}"#),
        }),
        ..ScriptInput::default()
    };
    // Another script of the bot, without a response, and the transform.
    let plain = compile_in(
        &runtime,
        &bot,
        r#"botContext.sendMessage(typeof api_X + "," + String(typeof api_X === "object" && api_X !== null && api_X.jsonData));"#,
    )
    .await;
    let transform = compile_in(
        &runtime,
        &bot,
        r#"botContext.sendMessage(api_X.jsonData + "," + typeof api_X.extra);"#,
    )
    .await;
    // (code, run as a transform)
    let writers = [
        ("api_X.jsonData = 'A'; api_X.extra = 'A';", true),
        ("api_X = { jsonData: 'A', extra: 'A' };", false),
        ("api_X = { jsonData: 'A', extra: 'A' };", true),
        (
            "Object.defineProperty(globalThis, 'api_X', { value: { jsonData: 'A', extra: 'A' } });",
            true,
        ),
        // Read-only: the reset cannot empty it, so the context goes.
        (
            "Object.defineProperty(globalThis, 'api_X', { writable: false });",
            true,
        ),
        (
            "Object.defineProperty(globalThis, 'api_X', { value: { jsonData: 'A', extra: 'A' }, writable: false });",
            true,
        ),
        ("Object.freeze(globalThis);", true),
        // Before any transform ran in a new context: an ordinary global.
        (
            "Object.defineProperty(globalThis, 'api_X', { value: { jsonData: 'A', extra: 'A' }, configurable: false });",
            false,
        ),
    ];
    for (writer, as_transform) in writers {
        let script = compile_in(&runtime, &bot, writer).await;
        let input = if as_transform {
            api("A")
        } else {
            ScriptInput::default()
        };
        let _ = runtime.run(&script, input).await;
        let output = runtime
            .run(&plain, ScriptInput::default())
            .await
            .unwrap_or_else(|error| panic!("after `{writer}`: {error}"));
        assert_eq!(output.messages, vec!["undefined,false"], "after `{writer}`");
        let output = runtime
            .run(&transform, api("B"))
            .await
            .unwrap_or_else(|error| panic!("after `{writer}`: {error}"));
        assert_eq!(
            output.messages,
            vec![r#"{"api_X":"B"},undefined"#],
            "after `{writer}`"
        );
    }
    // What the transform leaves in the global is its result, even a new object.
    let replace = compile_in(
        &runtime,
        &bot,
        r#"api_X = { jsonData: JSON.stringify({ api_X: "whole" }) };"#,
    )
    .await;
    let output = runtime.run(&replace, api("A")).await.expect("runs");
    assert_eq!(output.json_data.as_deref(), Some(r#"{"api_X":"whole"}"#));
}

/// Every way a run can give the global a key found so far, most of them
/// then pinned (non-configurable), so that a reset listing only the
/// configurable keys would not see it: none may reach the bot's next run or
/// another bot's. A reset that listed only the configurable keys unless the
/// global's interceptors had seen a change let 31 of these 35 through with
/// the interceptors ignored; with non-masking ones (a setter and a
/// definer), a key made through `Reflect.set` with the global as receiver
/// or `super.x` and then pinned went through, since neither calls them
/// (docs/script.md).
#[tokio::test]
async fn no_key_a_run_gives_the_global_survives_it() {
    let runtime = runtime();
    let other = runtime.realm("another bot");
    let reader = r#"
        var keys = Reflect.ownKeys(globalThis).map(String);
        botContext.sendMessage(keys.length + ":" + keys.join(","));
    "#;
    let pin = "Object.defineProperty(globalThis, 'x', { configurable: false });";
    let writers = [
        "Object.defineProperty(globalThis, 'x', { value: 1 });".to_owned(),
        "Object.defineProperty(globalThis, 'x', { get: function () { return 1; } });".to_owned(),
        "Object.defineProperty(globalThis, 'x', { set: function (v) {}, enumerable: true });".to_owned(),
        "Object.defineProperties(globalThis, { x: { value: 1 }, y: { get: function () { return 2; } } });".to_owned(),
        "Reflect.defineProperty(globalThis, 'x', { value: 1 });".to_owned(),
        "Object.defineProperty(new Proxy(globalThis, {}), 'x', { value: 1 });".to_owned(),
        "Reflect.defineProperty(new Proxy(globalThis, { defineProperty: Reflect.defineProperty }), 'x', { value: 1 });".to_owned(),
        "Reflect.set(new Proxy(globalThis, {}), 'x', 1); Object.defineProperty(globalThis, 'x', { configurable: false });".to_owned(),
        format!("x = 1; {pin}"),
        format!("globalThis.x = 1; {pin}"),
        format!("this.x = 1; {pin}"),
        format!("globalThis['x'] = 1; {pin}"),
        format!("Object.assign(globalThis, {{ x: 1 }}); {pin}"),
        format!("Reflect.set(globalThis, 'x', 1); {pin}"),
        format!("Reflect.set({{}}, 'x', 1, globalThis); {pin}"),
        format!("({{ __proto__: {{}}, m() {{ super.x = 1; }} }}).m.call(globalThis); {pin}"),
        format!("with (globalThis) {{ x = 1; }} {pin}"),
        format!("globalThis.__defineGetter__('x', function () {{ return 1; }}); {pin}"),
        format!("globalThis.__defineSetter__('x', function (v) {{}}); {pin}"),
        "Array.prototype.push.call(globalThis, 1); Object.defineProperty(globalThis, 'length', { configurable: false }); Object.defineProperty(globalThis, 0, { configurable: false });".to_owned(),
        "Array.from.call(function () { return globalThis; }, [1]); Object.defineProperty(globalThis, 'length', { configurable: false }); Object.defineProperty(globalThis, 0, { configurable: false });".to_owned(),
        format!("class A {{ constructor() {{ return globalThis; }} }} class B extends A {{ x = 1; }} new B(); {pin}"),
        format!("Error.captureStackTrace(globalThis); Object.defineProperty(globalThis, 'stack', {{ configurable: false }}); {pin}"),
        // Configurable keys alone, of every kind.
        "x = 1; globalThis[0] = 1; globalThis[Symbol.for('x')] = 1; Error.captureStackTrace(globalThis);".to_owned(),
        "Object.defineProperty(globalThis, Symbol('x'), { value: 1 });".to_owned(),
        "Object.defineProperty(globalThis, Symbol.for('x'), { get: function () { return 1; } });".to_owned(),
        "globalThis[Symbol.iterator] = 1; Object.defineProperty(globalThis, Symbol.iterator, { configurable: false });".to_owned(),
        "globalThis[0] = 1; Object.defineProperty(globalThis, 0, { configurable: false });".to_owned(),
        "Object.defineProperty(globalThis, '1', { value: 1 });".to_owned(),
        "Object.defineProperty(globalThis, 4294967294, { value: 1 });".to_owned(),
        "Object.defineProperty(globalThis, 4294967295, { value: 1 });".to_owned(),
        "Object.defineProperty(globalThis, -1, { value: 1 });".to_owned(),
        "x = 1; Object.seal(globalThis);".to_owned(),
        "x = 1; Object.freeze(globalThis);".to_owned(),
        "Object.preventExtensions(globalThis);".to_owned(),
    ];
    let fresh = run(&runtime, reader, ScriptInput::default())
        .await
        .expect("reads")
        .messages;
    let read_other = compile_in(&runtime, &other, reader).await;
    let mut leaks = Vec::new();
    for writer in &writers {
        // A bot of its own, so that each way is told apart.
        let bot = runtime.realm("one bot");
        let read_bot = compile_in(&runtime, &bot, reader).await;
        let script = compile_in(&runtime, &bot, writer).await;
        let _ = runtime.run(&script, ScriptInput::default()).await;
        for (who, reader) in [("the bot", &read_bot), ("another bot", &read_other)] {
            let seen = runtime
                .run(reader, ScriptInput::default())
                .await
                .unwrap_or_else(|error| panic!("after `{writer}`: {error}"))
                .messages;
            if seen != fresh {
                leaks.push(format!("after `{writer}`, {who} saw {seen:?}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    patchbay_tests::rss_kib("self")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_runs_leave_memory_flat() {
    let runtime = runtime();
    let script = compile(
        &runtime,
        r#"
        var data = JSON.parse(api_X.jsonData);
        data.api_X.items = data.api_X.items.slice(0, 2);
        api_X.jsonData = JSON.stringify(data);
        botContext.setBotVariable("count", data.api_X.items.length, true, false);
        "#,
    )
    .await;
    let input = ScriptInput {
        api: Some(patchbay_script::ApiData {
            name: "api_X".to_owned(),
            json_data: r#"{"api_X": {"items": [1, 2, 3, 4, 5]}}"#.to_owned(),
        }),
        ..ScriptInput::default()
    };
    for _ in 0..1_000 {
        runtime
            .run(&script, input.clone())
            .await
            .expect("warm-up run");
    }
    let before = rss_kib();
    for _ in 0..10_000 {
        runtime.run(&script, input.clone()).await.expect("run");
    }
    let growth = rss_kib().saturating_sub(before);
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB over 10k runs");
}

/// Hardened JS's claim, proved by enumeration: every intrinsic a script can
/// reach (from the global, or only through values such as iterators,
/// generators and async functions) is frozen.
#[tokio::test]
async fn every_intrinsic_is_frozen() {
    let runtime = runtime();
    let code = format!(
        r#"{}
        var found = reachableIntrinsics();
        var missing = found.named.filter(function (entry) {{ return entry[1] === undefined; }});
        var open = found.all.filter(function (entry) {{ return !Object.isFrozen(entry[1]); }});
        botContext.sendMessage(String(found.all.length));
        botContext.sendMessage(missing.map(function (entry) {{ return entry[0]; }}).join(" "));
        botContext.sendMessage(open.map(function (entry) {{ return entry[0]; }}).slice(0, 40).join(" "));
        "#,
        patchbay_tests::INTRINSICS_JS
    );
    let output = run(&runtime, &code, ScriptInput::default())
        .await
        .expect("walks");
    let reached: usize = output.messages[0].parse().expect("a count");
    // Not a vacuous walk: V8's builtins are over 800 objects, with the
    // newest features off (limits.rs).
    assert!(reached > 800, "reached only {reached} objects");
    assert_eq!(
        output.messages[1], "",
        "intrinsics the walk could not reach"
    );
    assert_eq!(output.messages[2], "", "intrinsics that are not frozen");
}

/// What an attacker's bot tried: redefine `next` on the array iterator
/// prototype (and every other hidden intrinsic) so that its code runs in
/// every later run, whatever the bot, and reads that run's conversation.
#[tokio::test]
async fn a_poisoned_intrinsic_reaches_no_later_run() {
    let runtime = runtime();
    let attacker = runtime.realm("attacker");
    let victim = runtime.realm("victim");
    let poison = format!(
        r#"{}
        var stolen = function () {{ botContext.sendMessage("stolen " + botContext.getConversationId()); return {{ done: true }}; }};
        reachableIntrinsics().all.forEach(function (entry) {{
          var target = entry[1];
          try {{ target.next = stolen; }} catch (e) {{}}
          try {{ Object.defineProperty(target, "next", {{ value: stolen }}); }} catch (e) {{}}
          try {{ target.poisoned = "A"; }} catch (e) {{}}
          try {{ Object.setPrototypeOf(target, null); }} catch (e) {{}}
        }});
        try {{ Object.getPrototypeOf([][Symbol.iterator]()).next = stolen; }} catch (e) {{}}
        "#,
        patchbay_tests::INTRINSICS_JS
    );
    let reader = format!(
        r#"{}
        var total = 0;
        for (var x of [1, 2, 3]) {{ total += x; }}
        for (var c of "ab") {{ total += c.length; }}
        for (var e of new Map([[1, 2]])) {{ total += e.length; }}
        var g = (function* () {{ yield 1; }})();
        total += g.next().value;
        var poisoned = reachableIntrinsics().all.filter(function (entry) {{
          return Object.prototype.hasOwnProperty.call(entry[1], "poisoned");
        }});
        botContext.sendMessage(total + " " + poisoned.length);
        "#,
        patchbay_tests::INTRINSICS_JS
    );
    let attack = runtime
        .compile(&attacker, "attacker", &poison)
        .await
        .expect("compiles");
    let same_bot = runtime
        .compile(&attacker, "attacker reads", &reader)
        .await
        .expect("compiles");
    let other_bot = runtime
        .compile(&victim, "victim", &reader)
        .await
        .expect("compiles");
    let _ = runtime.run(&attack, ScriptInput::default()).await;
    for script in [&other_bot, &same_bot] {
        let output = runtime
            .run(
                script,
                ScriptInput {
                    conversation_id: "victim-conversation".to_owned(),
                    ..ScriptInput::default()
                },
            )
            .await
            .expect("runs");
        assert_eq!(output.messages, vec!["11 0"], "{}", script.owner());
    }
}

/// A script's compiled function is reused by every run (that is what makes
/// runs fast); `arguments.callee` reaches it, so it is frozen.
#[tokio::test]
async fn the_compiled_function_keeps_nothing_between_runs() {
    let runtime = runtime();
    let script = compile(
        &runtime,
        r#"
        var me = arguments.callee;
        var before = String(me.stash) + "," + String(me.prototype && me.prototype.stash);
        try { me.stash = botContext.getConversationId(); } catch (e) {}
        try { me.prototype.stash = botContext.getConversationId(); } catch (e) {}
        try { Object.defineProperty(me, "other", { value: 1 }); } catch (e) {}
        botContext.sendMessage(before + "," + typeof me.other);
        "#,
    )
    .await;
    for conversation in ["first", "second"] {
        let output = runtime
            .run(
                &script,
                ScriptInput {
                    conversation_id: conversation.to_owned(),
                    ..ScriptInput::default()
                },
            )
            .await
            .expect("runs");
        assert_eq!(output.messages, vec!["undefined,undefined,undefined"]);
    }
}

/// Promise jobs a run leaves behind (by ending with `sendImmediateReply`,
/// or by being stopped) never run in a later run.
#[tokio::test]
async fn promise_jobs_never_outlive_their_run() {
    let runtime = runtime();
    let leavers = [
        "Promise.resolve().then(function () { botContext.sendMessage('late job'); }); botContext.sendImmediateReply('replied');",
        "Promise.resolve().then(function () { botContext.sendMessage('late job'); }); while (true) {}",
        "Promise.resolve().then(function () { botContext.sendMessage('late job'); }); var keep = []; while (true) { keep.push(new Array(1000000).fill(1.5)); }",
    ];
    let bot = runtime.realm("one bot");
    let reader = compile_in(&runtime, &bot, "botContext.sendMessage('reader');").await;
    for leaver in leavers {
        let script = compile_in(&runtime, &bot, leaver).await;
        let _ = runtime.run(&script, ScriptInput::default()).await;
        let output = runtime
            .run(&reader, ScriptInput::default())
            .await
            .expect("reads");
        assert_eq!(output.messages, vec!["reader"], "after `{leaver}`");
    }
    // Jobs of a run that ends normally run within it.
    let output = run(
        &runtime,
        "Promise.resolve('in time').then(function (text) { botContext.sendMessage(text); });",
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["in time"]);
}

/// The global is extensible (scripts make implicit globals), but its
/// prototype is fixed: a Proxy there would have its traps called by later
/// runs' global lookups, and by any host code that assigns to the global.
#[tokio::test]
async fn the_global_keeps_its_prototype() {
    let runtime = runtime();
    let bot = runtime.realm("one bot");
    let writer = compile_in(
        &runtime,
        &bot,
        r#"
        var trap = new Proxy({}, { get: function () { return "trapped"; } });
        try { Object.setPrototypeOf(globalThis, trap); } catch (e) {}
        try { globalThis.__proto__ = { stash: botContext.getConversationId() }; } catch (e) {}
        try { Reflect.setPrototypeOf(globalThis, null); } catch (e) {}
        "#,
    )
    .await;
    let reader = compile_in(
        &runtime,
        &bot,
        "botContext.sendMessage([typeof stash, typeof undeclaredName, Object.getPrototypeOf(Object.getPrototypeOf(globalThis)) === Object.prototype].join(','));",
    )
    .await;
    let _ = runtime.run(&writer, ScriptInput::default()).await;
    let output = runtime
        .run(&reader, ScriptInput::default())
        .await
        .expect("reads");
    assert_eq!(output.messages, vec!["undefined,undefined,true"]);
}

/// The attack that got through once: a bot swapped the global's prototype
/// for a Proxy whose `set` trap queued a promise job; the host's reset
/// assigned a probe to the global, calling the trap after the run's last
/// checkpoint, and the job ran in the next run on the worker, another
/// bot's, reading its conversation and secrets and answering for it.
#[tokio::test]
async fn no_promise_job_runs_in_another_bots_run() {
    let runtime = runtime();
    let attacker = runtime.realm("attacker");
    let victim = runtime.realm("victim");
    let arm = runtime
        .compile(
            &attacker,
            "arm",
            r#"
            var steal = function () {
              botContext.sendMessage("INJECTED into " + botContext.getConversationId() + ": " + botContext.getEnvVariable("PW"));
            };
            var trap = { set: function (target, key, value, receiver) {
              Promise.resolve().then(steal);
              return Reflect.set(target, key, value, receiver);
            } };
            try { Object.setPrototypeOf(globalThis, new Proxy(Object.getPrototypeOf(globalThis), trap)); } catch (e) {}
            try { Object.defineProperty(globalThis, "late", { set: function () { Promise.resolve().then(steal); }, configurable: true }); } catch (e) {}
            "#,
        )
        .await
        .expect("compiles");
    let bank = runtime
        .compile(&victim, "bank", "botContext.sendMessage('balance');")
        .await
        .expect("compiles");
    let _ = runtime.run(&arm, ScriptInput::default()).await;
    let output = runtime
        .run(
            &bank,
            ScriptInput {
                conversation_id: "alice".to_owned(),
                env: [("PW".to_owned(), "canary-pw".to_owned())].into(),
                ..ScriptInput::default()
            },
        )
        .await
        .expect("runs");
    assert_eq!(output.messages, vec!["balance"]);
}

/// Memory a run can keep past its reset: private fields, which the language
/// lets a class add even to frozen objects (through a base constructor that
/// returns the target). One bot filling the heap that way, run after run,
/// must not make another bot's run meet the heap limit.
#[tokio::test]
async fn memory_kept_by_one_bot_does_not_fail_another() {
    let runtime = runtime();
    let hoarder = runtime
        .compile(
            &runtime.realm("hoarder"),
            "hoarder",
            r#"
            class Base { constructor(target) { return target; } }
            class Stash extends Base { #kept = new Array(256 * 1024).fill(1.5); }
            new Stash(Object.prototype);
            botContext.sendMessage("stashed");
            "#,
        )
        .await
        .expect("compiles");
    let victim = runtime
        .compile(
            &runtime.realm("victim"),
            "victim",
            "var keep = []; for (var i = 0; i < 6; i++) { keep.push(new Array(256 * 1024).fill(2.5)); } botContext.sendMessage('fits');",
        )
        .await
        .expect("compiles");
    let fits = runtime
        .run(&victim, ScriptInput::default())
        .await
        .expect("the victim's run fits the heap alone");
    assert_eq!(fits.messages, vec!["fits"]);
    for _ in 0..12 {
        let _ = runtime.run(&hoarder, ScriptInput::default()).await;
    }
    let output = runtime
        .run(&victim, ScriptInput::default())
        .await
        .expect("the victim's run still fits");
    assert_eq!(output.messages, vec!["fits"]);
}
