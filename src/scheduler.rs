//! When jobs run: cron patterns and intervals turned into instants, and the
//! per-job loop that waits for them.
//!
//! Invariants:
//! - One task per job, and the task runs the job's body itself, so a job can
//!   never overlap itself.
//! - Waits are measured against the wall clock ([`Clock`]): tokio's timers
//!   follow the monotonic clock, which stops during a suspend and does not
//!   follow the time being set. So every waiter compares wall and monotonic
//!   time whenever it wakes, and each clock has one guard that wakes every
//!   waiter when the wall clock is set or the machine resumes (for the system
//!   clock a timerfd with `TFD_TIMER_CANCEL_ON_SET`: nothing wakes between
//!   such events).
//! - Runs that were due while the machine slept, while the clock jumped
//!   forward or while the previous run overran collapse into one run, with a
//!   warning saying how many. After a backward jump a job runs at its next
//!   occurrence in the new wall time: a cron job at its next match, an
//!   interval job on the same beat as before the jump.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Trigger;
use crate::jobs::{Ran, RunOutcome};
use crate::sync::MutexExt;
use crate::time::{Clock, WallWatch, Woke, until, wait_wall};

/// The most missed occurrences counted for a warning; past it the count says
/// "at least".
const MAX_COUNTED: u64 = 10_000;

impl Trigger {
    /// The first occurrence strictly after `after`. `anchor` is the instant
    /// an interval counts from (its last planned run); cron ignores it.
    /// `None` when a cron pattern never matches again.
    pub fn next_after(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        match self {
            Trigger::Every(every) => {
                let every = SignedDuration::try_from(*every).ok()?;
                if after < anchor {
                    return anchor.checked_add(every).ok();
                }
                let since = after.duration_since(anchor).as_nanos();
                let steps = since / every.as_nanos() + 1;
                let offset =
                    SignedDuration::from_nanos(i64::try_from(steps * every.as_nanos()).ok()?);
                anchor.checked_add(offset).ok()
            }
            Trigger::Cron { cron, timezone, .. } => {
                let zoned = after.to_zoned(timezone.clone());
                cron.find_next_occurrence(&zoned, false)
                    .ok()
                    .map(|z| z.timestamp())
            }
        }
    }

    /// The next `n` run times after `from`, as `freshd check` shows them.
    pub fn upcoming(&self, from: Timestamp, n: usize) -> Vec<Timestamp> {
        let first = self.first_run(from);
        std::iter::successors(first, |&t| self.next_after(first.unwrap_or(t), t))
            .take(n)
            .collect()
    }

