//! The report `freshd status` prints, in the JSON shape of DESIGN §2.
//!
//! The JSON only ever gains fields (`daemon`, `running_since`, …); scripts
//! that read the first version keep working.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

mod rfc3339;
mod snapshot;
#[cfg(test)]
pub(crate) use snapshot::sample;
pub use snapshot::{JobRow, JsonPieces, StatusSnapshot};

/// The whole report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReport {
    pub accounts: Vec<AccountStatus>,
    pub jobs: Vec<JobReport>,
    /// Which daemon answered; absent from daemons older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonInfo>,
}

/// The header of `freshd status`, like `systemctl status`'s.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    pub running_since: Timestamp,
    /// The config file, or a description of a built-in one (the demo).
    pub config: String,
    pub socket: String,
    /// The daemon's time zone (IANA name), in which `status` shows times.
    pub timezone: String,
}

static STARTED: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
/// The same moment on the monotonic clock, set only by [`mark_started`].
static STARTED_AT: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Notes when this process started; `main` calls it first thing.
pub fn mark_started() {
    STARTED_AT.get_or_init(std::time::Instant::now);
    STARTED.get_or_init(Timestamp::now);
}

/// When `main` noted this process started (its exec, near enough); `None`
/// when the daemon runs inside another program (the tests).
pub fn started_at() -> Option<std::time::Instant> {
    STARTED_AT.get().copied()
}

impl DaemonInfo {
    /// This process, with its config, socket and time zone.
    pub fn this_process(config: String, socket: String, timezone: String) -> Self {
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            running_since: *STARTED.get_or_init(Timestamp::now),
            config,
            socket,
            timezone,
        }
    }
}

/// An account's `state` in `status`: its JSON word is [`AccountState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Ok,
    Refreshing,
    Backoff,
    NeedsLogin,
    NoToken,
}

impl AccountState {
    /// The word `status` prints (the same as the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Ok => "ok",
            AccountState::Refreshing => "refreshing",
            AccountState::Backoff => "backoff",
            AccountState::NeedsLogin => "needs_login",
            AccountState::NoToken => "no_token",
        }
    }

    /// Whether the account waits for a person (`freshd status` exits 3).
    pub fn needs_person(self) -> bool {
        matches!(self, AccountState::NeedsLogin | AccountState::NoToken)
    }
}

impl PartialEq<&str> for AccountState {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

/// How a job's last run ended, in `status` and in `run-job`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    Ok,
    Error,
    Skipped,
}

impl JobResult {
    /// The word `status` prints (the same as the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Ok => "ok",
            JobResult::Error => "error",
            JobResult::Skipped => "skipped",
        }
    }
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountStatus {
    pub name: String,
    pub state: AccountState,
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub access_token_expires_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "rfc3339::option")]
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

/// One job; `last_result` is null before its first run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobReport {
    pub name: String,
    pub account: String,
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub next_run: Option<Timestamp>,
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub last_run: Option<Timestamp>,
    pub last_result: Option<JobResult>,
    pub last_error: Option<String>,
    /// When the run going on now started; null when the job is idle. While
    /// it runs, `last_run` is this run's start and `last_result` the
    /// previous run's outcome.
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub running_since: Option<Timestamp>,
}

impl StatusReport {
    /// The one-line summary for systemd's `STATUS=`.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for a in &self.accounts {
            summary.count_account(&a.name, a.state);
        }
        for j in &self.jobs {
            summary.count_job(j.last_result);
        }
        summary
    }

    /// Whether some account waits for a person: `needs_login`, `no_token`.
    pub fn needs_person(&self) -> bool {
        self.accounts.iter().any(|a| a.state.needs_person())
    }

    /// The human-readable form of `freshd status`: times to the second in
    /// the daemon's zone, expiry times already past marked as such.
    pub fn render(&self, now: Timestamp) -> String {
        let zone = self
            .daemon
            .as_ref()
            .map_or_else(TimeZone::system, |d| zone_named(&d.timezone));
        let mut out = String::new();
        if let Some(d) = &self.daemon {
            let _ = writeln!(
                out,
                "freshd {} (pid {}), running since {} ({} ago)\n  config {}\n  socket {}",
                d.version,
                d.pid,
                at(d.running_since, &zone),
                ago(d.running_since, now),
                d.config,
                d.socket
            );
        }
        out.push_str("ACCOUNTS\n");
        for a in &self.accounts {
            a.render(&mut out, now, &zone);
        }
        out.push_str("JOBS\n");
        for j in &self.jobs {
            j.render(&mut out, &zone);
        }
        out
    }
}

