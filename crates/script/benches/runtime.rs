//! The cost of script runs on a warm runtime: a small transform over a 2 KB
//! and a 100 KB body, an empty script (the botContext API, the queue round
//! trip and the context's reset, which every run pays), a run that needs a
//! new context (what a worker pays after a run leaves its context unclean,
//! and what every run paid before contexts were reused), and `new_context`:
//! a fresh realm's first run (`realm`, `compile`, `run` of an empty script),
//! which must make a new locked-down context: what the first turn of a bot
//! just loaded or reloaded pays (issue 22's target: under 1 ms). And
//! `global_reads` and `global_writes`: loops over globals, which slow down
//! when V8 stops caching global loads or stores (an interceptor on the
//! global can make it).

use criterion::{Criterion, criterion_group, criterion_main};
use patchbay_script::{ApiData, RuntimeOptions, ScriptInput, ScriptRuntime};

const TRANSFORM: &str = r#"
var data = JSON.parse(api_FAQS.jsonData);
data.api_FAQS.items = data.api_FAQS.items
  .filter(function (a) { return a.status === "published"; })
  .slice(0, 3);
api_FAQS.jsonData = JSON.stringify(data);
"#;

/// A response body of about `bytes` bytes: a list of articles.
fn body(bytes: usize) -> String {
    let article = r#"{"title":"How to reset a password","status":"published","score":0.93,"summary":"Open settings, choose security, then reset."}"#;
    let count = (bytes / (article.len() + 1)).max(1);
    format!("{{\"items\":[{}]}}", vec![article; count].join(","))
}

fn input(bytes: usize) -> ScriptInput {
    ScriptInput {
        api: Some(ApiData {
            name: "api_FAQS".to_owned(),
            json_data: format!("{{\"api_FAQS\": {}}}", body(bytes)),
        }),
        ..ScriptInput::default()
    }
}

fn runs(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let runtime = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let realm = runtime.realm("bench");
    let transform = tokio
        .block_on(runtime.compile(&realm, "bench transform", TRANSFORM))
        .expect("compiles");
    let empty = tokio
        .block_on(runtime.compile(&realm, "bench empty", ""))
        .expect("compiles");
    for (name, bytes) in [("transform_2kb", 2 * 1024), ("transform_100kb", 100 * 1024)] {
        let input = input(bytes);
        c.bench_function(name, |b| {
            b.to_async(&tokio)
                .iter(|| runtime.run(&transform, input.clone()));
        });
    }
    c.bench_function("empty_run_warm", |b| {
        b.to_async(&tokio)
            .iter(|| runtime.run(&empty, ScriptInput::default()));
    });
    // Global reads in a loop: what an interceptor on the global would slow
    // down if V8 stopped caching global loads (it caches them in the
    // feedback vector, by property cell, when nothing masks them).
    let reads = tokio
        .block_on(runtime.compile(
            &realm,
            "bench global reads",
            "for (var i = 0; i < 10000; i++) { JSON; Array; Math; botContext; }",
        ))
        .expect("compiles");
    c.bench_function("global_reads", |b| {
        b.to_async(&tokio)
            .iter(|| runtime.run(&reads, ScriptInput::default()));
    });
    // And stores to a global the run made (an undeclared loop counter, say):
    // an interceptor on the global that masks its properties makes V8 stop
    // caching them (measured: 14 times slower).
    let writes = tokio
        .block_on(runtime.compile(
            &realm,
            "bench global writes",
            "n = 0; for (var i = 0; i < 10000; i++) { n = n + 1; }",
        ))
        .expect("compiles");
    c.bench_function("global_writes", |b| {
        b.to_async(&tokio)
            .iter(|| runtime.run(&writes, ScriptInput::default()));
    });
    // A script that leaves the global unable to take new properties makes
    // its worker replace the context: each run then pays for a new context,
    // its lockdown and the script's compilation.
    let dirty = tokio
        .block_on(runtime.compile(
            &realm,
            "bench dirty",
            "Object.preventExtensions(globalThis);",
        ))
        .expect("compiles");
    c.bench_function("run_with_context_creation", |b| {
        b.to_async(&tokio)
            .iter(|| runtime.run(&dirty, ScriptInput::default()));
    });
    // Only the public API: a realm no run has used yet has no context on
    // any worker, so its first run makes one (and locks it down).
    c.bench_function("new_context", |b| {
        b.to_async(&tokio).iter(|| async {
            let realm = runtime.realm("bench fresh");
            let script = runtime
                .compile(&realm, "bench new context", "")
                .await
                .expect("compiles");
            runtime
                .run(&script, ScriptInput::default())
                .await
                .expect("runs")
        });
    });
}

criterion_group!(benches, runs);
criterion_main!(benches);
