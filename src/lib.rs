//! freshd keeps OAuth 2.0 access tokens fresh and runs scheduled jobs with
//! them, as a systemd service.
//!
//! # Layout
//!
//! - [`config`]: the TOML file in two stages (raw serde types, then a
//!   validated [`config::Config`] whose errors name line, column and key).
//! - [`secrets`]: where refresh tokens live: the Secret Service, systemd
//!   credentials, or memory; every call off the async workers with a deadline.
//! - [`oauth`]: one [`oauth::TokenManager`] per account (refresh ahead of
//!   expiry, backoff, rotation), the token endpoint client (client
//!   authentication, revocation), issuer discovery, `login` and `logout`.
//! - [`time`]: the wall and boot clocks, and waits that survive suspends and
//!   clock changes.
//! - [`scheduler`]: cron and intervals on the wall clock; every job as data
//!   in one timer table, a task only while it runs.
//! - [`api`]: calling an API with an access token (redaction of secrets).
//! - [`jobs`]: what a job does: one file per job type (a [`jobs::JobType`]:
//!   its keys, checks and body), listed in [`jobs::TYPES`], and how a run
//!   ended ([`jobs::RunOutcome`]).
//! - [`daemon`]: wiring: start, serve and shutdown; the registry of running
//!   accounts and jobs with the reload's diffing; the control handler; the
//!   heartbeat.
//! - [`control`]: the control socket: its typed protocol
//!   (`control/protocol.rs`), server and client.
//! - [`commands`]: `check`, `login`, `import-token` and `logout`.
//! - [`client`]: `freshd token`, `status`, `run-job` and `reload`: what they
//!   print and how they exit.
//! - [`status`]: the `status` report.
//! - [`notify`]: the `notify` command, when a person must act.
//! - [`systemd`]: sd_notify messages and journald-or-stderr logging.
//! - [`memory`]: the C allocator's thresholds, set once at start.
//! - [`demo`]: `freshd demo`, the daemon against the fake provider of the
//!   `freshd-fake` crate (`crates/freshd-fake`; its `testing` feature, for
//!   the tests only, adds fault injection and test hooks).
//! - [`paths`]: where the config, the state directory and the socket are.
//! - [`setup`]: start-up steps shared by the daemon and the commands.
//! - [`fsutil`]: atomic, private file writes.
//! - [`http`]: the token-endpoint and Web API clients and their redirect rules.
//! - [`statelock`]: one daemon per state directory (`freshd.lock`).
//! - [`sync`]: locks that tolerate poisoning.
//! - [`cli`]: the command line.

pub mod api;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod fsutil;
pub mod http;
pub mod jobs;
pub mod memory;
pub mod notify;
pub mod oauth;
pub mod paths;
pub mod scheduler;
pub mod secrets;
pub mod setup;
pub mod spotify;
pub mod statelock;
pub mod status;
pub mod sync;
pub mod systemd;
pub mod time;
