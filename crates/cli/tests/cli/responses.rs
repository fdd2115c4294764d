//! Responses in sight (docs/http-api.md, "Responses in the trace"): each
//! call's response (status, headers, body as received, the document the
//! fields read after the transform) in `run --show-body`'s trace, in
//! `run --json --show-body`'s `steps[i].call.response`, and in `serve`'s
//! `steps` when the turn asks (`showResponses`) and the server allows it
//! (`--show-responses`; else 403 `responses_hidden`). Off by default; cut
//! at 16 KiB; the bot's secrets masked, though the upstream echoes its key
//! in a header and in the body.

use std::process::Output;
use std::time::Duration;

use patchbay_tests::client::post_json;
use patchbay_tests::servers::{self, reply};
use serde_json::{Value, json};

use crate::serve::Process;

/// The bot's API key: sent in `X-Api-Key`, echoed back by the upstream.
const CANARY: &str = "canary-resp-9d1e-never-shown";

/// The documented cut: 16 KiB.
const LIMIT: usize = 16 * 1024;

const BOT: &str = r#"name: echoing
env:
  SHOP_URL: null
  SHOP_KEY: null
network:
  allow: ["127.0.0.1"]
credentials:
  - name: shop-key
    type: api-key
    header: X-Api-Key
    value: "{$env.SHOP_KEY}"
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{$env.SHOP_URL}/items/{$botContext.item}"
    credential: shop-key
    transformScript: |
      var data = JSON.parse(api_ITEM.jsonData);
      api_ITEM.jsonData = JSON.stringify({ api_ITEM: { label: data.api_ITEM.name.toUpperCase() } });
    customDataFields:
      label: "{$.api_ITEM.label}"
dialogs:
  - name: shop
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "Found {ITEM.label}"
            next: end
        next: end
"#;

/// An upstream that answers `/items/big` with a body past the cut and any
/// other item with its name, the key it was sent (in the body and in
/// `X-Echo`) and a session cookie.
async fn upstream() -> servers::Server {
    servers::http(|request| async move {
        let key = request
            .headers()
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let name = if request.uri().path().ends_with("/big") {
            "é".repeat(LIMIT)
        } else {
            "blue mug".to_owned()
        };
        let body = json!({ "name": name, "sentKey": key }).to_string();
        let mut answer = reply(200, body);
        let headers = answer.headers_mut();
        headers.insert("content-type", "application/json".parse().expect("value"));
        headers.insert("x-echo", key.parse().expect("value"));
        headers.insert("x-shop", "open".parse().expect("value"));
        headers.insert(
            "set-cookie",
            "session=s3ss10n-c00kie; HttpOnly".parse().expect("value"),
        );
        answer
    })
    .await
}

fn temp_bot(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot = dir.join("echoing.yaml");
    std::fs::write(&bot, BOT).expect("bot");
    bot
}

