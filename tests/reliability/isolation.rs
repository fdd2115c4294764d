//! Bots against each other, through whole turns on one script runtime (as
//! `serve` runs many bots): a hostile bot's scripts poison every intrinsic
//! they can reach, leave code to run after their time limit, and keep a
//! worker busy with catastrophic backtracking; the other bot's turns see
//! nothing of it and keep their latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use patchbay_engine::script::{Limits, RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use patchbay_tests::servers::{self, reply};

use crate::{Row, item_bot, report, rss_kib};

const TIME_LIMIT: Duration = Duration::from_millis(300);

async fn engine(
    name: &str,
    interactions: &[(&str, &str)],
    upstream: &servers::Server,
    scripts: &ScriptRuntime,
) -> Engine {
    let bot = patchbay_tests::bot(&format!("{name}.yaml"), &item_bot(name, interactions));
    let base = format!("http://{}", upstream.addr);
    let env = Arc::new(move |name: &str| (name == "UPSTREAM").then(|| base.clone()));
    Engine::new(bot, EngineOptions::new(env, scripts.clone()))
        .await
        .expect("engine")
}

async fn turn(engine: &Engine, interaction: &str, conversation: &str) -> (Vec<String>, String) {
    let state = ConversationState {
        conversation_id: conversation.to_owned(),
        ..ConversationState::default()
    };
    match engine
        .run_turn(state, Start::Interaction(interaction.to_owned()), "")
        .await
    {
        Ok(turn) => {
            let errors = turn
                .steps
                .iter()
                .flat_map(|step| step.script_errors.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            (turn.texts().into_iter().map(String::from).collect(), errors)
        }
        Err(error) => (Vec::new(), format!("turn error: {error}")),
    }
}

/// The attacker's script: try every way to leave code or data on every
/// intrinsic (replace `next`, add a property, swap the prototype).
fn poison() -> String {
    format!(
        r#"{}
        var stolen = function () {{ botContext.sendMessage("STOLEN " + botContext.getConversationId()); return {{ done: true }}; }};
        reachableIntrinsics().all.forEach(function (entry) {{
          var target = entry[1];
          try {{ target.next = stolen; }} catch (e) {{}}
          try {{ Object.defineProperty(target, "next", {{ value: stolen }}); }} catch (e) {{}}
          try {{ target.poisoned = "A"; }} catch (e) {{}}
          try {{ Object.setPrototypeOf(target, {{ poisoned: "A", next: stolen }}); }} catch (e) {{}}
        }});
        arguments.callee.stash = botContext.getConversationId();
        "#,
        patchbay_tests::INTRINSICS_JS
    )
}

/// The victim's script: use what the attacker poisoned, then say, for each
/// named intrinsic, whether anything of the attacker's is on it.
fn inspect() -> String {
    format!(
        r#"{}
        var total = 0;
        for (var x of [1, 2, 3]) {{ total += x; }}
        for (var c of "ab") {{ total += c.length; }}
        var found = reachableIntrinsics();
        function touched(object) {{
          var next = Object.getOwnPropertyDescriptor(object, "next");
          var planted = next !== undefined && typeof next.value === "function" && String(next.value).indexOf("STOLEN") >= 0;
          return "poisoned" in object || planted;
        }}
        found.named.forEach(function (entry) {{
          botContext.sendMessage(entry[0] + "=" + (touched(entry[1]) ? "poisoned" : "clean"));
        }});
        var dirty = found.all.filter(function (entry) {{ return touched(entry[1]); }}).length;
        botContext.sendMessage("all=" + found.all.length + "/" + dirty + "/" + total);
        "#,
        patchbay_tests::INTRINSICS_JS
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_reach_nothing_of_each_other() {
    let upstream = servers::http(|_| async { reply(200, r#"{"name":"Blue mug"}"#) }).await;
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 2,
        realm_share: 1,
        limits: Limits {
            time: TIME_LIMIT,
            heap_bytes: 64 * 1024 * 1024,
            output_bytes: 256 * 1024,
        },
    });
    let poison = poison();
    let inspect = inspect();
    let attacker = engine(
        "attacker",
        &[
            ("poison", poison.as_str()),
            ("inspect", inspect.as_str()),
            (
                "spin",
                "Promise.resolve().then(function () { for (;;) {} });\nObject.defineProperty(Object.prototype, 'late', { get: function () { for (;;) {} } });\nfor (;;) {}",
            ),
            (
                "resizable",
                "try { new ArrayBuffer(0, { maxByteLength: 2 ** 31 }).resize(2 ** 31); } catch (e) { botContext.sendMessage(e.name); }",
            ),
            ("huge-buffer", "new Uint8Array(1024 * 1024 * 1024).fill(1);"),
            (
                // What an attacker's pass found: a Proxy as the global's
                // prototype, whose trap (called by the host's own writes
                // to the global) queued a job for the next run.
                "proxy-prototype",
                "var steal = function () { botContext.sendMessage('STOLEN ' + botContext.getConversationId()); };\nvar trap = { set: function (t, k, v, r) { Promise.resolve().then(steal); return Reflect.set(t, k, v, r); }, get: function (t, k, r) { Promise.resolve().then(steal); return Reflect.get(t, k, r); } };\ntry { Object.setPrototypeOf(globalThis, new Proxy(Object.getPrototypeOf(globalThis), trap)); } catch (e) {}\ntry { globalThis.__proto__ = new Proxy({}, trap); } catch (e) {}",
            ),
            ("backtrack", "/^(a+)+$/.test('a'.repeat(40) + '!');"),
        ],
        &upstream,
        &scripts,
    )
    .await;
    let victim = engine(
        "victim",
        &[("inspect", inspect.as_str())],
        &upstream,
        &scripts,
    )
    .await;
    let mut rows = Vec::new();

    // The attacker poisons both workers (two turns at once).
    let started = Instant::now();
    let (first, second) = tokio::join!(
        turn(&attacker, "poison", "attacker-1"),
        turn(&attacker, "poison", "attacker-2")
    );
    rows.push(Row {
        case: "attacker poisons every intrinsic it reaches, on both workers".to_owned(),
        expected: "turns go on".to_owned(),
        observed: format!("errors: [{}] [{}]", first.1, second.1),
        time: started.elapsed(),
        pass: [&first, &second]
            .iter()
            .all(|(messages, _)| messages.last().is_some_and(|m| m == "FOUND Blue mug")),
    });

    // The victim's turns on both workers, then the attacker's own next run.
    for (who, engine, conversation) in [
        ("victim bot", &victim, "victim-1"),
        ("victim bot", &victim, "victim-2"),
        ("attacker bot, next run", &attacker, "attacker-3"),
    ] {
        let started = Instant::now();
        let (messages, errors) = turn(engine, "inspect", conversation).await;
        let time = started.elapsed();
        let stolen = messages.iter().any(|m| m.contains("STOLEN"));
        for message in messages.iter().filter(|m| m.contains('=')) {
            let Some((name, status)) = message.split_once('=') else {
                continue;
            };
            let pass = if name == "all" {
                // reached / touched / the iteration's sum
                status.split('/').nth(1) == Some("0") && status.ends_with("/8")
            } else {
                status == "clean"
            };
            rows.push(Row {
                case: format!("{who} ({conversation}): {name}"),
                expected: if name == "all" {
                    "no reachable object touched; iteration works".to_owned()
                } else {
                    "clean".to_owned()
                },
                observed: format!(
                    "{status}{}",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!("; errors: {errors}")
                    }
                ),
                time,
                pass: pass && errors.is_empty() && !stolen,
            });
        }
        if !messages.iter().any(|m| m.starts_with("all=")) {
            rows.push(Row {
                case: format!("{who} ({conversation})"),
                expected: "the inspection runs".to_owned(),
                observed: format!("messages: {messages:?}; errors: {errors}"),
                time,
                pass: false,
            });
        }
    }

    // A Proxy on the global's prototype chain, then the victim's turns.
    let started = Instant::now();
    let (_, armed) = turn(&attacker, "proxy-prototype", "attacker-6").await;
    let (first, first_errors) = turn(&victim, "inspect", "victim-4").await;
    let (second, second_errors) = turn(&victim, "inspect", "victim-5").await;
    let stolen: Vec<&String> = first
        .iter()
        .chain(&second)
        .filter(|message| message.contains("STOLEN"))
        .collect();
    rows.push(Row {
        case: "a Proxy as the global's prototype, its traps queueing jobs".to_owned(),
        expected: "refused; the victim's next turns on both workers run only their own code".to_owned(),
        observed: format!("attacker errors: [{armed}]; victim errors: [{first_errors}] [{second_errors}]; foreign messages: {stolen:?}"),
        time: started.elapsed(),
        pass: stolen.is_empty() && first_errors.is_empty() && second_errors.is_empty(),
    });

    // Code left to run after the limit: a spinning promise job, a getter.
    let started = Instant::now();
    let (messages, errors) = turn(&attacker, "spin", "attacker-5").await;
    let (after, after_errors) = turn(&victim, "inspect", "victim-3").await;
    rows.push(Row {
        case: "spin, with a spinning promise job queued".to_owned(),
        expected: "time limit, turn goes on; next turn clean; no worker replaced".to_owned(),
        observed: format!(
            "errors: [{errors}]; next turn errors: [{after_errors}]; replaced workers: {}",
            scripts.replaced_workers()
        ),
        time: started.elapsed(),
        pass: errors.contains("time limit")
            && messages.last().is_some_and(|m| m == "FOUND Blue mug")
            && after_errors.is_empty()
            && after
                .iter()
                .any(|m| m.starts_with("all=") && m.contains("/0/"))
            && scripts.replaced_workers() == 0,
    });

    // Buffer memory: refused or stopped, and the process stays small.
    let before = rss_kib();
    let started = Instant::now();
    let (messages, _) = turn(&attacker, "resizable", "attacker-4").await;
    let (_, errors) = turn(&attacker, "huge-buffer", "attacker-4").await;
    let growth = rss_kib().saturating_sub(before);
    rows.push(Row {
        case: "resizable ArrayBuffer to 2 GiB; a 1 GiB Uint8Array".to_owned(),
        expected: "RangeError; then RangeError or heap limit; RSS within 128 MiB".to_owned(),
        observed: format!("said {messages:?}; errors: [{errors}]; RSS +{growth} KiB"),
        time: started.elapsed(),
        pass: messages.first().is_some_and(|m| m == "RangeError")
            && (errors.contains("RangeError") || errors.contains("heap limit"))
            && growth < 128 * 1024,
    });

    // Fairness: two callers keep the attacker's backtracking regex running;
    // the victim's turns keep their latency.
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = Arc::new(attacker);
    let mut hogs = Vec::new();
    for caller in 0..2 {
        let (attacker, stop) = (Arc::clone(&attacker), Arc::clone(&stop));
        hogs.push(tokio::spawn(async move {
            let mut turns = 0;
            while !stop.load(Ordering::SeqCst) {
                turn(&attacker, "backtrack", &format!("hog-{caller}-{turns}")).await;
                turns += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut times = Vec::new();
    let plain = engine(
        "plain",
        &[("hello", "botContext.sendMessage('hello');")],
        &upstream,
        &scripts,
    )
    .await;
    for index in 0..20 {
        let begun = Instant::now();
        turn(&plain, "hello", &format!("plain-{index}")).await;
        times.push(begun.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    for hog in hogs {
        let _ = hog.await;
    }
    times.sort();
    let p50 = times[times.len() / 2];
    rows.push(Row {
        case: "2 callers keep a bot's regex backtracking; another bot's 20 turns".to_owned(),
        expected: format!(
            "p50 under {} ms (a quarter of the time limit)",
            (TIME_LIMIT / 4).as_millis()
        ),
        observed: format!(
            "p50 {} ms, max {} ms",
            p50.as_millis(),
            times.last().map_or(0, Duration::as_millis)
        ),
        time: started.elapsed(),
        pass: p50 < TIME_LIMIT / 4,
    });
    report("isolation", &rows);
}
