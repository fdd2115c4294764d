//! The platform around a conversation: the attributes a caller sends with
//! a turn (what the product's platform functions read), and the actions
//! scripts ask the platform for (docs/http-api.md, "Attributes" and
//! "Actions").

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_script::{Action, FileData, PlatformData, TransferIntent};
use serde_json::{Map, Value};

/// The most a conversation's attributes may take, as compact JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// The members attributes may have.
const MEMBERS: &[&str] = &[
    "accountId",
    "channel",
    "engagement",
    "customerInfo",
    "personalInfo",
    "metadata",
    "webView",
    "file",
    "maven",
];

/// What the platform knows of a conversation, sent by the caller with a
/// turn (`attributes` of a turn request, `run --attr`, `attributes:` in a
/// test file) and kept in the conversation's state: `accountId`,
/// `channel`, `engagement`, `customerInfo`, `personalInfo`, `metadata`,
/// `webView`, `file`, `maven` (docs/http-api.md, "Attributes"). A turn's
/// attributes replace the state's member by member; a member sent as
/// `null` is dropped.
///
/// What scripts read is prepared when the value is made (once per turn),
/// not when they read it.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    /// The members, checked; `null` only in a turn's attributes (a member
    /// to drop).
    members: Map<String, Value>,
    /// What scripts read, made from `members`.
    platform: Arc<PlatformData>,
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

impl Eq for Attributes {}

/// Attributes that are not what the documentation describes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AttributesError {
    code: &'static str,
    message: String,
}

impl AttributesError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_attributes",
            message: message.into(),
        }
    }

    fn too_large(bytes: usize) -> Self {
        Self {
            code: "attributes_too_large",
            message: format!(
                "the attributes take {bytes} bytes as JSON, more than the {MAX_ATTRIBUTES_BYTES} a conversation may have (a turn's members replace the state's; send a member as null to drop it)"
            ),
        }
    }

    /// A stable name: `invalid_attributes` (an unknown member, a wrong
    /// type) or `attributes_too_large`.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl Attributes {
    /// Reads attributes from their JSON form: an object of the documented
    /// members (each may be `null`, which drops it from the conversation's
    /// attributes when they are merged), at most [`MAX_ATTRIBUTES_BYTES`]
    /// as compact JSON. An unknown member, or a member of the wrong type,
    /// is an `invalid_attributes` error naming it.
    pub fn from_json(json: Value) -> Result<Self, AttributesError> {
        let Value::Object(members) = json else {
            return Err(AttributesError::invalid(format!(
                "attributes must be an object, not {}",
                kind(&json)
            )));
        };
        for (name, value) in &members {
            check(name, value)?;
        }
        let attributes = Self {
            platform: Arc::new(prepare(&members)),
            members,
        };
        attributes.check_size()?;
        Ok(attributes)
    }

    /// Reads `--attr` pairs: `KEY=VALUE`, a dotted key naming a member of
    /// an object (`engagement.campaignId=7`, `customerInfo.customerId=c1`),
    /// each value a string; then as [`Attributes::from_json`].
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AttributesError> {
        let mut root = Map::new();
        for (key, value) in pairs {
            let path: Vec<&str> = key.split('.').collect();
            if path.iter().any(|part| part.is_empty()) {
                return Err(AttributesError::invalid(format!(
                    "`{key}` is not a member's name (names are joined by single dots: engagement.campaignId)"
                )));
            }
            let (last, parents) = path.split_last().unwrap_or((&"", &[]));
            let mut object = &mut root;
            for (depth, part) in parents.iter().enumerate() {
                let entry = object
                    .entry((*part).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(inner) = entry else {
                    return Err(AttributesError::invalid(format!(
                        "`{key}`: `{}` is already given a value",
                        path[..=depth].join(".")
                    )));
                };
                object = inner;
            }
            if object.get(*last).is_some_and(Value::is_object) {
                return Err(AttributesError::invalid(format!(
                    "`{key}` is already given members ({key}.NAME)"
                )));
            }
            object.insert((*last).to_owned(), Value::String(value.to_owned()));
        }
        Self::from_json(Value::Object(root))
    }

    /// The JSON form: the members that are set.
    pub fn to_json(&self) -> Value {
        Value::Object(self.members.clone())
    }

    /// Whether no member is set.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets a turn's attributes over these, member by member: a member of
    /// `turn` replaces this one's (`null` drops it); the others stay. The
    /// result is bounded as one turn's are.
    pub fn merge(&mut self, turn: &Attributes) -> Result<(), AttributesError> {
        if turn.is_empty() {
            return Ok(());
        }
        let mut members = self.members.clone();
        for (name, value) in &turn.members {
            if value.is_null() {
                members.remove(name);
            } else {
                members.insert(name.clone(), value.clone());
            }
        }
        let merged = Self {
            platform: Arc::new(prepare(&members)),
            members,
        };
        merged.check_size()?;
        *self = merged;
        Ok(())
    }

    /// What scripts read (shared, not copied).
    pub fn platform(&self) -> Arc<PlatformData> {
        Arc::clone(&self.platform)
    }

    fn check_size(&self) -> Result<(), AttributesError> {
        // Measured as written, without a copy of the members.
        let bytes = serde_json::to_string(&self.members).map_or(usize::MAX, |text| text.len());
        if bytes > MAX_ATTRIBUTES_BYTES {
            return Err(AttributesError::too_large(bytes));
        }
        Ok(())
    }
}

