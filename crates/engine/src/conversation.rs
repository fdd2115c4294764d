//! The conversation around the calls: a question as it is sent, its
//! answer taken by a rule (or by no rule), and the dialogs a turn enters
//! and leaves (docs/engine.md, "Questions and answers").

use patchbay_config::{
    Ask, Bot, Button, CaptureTarget, ChoiceDisplay, DialogType, InteractionKind, NextAction,
    Question, Scope,
};
use patchbay_rules::{
    Answer, BotIndex, Position, Step, capture_groups, capture_value, select_answer_rule,
};
use patchbay_script::Persistence;

use crate::engine::{Code, Engine, LastCall, Walk};
use crate::message::{ButtonMessage, CardMessage, Message, QuestionMessage, UserMessage};
use crate::state::ConversationState;
use crate::trace::StepTrace;

/// Sent when a question's rules take no answer and neither the question
/// (`noMatch`) nor the bot (a fallback dialog) says what to do: the
/// product's default fallback response.
pub const NOT_UNDERSTOOD: &str =
    "Not able to understand your question. Can you please re-phrase it?";

impl Engine {
    /// A question as the bot sends it.
    pub(crate) fn question_message(
        &self,
        question: &Question,
        state: &ConversationState,
        input: &UserMessage,
    ) -> Message {
        let text = question
            .text
            .as_ref()
            .map(|text| self.text(text, state, input));
        let buttons = |buttons: &[Button]| buttons.iter().map(button_message).collect();
        let message = match &question.ask {
            Ask::Text => return Message::Text(text.unwrap_or_default()),
            Ask::MultipleChoice(choice) => {
                let mut fallback = text.clone().unwrap_or_default();
                for (index, title) in choice.choices.iter().enumerate() {
                    fallback.push('\n');
                    fallback.push_str(&choice.list_style.label(index));
                    fallback.push_str(". ");
                    fallback.push_str(title);
                }
                QuestionMessage {
                    kind: "multiple-choice",
                    text,
                    choices: choice.choices.clone(),
                    display: Some(match choice.display {
                        ChoiceDisplay::Buttons => "buttons",
                        ChoiceDisplay::QuickReplies => "quick-replies",
                    }),
                    fallback_text: Some(fallback),
                    ..QuestionMessage::default()
                }
            }
            Ask::Buttons(list) => QuestionMessage {
                kind: "buttons",
                text,
                buttons: buttons(list),
                ..QuestionMessage::default()
            },
            Ask::QuickReplies(list) => QuestionMessage {
                kind: "quick-replies",
                text,
                quick_replies: buttons(list),
                ..QuestionMessage::default()
            },
            Ask::Structured(cards) => QuestionMessage {
                kind: "cards",
                cards: cards
                    .iter()
                    .map(|card| CardMessage {
                        title: self.text(&card.title, state, input),
                        subtitle: card
                            .subtitle
                            .as_ref()
                            .map(|subtitle| self.text(subtitle, state, input)),
                        image_url: card.image_url.clone(),
                        buttons: buttons(&card.buttons),
                    })
                    .collect(),
                ..QuestionMessage::default()
            },
        };
        Message::Question(message)
    }

