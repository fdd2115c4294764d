//! Integration tests of `patchbay-script` on real V8.

mod host_api;
mod isolation;
mod limits;

use std::time::Duration;

use patchbay_script::{
    Limits, RuntimeOptions, Script, ScriptError, ScriptInput, ScriptOutput, ScriptRuntime,
};

/// A runtime with one worker and tight limits, so limit tests are quick.
fn runtime() -> ScriptRuntime {
    ScriptRuntime::new(RuntimeOptions {
        workers: 1,
        queue: 16,
        realm_share: 1,
        limits: Limits {
            time: Duration::from_millis(300),
            heap_bytes: 32 * 1024 * 1024,
            output_bytes: 64 * 1024,
        },
    })
}

async fn compile(runtime: &ScriptRuntime, code: &str) -> Script {
    runtime
        .compile(&runtime.realm("test bot"), "test script", code)
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
