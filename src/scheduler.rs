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

use std::fmt;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rustix::io::Errno;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Trigger;
use crate::sync::MutexExt;

/// How often the wall clock is checked for jumps where nothing tells us of
/// them: [`TokioClock`]'s guard, and the system clock's if no timerfd can be
/// had. DESIGN §5: after a suspend a due job (or an expired token) is
/// handled within this time of waking.
pub const WALL_CLOCK_STEP: Duration = Duration::from_secs(30);

/// The most missed occurrences counted for a warning; past it the count says
/// "at least".
const MAX_COUNTED: u64 = 10_000;

/// A difference between wall and monotonic time larger than this (since the
/// last look) is a suspend or a clock change; smaller ones are noise.
const JUMP_TOLERANCE: SignedDuration = SignedDuration::from_secs(1);

/// Wall-clock time, and a signal for when it jumps.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
    /// Time since boot, counting suspend (`CLOCK_BOOTTIME`): it never goes
    /// backward, whatever is done to the wall clock, so token expiry is
    /// tracked on it (DESIGN §5).
    fn boot(&self) -> Duration;
    /// Changes whenever the wall clock may have jumped against the monotonic
    /// clock (a suspend, or the time being set). Subscribing starts the
    /// guard.
    fn jumps(&self) -> watch::Receiver<u64>;
}

/// Where a clock's guard announces jumps to every waiter.
#[derive(Debug, Default)]
pub struct JumpSignal(OnceLock<watch::Sender<u64>>);

impl JumpSignal {
    fn subscribe(&self, start: impl FnOnce(watch::Sender<u64>)) -> watch::Receiver<u64> {
        self.0
            .get_or_init(|| {
                let (tx, _) = watch::channel(0);
                start(tx.clone());
                tx
            })
            .subscribe()
    }
}

/// Wall time against monotonic time since the last look: a difference is a
/// jump of the wall clock (a suspend, or the time being set).
#[derive(Debug, Clone, Copy)]
pub struct WallWatch {
    wall: Timestamp,
    mono: tokio::time::Instant,
}

impl WallWatch {
    pub fn new(clock: &dyn Clock) -> Self {
        Self::at(clock.now())
    }

    fn at(wall: Timestamp) -> Self {
        WallWatch {
            wall,
            mono: tokio::time::Instant::now(),
        }
    }

    /// How far the wall clock jumped since the last look (positive: forward),
    /// if it did by more than noise; the next look counts from now.
    pub fn jumped(&mut self, clock: &dyn Clock) -> Option<SignedDuration> {
        self.jumped_to(clock.now())
    }

    fn jumped_to(&mut self, wall: Timestamp) -> Option<SignedDuration> {
        let before = std::mem::replace(self, Self::at(wall));
        let mono = SignedDuration::try_from(self.mono.duration_since(before.mono))
            .unwrap_or(SignedDuration::MAX);
        let by = wall.duration_since(before.wall).saturating_sub(mono);
        (by.abs() > JUMP_TOLERANCE).then_some(by)
    }
}

/// The polling guard: every [`WALL_CLOCK_STEP`] it compares wall and
/// monotonic time and, when they disagree, wakes every waiter. For clocks
/// that follow tokio's clock, and as the fallback without a timerfd.
async fn polling_guard(tx: watch::Sender<u64>, now: impl Fn() -> Timestamp) {
    let mut look = WallWatch::at(now());
    loop {
        tokio::time::sleep(WALL_CLOCK_STEP).await;
        if look.jumped_to(now()).is_some() {
            tx.send_modify(|n| *n += 1);
        }
    }
}

/// A timerfd on `CLOCK_REALTIME` armed for the end of time with
/// `TFD_TIMER_CANCEL_ON_SET`: it never expires, but the kernel makes it
/// readable (a read fails with `ECANCELED`) whenever the wall clock is set,
/// and when the machine resumes from a suspend.
fn clock_change_fd() -> std::io::Result<AsyncFd<OwnedFd>> {
    let fd = rustix::time::timerfd_create(
        TimerfdClockId::Realtime,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    arm(&fd)?;
    // tokio 1.54 deprecates the safe constructor because a `T: AsRawFd`
    // could answer with another fd later; an `OwnedFd` owned by the
    // `AsyncFd` (and never handed out mutably) cannot, and the one
    // replacement, `AsyncFd::register`, is `unsafe`, which freshd denies.
    #[allow(deprecated)]
    AsyncFd::new(fd)
}

fn arm(fd: &OwnedFd) -> rustix::io::Result<()> {
    let end_of_time = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        },
    };
    rustix::time::timerfd_settime(
        fd,
        TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
        &end_of_time,
    )
    .map(drop)
}

