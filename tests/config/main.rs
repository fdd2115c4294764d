//! Integration tests of `patchbay-config`: fixtures in, diagnostics out.

mod botcontext_doc;
mod examples;
mod fixtures;
mod hostile_input;
mod schema;

use std::path::{Path, PathBuf};

/// The workspace root, where `examples/` and `tests/fixtures/` live.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
