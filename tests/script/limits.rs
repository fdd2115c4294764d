//! Limits: time, heap, recursion, output; each ends the run with a clear
//! error, and the runtime keeps working.

use std::time::{Duration, Instant};

use patchbay_script::{ScriptError, ScriptInput};

use crate::{run, runtime};

#[tokio::test]
async fn syntax_errors_name_line_and_column() {
    let runtime = runtime();
    let error = runtime
        .compile(
            "integration search, transformScript",
            "var a = 1;\nvar b = ;\n",
        )
        .await
        .expect_err("syntax error");
    match error {
        ScriptError::Syntax {
            owner,
            line,
            column,
            message,
        } => {
            assert_eq!(owner, "integration search, transformScript");
            assert_eq!((line, column), (2, 9));
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_endless_loop_ends_at_the_time_limit() {
    let runtime = runtime();
    let started = Instant::now();
    let error = run(&runtime, "while (true) {}", ScriptInput::default())
        .await
        .expect_err("stopped");
    let elapsed = started.elapsed();
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    assert!(
        elapsed < Duration::from_millis(300).mul_f64(1.5),
        "took {elapsed:?}"
    );
    let after = run(
        &runtime,
        "botContext.sendMessage('still here')",
        ScriptInput::default(),
    )
    .await
    .expect("the runtime goes on");
    assert_eq!(after.messages, vec!["still here"]);
}

#[tokio::test]
async fn a_caught_termination_is_still_a_timeout() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "for (;;) { try { while (true) {} } catch (e) { botContext.sendMessage('caught'); } }",
        ScriptInput::default(),
    )
    .await
    .expect_err("stopped");
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn a_heap_bomb_ends_cleanly_and_the_next_run_works() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "var keep = []; while (true) { keep.push(new Array(100000).fill('x'.repeat(10))); }",
        ScriptInput::default(),
    )
    .await
    .expect_err("heap limit");
    assert!(matches!(error, ScriptError::HeapLimit { .. }), "{error:?}");
    let after = run(
        &runtime,
        "botContext.sendMessage('recovered')",
        ScriptInput::default(),
    )
    .await
    .expect("a fresh isolate");
    assert_eq!(after.messages, vec!["recovered"]);
}

#[tokio::test]
async fn deep_recursion_is_a_range_error() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "function f(n) { return f(n + 1) + 1; } f(0);",
        ScriptInput::default(),
    )
    .await
    .expect_err("stack overflow");
    match error {
        ScriptError::Exception { message, .. } => {
            assert!(
                message.contains("Maximum call stack size exceeded"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn output_is_bounded() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "for (var i = 0; i < 100000; i++) { botContext.sendMessage('x'.repeat(100)); }",
        ScriptInput::default(),
    )
    .await
    .expect_err("too much output");
    assert!(
        matches!(error, ScriptError::OutputLimit { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_thrown_error_names_its_line() {
    let runtime = runtime();
    let error = run(
        &runtime,
        "var a = 1;\nthrow new TypeError('bad input');",
        ScriptInput::default(),
    )
    .await
    .expect_err("throws");
    assert_eq!(
        error.to_string(),
        "test script: TypeError: bad input (line 2)"
    );
}