/// The system clock's guard: sleeps on the timerfd and, each time the wall
/// clock was set, re-arms it and wakes every waiter. On an error it falls
/// back to polling, so waits still end.
async fn timerfd_guard(fd: AsyncFd<OwnedFd>, tx: watch::Sender<u64>) {
    let failed = loop {
        let mut ready = match fd.readable().await {
            Ok(ready) => ready,
            Err(e) => break e.to_string(),
        };
        let mut ticks = [0; 8];
        match rustix::io::read(fd.get_ref(), &mut ticks) {
            Err(Errno::AGAIN | Errno::INTR) => ready.clear_ready(),
            // The wall clock was set (or the machine resumed): the timer is
            // cancelled until armed again. Ok means it expired, which the end
            // of time should not: arm it again all the same.
            Err(Errno::CANCELED) | Ok(_) => {
                if let Err(e) = arm(fd.get_ref()) {
                    break e.to_string();
                }
                tx.send_modify(|n| *n += 1);
            }
            Err(e) => break e.to_string(),
        }
    };
    tracing::warn!(
        "cannot watch for wall-clock changes any more ({failed}); checking every {} s instead",
        WALL_CLOCK_STEP.as_secs()
    );
    tx.send_modify(|n| *n += 1);
    polling_guard(tx, Timestamp::now).await;
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
        self.0.subscribe(|tx| match clock_change_fd() {
            Ok(fd) => drop(tokio::spawn(timerfd_guard(fd, tx))),
            Err(e) => {
                tracing::warn!(
                    "cannot watch for wall-clock changes with a timerfd ({e}); checking every {} s instead",
                    WALL_CLOCK_STEP.as_secs()
                );
                drop(tokio::spawn(polling_guard(tx, Timestamp::now)));
            }
        })
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
        let jumped = *self.jumped.locked();
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
        *self.inner.slept.locked() += by;
    }

    /// Sets the wall clock by `by` (either way) and nothing else, as an NTP
    /// step or `date -s` does: boot time is not moved.
    pub fn step_wall(&self, by: SignedDuration) {
        *self.inner.jumped.locked() += by;
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    fn boot(&self) -> Duration {
        let slept = *self.inner.slept.locked();
        self.inner.start.elapsed() + slept
    }

    fn jumps(&self) -> watch::Receiver<u64> {
        let inner = Arc::clone(&self.inner);
        self.signal
            .subscribe(|tx| drop(tokio::spawn(polling_guard(tx, move || inner.now()))))
    }
}

/// `t` to the second, as messages show times (no one reads nanoseconds).
pub fn to_the_second(t: Timestamp) -> Timestamp {
    t.round(jiff::Unit::Second).unwrap_or(t)
}

/// The time from `now` until `target`, zero if it has passed.
pub fn until(now: Timestamp, target: Timestamp) -> Duration {
    Duration::try_from(target.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// How a wait for a wall-clock instant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The wall clock reached the target (perhaps by jumping past it).
    Due,
    /// The wall clock went back by this much before reaching the target: a
    /// plan made in the old wall time needs making again.
    Back(SignedDuration),
}

/// Waits until the wall clock reaches `target`, or until it is seen to have
/// gone back: on the monotonic clock, comparing wall and monotonic time
/// against `look` on every wakeup (its own timer, or the clock's guard saying
/// the time was set), so that a jump is seen however it is learnt of. A
/// forward jump short of `target` just shortens the wait.
pub async fn wait_wall(clock: &dyn Clock, target: Timestamp, look: &mut WallWatch) -> Woke {
    let mut jumps = clock.jumps();
    loop {
        if let Some(by) = look.jumped(clock).filter(SignedDuration::is_negative) {
            return Woke::Back(by);
        }
        let left = until(clock.now(), target);
        if left.is_zero() {
            return Woke::Due;
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

/// Sleeps until the wall clock reaches `target`, however the wall clock
/// jumps on the way (see [`wait_wall`]).
pub async fn sleep_until_wall(clock: &dyn Clock, target: Timestamp) {
    let mut look = WallWatch::new(clock);
    while wait_wall(clock, target, &mut look).await != Woke::Due {}
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
    /// Nothing worth a journal line happened (a poll that saw no change):
    /// the run is logged at debug, not info.
    pub quiet: bool,
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

impl From<RunOutcome> for Ran {
    fn from(outcome: RunOutcome) -> Self {
        Ran {
            outcome,
            again_within: None,
            quiet: false,
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