fn run(bot: &std::path::Path, upstream: &servers::Server, item: &str, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .arg("run")
        .arg(bot)
        .args(["--interaction", "look-up", "--var", &format!("item={item}")])
        .args(["--env", &format!("SHOP_URL=http://{}", upstream.addr)])
        .args(["--env", &format!("SHOP_KEY={CANARY}")])
        .arg("--token-store")
        .arg(bot.with_file_name("tokens.json"))
        .args(extra)
        .output()
        .expect("run patchbay")
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "the key shows in {what}:\n{text}");
    assert!(
        !text.contains("s3ss10n-c00kie"),
        "the cookie shows in {what}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_shows_each_response_only_when_asked_secrets_masked() {
    let upstream = upstream().await;
    let bot = temp_bot("responses-run");

    // Off by default: neither the trace nor the JSON has a response.
    let plain = run(&bot, &upstream, "mug", &[]);
    let shown = text_of(&plain);
    assert!(plain.status.success(), "{shown}");
    assert!(shown.contains("field label = BLUE MUG"), "{shown}");
    assert!(!shown.contains("response 200"), "{shown}");
    assert!(
        !shown.contains("blue mug"),
        "the body is not shown: {shown}"
    );
    let plain = run(&bot, &upstream, "mug", &["--json"]);
    let turn: Value = serde_json::from_slice(&plain.stdout).expect("json");
    assert!(turn["steps"][0]["call"].get("response").is_none(), "{turn}");

    // --show-body: status, headers, body as received, the document after
    // the transform; the echoed key masked, the cookie hidden.
    let text = run(&bot, &upstream, "mug", &["--show-body"]);
    let shown = text_of(&text);
    assert!(text.status.success(), "{shown}");
    for line in [
        "    response 200\n",
        "    x-shop: open\n",
        "    x-echo: [redacted]\n",
        "    set-cookie: [redacted]\n",
        "    body (",
        r#"      {"name":"blue mug","sentKey":"[redacted]"}"#,
        "    document (what the fields read):\n",
        r#"          "label": "BLUE MUG""#,
        "  field label = BLUE MUG\n",
    ] {
        assert!(shown.contains(line), "`{line}` in:\n{shown}");
    }
    assert_no_secret("run --show-body", &shown);

    // --json --show-body: steps[i].call.response.
    let json = run(&bot, &upstream, "mug", &["--json", "--show-body"]);
    let shown = text_of(&json);
    assert!(json.status.success(), "{shown}");
    assert_no_secret("run --json --show-body", &shown);
    let turn: Value = serde_json::from_slice(&json.stdout).expect("json");
    let response = &turn["steps"][0]["call"]["response"];
    assert_eq!(response["status"], 200, "{response}");
    assert_eq!(response["headers"]["x-shop"], "open", "{response}");
    assert_eq!(response["headers"]["x-echo"], "[redacted]", "{response}");
    assert_eq!(
        response["headers"]["set-cookie"], "[redacted]",
        "{response}"
    );
    let body: Value =
        serde_json::from_str(response["body"].as_str().expect("body")).expect("body is JSON");
    assert_eq!(
        body,
        json!({"name": "blue mug", "sentKey": "[redacted]"}),
        "{response}"
    );
    let document: Value = serde_json::from_str(response["document"].as_str().expect("document"))
        .expect("document is JSON");
    assert_eq!(document, json!({"api_ITEM": {"label": "BLUE MUG"}}));
    assert!(
        response["bodyBytes"]
            .as_u64()
            .is_some_and(|bytes| bytes > 0)
    );

    // Past 16 KiB the body and the document are cut at a character
    // boundary, and say how much there was.
    let big = run(&bot, &upstream, "big", &["--json", "--show-body"]);
    let shown = text_of(&big);
    assert!(big.status.success(), "{shown}");
    assert_no_secret("a cut response", &shown);
    let turn: Value = serde_json::from_slice(&big.stdout).expect("json");
    let response = &turn["steps"][0]["call"]["response"];
    let bytes = response["bodyBytes"].as_u64().expect("bodyBytes");
    assert!(bytes > LIMIT as u64, "{bytes}");
    for member in ["body", "document"] {
        let text = response[member].as_str().expect(member);
        let (kept, marker) = text.split_once('…').expect("a marker");
        assert!(
            kept.len() <= LIMIT && kept.len() > LIMIT - 4,
            "{}",
            kept.len()
        );
        assert!(marker.starts_with("[truncated: "), "{marker}");
        assert!(marker.ends_with(" bytes in all]"), "{marker}");
    }
    let marker = format!("…[truncated: {bytes} bytes in all]");
    assert!(
        response["body"]
            .as_str()
            .is_some_and(|body| body.ends_with(&marker)),
        "{marker}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shows_responses_only_with_the_flag_and_the_request_member() {
    let upstream = upstream().await;
    let bot = temp_bot("responses-serve");
    let bot = bot.to_str().expect("utf-8");
    let url = format!("SHOP_URL=http://{}", upstream.addr);
    let key = format!("SHOP_KEY={CANARY}");
    let args = |extra: &'static [&'static str]| {
        let mut args = vec!["serve", "--bot", bot, "--listen", "127.0.0.1:0"];
        args.extend(["--env", &url, "--env", &key]);
        args.extend(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let turn = |show: Option<bool>| {
        let mut body = json!({
            "interaction": "look-up",
            "state": { "variables": { "item": "mug" } },
        });
        if let Some(show) = show {
            body["showResponses"] = json!(show);
        }
        body
    };
    let path = "/v1/bots/echoing/turns";

    // Without the flag: a turn that asks is refused, one that does not
    // runs without responses.
    let hidden = Process::start(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    let (status, answer) = post_json(hidden.addr, path, &turn(Some(true))).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.to_string().contains("responses_hidden"), "{answer}");
    let openapi =
        std::fs::read_to_string(crate::root().join("docs/openapi.json")).expect("openapi");
    assert!(
        openapi.contains("\"responses_hidden\"") && openapi.contains("\"showResponses\""),
        "documented in docs/openapi.json"
    );
    let (status, answer) = post_json(hidden.addr, path, &turn(None)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messages"], json!(["Found BLUE MUG"]), "{answer}");
    assert!(
        answer["steps"][0]["call"].get("response").is_none(),
        "{answer}"
    );
    drop(hidden);

    // With --show-responses: off unless the turn asks; then in `steps`,
    // the echoed key masked.
    let shown = Process::start(
        &args(&["--show-responses"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let (status, answer) = post_json(shown.addr, path, &turn(None)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["steps"][0]["call"].get("response").is_none(),
        "{answer}"
    );
    let (status, answer) = post_json(shown.addr, path, &turn(Some(false))).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["steps"][0]["call"].get("response").is_none(),
        "{answer}"
    );
    let (status, answer) = post_json(shown.addr, path, &turn(Some(true))).await;
    assert_eq!(status, 200, "{answer}");
    assert_no_secret("serve's steps", &answer.to_string());
    let response = &answer["steps"][0]["call"]["response"];
    assert_eq!(response["status"], 200, "{answer}");
    assert_eq!(response["headers"]["x-shop"], "open", "{answer}");
    assert_eq!(response["headers"]["x-echo"], "[redacted]", "{answer}");
    assert!(
        response["body"]
            .as_str()
            .is_some_and(|body| body.contains("blue mug") && body.contains("[redacted]")),
        "{answer}"
    );
    let document: Value = serde_json::from_str(response["document"].as_str().expect("document"))
        .expect("document is JSON");
    assert_eq!(document, json!({"api_ITEM": {"label": "BLUE MUG"}}));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_no_secret("serve's log", &shown.stderr());
}

/// The playground in headless Chromium (skipped without `chromedriver`):
/// on a server with `--show-responses` each call's response folds out in
/// the trace, the echoed key masked; on one without, the turn still runs
/// (the page asks once, is told `responses_hidden`, and stops asking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_shows_responses_when_the_server_allows() {
    use fantoccini::{ClientBuilder, Locator};
    if std::process::Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: chromedriver is not installed");
        }
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut driver = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "chromedriver");
        std::thread::sleep(Duration::from_millis(50));
    }
    let upstream = upstream().await;
    let bot = temp_bot("responses-playground");
    let url = format!("SHOP_URL=http://{}", upstream.addr);
    let key = format!("SHOP_KEY={CANARY}");
    for allowed in [true, false] {
        let more: &[&str] = if allowed {
            &["--playground", "--show-responses"]
        } else {
            &["--playground"]
        };
        let server = Process::serve(&bot, &[&url, &key], more);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            }),
        );
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        browser
            .goto(&format!("http://{}/", server.addr))
            .await
            .expect("open the page");
        let wait = || browser.wait().at_most(Duration::from_secs(15));
        wait()
            .for_element(Locator::Css("#bot option[value='echoing']"))
            .await
            .expect("the bot list");
        browser
            .find(Locator::Id("interaction"))
            .await
            .expect("interaction")
            .select_by_value("look-up")
            .await
            .expect("choose the interaction");
        browser
            .find(Locator::Id("variables"))
            .await
            .expect("variables")
            .send_keys("item=mug")
            .await
            .expect("type variables");
        browser
            .find(Locator::Id("run"))
            .await
            .expect("run")
            .click()
            .await
            .expect("run a turn");
        let step = wait()
            .for_element(Locator::Css("#trace .step"))
            .await
            .expect("a step");
        let folded = browser
            .find_all(Locator::Css("#trace details.response"))
            .await
            .expect("responses");
        if allowed {
            assert_eq!(folded.len(), 1);
            browser
                .find(Locator::Css("#trace details.response summary"))
                .await
                .expect("summary")
                .click()
                .await
                .expect("fold out");
        } else {
            assert!(folded.is_empty());
        }
        let trace = step.text().await.expect("trace");
        let error = browser
            .find(Locator::Id("error"))
            .await
            .expect("error")
            .text()
            .await
            .expect("error text");
        assert!(error.is_empty(), "{error}");
        assert!(
            trace.contains("field") || trace.contains("BLUE MUG"),
            "{trace}"
        );
        if allowed {
            for needle in [
                "response 200",
                "x-shop",
                "open",
                "blue mug",
                "\"label\": \"BLUE MUG\"",
            ] {
                assert!(trace.contains(needle), "`{needle}` in {trace}");
            }
        } else {
            assert!(!trace.contains("response 200"), "{trace}");
        }
        assert_no_secret("the playground", &trace);
        let _ = browser.close().await;
    }
    let _ = driver.kill();
    let _ = driver.wait();
}
