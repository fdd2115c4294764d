//! OAuth 2 on the `oauth2` crate, its requests sent by patchbay-transport,
//! with a token cache that refreshes before expiry and fetches once for any
//! number of concurrent callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use patchbay_config::{ClientAuth, OAuth2Credential, OAuth2Grant};
use patchbay_transport::{Client, Limits, Request, Response};
use tracing::Instrument;
use url::Url;

use crate::env::{EnvLookup, render, render_opt};
use crate::error::CredentialError;
use crate::provider::{BoxFuture, Provider, ProviderContext};
use crate::redact::{KnownSecrets, MAX_UPSTREAM_TEXT_CHARS};
use crate::secret::Secret;

/// An access token as the cache keeps it.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// The access token.
    pub access_token: Secret,
    /// The scheme it is sent with, e.g. `Bearer`.
    pub token_type: String,
    /// When it expires, if the server said.
    pub expires_at: Option<SystemTime>,
    /// When to fetch the next one: before expiry by the skew, capped at
    /// half the lifetime.
    pub refresh_at: Option<SystemTime>,
    /// A refresh token, if the server gave one.
    pub refresh_token: Option<Secret>,
}

impl CachedToken {
    fn is_valid(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    fn is_fresh(&self, now: SystemTime) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

/// Where tokens live between calls, keyed by credential and scopes. The
/// in-memory [`MemoryTokenCache`] serves one process; a store shared by
/// replicas implements the same trait.
pub trait TokenCache: Send + Sync + std::fmt::Debug {
    /// The token under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>>;
    /// Keeps `token` under `key`.
    fn put<'a>(&'a self, key: &'a str, token: CachedToken) -> BoxFuture<'a, ()>;
    /// Drops the token under `key` if it is still `access_token` (a newer
    /// one, fetched meanwhile, stays).
    fn discard<'a>(&'a self, key: &'a str, access_token: &'a str) -> BoxFuture<'a, ()>;

    /// Asks for the right to fetch the token under `key`, across every
    /// process that shares this cache, held for `ttl` at most (so that a
    /// holder that dies delays nobody past it). `true`: fetch, then
    /// [`TokenCache::release`]; `false`: another holder is fetching, wait
    /// for its token. The default grants at once: within one process the
    /// provider already fetches once.
    fn acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        let _ = (key, ttl);
        Box::pin(async { true })
    }

    /// Gives back the right [`TokenCache::acquire`] granted.
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(async {})
    }
}

/// A [`TokenCache`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryTokenCache {
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl MemoryTokenCache {
    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        // The map stays consistent even if a holder panicked.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenCache for MemoryTokenCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>> {
        let token = self.tokens().get(key).cloned();
        Box::pin(async move { token })
    }

    fn put<'a>(&'a self, key: &'a str, token: CachedToken) -> BoxFuture<'a, ()> {
        self.tokens().insert(key.to_owned(), token);
        Box::pin(async {})
    }

    fn discard<'a>(&'a self, key: &'a str, access_token: &'a str) -> BoxFuture<'a, ()> {
        let mut tokens = self.tokens();
        if tokens
            .get(key)
            .is_some_and(|token| token.access_token.expose() == access_token)
        {
            tokens.remove(key);
        }
        Box::pin(async {})
    }
}

