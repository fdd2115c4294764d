//! A dialog's slots in scripts (issue 19): `getSlotValue` and
//! `setSlotValue`, read from `ScriptInput::slots` and written to
//! `ScriptOutput::slots`, with the semantics of bot variables (strings,
//! `null` when unset, calls take effect when made, bounded by the output
//! limit, nothing kept from one run to the next).

use std::collections::HashMap;

use patchbay_script::{ScriptError, ScriptInput, ScriptRun, ScriptRuntime, SlotWrite};

use crate::{compile, compile_in, run, runtime};

async fn run_keeping_effects(runtime: &ScriptRuntime, code: &str, input: ScriptInput) -> ScriptRun {
    let script = compile(runtime, code).await;
    runtime.run_keeping_effects(&script, input).await
}

fn slots(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn write(name: &str, value: &str) -> SlotWrite {
    SlotWrite {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

#[tokio::test]
async fn slots_read_as_strings_and_writes_are_seen_by_later_reads() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.sendMessage(typeof b.getSlotValue("size") + ":" + b.getSlotValue("size"));
        b.setSlotValue("size", "small");
        b.sendMessage(b.getSlotValue("size"));
        b.setSlotValue("count", 3);
        b.sendMessage(typeof b.getSlotValue("count") + ":" + b.getSlotValue("count"));
        "#,
        ScriptInput {
            slots: slots(&[("size", "large")]),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["string:large", "small", "string:3"]);
    assert_eq!(
        output.slots,
        vec![write("size", "small"), write("count", "3")]
    );
}

/// An unset slot is `null`, as an unset variable is; slots and variables
/// are separate names.
#[tokio::test]
async fn an_unset_slot_is_null_and_slots_are_not_variables() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        b.sendMessage(String(b.getSlotValue("missing") === null));
        b.sendMessage(String(b.getSlotValue("tier") === null));
        b.sendMessage(String(b.getBotVariable("colour") === null));
        b.setSlotValue("tier", "silver");
        b.sendMessage(b.getBotVariable("tier") + "," + b.getSlotValue("tier"));
        "#,
        ScriptInput {
            variables: slots(&[("tier", "gold")]),
            slots: slots(&[("colour", "red")]),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["true", "true", "true", "gold,silver"]);
    assert!(output.variables.is_empty());
    assert_eq!(output.slots, vec![write("tier", "silver")]);
}

/// Every write is recorded, in order (a slot written twice twice), its
/// value converted to a string exactly as `setBotVariable` converts it.
#[tokio::test]
async fn writes_appear_in_order_converted_as_variables_are() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var values = [1, {x: 1}, null, [1, 2], undefined, true, "text"];
        values.forEach(function (value, i) {
          botContext.setSlotValue("s" + (i % 4), value);
          botContext.setBotVariable("s" + (i % 4), value);
        });
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    let expected = vec![
        write("s0", "1"),
        write("s1", "[object Object]"),
        write("s2", "null"),
        write("s3", "1,2"),
        write("s0", "undefined"),
        write("s1", "true"),
        write("s2", "text"),
    ];
    assert_eq!(output.slots, expected);
    let as_variables: Vec<SlotWrite> = output
        .variables
        .iter()
        .map(|variable| write(&variable.name, &variable.value))
        .collect();
    assert_eq!(
        as_variables, expected,
        "converted as setBotVariable converts"
    );
}

