//! docs/getting-started.md runs as written: its ```` ```sh ```` blocks, in
//! order, each in a fresh `bash -eo pipefail` in a scratch directory that
//! holds what they use from the repository (`examples/`, one fixture),
//! with this build's `patchbay` first on `PATH`.
//!
//! A block's info string says how it runs: `setup` blocks build and
//! install the command, which this test already has, and are not run;
//! `background` blocks are started and left running (what the reader runs
//! in a second terminal) until the end, `ready=ADDR` waiting until ADDR
//! takes connections; `exit=N` expects that exit code (0 otherwise).
//! The doc's ports (8080, 8081, the demo API's 9090) become free ones, and
//! `API_BASE` points the bot `patchbay init` writes at the moved demo API.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patchbay_tests::captured;

use crate::root;

/// One ```` ```sh ```` block of the doc.
struct Block {
    /// The words after `sh` in its info string.
    flags: Vec<String>,
    /// Its text.
    text: String,
    /// Its first line in the doc, for messages.
    line: usize,
}

impl Block {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|word| word == flag)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.flags
            .iter()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }
}

fn sh_blocks(doc: &str) -> Vec<Block> {
    enum In {
        Text,
        Sh(Block),
        Other,
    }
    let mut blocks = Vec::new();
    let mut state = In::Text;
    for (index, line) in doc.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        // A closing fence has nothing after its backticks.
        let closes = fence.is_some_and(|rest| rest.trim().is_empty());
        state = match state {
            In::Sh(block) if closes => {
                blocks.push(block);
                In::Text
            }
            In::Sh(mut block) => {
                block.text.push_str(line);
                block.text.push('\n');
                In::Sh(block)
            }
            In::Other if closes => In::Text,
            In::Other => In::Other,
            In::Text => match fence {
                Some(info) => {
                    let mut words = info.split_whitespace();
                    if words.next() == Some("sh") {
                        In::Sh(Block {
                            flags: words.map(str::to_owned).collect(),
                            text: String::new(),
                            line: index + 1,
                        })
                    } else {
                        In::Other
                    }
                }
                None => In::Text,
            },
        };
    }
    assert!(matches!(state, In::Text), "an unclosed code block");
    blocks
}

/// Background processes of the doc, stopped (their whole process group)
/// when the test ends, passing or not.
#[derive(Default)]
struct Background(Vec<(Child, PathBuf)>);