impl AccountStatus {
    /// This account's lines of `freshd status`.
    fn render(&self, out: &mut String, now: Timestamp, zone: &TimeZone) {
        let expiry = match self.access_token_expires_at {
            None if self.static_token => "static, no expiry".to_owned(),
            Some(e) if e <= now => format!("expired {} (passed)", at(e, zone)),
            e => format!("expires {}", maybe_at(e, zone)),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<12} {expiry}  last refresh {}",
            self.name,
            self.state.as_str(),
            maybe_at(self.last_refresh, zone)
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "    last error: {e}");
        }
        if let Some(w) = &self.warning {
            let _ = writeln!(out, "    warning: {w}");
        }
        if let Some(e) = &self.store_error {
            let _ = writeln!(out, "    NOT STORED: {e}");
        }
    }
}

impl JobReport {
    /// This job's lines of `freshd status`.
    fn render(&self, out: &mut String, zone: &TimeZone) {
        let previous = self.last_result.map(JobResult::as_str);
        let what = match self.running_since {
            Some(since) => format!(
                "running since {} (previous run: {})",
                at(since, zone),
                previous.unwrap_or("none")
            ),
            None => format!(
                "last {} ({})",
                maybe_at(self.last_run, zone),
                previous.unwrap_or("never run")
            ),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<12} next {}  {what}",
            self.name,
            self.account,
            maybe_at(self.next_run, zone)
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "    last error: {e}");
        }
    }
}

/// What systemd's `STATUS=` line says: how many accounts are ok (naming
/// the others), how many jobs, how many failed their last run. The
/// heartbeat keeps one up to date as accounts and jobs change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    accounts: usize,
    /// The accounts that are not ok, with their state, in the order counted.
    not_ok: Vec<(String, AccountState)>,
    jobs: usize,
    failed_jobs: usize,
}

impl Summary {
    pub fn count_account(&mut self, name: &str, state: AccountState) {
        self.accounts += 1;
        if state != AccountState::Ok {
            self.not_ok.push((name.to_owned(), state));
        }
    }

    pub fn count_job(&mut self, last_result: Option<JobResult>) {
        self.count_jobs(1, usize::from(last_result == Some(JobResult::Error)));
    }

    /// `jobs` more jobs, of which `failed` ended their last run in an error.
    pub fn count_jobs(&mut self, jobs: usize, failed: usize) {
        self.jobs += jobs;
        self.failed_jobs += failed;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ok = self.accounts - self.not_ok.len();
        write!(f, "{ok}/{} accounts ok", self.accounts)?;
        if !self.not_ok.is_empty() {
            let named: Vec<String> = self
                .not_ok
                .iter()
                .map(|(name, state)| format!("{name}: {}", state.as_str()))
                .collect();
            write!(f, " ({})", named.join(", "))?;
        }
        write!(f, ", {} jobs", self.jobs)?;
        if self.failed_jobs > 0 {
            write!(f, ", {} failed last run", self.failed_jobs)?;
        }
        Ok(())
    }
}

/// The zone `name` names, else the system's (a daemon without an IANA name
/// for its zone runs on this machine's).
fn zone_named(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|_| TimeZone::system())
}

