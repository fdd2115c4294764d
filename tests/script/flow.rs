//! The flow functions (issue 20): `getHoursType` with the run's time given
//! (`ScriptInput::now_ms`), the bounds of quick replies and of what a run
//! may output, and what the engine does with delays, quick replies and long
//! texts across the steps of a whole turn (the scenarios 65 to 69 show the
//! wire shapes).

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_engine::{ConversationState, Engine, EngineOptions, Message, Start, Turn};
use patchbay_script::{QuickReply, ScriptError, ScriptInput, ScriptRuntime};

use crate::{run, runtime};

/// Milliseconds since the epoch of an RFC 3339 instant in UTC
/// (`2018-11-23T17:00:00Z`), without a date crate.
fn epoch_ms(instant: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| instant[range].parse::<i64>().expect("digits");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000
}

#[test]
fn epoch_ms_is_right() {
    assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), 0);
    assert_eq!(epoch_ms("2026-03-08T10:00:00Z"), 1_772_964_000_000);
}

const DOCUMENTED: &str = r#"[
    "REG_HOURS~8:00~20:00", "AFTER_HOURS~20:00~8:00",
    "FRIDAY|WKEND_REG_HOURS~8:00~17:00", "FRIDAY|WKEND_AFTER_HOURS~17:00~08:00",
    "11.22.2018|HOLIDAY_THANKS~0:00~23:59", "12.25.2018|HOLIDAY_XMAS~0:00~23:59"]"#;

#[tokio::test]
async fn get_hours_type_classifies_the_run_s_time_in_the_zone() {
    let runtime = runtime();
    let code = format!(
        r#"var kind = botContext.getHoursType({DOCUMENTED}, "America/Los_Angeles");
           botContext.sendMessage(kind === null ? "null" : typeof kind + ":" + kind);
           botContext.sendMessage(String(botContext.getHoursType(["X~9:00~10:00"], "UTC")));"#
    );
    for (instant, expected) in [
        // Wednesday 2018-11-21 09:00 PST.
        ("2018-11-21T17:00:00Z", "string:REG_HOURS"),
        // 20:00 PST.
        ("2018-11-22T04:00:00Z", "string:AFTER_HOURS"),
        // Thanksgiving, noon.
        ("2018-11-22T20:00:00Z", "string:HOLIDAY_THANKS"),
        // Friday, 18:00 PST.
        ("2018-11-24T02:00:00Z", "string:WKEND_AFTER_HOURS"),
        // Christmas, 00:00 PST.
        ("2018-12-25T08:00:00Z", "string:HOLIDAY_XMAS"),
    ] {
        let output = run(
            &runtime,
            &code,
            ScriptInput {
                now_ms: Some(epoch_ms(instant)),
                ..ScriptInput::default()
            },
        )
        .await
        .expect("runs");
        assert_eq!(output.messages, vec![expected, "null"], "{instant}");
    }
    // 09:30 UTC is in the UTC entry.
    let output = run(
        &runtime,
        r#"botContext.sendMessage(botContext.getHoursType(["X~9:00~10:00"], "UTC"));"#,
        ScriptInput {
            now_ms: Some(epoch_ms("2026-03-08T09:30:00Z")),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["X"]);
}

#[tokio::test]
async fn without_a_given_time_the_system_clock_is_read() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"botContext.sendMessage(botContext.getHoursType(["ALWAYS~0:00~0:00"], "Asia/Tokyo"));"#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["ALWAYS"]);
}

#[tokio::test]
async fn flow_calls_are_recorded_in_the_output() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.setMessageDelay(3000);
        b.sendMessage("one");
        b.sendMessageWithQuickReplies("two", ["Yes~Y", " No "]);
        b.setMessageDelay(5000);
        b.addQuickReplies(["A~a"]);
        b.addQuickReples(["B~b"]);
        b.setAllowMaxTextResponse(true);
        b.sendMessage([b.getBotVariable("system_allowMaxTextResponse"), b.getButtonPayload(),
                       b.evaluateOptions(" yes ", ["A)Yes", "B)No"]),
                       b.evaluateOptions("C", ["A)Yes", "B)No"])].join("|"));
        "#,
        ScriptInput {
            quick_reply_payload: "clicked".to_owned(),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["one", "two", "true|clicked|A)Yes|"]);
    let reply = |title: &str, payload: Option<&str>| QuickReply {
        title: title.to_owned(),
        payload: payload.map(str::to_owned),
    };
    assert_eq!(
        output.quick_reply_messages,
        vec![(1, vec![reply("Yes", Some("Y")), reply("No", None)])]
    );
    assert_eq!(
        output.added_quick_replies,
        Some(vec![reply("B", Some("b"))])
    );
    // The last call is for every message of the run.
    assert_eq!(output.message_delay_ms, Some(5000));
    let write = output.variables.last().expect("a write");
    assert_eq!(
        (write.name.as_str(), write.value.as_str()),
        ("system_allowMaxTextResponse", "true")
    );
}

