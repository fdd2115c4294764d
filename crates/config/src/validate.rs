//! Validation (errors) and lints (warnings) over a parsed bot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;

use crate::conversation::{
    AnswerMatch, Ask, Button, CaptureSource, CaptureTarget, ChoiceRef, Question, same_text,
};
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::locate::{Locator, Path, Step, doc_path};
use crate::model::{
    Bot, ConditionOp, CredentialKind, Dialog, DialogType, Integration, InteractionKind, NextAction,
    OAuth2Grant, RateLimit,
};
use crate::suggest::did_you_mean;
use crate::template::{
    Reference, Segment, SystemVariable, Template, UrlPart, fixes_domain_after_value, is_identifier,
    url_part,
};

pub(crate) fn validate(bot: &Bot, locator: &Locator) -> Vec<Diagnostic> {
    let mut checker = Checker {
        bot,
        locator,
        found: Vec::new(),
    };
    checker.unique_names();
    checker.http_settings();
    checker.rate_limits();
    checker.integrations();
    checker.blocked_by_network();
    checker.credentials();
    checker.dialogs();
    checker.templates();
    checker.scripts();
    checker.reachability();
    checker.found
}

struct Checker<'a> {
    bot: &'a Bot,
    locator: &'a Locator,
    found: Vec<Diagnostic>,
}

/// Whether a diagnostic points at a key or at its value.
#[derive(Clone, Copy)]
enum At {
    Key,
    Value,
}

