//! The bot file as typed values (spec sections 1 and 2).
//!
//! Field names follow the product (`responseDataVariable`, `customDataFields`,
//! `transformScript`), spelt in camelCase in both YAML and JSON. Unknown
//! fields are rejected everywhere.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::field_path::FieldPath;
use crate::template::{FieldName, Template};

/// The message a bot sends when a call fails and no rule handles the failure.
pub const DEFAULT_FAILURE_MESSAGE: &str = "Sorry, I could not find anything for that.";

/// One bot: its environment, variables, credentials, integrations and dialogs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bot {
    /// The bot's name, used in logs and in `serve` URLs.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Sent when a call fails and no rule matches the failure; defaults to
    /// "Sorry, I could not find anything for that."
    /// ([`DEFAULT_FAILURE_MESSAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_failure_message: Option<Template>,
    /// Which private or loopback destinations calls may reach.
    #[serde(default, skip_serializing_if = "Network::is_default")]
    pub network: Network,
    /// HTTP limits for every integration of the bot.
    #[serde(default, skip_serializing_if = "HttpSettings::is_unset")]
    pub http: HttpSettings,
    /// Environment variables of the bot: a default value, or `null` for one
    /// that the host must supply at run time (secrets).
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub env: IndexMap<String, Option<String>>,
    /// Bot variables and their initial values.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub variables: IndexMap<String, String>,
    /// Named secret material that integrations refer to.
    #[schemars(with = "Vec<CredentialForm>", transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credentials: Vec<Credential>,
    /// Named, reusable HTTP calls.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub integrations: Vec<Integration>,
    /// Ordered lists of interactions, entered by their starters.
    #[schemars(transform = one_fallback, transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dialogs: Vec<Dialog>,
    /// Whether an answer to a question that fits another dialog's starter
    /// (and none of the question's rules) switches to that dialog; on
    /// unless set to `false` here or on the dialog.
    #[schemars(extend("default" = true))]
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub context_switching: bool,
}

impl Bot {
    /// The message sent when a call fails and no failure rule matches.
    pub fn failure_message(&self) -> &str {
        self.default_failure_message
            .as_ref()
            .map_or(DEFAULT_FAILURE_MESSAGE, Template::as_str)
    }

    /// The environment variables whose values are secrets: each a
    /// credential's secret field names as its whole value (`{$env.NAME}`).
    pub fn secret_env_names(&self) -> impl Iterator<Item = &str> {
        self.credentials.iter().flat_map(|credential| {
            credential
                .kind
                .secrets()
                .into_iter()
                .filter_map(|(_, secret)| secret.as_env_reference())
        })
    }

    /// Every interaction of every dialog, with its dialog.
    pub fn interactions(&self) -> impl Iterator<Item = (&Dialog, &Interaction)> {
        self.dialogs.iter().flat_map(|dialog| {
            dialog
                .interactions
                .iter()
                .map(move |interaction| (dialog, interaction))
        })
    }
}

/// Outbound network policy (spec section 6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Hosts, addresses or CIDR ranges that calls may reach even though they
    /// are private, loopback or otherwise refused by default.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(default, deserialize_with = "nullable")]
    pub allow: Vec<String>,
    /// Rate limits per destination host (as written in URLs), shared by
    /// every integration, and with a shared store every replica, that calls
    /// that host.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub rate_limits: IndexMap<String, RateLimit>,
}

impl Network {
    fn is_default(&self) -> bool {
        self.allow.is_empty() && self.rate_limits.is_empty()
    }
}

/// An outbound rate limit: `calls` per `periodMs`, spaced evenly, with up
/// to `burst` calls at once after a quiet time. A call that would have to
/// wait past its deadline fails (`rate-limited`) without waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Calls allowed per period.
    #[schemars(range(min = 1))]
    pub calls: u32,
    /// The period, in milliseconds; default 1000.
    #[schemars(range(min = 1), extend("default" = 1000))]
    #[serde(default = "one_second", skip_serializing_if = "is_one_second")]
    pub period_ms: u64,
    /// Calls that may go at once after a quiet time; default 1.
    #[schemars(range(min = 1), extend("default" = 1))]
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub burst: u32,
}

