//! Secrets an upstream echoes, or that a call's URL carries, never show in
//! what `run --record` keeps, nor in what `run`, `run --replay` and `test`
//! print: not as they are, not percent- or form-encoded, not in base64 (a
//! Basic header). A real upstream on 127.0.0.1 echoes the query and the
//! `Authorization` header back, as careless APIs do.

use std::path::{Path, PathBuf};
use std::process::Output;

use patchbay_tests::captured::{self, shows};
use patchbay_tests::servers::{self, reply};

/// `/`, `+`, `&`, `=` and a space make every encoding of them differ.
const API_KEY: &str = "canary-k3y/+&= z";
const PASSWORD: &str = "canary-pa55/w0rd+";

/// Mixed case: a URL's host shows it lower-cased. Also the password in a
/// URL's user info (which refuses `/`, so not [`PASSWORD`]).
const HOST_TOKEN: &str = "Canary-HostTok";
/// Named like no secret: only its use in a header says it is one.
const ACCESS: &str = "canary-access-hdr";
/// `PW`, a name people give passwords.
const SHOP_PW: &str = "canary-shop-pw";

const BOT: &str = r#"name: echoed
env:
  BASE: null
  HOST_BASE: null
  SHOP_KEY: null
  SHOP_PASSWORD: null
  HOST_TOKEN: null
  X_ACCESS: null
  SHOP_PW: null
network:
  allow: ["127.0.0.1"]
credentials:
  - name: shop-key
    type: api-key
    queryParam: api_key
    value: "{$env.SHOP_KEY}"
  - name: shop-login
    type: basic
    username: bot
    password: "{$env.SHOP_PASSWORD}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.BASE}/items/{$botContext.item}"
    credential: shop-key
    customDataFields:
      name: "{$.api_ITEM.name}"
      query: "{$.api_ITEM.query}"
  - name: account
    responseDataVariable: ACCOUNT
    type: api
    method: GET
    url: "{$env.BASE}/account"
    credential: shop-login
    customDataFields:
      seen: "{$.api_ACCOUNT.authorization}"
  - name: by-key
    responseDataVariable: KEYED
    type: api
    method: GET
    url: "{$env.BASE}/keys/{$env.SHOP_KEY}/item"
  - name: by-host
    responseDataVariable: HOSTED
    type: api
    method: GET
    url: "http://{$env.HOST_TOKEN}.{$env.HOST_BASE}/item"
  - name: with-userinfo
    responseDataVariable: USERINFO
    type: api
    method: GET
    url: "http://bot:{$env.HOST_TOKEN}@{$env.HOST_BASE}/item"
  - name: echo-back
    responseDataVariable: ECHO
    type: api
    method: POST
    url: "{$env.BASE}/echo"
    headers:
      X-Access: "{$env.X_ACCESS}"
    body: '{"pw": "{$env.SHOP_PW}"}'
    customDataFields:
      access: "{$.api_ECHO.access}"
      body: "{$.api_ECHO.body}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - match:
              apiResult: success
            messages:
              - "Found {ITEM.name} for {ITEM.query}"
            next: account
      - name: account
        type: integration
        integration: account
        rules:
          - match:
              apiResult: success
            messages:
              - "Signed in with {ACCOUNT.seen}"
            next: end
"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every recording's name and text.
fn recordings(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("recordings") {
        let path = entry.expect("entry").path();
        all.push_str(&path.display().to_string());
        all.push('\n');
        all.push_str(&std::fs::read_to_string(&path).expect("recording"));
    }
    all
}

/// Where a secret showed, and the text it showed in.
#[derive(Default)]
struct Leaks(Vec<String>);

