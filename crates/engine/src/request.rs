//! The request stage, outbound: the one place an integration's request is
//! rendered, encoded and placed (URL and its path, query parameters,
//! headers, body), from a plan made when the bot loads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use patchbay_config::{Bot, HttpSettings, Integration};
use patchbay_credentials::Provider;
use patchbay_rules::{Place, Values, render, render_url};
use patchbay_transport::{Limits, Request};
use url::Url;

/// What an integration's calls share, made once when the bot loads: the
/// method, the header names, the limits, its credential's provider and
/// the names of the variables its response fills.
pub(crate) struct RequestPlan {
    /// The method (`None` for one `http` does not take: the call fails).
    method: Option<Method>,
    /// Each of the integration's headers' names, in order (`None` for one
    /// that is not a valid name: the call fails).
    header_names: Vec<Option<HeaderName>>,
    /// The integration's `http` settings over the bot's over the
    /// transport's defaults.
    limits: Limits,
    /// The provider of the integration's credential, if it has one.
    pub(crate) provider: Option<Arc<dyn Provider>>,
    /// `api_RDVN`: the transform's global, the document's one member.
    pub(crate) api_name: String,
    /// `api_RDVNStatus`: the variable the status goes to.
    pub(crate) status_variable: String,
}

impl RequestPlan {
    /// The plan of `integration` of `bot`, with the providers built for
    /// the bot's credentials (by name).
    pub(crate) fn new(
        bot: &Bot,
        integration: &Integration,
        providers: &HashMap<String, Arc<dyn Provider>>,
    ) -> Self {
        let rdvn = &integration.response_data_variable;
        Self {
            method: Method::from_bytes(integration.method.as_str().as_bytes()).ok(),
            header_names: integration
                .headers
                .keys()
                .map(|name| HeaderName::try_from(name.as_str()).ok())
                .collect(),
            limits: limits(&bot.http, &integration.http),
            provider: integration
                .credential
                .as_ref()
                .and_then(|name| providers.get(name))
                .cloned(),
            api_name: format!("api_{rdvn}"),
            status_variable: format!("api_{rdvn}Status"),
        }
    }

    /// Renders `integration`'s request with `values`: the URL (held to
    /// the rules of docs/engine.md, "URL rendering"), the params appended
    /// to its query, the default headers and the integration's, the body
    /// encoded for its `Content-Type`. `request_line` gets `METHOD URL`
    /// with the query hidden once the URL is known. A value that cannot go
    /// where it lands fails the call (the message names the reference,
    /// never the value).
    pub(crate) fn render(
        &self,
        integration: &Integration,
        values: &Values<'_>,
        request_line: &mut String,
    ) -> Result<Request, String> {
        let rendered = render_url(&integration.url, values).map_err(|error| error.to_string())?;
        let mut url =
            Url::parse(&rendered.text).map_err(|error| format!("the URL is not valid: {error}"))?;
        // A host chosen by a conversation's value gets the credential only
        // when the bot named it (docs/engine.md, "URL rendering").
        if rendered.host_is_open {
            let host = url.host_str().unwrap_or_default();
            if !integration.allows_host(host) {
                return Err(format!(
                    "the URL's host `{host}` comes from a conversation's value and is not in the integration's `allowedHosts`"
                ));
            }
        }
        if !integration.params.is_empty() {
            let mut query = url.query().map(str::to_owned).unwrap_or_default();
            for (key, value) in &integration.params {
                let value =
                    render(value, values, Place::Param).map_err(|error| error.to_string())?;
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&encode_query(key));
                query.push('=');
                query.push_str(&encode_query(&value));
            }
            url.set_query(Some(&query));
        }
        *request_line = format!(
            "{} {}{}",
            integration.method.as_str(),
            &url[..url::Position::AfterPath],
            if url.query().is_some() {
                "?[redacted]"
            } else {
                ""
            }
        );
        let method = self
            .method
            .clone()
            .ok_or_else(|| "unknown method".to_owned())?;
        let mut request = Request::new(method, url);
        request.limits = self.limits.clone();
        if integration.default_headers {
            let json = HeaderValue::from_static("application/json;charset=UTF-8");
            request.headers.insert(ACCEPT, json.clone());
            request.headers.insert(CONTENT_TYPE, json);
        }
        for ((name, value), header) in integration.headers.iter().zip(&self.header_names) {
            let value = render(value, values, Place::Header).map_err(|error| error.to_string())?;
            let header = header
                .clone()
                .ok_or_else(|| format!("`{name}` is not a valid header name"))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("the value of header `{header}` is not valid"))?;
            request.headers.insert(header, value);
        }
        if let Some(body) = &integration.body {
            let is_json = request
                .headers
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.contains("json"));
            let place = if is_json {
                Place::JsonBody
            } else {
                Place::Text
            };
            let body = render(body, values, place).map_err(|error| error.to_string())?;
            request.body = Bytes::from(body);
        }
        Ok(request)
    }
}

/// The call's limits: the integration's settings over the bot's over the
/// transport's defaults.
fn limits(bot: &HttpSettings, integration: &HttpSettings) -> Limits {
    let settings = integration.or(bot);
    let defaults = Limits::default();
    Limits {
        deadline: settings
            .timeout_ms
            .map_or(defaults.deadline, Duration::from_millis),
        connect_timeout: settings
            .connect_timeout_ms
            .map_or(defaults.connect_timeout, Duration::from_millis),
        max_retries: settings.retries.unwrap_or(defaults.max_retries),
        max_body_bytes: settings
            .max_response_bytes
            .and_then(|bytes| usize::try_from(bytes).ok())
            .unwrap_or(defaults.max_body_bytes),
        max_redirects: settings.max_redirects.unwrap_or(defaults.max_redirects),
    }
}

/// A query component: percent-encoded, a space as `%20`.
fn encode_query(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
