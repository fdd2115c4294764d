//! `patchbay init [DIR]`: a bot that works, its test file, and the line
//! that gives editors the bot file's schema, written to `DIR/bot.yaml` and
//! `DIR/bot.test.yaml` (docs/getting-started.md walks through them).
//!
//! The bot asks for an order number (a question with an answer rule),
//! looks the order up in a JSON API on this machine (`{$env.API_BASE}`,
//! opened by `network.allow`), shapes the response with a transform
//! script and answers by rules. `patchbay demo --serve --api-listen
//! 127.0.0.1:9090` serves that API; the test file answers the calls
//! itself, so `patchbay test DIR` passes offline right away.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The bot; `@NAME@` is its name, `@DIR@` where it is.
const BOT: &str = r#"# yaml-language-server: $schema=@SCHEMA@
#
# @NAME@, written by `patchbay init`: it asks for an order number, looks the
# order up in a JSON API, and says where the order is.
#
#   patchbay check @DIR@     validate and lint (bot and test file)
#   patchbay test @DIR@      the cases in bot.test.yaml, offline
#   patchbay demo --serve --api-listen 127.0.0.1:9090    an API that answers it
#   patchbay run @DIR@/bot.yaml --message "where is my order" --save-state state.json
#   patchbay run @DIR@/bot.yaml --state state.json --message 1234
#   patchbay serve --bot @DIR@/bot.yaml
#
# docs/config.md documents every field, docs/botcontext.md the scripts'
# functions, docs/testing.md the test file.
name: @NAME@
description: Asks for an order number, looks the order up and says where it is.

# Calls to private and loopback addresses are refused unless named here;
# the order API below runs on this machine.
network:
  allow: [127.0.0.1]

# What `{$env.NAME}` reads: `--env NAME=VALUE`, else the environment
# variable, else the default given here.
env:
  API_BASE: http://127.0.0.1:9090

integrations:
  - name: get-order
    responseDataVariable: ORDER
    type: api
    method: GET
    url: "{$env.API_BASE}/orders/{$botContext.slot.orderNumber}"
    http:
      timeoutMs: 5000
    # Runs on the response before the fields are read: here it adds a
    # one-line summary of the items to it.
    transformScript: |
      var data = JSON.parse(api_ORDER.jsonData);
      var order = data.api_ORDER;
      order.summary = (order.items || []).map(function (item) {
        return item.name + " (" + item.quantity + ")";
      }).join(", ");
      api_ORDER.jsonData = JSON.stringify(data);
    # Custom data fields: JSONPath into the response, as transformed.
    customDataFields:
      status: "{$.api_ORDER.status}"
      carrier: "{$.api_ORDER.carrier}"
      summary: "{$.api_ORDER.summary}"

dialogs:
  - name: orders
    starters:
      - "(where is|track) my order*"
      - "order status"
    slots: [orderNumber]
    interactions:
      - name: ask-order-number
        type: question
        text: What is your order number?
        rules:
          - name: an order number
            match:
              regex: '(?P<number>\d{4,})'
            set:
              - slot: orderNumber
                group: number
            next: look-up-order
        noMatch:
          message: An order number has four digits or more, like 1234.
          retries: 1
          next: give-up

      - name: look-up-order
        type: integration
        integration: get-order
        rules:
          - name: shipped
            match:
              apiResult: success
              conditions:
                - field: ORDER.status
                  op: equals
                  value: shipped
            messages:
              - "Order {$botContext.slot.orderNumber} is on its way with {ORDER.carrier}: {ORDER.summary}."
            next: end
          - name: found
            match:
              apiResult: success
            messages:
              - "Order {$botContext.slot.orderNumber} is {ORDER.status}: {ORDER.summary}."
            next: end
          - name: not found
            match:
              apiResult: failure
              conditions:
                - variable: api_ORDERStatus
                  op: equals
                  value: "404"
            messages:
              - "I could not find order {$botContext.slot.orderNumber}."
            next: ask-order-number
          - name: service down
            match:
              apiResult: failure
            messages:
              - The order service is not answering right now. Please try again later.
            next: end

      - name: give-up
        type: text
        text: 'I could not read an order number. Say "where is my order" to start again.'
        next: end
"#;

