//! The per-call work of the rules crate, on what a bot loaded once: a URL
//! template rendered, custom data fields extracted from 10 KB and 1 MB
//! responses, and a rule chosen by conditions.

use std::collections::HashMap;

use criterion::{Criterion, criterion_group, criterion_main};
use patchbay_config::SystemVariable;
use patchbay_rules::{Fields, PathCache, Place, Values, extract_fields, render, select_rule};
use serde_json::{Value, json};

const BOT: &str = r#"
name: bench
integrations:
  - name: search
    responseDataVariable: FAQS
    type: api
    method: GET
    url: "https://kb.example.com/{$botContext.locale}/search?q={$botContext.query}&user={$conversationId}"
    customDataFields:
      title: "{$.api_FAQS.items[0].title}"
      link: "{$.api_FAQS.items[0].url}"
      titles: "{$.api_FAQS.items[i].title}"
dialogs:
  - name: faq
    interactions:
      - name: search
        type: integration
        integration: search
        rules:
          - name: draft
            match:
              apiResult: success
              conditions:
                - field: FAQS.title
                  op: contains
                  value: draft
          - name: many
            match:
              apiResult: success
              conditions:
                - variable: found
                  op: greater-than
                  value: "100"
          - name: found
            match:
              apiResult: success
              conditions:
                - field: FAQS.titles
                  op: not-empty
"#;

/// `{"api_FAQS": {"items": [...]}}` of about `bytes` bytes.
fn document(bytes: usize) -> Value {
    let item = |index: usize| {
        json!({
            "title": format!("How to reset a password, part {index}"),
            "status": "published",
            "url": format!("https://help.example.com/articles/{index}"),
            "summary": "Open settings, choose security, then reset.",
        })
    };
    let size = item(0).to_string().len() + 1;
    let items: Vec<Value> = (0..(bytes / size).max(1)).map(item).collect();
    json!({ "api_FAQS": { "items": items } })
}

fn benches(c: &mut Criterion) {
    let bot = match patchbay_config::load("bench.yaml", BOT) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    };
    let integration = &bot.integrations[0];
    let variables = HashMap::from([
        ("locale".to_owned(), "en".to_owned()),
        ("query".to_owned(), "password reset".to_owned()),
        ("found".to_owned(), "12".to_owned()),
    ]);
    let slots = HashMap::new();
    let env = |_: &str| None;
    let system = |_: SystemVariable| Some("conversation-1".to_owned());
    let no_fields = Fields::default();
    let base = Values {
        variables: &variables,
        slots: &slots,
        env: &env,
        system: &system,
        fields: &no_fields,
    };

    c.bench_function("render_url_template", |b| {
        b.iter(|| render(&integration.url, &base, Place::Url).expect("renders"));
    });
    let paths = PathCache::default();
    for (name, bytes) in [
        ("extract_fields_10kb", 10 * 1024),
        ("extract_fields_1mb", 1024 * 1024),
    ] {
        let document = document(bytes);
        c.bench_function(name, |b| {
            b.iter(|| extract_fields(integration, &document, &base, &paths));
        });
    }
    let extracted = extract_fields(integration, &document(10 * 1024), &base, &paths);
    let mut fields = Fields::default();
    fields.store(integration, extracted);
    let values = Values {
        fields: &fields,
        ..base
    };
    let rules = match &bot.dialogs[0].interactions[0].kind {
        patchbay_config::InteractionKind::Integration(call) => &call.rules,
        _ => panic!("an integration interaction"),
    };
    c.bench_function("select_rule_three_rules", |b| {
        b.iter(|| {
            let chosen = select_rule(rules, true, &values);
            assert_eq!(chosen, Some(2));
        });
    });
}

criterion_group!(rules, benches);
criterion_main!(rules);
