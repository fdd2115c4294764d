//! Every `botContext` function, with the product's semantics.

use std::collections::HashMap;

use patchbay_script::{
    ApiData, CustomEvent, DEBUG_MESSAGES_PER_RUN, DEBUG_TEXT_BYTES, EVENTS_PER_RUN, Persistence,
    ScriptError, ScriptInput, ScriptRun, ScriptRuntime, VariableWrite,
};

use crate::{compile, run, runtime};

/// Runs `code` and returns what took effect with the error, if any.
async fn run_keeping_effects(runtime: &ScriptRuntime, code: &str, input: ScriptInput) -> ScriptRun {
    let script = compile(runtime, code).await;
    runtime.run_keeping_effects(&script, input).await
}

fn input() -> ScriptInput {
    ScriptInput {
        variables: HashMap::from([
            ("FAQS.article.count".to_owned(), "0".to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
            ("limit".to_owned(), "10".to_owned()),
        ]),
        slots: HashMap::new(),
        env: HashMap::from([("REGION".to_owned(), "eu".to_owned())]),
        user_message: "where is my order".to_owned(),
        conversation_id: "conv-1".to_owned(),
        chat_bot_id: "bot-7".to_owned(),
        user_platform_id: "user-42".to_owned(),
        quick_reply_payload: "qr-1".to_owned(),
        api_status: Some(201),
        api_success: true,
        api: None,
        ..ScriptInput::default()
    }
}

#[tokio::test]
async fn reads_come_back_as_strings_or_null() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.sendMessage(typeof b.getBotVariable("tier") + ":" + b.getBotVariable("tier"));
        b.sendMessage(String(b.getBotVariable("missing") === null));
        b.sendMessage(String(b.getBotVariable("FAQS.article.count") < 1));
        b.sendMessage(String(b.getBotVariable("limit") > 9));
        b.sendMessage(b.getBotVariable("limit") + 1);
        b.sendMessage(b.getEnvVariable("REGION") + "," + b.getEnvVariable("NOPE"));
        b.sendMessage(typeof b.getApiStatusCode() + ":" + b.getApiStatusCode());
        b.sendMessage(typeof b.isApiExecutionSuccessful() + ":" + b.isApiExecutionSuccessful());
        b.sendMessage([b.getCurrentUserMessage(), b.getConversationId(), b.getChatBotId(),
                       b.getUserPlatformId(), b.getQuickReplyPayload()].join("|"));
        "#,
        input(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec![
            "string:gold",
            "true",
            "true",
            "true",
            "101",
            "eu,null",
            "string:201",
            "boolean:true",
            "where is my order|conv-1|bot-7|user-42|qr-1",
        ]
    );
}

#[tokio::test]
async fn writes_are_recorded_with_their_persistence() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        botContext.setBotVariable("a", 1, false, false);
        botContext.setBotVariable("b", {x: 1}, true, false);
        botContext.setBotVariable("c", "kept", true, true);
        botContext.setBotVariable("d", null);
        botContext.sendMessage(typeof botContext.getBotVariable("a") + botContext.getBotVariable("a"));
        "#,
        input(),
    )
    .await
    .expect("runs");
    let write = |name: &str, value: &str, persistence| VariableWrite {
        name: name.to_owned(),
        value: value.to_owned(),
        persistence,
    };
    assert_eq!(
        output.variables,
        vec![
            write("a", "1", Persistence::Request),
            write("b", "[object Object]", Persistence::Session),
            write("c", "kept", Persistence::Forever),
            write("d", "null", Persistence::Request),
        ]
    );
    assert_eq!(output.messages, vec!["string1"]);
}

#[tokio::test]
async fn messages_triggers_events_and_debug_output_are_data() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        botContext.sendMessages(["one", "two", 3]);
        botContext.setTriggerNextMessage("no-articles-found");
        botContext.logCustomEvent("hi", "greeted", "detail");
        botContext.printDebugMessage("looked up " + 2 + " things");
        "#,
        input(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["one", "two", "3"]);
    assert_eq!(output.trigger.as_deref(), Some("no-articles-found"));
    assert_eq!(
        output.events,
        vec![CustomEvent {
            user_message: "hi".to_owned(),
            name: "greeted".to_owned(),
            detail: "detail".to_owned(),
        }]
    );
    assert_eq!(output.debug, vec!["looked up 2 things"]);
}

