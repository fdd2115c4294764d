//! The JSON Schema of the bot file, for editors and other tools
//! (docs/config.md, "Editor set-up").
//!
//! The schema accepts every file [`crate::load`] reads into a bot, and
//! refuses what the loader refuses wherever a schema can say so: unknown
//! fields, missing ones, wrong types and values, the fields a `type` allows
//! (interactions, credentials), and simple rules of validation (empty
//! lists, a secret written in the file, a reserved name). What needs the
//! whole bot (names that resolve, unique names, compiled URLs, paths and
//! patterns) is left to `patchbay check`. Descriptions are the model's doc
//! comments. `tests/config/schema.rs` holds the schema to the loader on
//! every example and fixture.
//!
//! Two readings of the loader shape it throughout:
//! - a field the loader reads as absent when it is `null` (every optional
//!   field, and lists and maps written with nothing under them) takes
//!   `null`;
//! - a text field takes any scalar: the loader reads `42` or `true` as the
//!   text `42` or `true` ([`text_takes_scalars`]).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::model::Bot;

/// The `$id` of the bot file's schema: a name that stays, not a place the
/// schema is fetched from (`patchbay schema` prints it).
pub const BOT_SCHEMA_ID: &str = "https://patchbay.dev/schema/bot.json";

/// A template that is one environment reference, `{$env.NAME}`: how a
/// secret must be written. Looser than the loader (which also checks the
/// name), never stricter.
const ENV_REFERENCE: &str = r"^\{\$env\.[A-Za-z0-9_.\[\]-]+\}$";

/// The JSON Schema (draft 2020-12) of the bot file.
pub(crate) fn bot_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Bot)).unwrap_or_default();
    if let Some(root) = schema.as_object_mut() {
        root.insert("$id".to_owned(), json!(BOT_SCHEMA_ID));
        root.insert("title".to_owned(), json!("patchbay bot file"));
    }
    finish_schema(&mut schema);
    schema
}

/// What a generated schema of a patchbay file gets once it is whole:
/// every plain text field takes any scalar, as patchbay reads YAML (a
/// scalar read into a text field is its text: `choices: [1, 2]`,
/// `value: true`), and descriptions read as text rather than rustdoc (a
/// paragraph on one line, no intra-doc links). A part that must stay
/// strict is added after.
pub fn finish_schema(schema: &mut Value) {
    text_takes_scalars(schema);
    tidy_descriptions(schema);
}

/// Widens every plain text schema (`"type": "string"` with no `enum`,
/// `const`, `pattern` or `format`) to take numbers and booleans too.
fn text_takes_scalars(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let plain = !["enum", "const", "pattern", "format"]
                .iter()
                .any(|key| object.contains_key(*key));
            if plain {
                match object.get_mut("type") {
                    Some(kind @ Value::String(_)) if kind == "string" => {
                        *kind = json!(["string", "number", "boolean"]);
                    }
                    Some(Value::Array(kinds)) if kinds.iter().any(|k| k == "string") => {
                        for extra in ["number", "boolean"] {
                            if !kinds.iter().any(|k| k == extra) {
                                kinds.push(json!(extra));
                            }
                        }
                    }
                    _ => {}
                }
            }
            for value in object.values_mut() {
                text_takes_scalars(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(text_takes_scalars),
        _ => {}
    }
}

/// Descriptions as text: the lines of a paragraph joined, and rustdoc's
/// links (`[`X`]`) left as code.
fn tidy_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => *text = plain_text(text),
                    _ => tidy_descriptions(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_descriptions),
        _ => {}
    }
}