/// The `oauth2` provider.
pub(crate) struct OAuth2 {
    name: String,
    key: String,
    grant: OAuth2Grant,
    client_id: String,
    client_secret: Option<Secret>,
    token_url: TokenUrl,
    auth_url: Option<AuthUrl>,
    scopes: Vec<String>,
    extra_params: Vec<(String, Secret)>,
    auth_type: AuthType,
    /// What token requests carry that the endpoint's error text must not
    /// repeat: the client secret, the client's Basic value, secret-named
    /// extra parameters.
    known_secrets: KnownSecrets,
    http: Client,
    limits: Limits,
    cache: Arc<dyn TokenCache>,
    skew: Duration,
    /// Held by the one caller that fetches a token; the others wait on it
    /// (or, while the old token is still valid, use that).
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("credential", &self.name)
            .field("grant", &self.grant)
            .field("token_url", &self.token_url.as_str())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl OAuth2 {
    pub(crate) fn new(
        name: &str,
        oauth: &OAuth2Credential,
        env: EnvLookup<'_>,
        context: &ProviderContext,
    ) -> Result<Self, CredentialError> {
        let client_id = render(name, "clientId", &oauth.client_id, env)?;
        let client_secret = render_opt(name, "clientSecret", oauth.client_secret.as_ref(), env)?;
        let token_url = render(name, "tokenUrl", &oauth.token_url, env)?;
        let token_url = Url::parse(token_url.expose())
            .map(TokenUrl::from_url)
            .map_err(|error| CredentialError::InvalidValue {
                credential: name.to_owned(),
                field: "tokenUrl",
                reason: error.to_string(),
            })?;
        let auth_url = render_opt(name, "authUrl", oauth.auth_url.as_ref(), env)?
            .map(|url| {
                Url::parse(url.expose())
                    .map(AuthUrl::from_url)
                    .map_err(|error| CredentialError::InvalidValue {
                        credential: name.to_owned(),
                        field: "authUrl",
                        reason: error.to_string(),
                    })
            })
            .transpose()?;
        let mut extra_params = Vec::new();
        for (key, value) in &oauth.extra_params {
            extra_params.push((key.clone(), render(name, "extraParams", value, env)?));
        }
        let mut scopes: Vec<String> = oauth
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        scopes.sort();
        scopes.dedup();
        let mut limits = context.token_limits.clone();
        limits.max_redirects = 0;
        let mut known_secrets = KnownSecrets::new();
        if let Some(secret) = &client_secret {
            known_secrets.insert_basic(client_id.expose(), secret.expose());
        }
        for (key, value) in &extra_params {
            if names_a_secret(key) {
                known_secrets.insert(value.expose());
            }
        }
        Ok(Self {
            name: name.to_owned(),
            key: format!("{name}|{}", scopes.join(" ")),
            grant: oauth.grant,
            client_id: client_id.expose().to_owned(),
            client_secret,
            token_url,
            auth_url,
            scopes,
            extra_params,
            auth_type: match oauth.client_auth {
                ClientAuth::Header => AuthType::BasicAuth,
                ClientAuth::Body => AuthType::RequestBody,
            },
            known_secrets,
            http: context.client.clone(),
            limits,
            cache: Arc::clone(&context.cache),
            skew: context.refresh_skew,
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    async fn token(&self) -> Result<CachedToken, CredentialError> {
        let now = SystemTime::now();
        let cached = self.cache.get(&self.key).await;
        if let Some(token) = &cached {
            if token.is_fresh(now) {
                return Ok(token.clone());
            }
            if token.is_valid(now) {
                // Refresh ahead of expiry: one caller fetches, the rest go
                // on with the token that still works.
                let Ok(_fetching) = self.fetching.try_lock() else {
                    return Ok(token.clone());
                };
                return match self.fetch_shared(Some(token)).await {
                    Ok(fresh) => Ok(fresh),
                    Err(error) => {
                        tracing::warn!(credential = %self.name, %error, "early token refresh failed; the current token is still valid");
                        Ok(token.clone())
                    }
                };
            }
        }
        let _fetching = self.fetching.lock().await;
        self.fetch_shared(cached.as_ref()).await
    }

    /// A fresh token, fetched once across every process sharing the cache:
    /// the holder of the cache's lock fetches and stores it, the others
    /// wait for it to appear (at most the lock's lifetime, after which the
    /// lock is free again). Called with `fetching` held, so once per process.
    async fn fetch_shared(
        &self,
        previous: Option<&CachedToken>,
    ) -> Result<CachedToken, CredentialError> {
        let lock_ttl = self.limits.deadline + Duration::from_secs(1);
        loop {
            if let Some(current) = self
                .cache
                .get(&self.key)
                .await
                .filter(|t| t.is_fresh(SystemTime::now()))
            {
                return Ok(current);
            }
            if self.cache.acquire(&self.key, lock_ttl).await {
                let fetched = self.fetch(previous).await;
                if let Ok(fresh) = &fetched {
                    self.cache.put(&self.key, fresh.clone()).await;
                }
                self.cache.release(&self.key).await;
                return fetched;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One token request: the refresh grant when a refresh token is known,
    /// the client-credentials grant otherwise.
    async fn fetch(&self, previous: Option<&CachedToken>) -> Result<CachedToken, CredentialError> {
        let span = tracing::info_span!("token.fetch", credential = %self.name);
        let result = self.request_token(previous).instrument(span).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(
            "patchbay_token_fetches_total",
            "credential" => self.name.clone(),
            "outcome" => outcome
        )
        .increment(1);
        result
    }

    async fn request_token(
        &self,
        previous: Option<&CachedToken>,
    ) -> Result<CachedToken, CredentialError> {
        tracing::debug!(credential = %self.name, "fetching an OAuth 2 token");
        let client = self.oauth_client();
        let http = TokenHttp {
            client: &self.http,
            limits: &self.limits,
        };
        let scopes = self.scopes.iter().map(|scope| Scope::new(scope.clone()));
        let refresh_token = previous
            .and_then(|token| token.refresh_token.as_ref())
            .map(|token| RefreshToken::new(token.expose().to_owned()));
        let response = match (&refresh_token, self.grant) {
            (Some(refresh_token), _) => {
                client
                    .exchange_refresh_token(refresh_token)
                    .add_scopes(scopes)
                    .request_async(&http)
                    .await
            }
            (None, OAuth2Grant::ClientCredentials) => {
                let mut request = client.exchange_client_credentials().add_scopes(scopes);
                for (key, value) in &self.extra_params {
                    request = request.add_extra_param(key.as_str(), value.expose());
                }
                request.request_async(&http).await
            }
            (None, OAuth2Grant::AuthorizationCode) => {
                return Err(CredentialError::InvalidValue {
                    credential: self.name.clone(),
                    field: "grant",
                    reason: "no refresh token is stored yet: run `patchbay auth` for this credential first"
                        .to_owned(),
                });
            }
        }
        .map_err(|error| {
            let sent = refresh_token.as_ref().map(|token| token.secret().as_str());
            self.token_error(error, sent)
        })?;
        Ok(self.cached(&response, previous))
    }

    fn oauth_client(
        &self,
    ) -> BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_token_uri(self.token_url.clone())
            .set_auth_type(self.auth_type.clone());
        match &self.client_secret {
            Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
            None => client,
        }
    }

    fn cached(
        &self,
        response: &oauth2::basic::BasicTokenResponse,
        previous: Option<&CachedToken>,
    ) -> CachedToken {
        let now = SystemTime::now();
        let lifetime = response.expires_in();
        CachedToken {
            access_token: Secret::new(response.access_token().secret().clone()),
            token_type: match response.token_type() {
                BasicTokenType::Bearer => "Bearer".to_owned(),
                BasicTokenType::Mac => "MAC".to_owned(),
                BasicTokenType::Extension(other) => other.clone(),
            },
            expires_at: lifetime.map(|lifetime| now + lifetime),
            refresh_at: lifetime.map(|lifetime| now + lifetime - self.skew.min(lifetime / 2)),
            refresh_token: response
                .refresh_token()
                .map(|token| Secret::new(token.secret().clone()))
                .or_else(|| previous.and_then(|token| token.refresh_token.clone())),
        }
    }

    /// The credential's secrets, with `also` (a refresh token, a code, a
    /// verifier: what this one request carried), for masking what the
    /// token endpoint says.
    fn known_secrets_with<'a>(&self, also: impl IntoIterator<Item = &'a str>) -> KnownSecrets {
        let mut known = self.known_secrets.clone();
        for secret in also {
            known.insert(secret);
        }
        known
    }

    /// Our error for a failed token request. The endpoint's own words are
    /// quoted sanitized: an endpoint may reflect the request, which holds
    /// the client secret (form-encoded, or base64 in a Basic header) and
    /// `sent`.
    fn token_error<'a>(
        &self,
        error: RequestTokenError<patchbay_transport::Error, oauth2::basic::BasicErrorResponse>,
        sent: impl IntoIterator<Item = &'a str>,
    ) -> CredentialError {
        let credential = self.name.clone();
        let known = self.known_secrets_with(sent);
        match error {
            RequestTokenError::ServerResponse(response) => CredentialError::TokenRefused {
                credential,
                error: known.sanitize(response.error().as_ref(), MAX_ERROR_CODE_CHARS),
                description: response
                    .error_description()
                    .map(|description| known.sanitize(description, MAX_UPSTREAM_TEXT_CHARS)),
            },
            RequestTokenError::Request(source) => {
                CredentialError::TokenTransport { credential, source }
            }
            // The body is not shown: a half-valid response may hold a token.
            // The path names members of the endpoint's JSON: its text too.
            RequestTokenError::Parse(error, _) => CredentialError::TokenResponse {
                credential,
                reason: format!(
                    "not a token response (at `{}`)",
                    known.sanitize(&error.path().to_string(), MAX_UPSTREAM_TEXT_CHARS)
                ),
            },
            RequestTokenError::Other(reason) => CredentialError::TokenResponse {
                credential,
                reason: known.sanitize(&reason, MAX_UPSTREAM_TEXT_CHARS),
            },
        }
    }
}

/// How long an OAuth `error` code may be in our errors: the registered
/// codes are short words.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// Whether an `extraParams` name says its value is secret (`password`,
/// `client_assertion`, `api_key`, ...).
fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "key", "assertion"]
        .iter()
        .any(|word| name.contains(word))
}

/// Sends token requests through patchbay-transport: the network guard and
/// the deadline apply, and redirects are never followed.
struct TokenHttp<'a> {
    client: &'a Client,
    limits: &'a Limits,
}

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = patchbay_transport::Error;
    type Future = BoxFuture<'c, Result<oauth2::HttpResponse, patchbay_transport::Error>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = Url::parse(&parts.uri.to_string()).map_err(|_| {
                patchbay_transport::Error::InvalidRequest(
                    "the token URL is not absolute".to_owned(),
                )
            })?;
            let mut call = Request::new(parts.method, url);
            call.headers = parts.headers;
            if let Some(value) = call.headers.get_mut(AUTHORIZATION) {
                value.set_sensitive(true);
            }
            call.body = body.into();
            call.limits = self.limits.clone();
            let response = self.client.send(call).await?;
            let mut answer = http::Response::new(response.body.to_vec());
            *answer.status_mut() = http::StatusCode::from_u16(response.status)
                .unwrap_or(http::StatusCode::BAD_GATEWAY);
            *answer.headers_mut() = response.headers;
            Ok(answer)
        })
    }
}

