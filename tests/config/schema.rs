//! The JSON Schemas (`patchbay schema`, `patchbay schema --test-file`) held
//! to the loaders with a real validator, so that the two cannot drift:
//! every example and fixture bot the loader takes fits the bot schema;
//! every fixture it refuses is refused by the schema too, or is named here
//! with why a schema cannot see it; small bots and test files that probe
//! the edges (defaults, `null`, scalars as text, the fields of each `type`)
//! get the same answer from both.
//!
//! A file goes to the validator as its loader reads it: YAML through
//! serde_saphyr with the loader's options (a bot: YAML 1.2 booleans and
//! duplicate keys refused; a test file: serde_saphyr's defaults), JSON as
//! JSON.

use std::fs;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use patchbay_config::load;
use serde_json::Value;

use crate::workspace_root;

/// Bad fixtures whose mistake only the loader's validation sees: the
/// schema takes them, and this test checks that it still does (a fixture
/// the schema learns to refuse must leave this list).
const SEEN_ONLY_BY_VALIDATION: &[(&str, &str)] = &[
    (
        "duplicate-names.yaml",
        "names unique across the bot (a schema has no uniqueness by member)",
    ),
    (
        "env-secret-with-value.yaml",
        "which env variables hold secrets depends on the credentials that refer to them",
    ),
    ("invalid-json-path.yaml", "a JSONPath that does not compile"),
    (
        "invalid-pattern.yaml",
        "a starter pattern that does not compile",
    ),
    (
        "invalid-regex.yaml",
        "a regular expression that does not compile",
    ),
    ("invalid-url.yaml", "a URL template that forms no URL"),
    (
        "lint-caller-controlled-url.yaml",
        "what a URL template's references may choose, and host names",
    ),
    (
        "question-capture-group.yaml",
        "a capture's group must be a named group of the rule's regex",
    ),
    (
        "question-kind-mismatch.yaml",
        "what a capture can take depends on the question's kind",
    ),
    (
        "question-options.yaml",
        "options name the question's own choices",
    ),
    (
        "question-unknown-slot.yaml",
        "a capture's slot must be declared by its dialog",
    ),
    (
        "unknown-integration.yaml",
        "an interaction names an integration that exists",
    ),
    (
        "unknown-next.yaml",
        "next actions name interactions and dialogs that exist",
    ),
];

/// Bad fixtures that are not YAML or JSON of one document: the parser
/// refuses them before any schema could look (the conversion fails, and
/// this test checks that it does).
const NOT_A_DOCUMENT: &[(&str, &str)] = &[
    ("duplicate-key.yaml", "a mapping with a key twice"),
    ("malformed-json.json", "not JSON"),
    ("malformed-with-secret.yaml", "not YAML"),
    ("malformed-yaml.yaml", "not YAML"),
    ("multiple-documents.yaml", "two YAML documents"),
];

fn bot_validator() -> Validator {
    let schema = patchbay_config::json_schema();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the bot schema is no valid JSON Schema"
    );
    jsonschema::draft202012::new(&schema).expect("the bot schema compiles")
}

fn test_file_validator() -> Validator {
    let schema = patchbay_testing::json_schema();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the test-file schema is no valid JSON Schema"
    );
    jsonschema::draft202012::new(&schema).expect("the test-file schema compiles")
}

/// A bot file as the loader reads it.
fn bot_json(file: &str, text: &str) -> Result<Value, String> {
    if file.ends_with(".json") {
        return serde_json::from_str(text).map_err(|error| error.to_string());
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    serde_saphyr::from_str_with_options(text, options).map_err(|error| error.to_string())
}

/// A test file as `TestFile::parse` reads it.
fn test_file_json(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str(text).map_err(|error| error.to_string())
}

/// Where and why `value` does not fit; empty when it fits.
fn misfits(validator: &Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    paths.sort();
    paths
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name")
        .to_owned()
}

/// Every bot file of the repository: examples, scenarios, fixtures and
/// the benchmark's.
fn every_bot_file() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut bots = files(&root.join("examples"), |name| {
        name.ends_with(".yaml") && !name.ends_with(".test.yaml")
    });
    for scenario in files(&root.join("tests/scenarios"), |_| true) {
        let bot = scenario.join("bot.yaml");
        if bot.is_file() {
            bots.push(bot);
        }
    }
    bots.extend(files(&root.join("tests/fixtures/config"), |name| {
        name.ends_with(".yaml") || name.ends_with(".json")
    }));
    bots.push(root.join("crates/bench/bench-bot.yaml"));
    bots
}

