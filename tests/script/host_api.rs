//! Every `botContext` function, with the product's semantics.

use std::collections::HashMap;

use patchbay_script::{ApiData, CustomEvent, Persistence, ScriptInput, VariableWrite};

use crate::{run, runtime};

fn input() -> ScriptInput {
    ScriptInput {
        variables: HashMap::from([
            ("FAQS.article.count".to_owned(), "0".to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
            ("limit".to_owned(), "10".to_owned()),
        ]),
        env: HashMap::from([("REGION".to_owned(), "eu".to_owned())]),
        user_message: "where is my order".to_owned(),
        conversation_id: "conv-1".to_owned(),
        chat_bot_id: "bot-7".to_owned(),
        user_platform_id: "user-42".to_owned(),
        quick_reply_payload: "qr-1".to_owned(),
        api_status: Some(201),
        api_success: true,
        api: None,
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
