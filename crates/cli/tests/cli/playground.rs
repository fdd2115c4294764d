//! The playground in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven over WebDriver:
//! load the page, run a turn of a bot whose upstream is down, and see the
//! default failure message in the conversation and the failure in the
//! trace. Saves `target/playground.png`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::root;
use crate::serve::Process;

/// A running `chromedriver`; stopped when dropped.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    #[allow(clippy::print_stderr)] // the skip must be visible
    fn start() -> Option<Self> {
        if Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "SKIPPED: chromedriver is not installed (apt-get install chromium chromium-driver; .ci/run does)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, port })
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bot(closed_port: u16) -> String {
    format!(
        r#"name: shop
description: Looks an item up in a shop whose API is down.
network:
  allow: ["127.0.0.1"]
http:
  retries: 0
  timeoutMs: 2000
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "http://127.0.0.1:{closed_port}/items/{{$botContext.item}}"
    customDataFields:
      name: "{{$.api_ITEM.name}}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        postProcess: |
          botContext.printDebugMessage("status was '" + botContext.getApiStatusCode() + "'");
          botContext.logCustomEvent(botContext.getCurrentUserMessage(), "item lookup", "down");
        rules:
          - match:
              apiResult: success
            messages:
              - "Found {{ITEM.name}}"
            next: end
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_runs_a_turn_in_a_real_browser() {
    let Some(driver) = ChromeDriver::start() else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("patchbay-playground-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot_path = dir.join("shop.yaml");
    std::fs::write(&bot_path, bot(closed)).expect("bot");
    let server = Process::serve(&bot_path, &[], &["--playground"]);

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,860"],
        }),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");
    let page = format!("http://{}/", server.addr);
    browser.goto(&page).await.expect("open the page");
    let wait = || browser.wait().at_most(Duration::from_secs(15));
    wait()
        .for_element(Locator::Css("#bot option[value='shop']"))
        .await
        .expect("the bot list");
    browser
        .find(Locator::Id("interaction"))
        .await
        .expect("interaction select")
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
        .find(Locator::Id("message"))
        .await
        .expect("message")
        .send_keys("where is my mug?")
        .await
        .expect("type a message");
    browser
        .find(Locator::Id("run"))
        .await
        .expect("run button")
        .click()
        .await
        .expect("run a turn");
    let step = wait()
        .for_element(Locator::Css("#trace .step"))
        .await
        .expect("a step in the trace");
    let trace = step.text().await.expect("trace text");
    assert!(trace.contains("look-up"), "{trace}");
    assert!(
        trace.contains(&format!("GET http://127.0.0.1:{closed}/items/mug")),
        "{trace}"
    );
    assert!(trace.contains("failed: connect"), "{trace}");
    // What the scripts printed and logged is part of the step.
    assert!(trace.contains("debug: status was ''"), "{trace}");
    assert!(
        trace.contains("event: item lookup (where is my mug?) down"),
        "{trace}"
    );
    let conversation = browser
        .find(Locator::Id("messages"))
        .await
        .expect("messages")
        .text()
        .await
        .expect("messages text");
    assert!(
        conversation.contains("where is my mug?")
            && conversation.contains("Sorry, I could not find anything for that."),
        "{conversation}"
    );
    let state = browser
        .find(Locator::Id("state"))
        .await
        .expect("state")
        .text()
        .await
        .expect("state text");
    assert!(state.contains("\"item\": \"mug\""), "{state}");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(root().join("target/playground.png"), png).expect("save the screenshot");
    browser.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&dir);
}
