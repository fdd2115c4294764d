//! `patchbay check`'s files: bot files and test files (`*.test.yaml`),
//! named or found in directories. A test file is checked as a test file
//! (docs/testing.md), its bot loaded, and each interaction its cases start
//! at looked up in it; its diagnostics have the shape of a bot file's.

use std::path::{Path, PathBuf};

use anyhow::Context;
use patchbay_config::{Code, DocStep, Report, Severity};
use patchbay_testing::TestFile;

/// The files to check: those named, and under each directory named every
/// `*.yaml` and `*.yml` (recursively, skipping hidden directories,
/// `target` and `node_modules`), in name order. A JSON bot file is checked
/// when named.
pub(crate) fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)
                .with_context(|| format!("cannot read directory {}", path.display()))?;
            if found.is_empty() {
                anyhow::bail!("no bot or test files (*.yaml, *.yml) in {}", path.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&path, files)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether `path` names a test file: `*.test.yaml` or `*.test.yml`.
pub(crate) fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with(".test.yaml") || name.ends_with(".test.yml"))
}

/// Checks a test file: it reads as one, its bot exists and loads, and the
/// interactions its cases start at are the bot's.
pub(crate) fn test_file(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read test file {}", path.display()))?;
    let name = path.display().to_string();
    let (file, mut document) = TestFile::check(&name, &text);
    let Some(file) = file else {
        return Ok(document.into_report());
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let bot_path = match &file.bot {
        Some(bot) => dir.join(bot),
        None => crate::test::bot_beside(path),
    };
    let bot_key = [DocStep::Key("bot")];
    // With no `bot:` the diagnostic goes at the top of the file.
    let at: &[DocStep<'_>] = if file.bot.is_some() { &bot_key } else { &[] };
    let bot_text = match std::fs::read_to_string(&bot_path) {
        Ok(text) => text,
        Err(error) => {
            let diagnostic = document.add(
                Severity::Error,
                Code::BotNotLoaded,
                at,
                format!("cannot read its bot {}: {error}", bot_path.display()),
            );
            diagnostic.help = Some(if file.bot.is_some() {
                "`bot:` names the bot file, relative to this test file".to_owned()
            } else {
                "a test file tests the bot beside it (`NAME.test.yaml` tests `NAME.yaml`); `bot: FILE` names another".to_owned()
            });
            return Ok(document.into_report());
        }
    };
    match patchbay_config::load(&bot_path.display().to_string(), &bot_text) {
        Ok(loaded) => file.check_against(&loaded.bot, &mut document),
        Err(report) => {
            let diagnostic = document.add(
                Severity::Error,
                Code::BotNotLoaded,
                at,
                format!(
                    "its bot {} does not load: {} error(s)",
                    bot_path.display(),
                    report.count(Severity::Error)
                ),
            );
            diagnostic.help = Some(format!(
                "`patchbay check {}` shows them",
                bot_path.display()
            ));
        }
    }
    Ok(document.into_report())
}
