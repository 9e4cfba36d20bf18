//! freshd keeps OAuth 2.0 access tokens fresh and runs scheduled jobs with them.
pub mod config;
pub mod fsutil;
pub mod oauth;
pub mod scheduler;
pub mod secrets;
pub mod status;