    /// Takes the user's answer to the question at `position`: its
    /// `processUserResponse` code, then its rules; an answer no rule takes
    /// switches to another dialog whose starter it fits (context
    /// switching), else goes on (a question without rules takes any
    /// answer), else gets the question's no-match handling.
    pub(crate) async fn answer(
        &self,
        position: Position,
        state: &mut ConversationState,
        input: &UserMessage,
        walk: &mut Walk,
    ) -> Step {
        let bot = &*self.bot;
        let interaction = &bot.dialogs[position.0].interactions[position.1];
        let InteractionKind::Question(question) = &interaction.kind else {
            return self.names.next_step(bot, position, &interaction.next);
        };
        let mut trace = StepTrace {
            interaction: interaction.name.clone(),
            ..StepTrace::default()
        };
        let last = LastCall {
            status: walk.status,
            success: walk.success,
        };
        let trigger = self
            .interaction_code(
                Code::ProcessUserResponse,
                position,
                state,
                input,
                last,
                &mut trace,
            )
            .await;
        if let Some(target) = trigger.and_then(|text| self.names.trigger_target(bot, &text)) {
            walk.record(trace);
            return Step::Interaction(target);
        }
        let answer = Answer::new(&input.text, input.payload.as_deref());
        let taken = self.with_values(state, input, |values| {
            select_answer_rule(question, &answer, values)
        });
        let dialog = &bot.dialogs[position.0];
        if let Some(index) = taken {
            let rule = &question.rules[index];
            trace.rule = Some(
                rule.name
                    .clone()
                    .unwrap_or_else(|| format!("rule {}", index + 1)),
            );
            let groups = capture_groups(rule, &answer);
            // In order: a capture's `value` sees the ones before it.
            for each in &rule.set {
                let value = self.with_values(state, input, |values| {
                    capture_value(question, each, &answer, groups.as_ref(), values)
                });
                capture(state, &dialog.name, &each.target, value);
            }
            for text in &rule.messages {
                let text = self.text(text, state, input);
                trace.messages.push(Message::Text(text));
            }
            walk.record(trace);
            return self.names.next_step(
                bot,
                position,
                rule.next.as_ref().unwrap_or(&interaction.next),
            );
        }
        if dialog.switches_context(bot)
            && let Some(target) = starter_elsewhere(bot, position.0, &input.text)
        {
            trace.rule = Some(format!(
                "context switch to dialog {}",
                bot.dialogs[target.0].name
            ));
            // Its starter matched the message (getDialogStarterIntent).
            state.dialog_starter = Some(bot.dialogs[target.0].name.clone());
            // The product never returns to the fallback dialog.
            if dialog.dialog_type != DialogType::Fallback {
                state.push_return(&interaction.name);
            }
            walk.record(trace);
            return Step::Interaction(target);
        }
        if question.rules.is_empty() {
            walk.record(trace);
            return self.names.next_step(bot, position, &interaction.next);
        }
        let count = state.no_match_count.saturating_add(1);
        trace.rule = Some("no match".to_owned());
        let retry = (interaction.name.clone(), count);
        let step = match &question.no_match {
            Some(no_match) if no_match.retries.is_some_and(|retries| count > retries) => {
                self.names.next_step(
                    bot,
                    position,
                    no_match.next.as_ref().unwrap_or(&NextAction::End),
                )
            }
            Some(no_match) => {
                if let Some(message) = &no_match.message {
                    let text = self.text(message, state, input);
                    trace.messages.push(Message::Text(text));
                }
                walk.no_match = Some(retry);
                Step::Interaction(position)
            }
            None => match patchbay_rules::fallback_start(bot).filter(|at| at.0 != position.0) {
                Some(fallback) => {
                    state.push_return(&interaction.name);
                    walk.no_match = Some(retry);
                    Step::Interaction(fallback)
                }
                None => {
                    trace
                        .messages
                        .push(Message::Text(NOT_UNDERSTOOD.to_owned()));
                    walk.no_match = Some(retry);
                    Step::Interaction(position)
                }
            },
        };
        walk.record(trace);
        step
    }

    /// Moves the turn into dialog `to` (an index), or out of every dialog
    /// (`None`): the dialog it leaves ends (its slots and dialog variables
    /// are dropped) unless a question of it waits to be asked again.
    pub(crate) fn leave_dialog(&self, state: &mut ConversationState, to: Option<usize>) {
        let bot = &*self.bot;
        let to = to.map(|dialog| bot.dialogs[dialog].name.as_str());
        if state.dialog.as_deref() == to {
            return;
        }
        if let Some(left) = state.dialog.take() {
            let suspended = state
                .return_to
                .iter()
                .any(|question| dialog_of(bot, &self.names, question) == Some(left.as_str()));
            if !suspended {
                state.end_dialog(&left);
            }
        }
        // Back in a dialog a detour left: it runs again from here, so its
        // question is not asked again when the detour ends.
        if let Some(entered) = to {
            state
                .return_to
                .retain(|question| dialog_of(bot, &self.names, question) != Some(entered));
        }
        state.dialog = to.map(str::to_owned);
    }

