//! A conversation the caller holds, played turn by turn: the state says
//! where the conversation waits (`waitingAt`), so the user's answer goes to
//! the interaction it answers, not to the dialog starters. From the shell
//! (`patchbay run --message ... --save-state` then `--state`) and through
//! `serve` (the `state` it answers, sent back without `interaction`).

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use patchbay_tests::client::post_json;

use crate::serve::Process;

/// Asks for an order number, then answers with it. The answer matches no
/// starter: only where the conversation waits can take it.
const ASKER: &str = r#"name: asker
dialogs:
  - name: orders
    starters: ["track my order"]
    interactions:
      - name: ask
        type: question
        text: What is your order number?
        next: answer
      - name: answer
        type: text
        text: "Looking up order {$userMessage}."
        next: end
"#;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "patchbay-conversation-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("asker.yaml"), ASKER).expect("bot");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `patchbay run <scratch>/asker.yaml --json --token-store ... ARGS`.
fn run(scratch: &Scratch, args: &[&str]) -> (Output, Value) {
    let bot = scratch.path("asker.yaml");
    let tokens = scratch.path("tokens.json");
    let mut all = vec!["run", &bot, "--json", "--token-store", &tokens];
    all.extend(args);
    let output = crate::patchbay(&all);
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "run --json printed no JSON ({error}): {}{}",
            crate::stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, json)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("state file")).expect("state JSON")
}

#[test]
fn run_plays_a_conversation_turn_by_turn_through_a_state_file() {
    let scratch = Scratch::new("run");
    let saved = scratch.path("s.json");

    // Turn 1: the starters pick the dialog; its question waits.
    let (output, asked) = run(
        &scratch,
        &["--message", "Track my order", "--save-state", &saved],
    );
    assert!(output.status.success(), "{asked}");
    assert_eq!(asked["messages"], json!(["What is your order number?"]));
    assert_eq!(asked["next"], "ask");
    assert_eq!(asked["state"]["waitingAt"], "ask", "{asked}");
    let state = read_json(Path::new(&saved));
    assert_eq!(
        state, asked["state"],
        "the file holds the state run printed"
    );

    // Turn 2: the answer goes where the conversation waits, though it
    // matches no starter.
    let (output, answered) = run(
        &scratch,
        &[
            "--state",
            &saved,
            "--message",
            "1234",
            "--save-state",
            &saved,
        ],
    );
    assert!(output.status.success(), "{answered}");
    assert_eq!(answered["messages"], json!(["Looking up order 1234."]));
    assert_eq!(answered["next"], "end");
    assert!(answered["state"].get("waitingAt").is_none(), "{answered}");
    assert!(read_json(Path::new(&saved)).get("waitingAt").is_none());

    // Turn 3: nothing waits now, and the message matches no starter: the
    // engine's error, as one JSON object.
    let (output, error) = run(&scratch, &["--state", &saved, "--message", "1234"]);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert_eq!(error["error"]["code"], "no_dialog", "{error}");
}