/// `sendImmediateReply` ends the script: a slot written before it is kept,
/// none after it (nor in a promise job it left), as for variables.
#[tokio::test]
async fn nothing_is_written_after_an_immediate_reply() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"
        var b = botContext;
        Promise.resolve().then(function () {
          b.setSlotValue("job", "1");
          b.setBotVariable("job", "1");
        });
        b.setSlotValue("before", "1");
        b.setBotVariable("before", "1");
        try {
          b.sendImmediateReply("bye");
        } finally {
          b.setSlotValue("after", "2");
          b.setBotVariable("after", "2");
        }
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("an immediate reply is a normal end");
    assert!(output.immediate_reply);
    assert_eq!(output.slots, vec![write("before", "1")]);
    let variables: Vec<&str> = output.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(variables, vec!["before"]);

    // The host reads a transform's `jsonData` after the reply: a getter
    // there runs, but writes nothing.
    let output = run(
        &runtime,
        r#"
        Object.defineProperty(api_X, "jsonData", { get: function () {
          botContext.setSlotValue("getter", "1");
          botContext.setBotVariable("getter", "1");
          return "{}";
        } });
        botContext.setSlotValue("before", "1");
        botContext.sendImmediateReply("bye");
        "#,
        ScriptInput {
            api: Some(patchbay_script::ApiData {
                name: "api_X".to_owned(),
                json_data: r#"{"api_X": {}}"#.to_owned(),
            }),
            ..ScriptInput::default()
        },
    )
    .await
    .expect("an immediate reply is a normal end");
    assert!(output.immediate_reply);
    assert_eq!(output.slots, vec![write("before", "1")]);
    assert!(output.variables.is_empty());
}

/// A script that throws keeps the slots it wrote before, as it keeps its
/// variables; `run` returns the error alone.
#[tokio::test]
async fn a_script_that_throws_keeps_the_slots_it_wrote_before() {
    let runtime = runtime();
    let code = r#"
        botContext.setSlotValue("before", "yes");
        botContext.setBotVariable("before", "yes", true, false);
        null.boom;
        botContext.setSlotValue("after", "no");
        "#;
    let run_ = run_keeping_effects(&runtime, code, ScriptInput::default()).await;
    assert!(
        matches!(run_.error, Some(ScriptError::Exception { line: 4, .. })),
        "{:?}",
        run_.error
    );
    assert_eq!(run_.output.slots, vec![write("before", "yes")]);
    assert_eq!(run_.output.variables.len(), 1);
    assert!(run_.into_result().is_err());
}

