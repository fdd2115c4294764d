//! Memory over many runs: the bench bot's transform (crates/bench/bench-bot.yaml)
//! over a 2 KB body, run back to back on one isolate, printing V8's heap and
//! the process's RSS every 10,000 runs, and at the end the least-squares
//! slope of RSS over the second half (a warm-up rises and stops; garbage
//! kept until V8's old space reaches its limit goes on rising).
//!
//! ```sh
//! cargo run --release -p patchbay-script --example soak -- 200000
//! ```

#![allow(clippy::print_stdout)] // a program that shows its readings

use patchbay_script::{ApiData, RuntimeOptions, ScriptInput, ScriptRuntime};

const TRANSFORM: &str = r#"
var data = JSON.parse(api_FAQS.jsonData);
data.api_FAQS.items = data.api_FAQS.items.filter(function (a) { return a.status === "published"; });
api_FAQS.jsonData = JSON.stringify(data);
"#;

const EVERY: usize = 10_000;

/// Resident memory of this process, in KiB (0 where /proc is missing).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Least-squares slope of `points` (x, y).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(200_000);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let runtime = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let realm = runtime.realm("soak");
    let transform = tokio
        .block_on(runtime.compile(&realm, "soak transform", TRANSFORM))
        .expect("compiles");
    let article = r#"{"title":"How to reset a password","status":"published","score":0.93,"summary":"Open settings, choose security, then reset."}"#;
    let body = format!("{{\"items\":[{}]}}", vec![article; 16].join(","));
    let input = ScriptInput {
        api: Some(ApiData {
            name: "api_FAQS".to_owned(),
            json_data: format!("{{\"api_FAQS\": {body}}}"),
        }),
        ..ScriptInput::default()
    };
    println!(
        "body {} bytes, {runs} runs",
        input.api.as_ref().map_or(0, |api| api.json_data.len())
    );
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>8}",
        "runs", "rss KiB", "heap used", "heap total", "µs/run"
    );
    let mut readings = Vec::new();
    let mut started = std::time::Instant::now();
    for run in 1..=runs {
        tokio
            .block_on(runtime.run(&transform, input.clone()))
            .expect("runs");
        if run % EVERY == 0 {
            let per_run = started.elapsed().as_secs_f64() * 1e6 / EVERY as f64;
            let heap = tokio.block_on(runtime.heap_usage()).expect("heap");
            let rss = rss_kib();
            println!(
                "{run:>8} {rss:>10} {:>12} {:>12} {per_run:>8.1}",
                heap.used_bytes, heap.total_bytes
            );
            readings.push((run as f64, rss as f64));
            started = std::time::Instant::now();
        }
    }
    let half = &readings[readings.len() / 2..];
    println!(
        "RSS slope: {:.1} KiB per 1,000 runs overall, {:.1} over the second half",
        slope(&readings) * 1000.0,
        slope(half) * 1000.0
    );
}
