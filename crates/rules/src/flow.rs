//! Where the conversation goes next.

use std::collections::HashMap;

use patchbay_config::{Bot, DialogType, NextAction};

/// An interaction's place in the bot: dialog index, interaction index.
pub type Position = (usize, usize);

/// What follows an interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run this interaction next.
    Interaction(Position),
    /// Stop and wait for the user (also past a dialog's last interaction).
    End,
    /// Close the dialog.
    CloseDialog,
    /// Close the conversation.
    CloseConversation,
}

/// Resolves a next action taken at `from`.
pub fn next_step(bot: &Bot, from: Position, action: &NextAction) -> Step {
    match action {
        NextAction::Next => {
            let (dialog, index) = from;
            let following = bot
                .dialogs
                .get(dialog)
                .is_some_and(|d| index + 1 < d.interactions.len());
            if following {
                Step::Interaction((dialog, index + 1))
            } else {
                Step::End
            }
        }
        NextAction::End => Step::End,
        NextAction::CloseDialog => Step::CloseDialog,
        NextAction::CloseConversation => Step::CloseConversation,
        NextAction::Interaction(name) => {
            find_interaction(bot, name).map_or(Step::End, Step::Interaction)
        }
        NextAction::Dialog(name) => bot
            .dialogs
            .iter()
            .position(|dialog| &dialog.name == name && !dialog.interactions.is_empty())
            .map_or(Step::End, |dialog| Step::Interaction((dialog, 0))),
    }
}

/// Where `setTriggerNextMessage(text)` leads: the interaction of that name,
/// or else the first interaction of the dialog whose starter matches.
pub fn trigger_target(bot: &Bot, text: &str) -> Option<Position> {
    find_interaction(bot, text).or_else(|| {
        bot.dialogs
            .iter()
            .position(|dialog| {
                !dialog.interactions.is_empty()
                    && dialog.starters.iter().any(|starter| starter.matches(text))
            })
            .map(|dialog| (dialog, 0))
    })
}

/// The first interaction of the bot's fallback dialog (`type: fallback`),
/// where a user's message that no starter matches goes.
pub fn fallback_start(bot: &Bot) -> Option<Position> {
    bot.dialogs
        .iter()
        .position(|dialog| {
            dialog.dialog_type == DialogType::Fallback && !dialog.interactions.is_empty()
        })
        .map(|dialog| (dialog, 0))
}

/// The position of the interaction named `name`.
pub fn find_interaction(bot: &Bot, name: &str) -> Option<Position> {
    bot.dialogs.iter().enumerate().find_map(|(d, dialog)| {
        dialog
            .interactions
            .iter()
            .position(|interaction| interaction.name == name)
            .map(|k| (d, k))
    })
}

/// A bot's names resolved to places once, when it loads: interactions to
/// positions, dialogs and integrations to indices. Where two share a name,
/// the first in file order wins, as the scans by name above find it.
#[derive(Clone, Debug, Default)]
pub struct BotIndex {
    interactions: HashMap<String, Position>,
    dialogs: HashMap<String, usize>,
    /// Dialogs with at least one interaction, where `dialog:NAME` goes.
    dialog_starts: HashMap<String, usize>,
    integrations: HashMap<String, usize>,
}

impl BotIndex {
    /// The index of `bot`'s names.
    pub fn new(bot: &Bot) -> Self {
        let mut index = Self::default();
        for (d, dialog) in bot.dialogs.iter().enumerate() {
            index.dialogs.entry(dialog.name.clone()).or_insert(d);
            if !dialog.interactions.is_empty() {
                index.dialog_starts.entry(dialog.name.clone()).or_insert(d);
            }
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                index
                    .interactions
                    .entry(interaction.name.clone())
                    .or_insert((d, k));
            }
        }
        for (i, integration) in bot.integrations.iter().enumerate() {
            index
                .integrations
                .entry(integration.name.clone())
                .or_insert(i);
        }
        index
    }

    /// The position of the interaction named `name` ([`find_interaction`]).
    pub fn interaction(&self, name: &str) -> Option<Position> {
        self.interactions.get(name).copied()
    }

    /// The index of the dialog named `name`.
    pub fn dialog(&self, name: &str) -> Option<usize> {
        self.dialogs.get(name).copied()
    }

    /// The index of the integration named `name`.
    pub fn integration(&self, name: &str) -> Option<usize> {
        self.integrations.get(name).copied()
    }

    /// [`next_step`], names looked up in the index.
    pub fn next_step(&self, bot: &Bot, from: Position, action: &NextAction) -> Step {
        match action {
            NextAction::Interaction(name) => {
                self.interaction(name).map_or(Step::End, Step::Interaction)
            }
            NextAction::Dialog(name) => self
                .dialog_starts
                .get(name)
                .map_or(Step::End, |dialog| Step::Interaction((*dialog, 0))),
            NextAction::Next
            | NextAction::End
            | NextAction::CloseDialog
            | NextAction::CloseConversation => next_step(bot, from, action),
        }
    }

    /// [`trigger_target`], the interaction's name looked up in the index.
    pub fn trigger_target(&self, bot: &Bot, text: &str) -> Option<Position> {
        self.interaction(text).or_else(|| {
            bot.dialogs
                .iter()
                .position(|dialog| {
                    !dialog.interactions.is_empty()
                        && dialog.starters.iter().any(|starter| starter.matches(text))
                })
                .map(|dialog| (dialog, 0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_what_the_scans_by_name_find() {
        let bot = patchbay_config::load(
            "bot.yaml",
            r#"name: index
integrations:
  - name: one
    responseDataVariable: ONE
    type: api
    method: GET
    url: https://example.com/one
dialogs:
  - name: a
    starters: [go]
    interactions:
      - { name: a1, type: text, text: one, next: "dialog:b" }
      - { name: a2, type: text, text: two, next: b1 }
  - name: b
    interactions:
      - { name: b1, type: text, text: three }
"#,
        )
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|report| panic!("{}", report.render(patchbay_config::RenderStyle::Plain)));
        let index = BotIndex::new(&bot);
        for name in ["a1", "a2", "b1", "none"] {
            assert_eq!(
                index.interaction(name),
                find_interaction(&bot, name),
                "{name}"
            );
        }
        for text in ["a2", "go", "GO!", "nothing"] {
            assert_eq!(
                index.trigger_target(&bot, text),
                trigger_target(&bot, text),
                "{text}"
            );
        }
        for (d, dialog) in bot.dialogs.iter().enumerate() {
            for (k, interaction) in dialog.interactions.iter().enumerate() {
                assert_eq!(
                    index.next_step(&bot, (d, k), &interaction.next),
                    next_step(&bot, (d, k), &interaction.next)
                );
            }
        }
        for action in [
            NextAction::Dialog("none".to_owned()),
            NextAction::Dialog("b".to_owned()),
            NextAction::Interaction("nowhere".to_owned()),
        ] {
            assert_eq!(
                index.next_step(&bot, (1, 0), &action),
                next_step(&bot, (1, 0), &action)
            );
        }
        assert_eq!(index.dialog("b"), Some(1));
        assert_eq!(index.integration("one"), Some(0));
        assert_eq!(index.integration("two"), None);
    }
}
