//! The `botContext` a script sees on real V8 has exactly the functions
//! `patchbay check` knows of (`patchbay_config::BOT_CONTEXT_FUNCTIONS`): a
//! function added to `crates/script/src/host/` without the list would be
//! reported as unknown, and one in the list without a host function would
//! let a TypeError through unwarned.

use patchbay_script::ScriptInput;

use crate::{run, runtime};

#[tokio::test]
async fn bot_context_has_exactly_the_functions_check_knows() {
    let runtime = runtime();
    let output = run(
        &runtime,
        r#"var names = Object.getOwnPropertyNames(botContext)
             .filter(function (name) { return typeof botContext[name] === "function"; });
           botContext.sendMessage(JSON.stringify(names));"#,
        ScriptInput::default(),
    )
    .await
    .expect("runs");
    let mut host: Vec<String> =
        serde_json::from_str(output.messages.first().expect("one message")).expect("names");
    host.sort();
    let mut known: Vec<&str> = patchbay_config::BOT_CONTEXT_FUNCTIONS
        .iter()
        .map(|function| function.name)
        .collect();
    known.sort_unstable();
    assert_eq!(
        host, known,
        "crates/script/src/host and patchbay_config::BOT_CONTEXT_FUNCTIONS differ"
    );
}
