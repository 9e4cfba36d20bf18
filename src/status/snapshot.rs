//! `status` as the daemon answers it: a [`StatusSnapshot`] of cheap copies
//! taken under its locks (a job's name and account stay shared with the
//! job), then written as JSON piece by piece after the locks are released,
//! so that a hundred thousand jobs never become a hundred thousand
//! [`JobReport`]s, nor one 16 MB buffer, and a slow reader holds no lock.
//!
//! Invariant: the JSON written is byte for byte what [`StatusReport`]'s
//! `Serialize` writes for [`StatusSnapshot::to_report`] (tested).

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use super::{AccountStatus, DaemonInfo, JobReport, JobResult, StatusReport};
use crate::config::Job;

/// Every account and job as `status` shows them, at one moment.
#[derive(Debug, Default)]
pub struct StatusSnapshot {
    pub accounts: Vec<AccountStatus>,
    pub jobs: Vec<JobRow>,
    pub daemon: Option<DaemonInfo>,
}

/// One job's line: the job itself (shared, for its name and account) and
/// copies of its times.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job: Arc<Job>,
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub last_result: Option<JobResult>,
    pub last_error: Option<String>,
    /// A run is going on now; it started at `last_run`.
    pub running: bool,
}

impl JobRow {
    fn line(&self) -> JobLine<'_> {
        JobLine {
            name: &self.job.name,
            account: &self.job.account,
            next_run: self.next_run,
            last_run: self.last_run,
            last_result: self.last_result,
            last_error: self.last_error.as_deref(),
            running_since: self.last_run.filter(|_| self.running),
        }
    }

    /// The owned [`JobReport`] of this row.
    pub fn to_report(&self) -> JobReport {
        let line = self.line();
        JobReport {
            name: line.name.to_owned(),
            account: line.account.to_owned(),
            next_run: line.next_run,
            last_run: line.last_run,
            last_result: line.last_result,
            last_error: line.last_error.map(str::to_owned),
            running_since: line.running_since,
        }
    }
}

/// [`JobReport`]'s fields, in its order, borrowed.
#[derive(Serialize)]
struct JobLine<'a> {
    name: &'a str,
    account: &'a str,
    next_run: Option<Timestamp>,
    last_run: Option<Timestamp>,
    last_result: Option<JobResult>,
    last_error: Option<&'a str>,
    running_since: Option<Timestamp>,
}