#[test]
fn run_refuses_a_state_it_cannot_use_as_one_json_error() {
    let scratch = Scratch::new("bad-state");
    let state = scratch.path("state.json");
    let missing = scratch.path("missing.json");
    for (text, says) in [
        ("not json", "is not JSON"),
        (r#"{"waitingAt": 7}"#, "expected a string"),
        (r#"{"unknown": 1}"#, "unknown"),
    ] {
        std::fs::write(&state, text).expect("state");
        let (output, error) = run(&scratch, &["--state", &state, "--message", "1234"]);
        assert_eq!(output.status.code(), Some(1), "{text}: {error}");
        assert_eq!(error["error"]["code"], "invalid_state", "{text}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{text}: {message}");
    }
    let (output, error) = run(&scratch, &["--state", &missing, "--message", "1234"]);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert_eq!(error["error"]["code"], "invalid_state", "{error}");

    // Neither where to start nor a message: a usage mistake.
    let (output, error) = run(&scratch, &[]);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert_eq!(error["error"]["code"], "usage", "{error}");

    // A state file that cannot be written: the turn ran, the run failed.
    let unwritable = scratch.path("no-such-dir/s.json");
    let (output, error) = run(
        &scratch,
        &["--message", "track my order", "--save-state", &unwritable],
    );
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert_eq!(error["error"]["code"], "state_unwritable", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_goes_on_where_a_client_held_state_waits() {
    let scratch = Scratch::new("serve");
    let server = Process::serve(&scratch.0.join("asker.yaml"), &[], &[]);
    let turns = "/v1/bots/asker/turns";

    let (status, asked) =
        post_json(server.addr, turns, &json!({"message": "track my order"})).await;
    assert_eq!(status, 200, "{asked}");
    assert_eq!(asked["messages"], json!(["What is your order number?"]));
    assert_eq!(asked["state"]["waitingAt"], "ask", "{asked}");

    // The state back, no `interaction`: the message is the answer.
    let (status, answered) = post_json(
        server.addr,
        turns,
        &json!({"state": asked["state"], "message": "1234"}),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["messages"], json!(["Looking up order 1234."]));
    assert_eq!(answered["next"], "end");
    assert!(answered["state"].get("waitingAt").is_none(), "{answered}");

    // An `interaction` wins over where the state waits.
    let (status, restarted) = post_json(
        server.addr,
        turns,
        &json!({"state": asked["state"], "interaction": "ask"}),
    )
    .await;
    assert_eq!(status, 200, "{restarted}");
    assert_eq!(restarted["messages"], json!(["What is your order number?"]));

    // A `waitingAt` the bot has no interaction for is dropped: the
    // starters pick.
    let (status, stale) = post_json(
        server.addr,
        turns,
        &json!({"state": {"waitingAt": "gone"}, "message": "track my order"}),
    )
    .await;
    assert_eq!(status, 200, "{stale}");
    assert_eq!(stale["messages"], json!(["What is your order number?"]));
}

/// The order-help example (a question whose regex captures a slot, a call
/// using it, a multiple choice question, a context switch to help and back)
/// through `serve`, with the state held by the client and kept by the
/// server: the same conversation either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_plays_the_order_help_example_with_held_and_stored_state() {
    let upstream = patchbay_tests::servers::http(|request| async move {
        if request.uri().path() == "/v1/orders/A-1234" {
            patchbay_tests::servers::reply(
                200,
                r#"{"status":"shipped","carrier":"DHL","trackingNumber":"JD0144"}"#,
            )
        } else {
            patchbay_tests::servers::reply(404, r#"{"error":"not found"}"#)
        }
    })
    .await;
    let scratch = Scratch::new("order-help");
    let example = std::fs::read_to_string(crate::root().join("examples/order-help.yaml"))
        .expect("the example");
    // The example calls orders.example.com; here its API is local.
    let bot = example.replacen("\nenv:\n", "\nnetwork:\n  allow: [127.0.0.1]\n\nenv:\n", 1);
    assert_ne!(bot, example, "the example has an `env:` section");
    std::fs::write(scratch.0.join("order-help.yaml"), bot).expect("bot");
    let base = format!(
        "ORDERS_BASE_URL=http://127.0.0.1:{}/v1",
        upstream.addr.port()
    );
    let server = Process::serve(&scratch.0.join("order-help.yaml"), &[&base], &[]);
    let turns = "/v1/bots/order-help/turns";
    let question = "What is your order number? It looks like A-1234.";
    let help = r#"I look up orders: say "where is my order". To talk to a person, say "agent"."#;

    for stored in [false, true] {
        let mut state = Value::Null;
        let mut turn = async |message: &str| {
            let mut request = json!({ "message": message });
            if stored {
                request["conversationId"] = json!("c-order-help");
            } else if !state.is_null() {
                request["state"] = state.clone();
            }
            let (status, answer) = post_json(server.addr, turns, &request).await;
            assert_eq!(status, 200, "{message}: {answer}");
            state = answer["state"].clone();
            answer
        };

        let asked = turn("Where is my order?").await;
        assert_eq!(asked["messages"], json!([question]), "{asked}");
        assert_eq!(asked["state"]["waitingAt"], "ask-order-number");

        // "help" is no order number: the help dialog, then the question
        // again, where the conversation still waits.
        let switched = turn("help").await;
        assert_eq!(switched["messages"], json!([help, question]), "{switched}");
        assert_eq!(switched["state"]["waitingAt"], "ask-order-number");
        assert!(switched["state"].get("returnTo").is_none(), "{switched}");

        let found = turn("it is a-1234").await;
        assert_eq!(found["messages"][0], "Order A-1234 is shipped.", "{found}");
        assert_eq!(
            found["messages"][1],
            json!({
                "type": "multiple-choice",
                "text": "What would you like to do?",
                "choices": ["Track the parcel", "Return an item", "No, thanks"],
                "display": "buttons",
                "fallbackText": "What would you like to do?\n1. Track the parcel\n2. Return an item\n3. No, thanks"
            }),
            "{found}"
        );
        assert_eq!(found["state"]["waitingAt"], "what-next");
        assert_eq!(
            found["state"]["slots"]["order-help"]["orderNumber"],
            "A-1234"
        );

        let picked = turn("1").await;
        assert_eq!(
            picked["messages"],
            json!(["It travels with DHL, tracking number JD0144."]),
            "{picked}"
        );
        assert_eq!(picked["next"], "close-dialog");
        assert_eq!(picked["variables"]["nextStep"], "Track the parcel");
        // The dialog ended: its slot with it.
        assert!(picked["state"].get("slots").is_none(), "{picked}");
        assert!(picked["state"].get("waitingAt").is_none(), "{picked}");
    }
}
