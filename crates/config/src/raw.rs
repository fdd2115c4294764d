//! Flat forms of the type-dependent records, as they appear in files.
//!
//! Serde's internally tagged enums buffer a record before choosing its
//! variant, which loses the source position of every error inside it. So a
//! credential or interaction is first read as one flat record (every field
//! optional, unknown fields rejected with their position), then checked
//! against the fields its `type` allows.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, de};

use crate::model::{
    AccessTokenCredential, ApiKeyCredential, BasicCredential, ClientAuth, Credential,
    CredentialKind, IntegrationInteraction, Interaction, InteractionKind, MutualTlsCredential,
    NextAction, OAuth1Credential, OAuth1SignatureMethod, OAuth2Credential, OAuth2Grant, Rule,
    TextInteraction,
};
use crate::template::Template;

/// Why a flat record does not fit its type.
enum Misfit {
    Missing(&'static str),
    NotAllowed(&'static str, &'static [&'static str]),
}

impl Misfit {
    fn into_error<E: de::Error>(self) -> E {
        match self {
            Self::Missing(field) => E::missing_field(field),
            Self::NotAllowed(field, allowed) => E::unknown_field(field, allowed),
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
    integration: Option<String>,
    pre_process: Option<String>,
    post_process: Option<String>,
    rules: Option<Vec<Rule>>,
}

impl RawInteraction {
    fn into_typed(self) -> Result<Interaction, Misfit> {
        const TEXT_FIELDS: &[&str] = &["name", "type", "next", "text"];
        let present = [
            ("text", self.text.is_some()),
            ("integration", self.integration.is_some()),
            ("preProcess", self.pre_process.is_some()),
            ("postProcess", self.post_process.is_some()),
            ("rules", self.rules.is_some()),
        ];
        let kind = match self.kind {
            InteractionType::Text | InteractionType::Question => {
                only(&present, TEXT_FIELDS)?;
                let text = TextInteraction {
                    text: require(self.text, "text")?,
                };
                if matches!(self.kind, InteractionType::Text) {
                    InteractionKind::Text(text)
                } else {
                    InteractionKind::Question(text)
                }
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
                    rules: self.rules.unwrap_or_default(),
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