fn one_second() -> u64 {
    1000
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_one_second(value: &u64) -> bool {
    *value == 1000
}

fn one() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_one(value: &u32) -> bool {
    *value == 1
}

/// HTTP limits of calls. Each unset field falls back to the level above:
/// integration, then bot, then patchbay's defaults (docs/transport.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// One deadline for the whole call, retries included, in milliseconds.
    #[schemars(range(min = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The longest a new connection may take, in milliseconds.
    #[schemars(range(min = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Retries where retrying is safe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The largest response body accepted, before and after decompression.
    #[schemars(range(min = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Redirects followed; 0 returns a redirect as the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
}

impl HttpSettings {
    /// These settings, with unset fields taken from `fallback`.
    pub fn or(&self, fallback: &Self) -> Self {
        Self {
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            connect_timeout_ms: self.connect_timeout_ms.or(fallback.connect_timeout_ms),
            retries: self.retries.or(fallback.retries),
            max_response_bytes: self.max_response_bytes.or(fallback.max_response_bytes),
            max_redirects: self.max_redirects.or(fallback.max_redirects),
        }
    }

    fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// A named HTTP call (an integration of type `api`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Integration {
    /// Unique name of the integration.
    pub name: String,
    /// The response data variable name (RDVN): an identifier, unique.
    #[schemars(extend("pattern" = "^[A-Za-z_][A-Za-z0-9_]*$", "type" = ["string", "number", "boolean"]))]
    pub response_data_variable: String,
    /// Always `api`.
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    /// The HTTP method.
    pub method: Method,
    /// The URL template.
    pub url: Template,
    /// The name of the credential applied to the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The hosts this integration may call when a conversation's value
    /// chooses the URL's host (`https://{$botContext.host}/...`): host
    /// names or addresses, or `*.example.com` for any name under
    /// `example.com`, in any case. A call to any other host is refused;
    /// without this list such a URL is refused at load. Not used when the
    /// URL template fixes the host.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_hosts: Vec<String>,
    /// HTTP limits of this integration; unset fields come from the bot's.
    #[serde(default, skip_serializing_if = "HttpSettings::is_unset")]
    pub http: HttpSettings,
    /// A rate limit on this integration's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Whether the default `Accept` and `Content-Type` headers are sent.
    #[schemars(extend("default" = true))]
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub default_headers: bool,
    /// Request headers, in order; these win over the default headers.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub headers: IndexMap<String, Template>,
    /// Query parameters, in order, appended to the URL's query string.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub params: IndexMap<String, Template>,
    /// The request body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    /// JavaScript run on a successful response before fields are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_script: Option<String>,
    /// Named JSONPath extractions from the (transformed) response.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub custom_data_fields: IndexMap<String, FieldPath>,
}

impl Integration {
    /// Whether `host` (as `url::Url::host_str` gives it: lower case, an
    /// IPv4 address in dotted decimal) is one of the integration's
    /// `allowedHosts`.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.trim_end_matches('.').to_ascii_lowercase();
            match allowed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .and_then(|head| head.strip_suffix('.'))
                    .is_some_and(|name| !name.is_empty()),
                None => host == allowed,
            }
        })
    }
}

/// Reads an absent or `null` collection as empty, so that `headers:` with
/// nothing under it means "no headers".
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_yes(value: &bool) -> bool {
    *value
}

/// The integration types; the product's `api` is the only one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationType {
    /// An HTTP API call.
    Api,
}

/// The HTTP methods an integration may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    /// The method's name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
        }
    }
}

/// Named, typed secret material.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// Unique name of the credential.
    pub name: String,
    /// The credential's type and its fields.
    #[serde(flatten)]
    #[schemars(skip)]
    pub kind: CredentialKind,
}

/// The credential types of spec section 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CredentialKind {
    /// HTTP Basic (RFC 7617).
    Basic(BasicCredential),
    /// `Authorization: <tokenType> <token>`.
    AccessToken(AccessTokenCredential),
    /// An OAuth 2 access token fetched and refreshed by the engine.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Credential),
    /// A client certificate presented on the TLS connection.
    MutualTls(MutualTlsCredential),
    /// A key sent in a header (or, discouraged, a query parameter).
    ApiKey(ApiKeyCredential),
    /// OAuth 1 request signing (RFC 5849).
    #[serde(rename = "oauth1")]
    OAuth1(OAuth1Credential),
}