impl Drop for Background {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let group = format!("-{}", child.id());
            for signal in ["TERM", "KILL"] {
                let _ = Command::new("kill")
                    .args(["-s", signal, "--", &group])
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
            }
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn getting_started_runs_as_written() {
    let doc = std::fs::read_to_string(root().join("docs/getting-started.md")).expect("the doc");
    let blocks = sh_blocks(&doc);
    let setup: Vec<&Block> = blocks.iter().filter(|b| b.has("setup")).collect();
    assert!(
        setup
            .first()
            .is_some_and(|block| block.text.starts_with("cargo xtask demo\n")),
        "the doc starts with `cargo xtask demo`, which works offline"
    );
    assert!(
        blocks.iter().filter(|b| !b.has("setup")).count() >= 8,
        "the doc's commands were found"
    );

    let dir = std::env::temp_dir().join(format!("patchbay-getting-started-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("examples"), &dir.join("examples"));
    let fixtures = dir.join("tests/fixtures/config");
    std::fs::create_dir_all(&fixtures).expect("fixtures");
    std::fs::copy(
        root().join("tests/fixtures/config/four-diagnostics.yaml"),
        fixtures.join("four-diagnostics.yaml"),
    )
    .expect("fixture");

    let bin = Path::new(env!("CARGO_BIN_EXE_patchbay"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (serve, own, api) = (free_port(), free_port(), free_port());
    let moved = |text: &str| {
        text.replace("127.0.0.1:8080", &format!("127.0.0.1:{serve}"))
            .replace("localhost:8080", &format!("localhost:{serve}"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{own}"))
            .replace("localhost:8081", &format!("localhost:{own}"))
            .replace(
                "--api-listen 127.0.0.1:9090",
                &format!("--api-listen 127.0.0.1:{api}"),
            )
    };
    let api_base = format!("http://127.0.0.1:{api}");
    let command = |script: &str| {
        let mut command = Command::new("bash");
        command
            .args(["-eo", "pipefail", "-c", script])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("API_BASE", &api_base)
            .env_remove("RUST_LOG");
        command
    };

    let mut background = Background::default();
    let mut transcript = String::new();
    for block in blocks.iter().filter(|b| !b.has("setup")) {
        let script = moved(&block.text);
        transcript.push_str(&format!("$ {}", script));
        if block.has("background") {
            let log = dir.join(format!("background-{}.log", block.line));
            let file = std::fs::File::create(&log).expect("log");
            let child = command(&script)
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("log"))
                .stderr(file)
                .process_group(0)
                .spawn()
                .expect("start a background block");
            background.0.push((child, log.clone()));
            if let Some(ready) = block.value("ready") {
                let address: SocketAddr = moved(ready).parse().expect("ready=ADDR");
                let deadline = Instant::now() + Duration::from_secs(60);
                while TcpStream::connect(address).is_err() {
                    let (child, _) = background.0.last_mut().expect("started");
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "the block at line {} stopped ({status}):\n{script}\n{}",
                            block.line,
                            read_log(&log)
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the block at line {} never listened on {address}:\n{}",
                        block.line,
                        read_log(&log)
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            continue;
        }
        let expected: i32 = block
            .value("exit")
            .map_or(0, |code| code.parse().expect("exit=N"));
        let mut child = command(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run a block");
        // Read both pipes while it runs, so a chatty block cannot stall.
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the block at line {} took over 120 s:\n{script}",
                    block.line
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        transcript.push_str(&stdout);
        transcript.push_str(&stderr);
        transcript.push('\n');
        assert_eq!(
            status.code(),
            Some(expected),
            "the block at line {} of docs/getting-started.md:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            block.line
        );
    }
    captured::keep("cli", "getting-started", &transcript);

    // What the doc says the commands show, they show.
    for said in [
        "examples/faq-bot.test.yaml: 0 error(s), 0 warning(s)",
        "did you mean `credential`?",
        "Your order is on its way with DHL, tracking number JD0146000012.",
        "Wrote my-bot/bot.yaml",
        "my-bot/bot.test.yaml: 0 error(s), 0 warning(s)",
        "bot: Order 1234 is on its way with DHL: Headphones (1), Cable (2).",
        "test result: ok. 5 passed",
        "test result: ok. 6 passed",
        r#""messages":["Order 1234 is on its way with DHL: Headphones (1), Cable (2)."]"#,
    ] {
        assert!(
            transcript.contains(said),
            "the doc's commands did not show `{said}`:\n{transcript}"
        );
    }
    drop(background);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocks_are_read_with_their_flags() {
    let doc = "text\n```sh setup\ncargo x\n```\n```text\n```sh not a block\n```\n```sh background ready=127.0.0.1:1\nserve\n```\n```sh exit=1\nfalse\n```\n";
    let blocks = sh_blocks(doc);
    let shown: Vec<(Vec<String>, &str, usize)> = blocks
        .iter()
        .map(|block| (block.flags.clone(), block.text.as_str(), block.line))
        .collect();
    assert_eq!(
        shown,
        [
            (vec!["setup".to_owned()], "cargo x\n", 2),
            (
                vec!["background".to_owned(), "ready=127.0.0.1:1".to_owned()],
                "serve\n",
                8
            ),
            (vec!["exit=1".to_owned()], "false\n", 11),
        ]
    );
    assert_eq!(blocks[1].value("ready"), Some("127.0.0.1:1"));
    assert!(blocks[0].has("setup"));
}

#[test]
fn readme_starts_with_commands_that_work_offline() {
    // `cargo xtask` points the build at the offline V8 archive when there
    // is one; a plain `cargo run` would download V8.
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let first = sh_blocks(&readme).into_iter().next().expect("a sh block");
    let commands: Vec<&str> = first
        .text
        .lines()
        .filter_map(|line| line.split('#').next())
        .map(str::trim)
        .collect();
    assert_eq!(
        commands,
        ["cargo xtask demo", "cargo xtask ci"],
        "{}",
        first.text
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(ci.trim_end().ends_with("cargo xtask ci"), "{ci}");
}
