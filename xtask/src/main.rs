//! `cargo xtask`: the one entry point for the project's chores.
//!
//! - `cargo xtask ci`: format check, clippy with warnings denied, all tests.
//! - `cargo xtask test`: all tests (nextest when installed, else cargo test).
//! - `cargo xtask demo`: `patchbay demo`.
//! - `cargo xtask bench [--quick]`: the benchmark table (docs/benchmarks.md).
//! - `cargo xtask profile [--seconds N]`: a `perf` profile of the bench's
//!   `turn` row (docs/benchmarks.md, "Profile of the turn row").
//! - `cargo xtask reliability`: the reliability and security tables, in
//!   their long form (docs/reliability.md).
//! - `cargo xtask fuzz --minutes N`: the property tests, for N minutes.
//! - `cargo xtask secrets`: the canary scan `test` ends with, over what
//!   the last test run captured in `target/captured/`.
//!
//! Every command points the `v8` crate at the prebuilt archive in
//! `../shared/v8/` when that file exists, so a clean clone builds offline;
//! elsewhere the crate downloads its archive as usual.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const V8_ARCHIVE: &str = "librusty_v8_release_x86_64-unknown-linux-gnu.a.gz";
/// The `v8` crate's version, pinned in the workspace's Cargo.toml.
const V8_VERSION: &str = "152.2.0";

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    match task.as_str() {
        "ci" => {
            cargo(&root, &["fmt", "--all", "--check"])?;
            cargo(
                &root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            test(&root)?;
            bench(&root, true)
        }
        "bench" => bench(&root, std::env::args().any(|arg| arg == "--quick")),
        "profile" => profile(&root, seconds()?),
        "reliability" => reliability(&root),
        "fuzz" => fuzz(&root, minutes()?),
        "test" => test(&root),
        "secrets" => scan_for_canaries(&root),
        "demo" => cargo(
            &root,
            &[
                "run",
                "--quiet",
                "--release",
                "--package",
                "patchbay",
                "--",
                "demo",
            ],
        ),
        _ => bail!(
            "usage: cargo xtask <ci|test|demo|bench>\n  ci     fmt check, clippy -D warnings, all tests, bench --quick\n  test   all tests\n  demo   run `patchbay demo`\n  bench  the benchmark table (release build); --quick: every row once, briefly (dev build)\n  profile [--seconds N]  a perf profile of the bench's turn row (release code with symbols)\n  reliability  the reliability and security tables, long form\n  fuzz --minutes N  the property tests, N minutes\n  secrets  scan the last test run's captured output for canary secrets"
        ),
    }
}

