//! Tokens kept on disk between runs of the command, so that a refresh token
//! obtained by `patchbay auth` serves later runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_credentials::{BoxFuture, CachedToken, Secret, TokenCache};
use serde_json::{Value, json};

/// A [`TokenCache`] in a JSON file readable by its owner only. Tokens are
/// secrets at rest, as in other command-line tools' credential files; keep
/// the file out of version control.
#[derive(Debug)]
pub(crate) struct FileTokenStore {
    path: PathBuf,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl FileTokenStore {
    /// Opens the store at `path` (empty when the file does not exist yet).
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let tokens = match std::fs::read_to_string(path) {
            Ok(text) => parse(&text).ok_or_else(|| {
                anyhow::anyhow!("{} is not a patchbay token store", path.display())
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(error) => return Err(anyhow::anyhow!("cannot read {}: {error}", path.display())),
        };
        Ok(Self {
            path: path.to_owned(),
            tokens: Mutex::new(tokens),
        })
    }

    /// The default place: `$XDG_DATA_HOME/patchbay/tokens.json`, else
    /// `~/.local/share/patchbay/tokens.json`, else `./.patchbay-tokens.json`.
    pub(crate) fn default_path() -> PathBuf {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
            });
        match data {
            Some(data) => data.join("patchbay/tokens.json"),
            None => PathBuf::from(".patchbay-tokens.json"),
        }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, tokens: &HashMap<String, CachedToken>) {
        if let Err(error) = write_private(&self.path, &render(tokens)) {
            // The token still serves this run; only later runs lose it.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "warning: cannot save tokens to {}: {error}\n",
                    self.path.display()
                ),
            );
        }
    }
}

impl TokenCache for FileTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>> {
        let token = self.tokens().get(key).cloned();
        Box::pin(async move { token })
    }

    fn put<'a>(&'a self, key: &'a str, token: CachedToken) -> BoxFuture<'a, ()> {
        let mut tokens = self.tokens();
        tokens.insert(key.to_owned(), token);
        self.save(&tokens);
        Box::pin(async {})
    }

    fn discard<'a>(&'a self, key: &'a str, access_token: &'a str) -> BoxFuture<'a, ()> {
        let mut tokens = self.tokens();
        if let Some(token) = tokens.get_mut(key)
            && token.access_token.expose() == access_token
        {
            // Keep the refresh token: it is what later runs need.
            token.expires_at = Some(UNIX_EPOCH);
            token.refresh_at = Some(UNIX_EPOCH);
            self.save(&tokens);
        }
        Box::pin(async {})
    }
}

fn seconds(time: Option<SystemTime>) -> Value {
    time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |since| json!(since.as_secs()))
}

fn time(value: &Value) -> Option<SystemTime> {
    value
        .as_u64()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

fn render(tokens: &HashMap<String, CachedToken>) -> String {
    let entries: serde_json::Map<String, Value> = tokens
        .iter()
        .map(|(key, token)| {
            let entry = json!({
                "accessToken": token.access_token.expose(),
                "tokenType": token.token_type,
                "expiresAt": seconds(token.expires_at),
                "refreshAt": seconds(token.refresh_at),
                "refreshToken": token.refresh_token.as_ref().map(Secret::expose),
            });
            (key.clone(), entry)
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "version": 1, "tokens": entries })).unwrap_or_default()
}

fn parse(text: &str) -> Option<HashMap<String, CachedToken>> {
    let document: Value = serde_json::from_str(text).ok()?;
    let entries = document.get("tokens")?.as_object()?;
    entries
        .iter()
        .map(|(key, entry)| {
            let token = CachedToken {
                access_token: Secret::new(entry.get("accessToken")?.as_str()?),
                token_type: entry.get("tokenType")?.as_str()?.to_owned(),
                expires_at: time(entry.get("expiresAt")?),
                refresh_at: time(entry.get("refreshAt")?),
                refresh_token: entry
                    .get("refreshToken")
                    .and_then(Value::as_str)
                    .map(Secret::new),
            };
            Some((key.clone(), token))
        })
        .collect()
}

/// Writes a file only its owner can read, creating its directory.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` applies only when the file is created; an older file is
    // narrowed too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}
