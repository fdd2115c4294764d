//! A new user's first hour (issue 21), as they run it: `patchbay init`
//! writes a bot whose test file passes offline and that checks clean, and
//! never replaces a file; `check` reads test files as test files and
//! directories as what they hold; `run` exits 1 when a call reached no
//! upstream, and `run --replay` needs no secret.

use std::path::{Path, PathBuf};
use std::process::Output;

use patchbay_tests::captured;
use serde_json::Value;

use crate::{patchbay, root, stdout};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-init-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}{}", stdout(output), stderr(output)))
}

#[test]
fn init_writes_a_bot_that_checks_clean_and_whose_tests_pass() {
    let dir = temp_dir("fresh");
    let bot_dir = dir.join("My Shop");
    let output = patchbay(&["init", utf8(&bot_dir)]);
    let said = stdout(&output);
    captured::keep("cli", "init", &said);
    assert!(output.status.success(), "{said}{}", stderr(&output));
    assert!(
        said.contains("patchbay test"),
        "it says what to run next: {said}"
    );
    let bot = std::fs::read_to_string(bot_dir.join("bot.yaml")).expect("bot.yaml");
    assert!(bot_dir.join("bot.test.yaml").is_file());

    // The editor's schema lines name the schemas `patchbay schema` prints.
    let tests = std::fs::read_to_string(bot_dir.join("bot.test.yaml")).expect("test file");
    for (text, args) in [
        (&bot, &["schema"][..]),
        (&tests, &["schema", "--test-file"][..]),
    ] {
        let schema = json_of(&patchbay(args));
        let id = schema["$id"].as_str().expect("the schema's $id");
        assert_eq!(
            text.lines().next(),
            Some(format!("# yaml-language-server: $schema={id}").as_str()),
            "{text}"
        );
    }
    // What the bot is made of: a local API opened by network.allow, a
    // transform, rules, a question with an answer rule.
    for part in [
        "name: my-shop",
        "allow: [127.0.0.1]",
        "API_BASE: http://127.0.0.1:9090",
        "transformScript:",
        "customDataFields:",
        "type: question",
        "regex:",
        "apiResult: failure",
    ] {
        assert!(bot.contains(part), "no `{part}` in:\n{bot}");
    }

    // Its tests pass offline, right away.
    let tested = patchbay(&["test", utf8(&bot_dir)]);
    let report = stdout(&tested);
    assert!(tested.status.success(), "{report}{}", stderr(&tested));
    assert!(report.contains("test result: ok. 5 passed"), "{report}");

    // Bot and test file check clean, warnings included.
    let checked = patchbay(&["check", "--deny-warnings", utf8(&bot_dir)]);
    let report = stdout(&checked);
    assert!(checked.status.success(), "{report}");
    for file in ["bot.yaml", "bot.test.yaml"] {
        let line = format!("{}: 0 error(s), 0 warning(s)", utf8(&bot_dir.join(file)));
        assert!(report.contains(&line), "no `{line}` in:\n{report}");
    }

    // A second init refuses to replace anything.
    std::fs::write(bot_dir.join("bot.yaml"), "name: mine\n").expect("edit");
    let again = patchbay(&["init", utf8(&bot_dir)]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("bot.yaml already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(bot_dir.join("bot.yaml")).expect("bot"),
        "name: mine\n"
    );
    // Nor a test file alone.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).expect("dir");
    std::fs::write(other.join("bot.test.yaml"), "cases: []\n").expect("file");
    let refused = patchbay(&["init", utf8(&other)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(!other.join("bot.yaml").exists(), "nothing half written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_without_a_directory_writes_here_named_after_it() {
    let dir = temp_dir("here").join("orders_bot");
    std::fs::create_dir_all(&dir).expect("dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .arg("init")
        .current_dir(&dir)
        .output()
        .expect("run patchbay");
    assert!(output.status.success(), "{}", stderr(&output));
    let bot = std::fs::read_to_string(dir.join("bot.yaml")).expect("bot.yaml");
    assert!(bot.contains("\nname: orders-bot\n"), "{bot}");
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}

#[test]
fn check_reads_test_files_as_test_files_and_directories_whole() {
    // The examples as a shell glob gives them, and as a directory.
    let examples = root().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| utf8(&path).to_owned())
        .collect();
    files.sort();
    assert!(files.iter().any(|file| file.ends_with(".test.yaml")));
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let globbed = patchbay(&args);
    assert!(globbed.status.success(), "{}", stdout(&globbed));
    let whole = patchbay(&["check", "--json", "examples"]);
    let json = json_of(&whole);
    assert!(whole.status.success(), "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(
        json["files"].as_array().map(Vec::len),
        Some(files.len()),
        "every bot and test file: {json}"
    );

    // Mistakes in a test file, shown as a bot file's are.
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("shop.yaml"),
        "name: shop\ndialogs:\n  - name: main\n    interactions:\n      - name: greet\n        type: text\n        text: Hello\n        next: end\n",
    )
    .expect("bot");
    std::fs::write(
        dir.join("shop.test.yaml"),
        "cases:\n  - name: greets\n    interaction: greet\n    expect: { mesages: [Hello] }\n",
    )
    .expect("test file");
    let output = patchbay(&["check", utf8(&dir.join("shop.test.yaml"))]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let file = utf8(&dir.join("shop.test.yaml")).to_owned();
    assert!(
        report.contains(&format!(
            "error[unknown-field]: {file}:4:15: unknown field `mesages`"
        )),
        "{report}"
    );
    assert!(
        report.contains("expect: { mesages: [Hello] }")
            && report.contains("did you mean `messages`?"),
        "the source line, and a fix: {report}"
    );
    assert!(!report.contains("invalid YAML"), "{report}");

    // An interaction the bot does not have; a bot that is not there.
    std::fs::write(
        dir.join("shop.test.yaml"),
        "cases:\n  - name: greets\n    interaction: gret\n    expect: { messages: [Hello] }\n",
    )
    .expect("test file");
    std::fs::write(
        dir.join("lost.test.yaml"),
        "bot: nowhere.yaml\ncases:\n  - name: one\n    expect: { next: end }\n",
    )
    .expect("test file");
    let output = patchbay(&["check", "--json", utf8(&dir)]);
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&output);
    let codes: Vec<(String, String)> = json["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|file| {
            let name = file["file"].as_str().unwrap_or_default().to_owned();
            file["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |d| {
                    let at = Path::new(&name)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_owned();
                    (at, d["code"].as_str().unwrap_or_default().to_owned())
                })
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("lost.test.yaml".to_owned(), "bot-not-loaded".to_owned()),
            (
                "shop.test.yaml".to_owned(),
                "unknown-interaction".to_owned()
            ),
        ],
        "{json}"
    );
    let shop = json["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|file| {
            file["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("shop.test.yaml"))
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(shop["diagnostics"][0]["line"], 3, "{shop}");
    assert_eq!(
        shop["diagnostics"][0]["help"], "did you mean `greet`?",
        "{shop}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bot calling `base` (a loopback server, or none), opened or not by
/// `network.allow`.
fn calling_bot(dir: &Path, base: &str, allow: bool) -> PathBuf {
    let network = if allow {
        "network:\n  allow: [127.0.0.1]\n"
    } else {
        ""
    };
    let path = dir.join(if allow { "open.yaml" } else { "closed.yaml" });
    std::fs::write(
        &path,
        format!(
            "name: caller\n{network}integrations:\n  - name: ping\n    responseDataVariable: PING\n    type: api\n    method: GET\n    url: {base}/ping\n    http: {{ retries: 0 }}\ndialogs:\n  - name: main\n    interactions:\n      - name: call\n        type: integration\n        integration: ping\n        rules:\n          - match: {{ apiResult: failure }}\n            messages: [Down]\n            next: end\n"
        ),
    )
    .expect("bot");
    path
}

#[test]
fn run_exits_1_when_a_call_reaches_no_upstream() {
    let dir = temp_dir("unreachable");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let base = format!("http://{closed}");
    let open = calling_bot(&dir, &base, true);
    let output = patchbay(&["run", utf8(&open), "--interaction", "call"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let trace = stdout(&output);
    assert!(
        trace.contains("bot: Down"),
        "the turn is shown, on its failure path: {trace}"
    );
    assert!(
        stderr(&output).contains(&format!("error: no response to GET {base}/ping: "))
            && stderr(&output).contains("(connect)"),
        "{}",
        stderr(&output)
    );
    let output = patchbay(&["run", utf8(&open), "--interaction", "call", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&output);
    assert_eq!(json["error"]["code"], "upstream_unreachable", "{json}");
    assert_eq!(json["turn"]["messages"][0], "Down", "{json}");

    // Without network.allow the guard refuses it: `check` says so before
    // anything runs, and `run` fails the same way.
    let closed_bot = calling_bot(&dir, &base, false);
    let checked = patchbay(&["check", utf8(&closed_bot)]);
    assert!(
        stdout(&checked).contains("warning[blocked-by-network]"),
        "{}",
        stdout(&checked)
    );
    let output = patchbay(&["run", utf8(&closed_bot), "--interaction", "call"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("(blocked)"), "{}", stderr(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_replay_needs_no_secret() {
    let dir = temp_dir("replay");
    let bot = dir.join("keyed.yaml");
    std::fs::write(
        &bot,
        r#"name: keyed
env:
  SHOP_KEY: null
credentials:
  - name: shop
    type: api-key
    header: X-Shop-Key
    value: "{$env.SHOP_KEY}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: https://shop.example.com/items/mug
    credential: shop
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - match: { apiResult: success }
            messages: ["Found {ITEM.name}"]
            next: end
"#,
    )
    .expect("bot");
    let recordings = dir.join("recordings");
    std::fs::create_dir_all(&recordings).expect("recordings");
    let recording = serde_json::json!({
        "request": {"method": "GET", "url": "https://shop.example.com/items/mug", "headers": {"x-shop-key": "[redacted]"}, "body": null},
        "response": {"status": 200, "headers": {"content-type": "application/json"}, "body": {"name": "Blue mug"}},
    });
    std::fs::write(
        recordings.join("001-GET-shop.example.com-items-mug.json"),
        recording.to_string(),
    )
    .expect("recording");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["run", utf8(&bot), "--interaction", "look-up", "--json"])
        .args(["--replay", utf8(&recordings)])
        .env_remove("SHOP_KEY")
        .output()
        .expect("run patchbay");
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(json_of(&output)["messages"][0], "Found Blue mug");
    // A run that calls out still needs it.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["run", utf8(&bot), "--interaction", "look-up", "--json"])
        .env_remove("SHOP_KEY")
        .output()
        .expect("run patchbay");
    assert_eq!(json_of(&output)["error"]["code"], "missing_env");
    let _ = std::fs::remove_dir_all(&dir);
}
