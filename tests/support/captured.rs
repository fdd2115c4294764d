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

/// Whether `text` shows `secret` in any encoding patchbay produces: as it
/// is, percent- or form-encoded, or inside a base64 word (standard or
/// URL-safe, a Basic header's pair included), itself percent-encoded or
/// not. Decodes independently of the redactor under test.
pub fn shows(text: &str, secret: &str) -> bool {
    use base64::Engine as _;
    // Lenient: a word glued to other letters still decodes, its tail
    // garbled.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let mut readings = vec![text.to_owned(), percent_decoded(text)];
    let standard_word = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    let url_safe_word = |c: char| standard_word(c) || c == '-' || c == '_';
    let words = text
        .split(|c| !standard_word(c))
        .chain(text.split(|c| !url_safe_word(c)));
    for word in words.filter(|word| word.len() >= 8) {
        let standard = word.replace('-', "+").replace('_', "/");
        // The word may start anywhere in a base64 group.
        for skip in 0..4 {
            let rest = &standard[skip..];
            let whole = rest.len() - usize::from(rest.len() % 4 == 1);
            if let Ok(bytes) = lenient.decode(&rest[..whole]) {
                let decoded = String::from_utf8_lossy(&bytes).into_owned();
                readings.push(percent_decoded(&decoded));
                readings.push(decoded);
            }
        }
    }
    readings.iter().any(|reading| reading.contains(secret))
}

/// `%XX` escapes decoded, `+` read as a space (form encoding).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                at += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