fn plain_text(doc: &str) -> String {
    let joined = doc
        .split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(start) = rest.find("[`") {
        let after = &rest[start + 1..];
        match after[1..].find('`').map(|end| end + 2) {
            Some(end) if after[end..].starts_with(']') && !after[end + 1..].starts_with('(') => {
                out.push_str(&rest[..start]);
                out.push_str(&after[..end]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A schema that also takes `null`, for a field the loader reads as absent
/// when it is `null`.
pub(crate) fn or_null(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(values)) = object.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    let has_const = object.contains_key("const");
    match object.get_mut("type") {
        Some(Value::String(kind)) if !has_const => {
            if kind != "null" {
                let kind = kind.clone();
                object.insert("type".to_owned(), json!([kind, "null"]));
            }
            return;
        }
        Some(Value::Array(kinds)) if !has_const => {
            if !kinds.contains(&json!("null")) {
                kinds.push(json!("null"));
            }
            return;
        }
        _ => {}
    }
    let takes_null = |value: &Value| value.get("type") == Some(&json!("null"));
    if let Some(Value::Array(alternatives)) = object.get("anyOf")
        && alternatives.iter().any(takes_null)
    {
        return;
    }
    // A reference, a `const`, a combination: `anyOf` it with `null`, the
    // annotations staying outside.
    let mut annotations = Map::new();
    for key in ["title", "description", "default", "examples"] {
        if let Some(value) = object.remove(key) {
            annotations.insert(key.to_owned(), value);
        }
    }
    let inner = Value::Object(std::mem::take(object));
    object.insert("anyOf".to_owned(), json!([inner, { "type": "null" }]));
    object.extend(annotations);
}

/// A schema that does not take `null` (a required field: the loader reads
/// `null` as the field missing).
pub(crate) fn not_null(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
    if let Some(Value::Array(kinds)) = object.get_mut("type") {
        kinds.retain(|kind| kind != "null");
        if kinds.len() == 1 {
            let only = kinds.remove(0);
            object.insert("type".to_owned(), only);
        }
    }
    if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
        alternatives.retain(|alternative| alternative.get("type") != Some(&json!("null")));
        if alternatives.len() == 1 {
            let only = alternatives.remove(0);
            object.remove("anyOf");
            if let Value::Object(only) = only {
                for (key, value) in only {
                    object.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// Holds when `field` is given and not `null`: the loader's "present".
pub(crate) fn present(field: &str) -> Value {
    json!({ "required": [field], "properties": { field: { "not": { "type": "null" } } } })
}

/// Holds when at most one of `fields` is present.
pub(crate) fn at_most_one(fields: &[&str]) -> Value {
    let mut pairs = Vec::new();
    for (i, a) in fields.iter().enumerate() {
        for b in &fields[i + 1..] {
            pairs.push(json!({ "allOf": [present(a), present(b)] }));
        }
    }
    json!({ "not": { "anyOf": pairs } })
}

/// Adds `rule` to the schema's `allOf`.
pub(crate) fn add_rule(schema: &mut Schema, rule: Value) {
    let object = schema.ensure_object();
    match object.get_mut("allOf") {
        Some(Value::Array(rules)) => rules.push(rule),
        _ => {
            object.insert("allOf".to_owned(), json!([rule]));
        }
    }
}

/// A secret field: text that is one `{$env.NAME}` reference.
pub(crate) fn secret(description: Option<&Value>) -> Value {
    let mut schema = json!({
        "type": "string",
        "pattern": ENV_REFERENCE,
    });
    if let (Some(description), Some(object)) = (description, schema.as_object_mut()) {
        object.insert(
            "description".to_owned(),
            json!(format!(
                "{} Written as {{$env.NAME}}, the value supplied at run time.",
                description.as_str().unwrap_or_default()
            )),
        );
    }
    schema
}

/// One `type` of a record whose fields depend on its `type`.
pub(crate) struct Variant {
    /// The `type` values that choose it.
    pub(crate) types: &'static [&'static str],
    /// Object schemas whose properties (and required ones) it has.
    pub(crate) parts: Vec<Schema>,
    /// More properties, by name.
    pub(crate) properties: Vec<(&'static str, Value)>,
    /// Fields it must have beyond the parts' required ones.
    pub(crate) required: &'static [&'static str],
    /// Fields of the parts it does not have.
    pub(crate) without: &'static [&'static str],
    /// Fields that hold secrets.
    pub(crate) secrets: &'static [&'static str],
    /// Further rules (`allOf`).
    pub(crate) rules: Vec<Value>,
}

impl Variant {
    /// A variant with `parts` and nothing else.
    pub(crate) fn new(types: &'static [&'static str], parts: Vec<Schema>) -> Self {
        Self {
            types,
            parts,
            properties: Vec::new(),
            required: &[],
            without: &[],
            secrets: &[],
            rules: Vec::new(),
        }
    }
}

/// A record read flat and then checked against the fields its `type`
/// allows (`crate::raw`): the `common` part's fields (a derived object
/// schema), a `type` out of the variants' types, and per type exactly that
/// type's fields (`if`/`then`). A field a type requires does not take
/// `null`; every other field does, as the loader reads it as absent.
pub(crate) fn typed_record(
    common: Schema,
    type_description: &str,
    variants: Vec<Variant>,
) -> Schema {
    let common = common.to_value();
    let common_properties = common
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let common_required = names(common.get("required"));
    let all_types: Vec<&str> = variants
        .iter()
        .flat_map(|v| v.types.iter().copied())
        .collect();

    let shape = |mut properties: Map<String, Value>, required: &[String]| {
        for (name, schema) in &mut properties {
            if schema == &json!(true) {
                continue;
            }
            if required.contains(name) {
                not_null(schema);
            } else {
                let mut wrapped = Schema::try_from(schema.clone()).unwrap_or_default();
                or_null(&mut wrapped);
                *schema = wrapped.to_value();
            }
        }
        properties
    };

    let mut top_properties = common_properties.clone();
    top_properties.insert(
        "type".to_owned(),
        json!({ "description": type_description, "enum": all_types }),
    );
    let mut top_required = common_required.clone();
    top_required.push("type".to_owned());

    let mut branches = Vec::new();
    for variant in variants {
        let mut properties = common_properties.clone();
        let mut required = common_required.clone();
        required.push("type".to_owned());
        for part in &variant.parts {
            if let Some(part_properties) = part.get("properties").and_then(Value::as_object) {
                properties.extend(part_properties.clone());
            }
            required.extend(names(part.get("required")));
        }
        for (name, schema) in variant.properties {
            properties.insert(name.to_owned(), schema);
        }
        for name in variant.without {
            properties.remove(*name);
        }
        // The common fields are checked (and described) once, on the
        // record; here they need only be allowed.
        for name in common_properties.keys() {
            if let Some(schema) = properties.get_mut(name) {
                *schema = json!(true);
            }
        }
        required.extend(variant.required.iter().map(|name| (*name).to_owned()));
        let mut seen = std::collections::HashSet::new();
        required.retain(|name| seen.insert(name.clone()));
        for name in variant.secrets {
            let description = properties.get(*name).and_then(|p| p.get("description"));
            let schema = secret(description);
            properties.insert((*name).to_owned(), schema);
        }
        let type_schema = match variant.types {
            [one] => json!({ "const": one }),
            many => json!({ "enum": many }),
        };
        properties.insert("type".to_owned(), type_schema.clone());
        let properties = shape(properties, &required);
        let mut then = json!({
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        if !variant.rules.is_empty() {
            then["allOf"] = Value::Array(variant.rules);
        }
        branches.push(json!({
            "if": { "properties": { "type": type_schema }, "required": ["type"] },
            "then": then,
        }));
    }

    let mut record = Map::new();
    record.insert("type".to_owned(), json!("object"));
    for key in ["title", "description"] {
        if let Some(value) = common.get(key) {
            record.insert(key.to_owned(), value.clone());
        }
    }
    record.insert(
        "properties".to_owned(),
        Value::Object(shape(top_properties, &top_required)),
    );
    record.insert("required".to_owned(), json!(top_required));
    record.insert("allOf".to_owned(), Value::Array(branches));
    Schema::from(record)
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The inline object schema of `T` (its properties and required fields),
/// for a [`Variant`]'s parts.
pub(crate) fn object_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// One value or a list of at least one, as `exact: yes` or
/// `exact: [yes, no]`.
pub(crate) struct OneOrMany<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [one, { "type": "array", "items": one, "minItems": 1 }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_added_and_taken_away() {
        let mut text =
            Schema::try_from(json!({ "type": "string", "description": "d" })).unwrap_or_default();
        or_null(&mut text);
        assert_eq!(
            text.as_value(),
            &json!({ "type": ["string", "null"], "description": "d" })
        );
        let mut reference = Schema::try_from(json!({ "$ref": "#/$defs/X", "description": "d" }))
            .unwrap_or_default();
        or_null(&mut reference);
        assert_eq!(
            reference.as_value(),
            &json!({ "anyOf": [{ "$ref": "#/$defs/X" }, { "type": "null" }], "description": "d" })
        );
        let mut value = reference.to_value();
        not_null(&mut value);
        assert_eq!(value, json!({ "$ref": "#/$defs/X", "description": "d" }));
        let mut choice = json!({ "type": ["string", "null"], "enum": ["a", null] });
        not_null(&mut choice);
        assert_eq!(choice, json!({ "type": "string", "enum": ["a"] }));
    }

    #[test]
    fn descriptions_read_as_text() {
        assert_eq!(
            plain_text(
                "Sent when a call fails; defaults to\n[`DEFAULT`] (see [`Bot::name`]).\n\nMore [text](x) and `[i]`."
            ),
            "Sent when a call fails; defaults to `DEFAULT` (see `Bot::name`).\n\nMore [text](x) and `[i]`."
        );
    }

    #[test]
    fn text_takes_scalars_but_enums_and_patterns_stay() {
        let mut schema = json!({
            "properties": {
                "a": { "type": "string" },
                "b": { "type": ["string", "null"] },
                "c": { "type": "string", "enum": ["x"] },
                "d": { "type": "string", "pattern": "^x$" },
                "e": { "type": "integer" }
            }
        });
        text_takes_scalars(&mut schema);
        assert_eq!(
            schema["properties"],
            json!({
                "a": { "type": ["string", "number", "boolean"] },
                "b": { "type": ["string", "null", "number", "boolean"] },
                "c": { "type": "string", "enum": ["x"] },
                "d": { "type": "string", "pattern": "^x$" },
                "e": { "type": "integer" }
            })
        );
    }
}
