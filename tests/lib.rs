//! Shared helpers of the integration tests: real local servers.

#[path = "support/client.rs"]
pub mod client;
#[path = "support/oauth.rs"]
pub mod oauth;
#[path = "support/servers.rs"]
pub mod servers;
#[path = "support/table.rs"]
pub mod table;
