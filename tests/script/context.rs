//! The Conversation Context Service's functions on real V8, over a
//! snapshot given by hand: argument checks, bounds, what reads see, what
//! writes record. (Whole turns through the memory and Redis stores are in
//! `tests/fleet/context_store.rs`.)

use patchbay_script::{
    CONTEXT_MAX_NAMESPACES, CONTEXT_MAX_PROPERTIES, CONTEXT_MAX_RECORD_BYTES,
    CONTEXT_MAX_VALUE_BYTES, ContextScope, ContextScopeData, ContextSnapshot, ContextWrite,
    ScriptInput, ScriptOutput,
};

use crate::{run, runtime};

/// A snapshot with namespace `ns` registered (no TTL) and empty scopes.
fn with_namespace() -> ContextSnapshot {
    let mut snapshot = ContextSnapshot::empty();
    snapshot.namespaces.insert("ns".to_owned(), 0);
    snapshot
}

async fn run_with(code: &str, context: ContextSnapshot) -> ScriptOutput {
    let runtime = runtime();
    run(
        &runtime,
        code,
        ScriptInput {
            context,
            ..ScriptInput::default()
        },
    )
    .await
    .expect("runs")
}

/// What `code` throws: `Name: message`, sent as the run's one message.
async fn thrown(code: &str, context: ContextSnapshot) -> String {
    let output = run_with(
        &format!(
            "try {{ {code}; botContext.sendMessage('no error'); }} catch (e) {{ botContext.sendMessage(e.name + ': ' + e.message); }}"
        ),
        context,
    )
    .await;
    output.messages.join("\n")
}

#[tokio::test]
async fn wrong_arguments_throw_a_type_error_naming_the_function() {
    let cases = [
        (
            "botContext.isContextApiEnabled(1)",
            "botContext.isContextApiEnabled() takes no arguments, 1 given",
        ),
        (
            "botContext.registerContextNamespace()",
            "botContext.registerContextNamespace(namespace, ttl?) takes 1 to 2 arguments, 0 given",
        ),
        (
            "botContext.registerContextNamespace(1)",
            "`namespace` must be a string, not number",
        ),
        (
            "botContext.registerContextNamespace('ns', '60')",
            "`ttl` must be a number of seconds, not string",
        ),
        (
            "botContext.deleteContextNamespace(null)",
            "botContext.deleteContextNamespace(namespace): `namespace` must be a string, not null",
        ),
        (
            "botContext.setGlobalContextData('ns', 'p')",
            "botContext.setGlobalContextData(namespace, property, value) takes 3 arguments, 2 given",
        ),
        (
            "botContext.setContextDataForUser('ns', 2, 'v')",
            "botContext.setContextDataForUser(namespace, property, value): `property` must be a string, not number",
        ),
        (
            "botContext.setContextDataForConversation('ns', 'p', undefined)",
            "`value` must be something JSON can hold",
        ),
        (
            "botContext.setContextDataForConversation('ns', 'p', function () {})",
            "not function",
        ),
        (
            "botContext.setGlobalContextData('ns', 'p', Symbol('s'))",
            "not symbol",
        ),
        (
            "botContext.setGlobalContextData('ns', 'p', 1n)",
            "TypeError: Do not know how to serialize a BigInt",
        ),
        (
            "var o = {}; o.o = o; botContext.setGlobalContextData('ns', 'p', o)",
            "TypeError: Converting circular structure to JSON",
        ),
        (
            "botContext.setGlobalContextData('ns', 'p', {toJSON: function () {}})",
            "whose toJSON gives undefined",
        ),
        (
            "botContext.getGlobalContextData('ns')",
            "botContext.getGlobalContextData(namespace, property) takes 2 arguments, 1 given",
        ),
        (
            "botContext.getContextDataForUser()",
            "botContext.getContextDataForUser(namespace, property?) takes 1 to 2 arguments, 0 given",
        ),
        (
            "botContext.getContextDataForConversation('ns', {})",
            "`property` must be a string, not object",
        ),
        (
            "botContext.deleteGlobalContextData('ns')",
            "botContext.deleteGlobalContextData(namespace, property) takes 2 arguments, 1 given",
        ),
        (
            "botContext.deleteContextDataForUser(['ns'], 'p')",
            "`namespace` must be a string, not object",
        ),
        (
            "botContext.deleteContextDataForConversation('ns', 'p', 'extra')",
            "takes 2 arguments, 3 given",
        ),
        (
            "botContext.deleteAllContextDataForUser()",
            "botContext.deleteAllContextDataForUser(namespace) takes 1 argument, 0 given",
        ),
        (
            "botContext.deleteAllContextDataForConversation(7)",
            "botContext.deleteAllContextDataForConversation(namespace): `namespace` must be a string, not number",
        ),
    ];
    for (code, expected) in cases {
        let error = thrown(code, with_namespace()).await;
        assert!(error.starts_with("TypeError: "), "{code}: {error}");
        assert!(error.contains(expected), "{code}: {error}");
    }
}