#[tokio::test]
async fn an_immediate_reply_ends_the_script() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        botContext.sendMessage("first");
        try {
          botContext.sendImmediateReply("right now");
        } catch (e) {
          botContext.sendMessage("caught");
        }
        botContext.sendMessage("never");
        "#,
        input(),
    )
    .await
    .expect("an immediate reply is a normal end");
    assert_eq!(output.messages, vec!["first", "right now"]);
    assert!(output.immediate_reply);
}

#[tokio::test]
async fn a_transform_reshapes_what_fields_see() {
    let runtime = runtime();
    let body = r#"{"items":[{"title":"Reset password","status":"published"},{"title":"Draft","status":"draft"}]}"#;
    let mut input = input();
    input.api = Some(ApiData {
        name: "api_FAQS".to_owned(),
        json_data: format!(r#"{{"api_FAQS": {body}}}"#),
    });
    let output = run(
        &runtime,
        r#"
        var data = JSON.parse(api_FAQS.jsonData);
        data.api_FAQS.items = data.api_FAQS.items.filter(function (a) { return a.status === "published"; });
        api_FAQS.jsonData = JSON.stringify(data);
        botContext.sendMessage(String(botContext.getBotVariable("api_FAQS") === api_FAQS));
        "#,
        input,
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["true"]);
    let transformed: serde_json::Value =
        serde_json::from_str(output.json_data.as_deref().expect("jsonData changed")).expect("json");
    let path = patchbay_config::FieldPath::parse("{$.api_FAQS.items[i].title}").expect("path");
    let patchbay_config::CompiledPath::Static(query) = path.compiled() else {
        panic!("a static path");
    };
    let titles: Vec<String> = jsonpath_rust::query::js_path_process(query, &transformed)
        .expect("query")
        .into_iter()
        .map(|found| found.val().as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(titles, vec!["Reset password"]);
}

#[tokio::test]
async fn an_untouched_json_data_is_not_reported() {
    let runtime = runtime();
    let mut input = input();
    input.api = Some(ApiData {
        name: "api_X".to_owned(),
        json_data: r#"{"api_X": {}}"#.to_owned(),
    });
    let output = run(&runtime, "var seen = api_X.jsonData.length;", input)
        .await
        .expect("runs");
    assert_eq!(output.json_data, None);
}

/// The product's array forms: `sendImmediateReply([...])` sends each element
/// as its own message, in order, as `sendMessages([...])` does; a string is
/// one message.
#[tokio::test]
async fn array_arguments_are_one_message_per_element() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        botContext.sendMessages(["m1", "m2"]);
        botContext.sendMessages("one, as it is");
        botContext.sendImmediateReply(["i1", "i2", 3]);
        botContext.sendMessage("never");
        "#,
        input(),
    )
    .await
    .expect("an immediate reply is a normal end");
    assert_eq!(
        output.messages,
        vec!["m1", "m2", "one, as it is", "i1", "i2", "3"]
    );
    assert!(output.immediate_reply);

    // An element whose conversion throws sends nothing of that call, and
    // the script sees the exception (it is not ended by a reply it did not
    // make).
    let output = run(
        &runtime,
        r#"
        try {
          botContext.sendImmediateReply(["a", { toString: function () { throw new Error("no"); } }]);
        } catch (e) {
          botContext.sendMessage("caught " + e.message);
        }
        "#,
        input(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["caught no"]);
    assert!(!output.immediate_reply);
}

/// As in the product, `botContext` calls take effect when they are made:
/// a script that throws keeps what it did before it threw.
#[tokio::test]
async fn a_script_that_throws_keeps_what_it_did_before() {
    let runtime = runtime();
    let run = run_keeping_effects(
        &runtime,
        r#"
        botContext.setBotVariable("seen", "yes", true, false);
        botContext.setTriggerNextMessage("no-articles-found");
        botContext.sendMessage("before");
        botContext.printDebugMessage("about to fail");
        botContext.logCustomEvent("hi", "failing", "soon");
        null.boom;
        botContext.sendMessage("after");
        "#,
        input(),
    )
    .await;
    assert!(
        matches!(run.error, Some(ScriptError::Exception { line: 7, .. })),
        "{:?}",
        run.error
    );
    let output = &run.output;
    assert_eq!(
        output.variables,
        vec![VariableWrite {
            name: "seen".to_owned(),
            value: "yes".to_owned(),
            persistence: Persistence::Session,
        }]
    );
    assert_eq!(output.trigger.as_deref(), Some("no-articles-found"));
    assert_eq!(output.messages, vec!["before"]);
    assert_eq!(output.debug, vec!["about to fail"]);
    assert_eq!(output.events.len(), 1);
    // `run` keeps its contract: the error alone.
    assert!(run.clone().into_result().is_err());
}

/// A limit is the exception: the run keeps nothing, and its error says so.
#[tokio::test]
async fn a_run_stopped_by_a_limit_keeps_nothing_and_says_so() {
    let runtime = runtime();
    for (code, kind) in [
        (
            "botContext.sendMessage('before'); botContext.setTriggerNextMessage('x'); for (;;) {}",
            "timeout",
        ),
        (
            "botContext.sendMessage('before'); botContext.sendMessage('x'.repeat(1024 * 1024));",
            "output-limit",
        ),
    ] {
        let run = run_keeping_effects(&runtime, code, input()).await;
        let error = run.error.expect("a limit is an error");
        assert_eq!(error.kind(), kind);
        assert!(
            error.to_string().ends_with("nothing it did is kept"),
            "{error}"
        );
        assert_eq!(run.output, Default::default(), "{kind}");
    }
}

/// Debug output and events are bounded per run, in count and in size;
/// past the bounds they are cut or counted, and the run goes on.
#[tokio::test]
async fn debug_output_and_events_are_bounded_and_never_fail_the_run() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        for (var i = 0; i < 150; i++) botContext.printDebugMessage("line " + i);
        for (var j = 0; j < 120; j++) botContext.logCustomEvent("m", "e" + j);
        botContext.sendMessage("done");
        "#,
        input(),
    )
    .await
    .expect("bounded output never fails the run");
    assert_eq!(output.debug.len(), DEBUG_MESSAGES_PER_RUN);
    assert_eq!(output.debug.last().map(String::as_str), Some("line 99"));
    assert_eq!(output.debug_dropped, 50);
    assert_eq!(output.events.len(), EVENTS_PER_RUN);
    assert_eq!(output.events_dropped, 20);
    // A left-out detail is empty, as the product's optional argument.
    assert_eq!(output.events[0].detail, "");
    assert_eq!(output.messages, vec!["done"]);

    // One value larger than the whole output limit (64 KiB here) is cut,
    // at a character boundary, and marked.
    let output = run(
        &runtime,
        r#"
        botContext.printDebugMessage("é".repeat(200000));
        botContext.logCustomEvent("u", "big", "x".repeat(200000));
        "#,
        input(),
    )
    .await
    .expect("a large debug message is cut, not an error");
    let message = &output.debug[0];
    assert!(message.ends_with('…'), "marked as cut");
    // Copied out of V8 up to 1 KiB past the size it is shown at: the host
    // masks secrets first, then cuts it to DEBUG_TEXT_BYTES.
    let shown_at_most = DEBUG_TEXT_BYTES + 1024;
    let kept = message.trim_end_matches('…');
    assert!(kept.len() <= shown_at_most && kept.len() >= shown_at_most - 1);
    assert!(kept.chars().all(|c| c == 'é'));
    assert_eq!(
        output.events[0].detail.trim_end_matches('…').len(),
        shown_at_most
    );
}