/// Too few arguments, or a name that is not a string, is a `TypeError`
/// the script can catch, with a message that names the function; nothing
/// is written and the host goes on.
#[tokio::test]
async fn bad_arguments_are_a_type_error() {
    let runtime = runtime();
    let cases = [
        (
            "botContext.getSlotValue()",
            "botContext.getSlotValue(name) takes 1 argument, 0 given",
        ),
        (
            "botContext.setSlotValue()",
            "botContext.setSlotValue(name, value) takes 2 arguments, 0 given",
        ),
        (
            "botContext.setSlotValue('size')",
            "botContext.setSlotValue(name, value) takes 2 arguments, 1 given",
        ),
        (
            "botContext.getSlotValue(5)",
            "botContext.getSlotValue(name): the slot's name must be a string, not number",
        ),
        (
            "botContext.getSlotValue(undefined)",
            "botContext.getSlotValue(name): the slot's name must be a string, not undefined",
        ),
        (
            "botContext.setSlotValue(null, 'x')",
            "botContext.setSlotValue(name, value): the slot's name must be a string, not null",
        ),
        (
            "botContext.setSlotValue({ toString: function () { return 'size'; } }, 'x')",
            "botContext.setSlotValue(name, value): the slot's name must be a string, not object",
        ),
    ];
    for (call, message) in cases {
        let output = run(
            &runtime,
            &format!(
                r#"
                try {{
                  {call};
                  botContext.sendMessage("no error");
                }} catch (e) {{
                  botContext.sendMessage((e instanceof TypeError) + " " + e.message);
                }}
                "#
            ),
            ScriptInput::default(),
        )
        .await
        .expect("runs");
        assert_eq!(output.messages, vec![format!("true {message}")], "{call}");
        assert!(output.slots.is_empty(), "{call}");

        // Uncaught, it ends the script as any exception does.
        let error = run(&runtime, call, ScriptInput::default())
            .await
            .expect_err("a TypeError");
        assert_eq!(
            error.to_string(),
            format!("test script: TypeError: {message} (line 1)"),
        );
    }

    // A value whose conversion throws writes nothing; the script sees its
    // exception.
    let output = run(
        &runtime,
        r#"
        try {
          botContext.setSlotValue("size", { toString: function () { throw new Error("no"); } });
        } catch (e) {
          botContext.sendMessage("caught " + e.message);
        }
        "#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    assert_eq!(output.messages, vec!["caught no"]);
    assert!(output.slots.is_empty());
}

/// Slot writes are output: a value (or a name) larger than the run's
/// output limit (64 KiB here), many writes together, or writes with
/// messages past it end the run with the output-limit error, which names
/// slots, even when the script catches the exception; the run keeps
/// nothing.
#[tokio::test]
async fn slot_writes_count_against_the_output_limit() {
    let runtime = runtime();
    let cases = [
        "botContext.setSlotValue('big', 'x'.repeat(70 * 1024));",
        "botContext.setSlotValue('x'.repeat(70 * 1024), 'v');",
        "for (var i = 0; i < 100; i++) botContext.setSlotValue('s', 'x'.repeat(1024));",
        "botContext.sendMessage('x'.repeat(40 * 1024)); botContext.setSlotValue('s', 'x'.repeat(30 * 1024));",
    ];
    for case in cases {
        let code = format!(
            "botContext.setSlotValue('before', '1');\n\
             try {{ {case} }} catch (e) {{ botContext.sendMessage('caught ' + e.message); }}"
        );
        let run = run_keeping_effects(&runtime, &code, ScriptInput::default()).await;
        let error = run.error.expect("past the output limit");
        assert!(
            matches!(error, ScriptError::OutputLimit { limit: 65536, .. }),
            "{case}: {error:?}"
        );
        assert_eq!(
            error.to_string(),
            "test script: produced more than 65536 bytes of messages, variables, slots and events; nothing it did is kept",
        );
        assert_eq!(run.output, Default::default(), "{case}");
    }

    // Within the limit, the same writes are fine.
    let output = run(
        &runtime,
        "for (var i = 0; i < 50; i++) botContext.setSlotValue('s', 'x'.repeat(1024));",
        ScriptInput::default(),
    )
    .await
    .expect("within the limit");
    assert_eq!(output.slots.len(), 50);
}

/// What one run's slots were, or what it wrote, is not seen by the next
/// run: not by another script of the same bot (sharing its context), not
/// by the same script in another conversation, not by a later run of the
/// same conversation that is not given them.
#[tokio::test]
async fn no_slot_reaches_the_next_run() {
    let runtime = runtime();
    let realm = runtime.realm("one bot");
    let writer = compile_in(
        &runtime,
        &realm,
        r#"
        botContext.setSlotValue("written", "by the first run");
        botContext.sendMessage(botContext.getSlotValue("given") + "," + botContext.getSlotValue("written"));
        "#,
    )
    .await;
    let reader = compile_in(
        &runtime,
        &realm,
        r#"
        botContext.sendMessage(botContext.getSlotValue("given") + "," + botContext.getSlotValue("written"));
        "#,
    )
    .await;
    let output = runtime
        .run(
            &writer,
            ScriptInput {
                conversation_id: "alice".to_owned(),
                slots: slots(&[("given", "alice's")]),
                ..ScriptInput::default()
            },
        )
        .await
        .expect("runs");
    assert_eq!(output.messages, vec!["alice's,by the first run"]);
    for (script, conversation) in [(&reader, "bob"), (&reader, "alice"), (&writer, "bob")] {
        let output = runtime
            .run(
                script,
                ScriptInput {
                    conversation_id: conversation.to_owned(),
                    ..ScriptInput::default()
                },
            )
            .await
            .expect("runs");
        let expected = if std::ptr::eq(script, &writer) {
            vec![write("written", "by the first run")]
        } else {
            Vec::new()
        };
        assert_eq!(output.slots, expected, "{conversation}");
        let seen = if expected.is_empty() {
            "null,null"
        } else {
            "null,by the first run"
        };
        assert_eq!(output.messages, vec![seen], "{conversation}");
    }
}
