//! Wall-clock and boot-clock time, and waiting on them across suspends and
//! clock changes.
//!
//! Invariants:
//! - Waits are measured against the wall clock ([`Clock`]): tokio's timers
//!   follow the monotonic clock, which stops during a suspend and does not
//!   follow the time being set. So every waiter compares wall and monotonic
//!   time whenever it wakes, and each clock has one guard that wakes every
//!   waiter when the wall clock is set or the machine resumes (for the system
//!   clock a timerfd with `TFD_TIMER_CANCEL_ON_SET`: nothing wakes between
//!   such events).
//! - Token expiry is tracked on the boot clock ([`Clock::boot`]), which never
//!   goes backward.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rustix::io::Errno;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

#[cfg(test)]
mod tokio_clock;
pub mod zone;
#[cfg(test)]
pub use tokio_clock::TokioClock;

/// How often the wall clock is checked for jumps where nothing tells us of
/// them: the test clock's guard (`TokioClock`), and the system clock's if no timerfd can be
/// had. DESIGN §5: after a suspend a due job (or an expired token) is
/// handled within this time of waking.
pub const WALL_CLOCK_STEP: Duration = Duration::from_secs(30);

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