impl Checker<'_> {
    fn span(&self, path: &[Step], at: At) -> Range<usize> {
        let span = match at {
            At::Key => self.locator.key(path),
            At::Value => self.locator.value(path),
        };
        span.unwrap_or(0..0)
    }

    fn push(
        &mut self,
        severity: Severity,
        code: Code,
        path: &[Step],
        at: At,
        message: String,
    ) -> &mut Diagnostic {
        let span = self.span(path, at);
        self.found
            .push(Diagnostic::new(severity, code, message, span));
        let last = self.found.len() - 1;
        &mut self.found[last]
    }

    fn error(&mut self, code: Code, path: &[Step], at: At, message: String) -> &mut Diagnostic {
        self.push(Severity::Error, code, path, at, message)
    }

    fn warn(&mut self, code: Code, path: &[Step], at: At, message: String) -> &mut Diagnostic {
        self.push(Severity::Warning, code, path, at, message)
    }

    fn line_of(&self, path: &[Step]) -> usize {
        self.locator.line(self.span(path, At::Value).start)
    }

    fn unique_names(&mut self) {
        let credential_paths: Vec<(String, Path)> = (self.bot.credentials.iter().enumerate())
            .map(|(i, c)| (c.name.clone(), doc_path!["credentials", i, "name"]))
            .collect();
        self.unique("credential", &credential_paths);
        let integration_paths: Vec<(String, Path)> = (self.bot.integrations.iter().enumerate())
            .map(|(i, c)| (c.name.clone(), doc_path!["integrations", i, "name"]))
            .collect();
        self.unique("integration", &integration_paths);
        let rdvn_paths: Vec<(String, Path)> = (self.bot.integrations.iter().enumerate())
            .map(|(i, c)| {
                let path = doc_path!["integrations", i, "responseDataVariable"];
                (c.response_data_variable.clone(), path)
            })
            .collect();
        self.unique("response data variable", &rdvn_paths);
        let dialog_paths: Vec<(String, Path)> = (self.bot.dialogs.iter().enumerate())
            .map(|(i, d)| (d.name.clone(), doc_path!["dialogs", i, "name"]))
            .collect();
        self.unique("dialog", &dialog_paths);
        let interaction_paths: Vec<(String, Path)> = self
            .interaction_paths()
            .map(|(name, path)| (name.to_owned(), path))
            .collect();
        self.unique("interaction", &interaction_paths);
        for (name, path) in &interaction_paths {
            if NextAction::KEYWORDS.contains(&name.as_str()) || name.starts_with("dialog:") {
                self.error(
                    Code::ReservedName,
                    path,
                    At::Value,
                    format!("`{name}` is a next action, not a usable interaction name"),
                )
                .help = Some("choose another name".to_owned());
            }
        }
    }

    fn http_settings(&mut self) {
        let mut levels = vec![(doc_path!["http"], self.bot.http)];
        for (i, integration) in self.bot.integrations.iter().enumerate() {
            levels.push((doc_path!["integrations", i, "http"], integration.http));
        }
        for (path, settings) in levels {
            for (field, value) in [
                ("timeoutMs", settings.timeout_ms),
                ("connectTimeoutMs", settings.connect_timeout_ms),
                ("maxResponseBytes", settings.max_response_bytes),
            ] {
                if value == Some(0) {
                    let mut at = path.clone();
                    at.push(Step::from(field));
                    self.error(
                        Code::InvalidValue,
                        &at,
                        At::Value,
                        format!("`{field}` must be greater than 0"),
                    );
                }
            }
        }
    }

    fn rate_limits(&mut self) {
        let mut limits: Vec<(Path, RateLimit)> = Vec::new();
        for (i, integration) in self.bot.integrations.iter().enumerate() {
            if let Some(limit) = integration.rate_limit {
                limits.push((doc_path!["integrations", i, "rateLimit"], limit));
            }
        }
        for (host, limit) in &self.bot.network.rate_limits {
            let path = doc_path!["network", "rateLimits", host.as_str()];
            if url::Host::parse(host).is_err() || host.contains(['/', ':']) {
                self.error(
                    Code::InvalidValue,
                    &path,
                    At::Key,
                    format!("`{host}` is not a host name or address"),
                )
                .help = Some("write the host as in the URL, e.g. `api.example.com`".to_owned());
            }
            limits.push((path, *limit));
        }
        for (path, limit) in limits {
            for (field, value) in [
                ("calls", u64::from(limit.calls)),
                ("periodMs", limit.period_ms),
                ("burst", u64::from(limit.burst)),
            ] {
                if value == 0 {
                    let mut at = path.clone();
                    at.push(Step::from(field));
                    self.error(
                        Code::InvalidValue,
                        &at,
                        At::Value,
                        format!("`{field}` must be greater than 0"),
                    );
                }
            }
        }
    }

    fn unique(&mut self, what: &str, names: &[(String, Path)]) {
        let mut seen: HashMap<&str, &Path> = HashMap::new();
        for (name, path) in names {
            match seen.get(name.as_str()) {
                Some(first) => {
                    let line = self.line_of(first);
                    self.error(
                        Code::DuplicateName,
                        path,
                        At::Value,
                        format!("{what} `{name}` is defined twice"),
                    )
                    .label = Some(format!("first defined on line {line}"));
                }
                None => {
                    seen.insert(name, path);
                }
            }
        }
    }

    /// Every interaction's name and the path of its `name` field.
    fn interaction_paths(&self) -> impl Iterator<Item = (&str, Path)> + '_ {
        self.bot.dialogs.iter().enumerate().flat_map(|(d, dialog)| {
            dialog
                .interactions
                .iter()
                .enumerate()
                .map(move |(k, interaction)| {
                    let path = doc_path!["dialogs", d, "interactions", k, "name"];
                    (interaction.name.as_str(), path)
                })
        })
    }

    fn integrations(&mut self) {
        let credential_names: Vec<&str> = self
            .bot
            .credentials
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for (i, integration) in self.bot.integrations.iter().enumerate() {
            let rdvn = &integration.response_data_variable;
            if !is_identifier(rdvn) {
                self.error(
                    Code::InvalidRdvn,
                    &doc_path!["integrations", i, "responseDataVariable"],
                    At::Value,
                    format!("response data variable `{rdvn}` is not an identifier"),
                )
                .help = Some("use letters, digits and `_`, not starting with a digit".to_owned());
            }
            if let Some(credential) = &integration.credential
                && !credential_names.contains(&credential.as_str())
            {
                let help = did_you_mean(credential, credential_names.iter().copied());
                let diagnostic = self.error(
                    Code::UnknownCredential,
                    &doc_path!["integrations", i, "credential"],
                    At::Value,
                    format!("no credential is named `{credential}`"),
                );
                diagnostic.label = Some("not defined under `credentials`".to_owned());
                diagnostic.help = help;
            }
            let url_path = doc_path!["integrations", i, "url"];
            self.url(&integration.url, &url_path);
            self.caller_values_in_url(integration, &url_path);
            self.allowed_hosts(i, integration);
            let over_http = integration.credential.is_some()
                && self.probe(&integration.url).starts_with("http://");
            if over_http {
                self.warn(
                    Code::CredentialOverHttp,
                    &url_path,
                    At::Value,
                    "a credential is sent over plain http://".to_owned(),
                )
                .help = Some("use https:// so the credential is encrypted in transit".to_owned());
            }
            self.secrets_in_url(&integration.url, &url_path);
            for (key, value) in &integration.params {
                let param_path = doc_path!["integrations", i, "params", key];
                if looks_secret(key) || self.references_secret(value) {
                    self.warn(
                        Code::SecretInUrl,
                        &param_path,
                        At::Key,
                        format!("query parameter `{key}` looks like it carries a secret"),
                    )
                    .help = Some(
                        "URLs end up in logs and proxies; send secrets in a header or through a credential"
                            .to_owned(),
                    );
                }
            }
        }
    }

    /// The template rendered with each reference replaced by a stand-in:
    /// an env variable's default where the file gives one, `x` otherwise.
    fn probe(&self, template: &Template) -> String {
        template
            .segments()
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => text.clone(),
                Segment::Reference(Reference::Env(name)) => self
                    .bot
                    .env
                    .get(name)
                    .and_then(Clone::clone)
                    .unwrap_or_else(|| "x".to_owned()),
                Segment::Reference(_) => "x".to_owned(),
            })
            .collect()
    }

    fn url(&mut self, url: &Template, path: &[Step]) {
        let mut probe = self.probe(url);
        let starts_with_reference = matches!(url.segments().first(), Some(Segment::Reference(_)));
        if starts_with_reference && !probe.contains("://") {
            // `{$env.BASE}/search` with no default: the scheme and host come
            // at run time, so check the rest against a stand-in origin.
            probe = format!(
                "https://placeholder.invalid/{}",
                probe.trim_start_matches('x')
            );
        }
        let problem = match url::Url::parse(&probe) {
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                Some(format!("scheme `{}` is not http or https", parsed.scheme()))
            }
            Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
                Some("the URL has no host".to_owned())
            }
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        };
        if let Some(problem) = problem {
            self.error(
                Code::InvalidUrl,
                path,
                At::Value,
                format!("this URL template cannot form a valid URL: {problem}"),
            )
            .help = Some("write an absolute http:// or https:// URL".to_owned());
        }
    }

    /// Values a conversation can set (anything but `{$env...}`) placed
    /// before a URL's path: each is reported, the places where every call
    /// would be refused are errors, and so is a host the template leaves
    /// open with no `allowedHosts` (docs/engine.md, "URL rendering").
    fn caller_values_in_url(&mut self, integration: &Integration, path: &[Step]) {
        let segments = integration.url.segments();
        let mut probe = String::new();
        let mut found = Vec::new();
        let mut host_is_open = false;
        let mut last_label_end = None;
        for (index, segment) in segments.iter().enumerate() {
            let reference = match segment {
                Segment::Literal(text) => {
                    probe.push_str(text);
                    continue;
                }
                Segment::Reference(Reference::Env(name)) => {
                    probe.push_str(&self.env_stand_in(name, index == 0));
                    continue;
                }
                Segment::Reference(reference) => reference,
            };
            let after = match segments.get(index + 1) {
                Some(Segment::Literal(text)) => Some(text.as_str()),
                Some(Segment::Reference(_)) => None,
                None => Some(""),
            };
            let part = url_part(&probe, after);
            probe.push('x');
            match part {
                UrlPart::Path | UrlPart::Query => continue,
                UrlPart::HostLabel => last_label_end = Some(probe.len()),
                UrlPart::WholeHost => host_is_open = true,
                UrlPart::Origin | UrlPart::UserInfo | UrlPart::IpLiteral | UrlPart::Port => {}
            }
            found.push((reference.to_string(), part));
        }
        let starts_with_value = matches!(
            segments.first(),
            Some(Segment::Reference(reference)) if !matches!(reference, Reference::Env(_))
        );
        if !probe.contains("://") && !starts_with_value {
            // Not a URL at all (`/search?q=...`): `url` has reported it.
            return;
        }
        host_is_open |= last_label_end.is_some_and(|end| !fixes_domain_after_value(&probe[end..]));
        for (reference, part) in found {
            if matches!(part, UrlPart::HostLabel | UrlPart::WholeHost) {
                let rule = if part == UrlPart::WholeHost {
                    "at run time it must be a host name, and calls go only to the integration's `allowedHosts`"
                } else {
                    "at run time it must be one DNS label (letters, digits, `-`)"
                };
                self.warn(
                    Code::CallerControlledUrl,
                    path,
                    At::Value,
                    format!(
                        "`{reference}` can be set by the conversation and lands in this URL's host"
                    ),
                )
                .help = Some(format!(
                    "{rule}; take the host from {{$env.NAME}} if callers must not choose it"
                ));
            } else {
                self.error(
                    Code::InvalidUrl,
                    path,
                    At::Value,
                    format!(
                        "`{reference}` would choose this URL's {}: a conversation's value cannot, so every call would be refused",
                        part.describe()
                    ),
                )
                .help = Some(
                    "take that part from {$env.NAME}, or move the value into the path or the query"
                        .to_owned(),
                );
            }
        }
        if host_is_open && integration.allowed_hosts.is_empty() {
            self.error(
                Code::InvalidUrl,
                path,
                At::Value,
                "the conversation chooses this URL's host, and the integration names no `allowedHosts`"
                    .to_owned(),
            )
            .help = Some(
                "list the hosts it may call (and receive its credential): `allowedHosts: [api.example.com]`"
                    .to_owned(),
            );
        }
    }

    /// What stands for `{$env.NAME}` when a URL is judged before run time:
    /// its default, or else a base URL at the start of a template and a
    /// domain elsewhere.
    fn env_stand_in(&self, name: &str, starts_template: bool) -> String {
        match self.bot.env.get(name).and_then(Clone::clone) {
            Some(default) => default,
            None if starts_template => "https://env.invalid".to_owned(),
            None => "env.invalid".to_owned(),
        }
    }

    /// Calls the network guard would refuse every time: a URL whose host
    /// is a private or loopback address (or `localhost`), written or the
    /// default of the `{$env.NAME}` that gives it, that `network.allow`
    /// does not name (spec section 6).
    fn blocked_by_network(&mut self) {
        let mut urls: Vec<(&Template, Path)> = Vec::new();
        for (i, integration) in self.bot.integrations.iter().enumerate() {
            urls.push((&integration.url, doc_path!["integrations", i, "url"]));
        }
        for (i, credential) in self.bot.credentials.iter().enumerate() {
            if let CredentialKind::OAuth2(oauth) = &credential.kind {
                urls.push((&oauth.token_url, doc_path!["credentials", i, "tokenUrl"]));
            }
        }
        for (url, path) in urls {
            let Some((host, kind)) = self.fixed_private_host(url) else {
                continue;
            };
            if allowed_by_network(&host, &self.bot.network.allow) {
                continue;
            }
            let from_env = url.segments().iter().find_map(|segment| match segment {
                Segment::Reference(Reference::Env(name)) => Some(name),
                _ => None,
            });
            let shown = host_text(&host);
            let message = match from_env {
                Some(name) if !url.to_string().contains(&shown) => format!(
                    "calls to `{shown}` (the default of `{{$env.{name}}}`) would be refused: it is a {kind} address and `network.allow` does not name it"
                ),
                _ => format!(
                    "calls to `{shown}` would be refused: it is a {kind} address and `network.allow` does not name it"
                ),
            };
            let allow = match &host {
                url::Host::Ipv6(ip) => format!("\"{ip}\""),
                _ => shown.clone(),
            };
            let help = if self.bot.network.allow.is_empty() {
                format!(
                    "private and loopback addresses are refused unless the bot allows them: `network: {{ allow: [{allow}] }}`"
                )
            } else {
                format!("add {allow} to `network.allow` if the bot is meant to call it")
            };
            self.warn(Code::BlockedByNetwork, &path, At::Value, message)
                .help = Some(help);
        }
    }

    /// The host a URL template always calls, when it is a private or
    /// loopback one, and what kind it is: written in the template or given
    /// by the default of an `{$env.NAME}` before it. A host a value fills
    /// in (or an env variable with no default) is not known before run
    /// time.
    fn fixed_private_host(&self, url: &Template) -> Option<(url::Host, &'static str)> {
        // A character no URL holds stands for what is not known.
        const UNKNOWN: char = '\u{1}';
        let mut probe = String::new();
        for segment in url.segments() {
            match segment {
                Segment::Literal(text) => probe.push_str(text),
                Segment::Reference(Reference::Env(name)) => {
                    match self.bot.env.get(name).and_then(Clone::clone) {
                        Some(default) => probe.push_str(&default),
                        None => probe.push(UNKNOWN),
                    }
                }
                Segment::Reference(_) => probe.push(UNKNOWN),
            }
        }
        let (scheme, rest) = probe.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let host = if host_port.starts_with('[') {
            host_port.split_inclusive(']').next().unwrap_or(host_port)
        } else {
            host_port.split(':').next().unwrap_or(host_port)
        };
        if host.is_empty() || host.contains(UNKNOWN) {
            return None;
        }
        let host = url::Host::parse(host).ok()?;
        let kind = match &host {
            url::Host::Ipv4(ip) => non_public(std::net::IpAddr::V4(*ip))?,
            url::Host::Ipv6(ip) => non_public(std::net::IpAddr::V6(*ip))?,
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                (name == "localhost" || name.ends_with(".localhost")).then_some("loopback")?
            }
        };
        Some((host, kind))
    }

    /// Every `allowedHosts` entry is a host name, an address or
    /// `*.domain`.
    fn allowed_hosts(&mut self, i: usize, integration: &Integration) {
        for (k, allowed) in integration.allowed_hosts.iter().enumerate() {
            let host = allowed.strip_prefix("*.").unwrap_or(allowed);
            if url::Host::parse(host).is_err()
                || host.contains(['/', ':', '*', '@']) && !host.starts_with('[')
            {
                self.error(
                    Code::InvalidValue,
                    &doc_path!["integrations", i, "allowedHosts", k],
                    At::Value,
                    format!("`{allowed}` is not a host name, an address or `*.domain`"),
                )
                .help = Some(
                    "write the host as in the URL, e.g. `api.example.com` or `*.example.com`"
                        .to_owned(),
                );
            }
        }
    }

    fn secrets_in_url(&mut self, url: &Template, path: &[Step]) {
        let probe = self.probe(url);
        let Ok(parsed) = url::Url::parse(&probe) else {
            return;
        };
        let userinfo = !parsed.username().is_empty() || parsed.password().is_some();
        let secret_param = parsed.query_pairs().find(|(key, _)| looks_secret(key));
        let message = if userinfo {
            "the URL carries a user name or password".to_owned()
        } else if let Some((key, _)) = secret_param {
            format!("query parameter `{key}` looks like it carries a secret")
        } else if url.references().any(|r| self.is_secret_env(r)) {
            "the URL carries a secret environment variable".to_owned()
        } else {
            return;
        };
        self.warn(Code::SecretInUrl, path, At::Value, message).help =
            Some("use a credential, which sends secrets in headers".to_owned());
    }

    fn references_secret(&self, template: &Template) -> bool {
        template.references().any(|r| self.is_secret_env(r))
    }

    fn is_secret_env(&self, reference: &Reference) -> bool {
        let Reference::Env(name) = reference else {
            return false;
        };
        self.bot.secret_env_names().any(|secret| secret == name)
    }

    fn credentials(&mut self) {
        for (i, credential) in self.bot.credentials.iter().enumerate() {
            let at = |field: &str| doc_path!["credentials", i, field];
            for (field, secret) in credential.kind.secrets() {
                match secret.as_env_reference() {
                    Some(name) => {
                        if let Some(Some(_)) = self.bot.env.get(name) {
                            self.error(
                                Code::InlineSecret,
                                &doc_path!["env", name],
                                At::Key,
                                format!("`{name}` holds a secret, but the file gives it a value"),
                            )
                            .help = Some(format!(
                                "write `{name}: null` and supply the value at run time"
                            ));
                        }
                    }
                    None => {
                        let name = to_env_name(&credential.name, field);
                        let diagnostic = self.error(
                            Code::InlineSecret,
                            &at(field),
                            At::Value,
                            format!("`{field}` is a secret and must be written as {{$env.NAME}}"),
                        );
                        diagnostic.label = Some("secret written in the file".to_owned());
                        diagnostic.help = Some(format!(
                            "write `{field}: \"{{$env.{name}}}\"` and supply {name} at run time"
                        ));
                    }
                }
            }
            match &credential.kind {
                CredentialKind::OAuth2(oauth) => {
                    self.url(&oauth.token_url, &at("tokenUrl"));
                    if let Some(auth_url) = &oauth.auth_url {
                        self.url(auth_url, &at("authUrl"));
                    }
                    for (field, url) in [
                        ("tokenUrl", Some(&oauth.token_url)),
                        ("authUrl", oauth.auth_url.as_ref()),
                    ] {
                        if url.is_some_and(|url| self.probe(url).starts_with("http://")) {
                            self.warn(
                                Code::CredentialOverHttp,
                                &at(field),
                                At::Value,
                                "OAuth 2 secrets and tokens would travel over plain http://"
                                    .to_owned(),
                            )
                            .help = Some("use https://".to_owned());
                        }
                    }
                    let needs = match oauth.grant {
                        OAuth2Grant::AuthorizationCode if oauth.auth_url.is_none() => {
                            Some("authUrl")
                        }
                        OAuth2Grant::ClientCredentials if oauth.client_secret.is_none() => {
                            Some("clientSecret")
                        }
                        _ => None,
                    };
                    if let Some(field) = needs {
                        self.error(
                            Code::InvalidCredential,
                            &at("grant"),
                            At::Value,
                            format!("this grant needs `{field}`"),
                        );
                    }
                }
                CredentialKind::ApiKey(key) => match (&key.header, &key.query_param) {
                    (Some(_), None) => {}
                    (None, Some(param)) => {
                        self.warn(
                            Code::SecretInUrl,
                            &at("queryParam"),
                            At::Key,
                            format!("the API key is sent in query parameter `{param}`"),
                        )
                        .help = Some(
                            "URLs end up in logs; use `header` if the API accepts it".to_owned(),
                        );
                    }
                    _ => {
                        self.error(
                            Code::InvalidCredential,
                            &at("type"),
                            At::Value,
                            "an api-key credential needs exactly one of `header` and `queryParam`"
                                .to_owned(),
                        );
                    }
                },
                CredentialKind::MutualTls(tls) => {
                    let pem = tls.certificate.is_some() && tls.private_key.is_some();
                    let pkcs12 = tls.pkcs12.is_some();
                    let stray_pem = tls.certificate.is_some() != tls.private_key.is_some();
                    if pem == pkcs12 || stray_pem || (tls.password.is_some() && !pkcs12) {
                        self.error(
                            Code::InvalidCredential,
                            &at("type"),
                            At::Value,
                            "a mutual-tls credential needs `certificate` and `privateKey`, or `pkcs12` (with an optional `password`)"
                                .to_owned(),
                        );
                    }
                }
                CredentialKind::Basic(_)
                | CredentialKind::AccessToken(_)
                | CredentialKind::OAuth1(_) => {}
            }
        }
    }

    fn dialogs(&mut self) {
        let integration_names: Vec<&str> = self
            .bot
            .integrations
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        let mut fallback: Option<&str> = None;
        for (d, dialog) in self.bot.dialogs.iter().enumerate() {
            if dialog.dialog_type == DialogType::Fallback {
                match fallback {
                    Some(first) => {
                        self.error(
                            Code::InvalidValue,
                            &doc_path!["dialogs", d, "type"],
                            At::Value,
                            format!(
                                "dialog `{}` is a second fallback dialog; `{first}` is one already",
                                dialog.name
                            ),
                        )
                        .help = Some("a bot has one fallback dialog".to_owned());
                    }
                    None => fallback = Some(&dialog.name),
                }
            }
            if dialog.interactions.is_empty() {
                self.error(
                    Code::EmptyDialog,
                    &doc_path!["dialogs", d, "interactions"],
                    At::Key,
                    format!("dialog `{}` has no interactions", dialog.name),
                );
            }
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                let at = |rest: &[Step]| {
                    let mut path = doc_path!["dialogs", d, "interactions", k];
                    path.extend_from_slice(rest);
                    path
                };
                self.next_action(&interaction.next, &at(&doc_path!["next"]));
                let call = match &interaction.kind {
                    InteractionKind::Integration(call) => call,
                    InteractionKind::Question(question) => {
                        self.question(dialog, &interaction.name, question, &at(&[]));
                        continue;
                    }
                    InteractionKind::Text(_) => continue,
                };
                if !integration_names.contains(&call.integration.as_str()) {
                    let help = did_you_mean(&call.integration, integration_names.iter().copied());
                    let diagnostic = self.error(
                        Code::UnknownIntegration,
                        &at(&doc_path!["integration"]),
                        At::Value,
                        format!("no integration is named `{}`", call.integration),
                    );
                    diagnostic.label = Some("not defined under `integrations`".to_owned());
                    diagnostic.help = help;
                }
                for (r, rule) in call.rules.iter().enumerate() {
                    if let Some(next) = &rule.next {
                        self.next_action(next, &at(&doc_path!["rules", r, "next"]));
                    }
                    for (c, condition) in rule.when.conditions.iter().enumerate() {
                        let path = at(&doc_path!["rules", r, "match", "conditions", c]);
                        self.condition(condition, &path);
                    }
                }
            }
        }
    }

    /// A question's choices, buttons or cards, and its rules: what they
    /// match, what they capture, where they lead.
    fn question(&mut self, dialog: &Dialog, name: &str, question: &Question, base: &[Step]) {
        let at = |rest: &[Step]| [base, rest].concat();
        self.asked(&question.ask, base);
        let kind = question_kind(&question.ask);
        let is_multiple_choice = matches!(question.ask, Ask::MultipleChoice(_));
        let sends_payloads = sends_payloads(&question.ask);
        for (r, rule) in question.rules.iter().enumerate() {
            let rule_at = |rest: &[Step]| at(&[doc_path!["rules", r].as_slice(), rest].concat());
            if let Some(next) = &rule.next {
                self.next_action(next, &rule_at(&doc_path!["next"]));
            }
            for (c, condition) in rule.conditions.iter().enumerate() {
                self.condition(condition, &rule_at(&doc_path!["match", "conditions", c]));
            }
            match &rule.when {
                AnswerMatch::Options(_) if !is_multiple_choice => {
                    self.error(
                        Code::QuestionKindMismatch,
                        &rule_at(&doc_path!["match", "options"]),
                        At::Key,
                        format!(
                            "`options` picks among a multiple choice question's choices; `{name}` is a {kind}"
                        ),
                    )
                    .help = Some(
                        "match the answer with `exact`, `pattern`, `regex` or `payload`, or make the question `type: multiple-choice`"
                            .to_owned(),
                    );
                }
                AnswerMatch::Options(options) if !question.choices().is_empty() => {
                    for (o, option) in options.iter().enumerate() {
                        self.option(
                            name,
                            question.choices(),
                            option,
                            &rule_at(&doc_path!["match", "options", o]),
                        );
                    }
                }
                AnswerMatch::Payload(_) if !sends_payloads => {
                    self.warn(
                        Code::PayloadNeverSent,
                        &rule_at(&doc_path!["match", "payload"]),
                        At::Key,
                        format!(
                            "no button or quick reply of `{name}` ({kind}) sends a payload, so only an answer typed exactly as one matches"
                        ),
                    )
                    .help = Some(
                        "give the question `buttons` or `quickReplies` with these payloads, or match the typed answer with `exact` or `pattern`"
                            .to_owned(),
                    );
                }
                _ => {}
            }
            for (c, capture) in rule.set.iter().enumerate() {
                let capture_at = |field: &str| rule_at(&doc_path!["set", c, field]);
                match &capture.source {
                    CaptureSource::Group(group) => {
                        self.group(&rule.when, group, &capture_at("group"))
                    }
                    CaptureSource::Choice if !is_multiple_choice => {
                        self.error(
                            Code::QuestionKindMismatch,
                            &capture_at("from"),
                            At::Value,
                            format!(
                                "`from: choice` stores the picked choice of a multiple choice question; `{name}` is a {kind}, so it stores empty text"
                            ),
                        )
                        .help = Some("store the answer as written: `from: answer`".to_owned());
                    }
                    CaptureSource::Payload
                        if !sends_payloads && !matches!(rule.when, AnswerMatch::Payload(_)) =>
                    {
                        self.warn(
                            Code::PayloadNeverSent,
                            &capture_at("from"),
                            At::Value,
                            format!(
                                "no button or quick reply of `{name}` ({kind}) sends a payload, so this stores the answer as written"
                            ),
                        )
                        .help = Some(
                            "store the answer with `from: answer`, or give the question `buttons` or `quickReplies`"
                                .to_owned(),
                        );
                    }
                    _ => {}
                }
                if let CaptureTarget::Slot(slot) = &capture.target
                    && !dialog.slots.contains(slot)
                {
                    let elsewhere = self
                        .bot
                        .dialogs
                        .iter()
                        .find(|other| other.slots.contains(slot))
                        .map(|other| format!(" (dialog `{}` has its own)", other.name));
                    let help = match did_you_mean(slot, dialog.slots.iter().map(String::as_str)) {
                        Some(typo) => {
                            format!("{typo} Otherwise declare it under the dialog's `slots`")
                        }
                        None => format!(
                            "declare it under the dialog's `slots`{}",
                            elsewhere.unwrap_or_default()
                        ),
                    };
                    let diagnostic = self.error(
                        Code::UnknownSlot,
                        &capture_at("slot"),
                        At::Value,
                        format!("dialog `{}` declares no slot `{slot}`", dialog.name),
                    );
                    diagnostic.label = Some("not listed in the dialog's `slots`".to_owned());
                    diagnostic.help = Some(help);
                }
            }
        }
        if let Some(next) = question.no_match.as_ref().and_then(|no| no.next.as_ref()) {
            self.next_action(next, &at(&doc_path!["noMatch", "next"]));
        }
    }

    /// A question has something to pick from: choices (each different),
    /// buttons, quick replies, or one to ten cards.
    fn asked(&mut self, ask: &Ask, base: &[Step]) {
        let at = |rest: &[Step]| [base, rest].concat();
        let (field, what, count) = match ask {
            Ask::Text => return,
            Ask::MultipleChoice(choice) => {
                ("choices", "multiple choice question", choice.choices.len())
            }
            Ask::Buttons(buttons) => ("buttons", "button question", buttons.len()),
            Ask::QuickReplies(replies) => ("quickReplies", "quick reply question", replies.len()),
            Ask::Structured(cards) => ("cards", "structured question", cards.len()),
        };
        if count == 0 {
            let item = match ask {
                Ask::MultipleChoice(_) => "choice",
                Ask::Buttons(_) => "button",
                Ask::QuickReplies(_) => "quick reply",
                _ => "card",
            };
            self.error(
                Code::InvalidQuestion,
                &at(&doc_path![field]),
                At::Value,
                format!("a {what} needs at least one {item}; `{field}` is empty"),
            )
            .help = Some(format!(
                "list them under `{field}`, or make it a text question: `type: question`"
            ));
            return;
        }
        match ask {
            Ask::MultipleChoice(choice) => {
                for (i, text) in choice.choices.iter().enumerate() {
                    let Some(first) = choice.choices[..i]
                        .iter()
                        .position(|earlier| same_text(earlier, text))
                    else {
                        continue;
                    };
                    let diagnostic = self.error(
                        Code::InvalidQuestion,
                        &at(&doc_path!["choices", i]),
                        At::Value,
                        format!(
                            "choice {} is the same as choice {}, `{}`",
                            i + 1,
                            first + 1,
                            choice.choices[first]
                        ),
                    );
                    diagnostic.label = Some("case and surrounding spaces do not count".to_owned());
                    diagnostic.help = Some(
                        "the user picks a choice by its text, so no answer could pick this one; remove it or reword it"
                            .to_owned(),
                    );
                }
            }
            Ask::Structured(cards) if cards.len() > MAX_CARDS => {
                let extra = self.line_of(&at(&doc_path!["cards", MAX_CARDS]));
                let diagnostic = self.error(
                    Code::InvalidQuestion,
                    &at(&doc_path!["cards"]),
                    At::Key,
                    format!(
                        "a structured question has at most {MAX_CARDS} cards; this one has {}",
                        cards.len()
                    ),
                );
                diagnostic.label = Some(format!("card {} is on line {extra}", MAX_CARDS + 1));
                diagnostic.help = Some(format!(
                    "the product shows at most {MAX_CARDS} tiles: split the cards over two questions"
                ));
            }
            _ => {}
        }
    }

    /// An `options` entry names one of the question's choices.
    fn option(&mut self, name: &str, choices: &[String], option: &ChoiceRef, path: &[Step]) {
        if option.index(choices).is_some() {
            return;
        }
        let count = choices.len();
        let (message, help) = match option {
            ChoiceRef::Number(number) => (
                format!("`{name}` has no choice {number}: it has {count}, numbered 1 to {count}"),
                None,
            ),
            ChoiceRef::Title(title) => {
                let number = title
                    .trim()
                    .trim_end_matches(['.', ')'])
                    .parse::<usize>()
                    .ok();
                let help = match number {
                    Some(number) if (1..=count).contains(&number) => Some(format!(
                        "to name choice {number} by its number, write it without quotes: `{number}`"
                    )),
                    _ => did_you_mean(title, choices.iter().map(String::as_str)),
                };
                (format!("`{name}` has no choice `{title}`"), help)
            }
        };
        let diagnostic = self.error(Code::UnknownChoice, path, At::Value, message);
        diagnostic.label = Some("expected a choice's text or its number (from 1)".to_owned());
        diagnostic.help = help.or_else(|| {
            Some(format!(
                "the choices are {}",
                choices
                    .iter()
                    .enumerate()
                    .map(|(i, choice)| format!("{} `{choice}`", i + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        });
    }

    /// A capture's `group` names a named group of its rule's `regex`.
    fn group(&mut self, when: &AnswerMatch, group: &str, path: &[Step]) {
        let AnswerMatch::Regex(regex) = when else {
            self.error(
                Code::UnknownGroup,
                path,
                At::Value,
                format!(
                    "`group` takes a named group of the rule's `regex`; this rule matches by `{}`",
                    answer_match_key(when)
                ),
            )
            .help = Some(
                "store the answer with `from: answer`, or match with a `regex` that names the group"
                    .to_owned(),
            );
            return;
        };
        let names: Vec<&str> = regex.regex().capture_names().flatten().collect();
        if names.contains(&group) {
            return;
        }
        let help = did_you_mean(group, names.iter().copied()).or_else(|| {
            Some(if names.is_empty() {
                format!("name a group in the regex: `(?P<{group}>...)`")
            } else {
                format!(
                    "its named groups are {}",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        });
        let diagnostic = self.error(
            Code::UnknownGroup,
            path,
            At::Value,
            format!("the rule's `regex` has no group named `{group}`"),
        );
        diagnostic.label = Some("stores empty text".to_owned());
        diagnostic.help = help;
    }

    fn next_action(&mut self, next: &NextAction, path: &[Step]) {
        match next {
            NextAction::Interaction(name) if self.interaction(name).is_none() => {
                let names: Vec<&str> = self
                    .bot
                    .interactions()
                    .map(|(_, i)| i.name.as_str())
                    .chain(NextAction::KEYWORDS.iter().copied())
                    .collect();
                let help = did_you_mean(name, names);
                let diagnostic = self.error(
                    Code::UnknownInteraction,
                    path,
                    At::Value,
                    format!("no interaction is named `{name}`"),
                );
                diagnostic.label = Some(
                    "expected an interaction name, next, end, close-dialog, close-conversation or dialog:NAME"
                        .to_owned(),
                );
                diagnostic.help = help;
            }
            NextAction::Dialog(name) if !self.bot.dialogs.iter().any(|d| &d.name == name) => {
                let help = did_you_mean(name, self.bot.dialogs.iter().map(|d| d.name.as_str()));
                self.error(
                    Code::UnknownDialog,
                    path,
                    At::Value,
                    format!("no dialog is named `{name}`"),
                )
                .help = help;
            }
            _ => {}
        }
    }

    fn declares_slot(&self, name: &str) -> bool {
        self.bot
            .dialogs
            .iter()
            .any(|dialog| dialog.slots.iter().any(|slot| slot == name))
    }

    fn interaction(&self, name: &str) -> Option<(usize, usize)> {
        self.bot.dialogs.iter().enumerate().find_map(|(d, dialog)| {
            let k = dialog.interactions.iter().position(|i| i.name == name)?;
            Some((d, k))
        })
    }

    fn condition(&mut self, condition: &crate::model::Condition, path: &[Step]) {
        let field = |name: &str| {
            let mut field_path = path.to_vec();
            field_path.push(Step::from(name));
            field_path
        };
        let subject = match (&condition.variable, &condition.field) {
            (Some(_), None) | (None, Some(_)) => None,
            _ => Some("a condition tests exactly one of `variable` and `field`".to_owned()),
        };
        let operand = match condition.op {
            ConditionOp::Matches if condition.pattern.is_none() || condition.value.is_some() => {
                Some("`op: matches` takes a `pattern` and no `value`".to_owned())
            }
            ConditionOp::Empty | ConditionOp::NotEmpty
                if condition.value.is_some() || condition.pattern.is_some() =>
            {
                Some("`empty` and `not-empty` take no `value` or `pattern`".to_owned())
            }
            op if op.takes_value()
                && (condition.value.is_none() || condition.pattern.is_some()) =>
            {
                Some("this comparison takes a `value` and no `pattern`".to_owned())
            }
            _ => None,
        };
        for problem in subject.into_iter().chain(operand) {
            self.error(Code::InvalidCondition, &field("op"), At::Key, problem);
        }
        if let Some(field_name) = &condition.field {
            if let Some(field_ref) = field_name.reference() {
                self.field_reference(field_ref, &field("field"));
            } else {
                self.error(
                    Code::InvalidCondition,
                    &field("field"),
                    At::Value,
                    format!("`{field_name}` is not a field reference"),
                )
                .help = Some("write it as RDVN.key, RDVN.key.count or RDVN.key[N]".to_owned());
            }
        }
    }

    /// Warns when a `{RDVN.key}` reference names no integration or field.
    fn field_reference(&mut self, field: &crate::template::FieldRef, path: &[Step]) -> bool {
        let owner = self.bot.integrations.iter().find(|integration| {
            integration.response_data_variable == field.owner || integration.name == field.owner
        });
        let Some(integration) = owner else {
            let owners = self
                .bot
                .integrations
                .iter()
                .map(|i| i.response_data_variable.as_str());
            let help = did_you_mean(&field.owner, owners);
            self.warn(
                Code::UnknownReference,
                path,
                At::Value,
                format!(
                    "no integration has the response data variable `{}`",
                    field.owner
                ),
            )
            .help = help;
            return false;
        };
        if integration.custom_data_fields.contains_key(&field.key) {
            return true;
        }
        let keys = integration.custom_data_fields.keys().map(String::as_str);
        let help = did_you_mean(&field.key, keys);
        self.warn(
            Code::UnknownReference,
            path,
            At::Value,
            format!(
                "integration `{}` has no custom data field `{}`",
                integration.name, field.key
            ),
        )
        .help = help;
        false
    }

    fn templates(&mut self) {
        let mut templates: Vec<(Path, &Template)> = Vec::new();
        let bot = self.bot;
        if let Some(message) = &bot.default_failure_message {
            templates.push((doc_path!["defaultFailureMessage"], message));
        }
        for (i, integration) in bot.integrations.iter().enumerate() {
            templates.push((doc_path!["integrations", i, "url"], &integration.url));
            if let Some(body) = &integration.body {
                templates.push((doc_path!["integrations", i, "body"], body));
            }
            for (key, value) in &integration.headers {
                templates.push((doc_path!["integrations", i, "headers", key], value));
            }
            for (key, value) in &integration.params {
                templates.push((doc_path!["integrations", i, "params", key], value));
            }
        }
        for (i, credential) in bot.credentials.iter().enumerate() {
            for (field, template) in credential_templates(&credential.kind) {
                templates.push((doc_path!["credentials", i, field], template));
            }
        }
        for (d, dialog) in bot.dialogs.iter().enumerate() {
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                let base = doc_path!["dialogs", d, "interactions", k];
                let with = |rest: Path| [base.clone(), rest].concat();
                match &interaction.kind {
                    InteractionKind::Text(text) => {
                        templates.push((with(doc_path!["text"]), &text.text));
                    }
                    InteractionKind::Question(question) => {
                        if let Some(text) = &question.text {
                            templates.push((with(doc_path!["text"]), text));
                        }
                        if let crate::Ask::Structured(cards) = &question.ask {
                            for (c, card) in cards.iter().enumerate() {
                                templates.push((with(doc_path!["cards", c, "title"]), &card.title));
                                if let Some(subtitle) = &card.subtitle {
                                    templates
                                        .push((with(doc_path!["cards", c, "subtitle"]), subtitle));
                                }
                            }
                        }
                        if let Some(message) = question
                            .no_match
                            .as_ref()
                            .and_then(|no| no.message.as_ref())
                        {
                            templates.push((with(doc_path!["noMatch", "message"]), message));
                        }
                        for (r, rule) in question.rules.iter().enumerate() {
                            for (m, message) in rule.messages.iter().enumerate() {
                                templates
                                    .push((with(doc_path!["rules", r, "messages", m]), message));
                            }
                            for (c, capture) in rule.set.iter().enumerate() {
                                if let crate::CaptureSource::Value(value) = &capture.source {
                                    templates.push((
                                        with(doc_path!["rules", r, "set", c, "value"]),
                                        value,
                                    ));
                                }
                            }
                            for (c, condition) in rule.conditions.iter().enumerate() {
                                if let Some(value) = &condition.value {
                                    let path = with(doc_path![
                                        "rules",
                                        r,
                                        "match",
                                        "conditions",
                                        c,
                                        "value"
                                    ]);
                                    templates.push((path, value));
                                }
                            }
                        }
                    }
                    InteractionKind::Integration(call) => {
                        for (r, rule) in call.rules.iter().enumerate() {
                            for (m, message) in rule.messages.iter().enumerate() {
                                templates
                                    .push((with(doc_path!["rules", r, "messages", m]), message));
                            }
                            for (c, condition) in rule.when.conditions.iter().enumerate() {
                                if let Some(value) = &condition.value {
                                    let path = with(doc_path![
                                        "rules",
                                        r,
                                        "match",
                                        "conditions",
                                        c,
                                        "value"
                                    ]);
                                    templates.push((path, value));
                                }
                            }
                        }
                    }
                }
            }
        }
        for (i, integration) in bot.integrations.iter().enumerate() {
            for (key, field) in &integration.custom_data_fields {
                if let crate::field_path::CompiledPath::Dynamic(template) = field.compiled() {
                    templates.push((
                        doc_path!["integrations", i, "customDataFields", key],
                        template,
                    ));
                }
            }
        }
        for (path, template) in templates {
            self.references(template, &path);
        }
    }

    fn references(&mut self, template: &Template, path: &[Step]) {
        for reference in template.references() {
            let first = self.found.len();
            match reference {
                Reference::Unknown(body) => {
                    let head = body
                        .trim_start_matches('$')
                        .split('.')
                        .next()
                        .unwrap_or(body);
                    let help =
                        did_you_mean(head, SystemVariable::NAMES.iter().copied()).or_else(|| {
                            Some(
                                "see docs/config.md for the references a template may use"
                                    .to_owned(),
                            )
                        });
                    self.warn(
                        Code::UnknownReference,
                        path,
                        At::Value,
                        format!("`{{{body}}}` is not a reference patchbay knows; it renders as empty text"),
                    )
                    .help = help;
                }
                Reference::Env(name) if !self.bot.env.contains_key(name) => {
                    let help = did_you_mean(name, self.bot.env.keys().map(String::as_str))
                        .or_else(|| Some(format!("declare it under `env:` (`{name}: null` if it is supplied at run time)")));
                    self.warn(
                        Code::UnknownReference,
                        path,
                        At::Value,
                        format!("environment variable `{name}` is not declared under `env`"),
                    )
                    .help = help;
                }
                Reference::Field(field) => {
                    self.field_reference(field, path);
                }
                Reference::Slot(name) if !self.declares_slot(name) => {
                    let declared = self
                        .bot
                        .dialogs
                        .iter()
                        .flat_map(|dialog| dialog.slots.iter().map(String::as_str));
                    let help = did_you_mean(name, declared).unwrap_or_else(|| {
                        format!(
                            "declare it under a dialog's `slots` (`slots: [{name}]`) and capture it in a question's rule (`set: [{{slot: {name}}}]`)"
                        )
                    });
                    self.warn(
                        Code::UnfilledSlot,
                        path,
                        At::Value,
                        format!("no dialog declares slot `{name}`: `{{$botContext.slot.{name}}}` always renders as empty text"),
                    )
                    .help = Some(help);
                }
                _ => {}
            }
            let written = reference.to_string();
            if let Some(span) = self.locator.within_value(path, &written) {
                for diagnostic in &mut self.found[first..] {
                    diagnostic.span = span.clone();
                }
            }
        }
    }

    /// Calls to `botContext` functions that patchbay's `botContext` does
    /// not have (the script would stop there with a TypeError), and calls
    /// to one it has with an argument count outside its signature.
    fn bot_context_calls(&mut self, script: &str, path: &[Step]) {
        let value = self.span(path, At::Value);
        for call in bot_context_calls(script) {
            let name = call.name;
            let function = crate::bot_context_function(name);
            let wrong_count = function.and_then(|function| {
                call.arguments
                    .filter(|given| !(function.min_args..=function.max_args).contains(given))
                    .map(|given| (function, given))
            });
            if function.is_some() && wrong_count.is_none() {
                continue;
            }
            let before = &script[..call.offset];
            let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
            let line = before.matches('\n').count() + 1;
            // The file offset is found by bytes; the label counts characters.
            let byte_column = call.offset - line_start + 1;
            let column = before[line_start..].chars().count() + 1;
            let text = self.locator.text();
            let start = crate::diagnostic::script_offset(text, value.clone(), line, byte_column);
            // The mapping is exact in block scalars (`|`) and on a flow
            // scalar's first line; elsewhere (escapes, folding) the first
            // place the name is written in the value stands in.
            let span = if text.get(start..).is_some_and(|rest| rest.starts_with(name)) {
                start..start + name.len()
            } else {
                self.locator
                    .within_value(path, name)
                    .unwrap_or_else(|| value.clone())
            };
            let at = format!("script line {line}, column {column}");
            let diagnostic = match wrong_count {
                Some((function, given)) => wrong_argument_count(function, given, span, &at),
                None => unknown_function(name, span, at),
            };
            self.found.push(diagnostic);
        }
    }

    fn scripts(&mut self) {
        let mut scripts: Vec<(Path, &str)> = Vec::new();
        for (i, integration) in self.bot.integrations.iter().enumerate() {
            if let Some(script) = &integration.transform_script {
                scripts.push((doc_path!["integrations", i, "transformScript"], script));
            }
        }
        for (d, dialog) in self.bot.dialogs.iter().enumerate() {
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                for (field, script) in interaction.kind.scripts() {
                    scripts.push((doc_path!["dialogs", d, "interactions", k, field], script));
                }
            }
        }
        for (path, script) in scripts {
            self.bot_context_calls(script, &path);
            if let Some(variable) = persisted_forever(script) {
                self.warn(
                    Code::PersistForever,
                    &path,
                    At::Value,
                    format!("this script keeps `{variable}` forever (per user, across conversations)"),
                )
                .help = Some(
                    "API data rarely belongs to the user for ever; pass `false` as the fourth argument unless it must"
                        .to_owned(),
                );
            }
        }
    }

    fn reachability(&mut self) {
        let bot = self.bot;
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        let first_of = |dialog: &str| {
            bot.dialogs
                .iter()
                .find(|d| d.name == dialog)
                .and_then(|d| d.interactions.first())
                .map(|i| i.name.as_str())
        };
        for dialog in &bot.dialogs {
            queue.extend(dialog.interactions.first().map(|i| i.name.as_str()));
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                let following = dialog.interactions.get(k + 1).map(|i| i.name.as_str());
                let mut nexts = vec![&interaction.next];
                let mut targets = Vec::new();
                match &interaction.kind {
                    InteractionKind::Integration(call) => nexts.extend(
                        call.rules
                            .iter()
                            .map(|rule| rule.next.as_ref().unwrap_or(&interaction.next)),
                    ),
                    InteractionKind::Question(question) => {
                        nexts.extend(
                            question
                                .rules
                                .iter()
                                .map(|rule| rule.next.as_ref().unwrap_or(&interaction.next)),
                        );
                        nexts.extend(question.no_match.as_ref().and_then(|no| no.next.as_ref()));
                    }
                    InteractionKind::Text(_) => {}
                }
                for (_, script) in interaction.kind.scripts() {
                    targets.extend(triggered(script));
                }
                targets.extend(nexts.into_iter().filter_map(|next| match next {
                    NextAction::Next => following,
                    NextAction::Interaction(name) => Some(name.as_str()),
                    NextAction::Dialog(name) => first_of(name),
                    NextAction::End | NextAction::CloseDialog | NextAction::CloseConversation => {
                        None
                    }
                }));
                edges.insert(&interaction.name, targets);
            }
        }
        for integration in &bot.integrations {
            if let Some(script) = &integration.transform_script {
                queue.extend(triggered(script));
            }
        }
        let mut reached: HashSet<&str> = HashSet::new();
        while let Some(name) = queue.pop_front() {
            if reached.insert(name) {
                queue.extend(edges.get(name).into_iter().flatten());
            }
        }
        let unreached: Vec<(String, Path)> = self
            .interaction_paths()
            .filter(|(name, _)| !reached.contains(name))
            .map(|(name, path)| (name.to_owned(), path))
            .collect();
        for (name, path) in unreached {
            self.warn(
                Code::UnreachableInteraction,
                &path,
                At::Value,
                format!("interaction `{name}` is never reached"),
            )
            .help = Some(
                "no dialog starts with it and no next action, rule or trigger leads to it"
                    .to_owned(),
            );
        }
    }
}

/// The most cards a structured question shows (the product's "maximum of
/// 10 tiles").
const MAX_CARDS: usize = 10;

/// A question kind as a message names it.
fn question_kind(ask: &Ask) -> &'static str {
    match ask {
        Ask::Text => "text question",
        Ask::MultipleChoice(_) => "multiple choice question",
        Ask::Buttons(_) => "button question",
        Ask::QuickReplies(_) => "quick reply question",
        Ask::Structured(_) => "structured question",
    }
}

/// Whether a click on the question can send a payload: a choice, a button
/// or quick reply that is not only a web link, a card's button.
fn sends_payloads(ask: &Ask) -> bool {
    let clickable = |buttons: &[Button]| {
        buttons
            .iter()
            .any(|button| button.url.is_none() || button.payload.is_some())
    };
    match ask {
        Ask::Text => false,
        Ask::MultipleChoice(_) => true,
        Ask::Buttons(buttons) | Ask::QuickReplies(buttons) => clickable(buttons),
        Ask::Structured(cards) => cards.iter().any(|card| clickable(&card.buttons)),
    }
}

/// The key of an answer match as written in the file.
fn answer_match_key(when: &AnswerMatch) -> &'static str {
    match when {
        AnswerMatch::Pattern(_) => "pattern",
        AnswerMatch::Regex(_) => "regex",
        AnswerMatch::Exact(_) => "exact",
        AnswerMatch::Options(_) => "options",
        AnswerMatch::Payload(_) => "payload",
        AnswerMatch::NoMatch => "noMatch",
    }
}

fn credential_templates(kind: &CredentialKind) -> Vec<(&'static str, &Template)> {
    match kind {
        CredentialKind::Basic(basic) => {
            vec![("username", &basic.username), ("password", &basic.password)]
        }
        CredentialKind::AccessToken(token) => vec![("token", &token.token)],
        CredentialKind::OAuth2(oauth) => {
            let mut templates = vec![
                ("clientId", &oauth.client_id),
                ("tokenUrl", &oauth.token_url),
            ];
            templates.extend(oauth.client_secret.as_ref().map(|t| ("clientSecret", t)));
            templates.extend(oauth.auth_url.as_ref().map(|t| ("authUrl", t)));
            templates
        }
        CredentialKind::MutualTls(_) | CredentialKind::ApiKey(_) | CredentialKind::OAuth1(_) => {
            kind.secrets()
        }
    }
}

/// What kind of address the network guard refuses `ip` as, or `None` for
/// a public one (the ranges of `patchbay_transport`'s guard, spec
/// section 6).
fn non_public(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            return if v6.is_loopback() {
                Some("loopback")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified()
                || (first & 0xff00) == 0xff00
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]
            {
                Some("reserved")
            } else {
                None
            };
        }
    };
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() {
        Some("private")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if a == 0
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 192 && b == 0 && v4.octets()[2] == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 224
    {
        Some("reserved")
    } else {
        None
    }
}

