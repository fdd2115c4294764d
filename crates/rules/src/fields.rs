//! Custom data fields: JSONPath results kept as strings.

use std::collections::HashMap;

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
#[derive(Debug, Default)]
pub struct PathCache {
    compiled: IndexMap<String, Option<JpQuery>>,
}

const PATH_CACHE_LIMIT: usize = 1024;

impl PathCache {
    fn get(&mut self, path: &str) -> Option<&JpQuery> {
        if !self.compiled.contains_key(path) {
            if self.compiled.len() >= PATH_CACHE_LIMIT {
                self.compiled.drain(..PATH_CACHE_LIMIT / 2);
            }
            self.compiled
                .insert(path.to_owned(), compile_json_path(path).ok());
        }
        self.compiled.get(path).and_then(Option::as_ref)
    }
}

/// Evaluates an integration's custom data fields against the (transformed)
/// response document `{"api_RDVN": body}`.
pub fn extract_fields(
    integration: &Integration,
    document: &Value,
    values: &Values<'_>,
    cache: &mut PathCache,
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
                        .and_then(|spliced| {
                            cache
                                .get(&spliced)
                                .map(|query| query_strings(query, document))
                        })
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

fn query_strings(query: &JpQuery, document: &Value) -> Vec<String> {
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