impl serde::Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Attributes {
    /// As [`Attributes::from_json`]; a member that is `null` is not set.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(deserializer)?;
        let read = Self::from_json(json).map_err(serde::de::Error::custom)?;
        let mut attributes = Self::default();
        attributes.merge(&read).map_err(serde::de::Error::custom)?;
        Ok(attributes)
    }
}

/// The JSON type of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks one member: known, and of its type (`null` drops it).
fn check(name: &str, value: &Value) -> Result<(), AttributesError> {
    if !MEMBERS.contains(&name) {
        return Err(AttributesError::invalid(format!(
            "attributes has no member `{name}` (it has {})",
            MEMBERS.join(", ")
        )));
    }
    if value.is_null() {
        return Ok(());
    }
    let wrong = |expected: &str| {
        Err(AttributesError::invalid(format!(
            "attributes.{name} must be {expected}, not {}",
            kind(value)
        )))
    };
    match name {
        "accountId" | "channel" if !value.is_string() => wrong("a string"),
        "customerInfo" | "personalInfo" | "metadata" if !value.is_object() => wrong("an object"),
        "engagement" | "webView" => {
            let Value::Object(members) = value else {
                return wrong("an object of strings");
            };
            match members.iter().find(|(_, value)| !value.is_string()) {
                Some((member, value)) => Err(AttributesError::invalid(format!(
                    "attributes.{name}.{member} must be a string, not {}",
                    kind(value)
                ))),
                None => Ok(()),
            }
        }
        "file" => {
            let Value::Object(members) = value else {
                return wrong("an object ({caption?, type?})");
            };
            for (member, value) in members {
                if !["caption", "type"].contains(&member.as_str()) {
                    return Err(AttributesError::invalid(format!(
                        "attributes.file has no member `{member}` (it has caption, type)"
                    )));
                }
                if !value.is_string() && !value.is_null() {
                    return Err(AttributesError::invalid(format!(
                        "attributes.file.{member} must be a string, not {}",
                        kind(value)
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What scripts read, made once from checked members.
fn prepare(members: &Map<String, Value>) -> PlatformData {
    let string = |name: &str| members.get(name).and_then(Value::as_str).map(str::to_owned);
    let strings = |name: &str| -> HashMap<String, String> {
        members
            .get(name)
            .and_then(Value::as_object)
            .map(|object| {
                object
                    .iter()
                    .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let object_text = |name: &str| {
        members
            .get(name)
            .filter(|value| value.is_object())
            .map(Value::to_string)
    };
    // The product gives personal info only when it names the person.
    let names_someone = |info: &Value| {
        ["firstname", "lastname", "company"].iter().any(|field| {
            info.get(field)
                .is_some_and(|value| !value.is_null() && value.as_str() != Some(""))
        })
    };
    let personal_info = members
        .get("personalInfo")
        .filter(|info| info.is_object() && names_someone(info))
        .map(Value::to_string);
    let metadata = members
        .get("metadata")
        .and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), value.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let file = members
        .get("file")
        .and_then(Value::as_object)
        .map(|file| FileData {
            caption: file
                .get("caption")
                .and_then(Value::as_str)
                .map(str::to_owned),
            file_type: file.get("type").and_then(Value::as_str).map(str::to_owned),
        });
    PlatformData {
        account_id: string("accountId"),
        channel: string("channel"),
        engagement: strings("engagement"),
        customer_info: object_text("customerInfo"),
        personal_info,
        metadata,
        web_view: strings("webView"),
        web_view_json: object_text("webView"),
        file,
        maven: members
            .get("maven")
            .filter(|value| !value.is_null())
            .map(Value::to_string),
    }
}

/// Actions as JSON, in order: `{"type": "bot-transfer-context",
/// "intentId"?, "intentName"?, "domainName"?, "userMessage"?}` or
/// `{"type": "escalation-event", "userMessage", "escalationType"}`.
pub(crate) struct ActionsForm<'a>(pub(crate) &'a [Action]);

impl serde::Serialize for ActionsForm<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(tag = "type", rename_all = "kebab-case")]
        enum ActionForm<'a> {
            // Members in name order, as they always were: the playground
            // and `run` show them in the order they come.
            #[serde(rename_all = "camelCase")]
            BotTransferContext {
                #[serde(skip_serializing_if = "Option::is_none")]
                domain_name: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                intent_id: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                intent_name: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                user_message: Option<&'a str>,
            },
            #[serde(rename_all = "camelCase")]
            EscalationEvent {
                escalation_type: &'a str,
                user_message: &'a str,
            },
        }
        serializer.collect_seq(self.0.iter().map(|action| match action {
            Action::BotTransferContext(context) => {
                let (intent_id, intent_name, domain_name) = match &context.intent {
                    Some(TransferIntent::Id(id)) => (Some(id.as_str()), None, None),
                    Some(TransferIntent::ByDomain {
                        intent_name,
                        domain_name,
                    }) => (None, Some(intent_name.as_str()), Some(domain_name.as_str())),
                    None => (None, None, None),
                };
                ActionForm::BotTransferContext {
                    intent_id,
                    intent_name,
                    domain_name,
                    user_message: context.user_message.as_deref(),
                }
            }
            Action::EscalationEvent {
                user_message,
                escalation_type,
            } => ActionForm::EscalationEvent {
                user_message,
                escalation_type,
            },
        }))
    }
}

/// Actions as a JSON array, in order ([`crate::Turn`]'s `actions`).
pub fn actions_json(actions: &[Action]) -> Value {
    serde_json::to_value(ActionsForm(actions)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_members_and_wrong_types_are_named() {
        let error = Attributes::from_json(json!({"acountId": "1"})).expect_err("unknown");
        assert_eq!(error.code(), "invalid_attributes");
        assert!(error.to_string().contains("`acountId`"), "{error}");
        let error =
            Attributes::from_json(json!({"engagement": {"campaignId": 7}})).expect_err("number");
        assert!(
            error
                .to_string()
                .contains("attributes.engagement.campaignId"),
            "{error}"
        );
        let error = Attributes::from_json(json!({"file": {"name": "x"}})).expect_err("file");
        assert!(error.to_string().contains("`name`"), "{error}");
        let error = Attributes::from_json(json!(["channel"])).expect_err("array");
        assert!(error.to_string().contains("an array"), "{error}");
        let error = Attributes::from_json(json!({"customerInfo": "c1"})).expect_err("string");
        assert!(
            error
                .to_string()
                .contains("attributes.customerInfo must be an object"),
            "{error}"
        );
    }

    #[test]
    fn attributes_are_bounded_alone_and_merged() {
        let big = "x".repeat(MAX_ATTRIBUTES_BYTES);
        let error =
            Attributes::from_json(json!({"customerInfo": {"note": big}})).expect_err("too large");
        assert_eq!(error.code(), "attributes_too_large");
        let half = "x".repeat(MAX_ATTRIBUTES_BYTES / 2);
        let mut state =
            Attributes::from_json(json!({"customerInfo": {"note": half}})).expect("half");
        let turn = Attributes::from_json(json!({"metadata": {"note": half}})).expect("half");
        let before = state.clone();
        assert_eq!(
            state.merge(&turn).expect_err("merged").code(),
            "attributes_too_large"
        );
        assert_eq!(state, before, "a failed merge changes nothing");
        // Dropping the other member makes room.
        let turn = Attributes::from_json(json!({"customerInfo": null, "metadata": {"n": half}}))
            .expect("half");
        state.merge(&turn).expect("fits");
        assert_eq!(state.to_json()["metadata"]["n"], json!(half));
        assert!(state.to_json().get("customerInfo").is_none());
    }

    #[test]
    fn a_turn_replaces_members_whole() {
        let mut state = Attributes::from_json(json!({
            "channel": "lp_web",
            "engagement": {"campaignId": "7", "engagementId": "9"},
        }))
        .expect("state");
        let turn = Attributes::from_json(json!({"engagement": {"campaignId": "8"}})).expect("turn");
        state.merge(&turn).expect("merge");
        assert_eq!(
            state.to_json(),
            json!({"channel": "lp_web", "engagement": {"campaignId": "8"}})
        );
        let platform = state.platform();
        assert_eq!(platform.channel.as_deref(), Some("lp_web"));
        assert_eq!(platform.engagement.get("engagementId"), None);
    }

    #[test]
    fn pairs_make_nested_members_of_strings() {
        let attributes = Attributes::from_pairs([
            ("channel", "lp_web"),
            ("engagement.campaignId", "7"),
            ("customerInfo.customerId", "c1"),
            ("customerInfo.lastPaymentDate.day", "15"),
        ])
        .expect("pairs");
        assert_eq!(
            attributes.to_json(),
            json!({
                "channel": "lp_web",
                "engagement": {"campaignId": "7"},
                "customerInfo": {"customerId": "c1", "lastPaymentDate": {"day": "15"}},
            })
        );
        for bad in [
            vec![("channel", "x"), ("channel.y", "z")],
            vec![("channel.y", "z"), ("channel", "x")],
            vec![("engagement..campaignId", "7")],
        ] {
            assert!(Attributes::from_pairs(bad.clone()).is_err(), "{bad:?}");
        }
        assert!(Attributes::from_pairs([("channel.y", "z")]).is_err());
        assert!(Attributes::from_pairs([("colour", "blue")]).is_err());
    }

    #[test]
    fn personal_info_is_there_only_when_it_names_someone() {
        let named =
            Attributes::from_json(json!({"personalInfo": {"firstname": "Ann"}})).expect("named");
        assert!(named.platform().personal_info.is_some());
        let anonymous =
            Attributes::from_json(json!({"personalInfo": {"gender": "FEMALE", "lastname": ""}}))
                .expect("anonymous");
        assert_eq!(anonymous.platform().personal_info, None);
    }
}
