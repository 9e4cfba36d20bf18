//! Telling a person when they must act (DESIGN §3, `notify`).
//!
//! A headless daemon that only writes to the journal leaves its user to
//! find out months later that a refresh token died. The [`Notifier`] looks
//! at each status report and runs the configured command when:
//! - an account enters `needs_login` ([`Event::NeedsLogin`]);
//! - a refresh token nears its end of life, the 14-day warning
//!   ([`Event::TokenExpiring`]);
//! - a job has failed [`FAILURES_BEFORE_NOTIFYING`] runs in a row
//!   ([`Event::JobFailing`]).
//!
//! Invariants: at most one notification per event, account and job in
//! [`QUIET_PERIOD`], remembered in `STATE_DIR/notified.json` so that a
//! restart loop does not repeat them; the command gets no secret, only
//! `FRESHD_EVENT`, `FRESHD_ACCOUNT`, `FRESHD_JOB` and `FRESHD_MESSAGE`; it
//! runs detached from the runtime's work, with [`COMMAND_TIMEOUT`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::Config;
use crate::status::{AccountState, AccountStatus};
use crate::sync::MutexExt;

/// A job that fails this many runs in a row is worth a person's look; one
/// failure is often a network blip that the next run mends.
pub const FAILURES_BEFORE_NOTIFYING: u32 = 3;
/// The same event for the same account (and job) is told at most once in
/// this long: a day is soon enough to be reminded, rarely enough not to nag.
pub const QUIET_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// How long the notify command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a person is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    NeedsLogin,
    TokenExpiring,
    JobFailing,
}

impl Event {
    /// `FRESHD_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::NeedsLogin => "needs_login",
            Event::TokenExpiring => "refresh_token_expiring",
            Event::JobFailing => "job_failing",
        }
    }
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event: Event,
    pub account: String,
    pub job: Option<String>,
    pub message: String,
}

impl Notice {
    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.event.as_str(),
            self.account,
            self.job.as_deref().unwrap_or("")
        )
    }
}

/// A job whose last runs ended in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingJob {
    pub name: String,
    pub account: String,
    /// Runs that ended in an error, in a row.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// What needs telling, given the accounts and the jobs that fail.
pub fn notices(accounts: &[AccountStatus], failing: &[FailingJob]) -> Vec<Notice> {
    let mut out = Vec::new();
    for a in accounts {
        if a.state == AccountState::NeedsLogin {
            out.push(Notice {
                event: Event::NeedsLogin,
                account: a.name.clone(),
                job: None,
                message: format!(
                    "freshd account {} needs a new login ({}): run `freshd login {}`",
                    a.name,
                    a.last_error
                        .as_deref()
                        .unwrap_or("the provider refused the token"),
                    a.name
                ),
            });
        }
        if let Some(w) = &a.warning {
            out.push(Notice {
                event: Event::TokenExpiring,
                account: a.name.clone(),
                job: None,
                message: format!("freshd account {}: {w}", a.name),
            });
        }
    }
    for j in failing {
        let n = j.failures;
        if n >= FAILURES_BEFORE_NOTIFYING {
            out.push(Notice {
                event: Event::JobFailing,
                account: j.account.clone(),
                job: Some(j.name.clone()),
                message: format!(
                    "freshd job {} failed {n} runs in a row: {}",
                    j.name,
                    j.last_error.as_deref().unwrap_or("see journalctl")
                ),
            });
        }
    }
    out
}

/// Sends notices through the configured commands, each at most once in
/// [`QUIET_PERIOD`].
#[derive(Debug)]
pub struct Notifier {
    record: Option<PathBuf>,
    sent: Mutex<BTreeMap<String, Timestamp>>,
}

