//! Custom data fields: JSONPath results kept as strings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use indexmap::IndexMap;
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::query::js_path_process;
use patchbay_config::{
    CompiledPath, FieldRef, FieldSelector, Integration, compile_json_path, splice_path_values,
};
use serde_json::Value;

use crate::render::Values;

/// One field's values: one match gives one value, any other number a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// A single match.
    One(String),
    /// No match, or several.
    Many(Vec<String>),
}

impl FieldValue {
    /// Every value, in order.
    pub fn values(&self) -> &[String] {
        match self {
            Self::One(value) => std::slice::from_ref(value),
            Self::Many(values) => values,
        }
    }

    /// The value as text: a list joined by `, `.
    pub fn text(&self) -> String {
        self.values().join(", ")
    }

    /// The field as the bot variables scripts see under `name`: `name`,
    /// `name.count` and `name[N]`.
    pub fn as_variables(&self, name: &str) -> Vec<(String, String)> {
        let mut variables = vec![
            (name.to_owned(), self.text()),
            (format!("{name}.count"), self.values().len().to_string()),
        ];
        for (index, item) in self.values().iter().enumerate() {
            variables.push((format!("{name}[{index}]"), item.clone()));
        }
        variables
    }
}

/// The custom data fields of the integrations that ran, as `RDVN.key`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    values: IndexMap<String, FieldValue>,
    /// Integration name to response data variable, for `{name.key}`.
    aliases: HashMap<String, String>,
    /// Every field as the bot variables it stands for (`RDVN.key`,
    /// `RDVN.key.count`, `RDVN.key[N]`), made when fields are stored, so
    /// that reading one builds nothing.
    variables: HashMap<String, String>,
}

impl Fields {
    /// Stores the fields of one integration, replacing its earlier ones.
    pub fn store(&mut self, integration: &Integration, values: Vec<(String, FieldValue)>) {
        let rdvn = &integration.response_data_variable;
        let prefix = format!("{rdvn}.");
        self.values.retain(|key, _| !key.starts_with(&prefix));
        for (key, value) in values {
            self.values.insert(format!("{rdvn}.{key}"), value);
        }
        self.aliases.insert(integration.name.clone(), rdvn.clone());
        self.index_variables();
    }

    /// Makes [`Fields::variable`]'s map again: later fields win, as
    /// [`Fields::as_variables`] lists them.
    fn index_variables(&mut self) {
        self.variables = self.as_variables().into_iter().collect();
    }

    /// The bot variable `name` when it is a field's form: `RDVN.key` (its
    /// text), `RDVN.key.count` or `RDVN.key[N]`.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// Fields kept outside the process (as `RDVN.key`), read back for the
    /// bot's `integrations`: a key no integration owns is dropped.
    pub fn restore(
        stored: impl IntoIterator<Item = (String, FieldValue)>,
        integrations: &[Integration],
    ) -> Self {
        let mut fields = Self::default();
        for (key, value) in stored {
            let owner = integrations.iter().find(|integration| {
                key.strip_prefix(integration.response_data_variable.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
            });
            if let Some(integration) = owner {
                fields.aliases.insert(
                    integration.name.clone(),
                    integration.response_data_variable.clone(),
                );
                fields.values.insert(key, value);
            }
        }
        fields.index_variables();
        fields
    }

    /// The field `RDVN.key` (or `name.key`), if it was extracted.
    pub fn get(&self, owner: &str, key: &str) -> Option<&FieldValue> {
        let owner = self.aliases.get(owner).map_or(owner, String::as_str);
        self.values.get(&format!("{owner}.{key}"))
    }

    /// The text a field reference renders as: the value, `.count` (0 for a
    /// field that did not match) or the `[N]`th value (empty past the end).
    pub fn text(&self, field: &FieldRef) -> String {
        let value = self.get(&field.owner, &field.key);
        match field.selector {
            FieldSelector::Value => value.map(FieldValue::text).unwrap_or_default(),
            FieldSelector::Count => value.map_or(0, |value| value.values().len()).to_string(),
            FieldSelector::Index(index) => value
                .and_then(|value| value.values().get(index).cloned())
                .unwrap_or_default(),
        }
    }

    /// Every field, as `RDVN.key`, in the order they were stored.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.values.iter().map(|(key, value)| (key.as_str(), value))
    }

    /// How many fields are stored.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no field is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The fields as bot variables, as scripts see them: `RDVN.key`,
    /// `RDVN.key.count` and `RDVN.key[N]`.
    pub fn as_variables(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .flat_map(|(key, value)| value.as_variables(key))
            .collect()
    }
}

/// Paths with template references, compiled once per distinct rendered
/// text. Bounded: past the limit the oldest half is dropped.
///
/// Shared by the turns of a bot: its lock is held only to find or add a
/// compiled path (an [`Arc`]), never while a path is evaluated, so turns
/// reading large responses do not wait for each other.
#[derive(Debug, Default)]
pub struct PathCache {
    compiled: Mutex<IndexMap<String, Option<Arc<JpQuery>>>>,
}

const PATH_CACHE_LIMIT: usize = 1024;

