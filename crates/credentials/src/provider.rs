//! The provider abstraction and the providers that need no network.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use patchbay_config::{Credential, CredentialKind};
use patchbay_transport::{Client, Limits, Request, Response, TlsIdentity};

use crate::env::{EnvLookup, render, render_opt};
use crate::error::CredentialError;
use crate::oauth1::OAuth1;
use crate::oauth2::{OAuth2, TokenCache};
use crate::secret::Secret;

/// A boxed future, so that providers can live behind `dyn Provider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Applies one credential to requests.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Adds the credential to `request`: headers (marked sensitive), query
    /// parameters, a signature or a client identity. May fetch a token.
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>>;

    /// Told that the server answered `response` to `request`, which this
    /// provider enhanced. Returns whether it dropped what the server
    /// rejected, so that one retry with fresh credentials makes sense.
    fn rejected<'a>(&'a self, request: &'a Request, response: &'a Response) -> BoxFuture<'a, bool> {
        let _ = (request, response);
        Box::pin(async { false })
    }
}

/// What providers that call out (OAuth 2) share.
#[derive(Clone, Debug)]
pub struct ProviderContext {
    /// The client for token requests.
    pub client: Client,
    /// Where tokens are kept between calls.
    pub cache: Arc<dyn TokenCache>,
    /// Limits of token requests; redirects are never followed whatever
    /// this says.
    pub token_limits: Limits,
    /// How long before expiry a token is refreshed (capped at half its
    /// lifetime); 60 s unless set.
    pub refresh_skew: Duration,
}

impl ProviderContext {
    /// A context with the default limits and skew.
    pub fn new(client: Client, cache: Arc<dyn TokenCache>) -> Self {
        Self {
            client,
            cache,
            token_limits: Limits::default(),
            refresh_skew: Duration::from_secs(60),
        }
    }
}

/// Builds the provider of a credential, resolving its `{$env.NAME}` fields
/// once, now.
pub fn build(
    credential: &Credential,
    env: EnvLookup<'_>,
    context: &ProviderContext,
) -> Result<Arc<dyn Provider>, CredentialError> {
    let name = credential.name.as_str();
    let provider: Arc<dyn Provider> = match &credential.kind {
        CredentialKind::Basic(basic) => {
            let username = render(name, "username", &basic.username, env)?;
            let password = render(name, "password", &basic.password, env)?;
            let pair = format!("{}:{}", username.expose(), password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            Arc::new(StaticHeader::new(
                name,
                AUTHORIZATION,
                format!("Basic {encoded}"),
            )?)
        }
        CredentialKind::AccessToken(token) => {
            let value = render(name, "token", &token.token, env)?;
            let header = format!("{} {}", token.token_type, value.expose());
            Arc::new(StaticHeader::new(name, AUTHORIZATION, header)?)
        }
        CredentialKind::ApiKey(key) => {
            let value = render(name, "value", &key.value, env)?;
            match (&key.header, &key.query_param) {
                (Some(header), _) => {
                    let header = http::HeaderName::try_from(header.as_str()).map_err(|_| {
                        CredentialError::InvalidValue {
                            credential: name.to_owned(),
                            field: "header",
                            reason: "not a valid header name".to_owned(),
                        }
                    })?;
                    Arc::new(StaticHeader::new(name, header, value.expose().to_owned())?)
                }
                (None, Some(param)) => Arc::new(QueryKey {
                    param: param.clone(),
                    value,
                }),
                (None, None) => {
                    return Err(CredentialError::InvalidValue {
                        credential: name.to_owned(),
                        field: "header",
                        reason: "an api-key credential needs `header` or `queryParam`".to_owned(),
                    });
                }
            }
        }
        CredentialKind::MutualTls(tls) => Arc::new(MutualTls::new(name, tls, env)?),
        CredentialKind::OAuth2(oauth) => Arc::new(OAuth2::new(name, oauth, env, context)?),
        CredentialKind::OAuth1(oauth) => Arc::new(OAuth1::new(name, oauth, env)?),
    };
    Ok(provider)
}

/// Sends `request` with the credential applied; when the server rejects the
/// token (see [`Provider::rejected`]), applies fresh credentials and sends
/// it once more.
pub async fn send_authenticated(
    client: &Client,
    provider: &dyn Provider,
    request: Request,
) -> Result<Response, SendError> {
    let mut first = request.clone();
    provider.apply(&mut first).await?;
    let response = client.send(first.clone()).await?;
    if !provider.rejected(&first, &response).await {
        return Ok(response);
    }
    tracing::debug!("credential rejected; retrying once with a fresh one");
    let mut second = request;
    provider.apply(&mut second).await?;
    Ok(client.send(second).await?)
}

/// Why [`send_authenticated`] got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The credential could not be applied.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The call failed.
    #[error(transparent)]
    Transport(#[from] patchbay_transport::Error),
}

/// One header with a fixed, sensitive value (Basic, access token, API key).
struct StaticHeader {
    name: http::HeaderName,
    value: HeaderValue,
}

impl StaticHeader {
    fn new(
        credential: &str,
        name: http::HeaderName,
        value: String,
    ) -> Result<Self, CredentialError> {
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| CredentialError::InvalidValue {
                credential: credential.to_owned(),
                field: "value",
                reason: "holds characters a header cannot carry (such as a line break)".to_owned(),
            })?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }
}

