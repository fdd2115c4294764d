//! The environment a bot's `{$env.NAME}` references read.

use std::collections::HashMap;

use patchbay_config::Bot;

/// `--env NAME=VALUE` first, then the process environment, then the
/// default the bot file gives. Only names the bot declares under `env:` are
/// looked up in the process environment.
#[derive(Debug)]
pub(crate) struct BotEnv {
    overrides: HashMap<String, String>,
    declared: HashMap<String, Option<String>>,
}

impl BotEnv {
    pub(crate) fn new(bot: &Bot, pairs: &[String]) -> anyhow::Result<Self> {
        let overrides = pairs
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .ok_or_else(|| anyhow::anyhow!("--env takes NAME=VALUE, not `{pair}`"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self::with_overrides(bot, overrides))
    }

    pub(crate) fn with_overrides(bot: &Bot, overrides: HashMap<String, String>) -> Self {
        Self {
            overrides,
            declared: bot.env.clone().into_iter().collect(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
        let default = self.declared.get(name)?;
        std::env::var(name).ok().or_else(|| default.clone())
    }
}