#[test]
fn every_bot_the_loader_takes_fits_the_schema() {
    let validator = bot_validator();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in every_bot_file() {
        let name = path.display().to_string();
        let text = fs::read_to_string(&path).expect("bot text");
        if load(&name, &text).is_err() {
            continue;
        }
        checked += 1;
        let value = bot_json(&name, &text).unwrap_or_else(|error| panic!("{name}: {error}"));
        let misfits = misfits(&validator, &value);
        if !misfits.is_empty() {
            failures.push(format!("{name}:\n  {}", misfits.join("\n  ")));
        }
    }
    assert!(checked >= 90, "only {checked} bots loaded");
    assert!(
        failures.is_empty(),
        "{} bot(s) the loader takes do not fit the schema:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fixture_the_loader_refuses_is_refused_by_the_schema_or_named() {
    let validator = bot_validator();
    let dir = workspace_root().join("tests/fixtures/config");
    let mut refused = 0;
    let mut failures = Vec::new();
    let mut named: Vec<&str> = SEEN_ONLY_BY_VALIDATION
        .iter()
        .chain(NOT_A_DOCUMENT)
        .map(|(name, _)| *name)
        .collect();
    for path in files(&dir, |name| {
        name.ends_with(".yaml") || name.ends_with(".json")
    }) {
        let name = file_name(&path);
        let text = fs::read_to_string(&path).expect("fixture text");
        if load(&name, &text).is_ok() {
            continue;
        }
        named.retain(|listed| *listed != name);
        let value = bot_json(&name, &text);
        if NOT_A_DOCUMENT.iter().any(|(listed, _)| *listed == name) {
            if let Ok(value) = value {
                failures.push(format!(
                    "{name} is listed as no document, but it reads as {value}"
                ));
            }
            continue;
        }
        let value = value.unwrap_or_else(|error| panic!("{name}: {error}"));
        let fits = misfits(&validator, &value).is_empty();
        let seen_only_by_validation = SEEN_ONLY_BY_VALIDATION
            .iter()
            .any(|(listed, _)| *listed == name);
        match (fits, seen_only_by_validation) {
            (true, false) => failures.push(format!(
                "{name}: the loader refuses it, the schema takes it (refuse it in the schema, or list it in SEEN_ONLY_BY_VALIDATION with why a schema cannot)"
            )),
            (false, true) => failures.push(format!(
                "{name}: the schema refuses it now; take it off SEEN_ONLY_BY_VALIDATION"
            )),
            (false, false) => refused += 1,
            (true, true) => {}
        }
    }
    assert!(
        named.is_empty(),
        "listed fixtures that are not there or that load: {named:?}"
    );
    assert!(
        refused >= 15,
        "only {refused} fixtures refused by the schema"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Small bots at the edges, each with whether the loader takes it; the
/// schema must say the same.
const SMALL_BOTS: &[(&str, bool)] = &[
    // Defaults are not required; text fields take any scalar.
    ("name: b\n", true),
    ("name: 42\n", true),
    ("name: true\n", true),
    ("description: no name\n", false),
    ("name: b\nnope: 1\n", false),
    ("name: b\ncontextSwitching: false\n", true),
    ("name: b\ncontextSwitching: yes\n", false),
    ("name: b\ncontextSwitching:\n", false),
    // Lists and maps written with nothing under them are empty; records
    // are not.
    (
        "name: b\nenv:\nvariables:\ncredentials:\nintegrations:\ndialogs:\n",
        true,
    ),
    ("name: b\nnetwork:\n", false),
    ("name: b\nnetwork: { allow: }\n", true),
    ("name: b\nhttp:\n", false),
    ("name: b\nhttp: { retries: , timeoutMs: 5000 }\n", true),
    ("name: b\nhttp: { timeoutMs: 0 }\n", false),
    ("name: b\nhttp: { timeoutMs: -1 }\n", false),
    (
        "name: b\nvariables: { a: 1, b: true, c: 1.5, d: text }\n",
        true,
    ),
    ("name: b\nvariables: { a: }\n", false),
    ("name: b\nvariables: { a: [1] }\n", false),
    ("name: b\nenv: { A: 1, B: }\n", true),
    (
        "name: b\nnetwork: { rateLimits: { x.example.com: { calls: 2 } } }\n",
        true,
    ),
    (
        "name: b\nnetwork: { rateLimits: { x.example.com: { calls: 0 } } }\n",
        false,
    ),
    (
        "name: b\nnetwork: { rateLimits: { x.example.com: { burst: 2 } } }\n",
        false,
    ),
    // Dialogs and interactions.
    (
        "name: b\ndialogs:\n  - name: d\n    starters:\n    slots:\n    interactions:\n      - { name: t, type: text, text: 42, next:, preProcess: }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions: []\n",
        false,
    ),
    ("name: b\ndialogs:\n  - name: d\n", false),
    (
        "name: b\ndialogs:\n  - name: d\n    type:\n    interactions:\n      - { name: t, type: text, text: a }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - { name: d, type: fallback, interactions: [{ name: t, type: text, text: a }] }\n  - { name: e, type: fallback, interactions: [{ name: u, type: text, text: a }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: t, type: text }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: t, type: text, text: }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: t, type: txt, text: a }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: t, type: text, text: a, choices: [x] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: end, type: text, text: a }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: 'dialog:x', type: text, text: a }\n",
        false,
    ),
    // Questions.
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, noMatch:, rules: }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, noMatch: { retries: , next: , message: } }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: multiple-choice, text: a, choices: [1, true, x], display:, listStyle: letters }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: multiple-choice, text: a, choices: [x, '  '] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: multiple-choice, text: a }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: multiple-choice, text: a, choices: [x], display: tiles }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: buttons, text: a, buttons: [{ title: a, payload: }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: buttons, text: a, buttons: [{ title: a, label: b }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: quick-replies, text: a, quickReplies: [{ title: a }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: quick-replies, text: a, buttons: [{ title: a }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: structured, cards: [{ title: a, buttons: [{ title: b }] }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: structured, text: a, cards: [{ title: a }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: structured, cards: [{ title: a, buttons: }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: structured, cards: [] }\n",
        false,
    ),
    // A question's rules.
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: 3 }, set: [{ variable: v, scope: , from: }], messages:, next: }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: [yes, 42, 1.5, true], conditions: [{ variable: v, op: empty }] } }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { pattern: '*', noMatch: true } }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { noMatch: false } }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { noMatch: true } }] }\n",
        true,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ messages: [hi] }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: [] } }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { apiResult: success } }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: a }, set: [{ slot: s, scope: dialog }] }] }\n    slots: [s]\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: a }, set: [{ variable: v, slot: s }] }] }\n    slots: [s]\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: a }, set: [{ variable: v, value: x, from: answer }] }] }\n",
        false,
    ),
    (
        "name: b\ndialogs:\n  - name: d\n    interactions:\n      - { name: q, type: question, text: a, rules: [{ match: { exact: a }, set: [{ variable: v, scope: forever, value: '{$userMessage}' }] }] }\n",
        true,
    ),
    // Integrations and their rules.
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/', headers:, params:, customDataFields:, allowedHosts:, rateLimit:, credential: }\n",
        true,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/', http: }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: R, type: api, method: get, url: 'https://x.example.com/' }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: R, method: GET, url: 'https://x.example.com/' }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: 2R, type: api, method: GET, url: 'https://x.example.com/' }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: true, type: api, method: GET, url: 'https://x.example.com/' }\n",
        true,
    ),
    (
        "name: b\nintegrations:\n  - { name: i, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/', defaultHeaders: }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ match:, messages:, next: }, { match: { apiResult: failure, conditions: [{ field: R.a, op: matches, pattern: '^a' }] } }] }\n",
        true,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ match: { exact: a } }] }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ set: [{ variable: v }] }] }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ match: { conditions: [{ variable: v, field: R.a, op: empty }] } }] }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ match: { conditions: [{ variable: v, op: equals }] } }] }\n",
        false,
    ),
    (
        "name: b\nintegrations:\n  - { name: x, responseDataVariable: R, type: api, method: GET, url: 'https://x.example.com/' }\ndialogs:\n  - name: d\n    interactions:\n      - { name: i, type: integration, integration: x, rules: [{ match: { conditions: [{ variable: v, op: equals, value: 1, field: }] } }] }\n",
        true,
    ),
    // Credentials: each type's fields, secrets as {$env.NAME}.
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: access-token, token: '{$env.T}', tokenType: }\n",
        true,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: access-token, token: '{$env.T}', username: u }\n",
        false,
    ),
    (
        "name: b\ncredentials:\n  - { name: c, type: access-token, token: s3cr3t }\n",
        false,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: access-token }\n",
        false,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: bearer, token: '{$env.T}' }\n",
        false,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: api-key, header: , queryParam: q, value: '{$env.T}' }\n",
        true,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: api-key, header: h, queryParam: q, value: '{$env.T}' }\n",
        false,
    ),
    (
        "name: b\nenv: { T: }\ncredentials:\n  - { name: c, type: api-key, value: '{$env.T}' }\n",
        false,
    ),
    (
        "name: b\nenv: { S: }\ncredentials:\n  - { name: c, type: oauth2, grant: client-credentials, clientId: i, clientSecret: '{$env.S}', tokenUrl: 'https://a.example.com/token', clientAuth: body, extraParams: { audience: x } }\n",
        true,
    ),
    (
        "name: b\ncredentials:\n  - { name: c, type: oauth2, grant: client-credentials, clientId: i, tokenUrl: 'https://a.example.com/token' }\n",
        false,
    ),
    (
        "name: b\ncredentials:\n  - { name: c, type: oauth2, grant: authorization-code, clientId: i, tokenUrl: 'https://a.example.com/token', authUrl: 'https://a.example.com/auth' }\n",
        true,
    ),
    (
        "name: b\ncredentials:\n  - { name: c, type: oauth2, grant: authorization-code, clientId: i, tokenUrl: 'https://a.example.com/token' }\n",
        false,
    ),
    (
        "name: b\nenv: { K: , P: }\ncredentials:\n  - { name: c, type: mutual-tls, pkcs12: '{$env.K}', password: '{$env.P}' }\n",
        true,
    ),
    (
        "name: b\nenv: { K: }\ncredentials:\n  - { name: c, type: mutual-tls, certificate: cert, privateKey: '{$env.K}' }\n",
        true,
    ),
    (
        "name: b\nenv: { K: , P: }\ncredentials:\n  - { name: c, type: mutual-tls, certificate: cert, privateKey: '{$env.K}', password: '{$env.P}' }\n",
        false,
    ),
    (
        "name: b\nenv: { K: }\ncredentials:\n  - { name: c, type: mutual-tls, certificate: cert }\n",
        false,
    ),
    (
        "name: b\nenv: { S: }\ncredentials:\n  - { name: c, type: oauth1, consumerKey: k, consumerSecret: '{$env.S}', signatureMethod: HMAC-SHA256 }\n",
        true,
    ),
    (
        "name: b\nenv: { S: }\ncredentials:\n  - { name: c, type: oauth1, consumerKey: k, consumerSecret: '{$env.S}', signatureMethod: RSA-SHA1 }\n",
        false,
    ),
    (
        "name: b\nenv: { P: }\ncredentials:\n  - { name: c, type: basic, username: u, password: '{$env.P}' }\n",
        true,
    ),
];