impl CredentialKind {
    /// The type's name as written in bot files.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Basic(_) => "basic",
            Self::AccessToken(_) => "access-token",
            Self::OAuth2(_) => "oauth2",
            Self::MutualTls(_) => "mutual-tls",
            Self::ApiKey(_) => "api-key",
            Self::OAuth1(_) => "oauth1",
        }
    }

    /// The fields that hold secrets, by their names in the bot file.
    pub fn secrets(&self) -> Vec<(&'static str, &Template)> {
        let fields: Vec<(&'static str, Option<&Template>)> = match self {
            Self::Basic(basic) => vec![("password", Some(&basic.password))],
            Self::AccessToken(token) => vec![("token", Some(&token.token))],
            Self::OAuth2(oauth) => vec![("clientSecret", oauth.client_secret.as_ref())],
            Self::MutualTls(tls) => vec![
                ("privateKey", tls.private_key.as_ref()),
                ("pkcs12", tls.pkcs12.as_ref()),
                ("password", tls.password.as_ref()),
            ],
            Self::ApiKey(key) => vec![("value", Some(&key.value))],
            Self::OAuth1(oauth) => vec![
                ("consumerSecret", Some(&oauth.consumer_secret)),
                ("tokenSecret", oauth.token_secret.as_ref()),
            ],
        };
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect()
    }
}

/// `basic` credential fields.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicCredential {
    /// The user name.
    pub username: Template,
    /// The password (a secret: write it as `{$env.NAME}`).
    pub password: Template,
}

/// `access-token` credential fields.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenCredential {
    /// The token (a secret).
    pub token: Template,
    /// Free text put before the token; `Bearer` unless given.
    #[schemars(default = "bearer")]
    pub token_type: String,
}

/// `oauth2` credential fields.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Credential {
    /// The grant used to obtain tokens.
    pub grant: OAuth2Grant,
    /// The client id.
    pub client_id: Template,
    /// The client secret (a secret); absent for public clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Template>,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The authorization endpoint (authorization-code grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<Template>,
    /// The token endpoint, also used to refresh tokens.
    pub token_url: Template,
    /// Extra form fields sent to the token endpoint (e.g. `audience`).
    #[schemars(default)]
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub extra_params: IndexMap<String, Template>,
    /// Where the client id and secret go in token requests.
    #[schemars(default)]
    pub client_auth: ClientAuth,
}

/// The OAuth 2 grants patchbay runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OAuth2Grant {
    /// RFC 6749 section 4.4.
    ClientCredentials,
    /// RFC 6749 section 4.1, with PKCE and refresh tokens.
    AuthorizationCode,
}

/// Where OAuth 2 client authentication goes (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// HTTP Basic with form-encoded id and secret (the default).
    #[default]
    Header,
    /// `client_id` and `client_secret` form fields.
    Body,
}

/// `mutual-tls` credential fields: PEM certificate and key, or PKCS#12.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutualTlsCredential {
    /// The client certificate chain, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Template>,
    /// The client private key, PEM (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Template>,
    /// A PKCS#12 bundle, base64 (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Template>,
    /// The PKCS#12 password (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Template>,
    /// A CA certificate, PEM, trusted for this credential's calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_certificate: Option<Template>,
}

/// `api-key` credential fields.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCredential {
    /// The header that carries the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The query parameter that carries the key (`check` warns: URLs get logged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_param: Option<String>,
    /// The key (a secret).
    pub value: Template,
}

/// `oauth1` credential fields.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth1Credential {
    /// The consumer key.
    pub consumer_key: Template,
    /// The consumer secret (a secret).
    pub consumer_secret: Template,
    /// The access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Template>,
    /// The token secret (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<Template>,
    /// The signature method.
    #[schemars(default)]
    pub signature_method: OAuth1SignatureMethod,
    /// The `realm` of the `Authorization` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

/// OAuth 1 signature methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OAuth1SignatureMethod {
    /// HMAC-SHA1 (the default).
    #[default]
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    /// HMAC-SHA256.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

