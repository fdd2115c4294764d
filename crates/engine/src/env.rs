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
        let declared = bot
            .env
            .keys()
            .filter_map(|name| host(name).map(|value| (name.clone(), value)))
            .collect();
        Self {
            declared,
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

    use patchbay_script::{RuntimeOptions, ScriptRuntime};

    use crate::{ConversationState, Engine, EngineOptions, Next, Start};

    /// The host is asked for a declared name when the engine is built, and
    /// never again while turns render it and scripts read it.
    #[tokio::test]
    async fn declared_names_are_read_once_when_the_engine_is_built() {
        let bot = patchbay_config::load(
            "shop.yaml",
            r#"name: shop
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
"#,
        )
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|report| panic!("{}", report.render(patchbay_config::RenderStyle::Plain)));
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&asked);
        let env = Arc::new(move |name: &str| {
            counted.fetch_add(1, Ordering::SeqCst);
            (name == "SHOP").then(|| "Bluebird Books".to_owned())
        });
        let scripts = ScriptRuntime::new(RuntimeOptions {
            workers: 1,
            ..RuntimeOptions::default()
        });
        let engine = Engine::new(bot, EngineOptions::new(env, scripts))
            .await
            .expect("engine");
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
}
