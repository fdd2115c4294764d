//! `patchbay test` on cases of several turns played on one conversation:
//! the state a turn leaves (where it waits, its variables and fields) is
//! the next turn's, each turn's calls are answered by its own `upstream`,
//! a turn may send the payload of the button it clicks, and a failure
//! names the turn it is in.

use std::path::PathBuf;

use patchbay_tests::captured;

use crate::{patchbay, stdout};

/// Asks for an order number, then looks the order up. The answer matches
/// no starter: only the question the first turn left waiting can take it,
/// so a second turn played without the first one's state has no dialog.
const ORDERS: &str = r#"name: orders
integrations:
  - name: get-order
    responseDataVariable: ORDER
    type: api
    method: GET
    url: "https://orders.example.com/v1/orders/{$botContext.orderNumber}"
    customDataFields:
      status: "{$.api_ORDER.status}"
      items: "{$.api_ORDER.lines[i].name}"
dialogs:
  - name: order-status
    starters: ["where is my order*"]
    interactions:
      - name: ask-order-number
        type: question
        text: What is your order number?
      - name: look-up-order
        type: integration
        integration: get-order
        preProcess: |
          botContext.setBotVariable("orderNumber", botContext.getCurrentUserMessage(), true, false);
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "Order {$botContext.orderNumber} is {ORDER.status}."
            next: end
          - name: not-found
            match:
              apiResult: failure
            messages:
              - "I could not find order {$botContext.orderNumber}."
            next: ask-order-number
"#;

/// Cases that pass only when each turn goes on from the state the one
/// before left.
const PASSING: &str = r#"cases:
  - name: asks then looks up
    turns:
      - message: where is my order
        expect:
          messages: ["What is your order number?"]
      - message: A-1234
        upstream:
          - request: GET https://orders.example.com/v1/orders/A-1234
            body: { status: shipped, lines: [{ name: Lamp }] }
        expect:
          messages: ["Order A-1234 is shipped."]
          next: end
          status: 200
          fields: { ORDER.status: shipped, ORDER.items: Lamp }
          variables: { orderNumber: A-1234 }

  - name: asks again after an unknown number
    variables: { locale: en }
    turns:
      - message: where is my order please
      - message: "999"
        upstream:
          - request: GET https://orders.example.com/v1/orders/999
            status: 404
            body: { error: not found }
        expect:
          messages: ["I could not find order 999.", "What is your order number?"]
          success: false
      - message: "77"
        upstream:
          - request: GET https://orders.example.com/v1/orders/77
            body: { status: packing, lines: [{ name: Lamp }, { name: Mug }] }
        expect:
          messages: [Order 77 is packing.]
          fields: { ORDER.items: [Lamp, Mug] }
          variables: { orderNumber: "77", locale: en }

  - name: one-turn cases still run
    interaction: look-up-order
    message: B-9
    upstream:
      - request: GET https://orders.example.com/v1/orders/B-9
        body: { status: delivered }
    expect:
      messages: ["Order B-9 is delivered."]
"#;

/// Cases that fail, each in a turn it must name.
const FAILING: &str = r#"cases:
  - name: expects the wrong status in turn 2
    turns:
      - message: where is my order
        expect: { messages: ["What is your order number?"] }
      - message: A-1234
        upstream:
          - request: GET https://orders.example.com/v1/orders/A-1234
            body: { status: shipped }
        expect:
          messages: ["Order A-1234 is lost."]
          fields: { ORDER.status: lost }

  - name: has no answer for turn 3
    turns:
      - message: where is my order
      - message: "999"
        upstream:
          - request: GET https://orders.example.com/v1/orders/999
            status: 404
      - message: "77"
        upstream:
          - request: GET https://orders.example.com/v1/orders/999
            status: 404

  - name: the answer alone has nowhere to go
    message: A-1234
    upstream:
      - request: GET https://orders.example.com/v1/orders/A-1234
        body: { status: shipped }
    expect:
      messages: ["Order A-1234 is shipped."]
"#;

/// A button question whose rule takes a payload: the answer's text
/// matches nothing, so only the payload the turn sends picks the rule.
const SIZES: &str = r#"name: sizes
dialogs:
  - name: shop
    starters: ["buy a shirt"]
    interactions:
      - name: pick-size
        type: buttons
        text: Which size?
        buttons:
          - { title: Small, payload: SIZE_S }
          - { title: Medium, payload: SIZE_M }
        rules:
          - name: medium
            match: { payload: SIZE_M }
            messages: ["Medium it is."]
            next: end
          - name: other
            match: { noMatch: true }
            messages: ["Only medium is left."]
            next: end
