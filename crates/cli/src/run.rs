//! `patchbay run`: one turn, shown step by step or as JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use patchbay_engine::rules::find_interaction;
use patchbay_engine::{
    Attributes, ConversationState, Engine, EngineError, EngineOptions, Env, Start, Turn,
    UserMessage,
};
use patchbay_script::{Persistence, RuntimeOptions, ScriptRuntime};
use patchbay_transport::ProxyConfig;

use anyhow::Context;
use patchbay_engine::credentials::KnownSecrets;
use patchbay_testing::{Answer, Recorder, Recordings, Redactor, StubUpstream, stub_options};

use crate::bot_env::BotEnv;
use crate::run_error::RunError;
use crate::token_store::FileTokenStore;

pub(crate) struct RunOptions<'a> {
    pub(crate) bot: &'a Path,
    /// Where the turn starts; without one, from the message.
    pub(crate) interaction: Option<&'a str>,
    pub(crate) message: &'a str,
    /// The clicked button's or quick reply's payload.
    pub(crate) payload: Option<&'a str>,
    pub(crate) vars: &'a [(String, String)],
    pub(crate) env: &'a [(String, String)],
    /// The attributes the platform sends with the turn (`--attr`).
    pub(crate) attributes: Option<Attributes>,
    pub(crate) json: bool,
    /// Keep each call's response and show it (`--show-body`).
    pub(crate) show_body: bool,
    pub(crate) token_store: &'a Path,
    pub(crate) record: Option<&'a Path>,
    pub(crate) replay: Option<&'a Path>,
    /// The state to start from (`serve`'s `state` JSON).
    pub(crate) state: Option<&'a Path>,
    /// Where to write the state the turn leaves.
    pub(crate) save_state: Option<&'a Path>,
}

/// Runs the turn. What it prints (the trace or JSON, replay and recording
/// messages, its error) passes through the bot's [`Redactor`]: an upstream
/// may echo a secret (a Basic header, an API key in a URL), in any
/// encoding, and `run` output is pasted into tickets.
pub(crate) async fn run(options: RunOptions<'_>) -> Result<ExitCode, RunError> {
    let bot = crate::load_bot_or_report(options.bot).map_err(|error| match error {
        crate::LoadError::Unreadable(error) => RunError::bot_unreadable(format!("{error:#}")),
        crate::LoadError::Invalid(report) => RunError::invalid_bot(&report),
    })?;
    if let Some(interaction) = options.interaction
        && find_interaction(&bot, interaction).is_none()
    {
        return Err(RunError::unknown_interaction(format!(
            "{} has no interaction `{}`",
            options.bot.display(),
            interaction
        )));
    }
    // A bad state is found before anything runs or calls out.
    let state = match options.state {
        Some(path) => read_state(path, &bot)?,
        None => ConversationState {
            conversation_id: "cli".to_owned(),
            user_id: "cli-user".to_owned(),
            ..ConversationState::default()
        },
    };
    let mut overrides: std::collections::HashMap<String, String> =
        options.env.iter().cloned().collect();
    if options.replay.is_some() {
        // Recordings hold no secret, so a replay needs none: a secret the
        // run is not given stands in as a placeholder (which is masked
        // like the real one wherever it would show).
        let given = BotEnv::with_overrides(&bot, overrides.clone());
        for name in secret_env_names(&bot) {
            if given.get(&name).is_none() {
                let placeholder = format!("replay-placeholder-{name}");
                overrides.insert(name, placeholder);
            }
        }
    }
    let env = BotEnv::with_overrides(&bot, overrides);
    let env: Env = Arc::new(move |name: &str| env.get(name));
    let scripts = ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        ..RuntimeOptions::default()
    });
    let redactor = Redactor::new(&bot, env.as_ref());
    crate::logging::mask(&KnownSecrets::of_bot(&bot, env.as_ref()));
    run_redacted(options, bot, state, env, scripts, redactor.clone())
        .await
        .map_err(|error| error.map_message(|text| redactor.text(text)))
}