/// The benchmark table: release builds, the harness, then criterion's
/// micro-benchmarks. `quick` checks every row runs, in seconds, on dev
/// builds; it asserts nothing about speed.
fn bench(root: &Path, quick: bool) -> anyhow::Result<()> {
    let (profile, dir) = if quick {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    cargo(
        root,
        &[
            "build",
            "--profile",
            profile,
            "--package",
            "patchbay",
            "--package",
            "patchbay-bench",
        ],
    )?;
    let bin = root.join("target").join(dir);
    let mut harness = Command::new(bin.join("patchbay-bench"));
    harness
        .arg("--patchbay")
        .arg(bin.join("patchbay"))
        .arg("--node-server")
        .arg(root.join("bench/node/server.js"))
        .arg("--out")
        .arg(root.join("target/bench/report.json"))
        .current_dir(root);
    if quick {
        harness.arg("--quick");
    }
    let status = harness.status().context("cannot run patchbay-bench")?;
    if !status.success() {
        bail!("patchbay-bench failed ({status})");
    }
    if quick {
        // Each micro-benchmark once, as a test.
        cargo(root, &["test", "--workspace", "--benches", "--quiet"])
    } else {
        cargo(root, &["bench", "--workspace", "--benches"])
    }
}

/// The profile that `profile` builds: the release profile's code with its
/// symbols kept (`perf` names frames by them; unwinding reads `.eh_frame`,
/// which `panic = "unwind"` keeps). Given on the command line, so the
/// workspace's manifest stays as it is; its own directory, `target/profiling`.
const PROFILING: [&str; 6] = [
    "--config",
    "profile.profiling.inherits=\"release\"",
    "--config",
    "profile.profiling.strip=false",
    "--config",
    "profile.profiling.debug=\"line-tables-only\"",
];

/// A `perf` profile of the `turn` row: `patchbay-bench --profile-turn`
/// (the row's engine, upstream and metrics, turns in a loop) sampled by
/// CPU clock with DWARF call graphs; then the frames by own time and by
/// time including callees, in `target/bench/turn-profile*.txt`.
fn profile(root: &Path, seconds: u64) -> anyhow::Result<()> {
    let perf_works = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !perf_works {
        bail!(
            "`perf record -e cpu-clock` does not work here: install perf (Debian: apt-get install linux-perf) or run as a user allowed to sample (kernel.perf_event_paranoid)"
        );
    }
    let mut args = vec![
        "build",
        "--profile",
        "profiling",
        "--package",
        "patchbay-bench",
    ];
    args.extend_from_slice(&PROFILING);
    cargo(root, &args)?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let data = out.join("turn.perf.data");
    let mut record = Command::new("perf");
    // 32 KiB of stack a sample: async stacks are deep, and with perf's
    // default 8 KiB most samples lose their outer frames.
    record
        .args(["record", "-e", "cpu-clock", "-F", "299"])
        .args(["--call-graph", "dwarf,32768"])
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg(root.join("target/profiling/patchbay-bench"))
        .args(["--profile-turn", &seconds.to_string()])
        .current_dir(root);
    run(record)?;
    // Each thread's share, each binary's, frames by own time (with their
    // thread), frames by time including what they called.
    let reports: [(&str, &str); 4] = [
        ("turn-profile-threads.txt", "--no-children --sort comm"),
        ("turn-profile-dsos.txt", "--no-children --sort dso"),
        (
            "turn-profile.txt",
            "--no-children --sort comm,dso,sym --percent-limit 0.3",
        ),
        (
            "turn-profile-children.txt",
            "--children --sort sym --percent-limit 1",
        ),
    ];
    for (name, args) in reports {
        // `--no-inline`: resolving inlined frames runs addr2line for every
        // sample (minutes instead of seconds).
        let report = Command::new("perf")
            .arg("report")
            .arg("-i")
            .arg(&data)
            .args(["--stdio", "--no-inline", "-g", "none"])
            .args(args.split(' '))
            .current_dir(root)
            .output()
            .context("cannot run perf report")?;
        if !report.status.success() {
            bail!(
                "perf report failed: {}",
                String::from_utf8_lossy(&report.stderr)
            );
        }
        let path = out.join(name);
        std::fs::write(&path, &report.stdout)?;
        let _ = writeln!(std::io::stdout(), "{}", path.display());
    }
    Ok(())
}

/// The reliability suite with its long forms (10,000 hostile turns, 60 s of
/// load with faults), one table at a time so that no table's timings are
/// another's load, then its tables.
fn reliability(root: &Path) -> anyhow::Result<()> {
    release_test(
        root,
        &[
            "patchbay-tests",
            "--test",
            "reliability",
            "--",
            "--test-threads=1",
        ],
        ("PATCHBAY_RELIABILITY_TURNS", "10000"),
    )?;
    release_test(
        root,
        &[
            "patchbay",
            "--test",
            "cli",
            "--",
            "serve_under_load",
            "slow_clients",
        ],
        ("PATCHBAY_LOAD_SECONDS", "60"),
    )?;
    for table in [
        "faults",
        "scripts",
        "isolation",
        "ssrf",
        "urls",
        "load",
        "clients",
    ] {
        let path = root.join("target/reliability").join(format!("{table}.md"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let _ = writeln!(std::io::stdout(), "## {table}\n\n{text}");
    }
    Ok(())
}

/// The property tests, over and over with many cases, for `minutes`.
fn fuzz(root: &Path, minutes: u64) -> anyhow::Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(minutes * 60);
    let mut rounds = 0;
    while std::time::Instant::now() < until {
        release_test(
            root,
            &[
                "patchbay-tests",
                "--test",
                "reliability",
                "--test",
                "config",
                "--",
                "fuzz::",
                "hostile_input::",
            ],
            ("PROPTEST_CASES", "20000"),
        )?;
        rounds += 1;
    }
    let _ = writeln!(
        std::io::stdout(),
        "fuzz: {rounds} round(s) of 20,000 cases per property, no failure"
    );
    Ok(())
}

/// `cargo test --release --package PACKAGE_AND_ARGS...` with one variable
/// set: how the long forms run tests (release, so their figures mean
/// something).
fn release_test(
    root: &Path,
    package_and_args: &[&str],
    (name, value): (&str, &str),
) -> anyhow::Result<()> {
    let mut args = vec!["test", "--release", "--package"];
    args.extend_from_slice(package_and_args);
    let mut command = cargo_command(root, &args);
    command.env(name, value);
    run(command)
}

fn seconds() -> anyhow::Result<u64> {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|arg| arg == "--seconds");
    match position.and_then(|at| args.get(at + 1)) {
        Some(value) => value
            .parse()
            .with_context(|| format!("--seconds takes a number, not `{value}`")),
        None => Ok(10),
    }
}

fn minutes() -> anyhow::Result<u64> {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|arg| arg == "--minutes");
    match position.and_then(|at| args.get(at + 1)) {
        Some(value) => value
            .parse()
            .with_context(|| format!("--minutes takes a number, not `{value}`")),
        None => Ok(1),
    }
}