impl Leaks {
    /// Keeps `text` for the final canary scan, and checks it here: neither
    /// secret in any encoding, nor any `canary-` (base64 included). Every
    /// place is checked before the test fails, so that it names them all.
    fn check(&mut self, what: &str, text: &str) {
        captured::keep("cli", &format!("secrets-{what}"), text);
        for secret in [API_KEY, PASSWORD, HOST_TOKEN, ACCESS, SHOP_PW, "canary-"] {
            if shows(text, secret) {
                self.0.push(format!("`{secret}` shows in {what}:\n{text}"));
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_recordings_replay_errors_or_test_failures_in_any_encoding() {
    let upstream = servers::http(|request| async move {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let access = request
            .headers()
            .get("x-access")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let path = request.uri().path().to_owned();
        let sent = http_body_util::BodyExt::collect(request.into_body())
            .await
            .map(|body| String::from_utf8_lossy(&body.to_bytes()).into_owned())
            .unwrap_or_default();
        let body = match path.as_str() {
            "/account" => serde_json::json!({ "authorization": authorization }),
            "/echo" => serde_json::json!({ "access": access, "body": sent }),
            _ => serde_json::json!({ "name": "Blue mug", "query": query }),
        };
        let mut answer = reply(200, body.to_string());
        for (name, value) in [
            ("x-echo-query", &query),
            ("x-echo-authorization", &authorization),
        ] {
            if let Ok(value) = value.parse() {
                answer.headers_mut().insert(name, value);
            }
        }
        answer
    })
    .await;
    let dir = temp_dir("secrets");
    let bot = dir.join("echoed.yaml");
    std::fs::write(&bot, BOT).expect("bot");
    let recorded = dir.join("recordings");
    let base = format!("BASE=http://{}", upstream.addr);
    let key = format!("SHOP_KEY={API_KEY}");
    let password = format!("SHOP_PASSWORD={PASSWORD}");
    let run = |extra: &[&str], item: &str| {
        let var = format!("item={item}");
        std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .arg("run")
            .arg(&bot)
            .args(["--interaction", "look-up", "--json", "--var", &var])
            .args(["--env", &base, "--env", &key, "--env", &password])
            .arg("--token-store")
            .arg(dir.join("tokens.json"))
            .args(extra)
            .output()
            .expect("run patchbay")
    };
    let recorded_dir = recorded.to_str().expect("utf-8");
    let mut leaks = Leaks::default();

    // Recording: the upstream echoes the key (percent-encoded, in the
    // query) and the Basic header (the password in base64).
    let recording = run(&["--record", recorded_dir], "mug");
    let shown = text_of(&recording);
    assert!(recording.status.success(), "{shown}");
    let turn: serde_json::Value = serde_json::from_slice(&recording.stdout).expect("json");
    assert_eq!(turn["messages"].as_array().map(Vec::len), Some(2), "{turn}");
    let kept = recordings(&recorded);
    assert!(
        kept.contains("x-echo-authorization") && kept.contains("\"query\""),
        "the echoes were recorded: {kept}"
    );
    leaks.check("record-output", &shown);
    leaks.check("recordings", &kept);

    // Replaying: a recorded call answers; one never recorded is named in
    // the error, its API key masked.
    let replayed = run(&["--replay", recorded_dir], "mug");
    assert!(replayed.status.success(), "{}", text_of(&replayed));
    leaks.check("replay-output", &text_of(&replayed));
    let missing = run(&["--replay", recorded_dir], "lamp");
    let said = text_of(&missing);
    assert_eq!(missing.status.code(), Some(1), "{said}");
    assert!(
        said.contains("GET http://127.0.0.1:") && said.contains("/items/lamp?api_key="),
        "the call is named: {said}"
    );
    leaks.check("replay-missing", &said);

    // `patchbay test`: a call no case answers, and a diff that shows what
    // an upstream echoed.
    std::fs::write(
        dir.join("echoed.test.yaml"),
        format!(
            r#"env:
  SHOP_KEY: "{API_KEY}"
  {}
cases:
  - name: has no answer for its call
    interaction: look-up
    variables: {{ item: lamp }}
    expect:
      success: true
  - name: expects another echo
    interaction: look-up
    variables: {{ item: mug }}
    upstream:
      - request: GET http://{}/items/mug
        body: {{ name: Blue mug, query: "api_key={}" }}
      - request: GET http://{}/account
        body: {{ authorization: none }}
    expect:
      messages: [Found Blue mug for nothing]
"#,
            base.replacen('=', ": ", 1),
            upstream.addr,
            url::form_urlencoded::byte_serialize(API_KEY.as_bytes()).collect::<String>(),
            upstream.addr,
        ),
    )
    .expect("test file");
    let dir_arg = dir.to_str().expect("utf-8");
    let tested = crate::patchbay(&["test", dir_arg]);
    let report = text_of(&tested);
    assert_eq!(tested.status.code(), Some(1), "{report}");
    for line in [
        "has no answer for its call ... FAILED",
        "no answer for GET http://127.0.0.1:",
        "expects another echo ... FAILED",
        "+ - Found Blue mug for api_key=",
    ] {
        assert!(report.contains(line), "`{line}` missing from:\n{report}");
    }
    leaks.check("test-report", &report);
    let junit = crate::patchbay(&["test", dir_arg, "--format", "junit"]);
    let xml = text_of(&junit);
    assert!(xml.contains("failures=\"2\""), "{xml}");
    leaks.check("test-junit", &xml);

    // `patchbay serve`: the turn's answer (fields, messages, the calls'
    // trace, the state) and its debug log.
    // Port 9 on loopback: nothing listens, the call fails naming its host.
    let host_base = "HOST_BASE=localhost:9".to_owned();
    let host_token = format!("HOST_TOKEN={HOST_TOKEN}");
    let access = format!("X_ACCESS={ACCESS}");
    let shop_pw = format!("SHOP_PW={SHOP_PW}");
    let server = crate::serve::Process::serve(
        &bot,
        &[
            &base,
            &key,
            &password,
            &host_base,
            &host_token,
            &access,
            &shop_pw,
        ],
        &["--log", "debug"],
    );
    let (status, answer) = patchbay_tests::client::post_json(
        server.addr,
        "/v1/bots/echoed/turns",
        &serde_json::json!({
            "interaction": "look-up",
            "state": { "variables": { "item": "mug" } },
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["messages"].as_array().map(Vec::len),
        Some(2),
        "both calls answered: {answer}"
    );
    leaks.check("serve-answer", &answer.to_string());
    // A key in a URL's path (`check` warns of it): in the invocation's
    // trace and the debug log's spans.
    let (status, invoked) = patchbay_tests::client::post_json(
        server.addr,
        "/v1/bots/echoed/integrations/by-key/invoke",
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{invoked}");
    leaks.check("serve-invoke", &invoked.to_string());
    // A secret in a URL's host (shown lower-cased), a password in a URL's
    // user info (refused, never in the pool's log), values an upstream
    // echoes from a header and a body.
    for integration in ["by-host", "with-userinfo", "echo-back"] {
        let (status, invoked) = patchbay_tests::client::post_json(
            server.addr,
            &format!("/v1/bots/echoed/integrations/{integration}/invoke"),
            &serde_json::json!({}),
        )
        .await;
        assert_eq!(status, 200, "{invoked}");
        if integration == "with-userinfo" {
            // Refused before anything is sent: hyper would drop the user
            // info anyway, silently.
            let message = invoked["failure"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("user name or password"),
                "refused: {invoked}"
            );
        }
        if integration == "echo-back" {
            assert!(
                invoked.to_string().contains("\"access\""),
                "the echo came back: {invoked}"
            );
        }
        leaks.check(&format!("serve-{integration}"), &invoked.to_string());
    }
    let log = server.stderr();
    assert!(log.contains("DEBUG"), "a debug log: {log}");
    leaks.check("serve-log", &log);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(leaks.0.is_empty(), "{}", leaks.0.join("\n\n"));
}