impl PathCache {
    /// The compiled form of `path` (`None` when it is not a valid path),
    /// compiled on first use outside the lock.
    fn get(&self, path: &str) -> Option<Arc<JpQuery>> {
        if let Some(found) = self.entries().get(path) {
            return found.clone();
        }
        let compiled = compile_json_path(path).ok().map(Arc::new);
        let mut entries = self.entries();
        if entries.len() >= PATH_CACHE_LIMIT {
            entries.drain(..PATH_CACHE_LIMIT / 2);
        }
        // A turn that compiled the same path meanwhile put it there first.
        entries.entry(path.to_owned()).or_insert(compiled).clone()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, IndexMap<String, Option<Arc<JpQuery>>>> {
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Evaluates an integration's custom data fields against the (transformed)
/// response document `{"api_RDVN": body}`.
pub fn extract_fields(
    integration: &Integration,
    document: &Value,
    values: &Values<'_>,
    cache: &PathCache,
) -> Vec<(String, FieldValue)> {
    integration
        .custom_data_fields
        .iter()
        .map(|(key, path)| {
            let matches = match path.compiled() {
                CompiledPath::Static(query) => query_strings(query, document),
                // Each value is one member name, never path syntax.
                CompiledPath::Dynamic(template) => {
                    splice_path_values(template, |reference| values.lookup(reference))
                        .and_then(|spliced| cache.get(&spliced))
                        .map(|query| query_strings(&query, document))
                        .unwrap_or_default()
                }
            };
            let value = match <[String; 1]>::try_from(matches) {
                Ok([one]) => FieldValue::One(one),
                Err(many) => FieldValue::Many(many),
            };
            (key.clone(), value)
        })
        .collect()
}

#[cfg(test)]
thread_local! {
    /// Run just before a path is evaluated on this thread: tests see what
    /// is held while a path is evaluated.
    static WHILE_EVALUATING: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        const { std::cell::RefCell::new(None) };
}

fn query_strings(query: &JpQuery, document: &Value) -> Vec<String> {
    #[cfg(test)]
    WHILE_EVALUATING.with_borrow_mut(|hook| {
        if let Some(hook) = hook {
            hook();
        }
    });
    js_path_process(query, document)
        .map(|found| {
            found
                .into_iter()
                .map(|found| as_text(found.val()))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON value as a string: text as it is, numbers and booleans written
/// out, null empty, objects and arrays as JSON text.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use patchbay_config::SystemVariable;
    use serde_json::json;

    use super::*;

    const BOT: &str = r#"name: big
integrations:
  - name: list
    responseDataVariable: LIST
    type: api
    method: GET
    url: https://example.com/list
    customDataFields:
      picked: "{$.api_LIST.items[*].{$botContext.member}}"
"#;

    fn extract(integration: &Integration, document: &Value, cache: &PathCache) -> Vec<String> {
        let variables = HashMap::from([("member".to_owned(), "name".to_owned())]);
        let slots = HashMap::new();
        let fields = Fields::default();
        let values = Values {
            variables: &variables,
            slots: &slots,
            env: &|_: &str| None,
            system: &|_: SystemVariable| None,
            fields: &fields,
        };
        let mut found = extract_fields(integration, document, &values, cache);
        found
            .pop()
            .map(|(_, value)| value.values().to_vec())
            .unwrap_or_default()
    }

    /// While one turn evaluates a templated path (over a response of up to
    /// 5 MiB), another turn of the bot reads by the same cached path: the
    /// cache is held only to find the compiled path. Were it held through
    /// the evaluation, the second turn would wait for the first, which
    /// waits for it here: the first gives up after a while and says so.
    #[test]
    fn a_turn_reads_by_a_cached_path_while_another_evaluates_it() {
        let bot = patchbay_config::load("big.yaml", BOT)
            .map(|loaded| loaded.bot)
            .unwrap_or_else(|report| {
                panic!("{}", report.render(patchbay_config::RenderStyle::Plain))
            });
        let integration = &bot.integrations[0];
        let large = json!({ "api_LIST": { "items": [{ "name": "a" }, { "name": "b" }] } });
        let small = json!({ "api_LIST": { "items": [{ "name": "one" }] } });
        let cache = PathCache::default();
        // Compiled once, before the two turns.
        assert_eq!(extract(integration, &small, &cache), ["one"]);
        let (ask, asked) = mpsc::channel::<()>();
        let (answer, answered) = mpsc::channel::<Vec<String>>();
        std::thread::scope(|scope| {
            let first = scope.spawn(|| {
                let (ask, answered) = (ask, answered);
                let (report, outcome) = mpsc::channel();
                WHILE_EVALUATING.with_borrow_mut(|hook| {
                    *hook = Some(Box::new(move || {
                        let _ = ask.send(());
                        let _ = report.send(answered.recv_timeout(Duration::from_secs(5)));
                    }));
                });
                let found = extract(integration, &large, &cache);
                WHILE_EVALUATING.with_borrow_mut(|hook| *hook = None);
                (found, outcome.recv().expect("the hook ran"))
            });
            asked.recv().expect("the first turn evaluates");
            let _ = answer.send(extract(integration, &small, &cache));
            let (found, second) = first.join().expect("the first turn");
            assert_eq!(found, ["a", "b"]);
            assert_eq!(
                second.expect(
                    "the second turn waited for the first: the cache was held while a path was evaluated"
                ),
                ["one"]
            );
        });
    }
}
