//! The bundled example bots load cleanly and survive a round trip.

use std::fs;

use patchbay_config::{Bot, Severity, load};

use crate::workspace_root;

fn examples() -> Vec<(String, String)> {
    let dir = workspace_root().join("examples");
    let mut examples: Vec<_> = fs::read_dir(&dir)
        .expect("examples directory")
        .map(|entry| entry.expect("example entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        // `NAME.test.yaml` is a bot's test file (docs/testing.md), not a bot.
        .filter(|path| !path.to_string_lossy().ends_with(".test.yaml"))
        .map(|path| {
            let text = fs::read_to_string(&path).expect("example text");
            (path.display().to_string(), text)
        })
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "expected at least three example bots");
    examples
}

fn load_clean(name: &str, text: &str) -> Bot {
    match load(name, text) {
        Ok(loaded) => {
            assert_eq!(
                loaded.warnings.count(Severity::Warning),
                0,
                "{}",
                loaded.warnings.render(patchbay_config::RenderStyle::Plain)
            );
            loaded.bot
        }
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    }
}

#[test]
fn examples_load_without_diagnostics() {
    for (name, text) in examples() {
        load_clean(&name, &text);
    }
}

#[test]
fn models_round_trip_through_yaml_and_json() {
    for (name, text) in examples() {
        let bot = load_clean(&name, &text);
        let yaml = serde_saphyr::to_string(&bot).expect("serialize yaml");
        assert_eq!(
            load_clean("again.yaml", &yaml),
            bot,
            "{name} via YAML:\n{yaml}"
        );
        let json = serde_json::to_string_pretty(&bot).expect("serialize json");
        assert_eq!(
            load_clean("again.json", &json),
            bot,
            "{name} via JSON:\n{json}"
        );
    }
}

#[test]
fn faq_bot_compiles_what_it_uses() {
    let (name, text) = examples()
        .into_iter()
        .find(|(name, _)| name.ends_with("faq-bot.yaml"))
        .expect("faq-bot example");
    let bot = load_clean(&name, &text);
    let search = &bot.integrations[0];
    assert_eq!(search.response_data_variable, "FAQS");
    assert!(search.transform_script.is_some());
    for path in search.custom_data_fields.values() {
        assert!(matches!(
            path.compiled(),
            patchbay_config::CompiledPath::Static(_)
        ));
    }
    assert_eq!(
        bot.failure_message(),
        patchbay_config::DEFAULT_FAILURE_MESSAGE
    );
    let starters = &bot.dialogs[0].starters;
    assert!(
        starters
            .iter()
            .any(|s| s.matches("How do I reset my password?"))
    );
}

#[test]
fn the_schema_describes_the_bot_file() {
    let schema = patchbay_config::json_schema();
    let properties = &schema["properties"];
    for field in ["name", "env", "credentials", "integrations", "dialogs"] {
        assert!(properties.get(field).is_some(), "schema lacks {field}");
    }
}
