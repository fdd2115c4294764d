//! Integration tests of `patchbay-script` on real V8.

mod bot_context;
mod context;
mod flow;
mod host_api;
mod isolation;
mod limits;
mod platform;
mod slots;

use std::time::Duration;

use patchbay_script::{
    Limits, Realm, RuntimeOptions, Script, ScriptError, ScriptInput, ScriptOutput, ScriptRuntime,
};

/// A runtime with one worker and tight limits, so limit tests are quick.
fn runtime() -> ScriptRuntime {
    ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        realm_share: 1,
        limits: Limits {
            time: Duration::from_millis(300),
            heap_bytes: 32 * 1024 * 1024,
            output_bytes: 64 * 1024,
        },
    })
}

/// A script in a realm of its own.
async fn compile(runtime: &ScriptRuntime, code: &str) -> Script {
    compile_in(runtime, &runtime.realm("test bot"), code).await
}

/// A script in `realm`: scripts of one realm share a context on each
/// worker, which is what the reset after each run must keep clean.
async fn compile_in(runtime: &ScriptRuntime, realm: &Realm, code: &str) -> Script {
    runtime
        .compile(realm, "test script", code)
        .await
        .expect("compiles")
}

async fn run(
    runtime: &ScriptRuntime,
    code: &str,
    input: ScriptInput,
) -> Result<ScriptOutput, ScriptError> {
    let script = compile(runtime, code).await;
    runtime.run(&script, input).await
}
