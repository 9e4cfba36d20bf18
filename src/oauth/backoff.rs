//! How long to wait before asking the token endpoint (or the store) again,
//! and the cap on unplanned token requests a minute.
//!
//! Not `backon` (DESIGN §7 names it for retries): its backoffs are
//! iterators consumed by a future that sleeps between attempts, and its
//! jitter only adds up to one whole delay (0 to +100 %). freshd's retries
//! are a plan kept in the token state (the failures in a row live in
//! [`TokenState::Backoff`](super::state::TokenState::Backoff)), callers never
//! wait one out, and the delay combines the exponential step (±20 %
//! jitter) with a `Retry-After` of up to a day, the 30 s floor after an
//! unanswered request and the minute's cap below. That is the two-line
//! [`delay`] here, which a dependency would not shorten.

use std::collections::VecDeque;
use std::time::Duration;

use super::endpoint;

/// The first retry after a transient failure waits this long; each next one
/// twice as long.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// The longest wait between retries: ten minutes keeps a long outage cheap
/// while recovering within minutes once the provider is back.
const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// After a request that was sent but never answered, wait at least this
/// long: the provider may have rotated the token, and hammering it with the
/// old one is what reuse detection punishes.
pub(crate) const UNANSWERED_BACKOFF: Duration = Duration::from_secs(30);
/// Requests that are not a planned refresh of a good token (retries after a
/// failure or a token that arrived expired, refreshes forced by a 401) are
/// held to this many a minute, whatever the provider answers (DESIGN §5).
pub const MAX_UNPLANNED_REQUESTS: usize = 4;
const REQUEST_WINDOW: Duration = Duration::from_secs(60);
/// The first retry of a rotation the store refused; doubling up to
/// [`STORE_RETRY_CAP`].
const STORE_RETRY_BASE: Duration = Duration::from_secs(2);
const STORE_RETRY_CAP: Duration = Duration::from_secs(300);

/// `base · 2^(attempt-1)`, capped at `cap`.
fn doubling(base: Duration, attempt: u32, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(cap)
}

/// `BACKOFF_BASE · 2^(attempt-1)`, capped, with ±20 % jitter.
fn backoff_delay(attempt: u32) -> Duration {
    doubling(BACKOFF_BASE, attempt, BACKOFF_CAP).mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// The wait before the next token request after `attempt` transient
/// failures in a row: the exponential step, or longer when the provider
/// said `Retry-After` (up to [`endpoint::MAX_RETRY_AFTER`]) or the request
/// went unanswered (`floor`).
pub(crate) fn delay(attempt: u32, retry_after: Option<Duration>, floor: Duration) -> Duration {
    backoff_delay(attempt)
        .max(
            retry_after
                .unwrap_or_default()
                .min(endpoint::MAX_RETRY_AFTER),
        )
        .max(floor)
}

/// The wait before the `attempts`-th retry of a rotation the store refused.
pub(crate) fn store_delay(attempts: u32) -> Duration {
    doubling(STORE_RETRY_BASE, attempts, STORE_RETRY_CAP)
}

/// The last minute's unplanned token requests (boot-clock readings).
#[derive(Debug, Default)]
pub(crate) struct Unplanned {
    recent: VecDeque<Duration>,
}

impl Unplanned {
    /// Forgets the requests that left the window by `boot`.
    pub(crate) fn prune(&mut self, boot: Duration) {
        while self
            .recent
            .front()
            .is_some_and(|t| boot.saturating_sub(*t) >= REQUEST_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// Counts a request at `boot`, or, when the minute's cap is reached,
    /// says when the next one may go (the oldest leaves the window).
    pub(crate) fn admit(&mut self, boot: Duration) -> Result<(), Duration> {
        if self.recent.len() >= MAX_UNPLANNED_REQUESTS {
            return Err(self.recent.front().map_or(boot, |t| *t + REQUEST_WINDOW));
        }
        self.recent.push_back(boot);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }
}
