//! Why a credential could not be applied.

/// A credential that could not be built or applied. No message holds a
/// secret, a token or a header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A field names an environment variable that has no value.
    #[error("credential `{credential}` needs environment variable `{name}`, which is not set")]
    MissingEnv {
        /// The credential.
        credential: String,
        /// The variable.
        name: String,
    },
    /// A field uses a reference other than `{$env.NAME}`.
    #[error(
        "credential `{credential}`: field `{field}` may only use {{$env.NAME}} references, not `{reference}`"
    )]
    UnsupportedReference {
        /// The credential.
        credential: String,
        /// The field.
        field: &'static str,
        /// The reference as written.
        reference: String,
    },
    /// A field's value cannot be used (not a URL, not PEM, not a header).
    #[error("credential `{credential}`: field `{field}` is unusable: {reason}")]
    InvalidValue {
        /// The credential.
        credential: String,
        /// The field.
        field: &'static str,
        /// What is wrong (never the value itself).
        reason: String,
    },
    /// The token endpoint answered with an OAuth error (RFC 6749 section 5.2).
    #[error("the token endpoint of `{credential}` refused: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        /// The credential.
        credential: String,
        /// The `error` code, e.g. `invalid_client`.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or did not answer in time.
    #[error("the token endpoint of `{credential}` failed: {source}")]
    TokenTransport {
        /// The credential.
        credential: String,
        /// The transport's error.
        #[source]
        source: patchbay_transport::Error,
    },
    /// The token endpoint's answer is not a token response.
    #[error("the token endpoint of `{credential}` sent an invalid response: {reason}")]
    TokenResponse {
        /// The credential.
        credential: String,
        /// What is wrong with it.
        reason: String,
    },
}