"#;

const CLICKS: &str = r#"bot: sizes.yaml
cases:
  - name: a click sends its payload
    turns:
      - message: buy a shirt
        expect:
          messages:
            - { type: buttons, text: Which size?, buttons: [{ title: Small, payload: SIZE_S }, { title: Medium, payload: SIZE_M }] }
      - message: the middle one
        payload: SIZE_M
        expect: { messages: [Medium it is.], next: end }

  - name: expects the wrong buttons
    turns:
      - message: buy a shirt
        expect:
          messages: [Which size?, { type: buttons, buttons: [] }]
      - message: the middle one
        expect: { messages: [Medium it is.] }
"#;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("patchbay-multi-turn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("orders.yaml"), ORDERS).expect("bot");
        Self(dir)
    }

    /// Writes `orders.test.yaml`, which tests `orders.yaml` beside it.
    fn test_file(&self, text: &str) -> String {
        let path = self.0.join("orders.test.yaml");
        std::fs::write(&path, text).expect("test file");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_case_of_turns_plays_them_on_one_conversation() {
    let scratch = Scratch::new("passing");
    let output = patchbay(&["test", &scratch.test_file(PASSING)]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    for line in [
        "asks then looks up ... ok",
        "asks again after an unknown number ... ok",
        "one-turn cases still run ... ok",
        "test result: ok. 3 passed, 0 failed",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
}

#[test]
fn a_failing_case_of_turns_names_the_turn() {
    let scratch = Scratch::new("failing");
    let path = scratch.test_file(FAILING);
    let output = patchbay(&["test", &path]);
    let text = stdout(&output);
    captured::keep("cli", "test-multi-turn-failing", &text);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    for line in [
        "expects the wrong status in turn 2 ... FAILED",
        "turn 2: messages: (- expected, + actual)",
        "  - - Order A-1234 is lost.",
        "  + - Order A-1234 is shipped.",
        "turn 2: fields.ORDER.status: (- expected, + actual)",
        "has no answer for turn 3 ... FAILED",
        "turn 3: upstream: (- expected, + actual)",
        "no answer for GET https://orders.example.com/v1/orders/77: turn 3's `upstream` has no answer for it",
        // The second turn of the first case, played alone: nothing waits
        // for the number, and it matches no starter.
        "the answer alone has nowhere to go ... FAILED",
        "+ error: no dialog starter matches the message",
        "test result: FAILED. 0 passed, 3 failed",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    assert!(
        !text.contains("turn 1:") && !text.contains("turn 2: upstream"),
        "only the turns that failed are named:\n{text}"
    );

    let junit = patchbay(&["test", &path, "--format", "junit"]);
    let xml = stdout(&junit);
    assert_eq!(junit.status.code(), Some(1), "{xml}");
    assert!(
        xml.contains("<failure message=\"turn 2: messages differs\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"turn 3: upstream differs\">"),
        "{xml}"
    );
}

#[test]
fn a_turn_sends_the_payload_of_the_button_it_clicks() {
    let scratch = Scratch::new("payload");
    std::fs::write(scratch.0.join("sizes.yaml"), SIZES).expect("bot");
    let output = patchbay(&["test", &scratch.test_file(CLICKS)]);
    let text = stdout(&output);
    captured::keep("cli", "test-multi-turn-payload", &text);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    for line in [
        "a click sends its payload ... ok",
        "expects the wrong buttons ... FAILED",
        // The question's text matches; the mapping does not, and is shown
        // as one line against the message sent.
        "turn 1: messages: (- expected, + actual)",
        "    - Which size?",
        // Without the payload the answer falls to the rule for the rest.
        "turn 2: messages: (- expected, + actual)",
        "  + - Only medium is left.",
        "test result: FAILED. 1 passed, 1 failed",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    assert!(
        text.lines().any(|line| line.starts_with("  - - {")
            && line.contains(r#""buttons":[]"#)
            && line.contains(r#""type":"buttons""#)),
        "the expected mapping as one line of JSON:\n{text}"
    );
}

#[test]
fn a_case_with_turns_and_one_turn_members_is_refused_by_name() {
    let scratch = Scratch::new("both");
    let output = patchbay(&[
        "test",
        &scratch.test_file(
            "cases:\n  - name: both forms\n    message: where is my order\n    turns:\n      - message: A-1234\n",
        ),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    assert!(
        text.contains("case `both forms` has both `turns` and `message`"),
        "{text}"
    );
}