/// An ordered list of interactions, entered by a matching starter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dialog {
    /// Unique name of the dialog.
    pub name: String,
    /// Patterns a user message is matched against to enter the dialog.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub starters: Vec<StarterPattern>,
    /// The dialog's type: `regular` (the default) or `fallback`, the dialog
    /// that runs when no starter matches a user's message.
    #[schemars(extend("default" = "regular"))]
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "DialogType::is_regular"
    )]
    pub dialog_type: DialogType,
    /// The dialog's interactions, in order.
    #[schemars(with = "Vec<InteractionForm>", length(min = 1))]
    pub interactions: Vec<Interaction>,
    /// The dialog's slots: values its questions' rules capture, kept while
    /// the dialog runs and cleared when it ends.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub slots: Vec<String>,
    /// Whether answers to this dialog's questions may switch to another
    /// dialog; the bot's `contextSwitching` unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switching: Option<bool>,
}

impl Dialog {
    /// Whether answers to this dialog's questions may switch dialogs.
    pub fn switches_context(&self, bot: &Bot) -> bool {
        self.context_switching.unwrap_or(bot.context_switching)
    }
}

/// The product's dialog types that patchbay has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DialogType {
    /// Entered by its starters (or a next action, or a trigger).
    #[default]
    Regular,
    /// Runs when no dialog starter matches the user's message; one a bot.
    Fallback,
}

impl DialogType {
    /// Whether this is the default, `regular`.
    pub fn is_regular(&self) -> bool {
        *self == Self::Regular
    }
}

/// One step of a dialog.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    /// Unique name in the whole bot.
    #[schemars(transform = not_reserved)]
    pub name: String,
    /// Where to go afterwards; the following interaction unless given.
    #[schemars(default, extend("default" = "next"))]
    #[serde(skip_serializing_if = "NextAction::is_next")]
    pub next: NextAction,
    /// The interaction's type and its fields.
    #[serde(flatten)]
    #[schemars(skip)]
    pub kind: InteractionKind,
}

/// The interaction types.
#[derive(Clone, Debug, PartialEq)]
pub enum InteractionKind {
    /// Sends its text.
    Text(TextInteraction),
    /// Sends a question (text, multiple choice, buttons, quick replies or
    /// cards) and waits for the answer, which its rules handle.
    Question(crate::Question),
    /// Runs an integration between pre- and post-process code, then rules.
    Integration(IntegrationInteraction),
}

impl InteractionKind {
    /// The interaction's code: each field (`preProcess`, `postProcess`,
    /// `processUserResponse`) it has, with its source.
    pub fn scripts(&self) -> Vec<(&'static str, &str)> {
        let scripts = match self {
            Self::Text(text) => vec![
                ("preProcess", &text.pre_process),
                ("postProcess", &text.post_process),
            ],
            Self::Question(question) => vec![
                ("preProcess", &question.pre_process),
                ("postProcess", &question.post_process),
                ("processUserResponse", &question.process_user_response),
            ],
            Self::Integration(call) => vec![
                ("preProcess", &call.pre_process),
                ("postProcess", &call.post_process),
            ],
        };
        scripts
            .into_iter()
            .filter_map(|(field, script)| Some((field, script.as_deref()?)))
            .collect()
    }

    /// The `type` the bot file gives it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Integration(_) => "integration",
            Self::Question(question) => match question.ask {
                crate::Ask::Text => "question",
                crate::Ask::MultipleChoice(_) => "multiple-choice",
                crate::Ask::Buttons(_) => "buttons",
                crate::Ask::QuickReplies(_) => "quick-replies",
                crate::Ask::Structured(_) => "structured",
            },
        }
    }
}

/// Written as the bot file has it: `type` and the type's own fields.
impl Serialize for InteractionKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Typed<'a, T> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            fields: &'a T,
        }
        let kind = self.type_name();
        match self {
            Self::Text(fields) => Typed { kind, fields }.serialize(serializer),
            Self::Question(fields) => Typed { kind, fields }.serialize(serializer),
            Self::Integration(fields) => Typed { kind, fields }.serialize(serializer),
        }
    }
}

/// An interaction as the bot file has it (read flat by `crate::raw`, then
/// checked against its `type`): the schema of [`Dialog::interactions`].
struct InteractionForm;

