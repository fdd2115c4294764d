//! Embedding patchbay in your own runtime with `patchbay-engine` alone:
//! load a bot, build an engine, run turns, keep the state between them.
//!
//! `cargo run -p patchbay-engine --example embed`
#![allow(clippy::print_stdout, clippy::print_stderr)] // a program that shows its output

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_engine::script::{RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};

const BOT: &str = r#"
name: greeter
env:
  SHOP_NAME: the shop
dialogs:
  - name: welcome
    starters: ["hello*", "hi*"]
    interactions:
      - name: greet
        type: text
        text: "Hello {$firstname}, welcome to {$env.SHOP_NAME}!"
      - name: ask-name
        type: question
        text: What should I call you?
      - name: thank
        type: text
        text: "Nice to meet you, {$botContext.nickname}."
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Bot files come from wherever you keep them; errors carry file, line
    // and column, ready to print.
    let loaded = match patchbay_engine::config::load("greeter.yaml", BOT) {
        Ok(loaded) => loaded,
        Err(report) => {
            eprint!(
                "{}",
                report.render(patchbay_engine::config::RenderStyle::Plain)
            );
            std::process::exit(1);
        }
    };

    // The host decides what `{$env.NAME}` reads: here a fixed map.
    let env: HashMap<String, String> =
        HashMap::from([("SHOP_NAME".to_owned(), "Bluebird Books".to_owned())]);
    let env = Arc::new(move |name: &str| env.get(name).cloned());
    // One script runtime serves every engine of the process.
    let scripts = ScriptRuntime::new(RuntimeOptions::default());
    let engine = Engine::new(loaded.bot, EngineOptions::new(env, scripts)).await?;

    // A turn from the user's first message: the starter picks the dialog.
    let state = ConversationState {
        conversation_id: "c-1".to_owned(),
        first_name: "Ada".to_owned(),
        ..ConversationState::default()
    };
    let turn = engine
        .run_turn(state, Start::Message, "hello there")
        .await?;
    for message in &turn.messages {
        println!("bot: {message}");
    }
    // Keep the state anywhere as JSON; read it back for the next turn.
    let saved = turn.state.to_json();
    let mut state = ConversationState::from_json(saved, engine.bot())?;
    state.set(
        "nickname",
        "Ada",
        patchbay_engine::script::Persistence::Session,
    );
    let turn = engine
        .run_turn(state, Start::Interaction(turn.next.to_string()), "Ada")
        .await?;
    for message in &turn.messages {
        println!("bot: {message}");
    }
    println!("next: {}", turn.next);
    Ok(())
}
