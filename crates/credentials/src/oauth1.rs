//! OAuth 1 request signing (RFC 5849): HMAC-SHA1 and HMAC-SHA256, sent in
//! the `Authorization` header.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use patchbay_config::{OAuth1Credential, OAuth1SignatureMethod};
use patchbay_transport::Request;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::env::{EnvLookup, render, render_opt};
use crate::error::CredentialError;
use crate::provider::{BoxFuture, Provider};
use crate::secret::Secret;

/// RFC 5849 section 3.6: everything but the unreserved characters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// The `oauth1` provider.
pub(crate) struct OAuth1 {
    consumer_key: String,
    consumer_secret: Secret,
    token: Option<String>,
    token_secret: Option<Secret>,
    method: OAuth1SignatureMethod,
    realm: Option<String>,
}

impl std::fmt::Debug for OAuth1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1")
            .field("consumer_key", &self.consumer_key)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The per-request values of a signature, fixed in tests.
pub(crate) struct Nonce {
    pub(crate) timestamp: String,
    pub(crate) nonce: String,
}

impl Nonce {
    fn fresh() -> Self {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let nonce = (0..16)
            .map(|_| fastrand::alphanumeric())
            .collect::<String>();
        Self { timestamp, nonce }
    }
}

impl OAuth1 {
    pub(crate) fn new(
        name: &str,
        oauth: &OAuth1Credential,
        env: EnvLookup<'_>,
    ) -> Result<Self, CredentialError> {
        Ok(Self {
            consumer_key: render(name, "consumerKey", &oauth.consumer_key, env)?
                .expose()
                .to_owned(),
            consumer_secret: render(name, "consumerSecret", &oauth.consumer_secret, env)?,
            token: render_opt(name, "token", oauth.token.as_ref(), env)?
                .map(|token| token.expose().to_owned()),
            token_secret: render_opt(name, "tokenSecret", oauth.token_secret.as_ref(), env)?,
            method: oauth.signature_method,
            realm: oauth.realm.clone(),
        })
    }

    /// The `Authorization` header value for a request.
    pub(crate) fn authorization(
        &self,
        method: &str,
        url: &Url,
        form: &[(String, String)],
        nonce: &Nonce,
    ) -> String {
        let method_name = match self.method {
            OAuth1SignatureMethod::HmacSha1 => "HMAC-SHA1",
            OAuth1SignatureMethod::HmacSha256 => "HMAC-SHA256",
        };
        let mut protocol = vec![
            ("oauth_consumer_key", self.consumer_key.clone()),
            ("oauth_nonce", nonce.nonce.clone()),
            ("oauth_signature_method", method_name.to_owned()),
            ("oauth_timestamp", nonce.timestamp.clone()),
        ];
        if let Some(token) = &self.token {
            protocol.push(("oauth_token", token.clone()));
        }
        let mut parameters: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| (encode(&name), encode(&value)))
            .chain(
                form.iter()
                    .map(|(name, value)| (encode(name), encode(value))),
            )
            .chain(
                protocol
                    .iter()
                    .map(|(name, value)| (encode(name), encode(value))),
            )
            .collect();
        parameters.sort();
        let normalized = parameters
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        let base = format!(
            "{}&{}&{}",
            method.to_ascii_uppercase(),
            encode(&base_uri(url)),
            encode(&normalized)
        );
        let key = format!(
            "{}&{}",
            encode(self.consumer_secret.expose()),
            encode(self.token_secret.as_ref().map_or("", Secret::expose))
        );
        let signature = hmac_base64(self.method, &key, &base);
        protocol.push(("oauth_signature", signature));
        let mut header = String::from("OAuth ");
        if let Some(realm) = &self.realm {
            header.push_str(&format!("realm=\"{}\", ", encode(realm)));
        }
        let fields = protocol
            .iter()
            .map(|(name, value)| format!("{name}=\"{}\"", encode(value)))
            .collect::<Vec<_>>()
            .join(", ");
        header.push_str(&fields);
        header
    }
}