impl std::fmt::Debug for StaticHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticHeader({}: [redacted])", self.name)
    }
}

impl Provider for StaticHeader {
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>> {
        request
            .headers
            .insert(self.name.clone(), self.value.clone());
        Box::pin(async { Ok(()) })
    }
}

/// An API key in a query parameter (`check` warns about it).
#[derive(Debug)]
struct QueryKey {
    param: String,
    value: Secret,
}

impl Provider for QueryKey {
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>> {
        request
            .url
            .query_pairs_mut()
            .append_pair(&self.param, self.value.expose());
        Box::pin(async { Ok(()) })
    }
}

/// A client certificate presented on the call's TLS connections.
#[derive(Debug)]
struct MutualTls {
    identity: TlsIdentity,
}

impl MutualTls {
    fn new(
        credential: &str,
        tls: &patchbay_config::MutualTlsCredential,
        env: EnvLookup<'_>,
    ) -> Result<Self, CredentialError> {
        let invalid = |field: &'static str, reason: String| CredentialError::InvalidValue {
            credential: credential.to_owned(),
            field,
            reason,
        };
        let certificate = render_opt(credential, "certificate", tls.certificate.as_ref(), env)?;
        let key = render_opt(credential, "privateKey", tls.private_key.as_ref(), env)?;
        let pkcs12 = render_opt(credential, "pkcs12", tls.pkcs12.as_ref(), env)?;
        let mut identity = match (certificate, key, pkcs12) {
            (Some(certificate), Some(key), None) => {
                TlsIdentity::from_pem(certificate.expose().as_bytes(), key.expose().as_bytes())
                    .map_err(|error| invalid("certificate", error.to_string()))?
            }
            (None, None, Some(bundle)) => {
                let password = render_opt(credential, "password", tls.password.as_ref(), env)?;
                from_pkcs12(&bundle, password.as_ref())
                    .map_err(|reason| invalid("pkcs12", reason))?
            }
            _ => {
                return Err(invalid(
                    "certificate",
                    "give `certificate` and `privateKey` (PEM), or `pkcs12` (base64)".to_owned(),
                ));
            }
        };
        if let Some(trust) = render_opt(
            credential,
            "trustCertificate",
            tls.trust_certificate.as_ref(),
            env,
        )? {
            identity = identity
                .with_trusted_pem(trust.expose().as_bytes())
                .map_err(|error| invalid("trustCertificate", error.to_string()))?;
        }
        Ok(Self { identity })
    }
}

/// Reads a base64 PKCS#12 bundle: its first key with its certificate chain.
/// Errors say what is wrong without quoting the bundle.
fn from_pkcs12(bundle: &Secret, password: Option<&Secret>) -> Result<TlsIdentity, String> {
    let compact: String = bundle
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "not base64".to_owned())?;
    let password = password.map_or("", Secret::expose);
    let store = p12_keystore::KeyStore::from_pkcs12(
        &der,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|_| "not a PKCS#12 bundle, or the password is wrong".to_owned())?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| "the bundle holds no private key with a certificate".to_owned())?;
    let certificates = chain
        .certs()
        .iter()
        .map(|certificate| certificate.as_der().to_vec())
        .collect();
    TlsIdentity::from_der(certificates, chain.key().as_der().to_vec())
        .map_err(|error| error.to_string())
}

impl Provider for MutualTls {
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>> {
        request.identity = Some(self.identity.clone());
        Box::pin(async { Ok(()) })
    }
}
