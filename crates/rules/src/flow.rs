//! Where the conversation goes next.

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