#[tokio::test]
async fn bounds_throw_a_range_error_naming_the_limit() {
    let big = format!("'{}'", "x".repeat(CONTEXT_MAX_VALUE_BYTES));
    let long_name = format!("'{}'", "p".repeat(257));
    let cases = [
        (
            format!("botContext.setGlobalContextData('ns', 'p', {big})"),
            format!(
                "is 65538 bytes as JSON, more than the {CONTEXT_MAX_VALUE_BYTES} a property may hold"
            ),
        ),
        (
            format!("botContext.setContextDataForUser('ns', {long_name}, 1)"),
            "a property name is 1 to 256 bytes, not 257".to_owned(),
        ),
        (
            "botContext.getContextDataForConversation('ns', '')".to_owned(),
            "a property name is 1 to 256 bytes, not 0".to_owned(),
        ),
        (
            "botContext.registerContextNamespace('ns', -1)".to_owned(),
            "`ttl` is a whole number of seconds from 0 (no expiry)".to_owned(),
        ),
        (
            "botContext.registerContextNamespace('ns', 1.5)".to_owned(),
            "not 1.5".to_owned(),
        ),
        (
            "for (var i = 0; i < 1001; i++) botContext.deleteGlobalContextData('ns', 'p')"
                .to_owned(),
            "more than 1000 context store writes in one script run".to_owned(),
        ),
    ];
    for (code, expected) in cases {
        let error = thrown(&code, with_namespace()).await;
        assert!(error.starts_with("RangeError: "), "{code}: {error}");
        assert!(error.contains(&expected), "{code}: {error}");
    }
}

#[tokio::test]
async fn a_bot_registers_at_most_50_namespaces() {
    let mut snapshot = ContextSnapshot::empty();
    for index in 0..CONTEXT_MAX_NAMESPACES {
        snapshot.namespaces.insert(format!("ns{index}"), 0);
    }
    let error = thrown(
        "botContext.registerContextNamespace('one-more')",
        snapshot.clone(),
    )
    .await;
    assert!(
        error.starts_with("RangeError: ") && error.contains("the bot has 50 namespaces"),
        "{error}"
    );
    // Registering one it has again is fine.
    let output = run_with(
        "botContext.sendMessage(String(botContext.registerContextNamespace('ns3', 60)))",
        snapshot,
    )
    .await;
    assert_eq!(output.messages, ["true"]);
}

#[tokio::test]
async fn a_namespace_holds_at_most_1000_properties_in_a_scope() {
    let mut snapshot = with_namespace();
    let properties = (0..CONTEXT_MAX_PROPERTIES)
        .map(|index| (format!("p{index}"), "1".to_owned()))
        .collect();
    snapshot
        .user
        .as_mut()
        .expect("user scope")
        .insert("ns".to_owned(), properties);
    let error = thrown(
        "botContext.setContextDataForUser('ns', 'new', 1)",
        snapshot.clone(),
    )
    .await;
    assert!(
        error.starts_with("RangeError: ")
            && error.contains("namespace `ns` holds 1000 properties in the user scope"),
        "{error}"
    );
    // A property it holds may change; another scope is not full.
    let output = run_with(
        "botContext.sendMessage(botContext.setContextDataForUser('ns', 'p5', 2) + ' ' + botContext.setContextDataForConversation('ns', 'new', 1))",
        snapshot,
    )
    .await;
    assert_eq!(output.messages, ["true true"]);
}

#[tokio::test]
async fn a_scope_holds_at_most_256_kib() {
    let mut snapshot = with_namespace();
    let mut properties = std::collections::BTreeMap::new();
    let value = "x".repeat(60_000);
    for index in 0..4 {
        properties.insert(format!("p{index}"), format!("\"{value}\""));
    }
    snapshot.global.insert("ns".to_owned(), properties);
    let error = thrown(
        &format!(
            "botContext.setGlobalContextData('ns', 'p4', '{}')",
            "y".repeat(30_000)
        ),
        snapshot,
    )
    .await;
    assert!(
        error.starts_with("RangeError: ")
            && error.contains(&format!(
                "more than the {CONTEXT_MAX_RECORD_BYTES} it may (every namespace's properties together)"
            )),
        "{error}"
    );
}