    /// At the end of a turn, ends every dialog the conversation is no
    /// longer in: only the one it waits in and those of the questions on
    /// `returnTo` keep their slots and dialog variables (a `returnTo`
    /// entry dropped by `close-conversation`, `skipPreviousDialog` or its
    /// bound ends its dialog here; so does a client-held state's stray
    /// entry).
    pub(crate) fn end_left_dialogs(&self, state: &mut ConversationState) {
        let bot = &*self.bot;
        let alive: Vec<&str> = state
            .return_to
            .iter()
            .chain(&state.waiting_at)
            .filter_map(|question| dialog_of(bot, &self.names, question))
            .collect();
        let left: Vec<String> = state
            .slots
            .keys()
            .chain(state.dialog_variables.keys())
            .filter(|dialog| !alive.contains(&dialog.as_str()))
            .cloned()
            .collect();
        for dialog in left {
            state.end_dialog(&dialog);
        }
    }
}

/// The name of the dialog the question named `question` is in.
fn dialog_of<'b>(bot: &'b Bot, names: &BotIndex, question: &str) -> Option<&'b str> {
    names
        .interaction(question)
        .map(|(dialog, _)| bot.dialogs[dialog].name.as_str())
}

/// The first interaction of a dialog other than `current` whose starter
/// fits `text`.
fn starter_elsewhere(bot: &Bot, current: usize, text: &str) -> Option<Position> {
    bot.dialogs
        .iter()
        .enumerate()
        .find(|(index, dialog)| {
            *index != current
                && !dialog.interactions.is_empty()
                && dialog.starters.iter().any(|starter| starter.matches(text))
        })
        .map(|(index, _)| (index, 0))
}

