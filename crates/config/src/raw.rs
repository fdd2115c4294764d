//! Flat forms of the type-dependent records, as they appear in files.
//!
//! Serde's internally tagged enums buffer a record before choosing its
//! variant, which loses the source position of every error inside it. So a
//! credential or interaction is first read as one flat record (every field
//! optional, unknown fields rejected with their position), then checked
//! against the fields its `type` allows.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, de};

use crate::conversation::{
    AnswerMatch, AnswerRule, Ask, Button, Capture, CaptureSource, CaptureTarget, Card,
    ChoiceDisplay, ChoiceRef, ListStyle, MultipleChoice, NoMatch, Question, Scope,
};
use crate::model::{
    AccessTokenCredential, ApiKeyCredential, ApiResult, BasicCredential, ClientAuth, Condition,
    Credential, CredentialKind, IntegrationInteraction, Interaction, InteractionKind,
    MutualTlsCredential, NextAction, OAuth1Credential, OAuth1SignatureMethod, OAuth2Credential,
    OAuth2Grant, Pattern, Rule, RuleMatch, StarterPattern, TextInteraction,
};
use crate::template::Template;

/// Why a flat record does not fit its type.
enum Misfit {
    Missing(&'static str),
    NotAllowed(&'static str, &'static [&'static str]),
    Invalid(String),
}

impl Misfit {
    fn into_error<E: de::Error>(self) -> E {
        match self {
            Self::Missing(field) => E::missing_field(field),
            Self::NotAllowed(field, allowed) => E::unknown_field(field, allowed),
            Self::Invalid(message) => E::custom(message),
        }
    }
}

fn require<T>(value: Option<T>, field: &'static str) -> Result<T, Misfit> {
    value.ok_or(Misfit::Missing(field))
}

/// Fails on the first field present that `allowed` does not list.
fn only(present: &[(&'static str, bool)], allowed: &'static [&'static str]) -> Result<(), Misfit> {
    match present
        .iter()
        .find(|(field, is_present)| *is_present && !allowed.contains(field))
    {
        Some((field, _)) => Err(Misfit::NotAllowed(field, allowed)),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CredentialType {
    Basic,
    AccessToken,
    #[serde(rename = "oauth2")]
    OAuth2,
    MutualTls,
    ApiKey,
    #[serde(rename = "oauth1")]
    OAuth1,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCredential {
    name: String,
    #[serde(rename = "type")]
    kind: CredentialType,
    username: Option<Template>,
    password: Option<Template>,
    token: Option<Template>,
    token_type: Option<String>,
    grant: Option<OAuth2Grant>,
    client_id: Option<Template>,
    client_secret: Option<Template>,
    scope: Option<String>,
    auth_url: Option<Template>,
    token_url: Option<Template>,
    extra_params: Option<IndexMap<String, Template>>,
    client_auth: Option<ClientAuth>,
    certificate: Option<Template>,
    private_key: Option<Template>,
    pkcs12: Option<Template>,
    trust_certificate: Option<Template>,
    header: Option<String>,
    query_param: Option<String>,
    value: Option<Template>,
    consumer_key: Option<Template>,
    consumer_secret: Option<Template>,
    token_secret: Option<Template>,
    signature_method: Option<OAuth1SignatureMethod>,
    realm: Option<String>,
}

impl RawCredential {
    fn present(&self) -> [(&'static str, bool); 24] {
        [
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("token", self.token.is_some()),
            ("tokenType", self.token_type.is_some()),
            ("grant", self.grant.is_some()),
            ("clientId", self.client_id.is_some()),
            ("clientSecret", self.client_secret.is_some()),
            ("scope", self.scope.is_some()),
            ("authUrl", self.auth_url.is_some()),
            ("tokenUrl", self.token_url.is_some()),
            ("extraParams", self.extra_params.is_some()),
            ("clientAuth", self.client_auth.is_some()),
            ("certificate", self.certificate.is_some()),
            ("privateKey", self.private_key.is_some()),
            ("pkcs12", self.pkcs12.is_some()),
            ("trustCertificate", self.trust_certificate.is_some()),
            ("header", self.header.is_some()),
            ("queryParam", self.query_param.is_some()),
            ("value", self.value.is_some()),
            ("consumerKey", self.consumer_key.is_some()),
            ("consumerSecret", self.consumer_secret.is_some()),
            ("tokenSecret", self.token_secret.is_some()),
            ("signatureMethod", self.signature_method.is_some()),
            ("realm", self.realm.is_some()),
        ]
    }

    fn into_typed(self) -> Result<Credential, Misfit> {
        let present = self.present();
        let kind = match self.kind {
            CredentialType::Basic => {
                only(&present, &["name", "type", "username", "password"])?;
                CredentialKind::Basic(BasicCredential {
                    username: require(self.username, "username")?,
                    password: require(self.password, "password")?,
                })
            }
            CredentialType::AccessToken => {
                only(&present, &["name", "type", "token", "tokenType"])?;
                CredentialKind::AccessToken(AccessTokenCredential {
                    token: require(self.token, "token")?,
                    token_type: self.token_type.unwrap_or_else(|| "Bearer".to_owned()),
                })
            }
            CredentialType::OAuth2 => {
                only(
                    &present,
                    &[
                        "name",
                        "type",
                        "grant",
                        "clientId",
                        "clientSecret",
                        "scope",
                        "authUrl",
                        "tokenUrl",
                        "extraParams",
                        "clientAuth",
                    ],
                )?;
                CredentialKind::OAuth2(OAuth2Credential {
                    grant: require(self.grant, "grant")?,
                    client_id: require(self.client_id, "clientId")?,
                    client_secret: self.client_secret,
                    scope: self.scope,
                    auth_url: self.auth_url,
                    token_url: require(self.token_url, "tokenUrl")?,
                    extra_params: self.extra_params.unwrap_or_default(),
                    client_auth: self.client_auth.unwrap_or_default(),
                })
            }
            CredentialType::MutualTls => {
                only(
                    &present,
                    &[
                        "name",
                        "type",
                        "certificate",
                        "privateKey",
                        "pkcs12",
                        "password",
                        "trustCertificate",
                    ],
                )?;
                CredentialKind::MutualTls(MutualTlsCredential {
                    certificate: self.certificate,
                    private_key: self.private_key,
                    pkcs12: self.pkcs12,
                    password: self.password,
                    trust_certificate: self.trust_certificate,
                })
            }
            CredentialType::ApiKey => {
                only(&present, &["name", "type", "header", "queryParam", "value"])?;
                CredentialKind::ApiKey(ApiKeyCredential {
                    header: self.header,
                    query_param: self.query_param,
                    value: require(self.value, "value")?,
                })
            }
            CredentialType::OAuth1 => {
                only(
                    &present,
                    &[
                        "name",
                        "type",
                        "consumerKey",
                        "consumerSecret",
                        "token",
                        "tokenSecret",
                        "signatureMethod",
                        "realm",
                    ],
                )?;
                CredentialKind::OAuth1(OAuth1Credential {
                    consumer_key: require(self.consumer_key, "consumerKey")?,
                    consumer_secret: require(self.consumer_secret, "consumerSecret")?,
                    token: self.token,
                    token_secret: self.token_secret,
                    signature_method: self.signature_method.unwrap_or_default(),
                    realm: self.realm,
                })
            }
        };
        Ok(Credential {
            name: self.name,
            kind,
        })
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawCredential::deserialize(deserializer)?
            .into_typed()
            .map_err(Misfit::into_error)
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum InteractionType {
    Text,
    Question,
    MultipleChoice,
    Buttons,
    QuickReplies,
    Structured,
    Integration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawInteraction {
    name: String,
    #[serde(rename = "type")]
    kind: InteractionType,
    next: Option<NextAction>,
    text: Option<Template>,
    choices: Option<Vec<String>>,
    display: Option<ChoiceDisplay>,
    list_style: Option<ListStyle>,
    buttons: Option<Vec<Button>>,
    quick_replies: Option<Vec<Button>>,
    cards: Option<Vec<Card>>,
    integration: Option<String>,
    pre_process: Option<String>,
    post_process: Option<String>,
    process_user_response: Option<String>,
    rules: Option<Vec<RawRule>>,
    no_match: Option<NoMatch>,
}

/// A rule of either kind: an integration's (on the call's result) or a
/// question's (on the answer).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    #[serde(rename = "match", default)]
    when: Option<RawMatch>,
    set: Option<Vec<RawCapture>>,
    messages: Option<Vec<Template>>,
    next: Option<NextAction>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMatch {
    api_result: Option<ApiResult>,
    conditions: Option<Vec<Condition>>,
    pattern: Option<OneOrMany<StarterPattern>>,
    regex: Option<Pattern>,
    exact: Option<OneOrMany<String>>,
    options: Option<Vec<ChoiceRef>>,
    payload: Option<OneOrMany<String>>,
    no_match: Option<bool>,
}

/// One value or a list of them. Read without serde's untagged buffering,
/// which would take a YAML `no` or `42` for a boolean or a number and
/// then refuse it as text: each value is read as text, as `choices` are.
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);

        impl<T> Visitor<T> {
            fn one<'de, E: de::Error>(text: String) -> Result<OneOrMany<T>, E>
            where
                T: Deserialize<'de>,
            {
                T::deserialize(de::value::StringDeserializer::<E>::new(text)).map(OneOrMany::One)
            }
        }

        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a text or a list of texts")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Self::one(text.to_owned())
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Self::one(value.to_string())
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Self::one(value.to_string())
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Self::one(value.to_string())
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Self::one(value.to_string())
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(OneOrMany::Many(all))
            }
        }

        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CaptureFrom {
    Answer,
    Choice,
    Payload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCapture {
    variable: Option<String>,
    slot: Option<String>,
    scope: Option<Scope>,
    value: Option<Template>,
    group: Option<String>,
    from: Option<CaptureFrom>,
}

pub(crate) const ANSWER_MATCHES: &str = "pattern, regex, exact, options, payload or noMatch";

impl RawCapture {
    fn into_typed(self) -> Result<Capture, Misfit> {
        let target = match (self.variable, self.slot) {
            (Some(name), None) => CaptureTarget::Variable {
                name,
                scope: self.scope.unwrap_or_default(),
            },
            (None, Some(name)) => {
                if self.scope.is_some() {
                    return Err(Misfit::Invalid(
                        "a slot lives as long as its dialog: `scope` is for variables".to_owned(),
                    ));
                }
                CaptureTarget::Slot(name)
            }
            _ => {
                return Err(Misfit::Invalid(
                    "a capture names one `variable` or one `slot`".to_owned(),
                ));
            }
        };
        let source = match (self.value, self.group, self.from) {
            (None, None, None | Some(CaptureFrom::Answer)) => CaptureSource::Answer,
            (None, None, Some(CaptureFrom::Choice)) => CaptureSource::Choice,
            (None, None, Some(CaptureFrom::Payload)) => CaptureSource::Payload,
            (None, Some(group), None) => CaptureSource::Group(group),
            (Some(value), None, None) => CaptureSource::Value(value),
            _ => {
                return Err(Misfit::Invalid(
                    "a capture takes one of `value`, `group` and `from`".to_owned(),
                ));
            }
        };
        Ok(Capture { target, source })
    }
}

impl RawRule {
    fn into_integration_rule(self) -> Result<Rule, Misfit> {
        if self.set.is_some() {
            return Err(Misfit::Invalid(
                "`set` is for a question's rules; an integration's post-process code sets variables".to_owned(),
            ));
        }
        let when = self.when.unwrap_or_default();
        if let Some(field) = when.answer_match_field() {
            return Err(Misfit::Invalid(format!(
                "`{field}` matches a question's answer; an integration's rule matches `apiResult` and `conditions`"
            )));
        }
        Ok(Rule {
            name: self.name,
            when: RuleMatch {
                api_result: when.api_result,
                conditions: when.conditions.unwrap_or_default(),
            },
            messages: self.messages.unwrap_or_default(),
            next: self.next,
        })
    }

    fn into_answer_rule(self) -> Result<AnswerRule, Misfit> {
        let when = self.when.unwrap_or_default();
        if when.api_result.is_some() {
            return Err(Misfit::Invalid(format!(
                "`apiResult` is for an integration's rules; a question's rule matches the answer ({ANSWER_MATCHES})"
            )));
        }
        let mut kinds = Vec::new();
        if let Some(patterns) = when.pattern {
            kinds.push(AnswerMatch::Pattern(patterns.into_vec()));
        }
        if let Some(regex) = when.regex {
            kinds.push(AnswerMatch::Regex(regex));
        }
        if let Some(values) = when.exact {
            kinds.push(AnswerMatch::Exact(values.into_vec()));
        }
        if let Some(options) = when.options {
            kinds.push(AnswerMatch::Options(options));
        }
        if let Some(payloads) = when.payload {
            kinds.push(AnswerMatch::Payload(payloads.into_vec()));
        }
        match when.no_match {
            Some(true) => kinds.push(AnswerMatch::NoMatch),
            Some(false) => {
                return Err(Misfit::Invalid(
                    "`noMatch: false` matches nothing; leave it out".to_owned(),
                ));
            }
            None => {}
        }
        let empty = match kinds.first() {
            Some(AnswerMatch::Pattern(list)) => list.is_empty(),
            Some(AnswerMatch::Exact(list) | AnswerMatch::Payload(list)) => list.is_empty(),
            Some(AnswerMatch::Options(list)) => list.is_empty(),
            _ => false,
        };
        if empty {
            return Err(Misfit::Invalid(
                "an empty list matches no answer: give at least one value".to_owned(),
            ));
        }
        if kinds.len() != 1 {
            return Err(Misfit::Invalid(format!(
                "a question's rule matches the answer by exactly one of {ANSWER_MATCHES} (`pattern: \"*\"` takes any answer)"
            )));
        }
        let set = self
            .set
            .unwrap_or_default()
            .into_iter()
            .map(RawCapture::into_typed)
            .collect::<Result<_, _>>()?;
        Ok(AnswerRule {
            name: self.name,
            when: kinds.remove(0),
            conditions: when.conditions.unwrap_or_default(),
            set,
            messages: self.messages.unwrap_or_default(),
            next: self.next,
        })
    }
}

impl RawMatch {
    fn answer_match_field(&self) -> Option<&'static str> {
        [
            ("pattern", self.pattern.is_some()),
            ("regex", self.regex.is_some()),
            ("exact", self.exact.is_some()),
            ("options", self.options.is_some()),
            ("payload", self.payload.is_some()),
            ("noMatch", self.no_match.is_some()),
        ]
        .into_iter()
        .find_map(|(field, present)| present.then_some(field))
    }
}

/// The fields every question kind has, then each kind's own.
macro_rules! question_fields {
    ($($own:literal),*) => {
        &[
            "name", "type", "next", "preProcess", "postProcess", "processUserResponse", "rules",
            "noMatch", $($own),*
        ]
    };
}

const QUESTION_FIELDS: &[&str] = question_fields!("text");
const MULTIPLE_CHOICE_FIELDS: &[&str] = question_fields!("text", "choices", "display", "listStyle");
const BUTTONS_FIELDS: &[&str] = question_fields!("text", "buttons");
const QUICK_REPLIES_FIELDS: &[&str] = question_fields!("text", "quickReplies");
const STRUCTURED_FIELDS: &[&str] = question_fields!("cards");

impl RawInteraction {
    fn into_typed(self) -> Result<Interaction, Misfit> {
        let present = [
            ("text", self.text.is_some()),
            ("choices", self.choices.is_some()),
            ("display", self.display.is_some()),
            ("listStyle", self.list_style.is_some()),
            ("buttons", self.buttons.is_some()),
            ("quickReplies", self.quick_replies.is_some()),
            ("cards", self.cards.is_some()),
            ("integration", self.integration.is_some()),
            ("preProcess", self.pre_process.is_some()),
            ("postProcess", self.post_process.is_some()),
            ("processUserResponse", self.process_user_response.is_some()),
            ("rules", self.rules.is_some()),
            ("noMatch", self.no_match.is_some()),
        ];
        let kind = match self.kind {
            InteractionType::Text => {
                only(
                    &present,
                    &["name", "type", "next", "text", "preProcess", "postProcess"],
                )?;
                InteractionKind::Text(TextInteraction {
                    text: require(self.text, "text")?,
                    pre_process: self.pre_process,
                    post_process: self.post_process,
                })
            }
            InteractionType::Integration => {
                only(
                    &present,
                    &[
                        "name",
                        "type",
                        "next",
                        "integration",
                        "preProcess",
                        "postProcess",
                        "rules",
                    ],
                )?;
                InteractionKind::Integration(IntegrationInteraction {
                    integration: require(self.integration, "integration")?,
                    pre_process: self.pre_process,
                    post_process: self.post_process,
                    rules: self
                        .rules
                        .unwrap_or_default()
                        .into_iter()
                        .map(RawRule::into_integration_rule)
                        .collect::<Result<_, _>>()?,
                })
            }
            question => {
                let ask = match question {
                    InteractionType::MultipleChoice => {
                        only(&present, MULTIPLE_CHOICE_FIELDS)?;
                        let choices = require(self.choices, "choices")?;
                        if choices.iter().any(|choice| choice.trim().is_empty()) {
                            return Err(Misfit::Invalid(
                                "a choice is empty: no answer could pick it".to_owned(),
                            ));
                        }
                        Ask::MultipleChoice(MultipleChoice {
                            choices,
                            display: self.display.unwrap_or_default(),
                            list_style: self.list_style.unwrap_or_default(),
                        })
                    }
                    InteractionType::Buttons => {
                        only(&present, BUTTONS_FIELDS)?;
                        Ask::Buttons(require(self.buttons, "buttons")?)
                    }
                    InteractionType::QuickReplies => {
                        only(&present, QUICK_REPLIES_FIELDS)?;
                        Ask::QuickReplies(require(self.quick_replies, "quickReplies")?)
                    }
                    InteractionType::Structured => {
                        only(&present, STRUCTURED_FIELDS)?;
                        Ask::Structured(require(self.cards, "cards")?)
                    }
                    _ => {
                        only(&present, QUESTION_FIELDS)?;
                        Ask::Text
                    }
                };
                let text = match ask {
                    Ask::Structured(_) => None,
                    _ => Some(require(self.text, "text")?),
                };
                InteractionKind::Question(Question {
                    text,
                    ask,
                    pre_process: self.pre_process,
                    post_process: self.post_process,
                    process_user_response: self.process_user_response,
                    rules: self
                        .rules
                        .unwrap_or_default()
                        .into_iter()
                        .map(RawRule::into_answer_rule)
                        .collect::<Result<_, _>>()?,
                    no_match: self.no_match,
                })
            }
        };
        Ok(Interaction {
            name: self.name,
            next: self.next.unwrap_or_default(),
            kind,
        })
    }
}

impl<'de> Deserialize<'de> for Interaction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawInteraction::deserialize(deserializer)?
            .into_typed()
            .map_err(Misfit::into_error)
    }
}
