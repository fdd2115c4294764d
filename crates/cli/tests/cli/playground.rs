//! The playground in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven over WebDriver:
//! load the page, run a turn of a bot whose upstream is down, and see the
//! default failure message in the conversation and the failure in the
//! trace (saves `target/playground.png`); and follow a conversation through
//! its questions by clicking their choices and buttons, hostile text shown
//! as text (saves `target/playground-questions.png`, which README shows as
//! docs/playground.png).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use patchbay_tests::servers::{self, reply};
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

impl ChromeDriver {
    /// A headless Chromium session.
    async fn session(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,860"],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session")
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
          botContext.logEscalationEvent("on " + botContext.getUserChannel(), "agent");
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

    let browser = driver.session().await;
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
        .find(Locator::Id("attributes"))
        .await
        .expect("attributes")
        .send_keys(r#"{"channel": "lp_web"}"#)
        .await
        .expect("type attributes");
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
    // The actions the scripts asked for, with the attributes sent.
    let escalation = r#"action: escalation-event escalationType="agent" userMessage="on lp_web""#;
    assert!(trace.contains(escalation), "{trace}");
    let actions = browser
        .find(Locator::Id("actions"))
        .await
        .expect("actions")
        .text()
        .await
        .expect("actions text");
    assert_eq!(actions, escalation);
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

/// What an upstream sends is hostile: the order's status carries markup.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// A conversation through questions: a text question whose answer a regex
/// captures into a slot, a lookup, a multiple choice question, a button
/// question whose rule matches only the clicked button's payload, and
/// cards (one image an http URL, one not).
fn questions_bot(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"name: orders
description: Finds an order and offers what to do next.
network:
  allow: ["127.0.0.1"]
http:
  retries: 0
  timeoutMs: 5000
integrations:
  - name: get-order
    responseDataVariable: ORDER
    type: api
    method: GET
    url: "http://{upstream}/orders/{{$botContext.slot.orderNumber}}"
    customDataFields:
      status: "{{$.api_ORDER.status}}"
dialogs:
  - name: orders
    starters: ["where is my order*"]
    slots: [orderNumber]
    interactions:
      - name: ask-number
        type: question
        text: What is your order number?
        rules:
          - name: order number
            match:
              regex: "(?P<number>[A-Z]-\\d{{4}})"
            set:
              - slot: orderNumber
                group: number
            next: look-up
      - name: look-up
        type: integration
        integration: get-order
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "Order {{$botContext.slot.orderNumber}} is {{ORDER.status}}."
            next: what-next
      - name: what-next
        type: multiple-choice
        text: What would you like to do?
        choices: [Track the parcel, Return an item, "<b>No</b>, thanks"]
        rules:
          - name: track
            match:
              options: [Track the parcel]
            messages:
              - It travels with Parcelforce.
            next: parcel
          - name: return
            match:
              options: [2]
            messages:
              - "I have opened a return for order {{$botContext.slot.orderNumber}}."
            next: feedback
          - name: done
            match:
              options: [3]
            messages:
              - Glad I could help.
            next: end
      - name: feedback
        type: buttons
        text: Was this helpful?
        buttons:
          - title: "Yes"
            payload: helpful-yes
          - title: Read the docs
            url: https://example.com/docs
          - title: Not a link
            url: "javascript:alert(1)"
        rules:
          - name: helpful
            match:
              payload: helpful-yes
            messages:
              - "Thanks ({{$quickReplyPayload}})"
            next: end
      - name: parcel
        type: structured
        cards:
          - title: Parcelforce
            subtitle: Arrives tomorrow
            imageUrl: "http://{upstream}/van.png"
            buttons:
              - title: Track online
                url: https://example.com/track
          - title: Depot
            imageUrl: "javascript:alert(1)"
        next: end
"#
    )
}

/// Waits until the text of the element `css` contains `needle`; its text.
async fn wait_for_text(browser: &Client, css: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "`{needle}` never showed in {css}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the enabled button `title` of a message in the conversation.
async fn click(browser: &Client, title: &str) {
    let xpath = format!(
        "//div[@id='messages']//div[contains(@class,'options')]//button[not(@disabled) and normalize-space()='{title}']"
    );
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("a button `{title}`: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{title}`: {e}"));
}

/// Types `text` into the message box and runs the turn.
async fn say(browser: &Client, text: &str) {
    let input = browser.find(Locator::Id("message")).await.expect("message");
    input.send_keys(text).await.expect("type a message");
    browser
        .find(Locator::Id("run"))
        .await
        .expect("run button")
        .click()
        .await
        .expect("run a turn");
}

async fn count(browser: &Client, css: &str) -> usize {
    browser
        .find_all(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_follows_a_conversation_through_its_questions() {
    let Some(driver) = ChromeDriver::start() else {
        return;
    };
    let upstream = servers::http(|request| async move {
        match request.uri().path() {
            "/orders/A-1234" => reply(
                200,
                json!({ "status": format!("shipped {HOSTILE}") }).to_string(),
            ),
            _ => reply(404, r#"{"error":"no such order"}"#),
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!(
        "patchbay-playground-questions-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bot_path = dir.join("orders.yaml");
    std::fs::write(&bot_path, questions_bot(upstream.addr)).expect("bot");
    let server = Process::serve(&bot_path, &[], &["--playground"]);
    let browser = driver.session().await;
    browser
        .goto(&format!("http://{}/", server.addr))
        .await
        .expect("open the page");
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#interaction option[value='what-next']"))
        .await
        .expect("the bot's interactions");
    let start = browser
        .find(Locator::Id("interaction"))
        .await
        .expect("interaction select");

    // A starter opens the dialog; its text question waits, and while it
    // waits no start can be chosen.
    say(&browser, "where is my order").await;
    wait_for_text(&browser, "#messages", "What is your order number?").await;
    wait_for_text(&browser, "#state", r#""waitingAt": "ask-number""#).await;
    assert!(
        !start.is_enabled().await.expect("enabled?"),
        "no start while waiting"
    );

    // The answer goes to the question: its regex takes the number into a
    // slot, the lookup runs, and the multiple choice question waits.
    say(&browser, "it is A-1234").await;
    let conversation = wait_for_text(&browser, "#messages", "What would you like to do?").await;
    // The upstream's markup is text: no element made of it, no alert.
    assert!(
        conversation.contains(&format!("Order A-1234 is shipped {HOSTILE}.")),
        "{conversation}"
    );
    assert_eq!(count(&browser, "#messages img").await, 0, "{conversation}");
    assert_eq!(count(&browser, "#messages b").await, 0, "{conversation}");
    wait_for_text(&browser, "#state", r#""waitingAt": "what-next""#).await;
    let choices = browser
        .find_all(Locator::Css("#messages .options button"))
        .await
        .expect("choices");
    let mut titles = Vec::new();
    for choice in &choices {
        titles.push(choice.text().await.expect("choice text"));
    }
    assert_eq!(
        titles,
        ["Track the parcel", "Return an item", "<b>No</b>, thanks"],
        "the choices as buttons"
    );

    // Clicking a choice answers the question: only "Return an item" with
    // the slot carried in the state says this.
    click(&browser, "Return an item").await;
    let conversation = wait_for_text(&browser, "#messages", "Was this helpful?").await;
    assert!(
        conversation.contains("I have opened a return for order A-1234."),
        "{conversation}"
    );
    let user = browser
        .find_all(Locator::Css("#messages .user"))
        .await
        .expect("user bubbles");
    let last = user.last().expect("a user bubble");
    assert_eq!(
        last.text().await.expect("user text"),
        "Return an item",
        "the click sent the choice"
    );
    wait_for_text(&browser, "#state", r#""waitingAt": "feedback""#).await;
    assert_eq!(
        count(&browser, "#messages .options button:not([disabled])").await,
        1,
        "only the latest question's buttons are live"
    );
    // A web URL button is a link that does not leak the page; a URL that is
    // not http(s) is no link.
    let links = browser
        .find_all(Locator::Css("#messages a"))
        .await
        .expect("links");
    assert_eq!(links.len(), 1, "one http(s) link");
    assert_eq!(
        links[0].attr("href").await.expect("href").as_deref(),
        Some("https://example.com/docs")
    );
    assert_eq!(
        links[0].attr("rel").await.expect("rel").as_deref(),
        Some("noopener noreferrer")
    );

    // A button sends its title and its payload; the rule matches only the
    // payload.
    click(&browser, "Yes").await;
    wait_for_text(&browser, "#messages", "Thanks (helpful-yes)").await;
    wait_for_text(&browser, "#next", "next: end").await;
    let state = browser
        .find(Locator::Id("state"))
        .await
        .expect("state")
        .text()
        .await
        .expect("state text");
    assert!(!state.contains("waitingAt"), "{state}");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(root().join("target/playground-questions.png"), png)
        .expect("save the screenshot");

    // Not waiting: a turn starts at the chosen interaction again, and the
    // click on its choice answers it (no start sent with it).
    assert!(start.is_enabled().await.expect("enabled?"));
    start
        .select_by_value("what-next")
        .await
        .expect("choose the interaction");
    say(&browser, "").await;
    wait_for_text(&browser, "#state", r#""waitingAt": "what-next""#).await;
    click(&browser, "Track the parcel").await;
    let conversation = wait_for_text(&browser, "#messages", "It travels with Parcelforce.").await;
    wait_for_text(&browser, "#state", r#""waitingAt": "parcel""#).await;
    assert!(
        conversation.contains("Arrives tomorrow") && conversation.contains("Depot"),
        "{conversation}"
    );
    assert_eq!(count(&browser, "#messages .card").await, 2);
    let images = browser
        .find_all(Locator::Css("#messages .card img"))
        .await
        .expect("images");
    assert_eq!(images.len(), 1, "only the http image");
    assert_eq!(
        images[0].attr("src").await.expect("src"),
        Some(format!("http://{}/van.png", upstream.addr))
    );
    assert!(
        browser.get_alert_text().await.is_err(),
        "no script ran from the bot's text"
    );

    browser.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&dir);
}