impl Notifier {
    /// Remembers what was sent in `state_dir/notified.json`.
    pub fn new(state_dir: Option<PathBuf>) -> Self {
        let record = state_dir.map(|d| d.join("notified.json"));
        let sent = record
            .as_ref()
            .and_then(|p| crate::fsutil::read_regular(p, 1024 * 1024).ok())
            .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            record,
            sent: Mutex::new(sent),
        }
    }

    /// Runs the command for each notice not sent within the quiet period.
    pub fn send(&self, config: &Config, notices: Vec<Notice>, now: Timestamp) {
        for notice in notices {
            let command = config
                .accounts
                .get(&notice.account)
                .and_then(|a| a.notify.as_ref())
                .or(config.daemon.notify.as_ref());
            let Some(command) = command else { continue };
            if !self.first_in_period(&notice, now) {
                continue;
            }
            tracing::info!(ACCOUNT = %notice.account, "notifying ({}): {}", notice.event.as_str(), notice.message);
            spawn(command.clone(), notice);
        }
    }

    fn first_in_period(&self, notice: &Notice, now: Timestamp) -> bool {
        let mut sent = self.sent.locked();
        let key = notice.key();
        let quiet = jiff::SignedDuration::try_from(QUIET_PERIOD).unwrap_or_default();
        if sent
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < quiet && *t <= now)
        {
            return false;
        }
        sent.insert(key, now);
        if let Some(path) = &self.record {
            let text = serde_json::to_string(&*sent).unwrap_or_default();
            if let Err(e) = crate::fsutil::write_private(path, text.as_bytes()) {
                tracing::warn!(
                    "cannot record sent notifications in {}: {e}",
                    path.display()
                );
            }
        }
        true
    }
}

fn spawn(command: Vec<String>, notice: Notice) {
    tokio::spawn(async move {
        let Some((program, args)) = command.split_first() else {
            return;
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .env("FRESHD_EVENT", notice.event.as_str())
            .env("FRESHD_ACCOUNT", &notice.account)
            .env("FRESHD_JOB", notice.job.as_deref().unwrap_or(""))
            .env("FRESHD_MESSAGE", &notice.message)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(ACCOUNT = %notice.account, "cannot run the notify command {program}: {e}; check `notify` in the config");
                return;
            }
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(out)) if out.status.success() => {}
            Ok(Ok(out)) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let err: String = err.trim().chars().take(500).collect();
                tracing::error!(ACCOUNT = %notice.account, "the notify command {program} failed ({}): {err}", out.status);
            }
            Ok(Err(e)) => {
                tracing::error!(ACCOUNT = %notice.account, "the notify command {program} failed: {e}");
            }
            Err(_) => {
                tracing::error!(ACCOUNT = %notice.account, "the notify command {program} did not finish within {}s; it was killed", COMMAND_TIMEOUT.as_secs());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(state: AccountState, warning: Option<&str>) -> Vec<AccountStatus> {
        vec![AccountStatus {
            name: "spotify".into(),
            state,
            access_token_expires_at: None,
            last_refresh: None,
            last_error: Some("invalid_grant".into()),
            warning: warning.map(str::to_owned),
            store_error: None,
            static_token: false,
        }]
    }

    fn failing(failures: u32) -> Vec<FailingJob> {
        vec![FailingJob {
            name: "radio".into(),
            account: "spotify".into(),
            failures,
            last_error: Some("the API failed (500)".into()),
        }]
    }

    #[test]
    fn each_condition_makes_its_notice() {
        let ok = accounts(AccountState::Ok, None);
        assert!(notices(&ok, &[]).is_empty());
        let n = notices(&accounts(AccountState::NeedsLogin, None), &[]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].event, Event::NeedsLogin);
        assert!(
            n[0].message.contains("freshd login spotify"),
            "{}",
            n[0].message
        );
        let n = notices(
            &accounts(AccountState::Ok, Some("ends around 2027-01-01")),
            &[],
        );
        assert_eq!(n[0].event, Event::TokenExpiring);
        assert!(notices(&ok, &failing(2)).is_empty());
        let n = notices(&ok, &failing(3));
        assert_eq!(
            (n[0].event, n[0].job.as_deref()),
            (Event::JobFailing, Some("radio"))
        );
    }

    #[test]
    fn once_a_day_per_event_account_and_job_and_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let notice = notices(&accounts(AccountState::NeedsLogin, None), &[]).remove(0);
        let t0: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let n = Notifier::new(Some(dir.path().to_owned()));
        assert!(n.first_in_period(&notice, t0));
        assert!(!n.first_in_period(&notice, t0 + jiff::SignedDuration::from_hours(23)));
        let restarted = Notifier::new(Some(dir.path().to_owned()));
        assert!(!restarted.first_in_period(&notice, t0 + jiff::SignedDuration::from_hours(1)));
        assert!(restarted.first_in_period(&notice, t0 + jiff::SignedDuration::from_hours(25)));
    }

    #[test]
    fn a_fifo_as_the_record_is_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("notified.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Without a writer, a plain read of a FIFO would block here forever.
        let n = Notifier::new(Some(dir.path().to_owned()));
        assert!(n.sent.lock().unwrap().is_empty());
    }
}
