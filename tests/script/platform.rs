//! The platform's functions on real V8 (issue 20): platform data read
//! from `ScriptInput::platform` (fresh values on every call, nothing kept
//! from one run or bot to the next), platform actions written to
//! `ScriptOutput::actions` (one Transfer Bot Context, bounded, nothing
//! after `sendImmediateReply`), the NLU getters' "nothing", and the
//! argument checks of each.

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_script::{
    Action, ESCALATIONS_PER_RUN, FileData, PlatformData, ScriptError, ScriptInput, TransferContext,
    TransferIntent,
};

use crate::{compile, compile_in, run, runtime};

fn platform() -> Arc<PlatformData> {
    Arc::new(PlatformData {
        account_id: Some("le123".to_owned()),
        channel: Some("lp_web".to_owned()),
        engagement: HashMap::from([("campaignId".to_owned(), "7".to_owned())]),
        customer_info: Some(r#"{"customerId":"c1","balance":-400.99}"#.to_owned()),
        personal_info: Some(r#"{"firstname":"Ann"}"#.to_owned()),
        metadata: HashMap::from([(
            "SocialMessagingEventData".to_owned(),
            r#"[{"channel":"Public"}]"#.to_owned(),
        )]),
        web_view: HashMap::from([("plan".to_owned(), "gold".to_owned())]),
        web_view_json: Some(r#"{"plan":"gold"}"#.to_owned()),
        file: Some(FileData {
            caption: None,
            file_type: Some("PNG".to_owned()),
        }),
        maven: Some(r#"{"rule":{"actions":[{"type":"TRANSFER_TO_AGENT"}]}}"#.to_owned()),
    })
}

#[tokio::test]
async fn platform_data_reads_as_the_product_returns_it() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext, say = function (v) { b.sendMessage(JSON.stringify(v)); };
        say(b.getLPAccountId());
        say([b.getUserChannel(), b.getChannel()]);
        say([b.getLPEngagementAttribute("campaignId"), b.getLPEngagementAttribute("engagementId")]);
        say(b.getLPCustomerInfo().customerId + " " + b.getLPCustomerInfo().balance);
        say(b.getLPUserPersonalInfo().firstname);
        say([b.getMetadata("SocialMessagingEventData"), b.getMetadata("ConversationEventData")]);
        say([b.getWebViewVariable("plan"), b.getWebViewVariable("age"), b.getWebViewVariables()]);
        say([b.getFileCaption(), b.getFileType()]);
        say([typeof b.askMaven(), JSON.parse(b.askMaven("c", "u", "g")).rule.actions[0].type]);
        say([b.getDialogStarterIntent(), b.getNamedEntities("topping"), b.getNlpResponse(),
             b.getSentiment(), b.getDisambiguatedIntentName(), b.getDisambiguatedIntentId()]);
        "#,
        ScriptInput {
            platform: platform(),
            dialog_starter_intent: Some("billing".to_owned()),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec![
            r#""le123""#,
            r#"["lp_web","lp_web"]"#,
            r#"["7",null]"#,
            r#""c1 -400.99""#,
            r#""Ann""#,
            r#"[[{"channel":"Public"}],null]"#,
            r#"["gold",null,{"plan":"gold"}]"#,
            r#"["__EMPTYTEXT__","PNG"]"#,
            r#"["string","TRANSFER_TO_AGENT"]"#,
            r#"["billing",[],null,null,null,null]"#,
        ]
    );
}

#[tokio::test]
async fn unset_platform_data_reads_as_the_products_nothing() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.sendMessage(JSON.stringify([
          b.getLPAccountId(), b.getUserChannel(), b.getChannel(),
          b.getLPEngagementAttribute("campaignId"), b.getLPCustomerInfo(),
          b.getLPUserPersonalInfo(), b.getMetadata("X"), b.getWebViewVariable("x"),
          b.getWebViewVariables(), b.getFileCaption(), b.getFileType(),
          b.getDialogStarterIntent()
        ]));
        var answer = JSON.parse(b.askMaven());
        b.sendMessage(answer.rule.actions ? "actions" : "no actions");
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec![
            "[null,null,null,null,null,null,null,null,{},null,null,null]",
            "no actions"
        ]
    );
}

/// Objects come from the host's JSON text anew on every call: what a
/// script does to one is seen by no later call, run, or other bot.
#[tokio::test]
async fn values_read_are_fresh_on_every_call_and_run() {
    let runtime = runtime();
    let realm = runtime.realm("bot a");
    let script = compile_in(
        &runtime,
        &realm,
        r#"
        var info = botContext.getLPCustomerInfo();
        var seen = info === null ? "none" : info.customerId;
        if (info !== null) { info.customerId = "changed"; info.extra = 1; }
        var views = botContext.getWebViewVariables();
        views.plan = "changed";
        botContext.sendMessage(seen + " " + JSON.stringify(botContext.getLPCustomerInfo())
          + " " + botContext.getWebViewVariable("plan") + " " + botContext.getLPAccountId());
        "#,
    )
    .await;
    let with = ScriptInput {
        platform: platform(),
        ..ScriptInput::default()
    };
    let first = runtime.run(&script, with.clone()).await.expect("first");
    assert_eq!(
        first.messages,
        vec![r#"c1 {"customerId":"c1","balance":-400.99} gold le123"#]
    );
    // The same bot, another conversation without attributes.
    let without = runtime
        .run(&script, ScriptInput::default())
        .await
        .expect("without");
    assert_eq!(without.messages, vec!["none null null null"]);
    // Another bot.
    let other = compile(
        &runtime,
        r#"botContext.sendMessage(JSON.stringify([botContext.getLPAccountId(),
             botContext.getLPCustomerInfo()]));"#,
    )
    .await;
    let output = runtime
        .run(&other, ScriptInput::default())
        .await
        .expect("other bot");
    assert_eq!(output.messages, vec!["[null,null]"]);
    let again = runtime.run(&script, with).await.expect("again");
    assert_eq!(again.messages, first.messages);
}

