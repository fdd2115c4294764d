//! Shared helpers of the integration tests: real local servers, tables,
//! captured output.

#[path = "support/captured.rs"]
pub mod captured;
#[path = "support/client.rs"]
pub mod client;
#[path = "support/oauth.rs"]
pub mod oauth;
#[path = "support/redis.rs"]
pub mod redis;
#[path = "support/servers.rs"]
pub mod servers;
#[path = "support/table.rs"]
pub mod table;

/// JavaScript defining `reachableIntrinsics()`: every intrinsic a bot script
/// can reach, as `[[path, object], ...]` (tests/fixtures/intrinsics.js).
pub const INTRINSICS_JS: &str = include_str!("fixtures/intrinsics.js");

/// Resident memory of a process (`"self"`, or a pid), in KiB; 0 when it
/// cannot be read.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// A bot file's text loaded, or the test fails with its diagnostics.
pub fn bot(name: &str, text: &str) -> patchbay_config::Bot {
    match patchbay_config::load(name, text) {
        Ok(loaded) => loaded.bot,
        Err(report) => panic!("{}", report.render(patchbay_config::RenderStyle::Plain)),
    }
}