impl Provider for OAuth2 {
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>> {
        Box::pin(async move {
            let token = self.token().await?;
            let mut value = HeaderValue::from_str(&format!(
                "{} {}",
                token.token_type,
                token.access_token.expose()
            ))
            .map_err(|_| CredentialError::TokenResponse {
                credential: self.name.clone(),
                reason: "the access token holds characters a header cannot carry".to_owned(),
            })?;
            value.set_sensitive(true);
            request.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }

    /// A 401 whose challenge says `invalid_token` (RFC 6750 section 3.1),
    /// or that carries no challenge at all, drops the token that was sent.
    /// Any other status (403 included) is the server's final word.
    fn rejected<'a>(&'a self, request: &'a Request, response: &'a Response) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            if response.status != 401 {
                return false;
            }
            let mut challenges = response.headers.get_all(WWW_AUTHENTICATE).iter().peekable();
            let no_challenge = challenges.peek().is_none();
            let invalid_token = challenges.any(|value| {
                value
                    .to_str()
                    .is_ok_and(|text| text.to_ascii_lowercase().contains("invalid_token"))
            });
            if !(no_challenge || invalid_token) {
                return false;
            }
            let sent = request
                .headers
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split_once(' '))
                .map(|(_, token)| token.to_owned());
            let Some(sent) = sent else { return false };
            self.cache.discard(&self.key, &sent).await;
            true
        })
    }
}

