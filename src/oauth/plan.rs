//! The background task: when the held token should be refreshed (ahead of
//! expiry, with this account's jitter), when a retry or a store retry is
//! due, and the warning before a refresh token's known end of life.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::state::{Access, TokenState};
use super::{EXPIRY_WARNING, Inner, JITTER_SHARE, MIN_VALIDITY, TokenManager};
use crate::time::sleep_until_boot;

impl TokenManager {
    /// When the held token should be refreshed (boot clock):
    /// `refresh_before_expiry` ahead (at most half the token's life), less
    /// this account's jitter.
    pub(super) fn refresh_at(&self, a: &Access) -> Duration {
        let margin = self.account.refresh_before_expiry.min(a.lifetime / 2);
        let margin = margin.mul_f64(1.0 + JITTER_SHARE * self.jitter);
        a.expires.saturating_sub(margin)
    }

    pub(super) fn check_expiry_warning(&self, inner: &mut Inner, now: Timestamp) {
        let (Some(obtained), Some(lifetime)) =
            (inner.obtained_at, self.account.refresh_token_lifetime)
        else {
            return;
        };
        let Some(w) = expiry_warning(self.name(), obtained, lifetime, now) else {
            return;
        };
        if !inner.warned_expiry {
            tracing::warn!(ACCOUNT = %self.name(), "{w}");
            inner.warned_expiry = true;
        }
    }

    /// When the plan says the next token request goes (boot clock), if
    /// it says one does; `boot` is now.
    fn planned(&self, state: &TokenState, boot: Duration) -> Option<Duration> {
        if self.retired.load(Ordering::SeqCst) {
            return None;
        }
        match state {
            TokenState::Idle { .. } => Some(boot),
            TokenState::Fresh { access } => Some(self.refresh_at(access)),
            TokenState::Backoff { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// Refreshes if the plan says it is time (the background task's step).
    async fn refresh_if_due(self: &Arc<Self>) {
        let first = matches!(self.lock().state, TokenState::Idle { .. });
        let _permit = match self.first_wave.get() {
            Some(wave) if first => Some(Arc::clone(wave).acquire_owned().await),
            _ => None,
        };
        let guard = Arc::clone(&self.refresh_lock).lock_owned().await;
        let boot = self.clock.boot();
        let due = self
            .planned(&self.lock().state, boot)
            .is_some_and(|at| at <= boot);
        if due {
            let _ = self.refresh(guard, false).await;
        }
    }

    /// When the background task should next act (boot clock), if at all:
    /// the planned refresh or retry, or a store retry.
    fn next_wake(&self) -> Option<Duration> {
        let inner = self.lock();
        let refresh = self.planned(&inner.state, self.clock.boot());
        let store = inner.chain.unstored.as_ref().map(|u| u.retry_at);
        match (refresh, store) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The background refresher: sleeps until the next planned refresh (or
    /// retry, or store retry) and does it. Runs until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wake = self.next_wake();
            let sleep = async {
                match wake {
                    Some(t) => sleep_until_boot(self.clock.as_ref(), t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = sleep => {
                    self.retry_store().await;
                    self.refresh_if_due().await;
                }
            }
        }
    }

    /// Stops this manager from sending anything more (a reload removed its
    /// account), after its request in flight.
    pub async fn retire(&self) {
        let _guard = self.refresh_lock.lock().await;
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Whether the first refresh is over (whatever it found): the daemon
    /// waits for this, within a bound, before `READY=1`.
    pub fn settled(&self) -> bool {
        !matches!(
            self.lock().state,
            TokenState::Idle { .. } | TokenState::Refreshing { .. }
        )
    }

    /// Makes first refreshes (of an `Idle` account) wait for a permit of
    /// `wave`, so that many accounts starting together do not open a socket
    /// each at once.
    pub fn set_first_wave(&self, wave: Arc<tokio::sync::Semaphore>) {
        let _ = self.first_wave.set(wave);
    }
}

/// Whether `a` has enough life left at `boot` to be handed out.
pub(super) fn usable(a: &Access, boot: Duration) -> bool {
    let need = MIN_VALIDITY.min(a.lifetime / 4);
    a.expires.saturating_sub(boot) > need
}

/// The warning to show when a refresh token obtained at `obtained`, which
/// the provider ends after `lifetime`, nears its end.
pub(super) fn expiry_warning(
    account: &str,
    obtained: Timestamp,
    lifetime: Duration,
    now: Timestamp,
) -> Option<String> {
    let end = obtained
        .checked_add(SignedDuration::try_from(lifetime).ok()?)
        .ok()?;
    let warn_from = end
        .checked_sub(SignedDuration::try_from(EXPIRY_WARNING).ok()?)
        .ok()?;
    (now >= warn_from).then(|| {
        format!(
            "the refresh token was obtained on {} and the provider ends it around {}: run `freshd login {account}` before then",
            obtained.strftime("%Y-%m-%d"),
            end.strftime("%Y-%m-%d")
        )
    })
}
