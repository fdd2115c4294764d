//! The bot's environment, resolved once per engine: when the bot loads (a
//! reload builds a new engine, which resolves it again). Templates,
//! scripts, credentials and the secrets to mask all read this one copy.

use std::borrow::Cow;
use std::collections::HashMap;

use patchbay_config::Bot;

use crate::Env;

/// The `{$env.NAME}` values of a bot: those it declares under `env:`, as
/// the host gave them when the engine was built.
pub(crate) struct ResolvedEnv {
    /// Each declared name the host gave a value, with that value: what
    /// templates read and `getEnvVariable` returns.
    pub(crate) declared: HashMap<String, String>,
    /// What `getEnvVariable` sees: the declared values but those a
    /// credential holds. In the product, credentials are kept apart from
    /// the environment and scripts never read them; a script that could
    /// read a secret could also send it anywhere, in a form no masking
    /// knows (reversed, spaced out).
    pub(crate) for_scripts: HashMap<String, String>,
    /// The names the bot declares (with a value or not).
    names: std::collections::HashSet<String>,
    /// The host, for a name a template reads without the bot declaring it
    /// (`patchbay check` warns of each): asked at each use, as the host
    /// may give such a name a value of its own.
    host: Env,
}

impl ResolvedEnv {
    /// Asks `host` once for each name `bot` declares.
    pub(crate) fn new(bot: &Bot, host: &Env) -> Self {
        let declared: HashMap<String, String> = bot
            .env
            .keys()
            .filter_map(|name| host(name).map(|value| (name.clone(), value)))
            .collect();
        let secrets: std::collections::HashSet<&str> = bot.secret_env_names().collect();
        let for_scripts = declared
            .iter()
            .filter(|(name, _)| !secrets.contains(name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Self {
            declared,
            for_scripts,
            names: bot.env.keys().cloned().collect(),
            host: std::sync::Arc::clone(host),
        }
    }

    /// The value of `{$env.NAME}`: a declared name's, as read at load;
    /// another name's, as the host gives it now.
    pub(crate) fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        if self.names.contains(name) {
            return self
                .declared
                .get(name)
                .map(|value| Cow::Borrowed(value.as_str()));
        }
        (self.host)(name).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::{ConversationState, Next, Start};

    /// The host is asked for a declared name when the engine is built, and
    /// never again while turns render it and scripts read it.
    #[tokio::test]
    async fn declared_names_are_read_once_when_the_engine_is_built() {
        let yaml = r#"name: shop
env:
  SHOP: null
dialogs:
  - name: d
    starters: [hi]
    interactions:
      - name: greet
        type: text
        text: "Welcome to {$env.SHOP}."
        preProcess: |
          botContext.sendMessage("script: " + botContext.getEnvVariable("SHOP"));
      - name: ask
        type: question
        text: "Anything else at {$env.SHOP}?"
"#;
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&asked);
        let env = Arc::new(move |name: &str| {
            counted.fetch_add(1, Ordering::SeqCst);
            (name == "SHOP").then(|| "Bluebird Books".to_owned())
        });
        let engine = crate::test_engine(yaml, env).await;
        let at_load = asked.load(Ordering::SeqCst);
        for _ in 0..2 {
            let turn = engine
                .run_turn(ConversationState::default(), Start::Message, "hi")
                .await
                .expect("turn");
            assert_eq!(
                turn.texts(),
                [
                    "script: Bluebird Books",
                    "Welcome to Bluebird Books.",
                    "Anything else at Bluebird Books?"
                ]
            );
            assert_eq!(turn.next, Next::Waiting("ask".to_owned()));
            assert_eq!(turn.next.as_str(), "ask");
        }
        assert_eq!(
            asked.load(Ordering::SeqCst),
            at_load,
            "asked again after load"
        );
    }

    /// A name a credential holds is a secret: scripts read it as if it
    /// were not set (an outside attack printed a token reversed, which no
    /// masking finds), while templates of the credential still get it.
    #[tokio::test]
    async fn scripts_cannot_read_what_a_credential_holds() {
        let yaml = r#"name: shop
env:
  API_TOKEN: null
  SHOP: null
credentials:
  - name: api
    type: access-token
    token: "{$env.API_TOKEN}"
dialogs:
  - name: d
    starters: [hi]
    interactions:
      - name: greet
        type: text
        text: "Welcome."
        preProcess: |
          botContext.sendMessage(String(botContext.getEnvVariable("API_TOKEN")) + " " + botContext.getEnvVariable("SHOP"));
"#;
        let env = Arc::new(|name: &str| match name {
            "API_TOKEN" => Some("s3cr3t-T0k3n".to_owned()),
            "SHOP" => Some("Bluebird Books".to_owned()),
            _ => None,
        });
        let engine = crate::test_engine(yaml, env).await;
        let turn = engine
            .run_turn(ConversationState::default(), Start::Message, "hi")
            .await
            .expect("turn");
        assert_eq!(turn.texts(), ["null Bluebird Books", "Welcome."]);
    }
}
