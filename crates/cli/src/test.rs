//! `patchbay test`: the test files' cases, in `cargo test`'s shape or as
//! JUnit XML.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use patchbay_script::{RuntimeOptions, ScriptRuntime};
use patchbay_testing::{
    CaseRecordings, FileOutcome, TestFile, case_line, junit, run_case, summary, totals,
};

/// How results are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A line a case, the failures with a diff, a summary line.
    Human,
    /// JUnit XML on stdout, for CI systems.
    Junit,
}

pub(crate) struct TestOptions {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) format: Format,
    pub(crate) replay: Option<PathBuf>,
}

pub(crate) async fn run(options: TestOptions) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let files = test_files(&options.paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no test files (*.test.yaml) in {}",
            options
                .paths
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let replay = match &options.replay {
        Some(dir) => read_recordings(dir)?,
        None => Vec::new(),
    };
    let human = options.format == Format::Human;
    let mut outcomes = Vec::new();
    for path in &files {
        let shown = path.display().to_string();
        let outcome = match run_file(path, &replay, &scripts, |line| {
            if human {
                let _ = writeln!(std::io::stdout(), "{}", case_line(&shown, line));
            }
        })
        .await
        {
            Ok(cases) => Ok(cases),
            Err(error) => {
                if human {
                    let _ = writeln!(std::io::stdout(), "file {shown} ... FAILED");
                }
                Err(format!("{error:#}"))
            }
        };
        outcomes.push(FileOutcome {
            file: shown,
            cases: outcome,
        });
    }
    let elapsed = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    match options.format {
        Format::Human => write!(stdout, "{}", summary(&outcomes, elapsed))?,
        Format::Junit => write!(stdout, "{}", junit(&outcomes, elapsed))?,
    }
    let (_, failed) = totals(&outcomes);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one test file's cases in order, calling `each` as each finishes.
async fn run_file(
    path: &Path,
    replay: &[(String, String)],
    scripts: &ScriptRuntime,
    each: impl Fn(&patchbay_testing::CaseOutcome),
) -> anyhow::Result<Vec<patchbay_testing::CaseOutcome>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = TestFile::parse(&path.display().to_string(), &text)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let bot_path = match &file.bot {
        Some(bot) => dir.join(bot),
        None => bot_beside(path),
    };
    let bot = crate::load_bot(&bot_path)?;
    let mut cases = Vec::new();
    for case in &file.cases {
        let mut recordings = CaseRecordings {
            case: match &case.replay {
                Some(recorded) => read_recordings(&dir.join(recorded))?,
                None => Vec::new(),
            },
            turns: Vec::new(),
        };
        recordings.case.extend(replay.iter().cloned());
        for turn in &case.turns {
            recordings.turns.push(match &turn.replay {
                Some(recorded) => read_recordings(&dir.join(recorded))?,
                None => Vec::new(),
            });
        }
        let outcome = run_case(&bot, &file, case, recordings, scripts).await?;
        each(&outcome);
        cases.push(outcome);
    }
    Ok(cases)
}

/// `faq-bot.test.yaml` tests `faq-bot.yaml`.
pub(crate) fn bot_beside(test: &Path) -> PathBuf {
    let name = test
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let bot = name
        .strip_suffix(".test.yaml")
        .map(|stem| format!("{stem}.yaml"))
        .or_else(|| {
            name.strip_suffix(".test.yml")
                .map(|stem| format!("{stem}.yml"))
        })
        .unwrap_or_else(|| name.to_owned());
    test.with_file_name(bot)
}

/// The test files named, and those under the directories named, sorted.
fn test_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files)
                .with_context(|| format!("cannot read directory {}", path.display()))?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&path, files)?;
            }
        } else if name.ends_with(".test.yaml") || name.ends_with(".test.yml") {
            files.push(path);
        }
    }
    Ok(())
}

/// Every `*.json` recording in `dir`, in name order (the order they were
/// recorded in).
pub(crate) fn read_recordings(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read recordings in {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}
