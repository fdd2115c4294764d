//! The packaging the docs describe (issue 21, item 6): the Dockerfile, the
//! compose file of docs/deploy.md that builds it, `.dockerignore`, and
//! `cargo install --path crates/cli`. No Docker daemon is needed: the files
//! are read and held to each other, and the command the image runs is
//! checked against the binary's own `--help`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's instructions, continuation lines joined, comments out.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
        pending.clear();
    }
    out
}

/// A JSON-form (exec form) argument list: `["a", "b"]`.
fn exec_form(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not an exec-form list: {text}: {e}"))
}

/// The body of the fenced block of `lang` that contains `needle`.
fn block_with(markdown: &str, lang: &str, needle: &str) -> String {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
        .into_iter()
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no ```{lang} block with {needle:?}"))
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_slim_and_unprivileged() {
    let steps = instructions(&read("Dockerfile"));
    let stages: Vec<&String> = steps
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, rest)| rest)
        .collect();
    assert!(
        stages.len() >= 3,
        "v8 context, builder and runtime: {stages:?}"
    );
    assert!(
        stages
            .iter()
            .any(|s| s.starts_with("rust:") && s.ends_with(" AS builder")),
        "a builder stage on the Rust image: {stages:?}"
    );
    let runtime = stages.last().expect("a final stage");
    assert!(
        runtime.starts_with("debian:") && runtime.contains("-slim"),
        "the runtime image is Debian slim: {runtime}"
    );

    let build = steps
        .iter()
        .find(|(k, rest)| k == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest.as_str())
        .expect("a RUN with cargo build");
    for part in [
        "--release",
        "--locked",
        "--package patchbay",
        "RUSTY_V8_ARCHIVE",
        "from=v8",
    ] {
        assert!(build.contains(part), "the build step has {part}: {build}");
    }

    // Everything after the last FROM is the image that ships.
    let last_from = steps
        .iter()
        .rposition(|(k, _)| k == "FROM")
        .expect("a FROM");
    let runtime_steps = &steps[last_from + 1..];
    let get = |keyword: &str| -> Vec<&str> {
        runtime_steps
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let copies = get("COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=builder ") && c.ends_with(" /usr/local/bin/patchbay")),
        "the runtime stage takes the binary from the builder: {copies:?}"
    );
    let user = *get("USER").last().expect("a USER in the runtime stage");
    let name = user.split(':').next().unwrap_or(user);
    assert!(
        !["", "root", "0"].contains(&name),
        "the image does not run as root: USER {user}"
    );
    let runs = get("RUN").concat();
    assert!(
        runs.contains(&format!("--uid {name}")),
        "USER {user} is the user the runtime stage creates"
    );

    let exposed = get("EXPOSE");
    assert_eq!(exposed, ["8080"], "one port, the one serve listens on");
    let health = get("HEALTHCHECK").concat();
    let probe = exec_form(health.split_once("CMD ").expect("HEALTHCHECK CMD").1);
    assert_eq!(probe[0], "curl");
    assert!(
        probe.contains(&"--fail".to_owned())
            && probe.last().map(String::as_str) == Some("http://127.0.0.1:8080/healthz"),
        "the health check fails on a non-2xx /healthz on the exposed port: {probe:?}"
    );
    assert!(
        runs.contains("curl"),
        "the runtime stage installs what HEALTHCHECK runs"
    );

    assert_eq!(exec_form(get("ENTRYPOINT")[0]), ["patchbay"]);
    let cmd = exec_form(get("CMD")[0]);
    assert_eq!(cmd[0], "serve");
    let listen = cmd
        .iter()
        .position(|a| a == "--listen")
        .map(|i| cmd[i + 1].as_str());
    assert_eq!(
        listen,
        Some("0.0.0.0:8080"),
        "the default command listens where EXPOSE and HEALTHCHECK say"
    );
}

#[test]
fn the_image_command_is_one_the_binary_accepts() {
    // The options the Dockerfile and the compose file pass to `serve`.
    let help = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["serve", "--help"])
        .output()
        .expect("patchbay serve --help");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for option in ["--bot", "--listen", "--store"] {
        assert!(help.contains(option), "serve has {option}");
    }
}

#[test]
fn the_compose_file_builds_the_dockerfile() {
    let deploy = read("docs/deploy.md");
    let compose = block_with(&deploy, "yaml", "services:");
    let service: Vec<&str> = compose
        .lines()
        .skip_while(|l| l.trim() != "patchbay:")
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .collect();
    let service = service.join("\n");
    assert!(
        service.contains("build:"),
        "the patchbay service is built: {service}"
    );
    assert!(
        service.contains("context: ."),
        "from the repository: {service}"
    );
    assert!(
        service.contains("dockerfile: Dockerfile") && root().join("Dockerfile").is_file(),
        "with the repository's Dockerfile: {service}"
    );
    assert!(service.contains("image: patchbay:latest"));
    assert!(
        service.contains("\"--listen\", \"0.0.0.0:8080\""),
        "listening on the image's exposed port: {service}"
    );
    assert!(
        service.contains("additional_contexts: { v8:"),
        "the offline way is shown: {service}"
    );

    // The docker commands of the doc build the same image.
    let shell = block_with(&deploy, "sh", "docker build");
    assert!(shell.contains("docker build -t patchbay:latest ."));
    assert!(shell.contains("--build-context v8="));
}

#[test]
fn the_build_context_keeps_what_the_build_reads() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        patterns.contains(&"target/"),
        "build output stays out: {patterns:?}"
    );
    assert!(
        patterns.contains(&".git/"),
        "history stays out: {patterns:?}"
    );
    // The binary embeds examples/ (demo) and needs every workspace member's
    // manifest and the lock file.
    for needed in [
        "examples",
        "crates",
        "tests",
        "xtask",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        assert!(
            !patterns
                .iter()
                .any(|p| p.trim_end_matches('/') == needed || p.starts_with(&format!("{needed}/"))),
            "{needed} is in the build context"
        );
    }
}

#[test]
fn installing_is_documented() {
    for doc in ["docs/deploy.md", "README.md"] {
        assert!(
            read(doc).contains("cargo install --path crates/cli"),
            "{doc} says how to install the binary"
        );
    }
}