/// The environment variables a bot's credentials take their secrets
/// from, and those its integrations' headers read.
fn secret_env_names(bot: &patchbay_engine::config::Bot) -> Vec<String> {
    use patchbay_engine::config::{Reference, Template};
    let env_names = |template: &Template| -> Vec<String> {
        template
            .references()
            .filter_map(|reference| match reference {
                Reference::Env(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    };
    let mut names: Vec<String> = bot
        .credentials
        .iter()
        .flat_map(|credential| credential.kind.secrets())
        .flat_map(|(_, template)| env_names(template))
        .collect();
    names.extend(
        bot.integrations
            .iter()
            .flat_map(|integration| integration.headers.values())
            .flat_map(env_names),
    );
    names.sort();
    names.dedup();
    names
}

/// The transport's failure kinds that mean a call never reached its
/// upstream: `run` exits 1 when a call failed so (docs/testing.md).
const UNREACHABLE: [&str; 5] = ["dns", "connect", "tls", "timeout", "blocked"];

/// Each call of the turn that failed to reach its upstream, as
/// `METHOD URL: why (kind)`.
fn unreachable_calls(turn: &Turn) -> Vec<String> {
    turn.steps
        .iter()
        .filter_map(|step| step.call.as_ref())
        .filter_map(|call| {
            let failure = call.failure.as_ref()?;
            UNREACHABLE.contains(&failure.kind).then(|| {
                format!(
                    "{}: {} ({})",
                    call.request_line, failure.message, failure.kind
                )
            })
        })
        .collect()
}

/// A failure that is not the engine's, with its cause chain.
fn failed(error: impl Into<anyhow::Error>) -> RunError {
    RunError::failed(format!("{:#}", error.into()))
}

/// Recordings that could not be read or written.
fn recordings_failed(error: impl Into<anyhow::Error>) -> RunError {
    RunError::recordings(format!("{:#}", error.into()))
}

fn engine_failed(error: &EngineError) -> RunError {
    RunError::engine(error, format!("{error:#}"))
}

/// Reads `--state`: the JSON `serve` answers as `state`.
fn read_state(
    path: &Path,
    bot: &patchbay_engine::config::Bot,
) -> Result<ConversationState, RunError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        RunError::invalid_state(format!("cannot read {}: {error}", path.display()))
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|error| {
        RunError::invalid_state(format!("{} is not JSON: {error}", path.display()))
    })?;
    ConversationState::from_json(json, bot)
        .map_err(|error| RunError::invalid_state(format!("{}: state: {error}", path.display())))
}

/// Writes `--save-state`: the state as `serve` answers it, the bot's
/// secrets masked as in everything `run` shows. It goes to a file beside
/// the target first, then takes its place, so a failed write never leaves
/// half a state (and `--state` and `--save-state` may name one file).
fn save_state(path: &Path, state: &ConversationState, shown: &Redactor) -> Result<(), RunError> {
    let unwritable = |error: &dyn std::fmt::Display| {
        RunError::state_unwritable(format!("cannot write {}: {error}", path.display()))
    };
    let json =
        serde_json::to_string_pretty(&state.to_json()).map_err(|error| unwritable(&error))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, shown.text(&json) + "\n").map_err(|error| unwritable(&error))?;
    std::fs::rename(&temporary, path).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        unwritable(&error)
    })
}