#[tokio::test]
async fn values_round_trip_as_json_and_reads_see_the_runs_own_writes() {
    let output = run_with(
        r#"
        var ns = "ns";
        var ok = [
          botContext.setGlobalContextData(ns, "n", 2),
          botContext.setContextDataForUser(ns, "o", {a: [1, "b", null], t: true}),
          botContext.setContextDataForConversation(ns, "s", "text"),
          botContext.setContextDataForConversation(ns, "z", null),
        ];
        var n = botContext.getGlobalContextData(ns, "n");
        var o = botContext.getContextDataForUser(ns, "o");
        o.a.push("mutated");
        botContext.sendMessage(JSON.stringify(ok));
        botContext.sendMessage(typeof n + " " + n);
        botContext.sendMessage(JSON.stringify(botContext.getContextDataForUser(ns, "o")));
        botContext.sendMessage(JSON.stringify(botContext.getContextDataForConversation(ns)));
        botContext.sendMessage(String(botContext.getContextDataForConversation(ns, "missing")));
        "#,
        with_namespace(),
    )
    .await;
    assert_eq!(
        output.messages,
        [
            "[true,true,true,true]",
            "number 2",
            // Each read is a copy: the script's change to one is not kept.
            r#"{"a":[1,"b",null],"t":true}"#,
            r#"{"s":"text","z":null}"#,
            "null",
        ]
    );
    assert_eq!(
        output.context,
        [
            ContextWrite::Set {
                scope: ContextScope::Global,
                namespace: "ns".to_owned(),
                property: "n".to_owned(),
                value: "2".to_owned(),
            },
            ContextWrite::Set {
                scope: ContextScope::User,
                namespace: "ns".to_owned(),
                property: "o".to_owned(),
                value: r#"{"a":[1,"b",null],"t":true}"#.to_owned(),
            },
            ContextWrite::Set {
                scope: ContextScope::Conversation,
                namespace: "ns".to_owned(),
                property: "s".to_owned(),
                value: r#""text""#.to_owned(),
            },
            ContextWrite::Set {
                scope: ContextScope::Conversation,
                namespace: "ns".to_owned(),
                property: "z".to_owned(),
                value: "null".to_owned(),
            },
        ]
    );
}

