//! A clock for the unit tests (`#[cfg(test)]`: not in the release binary).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use super::{Clock, JumpSignal, polling_guard};
use crate::sync::MutexExt;

/// A wall clock that follows tokio's clock (so `tokio::time::pause` and
/// `advance` move it) plus explicit jumps, which is what a suspend looks
/// like from inside the process. For the unit tests.
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