impl JsonSchema for InteractionForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Interaction".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        use crate::schema::{Variant, object_of};
        let button = generator.subschema_for::<crate::Button>();
        let card = generator.subschema_for::<crate::Card>();
        let list = |items: &schemars::Schema, description: &str| {
            serde_json::json!({
                "type": "array",
                "items": items,
                "minItems": 1,
                "description": description,
            })
        };
        let mut cards = list(
            &card,
            "The cards (the product's tiles), in order: one to 10.",
        );
        cards["maxItems"] = serde_json::json!(10);
        let variants = vec![
            Variant::new(&["text"], vec![object_of::<TextInteraction>(generator)]),
            Variant::new(
                &["integration"],
                vec![object_of::<IntegrationInteraction>(generator)],
            ),
            Variant {
                required: &["text"],
                ..Variant::new(&["question"], vec![object_of::<crate::Question>(generator)])
            },
            Variant {
                required: &["text"],
                ..Variant::new(
                    &["multiple-choice"],
                    vec![
                        object_of::<crate::Question>(generator),
                        object_of::<crate::MultipleChoice>(generator),
                    ],
                )
            },
            Variant {
                required: &["text", "buttons"],
                properties: vec![(
                    "buttons",
                    list(&button, "The buttons, in order (a button question)."),
                )],
                ..Variant::new(&["buttons"], vec![object_of::<crate::Question>(generator)])
            },
            Variant {
                required: &["text", "quickReplies"],
                properties: vec![(
                    "quickReplies",
                    list(
                        &button,
                        "The quick replies, in order (a quick reply question).",
                    ),
                )],
                ..Variant::new(
                    &["quick-replies"],
                    vec![object_of::<crate::Question>(generator)],
                )
            },
            Variant {
                required: &["cards"],
                without: &["text"],
                properties: vec![("cards", cards)],
                ..Variant::new(
                    &["structured"],
                    vec![object_of::<crate::Question>(generator)],
                )
            },
        ];
        crate::schema::typed_record(
            Interaction::json_schema(generator),
            "The interaction's type, which sets the fields it has: `text`, `question`, `multiple-choice`, `buttons`, `quick-replies`, `structured` (questions) or `integration`.",
            variants,
        )
    }
}

/// A credential as the bot file has it (read flat by `crate::raw`, then
/// checked against its `type`): the schema of [`Bot::credentials`].
struct CredentialForm;

impl JsonSchema for CredentialForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Credential".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        use serde_json::json;

        use crate::schema::{Variant, at_most_one, object_of, present};
        let if_then = |field: &str, value: &str, then: serde_json::Value| {
            json!({
                "if": { "properties": { field: { "const": value } }, "required": [field] },
                "then": then,
            })
        };
        let variants = vec![
            Variant {
                secrets: &["password"],
                ..Variant::new(&["basic"], vec![object_of::<BasicCredential>(generator)])
            },
            Variant {
                secrets: &["token"],
                ..Variant::new(
                    &["access-token"],
                    vec![object_of::<AccessTokenCredential>(generator)],
                )
            },
            Variant {
                secrets: &["clientSecret"],
                rules: vec![
                    if_then("grant", "authorization-code", present("authUrl")),
                    if_then("grant", "client-credentials", present("clientSecret")),
                ],
                ..Variant::new(&["oauth2"], vec![object_of::<OAuth2Credential>(generator)])
            },
            Variant {
                secrets: &["privateKey", "pkcs12", "password"],
                rules: vec![json!({
                    "anyOf": [
                        {
                            "allOf": [present("certificate"), present("privateKey")],
                            "not": { "anyOf": [present("pkcs12"), present("password")] }
                        },
                        {
                            "allOf": [present("pkcs12")],
                            "not": { "anyOf": [present("certificate"), present("privateKey")] }
                        }
                    ]
                })],
                ..Variant::new(
                    &["mutual-tls"],
                    vec![object_of::<MutualTlsCredential>(generator)],
                )
            },
            Variant {
                secrets: &["value"],
                rules: vec![
                    json!({ "anyOf": [present("header"), present("queryParam")] }),
                    at_most_one(&["header", "queryParam"]),
                ],
                ..Variant::new(&["api-key"], vec![object_of::<ApiKeyCredential>(generator)])
            },
            Variant {
                secrets: &["consumerSecret", "tokenSecret"],
                ..Variant::new(&["oauth1"], vec![object_of::<OAuth1Credential>(generator)])
            },
        ];
        crate::schema::typed_record(
            Credential::json_schema(generator),
            "The credential's type, which sets the fields it has: `basic`, `access-token`, `oauth2`, `mutual-tls`, `api-key` or `oauth1`.",
            variants,
        )
    }
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// An interaction's name is not a next action's word.
fn not_reserved(schema: &mut schemars::Schema) {
    schema.insert(
        "not".to_owned(),
        serde_json::json!({
            "anyOf": [{ "enum": NextAction::KEYWORDS }, { "pattern": "^dialog:" }]
        }),
    );
}

