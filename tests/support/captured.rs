//! What the suites showed: logs, errors, debug output and JSON answers,
//! kept under `target/captured/<area>/<name>.txt` so that one scan after
//! every suite has run (`cargo xtask test`) looks for the canary secrets in
//! all of it, besides each test's own check.

use std::io::Write as _;
use std::path::PathBuf;

/// The canary planted in credentials and environments. Every canary of the
/// suites starts with `canary-`, and that prefix is what the final scan
/// looks for.
pub const CANARY: &str = "canary-9d41e7-never-shown";

/// The largest part of one capture kept; a long load run's logs are
/// checked whole by their test and sampled here.
const MAX_KEPT: usize = 32 * 1024 * 1024;

/// The directory the final scan reads.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/captured")
}

/// Appends `text` to `<area>/<name>.txt`.
pub fn keep(area: &str, name: &str, text: &str) {
    let dir = dir().join(area);
    let _ = std::fs::create_dir_all(&dir);
    let file_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut end = text.len().min(MAX_KEPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{file_name}.txt")));
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{}", &text[..end]);
    }
}