/// Whether `network.allow` opens `host`: by name (for `localhost`), or
/// by an address or CIDR range holding it (for `localhost`, 127.0.0.1 or
/// ::1).
fn allowed_by_network(host: &url::Host, allow: &[String]) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let addresses: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
        url::Host::Domain(_) => vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    };
    allow.iter().any(|entry| {
        let entry = entry.trim();
        if let url::Host::Domain(name) = host
            && entry
                .trim_end_matches('.')
                .eq_ignore_ascii_case(name.trim_end_matches('.'))
        {
            return true;
        }
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, prefix.parse::<u32>().ok()),
            None => (entry, None),
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        let Ok(network) = address.parse::<IpAddr>() else {
            return false;
        };
        addresses
            .iter()
            .any(|ip| in_network(canonical(*ip), canonical(network), prefix))
    })
}

/// An IPv4-mapped IPv6 address as its IPv4 address.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        std::net::IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is in `network/prefix` (the whole address without a
/// prefix).
fn in_network(ip: std::net::IpAddr, network: std::net::IpAddr, prefix: Option<u32>) -> bool {
    use std::net::IpAddr;
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let prefix = prefix.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let prefix = prefix.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// A host as written in `network.allow` and messages.
fn host_text(host: &url::Host) -> String {
    match host {
        url::Host::Ipv6(ip) => ip.to_string(),
        other => other.to_string(),
    }
}

/// Names of query parameters that usually carry secrets.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "accesskey",
        "signature",
        "auth",
    ]
    .iter()
    .any(|word| name.contains(word))
        || name == "key"
        || name == "sig"
}