#[tokio::test]
async fn quick_replies_and_their_text_count_against_the_output_limit() {
    // The test runtime may output 64 KiB a run.
    let runtime = runtime();
    let result = run(
        &runtime,
        r#"botContext.sendMessageWithQuickReplies("x".repeat(70 * 1024), ["A~a"]);"#,
        ScriptInput::default(),
    )
    .await;
    assert!(
        matches!(&result, Err(ScriptError::OutputLimit { .. })),
        "{result:?}"
    );
    // Each call's replies are charged: ten replies of 20-character titles
    // and 6 KiB payloads, twice, pass 64 KiB.
    let result = run(
        &runtime,
        r#"var replies = [];
           for (var i = 0; i < 10; i++) { replies.push("t".repeat(20) + "~" + "p".repeat(6 * 1024)); }
           botContext.sendMessageWithQuickReplies("a", replies);
           botContext.addQuickReplies(replies);"#,
        ScriptInput::default(),
    )
    .await;
    assert!(
        matches!(&result, Err(ScriptError::OutputLimit { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_huge_reply_list_is_refused_before_it_is_read() {
    let runtime = runtime();
    // A million elements whose conversion would each throw: the count is
    // checked first, so the error is the limit's.
    let output = run(
        &runtime,
        r#"var replies = new Array(1000000);
           try { botContext.addQuickReplies(replies); }
           catch (e) { botContext.sendMessage(e.name + ": " + e.message); }"#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec![
            "RangeError: botContext.addQuickReplies(array): 1000000 quick replies; a message has at most 10"
        ]
    );
}

async fn engine(yaml: &str, scripts: &ScriptRuntime) -> Engine {
    let bot = match patchbay_config::load("bot.yaml", yaml) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    };
    let env: HashMap<String, String> = HashMap::new();
    let env = Arc::new(move |name: &str| env.get(name).cloned());
    Engine::new(bot, EngineOptions::new(env, scripts.clone()))
        .await
        .expect("engine")
}

async fn turn(engine: &Engine, state: ConversationState, message: &str) -> Turn {
    engine
        .run_turn(state, Start::Message, message)
        .await
        .expect("turn")
}

fn json(messages: &[Message]) -> serde_json::Value {
    serde_json::to_value(messages).expect("json")
}

const QUESTION_BOT: &str = r#"
name: flow
dialogs:
  - name: ask
    starters: ["ask"]
    interactions:
      - name: question
        type: question
        text: Which one?
        processUserResponse: |
          botContext.addQuickReplies(["Late~LATE"]);
        next: end
"#;

#[tokio::test]
async fn quick_replies_with_no_message_after_them_are_dropped_and_said_so() {
    let scripts = runtime();
    let engine = engine(QUESTION_BOT, &scripts).await;
    let asked = turn(&engine, ConversationState::default(), "ask").await;
    assert_eq!(asked.messages, vec!["Which one?"]);
    let answered = turn(&engine, asked.state, "this one").await;
    assert!(answered.messages.is_empty(), "{:?}", answered.messages);
    let debug: Vec<&String> = answered.steps.iter().flat_map(|step| &step.debug).collect();
    assert_eq!(
        debug,
        vec!["(addQuickReplies: no message followed in this turn; its quick replies were dropped)"]
    );
}

const STEPS_BOT: &str = r#"
name: flow
dialogs:
  - name: go
    starters: ["go"]
    interactions:
      - name: first
        type: text
        text: "{$botContext.long}"
        preProcess: |
          botContext.setBotVariable("long", "word ".repeat(80).trim(), false, false);
          botContext.setMessageDelay(250);
          botContext.addQuickReplies(["More~MORE"]);
      - name: second
        type: text
        text: Plain.
        next: end
"#;

#[tokio::test]
async fn each_step_shows_its_messages_as_they_were_sent() {
    let scripts = runtime();
    let engine = engine(STEPS_BOT, &scripts).await;
    let done = turn(&engine, ConversationState::default(), "go").await;
    // 80 words of 4 letters: 399 characters, in two parts; the quick
    // replies on the last part of the own message, the delay on both.
    let first_part = vec!["word"; 64].join(" ");
    let second_part = vec!["word"; 16].join(" ");
    assert_eq!(
        json(&done.messages),
        serde_json::json!([
            {"type": "text", "text": first_part, "delayMs": 250},
            {"type": "quick-replies", "text": second_part, "delayMs": 250,
             "quickReplies": [{"title": "More", "payload": "MORE"}]},
            "Plain."
        ])
    );
    let from_steps: Vec<Message> = done
        .steps
        .iter()
        .flat_map(|step| step.messages.clone())
        .collect();
    assert_eq!(from_steps, done.messages);
    // The delay and the quick replies were the first step's only.
    assert_eq!(done.steps[1].messages, vec!["Plain."]);
}