/// Every test, then one scan of all they captured for the canary secrets.
fn test(root: &Path) -> anyhow::Result<()> {
    let captured = root.join("target/captured");
    let _ = std::fs::remove_dir_all(&captured);
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if has_nextest {
        cargo(root, &["nextest", "run", "--workspace", "--no-fail-fast"])?;
        cargo(root, &["test", "--workspace", "--doc"])?;
    } else {
        cargo(root, &["test", "--workspace", "--no-fail-fast"])?;
    }
    scan_for_canaries(root)
}

/// The suites that keep what they showed under `target/captured/<area>`
/// (`tests/support/captured.rs`). A missing one fails the scan, so that it
/// cannot pass by finding nothing.
const CAPTURING_AREAS: &[&str] = &["cli", "credentials", "reliability", "scenarios"];

/// Every canary the suites plant starts with this.
const CANARY_PREFIX: &str = "canary-";

/// How a canary can show: as it is (percent- and form-encoding leave
/// `canary-` alone), with `-` percent-encoded (what encoders of every
/// non-alphanumeric byte write), and inside base64, wherever it sits, in
/// the standard and URL-safe alphabets: a Basic header holds the password
/// as base64, after the user name.
fn canary_spellings() -> Vec<String> {
    let mut spellings = vec![CANARY_PREFIX.to_owned()];
    let escaped = CANARY_PREFIX.replace('-', "%2D");
    spellings.push(escaped.to_ascii_lowercase());
    for run in base64_runs(CANARY_PREFIX.as_bytes()) {
        spellings.push(run.replace('+', "-").replace('/', "_"));
        spellings.push(run);
    }
    spellings.sort();
    spellings.dedup();
    spellings
}

/// Whether `line` holds any of `spellings` (percent escapes in either case).
fn shows_canary(line: &str, spellings: &[String]) -> bool {
    let lower = line.to_ascii_lowercase();
    spellings.iter().any(|spelling| {
        if spelling.contains('%') {
            lower.contains(spelling.as_str())
        } else {
            line.contains(spelling.as_str())
        }
    })
}

/// The base64 characters that only `bytes` decide, at each of the three
/// offsets (mod 3) it can start at in an encoded text.
fn base64_runs(bytes: &[u8]) -> Vec<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..3)
        .map(|offset| {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let bits = shifted.len() * 8;
            // Characters from the first free of the leading filler's bits
            // to the last within the bytes' own bits.
            let first = [0, 2, 3][offset];
            (first..bits / 6)
                .map(|index| {
                    let bit = index * 6;
                    let pair = u16::from(shifted[bit / 8]) << 8
                        | u16::from(shifted.get(bit / 8 + 1).copied().unwrap_or(0));
                    let sextet = (pair >> (10 - bit % 8)) & 0x3f;
                    char::from(ALPHABET[usize::from(sextet)])
                })
                .collect()
        })
        .collect()
}