async fn run_redacted(
    options: RunOptions<'_>,
    bot: patchbay_engine::config::Bot,
    mut state: ConversationState,
    env: Env,
    scripts: ScriptRuntime,
    redactor: Redactor,
) -> Result<ExitCode, RunError> {
    let shown = redactor.clone();
    // Recording and replaying both put a local upstream between the engine
    // and the world: a recorder that calls out, or the recordings.
    let (stub, recorder) = match (options.record, options.replay) {
        (Some(_), _) => {
            let recorder = Arc::new(Recorder::new(&bot, redactor).map_err(failed)?);
            let stub = StubUpstream::start(Arc::clone(&recorder) as Arc<dyn Answer>)
                .await
                .map_err(failed)?;
            (Some(stub), Some(recorder))
        }
        (None, Some(dir)) => {
            let files = crate::test::read_recordings(dir).map_err(recordings_failed)?;
            if files.is_empty() {
                return Err(RunError::recordings(format!(
                    "no recordings (*.json) in {}",
                    dir.display()
                )));
            }
            let recordings = Recordings::parse(files, redactor).map_err(recordings_failed)?;
            let stub = StubUpstream::start(Arc::new(recordings))
                .await
                .map_err(failed)?;
            (Some(stub), None)
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
        engine_options.token_cache =
            Arc::new(FileTokenStore::open(options.token_store).map_err(failed)?);
    }
    let engine = Engine::new(bot, engine_options)
        .await
        .map_err(|error| engine_failed(&error))?;
    for (name, value) in options.vars {
        state.set(name, value.clone(), Persistence::Session);
    }
    let start = options
        .interaction
        .map_or(Start::Message, |name| Start::Interaction(name.to_owned()));
    let turn = engine
        .run_turn(
            state,
            start,
            UserMessage {
                text: options.message.to_owned(),
                payload: options.payload.map(str::to_owned),
                attributes: options.attributes,
                show_responses: options.show_body,
            },
        )
        .await
        .map_err(|error| engine_failed(&error))?;
    // Calls the local upstream could not answer fail the run; with --json
    // the turn then comes inside the error object, so stdout stays one
    // object.
    let unanswered: Vec<String> = stub
        .as_ref()
        .map(|stub| stub.take_unanswered())
        .unwrap_or_default()
        .iter()
        .map(|call| shown.text(call))
        .collect();
    // A call that never reached its upstream fails the run (exit 1) once
    // the turn is shown: the turn is real (it took the failure path), so
    // its state is kept; with --json it comes inside the error object.
    let unreachable: Vec<String> = unreachable_calls(&turn)
        .iter()
        .map(|call| shown.text(call))
        .collect();
    // The state is written before anything is printed, so a failure to
    // write it is the run's one outcome (with --json, its one object). A
    // turn whose calls went unanswered failed: its state is not kept.
    if let (Some(path), true) = (options.save_state, unanswered.is_empty()) {
        save_state(path, &turn.state, &shown)?;
    }
    let shown_json = if options.json {
        let json = serde_json::to_string_pretty(&patchbay_server::TurnAnswer::new(&turn))
            .map_err(failed)?;
        Some(shown.text(&json))
    } else {
        None
    };
    let mut stdout = std::io::stdout().lock();
    match &shown_json {
        Some(_) if !unanswered.is_empty() || !unreachable.is_empty() => {}
        Some(json) => writeln!(stdout, "{json}").map_err(failed)?,
        None => write!(stdout, "{}", shown.text(&trace(&turn))).map_err(failed)?,
    }
    if let (Some(recorder), Some(dir)) = (&recorder, options.record) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(recordings_failed)?;
        let exchanges = recorder.take();
        for (name, exchange) in &exchanges {
            let path = dir.join(name);
            let text = serde_json::to_string_pretty(exchange).map_err(recordings_failed)? + "\n";
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(recordings_failed)?;
        }
        let _ = writeln!(
            std::io::stderr(),
            "recorded {} exchange(s) in {}",
            exchanges.len(),
            dir.display()
        );
    }
    if !unanswered.is_empty() {
        let turn = shown_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        return Err(RunError::replay_miss(unanswered, turn));
    }
    if !unreachable.is_empty() {
        let turn = shown_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        return Err(RunError::upstream_unreachable(unreachable, turn));
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
            if let Some(response) = &call.response {
                out.push_str(&response_text(response));
            }
            for (key, value) in &call.fields {
                out.push_str(&format!("  field {key} = {}\n", value.text()));
            }
        }
        for error in &step.script_errors {
            out.push_str(&format!("  script error: {error}\n"));
        }
        for message in &step.debug {
            out.push_str(&format!("  debug: {message}\n"));
        }
        for event in &step.events {
            out.push_str(&format!(
                "  event: {} ({}) detail: {}\n",
                event.name, event.user_message, event.detail
            ));
        }
        if let Some(rule) = &step.rule {
            out.push_str(&format!("  rule: {rule}\n"));
        }
        for message in &step.messages {
            out.push_str(&format!("  bot: {message}\n"));
        }
        for action in patchbay_engine::actions_json(&step.actions)
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push_str(&format!("  action: {action}\n"));
        }
    }
    out.push_str(&format!("next: {}\n", turn.next));
    out
}

/// A call's response as `--show-body` shows it, under the call: its status
/// line and headers, its body as received, then the document its fields
/// read (pretty when it is whole JSON), each line indented.
fn response_text(response: &patchbay_engine::ResponseView) -> String {
    let mut out = format!("    response {}\n", response.status);
    for (name, value) in &response.headers {
        out.push_str(&format!("    {name}: {value}\n"));
    }
    let indented = |label: &str, text: &str| {
        let mut block = format!("    {label}:\n");
        for line in text.lines() {
            block.push_str(&format!("      {line}\n"));
        }
        block
    };
    out.push_str(&indented(
        &format!("body ({} bytes)", response.body_bytes),
        &response.body,
    ));
    if let Some(document) = &response.document {
        let pretty = serde_json::from_str::<serde_json::Value>(document)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| document.clone());
        out.push_str(&indented("document (what the fields read)", &pretty));
    }
    out
}
