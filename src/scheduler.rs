//! When jobs run: cron patterns and intervals turned into instants, and the
//! per-job loop that waits for them.
//!
//! Invariants:
//! - One task per job, and the task runs the job's body itself, so a job can
//!   never overlap itself.
//! - Waits are measured against the wall clock ([`Clock`]): tokio's timers
//!   follow the monotonic clock, which stops during a suspend, so one guard
//!   per clock checks every [`WALL_CLOCK_STEP`] whether the wall clock
//!   jumped and then wakes every waiter to look again.
//! - Runs that were due while the machine slept or while the previous run
//!   overran collapse into one run, with a warning saying how many.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Trigger;

/// How often the wall clock is checked for jumps. DESIGN §5: timers that
/// wait long re-read the wall clock at least this often, so that after a
/// suspend a due job (or an expired token) is handled within this time of
/// waking.
pub const WALL_CLOCK_STEP: Duration = Duration::from_secs(30);

/// The most missed occurrences counted for a warning; past it the count says
/// "at least".
const MAX_COUNTED: u64 = 10_000;

/// A wall clock jump larger than this (between two guard checks 30 s apart)
/// is a suspend or a clock change; smaller drifts are scheduling noise.
const JUMP_TOLERANCE: Duration = Duration::from_secs(1);

/// Wall-clock time, and a signal for when it jumps.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
    /// Time since boot, counting suspend (`CLOCK_BOOTTIME`): it never goes
    /// backward, whatever is done to the wall clock, so token expiry is
    /// tracked on it (DESIGN §5).
    fn boot(&self) -> Duration;
    /// Changes whenever the wall clock jumped against the monotonic clock
    /// (a suspend, or the time being set). Subscribing starts the guard.
    fn jumps(&self) -> watch::Receiver<u64>;
}

/// One task per clock checks, every [`WALL_CLOCK_STEP`], whether wall time
/// moved as much as monotonic time; when not, every waiter is woken to look
/// at the wall clock again. So after a suspend everything due is handled
/// within 30 s of waking, while an idle daemon wakes only for this check
/// (twice a minute) instead of once per job and account.
#[derive(Debug, Default)]
pub struct JumpSignal(OnceLock<watch::Sender<u64>>);

impl JumpSignal {
    /// The guard as a tokio task (for clocks that follow tokio's clock).
    fn subscribe(
        &self,
        now: impl Fn() -> Timestamp + Send + Sync + 'static,
    ) -> watch::Receiver<u64> {
        self.0
            .get_or_init(|| {
                let (tx, _) = watch::channel(0);
                tokio::spawn(guard(tx.clone(), now));
                tx
            })
            .subscribe()
    }

    /// The guard as a thread of its own, for the system clock: one plain
    /// monotonic sleep is one wakeup per check, where a tokio timer of 30 s
    /// wakes the runtime two or three times as it cascades through the timer
    /// wheel's levels. The runtime itself is woken only when a jump is seen.
    fn subscribe_threaded(&self) -> watch::Receiver<u64> {
        self.0
            .get_or_init(|| {
                let (tx, _) = watch::channel(0);
                let guard_tx = tx.clone();
                let spawned = std::thread::Builder::new()
                    .name("freshd-clock".into())
                    .stack_size(64 * 1024)
                    .spawn(move || guard_thread(&guard_tx));
                if let Err(e) = spawned {
                    // Without the thread, waits fall back to 30 s steps.
                    tracing::warn!("cannot start the clock guard thread: {e}");
                }
                tx
            })
            .subscribe()
    }
}

fn jumped(wall: SignedDuration, mono: Duration) -> bool {
    let mono = SignedDuration::try_from(mono).unwrap_or(SignedDuration::MAX);
    let tolerance = SignedDuration::try_from(JUMP_TOLERANCE).unwrap_or(SignedDuration::MAX);
    (wall - mono).abs() > tolerance
}

/// Runs for the life of the process: waiters come and go.
fn guard_thread(tx: &watch::Sender<u64>) {
    loop {
        let (wall, mono) = (Timestamp::now(), std::time::Instant::now());
        std::thread::sleep(WALL_CLOCK_STEP);
        if jumped(Timestamp::now().duration_since(wall), mono.elapsed()) {
            tx.send_modify(|n| *n += 1);
        }
    }
}

async fn guard(tx: watch::Sender<u64>, now: impl Fn() -> Timestamp) {
    loop {
        let (wall, mono) = (now(), tokio::time::Instant::now());
        tokio::time::sleep(WALL_CLOCK_STEP).await;
        if jumped(now().duration_since(wall), mono.elapsed()) {
            tx.send_modify(|n| *n += 1);
        }
    }
}

/// The system's real-time clock.
#[derive(Debug, Default)]
pub struct SystemClock(JumpSignal);

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn boot(&self) -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or_default(),
            u32::try_from(t.tv_nsec).unwrap_or_default(),
        )
    }

    fn jumps(&self) -> watch::Receiver<u64> {
        self.0.subscribe_threaded()
    }
}

