//! Commands run once, as a user runs them.

use crate::{patchbay, root, stdout};

#[test]
fn check_passes_on_every_example() {
    let output = patchbay(&[
        "check",
        "--deny-warnings",
        "examples/faq-bot.yaml",
        "examples/order-status.yaml",
        "examples/support-ticket.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn check_reports_the_four_mistakes_precisely() {
    let output = patchbay(&[
        "check",
        "--json",
        "tests/fixtures/config/four-diagnostics.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let diagnostics = report["files"][0]["diagnostics"].as_array().expect("list");
    let found: Vec<(String, u64, u64)> = diagnostics
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("unknown-field".to_owned(), 14, 5),
            ("secret-in-url".to_owned(), 17, 7),
            ("invalid-json-path".to_owned(), 20, 15),
            ("unknown-credential".to_owned(), 26, 17),
        ]
    );
    assert_eq!(diagnostics[0]["help"], "did you mean `credential`?");
    assert_eq!(diagnostics[3]["help"], "did you mean `kb-oauth`?");
}

#[test]
fn human_output_names_file_line_and_column() {
    let output = patchbay(&["check", "tests/fixtures/config/four-diagnostics.yaml"]);
    let text = stdout(&output);
    assert!(
        text.contains("tests/fixtures/config/four-diagnostics.yaml:14:5"),
        "{text}"
    );
    assert!(text.contains("did you mean `credential`?"), "{text}");
}

#[test]
fn warnings_fail_only_when_denied() {
    let file = "tests/fixtures/config/lint-unreachable.yaml";
    assert_eq!(patchbay(&["check", file]).status.code(), Some(0));
    assert_eq!(
        patchbay(&["check", "--deny-warnings", file]).status.code(),
        Some(1)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(patchbay(&["check"]).status.code(), Some(2));
    assert_eq!(patchbay(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn missing_files_are_named() {
    let output = patchbay(&["check", "no/such/bot.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no/such/bot.yaml"));
}

#[test]
fn inline_secrets_never_reach_the_output() {
    for format in [&["check"][..], &["check", "--json"][..]] {
        let mut args = format.to_vec();
        args.extend([
            "tests/fixtures/config/inline-secret.yaml",
            "tests/fixtures/config/env-secret-with-value.yaml",
        ]);
        let output = patchbay(&args);
        let all = format!(
            "{}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        patchbay_tests::captured::keep("cli", "check-inline-secrets", &all);
        assert_eq!(output.status.code(), Some(1));
        assert!(!all.contains("canary-s3cr3t"), "secret leaked:\n{all}");
    }
}

#[test]
fn schema_is_json_schema() {
    let output = patchbay(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org"))
    );
    assert!(schema["properties"]["integrations"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_runs_the_authorization_code_grant_and_keeps_the_tokens() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;

    use patchbay_tests::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer};
    use patchbay_transport::{Client, NetworkGuard, Request};

    let server = OAuthServer::start().await;
    let dir = std::env::temp_dir().join(format!("patchbay-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("bot.yaml");
    std::fs::write(
        &bot,
        r#"name: auth-test
network:
  allow: [127.0.0.1]
env:
  AUTH_URL: null
  TOKEN_URL: null
  CLIENT_SECRET: null
credentials:
  - name: crm
    type: oauth2
    grant: authorization-code
    clientId: "bot:client"
    clientSecret: "{$env.CLIENT_SECRET}"
    authUrl: "{$env.AUTH_URL}"
    tokenUrl: "{$env.TOKEN_URL}"
    scope: profile
"#,
    )
    .expect("bot file");
    assert_eq!(CLIENT_ID, "bot:client");
    let store = dir.join("tokens.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .arg("auth")
        .arg(&bot)
        .arg("crm")
        .args(["--env", &format!("AUTH_URL={}", server.auth_url())])
        .args(["--env", &format!("TOKEN_URL={}", server.token_url())])
        .args(["--env", &format!("CLIENT_SECRET={CLIENT_SECRET}")])
        .arg("--token-store")
        .arg(&store)
        .args(["--timeout-secs", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn patchbay auth");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut printed = Vec::new();
    let authorize_url = loop {
        let line = received
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the command prints the authorize URL");
        printed.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("http://")
            && url.contains("/authorize?")
        {
            break url::Url::parse(&format!("http://{url}")).expect("authorize url");
        }
    };
    // Play the browser: the authorization server redirects to the
    // command's loopback listener.
    let browser = Client::builder()
        .guard(NetworkGuard::with_allowed(["127.0.0.1"]).expect("allow"))
        .build()
        .expect("client");
    let mut ask = Request::new(http::Method::GET, authorize_url);
    ask.limits.max_redirects = 0;
    let redirect = browser.send(ask).await.expect("authorize");
    let location = redirect
        .headers
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("redirect location");
    let landing = browser
        .send(Request::new(
            http::Method::GET,
            url::Url::parse(location).expect("callback url"),
        ))
        .await
        .expect("callback");
    assert_eq!(landing.status, 200);
    let status = child.wait().expect("command ends");
    assert!(status.success(), "patchbay auth failed");
    printed.extend(received.try_iter());
    let output = printed.join("\n");
    assert!(output.contains("Authorized `crm`"), "{output}");
    assert!(
        !output.contains("tok-") && !output.contains("refresh-"),
        "tokens printed:\n{output}"
    );
    let saved = std::fs::read_to_string(&store).expect("token store");
    assert!(saved.contains("refresh-"), "the refresh token is kept");
    let mode = std::fs::metadata(&store)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_script_syntax_errors_where_they_are() {
    let dir = std::env::temp_dir().join(format!("patchbay-script-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("bot.yaml");
    std::fs::write(
        &bot,
        "name: scripted\nintegrations:\n  - name: search\n    responseDataVariable: FAQS\n    type: api\n    method: GET\n    url: https://kb.example.com/search\n    transformScript: |\n      var data = JSON.parse(api_FAQS.jsonData);\n      var broken = ;\n",
    )
    .expect("bot file");
    let output = patchbay(&["check", "--json", bot.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let diagnostic = &report["files"][0]["diagnostics"][0];
    assert_eq!(diagnostic["code"], "script-syntax");
    assert_eq!(diagnostic["line"], 10, "{diagnostic}");
    assert_eq!(diagnostic["column"], 20, "{diagnostic}");
    let message = diagnostic["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("integration search, transformScript: SyntaxError"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_refuses_bad_input_with_exit_2() {
    let faq = "examples/faq-bot.yaml";
    for (args, expected) in [
        (vec!["run", faq], "needs --interaction NAME"),
        (
            vec!["run", faq, "--interaction", "nope"],
            "has no interaction `nope`",
        ),
        (
            vec!["run", faq, "--interaction", "search", "--var", "novalue"],
            "--var: expected NAME=VALUE, got `novalue`",
        ),
    ] {
        let output = patchbay(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_faq_example_runs_end_to_end() {
    use patchbay_tests::servers::{self, reply};

    let server = servers::http(|request| async move {
        match request.uri().path() {
            "/token" => reply(
                200,
                r#"{"access_token":"canary-access-token","token_type":"bearer","expires_in":3600}"#,
            ),
            _ => reply(
                200,
                r#"{"items":[{"title":"Reset your password","status":"published","score":0.9,"summary":"Settings, then security.","url":"https://kb.example.com/1"},{"title":"Draft","status":"draft","score":0.99,"summary":"-","url":"https://kb.example.com/2"}]}"#,
            ),
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!("patchbay-faq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The example as shipped, allowed to reach this loopback server.
    let bot = std::fs::read_to_string(root().join("examples/faq-bot.yaml"))
        .expect("example")
        .replacen("\nenv:\n", "\nnetwork:\n  allow: [127.0.0.1]\nenv:\n", 1);
    let bot_path = dir.join("faq-bot.yaml");
    std::fs::write(&bot_path, bot).expect("bot");
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .arg("run")
        .arg(&bot_path)
        .args([
            "--interaction",
            "search",
            "--message",
            "reset my password",
            "--json",
        ])
        .args(["--env", &format!("KB_BASE_URL={base}/api")])
        .args(["--env", &format!("KB_TOKEN_URL={base}/token")])
        .args(["--env", "KB_CLIENT_SECRET=canary-client-secret"])
        .arg("--token-store")
        .arg(dir.join("tokens.json"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    patchbay_tests::captured::keep("cli", "run-oauth2", &text);
    patchbay_tests::captured::keep(
        "cli",
        "run-oauth2",
        &String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("canary"),
        "a secret in --json output:\n{text}"
    );
    let turn: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(turn["status"], 200);
    assert_eq!(turn["success"], true);
    assert_eq!(turn["fields"]["FAQS.title"], "Reset your password");
    assert_eq!(
        turn["messages"][0],
        "Here is what I found: Reset your password (https://kb.example.com/1)"
    );
    assert_eq!(turn["next"], "end");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_runs_offline_with_no_set_up() {
    let output = patchbay(&["demo"]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Here is what I found: Reset your password",
        "No Articles Found.",
        "Your order is on its way with DHL",
        "Sorry, I could not find anything for that.",
        "Ticket T-1042 is open.",
        "with 1 OAuth token request(s)",
        // What was called, what came back, which rule matched.
        "GET http://127.0.0.1:",
        "/kb/articles/search?[redacted] → 200",
        "rule: found",
        "→ 503 (failure)",
        "POST http://127.0.0.1:",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(!text.contains("demo-client-secret") && !text.contains("demo-access-token"));
}

#[test]
fn every_command_has_help_with_examples_and_completions_exist() {
    for command in [
        "check",
        "run",
        "serve",
        "auth",
        "demo",
        "schema",
        "completions",
    ] {
        let output = patchbay(&[command, "--help"]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{command}: {text}");
        assert!(
            text.contains("Examples:"),
            "`{command} --help` has no examples:\n{text}"
        );
    }
    let help = stdout(&patchbay(&["--help"]));
    assert!(help.contains("Exit codes:"), "{help}");
    let output = patchbay(&["completions", "bash"]);
    let script = stdout(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        script.contains("complete") && script.contains("serve"),
        "{script}"
    );
    // Piped output carries no colour codes.
    assert!(!help.contains('\u{1b}'), "{help}");
}

#[test]
fn check_warns_about_unknown_bot_context_functions_and_unfilled_slots() {
    let output = patchbay(&[
        "check",
        "--json",
        "tests/fixtures/config/lint-unknown-function.yaml",
        "tests/fixtures/config/lint-unfilled-slot.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "warnings only");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let found = |file: usize| -> Vec<(String, u64, u64, String)> {
        report["files"][file]["diagnostics"]
            .as_array()
            .expect("list")
            .iter()
            .map(|d| {
                (
                    d["code"].as_str().unwrap_or_default().to_owned(),
                    d["line"].as_u64().unwrap_or_default(),
                    d["column"].as_u64().unwrap_or_default(),
                    d["help"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let functions = found(0);
    let at: Vec<_> = functions
        .iter()
        .map(|(code, line, column, _)| (code.as_str(), *line, *column))
        .collect();
    assert_eq!(
        at,
        vec![
            ("unknown-function", 8, 34),
            ("unknown-function", 18, 24),
            ("unknown-function", 22, 33),
            ("unknown-function", 23, 23),
        ]
    );
    assert_eq!(functions[0].3, "did you mean `sendMessage`?");
    assert_eq!(functions[1].3, "did you mean `setBotVariable`?");
    assert_eq!(functions[3].3, "did you mean `printDebugMessage`?");
    let slots = found(1);
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert!(
        slots.iter().all(|(code, ..)| code == "unfilled-slot"),
        "{slots:?}"
    );
    assert_eq!((slots[0].1, slots[0].2), (9, 14));
    assert_eq!(
        patchbay(&[
            "check",
            "--deny-warnings",
            "tests/fixtures/config/lint-unfilled-slot.yaml"
        ])
        .status
        .code(),
        Some(1)
    );
}