/// `t` to the second in `zone`, e.g. `2026-11-25 10:00:00 CET`.
fn at(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `t` as [`at`] shows it, or `-` when there is none.
fn maybe_at(t: Option<Timestamp>, zone: &TimeZone) -> String {
    t.map_or_else(|| "-".to_owned(), |t| at(t, zone))
}

/// How long before `now` `since` was, to the second, e.g. `2h 5m 3s`.
fn ago(since: Timestamp, now: Timestamp) -> String {
    let secs = u64::try_from(now.duration_since(since).as_secs()).unwrap_or(0);
    crate::config::format_duration(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// From JSON, so that fields added to the report later (they are all
    /// optional) need no change here.
    fn report() -> StatusReport {
        serde_json::from_value(serde_json::json!({
            "accounts": [
                {
                    "name": "spotify",
                    "state": "ok",
                    "access_token_expires_at": "2026-07-01T10:30:00.123456789Z",
                    "last_refresh": "2026-07-01T09:30:00.5Z",
                    "last_error": null,
                },
                {
                    "name": "todoist",
                    "state": "needs_login",
                    "access_token_expires_at": "2026-07-01T09:00:00Z",
                    "last_refresh": null,
                    "last_error": "the provider refused the refresh token",
                },
            ],
            "jobs": [
                {
                    "name": "now-playing",
                    "account": "spotify",
                    "next_run": null,
                    "last_run": "2026-07-01T09:59:58Z",
                    "last_result": "ok",
                    "last_error": null,
                    "running_since": "2026-07-01T09:59:58Z",
                },
                {
                    "name": "top",
                    "account": "spotify",
                    "next_run": "2026-07-06T04:00:00Z",
                    "last_run": null,
                    "last_result": null,
                    "last_error": null,
                    "running_since": null,
                },
            ],
            "daemon": {
                "version": "0.1.0",
                "pid": 4242,
                "running_since": "2026-07-01T08:00:00Z",
                "config": "/home/me/.config/freshd/config.toml",
                "socket": "/run/user/1000/freshd/control.sock",
                "timezone": "Europe/Berlin",
            },
        }))
        .unwrap()
    }

    #[test]
    fn render_has_a_header_times_in_the_daemons_zone_and_marks_passed_expiry() {
        let text = report().render(ts("2026-07-01T10:00:00Z"));
        let expected = "\
freshd 0.1.0 (pid 4242), running since 2026-07-01 10:00:00 CEST (2h ago)
  config /home/me/.config/freshd/config.toml
  socket /run/user/1000/freshd/control.sock
ACCOUNTS
  spotify          ok           expires 2026-07-01 12:30:00 CEST  last refresh 2026-07-01 11:30:00 CEST
  todoist          needs_login  expired 2026-07-01 11:00:00 CEST (passed)  last refresh -
    last error: the provider refused the refresh token
JOBS
  now-playing      spotify      next -  running since 2026-07-01 11:59:58 CEST (previous run: ok)
  top              spotify      next 2026-07-06 06:00:00 CEST  last - (never run)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn needs_person_is_needs_login_or_no_token() {
        let mut r = report();
        assert!(r.needs_person());
        r.accounts[1].state = AccountState::NoToken;
        assert!(r.needs_person());
        r.accounts[1].state = AccountState::Backoff;
        assert!(!r.needs_person());
    }

    #[test]
    fn summary_counts_and_names_what_is_not_ok() {
        let mut r = report();
        assert_eq!(
            r.summary().to_string(),
            "1/2 accounts ok (todoist: needs_login), 2 jobs"
        );
        r.jobs[1].last_result = Some(JobResult::Error);
        r.accounts[1].state = AccountState::Ok;
        assert_eq!(
            r.summary().to_string(),
            "2/2 accounts ok, 2 jobs, 1 failed last run"
        );
    }

    #[test]
    fn states_and_results_are_their_words_in_json() {
        use AccountState::*;
        for state in [Ok, Refreshing, Backoff, NeedsLogin, NoToken] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for result in [JobResult::Ok, JobResult::Error, JobResult::Skipped] {
            assert_eq!(serde_json::to_value(result).unwrap(), result.as_str());
        }
        let words = ["ok", "refreshing", "backoff", "needs_login", "no_token"];
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["accounts"][1]["state"], "needs_login");
        assert_eq!(json["jobs"][0]["last_result"], "ok");
        assert!(words.contains(&json["accounts"][0]["state"].as_str().unwrap()));
    }

    #[test]
    fn json_keeps_the_first_versions_fields_and_adds_new_ones() {
        let json = serde_json::to_value(report()).unwrap();
        for key in [
            "name",
            "state",
            "access_token_expires_at",
            "last_refresh",
            "last_error",
        ] {
            assert!(json["accounts"][0].get(key).is_some(), "accounts[].{key}");
        }
        for key in [
            "name",
            "account",
            "next_run",
            "last_run",
            "last_result",
            "last_error",
            "running_since",
        ] {
            assert!(json["jobs"][1].get(key).is_some(), "jobs[].{key}");
        }
        assert_eq!(json["jobs"][1]["running_since"], serde_json::Value::Null);
        assert_eq!(json["daemon"]["pid"], 4242);
        // An answer from a daemon without the new fields still reads.
        let old = r#"{"accounts":[],"jobs":[{"name":"j","account":"a","next_run":null,"last_run":null,"last_result":null,"last_error":null}]}"#;
        let r: StatusReport = serde_json::from_str(old).unwrap();
        assert_eq!(r.jobs[0].running_since, None);
        assert_eq!(r.daemon, None);
    }
}