/// Where the two knowingly differ (docs/config.md, "Editor set-up"): the
/// loader reads a number written in quotes into a number field; the schema
/// wants a number.
const TAKEN_BY_THE_LOADER_ONLY: &[&str] = &[
    "name: b\nhttp: { timeoutMs: \"5000\" }\n",
    "name: b\nnetwork: { rateLimits: { x.example.com: { calls: '2' } } }\n",
];

#[test]
fn the_schema_and_the_loader_differ_only_where_documented() {
    let validator = bot_validator();
    for text in TAKEN_BY_THE_LOADER_ONLY {
        if let Err(report) = load("b.yaml", text) {
            panic!(
                "the loader refuses it now; take it off TAKEN_BY_THE_LOADER_ONLY and docs/config.md:\n{text}{}",
                report.render(patchbay_config::RenderStyle::Plain)
            );
        }
        let value = bot_json("b.yaml", text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert!(
            !misfits(&validator, &value).is_empty(),
            "the schema takes it now; take it off TAKEN_BY_THE_LOADER_ONLY and docs/config.md:\n{text}"
        );
    }
}

#[test]
fn the_schema_and_the_loader_agree_on_small_bots() {
    let validator = bot_validator();
    let mut failures = Vec::new();
    for (text, taken) in SMALL_BOTS {
        let loaded = load("b.yaml", text);
        if loaded.is_ok() != *taken {
            let report = loaded
                .err()
                .map(|report| report.render(patchbay_config::RenderStyle::Plain));
            failures.push(format!(
                "the loader {} it:\n{text}{}",
                if *taken { "refuses" } else { "takes" },
                report.unwrap_or_default()
            ));
            continue;
        }
        let value = bot_json("b.yaml", text).unwrap_or_else(|error| panic!("{text}: {error}"));
        let misfits = misfits(&validator, &value);
        if misfits.is_empty() != *taken {
            failures.push(format!(
                "the loader {} it, the schema {} it:\n{text}{}",
                if *taken { "takes" } else { "refuses" },
                if *taken { "refuses" } else { "takes" },
                misfits.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} disagree:\n\n{}",
        failures.len(),
        SMALL_BOTS.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_example_test_file_fits_the_test_file_schema() {
    let validator = test_file_validator();
    let examples = files(&workspace_root().join("examples"), |name| {
        name.ends_with(".test.yaml")
    });
    assert!(examples.len() >= 4, "{examples:?}");
    for path in examples {
        let name = path.display().to_string();
        let text = fs::read_to_string(&path).expect("test file text");
        patchbay_testing::TestFile::parse(&name, &text)
            .unwrap_or_else(|error| panic!("{name} does not read: {error}"));
        let value = test_file_json(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
        let misfits = misfits(&validator, &value);
        assert!(misfits.is_empty(), "{name}:\n{}", misfits.join("\n"));
    }
}

/// Small test files, each with whether `TestFile::parse` takes it; the
/// schema must say the same.
const SMALL_TEST_FILES: &[(&str, bool)] = &[
    (
        "cases:\n  - name: one\n    message: 1234\n    interaction: look-up\n    variables: { n: 1 }\n    upstream: [{ request: GET https://a.example.com/x, status: 404, headers: { x-a: 1 }, body: { a: [1] } }]\n    expect: { messages: [Shipped, 42, { type: question, text: Sure? }], next: end, status: null, success: false, fields: { R.a: [1, x], R.b: null, R.c: yes }, variables: { n: 2 }, actions: [{ type: escalation-event }] }\n",
        true,
    ),
    (
        "bot: bot.yaml\nenv: { T: x }\ncases:\n  - name: turns\n    attributes: { accountId: a1, engagement: { campaignId: '7' }, file: { caption: null }, maven: [1] }\n    replay: recordings\n    turns:\n      - message: hi\n        payload: YES\n        attributes: { channel: null }\n      - interaction: menu\n        expect: { next: end }\n",
        true,
    ),
    ("cases: []\n", false),
    ("bot: b.yaml\n", false),
    ("cases:\n  - name: nothing\n    message: hi\n", false),
    ("cases:\n  - name: empty\n    turns: []\n", false),
    (
        "cases:\n  - name: both\n    message: hi\n    expect: { next: end }\n    turns:\n      - message: hi\n",
        false,
    ),
    (
        "cases:\n  - name: typo\n    turns:\n      - mesage: hi\n",
        false,
    ),
    (
        "cases:\n  - name: typo\n    message: hi\n    expect: { nxt: end }\n",
        false,
    ),
    (
        "cases:\n  - name: request\n    upstream: [{ request: 'https://x.example.com' }]\n    expect: { next: end }\n",
        false,
    ),
    (
        "cases:\n  - name: field\n    expect: { fields: { R.a: { a: 1 } } }\n",
        false,
    ),
    (
        "cases:\n  - name: field\n    expect: { fields: { R.a: [[a]] } }\n",
        false,
    ),
    (
        "cases:\n  - name: message\n    expect: { messages: [[a]] }\n",
        false,
    ),
    (
        "cases:\n  - name: attributes\n    attributes: { accountId: 42 }\n    expect: { next: end }\n",
        false,
    ),
    (
        "cases:\n  - name: attributes\n    attributes: { account: a }\n    expect: { next: end }\n",
        false,
    ),
    (
        "cases:\n  - name: attributes\n    turns:\n      - attributes: { engagement: { campaignId: 7 } }\n",
        false,
    ),
    (
        "cases:\n  - name: status\n    upstream: [{ request: GET https://a.example.com/x, status: }]\n    expect: { next: end }\n",
        false,
    ),
    (
        "cases:\n  - name: actions\n    expect: { actions: [escalation-event] }\n",
        false,
    ),
];

#[test]
fn the_test_file_schema_and_the_reader_agree_on_small_test_files() {
    let validator = test_file_validator();
    let mut failures = Vec::new();
    for (text, taken) in SMALL_TEST_FILES {
        let parsed = patchbay_testing::TestFile::parse("t.test.yaml", text);
        if parsed.is_ok() != *taken {
            failures.push(format!(
                "the reader {} it:\n{text}{}",
                if *taken { "refuses" } else { "takes" },
                parsed
                    .err()
                    .map(|error| error.to_string())
                    .unwrap_or_default()
            ));
            continue;
        }
        let value = test_file_json(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        let misfits = misfits(&validator, &value);
        if misfits.is_empty() != *taken {
            failures.push(format!(
                "the reader {} it, the schema {} it:\n{text}{}",
                if *taken { "takes" } else { "refuses" },
                if *taken { "refuses" } else { "takes" },
                misfits.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} disagree:\n\n{}",
        failures.len(),
        SMALL_TEST_FILES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_schemas_name_themselves() {
    let bot = patchbay_config::json_schema();
    assert_eq!(bot["$id"], patchbay_config::BOT_SCHEMA_ID);
    assert_eq!(bot["title"], "patchbay bot file");
    assert_eq!(
        bot["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let test_file = patchbay_testing::json_schema();
    assert_eq!(test_file["$id"], patchbay_testing::TEST_FILE_SCHEMA_ID);
    assert_eq!(
        test_file["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Descriptions come from the doc comments, as text.
    let name = &bot["properties"]["name"]["description"];
    assert_eq!(name, "The bot's name, used in logs and in `serve` URLs.");
    let failure = bot["properties"]["defaultFailureMessage"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        failure.contains("`DEFAULT_FAILURE_MESSAGE`") && !failure.contains('\n'),
        "{failure}"
    );
}
