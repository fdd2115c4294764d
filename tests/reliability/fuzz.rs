//! Hostile input to everything that reads outside data per call: templates
//! rendered in every place, JSONPath, rule conditions, XML bodies and the
//! state a client sends back. Zero panics, and the output keeps its
//! promises (no line break in a header or URL). `PROPTEST_CASES` raises the
//! case count; `cargo xtask fuzz --minutes N` runs these for N minutes.

use std::collections::HashMap;

use patchbay_config::{SystemVariable, Template};
use patchbay_engine::ConversationState;
use patchbay_rules::{Fields, Place, Values, render, select_rule, xml_to_json};
use proptest::prelude::*;

const BOT: &str = r#"
name: fuzz
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: https://api.example.com/items
    customDataFields:
      name: "{$.api_ITEM.name}"
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: integration
        integration: item
        rules:
          - match:
              apiResult: success
              conditions:
                - variable: a
                  op: greater-than
                  value: "{$botContext.b}"
                - variable: b
                  op: matches
                  pattern: "^[0-9]+(\\.[0-9]+)?$"
          - match:
              apiResult: failure
              conditions:
                - field: ITEM.name
                  op: contains
                  value: "{$botContext.a}"
"#;

fn bot() -> patchbay_config::Bot {
    patchbay_tests::bot("fuzz.yaml", BOT)
}

fn with_values<R>(variables: &HashMap<String, String>, f: impl FnOnce(&Values<'_>) -> R) -> R {
    let slots = HashMap::new();
    let env = |name: &str| variables.get(name).cloned();
    let system = |_: SystemVariable| variables.get("message").cloned();
    let fields = Fields::default();
    f(&Values {
        variables,
        slots: &slots,
        env: &env,
        system: &system,
        fields: &fields,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn templates_render_safely_in_every_place(
        template in "([a-z/:?=&]{0,6}(\\{\\$?[a-zA-Z.\\[\\]0-9_]{0,12}\\}?)?){0,6}",
        values in proptest::collection::hash_map("[a-z]{1,3}", "\\PC{0,40}", 0..6),
    ) {
        let template = Template::parse(&template);
        with_values(&values, |values| {
            for place in [Place::Url, Place::Param, Place::Header, Place::JsonBody, Place::Text] {
                if let Ok(text) = render(&template, values, place)
                    && matches!(place, Place::Url | Place::Header | Place::Param)
                {
                    prop_assert!(!text.contains('\r') && !text.contains('\n'), "{place:?}: {text:?}");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn json_paths_compile_or_refuse(path in "\\$?[.\\[\\]a-z0-9*?@()=<>!'\" ,:-]{0,40}") {
        let _ = patchbay_config::compile_json_path(&path);
    }

    #[test]
    fn rule_conditions_hold_or_not(
        a in "\\PC{0,20}|-?[0-9]{1,30}(\\.[0-9]{1,10})?|NaN|inf|1e999",
        b in "\\PC{0,20}|-?[0-9]{1,30}(\\.[0-9]{1,10})?|NaN|inf|1e999",
        success: bool,
    ) {
        let bot = bot();
        let rules = match &bot.dialogs[0].interactions[0].kind {
            patchbay_config::InteractionKind::Integration(call) => &call.rules,
            _ => unreachable!("an integration interaction"),
        };
        let variables = HashMap::from([("a".to_owned(), a), ("b".to_owned(), b)]);
        let chosen = with_values(&variables, |values| select_rule(rules, success, values));
        prop_assert!(chosen.is_none_or(|index| index < rules.len()));
    }

    #[test]
    fn xml_bodies_convert_or_refuse(
        text in "(<[a-z:]{1,6}( [a-z]{1,4}=\"[^\"<]{0,6}\")?>|</[a-z:]{1,6}>|<!\\[CDATA\\[[^\\]]{0,8}\\]\\]>|&[a-z#0-9]{0,6};?|[^<&]{0,8}){0,30}"
    ) {
        let _ = xml_to_json(&text);
    }

    #[test]
    fn client_state_is_read_or_refused(json in arbitrary_json(4)) {
        let bot = bot();
        if let Ok(state) = ConversationState::from_json(json, &bot) {
            // What was read writes back and reads again the same.
            let again = ConversationState::from_json(state.to_json(), &bot);
            prop_assert!(again.is_ok());
        }
    }
}

/// Any JSON value, nested up to `depth`, biased towards the state's shape.
fn arbitrary_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|n| serde_json::json!(n)),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::hash_map(
                prop_oneof![
                    Just("conversationId".to_owned()),
                    Just("variables".to_owned()),
                    Just("userVariables".to_owned()),
                    Just("fields".to_owned()),
                    Just("ITEM.name".to_owned()),
                    "[a-zA-Z.]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// The serve API, in process, on a loopback port, for the property below.
fn serve_api() -> &'static (tokio::runtime::Runtime, std::net::SocketAddr) {
    static API: std::sync::OnceLock<(tokio::runtime::Runtime, std::net::SocketAddr)> =
        std::sync::OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let addr = runtime.block_on(async {
            let engine = crate::faults::engine().await;
            let server = patchbay_server::Server::new(patchbay_server::ServerOptions::default());
            server.insert_bot(engine);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
            addr
        });
        (runtime, addr)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any body to a turn gets a JSON answer: 200, or an error with a
    /// stable code, never a 5xx or a dropped connection.
    #[test]
    fn the_serve_api_answers_any_body(
        body in prop_oneof![
            arbitrary_json(4).prop_map(|json| json.to_string()),
            "\\PC{0,200}",
            arbitrary_json(3).prop_map(|state| serde_json::json!({
                "interaction": "look-up",
                "message": "hi",
                "state": state,
            }).to_string()),
        ]
    ) {
        let (runtime, addr) = serve_api();
        let (status, text) = runtime.block_on(patchbay_tests::client::request(
            *addr,
            "POST",
            "/v1/bots/faults/turns",
            &body,
        ));
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| TestCaseError::fail(format!("not JSON: {text}")))?;
        prop_assert!(status < 500, "{status}: {text}");
        if status != 200 {
            prop_assert!(json["error"]["code"].is_string(), "{text}");
        }
    }
}
