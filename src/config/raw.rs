//! The first stage of configuration: the TOML file as serde sees it.
//!
//! Every table denies unknown keys, and every value that validation may
//! complain about is kept `Spanned`, so that the second stage
//! ([`super::validate`]) can name the line and column of a bad value.
//! Job keys are one flat struct rather than a tagged enum: serde's tagged
//! enums lose spans, and a flat struct lets validation say "key `playlist` is
//! not valid for a job of type `now_playing`" instead of a generic error.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub accounts: BTreeMap<Spanned<String>, Spanned<RawAccount>>,
    #[serde(default)]
    pub jobs: BTreeMap<Spanned<String>, Spanned<RawJob>>,
}

/// `[daemon]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub timezone: Option<Spanned<String>>,
    pub secrets: Option<Spanned<String>>,
    pub socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
    pub notify: Option<Spanned<Vec<String>>>,
}

/// `[accounts.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub provider: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub client_secret: Option<Spanned<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub redirect_uri: Option<Spanned<String>>,
    pub grant: Option<Spanned<String>>,
    pub refresh_before_expiry: Option<Spanned<String>>,
    pub authorize_url: Option<Spanned<String>>,
    pub token_url: Option<Spanned<String>>,
    pub api_base_url: Option<Spanned<String>>,
    pub refresh_token_lifetime: Option<Spanned<String>>,
    pub issuer: Option<Spanned<String>>,
    pub revocation_url: Option<Spanned<String>>,
    pub token_endpoint_auth_method: Option<Spanned<String>>,
    pub authorize_params: Option<Spanned<BTreeMap<String, String>>>,
    pub token_params: Option<Spanned<BTreeMap<String, String>>>,
    pub notify: Option<Spanned<Vec<String>>>,
}

/// `[jobs.NAME]`: the union of every job type's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub account: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    // now_playing
    pub history: Option<Spanned<String>>,
    pub on_change: Option<Spanned<Vec<String>>>,
    // playlist
    pub playlist: Option<Spanned<String>>,
    pub source: Option<Spanned<RawSource>>,
    pub mode: Option<Spanned<String>>,
    pub max_items: Option<Spanned<i64>>,
    pub position: Option<Spanned<String>>,
    // http
    pub method: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub query: Option<Spanned<BTreeMap<String, String>>>,
    pub body: Option<Spanned<toml::Value>>,
    pub output: Option<Spanned<String>>,
    pub max_size: Option<Spanned<String>>,
    // command
    pub command: Option<Spanned<Vec<String>>>,
}

/// A playlist job's `source = { kind = …, … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub kind: Option<Spanned<String>>,
    pub time_range: Option<Spanned<String>>,
    pub limit: Option<Spanned<i64>>,
    pub playlist: Option<Spanned<String>>,
    pub queries: Option<Spanned<Vec<String>>>,
    pub uris: Option<Spanned<Vec<String>>>,
    pub file: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<String>>>,
}