/// `FAQ_KB_PASSWORD` for credential `faq-kb`, field `password`.
fn to_env_name(credential: &str, field: &str) -> String {
    let mut name = String::new();
    for c in credential.chars().chain(['_']).chain(field.chars()) {
        if c.is_ascii_uppercase() && !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    name
}

/// `unknown-function`: a call to a function patchbay's `botContext` does
/// not have, with a did-you-mean when it is a letter or two from one.
fn unknown_function(name: &str, span: Range<usize>, at: String) -> Diagnostic {
    // A typo is a letter or two away; a product function patchbay has not
    // built is not a typo of another.
    let typo_of = crate::BOT_CONTEXT_FUNCTIONS
        .iter()
        .map(|known| (strsim::damerau_levenshtein(name, known.name), known.name))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    let help = match typo_of {
        Some((_, known)) => format!("did you mean `{known}`?"),
        None => "docs/botcontext.md lists every function of the product's botContext".to_owned(),
    };
    Diagnostic::new(
        Severity::Warning,
        Code::UnknownFunction,
        format!(
            "`botContext.{name}` is not a function here: the script stops with a TypeError when it reaches this call"
        ),
        span,
    )
    .with_label(at)
    .with_help(Some(help))
}

/// `wrong-argument-count`: a call to a `botContext` function with fewer
/// or more arguments than its signature has.
fn wrong_argument_count(
    function: &crate::BotContextFunction,
    given: usize,
    span: Range<usize>,
    at: &str,
) -> Diagnostic {
    let name = function.name;
    let takes = match (function.min_args, function.max_args) {
        (0, 0) => "no arguments".to_owned(),
        (1, 1) => "1 argument".to_owned(),
        (min, max) if min == max => format!("{min} arguments"),
        (0, max) => format!("at most {max} arguments"),
        (min, max) => format!("{min} to {max} arguments"),
    };
    let passes = match given {
        0 => "none".to_owned(),
        1 => "1".to_owned(),
        given => given.to_string(),
    };
    let signature = signature(name).unwrap_or(name);
    let help = if given < function.min_args {
        "a call with too few arguments throws a TypeError: the script stops here".to_owned()
    } else {
        format!("remove the extra arguments: no form of `{name}` takes more")
    };
    Diagnostic::new(
        Severity::Warning,
        Code::WrongArgumentCount,
        format!("`botContext.{name}` takes {takes}; this call passes {passes}"),
        span,
    )
    .with_label(format!("{at}: `{signature}`"))
    .with_help(Some(help))
}

/// Each `botContext` function's signature, with the product's argument
/// names; arguments after `[` may be left out (docs/botcontext.md has the
/// same signatures, and a test holds the two together).
const SIGNATURES: &[&str] = &[
    "getBotVariable(name)",
    "setBotVariable(name, value[, persistForSession, persistForever])",
    "getCurrentUserMessage()",
    "setBotTransferIntentbyDomain(intentName, domainName)",
    "setBotTransferIntentId(value)",
    "setBotTransferUserMessage(value)",
    "getEnvVariable(name)",
    "getChatBotId()",
    "getConversationId()",
    "getLPAccountId()",
    "getLPEngagementAttribute(arg)",
    "getMetadata(metadataEventTypeName)",
    "getDialogStarterIntent()",
    "getNamedEntities(entity_name)",
    "getNlpResponse()",
    "getSentiment()",
    "getQuickReplyPayload()",
    "getDisambiguatedIntentName()",
    "getDisambiguatedIntentId()",
    "getWebViewVariable(variableName)",
    "getWebViewVariables()",
    "getHoursType(hoursSpec, zoneIdStr)",
    "setMessageDelay(delay_value)",
    "setAllowMaxTextResponse(value)",
    "setTriggerNextMessage(messagename)",
    "evaluateOptions(userResponse, options)",
    "addQuickReplies(array)",
    "getButtonPayload()",
    "sendMessage(message)",
    "sendMessages(messages)",
    "sendMessageWithQuickReplies(message, quickReplies)",
    "sendImmediateReply(message)",
    "getUserChannel()",
    "getUserPlatformId()",
    "getLPUserPersonalInfo()",
    "getLPCustomerInfo()",
    "isApiExecutionSuccessful()",
    "getApiStatusCode()",
    "getFileCaption()",
    "getFileType()",
    "logCustomEvent(user_message, event_name[, event_detail])",
    "printDebugMessage(message)",
    "askMaven([conversationId, consumerId, groupId])",
    "isContextApiEnabled()",
    "registerContextNamespace(namespace[, ttl])",
    "deleteContextNamespace(namespace)",
    "setGlobalContextData(namespace, property, value)",
    "setContextDataForUser(namespace, property, value)",
    "setContextDataForConversation(namespace, property, value)",
    "getGlobalContextData(namespace, property)",
    "getContextDataForUser(namespace[, property])",
    "getContextDataForConversation(namespace[, property])",
    "deleteGlobalContextData(namespace, property)",
    "deleteContextDataForUser(namespace, property)",
    "deleteContextDataForConversation(namespace, property)",
    "deleteAllContextDataForUser(namespace)",
    "deleteAllContextDataForConversation(namespace)",
    "getChannel()",
    "addQuickReples(array)",
    "logEscalationEvent(user_message, escalation_type)",
    "getSlotValue(name)",
    "setSlotValue(name, value)",
];

/// The signature of the function of that name.
fn signature(name: &str) -> Option<&'static str> {
    SIGNATURES.iter().copied().find(|signature| {
        signature
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('('))
    })
}