#[tokio::test]
async fn all_properties_come_as_the_products_map() {
    let mut snapshot = with_namespace();
    let properties = [("count", "2"), ("name", r#""Ada""#)]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    snapshot
        .conversation
        .as_mut()
        .expect("conversation scope")
        .insert("ns".to_owned(), properties);
    let output = run_with(
        r#"
        var map = botContext.getContextDataForConversation("ns");
        var keys = map.keySet();
        botContext.sendMessage(keys.join(","));
        botContext.sendMessage(keys.map(function (k) { return map[k]; }).join(","));
        botContext.sendMessage("map: " + map);
        botContext.sendMessage(Object.keys(map).join(","));
        botContext.sendMessage(String(botContext.getContextDataForUser("ns")));
        "#,
        snapshot,
    )
    .await;
    assert_eq!(
        output.messages,
        [
            "count,name",
            "2,Ada",
            "map: {count=2, name=Ada}",
            // keySet and toString are not enumerable.
            "count,name",
            // Nothing set in the namespace: null, as in the product.
            "null",
        ]
    );
}

#[tokio::test]
async fn what_the_service_would_refuse_returns_false_or_null() {
    let mut snapshot = with_namespace();
    snapshot.user = None;
    snapshot.conversation = None;
    let output = run_with(
        r#"
        botContext.sendMessage([
          botContext.registerContextNamespace("consumer"),
          botContext.registerContextNamespace("SDE"),
          botContext.registerContextNamespace("has space"),
          botContext.registerContextNamespace("x".repeat(65)),
          botContext.setGlobalContextData("unregistered", "p", 1),
          botContext.deleteGlobalContextData("unregistered", "p"),
          botContext.deleteContextNamespace("unregistered"),
          botContext.setContextDataForUser("ns", "p", 1),
          botContext.setContextDataForConversation("ns", "p", 1),
          botContext.deleteAllContextDataForUser("ns"),
          botContext.deleteAllContextDataForConversation("ns"),
          botContext.getContextDataForUser("ns", "p"),
          botContext.getGlobalContextData("unregistered", "p"),
        ].map(String).join(" "));
        "#,
        snapshot,
    )
    .await;
    assert_eq!(
        output.messages,
        ["false false false false false false false false false false false null null"]
    );
    assert!(output.context.is_empty(), "{:?}", output.context);
}

#[tokio::test]
async fn a_store_that_could_not_be_read_fails_every_call() {
    let output = run_with(
        r#"
        botContext.sendMessage([
          botContext.isContextApiEnabled(),
          botContext.registerContextNamespace("ns"),
          botContext.setGlobalContextData("ns", "p", 1),
          String(botContext.getGlobalContextData("ns", "p")),
        ].join(" "));
        "#,
        ContextSnapshot::unavailable("redis is down"),
    )
    .await;
    assert_eq!(output.messages, ["false false false null"]);
    assert!(output.context.is_empty());
}

#[tokio::test]
async fn a_script_whose_source_names_no_context_function_gets_no_snapshot() {
    let error = thrown(
        "botContext['get' + 'GlobalContextData']('ns', 'p')",
        ContextSnapshot::default(),
    )
    .await;
    assert!(
        error.starts_with("Error: ")
            && error.contains("the context store was not loaded for this script"),
        "{error}"
    );
    let output = run_with(
        "botContext.sendMessage(String(botContext.isContextApiEnabled()))",
        ContextSnapshot::default(),
    )
    .await;
    assert_eq!(output.messages, ["true"]);
}

#[tokio::test]
async fn namespaces_register_change_their_ttl_and_delete_with_their_data() {
    let mut snapshot = with_namespace();
    snapshot.namespaces.insert("short".to_owned(), 60);
    snapshot.global.insert(
        "ns".to_owned(),
        [("p".to_owned(), "1".to_owned())].into_iter().collect(),
    );
    let output = run_with(
        r#"
        botContext.sendMessage([
          botContext.registerContextNamespace("short"),
          botContext.registerContextNamespace("fresh", 10800),
          botContext.setGlobalContextData("fresh", "p", 1),
          botContext.deleteContextNamespace("ns"),
          String(botContext.getGlobalContextData("ns", "p")),
          botContext.setGlobalContextData("ns", "p", 1),
          botContext.registerContextNamespace("ns"),
          String(botContext.getGlobalContextData("ns", "p")),
        ].join(" "));
        "#,
        snapshot,
    )
    .await;
    assert_eq!(
        output.messages,
        ["true true true true null false true null"]
    );
    let kinds: Vec<&str> = output.context.iter().map(ContextWrite::function).collect();
    assert_eq!(
        kinds,
        [
            "registerContextNamespace",
            "registerContextNamespace",
            "setGlobalContextData",
            "deleteContextNamespace",
            "registerContextNamespace",
        ]
    );
    assert_eq!(
        output.context[0],
        ContextWrite::RegisterNamespace {
            namespace: "short".to_owned(),
            ttl_seconds: None
        },
        "registered again without a ttl: the namespace keeps its own"
    );
}

#[tokio::test]
async fn deletes_take_effect_for_the_runs_later_reads() {
    let mut snapshot = with_namespace();
    let data: ContextScopeData = [(
        "ns".to_owned(),
        [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]
        .into_iter()
        .collect(),
    )]
    .into_iter()
    .collect();
    snapshot.global = data.clone();
    snapshot.user = Some(data.clone());
    snapshot.conversation = Some(data);
    let output = run_with(
        r#"
        botContext.sendMessage([
          botContext.deleteGlobalContextData("ns", "a"),
          String(botContext.getGlobalContextData("ns", "a")),
          botContext.getGlobalContextData("ns", "b"),
          botContext.deleteContextDataForUser("ns", "a"),
          JSON.stringify(botContext.getContextDataForUser("ns")),
          botContext.deleteContextDataForConversation("ns", "never-set"),
          botContext.deleteAllContextDataForUser("ns"),
          String(botContext.getContextDataForUser("ns")),
          botContext.deleteAllContextDataForConversation("ns"),
          String(botContext.getContextDataForConversation("ns", "b")),
        ].join(" "));
        "#,
        snapshot,
    )
    .await;
    assert_eq!(
        output.messages,
        [r#"true null 2 true {"b":2} true true null true null"#]
    );
    assert_eq!(output.context.len(), 5);
}

#[tokio::test]
async fn writes_count_against_the_runs_output_limit() {
    // The test runtime's output limit is 64 KiB: two values of 40 KB pass it.
    let value = "v".repeat(40_000);
    let runtime = runtime();
    let result = run(
        &runtime,
        &format!(
            "botContext.setGlobalContextData('ns', 'a', '{value}'); botContext.setGlobalContextData('ns', 'b', '{value}')"
        ),
        ScriptInput {
            context: with_namespace(),
            ..ScriptInput::default()
        },
    )
    .await;
    assert!(
        matches!(
            result,
            Err(patchbay_script::ScriptError::OutputLimit { .. })
        ),
        "{result:?}"
    );
}