/// An authorization-code flow in progress (RFC 6749 section 4.1, with PKCE,
/// RFC 7636): send the user to [`Authorization::url`], then hand the
/// redirect they come back with to [`Authorization::complete`], which
/// exchanges the code and keeps the tokens (refresh token included) in the
/// token cache, where the credential's provider finds them.
pub struct Authorization {
    provider: OAuth2,
    url: Url,
    redirect: RedirectUrl,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("credential", &self.provider.name)
            .field("redirect", &self.redirect.as_str())
            .finish_non_exhaustive()
    }
}

/// Starts the authorization-code flow of an `oauth2` credential whose grant
/// is `authorization-code`; the user's browser will come back to `redirect`.
pub fn authorize(
    credential: &patchbay_config::Credential,
    env: EnvLookup<'_>,
    context: &ProviderContext,
    redirect: Url,
) -> Result<Authorization, CredentialError> {
    let name = credential.name.as_str();
    let not_this = |reason: &str| CredentialError::InvalidValue {
        credential: name.to_owned(),
        field: "grant",
        reason: reason.to_owned(),
    };
    let patchbay_config::CredentialKind::OAuth2(oauth) = &credential.kind else {
        return Err(not_this("only oauth2 credentials are authorized this way"));
    };
    if oauth.grant != OAuth2Grant::AuthorizationCode {
        return Err(not_this(
            "only the authorization-code grant needs `patchbay auth`",
        ));
    }
    let provider = OAuth2::new(name, oauth, env, context)?;
    let Some(auth_url) = provider.auth_url.clone() else {
        return Err(CredentialError::InvalidValue {
            credential: name.to_owned(),
            field: "authUrl",
            reason: "the authorization-code grant needs `authUrl`".to_owned(),
        });
    };
    let redirect = RedirectUrl::from_url(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = provider
        .oauth_client()
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect.clone())
        .authorize_url(CsrfToken::new_random)
        .add_scopes(
            provider
                .scopes
                .iter()
                .map(|scope| Scope::new(scope.clone())),
        )
        .set_pkce_challenge(challenge)
        .url();
    Ok(Authorization {
        provider,
        url,
        redirect,
        state,
        verifier,
    })
}

