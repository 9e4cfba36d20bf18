//! The report `freshd status` prints, in the JSON shape of DESIGN §2.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The whole report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReport {
    pub accounts: Vec<AccountStatus>,
    pub jobs: Vec<JobReport>,
}

/// One account. `state` is `ok`, `refreshing`, `backoff`, `needs_login` or
/// `no_token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountStatus {
    pub name: String,
    pub state: String,
    pub access_token_expires_at: Option<Timestamp>,
    pub last_refresh: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Something a person should do soon, e.g. the refresh token's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Set while a rotated refresh token is held in memory because the
    /// store refused it: what failed and what freshd does about it.
    #[serde(default)]
    pub store_error: Option<String>,
    /// A long-lived access token that is never refreshed (no expiry).
    #[serde(default, rename = "static")]
    pub static_token: bool,
}

/// One job. `last_result` is `ok`, `error`, `skipped` or null.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobReport {
    pub name: String,
    pub account: String,
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
}

impl StatusReport {
    /// The one-line summary for systemd's `STATUS=`.
    pub fn summary(&self) -> String {
        let ok = self.accounts.iter().filter(|a| a.state == "ok").count();
        let mut line = format!("{ok}/{} accounts ok", self.accounts.len());
        let attention: Vec<String> = self
            .accounts
            .iter()
            .filter(|a| a.state != "ok")
            .map(|a| format!("{}: {}", a.name, a.state))
            .collect();
        if !attention.is_empty() {
            line.push_str(&format!(" ({})", attention.join(", ")));
        }
        let failed = self
            .jobs
            .iter()
            .filter(|j| j.last_result.as_deref() == Some("error"))
            .count();
        line.push_str(&format!(", {} jobs", self.jobs.len()));
        if failed > 0 {
            line.push_str(&format!(", {failed} failed last run"));
        }
        line
    }

    /// The human-readable form of `freshd status`.
    pub fn render(&self) -> String {
        let t = |t: &Option<Timestamp>| {
            t.map_or_else(
                || "-".to_owned(),
                |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            )
        };
        let mut out = String::from("ACCOUNTS\n");
        for a in &self.accounts {
            out.push_str(&format!(
                "  {:<16} {:<12} expires {}  last refresh {}\n",
                a.name,
                a.state,
                t(&a.access_token_expires_at),
                t(&a.last_refresh)
            ));
            if let Some(e) = &a.last_error {
                out.push_str(&format!("    last error: {e}\n"));
            }
            if let Some(w) = &a.warning {
                out.push_str(&format!("    warning: {w}\n"));
            }
        }
        out.push_str("JOBS\n");
        for j in &self.jobs {
            out.push_str(&format!(
                "  {:<16} {:<12} next {}  last {} ({})\n",
                j.name,
                j.account,
                t(&j.next_run),
                t(&j.last_run),
                j.last_result.as_deref().unwrap_or("never run")
            ));
            if let Some(e) = &j.last_error {
                out.push_str(&format!("    last error: {e}\n"));
            }
        }
        out
    }
}