/// Stores one captured value.
fn capture(state: &mut ConversationState, dialog: &str, target: &CaptureTarget, value: String) {
    match target {
        CaptureTarget::Slot(name) => {
            state
                .slots
                .entry(dialog.to_owned())
                .or_default()
                .insert(name.clone(), value);
        }
        CaptureTarget::Variable { name, scope } => {
            let persistence = match scope {
                Scope::Request => Persistence::Request,
                Scope::Dialog | Scope::Session => Persistence::Session,
                Scope::Forever => Persistence::Forever,
            };
            state.set(name, value, persistence);
            if *scope == Scope::Dialog {
                let names = state.dialog_variables.entry(dialog.to_owned()).or_default();
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
}

fn button_message(button: &Button) -> ButtonMessage {
    ButtonMessage {
        title: button.title.clone(),
        payload: button.payload.clone(),
        url: button.url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::{ConversationState, Engine, EngineError, MAX_MESSAGE_BYTES, Start};

    async fn engine(bot: &str) -> Engine {
        crate::test_engine(bot, Arc::new(|_: &str| None)).await
    }

    /// Dialog A asks `qa`; "help" detours through B, whose last step goes
    /// back into A.
    const DETOUR: &str = r#"name: detour
dialogs:
  - name: a
    starters: [start]
    interactions:
      - name: qa
        type: question
        text: QA?
        rules:
          - match: { pattern: "a*" }
            messages: ["took {$userMessage}"]
      - name: ta
        type: text
        text: A done
  - name: b
    starters: [help]
    interactions:
      - name: tb
        type: text
        text: B text
        next: "dialog:a"
"#;

    #[tokio::test]
    async fn a_detour_back_into_the_dialog_does_not_ask_its_question_again_later() {
        let engine = engine(DETOUR).await;
        let mut state = ConversationState::default();
        let mut turn = async |message: &str| {
            let turn = engine
                .run_turn(std::mem::take(&mut state), Start::Message, message)
                .await
                .expect("turn");
            state = turn.state.clone();
            turn
        };
        turn("start").await;
        // B leads back into A, which runs afresh: nothing is left to return to.
        let detour = turn("help").await;
        assert_eq!(detour.texts(), ["B text", "QA?"]);
        assert!(
            detour.state.return_to.is_empty(),
            "{:?}",
            detour.state.return_to
        );
        let answered = turn("apple").await;
        assert_eq!(answered.texts(), ["took apple", "A done"]);
        assert_eq!(answered.next, crate::Next::End);
    }

    /// A text over 320 characters is sent in parts; a secret in it with a
    /// space inside would be cut in two there, and neither half would be
    /// recognised where the turn is shown: it is masked before the cut.
    #[tokio::test]
    async fn a_secret_is_masked_before_a_long_text_is_cut() {
        let env = Arc::new(|name: &str| {
            (name == "API_SECRET").then(|| "sk-config canary-7777".to_owned())
        });
        let engine = crate::test_engine(
            r#"name: long
env:
  API_SECRET: null
credentials:
  - name: api
    type: access-token
    token: "{$env.API_SECRET}"
dialogs:
  - name: d
    starters: [go]
    interactions:
      - name: say
        type: text
        text: ok
        preProcess: |
          botContext.sendMessage(new Array(306).join("b") + " " + botContext.getEnvVariable("API_SECRET"));
"#,
            env,
        )
        .await;
        let turn = engine
            .run_turn(ConversationState::default(), Start::Message, "go")
            .await
            .expect("turn");
        let shown = turn.texts().join("|");
        // 306 + 1 + 21 characters: over 320, so cut where the secret's space is
        // without the mask first.
        for half in ["sk-config", "canary-7777"] {
            assert!(!shown.contains(half), "{half} in {shown}");
        }
    }

    #[tokio::test]
    async fn a_message_past_the_limit_is_refused_before_any_rule_reads_it() {
        let engine = engine(DETOUR).await;
        let long = "a".repeat(MAX_MESSAGE_BYTES + 1);
        let error = engine
            .run_turn(ConversationState::default(), Start::Message, long.as_str())
            .await
            .expect_err("too long");
        assert!(matches!(error, EngineError::MessageTooLarge(_)), "{error}");
        assert_eq!(error.code(), "message_too_large");
        let fits = "a".repeat(MAX_MESSAGE_BYTES);
        let state = ConversationState {
            waiting_at: Some("qa".to_owned()),
            ..ConversationState::default()
        };
        let turn = engine
            .run_turn(state, Start::Message, fits.as_str())
            .await
            .expect("fits");
        assert_eq!(turn.texts().last(), Some(&"A done"));
    }

    #[tokio::test]
    async fn a_client_held_state_brings_only_the_slots_the_bot_declares() {
        let engine = engine(
            r#"name: slots
dialogs:
  - name: d
    slots: [kept]
    interactions:
      - name: q
        type: question
        text: "[{$botContext.slot.kept}] [{$botContext.slot.evil}]"
"#,
        )
        .await;
        let array = ConversationState::from_json(json!(["c", "u"]), engine.bot());
        assert!(array.is_err(), "a state is an object, not an array");
        let state = ConversationState::from_json(
            json!({
                "waitingAt": "q",
                "slots": { "d": { "kept": "1", "evil": "2" }, "gone": { "x": "3" } },
                "dialogVariables": { "gone": ["userThing"] },
                "userVariables": { "userThing": "stays" }
            }),
            engine.bot(),
        )
        .expect("state");
        assert_eq!(state.slots.len(), 1);
        assert_eq!(state.slots["d"].len(), 1);
        assert!(state.dialog_variables.is_empty());
        let turn = engine
            .run_turn(state, Start::Interaction("q".to_owned()), "")
            .await
            .expect("turn");
        assert_eq!(turn.texts(), ["[1] []"]);
        assert_eq!(turn.variables["userThing"], "stays");
    }
}
