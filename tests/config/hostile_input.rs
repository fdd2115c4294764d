//! The loader never panics and stays bounded, whatever it is given.

use patchbay_config::{Code, MAX_FILE_BYTES, load};
use proptest::prelude::*;

use crate::workspace_root;

fn faq_bot() -> String {
    std::fs::read_to_string(workspace_root().join("examples/faq-bot.yaml")).expect("faq-bot")
}

fn load_any(name: &str, text: &str) {
    // Whatever the outcome, it must be an outcome: no panic, and an error
    // report always holds at least one error.
    if let Err(report) = load(name, text) {
        assert!(report.has_errors());
        let _ = report.render(patchbay_config::RenderStyle::Plain);
        let _ = report.to_json();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        load_any("random.yaml", &text);
        load_any("random.json", &text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(
        text in "([a-zA-Z{}$.\\[\\]:,\"'\\-|>*&!#%@` \t]{0,12}\n?){0,40}"
    ) {
        load_any("noise.yaml", &text);
    }

    #[test]
    fn mutated_bots_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, any::<char>()), 1..8)
    ) {
        let mut text: Vec<char> = faq_bot().chars().collect();
        for (index, kind, c) in edits {
            let at = index.index(text.len().max(1));
            match kind {
                0 if at < text.len() => { text.remove(at); }
                1 => text.insert(at.min(text.len()), c),
                2 if at < text.len() => text[at] = c,
                _ => {
                    let line_end = text[at.min(text.len())..].iter().position(|c| *c == '\n');
                    if let Some(end) = line_end {
                        text.drain(at..at + end);
                    }
                }
            }
        }
        let text: String = text.into_iter().collect();
        load_any("mutated.yaml", &text);
    }
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let text = "#".repeat(MAX_FILE_BYTES + 1);
    let report = load("huge.yaml", &text).expect_err("too large");
    assert_eq!(report.diagnostics()[0].code, Code::TooLarge);
}

#[test]
fn large_valid_files_load() {
    let mut text = String::from("name: big\nintegrations:\n");
    for i in 0..2_000 {
        text.push_str(&format!(
            "  - name: call-{i}\n    responseDataVariable: R{i}\n    type: api\n    method: GET\n    url: https://api.example.com/{i}\n    customDataFields:\n      v: \"{{$.api_R{i}.items[i].v}}\"\n"
        ));
    }
    let loaded = load("big.yaml", &text).expect("loads");
    assert_eq!(loaded.bot.integrations.len(), 2_000);
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let text = format!(
        "name: deep\nvariables: {}{}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    load_any("deep.yaml", &text);
    let json = format!(
        "{{\"name\": \"deep\", \"variables\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    load_any("deep.json", &json);
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    text.push_str("name: bomb\n");
    load_any("bomb.yaml", &text);
}