/// A bot has one fallback dialog at most.
fn one_fallback(schema: &mut schemars::Schema) {
    schema.insert(
        "contains".to_owned(),
        serde_json::json!({ "properties": { "type": { "const": "fallback" } }, "required": ["type"] }),
    );
    schema.insert("minContains".to_owned(), serde_json::json!(0));
    schema.insert("maxContains".to_owned(), serde_json::json!(1));
}

/// A condition tests one variable or field, with the operand its `op`
/// takes.
fn condition_rules(schema: &mut schemars::Schema) {
    use serde_json::json;

    use crate::schema::{add_rule, present};
    let when_op = |ops: &[&str], then: serde_json::Value| {
        json!({
            "if": { "properties": { "op": { "enum": ops } }, "required": ["op"] },
            "then": then,
        })
    };
    add_rule(
        schema,
        json!({ "oneOf": [present("variable"), present("field")] }),
    );
    add_rule(
        schema,
        when_op(
            &["matches"],
            json!({ "allOf": [present("pattern"), { "not": present("value") }] }),
        ),
    );
    add_rule(
        schema,
        when_op(
            &["empty", "not-empty"],
            json!({ "not": { "anyOf": [present("value"), present("pattern")] } }),
        ),
    );
    add_rule(
        schema,
        when_op(
            &[
                "equals",
                "not-equals",
                "contains",
                "greater-than",
                "at-least",
                "less-than",
                "at-most",
            ],
            json!({ "allOf": [present("value"), { "not": present("pattern") }] }),
        ),
    );
}

/// Fields of a `text` interaction.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextInteraction {
    /// The message template.
    pub text: Template,
    /// JavaScript run before the text is prepared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_process: Option<String>,
    /// JavaScript run after the text is prepared, before it is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_process: Option<String>,
}

/// Fields of an `integration` interaction.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationInteraction {
    /// The integration's name.
    pub integration: String,
    /// JavaScript run before the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_process: Option<String>,
    /// JavaScript run after the call and its custom data fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_process: Option<String>,
    /// Rules tried in order; the first whose match holds wins.
    #[schemars(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// A rule of an integration interaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// A name for traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the rule applies.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(rename = "match", default, deserialize_with = "nullable")]
    pub when: RuleMatch,
    /// Messages sent when the rule wins.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub messages: Vec<Template>,
    /// Where to go when the rule wins; the interaction's `next` unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextAction>,
}

/// A rule's match: the call's result and conditions, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMatch {
    /// `success` or `failure` of the call; either when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_result: Option<ApiResult>,
    /// Conditions on bot variables and fields.
    #[schemars(transform = crate::schema::or_null)]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
}

/// The outcome of a call as rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiResult {
    /// Status 200 or 201.
    Success,
    /// Any other status, or a transport error.
    Failure,
}

/// A condition on one bot variable or custom data field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = condition_rules)]
pub struct Condition {
    /// The bot variable tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// The custom data field tested, as `RDVN.key` (or `RDVN.key.count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldName>,
    /// The comparison.
    pub op: ConditionOp,
    /// The operand of comparisons other than `matches`, `empty`, `not-empty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Template>,
    /// The regular expression of `matches`, compiled at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
}

/// Comparisons a condition can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionOp {
    /// Equal text.
    Equals,
    /// Different text.
    NotEquals,
    /// The value contains the operand.
    Contains,
    /// The value matches `pattern`.
    Matches,
    /// Numerically greater than the operand.
    GreaterThan,
    /// Numerically at least the operand.
    AtLeast,
    /// Numerically less than the operand.
    LessThan,
    /// Numerically at most the operand.
    AtMost,
    /// Unset or empty.
    Empty,
    /// Set and not empty.
    NotEmpty,
}

impl ConditionOp {
    /// Whether the comparison takes a `value` operand.
    pub fn takes_value(self) -> bool {
        !matches!(self, Self::Matches | Self::Empty | Self::NotEmpty)
    }
}