/// A call to a `botContext` function found in a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BotContextCall<'a> {
    /// The byte offset of the name in the script.
    offset: usize,
    /// The function's name.
    name: &'a str,
    /// How many arguments the call passes; `None` when the scan cannot
    /// tell (a spread `...args`, a call the script does not close).
    arguments: Option<usize>,
}

/// The `botContext` functions a script calls: `botContext.name(...)` and
/// `botContext["name"](...)` (any spacing, comments between), with how many
/// arguments each call passes. A scan of the script's tokens, not a parse:
/// strings, template literals, regular expressions and comments are read
/// as such (a call written inside one is not a call), and calls through
/// another name (`var b = botContext; b.name()`) or a computed one
/// (`botContext[name]()`) are not seen.
fn bot_context_calls(script: &str) -> Vec<BotContextCall<'_>> {
    let tokens = tokens(script);
    let mut found = Vec::new();
    for (k, &(_, token)) in tokens.iter().enumerate() {
        if token != Token::Word("botContext") {
            continue;
        }
        let at = |i: usize| tokens.get(k + i).map(|&(_, token)| token);
        let (offset, name, open) = match (at(1), at(2), at(3)) {
            (Some(Token::Punct(".")), Some(Token::Word(name)), _) => (tokens[k + 2].0, name, 3),
            (Some(Token::Punct("[")), Some(Token::Quoted(name)), Some(Token::Punct("]")))
                if !name.contains('\\') =>
            {
                (tokens[k + 2].0 + 1, name, 4)
            }
            _ => continue,
        };
        if name.is_empty() || at(open) != Some(Token::Punct("(")) {
            continue;
        }
        found.push(BotContextCall {
            offset,
            name,
            arguments: count_arguments(&tokens[k + open + 1..]),
        });
    }
    found
}

