//! Shared helpers of the integration tests: real local servers.

#[path = "support/servers.rs"]
pub mod servers;