fn transfer(intent: Option<TransferIntent>, user_message: Option<&str>) -> Action {
    Action::BotTransferContext(TransferContext {
        intent,
        user_message: user_message.map(str::to_owned),
    })
}

fn escalation(user_message: &str, escalation_type: &str) -> Action {
    Action::EscalationEvent {
        user_message: user_message.to_owned(),
        escalation_type: escalation_type.to_owned(),
    }
}

#[tokio::test]
async fn transfers_fill_one_context_and_escalations_are_listed_in_order() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.logEscalationEvent("I want a human", "agent");
        b.setBotTransferIntentId("intent-1");
        b.setBotTransferUserMessage("first");
        b.logEscalationEvent("still here", "repeat");
        b.setBotTransferIntentbyDomain("billing", "support");
        b.setBotTransferUserMessage("second");
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.actions,
        vec![
            escalation("I want a human", "agent"),
            transfer(
                Some(TransferIntent::ByDomain {
                    intent_name: "billing".to_owned(),
                    domain_name: "support".to_owned(),
                }),
                Some("second")
            ),
            escalation("still here", "repeat"),
        ]
    );
}

#[tokio::test]
async fn a_script_that_throws_keeps_its_actions_and_nothing_is_kept_after_an_immediate_reply() {
    let runtime = runtime();
    let script = compile(
        &runtime,
        r#"
        botContext.setBotTransferIntentId("kept");
        botContext.sendImmediateReply("bye");
        botContext.logEscalationEvent("never", "never");
        "#,
    )
    .await;
    let output = runtime
        .run(&script, ScriptInput::default())
        .await
        .expect("runs");
    assert_eq!(
        output.actions,
        vec![transfer(Some(TransferIntent::Id("kept".to_owned())), None)]
    );
    let script = compile(
        &runtime,
        r#"botContext.logEscalationEvent("before", "agent"); throw new Error("late");"#,
    )
    .await;
    let run = runtime
        .run_keeping_effects(&script, ScriptInput::default())
        .await;
    assert!(run.error.is_some());
    assert_eq!(run.output.actions, vec![escalation("before", "agent")]);
}

#[tokio::test]
async fn actions_are_bounded_by_count_and_by_the_output_limit() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var error = "none";
        try {
          for (var i = 0; i < 1000; i++) botContext.logEscalationEvent("", "");
        } catch (e) { error = e.name + ": " + e.message; }
        botContext.sendMessage(error);
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        output.messages,
        vec![format!(
            "RangeError: botContext.logEscalationEvent: at most {ESCALATIONS_PER_RUN} escalation events a script run"
        )]
    );
    assert_eq!(output.actions.len(), ESCALATIONS_PER_RUN);
    // The test runtime's output limit is 64 KiB.
    let error = run(
        &runtime,
        r#"
        var big = new Array(40 * 1024).join("x");
        botContext.setBotTransferUserMessage(big);
        botContext.setBotTransferUserMessage(big);
        "#,
        ScriptInput::default(),
    )
    .await
    .expect_err("over the limit");
    assert!(matches!(error, ScriptError::OutputLimit { .. }), "{error}");
}