/// How many arguments a call passes, from the tokens after its `(`: the
/// commas outside any nested bracket, a trailing comma allowed. `None`
/// when unsure: a spread, brackets that do not match, no closing `)`.
fn count_arguments(tokens: &[(usize, Token<'_>)]) -> Option<usize> {
    let mut open: Vec<&str> = Vec::new();
    let mut commas = 0;
    // Whether anything was written since the `(` or the last comma.
    let mut written = false;
    for &(_, token) in tokens {
        match token {
            Token::Punct(bracket @ ("(" | "[" | "{" | "${")) => open.push(bracket),
            Token::Punct(")") if open.is_empty() => {
                return Some(if written { commas + 1 } else { commas });
            }
            Token::Punct(close @ (")" | "]" | "}")) => {
                let expected = match open.pop()? {
                    "(" => ")",
                    "[" => "]",
                    _ => "}",
                };
                if close != expected {
                    return None;
                }
            }
            Token::Punct(",") if open.is_empty() => {
                if !written {
                    return None;
                }
                commas += 1;
                written = false;
                continue;
            }
            Token::Punct("...") if open.is_empty() => return None,
            _ => {}
        }
        written = true;
    }
    None
}

/// A token of a script, as far as [`bot_context_calls`] needs one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A name, keyword or number.
    Word(&'a str),
    /// A `'...'` or `"..."` string: its text between the quotes, escapes
    /// as written.
    Quoted(&'a str),
    /// A piece of a template literal's text (its substitutions are tokens
    /// between `${` and `}`).
    Template,
    /// A regular expression literal.
    Regex,
    /// `...`, `${`, or one character of punctuation.
    Punct(&'a str),
}

/// The tokens of a script with the byte offset of each. Stops at the first
/// string, template, comment or regular expression that does not end (the
/// script does not parse; `script-syntax` reports it).
fn tokens(script: &str) -> Vec<(usize, Token<'_>)> {
    let bytes = script.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut found: Vec<(usize, Token<'_>)> = Vec::new();
    // For each open `{`: whether it is a template's `${`.
    let mut braces: Vec<bool> = Vec::new();
    let mut i = 0;
    // Where a template literal's text resumes (after `` ` `` or the `}` of
    // a substitution).
    let mut template_at: Option<usize> = None;
    loop {
        if let Some(start) = template_at.take() {
            let mut j = start;
            loop {
                match bytes.get(j) {
                    None => return found,
                    Some(b'\\') => j += 2,
                    Some(b'`') => {
                        found.push((start, Token::Template));
                        i = j + 1;
                        break;
                    }
                    Some(b'$') if bytes.get(j + 1) == Some(&b'{') => {
                        found.push((start, Token::Template));
                        found.push((j, Token::Punct("${")));
                        braces.push(true);
                        i = j + 2;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
        }
        let Some(&b) = bytes.get(i) else {
            return found;
        };
        let next = bytes.get(i + 1).copied();
        match b {
            _ if b.is_ascii_whitespace() => i += 1,
            b'/' if next == Some(b'/') => {
                i = script[i..].find('\n').map_or(bytes.len(), |end| i + end);
            }
            b'/' if next == Some(b'*') => match script[i + 2..].find("*/") {
                Some(end) => i = i + 2 + end + 2,
                None => return found,
            },
            b'"' | b'\'' => {
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None | Some(b'\n' | b'\r') => return found,
                        // A line continuation ends in `\r\n` or one of them.
                        Some(b'\\') if bytes[j + 1..].starts_with(b"\r\n") => j += 3,
                        Some(b'\\') => j += 2,
                        Some(&q) if q == b => break,
                        Some(_) => j += 1,
                    }
                }
                found.push((i, Token::Quoted(&script[i + 1..j])));
                i = j + 1;
            }
            b'`' => template_at = Some(i + 1),
            b'{' => {
                braces.push(false);
                found.push((i, Token::Punct("{")));
                i += 1;
            }
            b'}' => {
                found.push((i, Token::Punct("}")));
                if braces.pop() == Some(true) {
                    template_at = Some(i + 1);
                }
                i += 1;
            }
            b'.' if script[i..].starts_with("...") => {
                found.push((i, Token::Punct("...")));
                i += 3;
            }
            b'/' if regex_may_start(found.last().map(|&(_, token)| token)) => {
                match regex_end(bytes, i) {
                    Some(end) => {
                        found.push((i, Token::Regex));
                        i = end;
                    }
                    None => {
                        found.push((i, Token::Punct("/")));
                        i += 1;
                    }
                }
            }
            _ if is_word(b) => {
                let end = bytes[i..]
                    .iter()
                    .position(|&c| !is_word(c))
                    .map_or(bytes.len(), |length| i + length);
                found.push((i, Token::Word(&script[i..end])));
                i = end;
            }
            _ => {
                found.push((i, Token::Punct(&script[i..i + 1])));
                i += 1;
            }
        }
    }
}

/// Whether a `/` after this token starts a regular expression rather than
/// dividing.
fn regex_may_start(previous: Option<Token<'_>>) -> bool {
    match previous {
        None => true,
        Some(Token::Punct(punct)) => !matches!(punct, ")" | "]" | "}"),
        Some(Token::Word(word)) => matches!(
            word,
            "return"
                | "typeof"
                | "instanceof"
                | "in"
                | "of"
                | "new"
                | "delete"
                | "void"
                | "throw"
                | "case"
                | "do"
                | "else"
                | "yield"
                | "await"
        ),
        Some(Token::Quoted(_) | Token::Template | Token::Regex) => false,
    }
}

/// Where the regular expression literal starting at `start` (its `/`)
/// ends, flags included; `None` when none ends on its line.
fn regex_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    let mut in_class = false;
    loop {
        match bytes.get(j)? {
            b'\n' | b'\r' => return None,
            b'\\' => j += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'/' if !in_class => break,
            _ => {}
        }
        j += 1;
    }
    j += 1;
    while bytes
        .get(j)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    {
        j += 1;
    }
    Some(j)
}

/// The calls `fn_name(...)` in a script, as their top-level arguments.
fn calls<'a>(script: &'a str, fn_name: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let needle = format!("{fn_name}(");
    let mut rest = script;
    while let Some(at) = rest.find(&needle) {
        let args = &rest[at + needle.len()..];
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut start = 0;
        let mut parts = Vec::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in args.char_indices() {
            if let Some(q) = quote {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' if depth == 0 => {
                    parts.push(args[start..i].trim());
                    end = Some(i);
                    break;
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    parts.push(args[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        if end.is_some() {
            found.push(parts);
        }
        rest = &args[end.unwrap_or(0)..];
    }
    found
}

/// The first variable a script sets with `persistForever` true.
fn persisted_forever(script: &str) -> Option<String> {
    calls(script, "setBotVariable")
        .into_iter()
        .find(|args| args.get(3) == Some(&"true"))
        .map(|args| unquote(args.first().copied().unwrap_or_default()).to_owned())
}

/// Literal targets of `setTriggerNextMessage("...")` in a script.
fn triggered(script: &str) -> Vec<&str> {
    calls(script, "setTriggerNextMessage")
        .into_iter()
        .filter_map(|args| args.first().copied())
        .filter(|arg| arg.len() >= 2 && (arg.starts_with(['"', '\'', '`'])))
        .map(unquote)
        .collect()
}

fn unquote(text: &str) -> &str {
    text.trim_matches(|c| c == '"' || c == '\'' || c == '`')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_persist_forever_calls() {
        let script = r#"botContext.setBotVariable("a", f(1, 2), true, false);
            botContext.setBotVariable('kept', "x,y", true, true);"#;
        assert_eq!(persisted_forever(script).as_deref(), Some("kept"));
        assert_eq!(
            persisted_forever("setBotVariable('a', 'b', true, false)"),
            None
        );
    }

    #[test]
    fn finds_bot_context_calls_by_member_and_by_quoted_name() {
        let script = "botContext.sendMesage('a');\n  botContext . getBotVariable ('x');\nbotContext['setTrigger'](1); botContext[\"x y\"]();\nnotbotContext.f(); botContext.noCall; botContext[name]();\nbotContext /* c */ . /* d */ printDebugMessage // e\n (1)";
        let names: Vec<&str> = bot_context_calls(script)
            .into_iter()
            .map(|call| call.name)
            .collect();
        assert_eq!(
            names,
            vec![
                "sendMesage",
                "getBotVariable",
                "setTrigger",
                "x y",
                "printDebugMessage"
            ]
        );
        let calls = bot_context_calls(script);
        assert_eq!(&script[calls[0].offset..calls[0].offset + 10], "sendMesage");
        assert_eq!(&script[calls[2].offset..calls[2].offset + 10], "setTrigger");
    }

    /// The argument count of each `botContext` call in a script.
    fn counts(script: &str) -> Vec<(&str, Option<usize>)> {
        bot_context_calls(script)
            .into_iter()
            .map(|call| (call.name, call.arguments))
            .collect()
    }

    #[test]
    fn counts_arguments_through_nesting_strings_and_comments() {
        assert_eq!(
            counts(
                "botContext.a(); botContext.b(x); botContext.c(x, y,); botContext.d(f(1, 2), [3, 4], {e: 5, f: 6}, () => { g(7, 8); })"
            ),
            vec![
                ("a", Some(0)),
                ("b", Some(1)),
                ("c", Some(2)),
                ("d", Some(4))
            ]
        );
        assert_eq!(
            counts(
                r#"botContext.a("x, y)", 'it\'s, (', "\"),"); botContext.b(`t, ${f(1, `u, ${2}`)}, )`, 2)"#
            ),
            vec![("a", Some(3)), ("b", Some(2))]
        );
        assert_eq!(
            counts(
                "botContext.a(1 /* , ) */, // ,)\n 2); botContext.b(s.replace(/[,)]\\//g, ''), x / 2, y)"
            ),
            vec![("a", Some(2)), ("b", Some(3))]
        );
        // A call inside another's arguments is counted too.
        assert_eq!(
            counts(
                "botContext.setBotVariable('m', botContext.getBotVariable('a', 'b'), true, false)"
            ),
            vec![("setBotVariable", Some(4)), ("getBotVariable", Some(2))]
        );
    }

    #[test]
    fn counts_nothing_when_unsure() {
        assert_eq!(
            counts("botContext.sendMessage(...parts); botContext.a([...xs], 1)"),
            vec![("sendMessage", None), ("a", Some(2))]
        );
        // Not closed, brackets that do not match, an elision.
        assert_eq!(counts("botContext.a(1, 2"), vec![("a", None)]);
        assert_eq!(counts("botContext.a(1, [2)]"), vec![("a", None)]);
        assert_eq!(counts("botContext.a(, 1)"), vec![("a", None)]);
        // An unterminated string stops the scan.
        assert_eq!(counts("botContext.a('x, 1)"), vec![("a", None)]);
    }

    #[test]
    fn calls_written_in_strings_comments_and_regexes_are_not_calls() {
        assert_eq!(
            counts(
                r#"var s = "botContext.a(1)"; // botContext.b()
                /* botContext.c() */ var r = /botContext.d\(/; var t = `botContext.e()`;
                botContext.f(`${botContext.g(1)}`)"#
            ),
            vec![("f", Some(1)), ("g", Some(1))]
        );
    }

    #[test]
    fn every_function_has_its_signature() {
        for function in crate::BOT_CONTEXT_FUNCTIONS {
            let signature = signature(function.name)
                .unwrap_or_else(|| panic!("no signature for {}", function.name));
            let arguments = &signature[function.name.len() + 1..signature.len() - 1];
            let (required, optional) = arguments.split_once('[').unwrap_or((arguments, ""));
            let count = |text: &str| {
                text.split(',')
                    .filter(|argument| !argument.trim_matches([' ', ']']).is_empty())
                    .count()
            };
            assert_eq!(
                (count(required), count(required) + count(optional)),
                (function.min_args, function.max_args),
                "{signature}"
            );
        }
        assert_eq!(SIGNATURES.len(), crate::BOT_CONTEXT_FUNCTIONS.len());
    }

    #[test]
    fn finds_trigger_targets() {
        assert_eq!(
            triggered("botContext.setTriggerNextMessage('show-list');"),
            vec!["show-list"]
        );
        assert!(triggered("botContext.setTriggerNextMessage(name)").is_empty());
    }

    #[test]
    fn env_names_for_secrets() {
        assert_eq!(
            to_env_name("faq-kb", "clientSecret"),
            "FAQ_KB_CLIENT_SECRET"
        );
    }
}