/// A regular expression compiled when the bot loads.
#[derive(Clone, Debug)]
pub struct Pattern(regex::Regex);

/// Compiled patterns are capped so that a bot file cannot make the loader
/// build a huge automaton.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Pattern {
    /// Compiles `source` with the size limit patchbay applies to bot files.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        crate::count_compilation("regex");
        regex::RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Self)
    }

    /// The compiled expression.
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::new(&source).map_err(|error| {
            de::Error::custom(format_args!(
                "invalid regular expression: {}",
                error
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
            ))
        })
    }
}

impl JsonSchema for Pattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Pattern".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A regular expression (Rust's regex syntax), compiled when the bot loads."
        })
    }
}

/// A dialog starter: a pattern (crate::pattern: the whole message must fit,
/// `*` matches any text, `(a|b|)` are alternates, case and surrounding
/// punctuation ignored), compiled when the bot loads.
#[derive(Clone, Debug)]
pub struct StarterPattern(crate::CompiledPattern);

impl StarterPattern {
    /// Compiles a starter.
    pub fn new(source: &str) -> Result<Self, crate::PatternError> {
        crate::CompiledPattern::new(source).map(Self)
    }

    /// Whether a user message matches this starter.
    pub fn matches(&self, message: &str) -> bool {
        self.0.matches(message)
    }

    /// The starter as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for StarterPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for StarterPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StarterPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::new(&source)
            .map_err(|error| de::Error::custom(format_args!("invalid pattern: {error}")))
    }
}

impl JsonSchema for StarterPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StarterPattern".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A pattern the whole message must fit: * matches any text, (a|b|) are alternates; case and surrounding punctuation are ignored."
        })
    }
}

/// Where the conversation goes after an interaction or rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NextAction {
    /// `next`: the following interaction of the dialog.
    #[default]
    Next,
    /// `end`: stop and wait for the user.
    End,
    /// `close-dialog`.
    CloseDialog,
    /// `close-conversation`.
    CloseConversation,
    /// `dialog:NAME`: the first interaction of a dialog.
    Dialog(String),
    /// The interaction of that name.
    Interaction(String),
}

impl NextAction {
    /// The words that name an action rather than an interaction.
    pub const KEYWORDS: &'static [&'static str] =
        &["next", "end", "close-dialog", "close-conversation"];

    fn parse(text: &str) -> Self {
        match text {
            "next" => Self::Next,
            "end" => Self::End,
            "close-dialog" => Self::CloseDialog,
            "close-conversation" => Self::CloseConversation,
            other => match other.strip_prefix("dialog:") {
                Some(dialog) => Self::Dialog(dialog.trim().to_owned()),
                None => Self::Interaction(other.to_owned()),
            },
        }
    }

    fn is_next(&self) -> bool {
        *self == Self::Next
    }
}

impl fmt::Display for NextAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Next => f.write_str("next"),
            Self::End => f.write_str("end"),
            Self::CloseDialog => f.write_str("close-dialog"),
            Self::CloseConversation => f.write_str("close-conversation"),
            Self::Dialog(name) => write!(f, "dialog:{name}"),
            Self::Interaction(name) => f.write_str(name),
        }
    }
}

impl Serialize for NextAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NextAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

impl JsonSchema for NextAction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NextAction".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "next, end, close-dialog, close-conversation, dialog:NAME, or an interaction name."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_names_and_subdomains_in_any_case() {
        let integration: Integration = serde_json::from_value(serde_json::json!({
            "name": "n",
            "responseDataVariable": "N",
            "type": "api",
            "method": "GET",
            "url": "https://{$botContext.host}/",
            "allowedHosts": ["Orders.Example.com", "*.eu.example.com", "10.0.0.1"]
        }))
        .expect("integration");
        for host in [
            "orders.example.com",
            "ORDERS.example.com",
            "a.eu.example.com",
            "a.b.eu.example.com",
            "10.0.0.1",
        ] {
            assert!(integration.allows_host(host), "{host}");
        }
        for host in [
            "eu.example.com",
            "xeu.example.com",
            "orders.example.com.evil.test",
            "evil.test",
            "10.0.0.10",
            "",
        ] {
            assert!(!integration.allows_host(host), "{host}");
        }
    }
}
