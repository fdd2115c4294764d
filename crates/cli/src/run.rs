//! `patchbay run`: one turn, shown step by step or as JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use patchbay_engine::rules::find_interaction;
use patchbay_engine::{ConversationState, Engine, EngineOptions, Env, Start, Turn};
use patchbay_script::{Persistence, RuntimeOptions, ScriptRuntime};
use patchbay_transport::ProxyConfig;

use anyhow::Context;
use patchbay_testing::{Answer, Recorder, Recordings, Redactor, StubUpstream, stub_options};

use crate::bot_env::BotEnv;
use crate::token_store::FileTokenStore;

pub(crate) struct RunOptions<'a> {
    pub(crate) bot: &'a Path,
    pub(crate) interaction: &'a str,
    pub(crate) message: &'a str,
    pub(crate) vars: &'a [(String, String)],
    pub(crate) env: &'a [(String, String)],
    pub(crate) json: bool,
    pub(crate) token_store: &'a Path,
    pub(crate) record: Option<&'a Path>,
    pub(crate) replay: Option<&'a Path>,
}

/// Runs the turn. What it prints (the trace or JSON, replay and recording
/// messages, its error) passes through the bot's [`Redactor`]: an upstream
/// may echo a secret (a Basic header, an API key in a URL), in any
/// encoding, and `run` output is pasted into tickets.
pub(crate) async fn run(options: RunOptions<'_>) -> anyhow::Result<ExitCode> {
    let bot = crate::load_bot(options.bot)?;
    if find_interaction(&bot, options.interaction).is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "error: {} has no interaction `{}`",
            options.bot.display(),
            options.interaction
        );
        return Ok(ExitCode::from(2));
    }
    let env = BotEnv::with_overrides(&bot, options.env.iter().cloned().collect());
    let env: Env = Arc::new(move |name: &str| env.get(name));
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let redactor = Redactor::new(&bot, env.as_ref());
    run_redacted(options, bot, env, scripts, redactor.clone())
        .await
        .map_err(|error| anyhow::anyhow!(redactor.text(&format!("{error:#}"))))
}

async fn run_redacted(
    options: RunOptions<'_>,
    bot: patchbay_engine::config::Bot,
    env: Env,
    scripts: ScriptRuntime,
    redactor: Redactor,
) -> anyhow::Result<ExitCode> {
    let shown = redactor.clone();
    // Recording and replaying both put a local upstream between the engine
    // and the world: a recorder that calls out, or the recordings.
    let (stub, recorder) = match (options.record, options.replay) {
        (Some(_), _) => {
            let recorder = Arc::new(Recorder::new(&bot, redactor)?);
            let stub = StubUpstream::start(Arc::clone(&recorder) as Arc<dyn Answer>).await?;
            (Some(stub), Some(recorder))
        }
        (None, Some(dir)) => {
            let files = crate::test::read_recordings(dir)?;
            anyhow::ensure!(
                !files.is_empty(),
                "no recordings (*.json) in {}",
                dir.display()
            );
            let recordings = Recordings::parse(files, redactor)?;
            (Some(StubUpstream::start(Arc::new(recordings)).await?), None)
        }
        (None, None) => (None, None),
    };
    let mut engine_options = match &stub {
        Some(stub) => {
            let mut stubbed = stub_options(stub, env, &scripts);
            if recorder.is_some() {
                // Recording asks the real DNS; the guard judges it as usual.
                stubbed.resolver = None;
            }
            stubbed
        }
        None => {
            let mut direct = EngineOptions::new(env, scripts);
            direct.proxy = ProxyConfig::from_lookup(|name| std::env::var(name).ok());
            direct
        }
    };
    // A replay's tokens are recorded (redacted) ones: they must not replace
    // the real ones kept on disk.
    if options.replay.is_none() {
        engine_options.token_cache = Arc::new(FileTokenStore::open(options.token_store)?);
    }
    let engine = Engine::new(bot, engine_options).await?;
    let mut state = ConversationState {
        conversation_id: "cli".to_owned(),
        user_id: "cli-user".to_owned(),
        ..ConversationState::default()
    };
    for (name, value) in options.vars {
        state.set(name, value.clone(), Persistence::Session);
    }
    let turn = engine
        .run_turn(
            state,
            Start::Interaction(options.interaction.to_owned()),
            options.message,
        )
        .await?;
    let mut stdout = std::io::stdout().lock();
    if options.json {
        let json = serde_json::to_string_pretty(&turn.to_json())?;
        writeln!(stdout, "{}", shown.text(&json))?;
    } else {
        write!(stdout, "{}", shown.text(&trace(&turn)))?;
    }
    if let (Some(recorder), Some(dir)) = (&recorder, options.record) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let exchanges = recorder.take();
        for (name, exchange) in &exchanges {
            let path = dir.join(name);
            std::fs::write(&path, serde_json::to_string_pretty(exchange)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let _ = writeln!(
            std::io::stderr(),
            "recorded {} exchange(s) in {}",
            exchanges.len(),
            dir.display()
        );
    }
    if let Some(stub) = &stub {
        let unanswered = stub.take_unanswered();
        if !unanswered.is_empty() {
            for call in &unanswered {
                let _ = writeln!(
                    std::io::stderr(),
                    "error: no answer for {}",
                    shown.text(call)
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The turn as a bot author reads it: each interaction, its call, fields,
/// rule and messages, then where the conversation goes.
pub(crate) fn trace(turn: &Turn) -> String {
    let mut out = String::new();
    for step in &turn.steps {
        out.push_str(&format!("▸ {}\n", step.interaction));
        if let Some(call) = &step.call {
            let outcome = match (call.status, &call.failure) {
                (Some(status), _) => {
                    format!("{status}{}", if call.success { "" } else { " (failure)" })
                }
                (None, Some(failure)) => format!("failed: {failure}"),
                (None, None) => "failed".to_owned(),
            };
            out.push_str(&format!(
                "  {} → {outcome} in {} ms\n",
                call.request_line,
                call.elapsed.as_millis()
            ));
            for (key, value) in &call.fields {
                out.push_str(&format!("  field {key} = {}\n", value.text()));
            }
        }
        for error in &step.script_errors {
            out.push_str(&format!("  script error: {error}\n"));
        }
        if let Some(rule) = &step.rule {
            out.push_str(&format!("  rule: {rule}\n"));
        }
        for message in &step.messages {
            out.push_str(&format!("  bot: {message}\n"));
        }
    }
    out.push_str(&format!("next: {}\n", turn.next));
    out
}