    /// When a freshly started job first runs: an interval job at once (a
    /// poller should not wait a whole interval to say something), a cron job
    /// at its next match.
    pub fn first_run(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Trigger::Every(_) => Some(now),
            Trigger::Cron { .. } => self.next_after(now, now),
        }
    }

    /// The plan `(due, anchor)` once the wall clock went back by `by` to
    /// `now`: a cron job's next match in the new wall time; an interval job
    /// keeps its beat (its plan goes back with the clock), so it runs within
    /// one interval of now, and counts on from there.
    fn after_backward_jump(
        &self,
        now: Timestamp,
        by: SignedDuration,
        due: Timestamp,
        anchor: Timestamp,
    ) -> (Timestamp, Timestamp) {
        match self {
            Trigger::Every(every) => {
                let every = SignedDuration::try_from(*every).unwrap_or(SignedDuration::MAX);
                let latest = now.checked_add(every).unwrap_or(Timestamp::MAX);
                let due = due.checked_add(by).unwrap_or(now).clamp(now, latest);
                (due, due)
            }
            Trigger::Cron { .. } => (self.next_after(now, now).unwrap_or(due), anchor),
        }
    }

    /// How many occurrences fall in `(from, to]`, counting at most
    /// [`MAX_COUNTED`].
    fn count_between(&self, anchor: Timestamp, from: Timestamp, to: Timestamp) -> u64 {
        let mut n = 0;
        let mut t = from;
        while n < MAX_COUNTED {
            match self.next_after(anchor, t) {
                Some(next) if next <= to => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }
}

/// A run's duration for the journal: milliseconds under a second, else
/// seconds with one decimal.
fn format_took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What `status` shows of a job, updated by its loop.
#[derive(Debug, Default, Clone)]
pub struct JobState {
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub last_outcome: Option<RunOutcome>,
    pub running: bool,
}

/// Shared, lock-protected [`JobState`].
#[derive(Debug, Default)]
pub struct JobStatus(Mutex<JobState>);

impl JobStatus {
    pub fn get(&self) -> JobState {
        self.0.locked().clone()
    }

    fn update(&self, f: impl FnOnce(&mut JobState)) {
        f(&mut self.0.locked());
    }
}

/// A request to run a job now; the outcome is sent back when it is done.
pub type RunNow = oneshot::Sender<RunOutcome>;

/// One job's loop: its schedule, the body to run, and how to stop it.
#[derive(Debug)]
pub struct JobLoop {
    pub name: String,
    /// The job's account, for the `ACCOUNT=` field of its journal lines.
    pub account: String,
    pub trigger: Trigger,
    pub timeout: Duration,
    pub clock: Arc<dyn Clock>,
    pub status: Arc<JobStatus>,
    /// Stops the loop between runs; a run in progress is not interrupted.
    pub cancel: CancellationToken,
    /// `freshd run-job` requests.
    pub manual: mpsc::Receiver<RunNow>,
}

impl JobLoop {
    /// Runs until cancelled. `body` is one run of the job.
    pub async fn run<F, Fut>(mut self, mut body: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Ran>,
    {
        let clock = Arc::clone(&self.clock);
        let Some(mut due) = self.trigger.first_run(clock.now()) else {
            tracing::warn!(JOB = %self.name, "the schedule never matches again; the job will not run");
            self.status.update(|s| s.next_run = None);
            return Box::pin(self.serve_manual_only(body)).await;
        };
        let mut anchor = due;
        // Jumps are measured from here on, across waits and runs alike: a
        // plan made before a backward jump is made again in the new time.
        let mut look = WallWatch::new(clock.as_ref());
        loop {
            self.status.update(|s| s.next_run = Some(due));
            tokio::select! {
                () = self.cancel.cancelled() => return,
                woke = wait_wall(clock.as_ref(), due, &mut look) => {
                    if let Woke::Back(by) = woke {
                        (due, anchor) = self.trigger.after_backward_jump(clock.now(), by, due, anchor);
                        tracing::debug!(
                            JOB = %self.name,
                            "the wall clock went back by {}; next run at {due}",
                            crate::config::format_duration(by.unsigned_abs()),
                        );
                        continue;
                    }
                }
                Some(reply) = self.manual.recv() => {
                    // Its client hung up before the run started: not run.
                    if reply.is_closed() {
                        continue;
                    }
                    let ran = Box::pin(self.run_once(&mut body, "on request")).await;
                    let _ = reply.send(ran.outcome);
                    continue;
                }
            }
            let started = clock.now();
            let late = self.trigger.count_between(anchor, due, started);
            if late > 0 {
                tracing::warn!(
                    JOB = %self.name,
                    "{late}{} more run(s) were due while the machine was asleep or the clock jumped; running once for all of them",
                    if late >= MAX_COUNTED { "+" } else { "" },
                );
            }
            // Boxed: a run's state exists only while it runs, so the
            // thousands of idle job loops stay small.
            let ran = Box::pin(self.run_once(&mut body, "on schedule")).await;
            let finished = clock.now();
            if let (Some(within), Trigger::Every(every)) = (ran.again_within, &self.trigger) {
                let wait =
                    SignedDuration::try_from(within.min(*every)).unwrap_or(SignedDuration::ZERO);
                due = finished.checked_add(wait).unwrap_or(finished);
                anchor = due;
                continue;
            }
            let overrun = self.trigger.count_between(anchor, started, finished);
            if overrun > 0 {
                tracing::warn!(
                    JOB = %self.name,
                    "the run took {}, past {overrun} planned start(s); running once more now instead",
                    crate::config::format_duration(until(started, finished)),
                );
                due = finished;
                anchor = finished;
                continue;
            }
            let Some(next) = self.trigger.next_after(anchor, started.max(due)) else {
                tracing::warn!(JOB = %self.name, "the schedule never matches again; the job will not run");
                self.status.update(|s| s.next_run = None);
                return Box::pin(self.serve_manual_only(body)).await;
            };
            due = next;
            if matches!(self.trigger, Trigger::Every(_)) && late > 0 {
                anchor = started;
                due = self.trigger.next_after(anchor, started).unwrap_or(next);
            }
        }
    }

    async fn serve_manual_only<F, Fut>(mut self, mut body: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Ran>,
    {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                Some(reply) = self.manual.recv() => {
                    // Its client hung up before the run started: not run.
                    if reply.is_closed() {
                        continue;
                    }
                    let ran = self.run_once(&mut body, "on request").await;
                    let _ = reply.send(ran.outcome);
                }
            }
        }
    }

    async fn run_once<F, Fut>(&mut self, body: &mut F, why: &str) -> Ran
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Ran>,
    {
        let started = self.clock.now();
        let clock_started = tokio::time::Instant::now();
        self.status.update(|s| {
            s.running = true;
            s.last_run = Some(started);
        });
        tracing::debug!(JOB = %self.name, "run starts ({why})");
        let ran = match tokio::time::timeout(self.timeout, body()).await {
            Ok(ran) => ran,
            Err(_) => Ran::from(RunOutcome::Error(format!(
                "stopped after its timeout of {}",
                crate::config::format_duration(self.timeout)
            ))),
        };
        let outcome = ran.outcome.clone();
        // One journal line per run (DESIGN §6), with its outcome and how
        // long it took: `journalctl -u freshd JOB=NAME` is the job's history.
        let took = format_took(clock_started.elapsed());
        let (job, account) = (&self.name, &self.account);
        match &outcome {
            RunOutcome::Ok if ran.quiet => {
                tracing::debug!(JOB = %job, ACCOUNT = %account, "run ok in {took}, nothing new");
            }
            RunOutcome::Ok => tracing::info!(JOB = %job, ACCOUNT = %account, "run ok in {took}"),
            RunOutcome::Skipped(why) => {
                tracing::info!(JOB = %job, ACCOUNT = %account, "run skipped after {took}: {why}");
            }
            RunOutcome::Error(e) => {
                tracing::error!(JOB = %job, ACCOUNT = %account, "run failed after {took}: {e}");
            }
        }
        self.status.update(|s| {
            s.running = false;
            s.last_outcome = Some(outcome);
        });
        ran
    }
}

#[cfg(test)]
mod tests;