impl Authorization {
    /// Where to send the user to grant access.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Finishes the flow with the URL the user's browser was redirected to:
    /// checks `state`, reports an `error` the server sent back, exchanges
    /// the code (with the PKCE verifier) and stores the tokens.
    pub async fn complete(self, callback: &Url) -> Result<(), CredentialError> {
        let name = self.provider.name.clone();
        let query: std::collections::HashMap<String, String> = callback
            .query_pairs()
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if let Some(error) = query.get("error") {
            // The redirect's words come from the authorization server (or
            // whoever crafted the link): quoted sanitized, like a token
            // endpoint's.
            let known = &self.provider.known_secrets;
            return Err(CredentialError::TokenRefused {
                credential: name,
                error: known.sanitize(error, MAX_ERROR_CODE_CHARS),
                description: query
                    .get("error_description")
                    .map(|description| known.sanitize(description, MAX_UPSTREAM_TEXT_CHARS)),
            });
        }
        let invalid = |reason: &str| CredentialError::TokenResponse {
            credential: name.clone(),
            reason: reason.to_owned(),
        };
        if query.get("state").map(String::as_str) != Some(self.state.secret().as_str()) {
            return Err(invalid(
                "the redirect's `state` does not match this authorization",
            ));
        }
        let Some(code) = query.get("code") else {
            return Err(invalid("the redirect carries no `code`"));
        };
        let http = TokenHttp {
            client: &self.provider.http,
            limits: &self.provider.limits,
        };
        let verifier = Secret::new(self.verifier.secret().clone());
        let response = self
            .provider
            .oauth_client()
            .set_redirect_uri(self.redirect.clone())
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(self.verifier)
            .request_async(&http)
            .await
            .map_err(|error| {
                self.provider
                    .token_error(error, [code.as_str(), verifier.expose()])
            })?;
        let token = self.provider.cached(&response, None);
        if token.refresh_token.is_none() {
            tracing::warn!(credential = %name, "the token endpoint gave no refresh token; the grant must be run again when the token expires");
        }
        self.provider.cache.put(&self.provider.key, token).await;
        Ok(())
    }
}