/// A wall clock that follows tokio's clock (so `tokio::time::pause` and
/// `advance` move it) plus explicit jumps, which is what a suspend looks
/// like from inside the process. For tests and the benchmark harness.
#[derive(Debug)]
pub struct TokioClock {
    inner: Arc<TokioClockInner>,
    signal: JumpSignal,
}

#[derive(Debug)]
struct TokioClockInner {
    base: Timestamp,
    start: tokio::time::Instant,
    /// How far the wall clock was moved against tokio's clock.
    jumped: Mutex<SignedDuration>,
    /// How long the simulated machine slept (boot time counts it).
    slept: Mutex<Duration>,
}

impl TokioClockInner {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        let jumped = *self
            .jumped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.base
            .checked_add(elapsed)
            .and_then(|t| t.checked_add(jumped))
            .unwrap_or(Timestamp::MAX)
    }
}

impl TokioClock {
    pub fn new(base: Timestamp) -> Self {
        Self {
            inner: Arc::new(TokioClockInner {
                base,
                start: tokio::time::Instant::now(),
                jumped: Mutex::new(SignedDuration::ZERO),
                slept: Mutex::new(Duration::ZERO),
            }),
            signal: JumpSignal::default(),
        }
    }

    /// Moves wall and boot time forward without moving tokio's clock, as a
    /// suspend does.
    pub fn jump(&self, by: Duration) {
        self.step_wall(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX));
        *self
            .inner
            .slept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }

    /// Sets the wall clock by `by` (either way) and nothing else, as an NTP
    /// step or `date -s` does: boot time is not moved.
    pub fn step_wall(&self, by: SignedDuration) {
        *self
            .inner
            .jumped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    fn boot(&self) -> Duration {
        let slept = *self
            .inner
            .slept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.start.elapsed() + slept
    }

    fn jumps(&self) -> watch::Receiver<u64> {
        let inner = Arc::clone(&self.inner);
        self.signal.subscribe(move || inner.now())
    }
}

/// The time from `now` until `target`, zero if it has passed.
pub fn until(now: Timestamp, target: Timestamp) -> Duration {
    Duration::try_from(target.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Sleeps until the wall clock reaches `target`: on the monotonic clock,
/// re-reading the wall clock whenever the clock's guard says it jumped.
pub async fn sleep_until_wall(clock: &dyn Clock, target: Timestamp) {
    let mut jumps = clock.jumps();
    loop {
        let left = until(clock.now(), target);
        if left.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(left) => {}
            changed = jumps.changed() => {
                if changed.is_err() {
                    // No guard (its runtime is gone): fall back to steps.
                    tokio::time::sleep(left.min(WALL_CLOCK_STEP)).await;
                }
            }
        }
    }
}

/// Sleeps until the boot clock ([`Clock::boot`]) reaches `target`: on the
/// monotonic clock, which stops during a suspend, re-reading the boot clock
/// whenever the clock's guard says time jumped (a suspend is one).
pub async fn sleep_until_boot(clock: &dyn Clock, target: Duration) {
    let mut jumps = clock.jumps();
    loop {
        let left = target.saturating_sub(clock.boot());
        if left.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(left) => {}
            changed = jumps.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(left.min(WALL_CLOCK_STEP)).await;
                }
            }
        }
    }
}

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

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Ok,
    /// Not run this time, e.g. during a provider's rate-limit cooldown.
    Skipped(String),
    Error(String),
}

impl RunOutcome {
    /// The `last_result` word of `status --json`.
    pub fn word(&self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Skipped(_) => "skipped",
            RunOutcome::Error(_) => "error",
        }
    }
}

/// A run's outcome, and how soon the job wants to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub outcome: RunOutcome,
    /// For `every` jobs: run again after this long if that is sooner than
    /// the interval (a poller that knows when the track ends).
    pub again_within: Option<Duration>,
}

impl From<RunOutcome> for Ran {
    fn from(outcome: RunOutcome) -> Self {
        Ran {
            outcome,
            again_within: None,
        }
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
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut JobState)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

/// A request to run a job now; the outcome is sent back when it is done.
pub type RunNow = oneshot::Sender<RunOutcome>;

/// One job's loop: its schedule, the body to run, and how to stop it.
#[derive(Debug)]
pub struct JobLoop {
    pub name: String,
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
        loop {
            self.status.update(|s| s.next_run = Some(due));
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = sleep_until_wall(clock.as_ref(), due) => {}
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
        match &outcome {
            RunOutcome::Ok => tracing::debug!(JOB = %self.name, "run finished: ok"),
            RunOutcome::Skipped(why) => tracing::info!(JOB = %self.name, "run skipped: {why}"),
            RunOutcome::Error(e) => tracing::error!(JOB = %self.name, "run failed: {e}"),
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