/// The bot's test file: each case a conversation, its calls answered by
/// the test's own local upstream (no API needed).
const TESTS: &str = r#"# yaml-language-server: $schema=@TEST_SCHEMA@
#
# The cases of bot.yaml: `patchbay test @DIR@` (docs/testing.md). Each
# case is a new conversation; `upstream` answers the calls a turn makes,
# so no API is needed.
cases:
  - name: a shipped order names its carrier and items
    turns:
      - message: where is my order
        expect:
          messages: [What is your order number?]
          next: ask-order-number
      - message: it's 1234
        upstream:
          - request: GET http://127.0.0.1:9090/orders/1234
            body:
              number: "1234"
              status: shipped
              carrier: DHL
              items: [{ name: Headphones, quantity: 1 }, { name: Cable, quantity: 2 }]
        expect:
          messages: ["Order 1234 is on its way with DHL: Headphones (1), Cable (2)."]
          next: end
          fields:
            ORDER.status: shipped
            ORDER.summary: Headphones (1), Cable (2)

  - name: an order not yet shipped says its status
    turns:
      - message: order status
      - message: "5678"
        upstream:
          - request: GET http://127.0.0.1:9090/orders/5678
            body: { number: "5678", status: being packed, items: [{ name: Desk lamp, quantity: 1 }] }
        expect:
          messages: ["Order 5678 is being packed: Desk lamp (1)."]

  - name: an unknown order asks for the number again
    turns:
      - message: track my order
      - message: "9999"
        upstream:
          - request: GET http://127.0.0.1:9090/orders/9999
            status: 404
            body: { error: not found }
        expect:
          messages:
            - I could not find order 9999.
            - What is your order number?
          next: ask-order-number
          status: 404
          success: false

  - name: the order service failing is said plainly
    turns:
      - message: where is my order
      - message: "1234"
        upstream:
          - request: GET http://127.0.0.1:9090/orders/1234
            status: 503
        expect:
          messages: [The order service is not answering right now. Please try again later.]
          next: end

  - name: an answer with no order number is asked again, then the bot gives up
    turns:
      - message: where is my order
      - message: no idea
        expect:
          messages:
            - An order number has four digits or more, like 1234.
            - What is your order number?
          next: ask-order-number
      - message: still no idea
        expect:
          messages: ['I could not read an order number. Say "where is my order" to start again.']
          next: end
"#;

/// Writes the bot and its test file into `dir` (created if need be),
/// refusing to replace a file that is there; prints what it wrote and what
/// to run next.
pub(crate) fn run(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let name = bot_name(dir);
    let shown = dir.display().to_string();
    let bot_path = dir.join("bot.yaml");
    let tests_path = dir.join("bot.test.yaml");
    for path in [&bot_path, &tests_path] {
        if path.exists() {
            anyhow::bail!(
                "{} already exists; `patchbay init` writes only new files: choose another directory",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {shown}"))?;
    let fill = |text: &str| {
        // The first line of each names its schema for editors
        // (yaml-language-server): the `$id` `patchbay schema` prints.
        text.replace("@SCHEMA@", patchbay_config::BOT_SCHEMA_ID)
            .replace("@TEST_SCHEMA@", patchbay_testing::TEST_FILE_SCHEMA_ID)
            .replace("@NAME@", &name)
            .replace("@DIR@", &shown)
    };
    write_new(&bot_path, &fill(BOT))?;
    write_new(&tests_path, &fill(TESTS))?;
    writeln!(
        out,
        "Wrote {} (the bot `{name}`) and {} (its tests).\n\nNext:\n  \
         patchbay check {shown}\n  \
         patchbay test {shown}\n  \
         patchbay demo --serve --api-listen 127.0.0.1:9090   # in another terminal: the API it calls\n  \
         patchbay run {bot} --message \"where is my order\" --save-state state.json\n  \
         patchbay run {bot} --state state.json --message 1234\n  \
         patchbay serve --bot {bot} --listen 127.0.0.1:8081\n\n\
         docs/getting-started.md walks through it.",
        bot_path.display(),
        tests_path.display(),
        bot = bot_path.display(),
    )?;
    Ok(())
}

/// Creates `path` with `text`; never replaces a file (one created since
/// the check included).
fn write_new(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The bot's name: the directory's, in lower case with `-` for anything
/// but letters and digits (`my-bot` when that leaves nothing).
fn bot_name(dir: &Path) -> String {
    let named = if dir.as_os_str().is_empty() || dir == Path::new(".") {
        std::env::current_dir().ok()
    } else {
        Some(dir.to_path_buf())
    };
    let raw = named
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    if name.is_empty() {
        "my-bot".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_is_named_after_its_directory() {
        assert_eq!(bot_name(Path::new("bots/My Shop_Bot")), "my-shop-bot");
        assert_eq!(bot_name(Path::new("orders")), "orders");
        assert_eq!(bot_name(Path::new("/")), "my-bot");
    }
}