/// RFC 5849 section 3.4.1.2: scheme and host in lower case, the port only
/// when it is not the scheme's default, the path, no query.
fn base_uri(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!("{}://{host}{port}{}", url.scheme(), url.path())
}

fn hmac_base64(method: OAuth1SignatureMethod, key: &str, message: &str) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let digest = match method {
        OAuth1SignatureMethod::HmacSha1 => {
            Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).map(|mac| {
                mac.chain_update(message.as_bytes())
                    .finalize()
                    .into_bytes()
                    .to_vec()
            })
        }
        OAuth1SignatureMethod::HmacSha256 => Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
            .map(|mac| {
                mac.chain_update(message.as_bytes())
                    .finalize()
                    .into_bytes()
                    .to_vec()
            }),
    };
    base64::engine::general_purpose::STANDARD.encode(digest.unwrap_or_default())
}

impl Provider for OAuth1 {
    fn apply<'a>(&'a self, request: &'a mut Request) -> BoxFuture<'a, Result<(), CredentialError>> {
        let is_form = request
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        let form: Vec<(String, String)> = if is_form {
            url::form_urlencoded::parse(&request.body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let header = self.authorization(
            request.method.as_str(),
            &request.url,
            &form,
            &Nonce::fresh(),
        );
        let result = HeaderValue::from_str(&header)
            .map(|mut value| {
                value.set_sensitive(true);
                request.headers.insert(AUTHORIZATION, value);
            })
            .map_err(|_| CredentialError::InvalidValue {
                credential: self.consumer_key.clone(),
                field: "consumerKey",
                reason: "holds characters a header cannot carry".to_owned(),
            });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photos(method: OAuth1SignatureMethod) -> OAuth1 {
        OAuth1 {
            consumer_key: "dpf43f3p2l4k3l03".to_owned(),
            consumer_secret: Secret::new("kd94hf93k423kf44"),
            token: Some("nnch734d00sl2jdk".to_owned()),
            token_secret: Some(Secret::new("pfkkdhi9sl3r4s00")),
            method,
            realm: Some("Photos".to_owned()),
        }
    }

    fn example_nonce() -> Nonce {
        Nonce {
            timestamp: "137131202".to_owned(),
            nonce: "chapoH".to_owned(),
        }
    }

    /// RFC 5849 section 1.2: the signed request for Jane's vacation photo.
    #[test]
    fn matches_the_rfc_example_signature() {
        let url = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original")
            .expect("url");
        let header = photos(OAuth1SignatureMethod::HmacSha1).authorization(
            "GET",
            &url,
            &[],
            &example_nonce(),
        );
        assert!(
            header.contains(r#"oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D""#),
            "{header}"
        );
        assert!(
            header.starts_with(r#"OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03""#)
        );
    }

    /// HMAC-SHA256 over the same base string, checked against Python's
    /// `hmac` module: base64(hmac.new(b"kd94hf93k423kf44&pfkkdhi9sl3r4s00",
    /// base_string, hashlib.sha256).digest()).
    #[test]
    fn signs_with_hmac_sha256() {
        let url = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original")
            .expect("url");
        let header = photos(OAuth1SignatureMethod::HmacSha256).authorization(
            "GET",
            &url,
            &[],
            &example_nonce(),
        );
        assert!(
            header.contains(r#"oauth_signature_method="HMAC-SHA256""#),
            "{header}"
        );
        assert!(
            header.contains(&format!("oauth_signature=\"{}\"", encode(SHA256_SIGNATURE))),
            "{header}"
        );
    }

    const SHA256_SIGNATURE: &str = "HtMwoX2zenlFjgGg/SNEoKEQmL7CzxYFEKzs7er044Y=";

    #[test]
    fn base_uri_drops_default_ports_and_the_query() {
        let url = Url::parse("HTTPS://Example.COM:443/a%20b?x=1").expect("url");
        assert_eq!(base_uri(&url), "https://example.com/a%20b");
        let url = Url::parse("http://example.com:8080/").expect("url");
        assert_eq!(base_uri(&url), "http://example.com:8080/");
    }
}