#[tokio::test]
async fn every_function_checks_its_arguments() {
    let runtime = runtime();
    let calls = [
        (
            "getLPAccountId(1)",
            "TypeError: botContext.getLPAccountId() takes no arguments, 1 given",
        ),
        (
            "getUserChannel(1)",
            "TypeError: botContext.getUserChannel() takes no arguments, 1 given",
        ),
        (
            "getChannel(1)",
            "TypeError: botContext.getChannel() takes no arguments, 1 given",
        ),
        (
            "getLPEngagementAttribute()",
            "TypeError: botContext.getLPEngagementAttribute(name) takes 1 argument, 0 given",
        ),
        (
            "getLPEngagementAttribute(7)",
            "TypeError: botContext.getLPEngagementAttribute(name): `name` must be a string, not number",
        ),
        (
            "getLPCustomerInfo(1)",
            "TypeError: botContext.getLPCustomerInfo() takes no arguments, 1 given",
        ),
        (
            "getLPUserPersonalInfo(1)",
            "TypeError: botContext.getLPUserPersonalInfo() takes no arguments, 1 given",
        ),
        (
            "getMetadata(null)",
            "TypeError: botContext.getMetadata(metadataEventTypeName): `metadataEventTypeName` must be a string, not null",
        ),
        (
            "getWebViewVariable({})",
            "TypeError: botContext.getWebViewVariable(variableName): `variableName` must be a string, not object",
        ),
        (
            "getWebViewVariables(1)",
            "TypeError: botContext.getWebViewVariables() takes no arguments, 1 given",
        ),
        (
            "getFileCaption(1)",
            "TypeError: botContext.getFileCaption() takes no arguments, 1 given",
        ),
        (
            "getFileType(1)",
            "TypeError: botContext.getFileType() takes no arguments, 1 given",
        ),
        (
            "askMaven(1)",
            "TypeError: botContext.askMaven(conversationId?, consumerId?, groupId?): `conversationId` must be a string, not number",
        ),
        (
            "askMaven('a', 'b', 'c', 'd')",
            "TypeError: botContext.askMaven(conversationId?, consumerId?, groupId?) takes 0 to 3 arguments, 4 given",
        ),
        (
            "setBotTransferIntentbyDomain('billing')",
            "TypeError: botContext.setBotTransferIntentbyDomain(intentName, domainName) takes 2 arguments, 1 given",
        ),
        (
            "setBotTransferIntentbyDomain('billing', 3)",
            "TypeError: botContext.setBotTransferIntentbyDomain(intentName, domainName): `domainName` must be a string, not number",
        ),
        (
            "setBotTransferIntentId()",
            "TypeError: botContext.setBotTransferIntentId(intentId) takes 1 argument, 0 given",
        ),
        (
            "setBotTransferUserMessage(undefined)",
            "TypeError: botContext.setBotTransferUserMessage(userMessage): `userMessage` must be a string, not undefined",
        ),
        (
            "logEscalationEvent('help')",
            "TypeError: botContext.logEscalationEvent(userMessage, escalationType) takes 2 arguments, 1 given",
        ),
        (
            "logEscalationEvent('help', true)",
            "TypeError: botContext.logEscalationEvent(userMessage, escalationType): `escalationType` must be a string, not boolean",
        ),
        (
            "getDialogStarterIntent(1)",
            "TypeError: botContext.getDialogStarterIntent() takes no arguments, 1 given",
        ),
        (
            "getNamedEntities()",
            "TypeError: botContext.getNamedEntities(entityName) takes 1 argument, 0 given",
        ),
        (
            "getNlpResponse(1)",
            "TypeError: botContext.getNlpResponse() takes no arguments, 1 given",
        ),
        (
            "getSentiment(1)",
            "TypeError: botContext.getSentiment() takes no arguments, 1 given",
        ),
        (
            "getDisambiguatedIntentName(1)",
            "TypeError: botContext.getDisambiguatedIntentName() takes no arguments, 1 given",
        ),
        (
            "getDisambiguatedIntentId(1)",
            "TypeError: botContext.getDisambiguatedIntentId() takes no arguments, 1 given",
        ),
    ];
    let mut code = String::from("var out = [];\n");
    for (call, _) in &calls {
        code.push_str(&format!(
            "try {{ botContext.{call}; out.push('no error'); }} catch (e) {{ out.push(e.name + ': ' + e.message); }}\n"
        ));
    }
    code.push_str("botContext.sendMessages(out);");
    let output = run(&runtime, &code, ScriptInput::default())
        .await
        .expect("runs");
    let expected: Vec<&str> = calls.iter().map(|(_, error)| *error).collect();
    assert_eq!(output.messages, expected);
    assert!(output.actions.is_empty());
}