impl JobLine<'_> {
    /// Appends this line's JSON to `out`: what `Serialize` writes (tested),
    /// without serde's machinery, since a status may hold a hundred
    /// thousand of them.
    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"name":"#);
        json_str(out, self.name)?;
        out.extend_from_slice(br#","account":"#);
        json_str(out, self.account)?;
        out.extend_from_slice(br#","next_run":"#);
        json_time(out, self.next_run)?;
        out.extend_from_slice(br#","last_run":"#);
        json_time(out, self.last_run)?;
        out.extend_from_slice(br#","last_result":"#);
        match self.last_result {
            Some(r) => {
                out.push(b'"');
                out.extend_from_slice(r.as_str().as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(br#","last_error":"#);
        match self.last_error {
            Some(e) => json_str(out, e)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(br#","running_since":"#);
        json_time(out, self.running_since)?;
        out.push(b'}');
        Ok(())
    }
}

/// `s` as a JSON string: copied as it is when nothing in it needs an
/// escape (job and account names never do), else as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// `t` as its RFC 3339 JSON string (jiff's own printer, as its `Serialize`
/// uses), or `null`.
fn json_time(out: &mut Vec<u8>, t: Option<Timestamp>) -> serde_json::Result<()> {
    match t {
        Some(t) => {
            out.push(b'"');
            jiff::fmt::temporal::DateTimePrinter::new()
                .print_timestamp(&t, &mut *out)
                .map_err(serde::ser::Error::custom)?;
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    Ok(())
}

impl StatusSnapshot {
    /// The owned report (what a client reads back).
    pub fn to_report(&self) -> StatusReport {
        StatusReport {
            accounts: self.accounts.clone(),
            jobs: self.jobs.iter().map(JobRow::to_report).collect(),
            daemon: self.daemon.clone(),
        }
    }

    /// The report's JSON, in pieces of about `piece` bytes or more.
    pub fn json_pieces(&self, piece: usize) -> JsonPieces<'_> {
        JsonPieces {
            snapshot: self,
            piece,
            at: Stage::Start,
        }
    }
}

/// Where [`JsonPieces`] has got to.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Start,
    Account(usize),
    Job(usize),
    End,
    Done,
}

/// Writes a [`StatusSnapshot`]'s JSON a piece at a time: see
/// [`JsonPieces::fill`].
#[derive(Debug)]
pub struct JsonPieces<'s> {
    snapshot: &'s StatusSnapshot,
    piece: usize,
    at: Stage,
}

impl JsonPieces<'_> {
    /// Appends the next piece to `out`: whole accounts and jobs until `out`
    /// holds at least the piece size, or to the end. `Ok(true)` when the
    /// end was written: the JSON is complete.
    pub fn fill(&mut self, out: &mut Vec<u8>) -> serde_json::Result<bool> {
        let s = self.snapshot;
        loop {
            if matches!(self.at, Stage::Done) {
                return Ok(true);
            }
            if out.len() >= self.piece.max(1) {
                return Ok(false);
            }
            self.at = match self.at {
                Stage::Start => {
                    out.extend_from_slice(br#"{"accounts":["#);
                    Stage::Account(0)
                }
                Stage::Account(i) => match s.accounts.get(i) {
                    Some(a) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        serde_json::to_writer(&mut *out, a)?;
                        Stage::Account(i + 1)
                    }
                    None => {
                        out.extend_from_slice(br#"],"jobs":["#);
                        Stage::Job(0)
                    }
                },
                Stage::Job(i) => match s.jobs.get(i) {
                    Some(j) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        j.line().write(out)?;
                        Stage::Job(i + 1)
                    }
                    None => {
                        out.push(b']');
                        Stage::End
                    }
                },
                Stage::End => {
                    if let Some(d) = &s.daemon {
                        out.extend_from_slice(br#","daemon":"#);
                        serde_json::to_writer(&mut *out, d)?;
                    }
                    out.push(b'}');
                    Stage::Done
                }
                Stage::Done => return Ok(true),
            };
        }
    }
}

/// Snapshots for tests, with every kind of field set and unset.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;
    use crate::status::AccountState;

    /// `n` jobs of account `spotify`, from a config, in name order.
    fn config_jobs(n: usize) -> Vec<Arc<Job>> {
        let mut toml =
            "[accounts.spotify]\nclient_id = \"c\"\ntoken_url = \"https://example.com/t\"\n"
                .to_owned();
        for i in 0..n {
            toml.push_str(&format!(
                "[jobs.j-{i:03}]\naccount = \"spotify\"\ntype = \"command\"\nschedule = \"0 7 * * *\"\ncommand = [\"true\"]\n"
            ));
        }
        let config = crate::config::Config::parse(
            &toml,
            std::path::Path::new("t.toml"),
            true,
            crate::jobs::TYPES,
        )
        .expect("a valid config");
        config.jobs.into_values().collect()
    }

    pub fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub fn snapshot(jobs: usize, daemon: bool) -> StatusSnapshot {
        let accounts = vec![
            AccountStatus {
                name: "spotify".into(),
                state: AccountState::Ok,
                access_token_expires_at: Some(ts("2026-07-01T10:30:00.123456789Z")),
                last_refresh: Some(ts("2026-07-01T09:30:00.5Z")),
                last_error: None,
                warning: Some("the refresh token ends on 2026-08-01".into()),
                store_error: None,
                static_token: false,
            },
            AccountStatus {
                name: "tödo \"ist\"".into(),
                state: AccountState::NeedsLogin,
                access_token_expires_at: None,
                last_refresh: None,
                last_error: Some("refused:\n\t\"invalid_grant\"".into()),
                warning: None,
                store_error: Some("the keyring is locked".into()),
                static_token: true,
            },
        ];
        let jobs = config_jobs(jobs)
            .into_iter()
            .enumerate()
            .map(|(i, job)| JobRow {
                job,
                next_run: (i % 4 != 0).then(|| ts("2026-07-06T04:00:00Z")),
                last_run: (i % 2 == 0).then(|| ts("2026-07-01T09:59:58.000001Z")),
                last_result: [None, Some(JobResult::Ok), Some(JobResult::Error)][i % 3],
                last_error: (i % 3 == 2).then(|| format!("HTTP 500: \"no\"\u{1}{i}")),
                running: i % 5 == 0,
            })
            .collect();
        StatusSnapshot {
            accounts,
            jobs,
            daemon: daemon.then(|| DaemonInfo {
                version: "0.1.0".into(),
                pid: 4242,
                running_since: ts("2026-07-01T08:00:00Z"),
                config: "/home/me/.config/freshd/config.toml".into(),
                socket: "/run/user/1000/freshd/control.sock".into(),
                timezone: "Europe/Berlin".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sample::{snapshot, ts};
    use super::*;

    fn pieces(s: &StatusSnapshot, piece: usize) -> Vec<Vec<u8>> {
        let mut pieces = s.json_pieces(piece);
        let mut all = Vec::new();
        loop {
            let mut out = Vec::new();
            let done = pieces.fill(&mut out).unwrap();
            all.push(out);
            if done {
                return all;
            }
        }
    }

    #[test]
    fn the_pieces_are_the_reports_json_byte_for_byte() {
        for (jobs, daemon) in [(0, false), (0, true), (1, true), (7, false), (40, true)] {
            let s = snapshot(jobs, daemon);
            let whole = serde_json::to_vec(&s.to_report()).unwrap();
            for piece in [0, 1, 100, 1000, 1 << 20] {
                let written = pieces(&s, piece).concat();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(whole.clone()).unwrap(),
                    "{jobs} jobs, piece {piece}"
                );
            }
            let back: StatusReport = serde_json::from_slice(&whole).unwrap();
            assert_eq!(back, s.to_report());
        }
    }

    proptest::proptest! {
        /// Any time jiff can hold, and any text in a name or an error.
        #[test]
        fn a_job_line_is_what_serde_writes(
            secs in jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second(),
            nanos in proptest::prop_oneof![proptest::strategy::Just(0), -999_999_999..1_000_000_000i32],
            name in ".*",
            error in proptest::option::of("\\PC*|[\"\\\\\u{0}-\u{1f}\u{7f}]*"),
            result in 0..4usize,
        ) {
            // None when the two do not make a time (their signs differ).
            let t = Timestamp::new(secs, nanos).ok();
            let line = JobLine {
                name: &name,
                account: "a",
                next_run: t,
                last_run: None,
                last_result: [None, Some(JobResult::Ok), Some(JobResult::Error), Some(JobResult::Skipped)][result],
                last_error: error.as_deref(),
                running_since: t,
            };
            let mut written = Vec::new();
            line.write(&mut written).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&line).unwrap()
            );
        }
    }

    #[test]
    fn every_ascii_character_is_escaped_as_serde_does() {
        for c in (0..128u8).map(char::from).chain(['é', '\u{2028}', '😀']) {
            let text = format!("a{c}b");
            let line = JobLine {
                name: &text,
                account: &text,
                next_run: None,
                last_run: None,
                last_result: None,
                last_error: Some(&text),
                running_since: None,
            };
            let mut written = Vec::new();
            line.write(&mut written).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&line).unwrap(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn pieces_are_about_the_size_asked() {
        let s = snapshot(300, true);
        let all = pieces(&s, 2048);
        assert!(all.len() > 5, "{} pieces", all.len());
        for p in &all[..all.len() - 1] {
            assert!((2048..2048 + 512).contains(&p.len()), "{}", p.len());
        }
    }

    #[test]
    fn a_running_job_shows_since_when() {
        let s = snapshot(11, false);
        let r = s.to_report();
        assert_eq!(
            r.jobs[10].running_since,
            Some(ts("2026-07-01T09:59:58.000001Z"))
        );
        assert_eq!(r.jobs[5].running_since, None, "running, but no start known");
        assert_eq!(r.jobs[2].running_since, None, "idle");
        assert_eq!(
            (r.jobs[1].name.as_str(), &*r.jobs[1].account),
            ("j-001", "spotify")
        );
    }
}
