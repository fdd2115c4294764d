//! Credential fields rendered from the bot's environment, once.

use patchbay_config::{Reference, Segment, Template};

use crate::error::CredentialError;
use crate::secret::Secret;

/// Looks environment variables up. The host decides where they come from
/// (the bot file's defaults, the process, a secret manager).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Renders a credential field: literal text and `{$env.NAME}` only, since
/// credentials are resolved once, not per turn.
pub(crate) fn render(
    credential: &str,
    field: &'static str,
    template: &Template,
    env: EnvLookup<'_>,
) -> Result<Secret, CredentialError> {
    let mut out = String::new();
    for segment in template.segments() {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Reference(Reference::Env(name)) => {
                let value = env(name).ok_or_else(|| CredentialError::MissingEnv {
                    credential: credential.to_owned(),
                    name: name.clone(),
                })?;
                out.push_str(&value);
            }
            Segment::Reference(other) => {
                return Err(CredentialError::UnsupportedReference {
                    credential: credential.to_owned(),
                    field,
                    reference: other.to_string(),
                });
            }
        }
    }
    Ok(Secret::new(out))
}

pub(crate) fn render_opt(
    credential: &str,
    field: &'static str,
    template: Option<&Template>,
    env: EnvLookup<'_>,
) -> Result<Option<Secret>, CredentialError> {
    template
        .map(|template| render(credential, field, template, env))
        .transpose()
}