/// Reads every captured log, trace, error, debug print, JSON answer and
/// recording, and the reliability tables, for a canary secret in any of
/// its spellings ([`canary_spellings`]). Names the file and line of each
/// hit, never the line itself.
fn scan_for_canaries(root: &Path) -> anyhow::Result<()> {
    let captured = root.join("target/captured");
    let mut files = Vec::new();
    for area in CAPTURING_AREAS {
        let before = files.len();
        let dir = captured.join(area);
        for entry in std::fs::read_dir(&dir).with_context(|| {
            format!(
                "no output captured in {}: did that suite run?",
                dir.display()
            )
        })? {
            files.push(entry?.path());
        }
        if files.len() == before {
            bail!("no output captured in {}", dir.display());
        }
    }
    if let Ok(tables) = std::fs::read_dir(root.join("target/reliability")) {
        files.extend(tables.filter_map(|entry| Some(entry.ok()?.path())));
    }
    let spellings = canary_spellings();
    let (mut bytes, mut hits) = (0, Vec::new());
    for file in &files {
        let text =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        bytes += text.len();
        for (number, line) in String::from_utf8_lossy(&text).lines().enumerate() {
            if shows_canary(line, &spellings) {
                hits.push(format!("{}:{}", file.display(), number + 1));
            }
        }
    }
    if !hits.is_empty() {
        bail!(
            "a canary secret shows in the suites' output (lines not printed):\n  {}",
            hits.join("\n  ")
        );
    }
    let _ = writeln!(
        std::io::stdout(),
        "secrets: {} files, {} KiB of captured output scanned, no canary",
        files.len(),
        bytes / 1024
    );
    Ok(())
}

fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(cargo_command(root, args))
}

/// A cargo command in the workspace, pointed at the offline V8 archive when
/// there is one.
fn cargo_command(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(root);
    let archive = root.join("../shared/v8").join(V8_ARCHIVE);
    if archive.is_file() {
        seed_v8_download_cache(&archive);
        if std::env::var_os("RUSTY_V8_ARCHIVE").is_none() {
            command.env("RUSTY_V8_ARCHIVE", &archive);
        }
    }
    command
}

fn run(mut command: Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Puts the offline archive where the `v8` build script looks before it
/// downloads (`$CARGO_HOME/.rusty_v8/`, keyed by tag and file name), so a
/// plain `cargo build` or `cargo run` works offline too once any xtask
/// command has run. Best effort: without it only plain cargo is affected.
fn seed_v8_download_cache(archive: &Path) {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let Some(cargo_home) = cargo_home else {
        return;
    };
    let key: String = format!("v{V8_VERSION}/{V8_ARCHIVE}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let cached = cargo_home.join(".rusty_v8").join(key);
    let size = |path: &Path| std::fs::metadata(path).map(|meta| meta.len()).ok();
    if size(&cached).is_some() && size(&cached) == size(archive) {
        return;
    }
    let partial = cached.with_extension("partial");
    let copied = cached
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::copy(archive, &partial))
        .and_then(|_| std::fs::rename(&partial, &cached));
    if let Err(error) = copied {
        let _ = writeln!(
            std::io::stderr(),
            "note: could not seed the V8 download cache at {}: {error}",
            cached.display()
        );
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_v8_version_matches_the_workspace_pin() {
        let manifest = std::fs::read_to_string(super::workspace_root().join("Cargo.toml"))
            .expect("workspace manifest");
        let pin = format!("v8 = \"={}\"", super::V8_VERSION);
        assert!(manifest.contains(&pin), "Cargo.toml does not pin `{pin}`");
    }

    #[test]
    fn the_scan_knows_a_canary_in_base64_at_every_offset_and_percent_encoded() {
        let spellings = super::canary_spellings();
        let found = |text: &str| super::shows_canary(text, &spellings);
        // base64 of "canary-9d41e7-never-shown" after "", "a", "ab" and
        // "bot:" (a Basic pair), and URL-safe after "a" (from Python).
        for encoded in [
            "Y2FuYXJ5LTlkNDFlNy1uZXZlci1zaG93bg==",
            "YWNhbmFyeS05ZDQxZTctbmV2ZXItc2hvd24=",
            "YWJjYW5hcnktOWQ0MWU3LW5ldmVyLXNob3du",
            "Basic Ym90OmNhbmFyeS05ZDQxZTctbmV2ZXItc2hvd24=",
            "YWNhbmFyeS0_Pj8=",
            "canary%2Ds3cr3t",
            "?api_key=canary-s3cr3t%2F%2B",
        ] {
            assert!(found(encoded), "{encoded}");
        }
        assert!(!found("Basic Ym90OnMzY3IzdA== and plain text"));
    }
}
