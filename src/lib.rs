//! freshd keeps OAuth 2.0 access tokens fresh and runs scheduled jobs with them.
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod fake;
pub mod fsutil;
pub mod jobs;
pub mod oauth;
pub mod scheduler;
pub mod secrets;
pub mod status;
pub mod systemd;
