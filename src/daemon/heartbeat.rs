//! The heartbeat: `WATCHDOG=1` when systemd asks for it; and, whenever an
//! account or job changed, `STATUS=` (if its summary changed) and the
//! notices `notify` sends. It runs on the same runtime as the scheduler,
//! so a stuck runtime stops the pings and systemd restarts us.
//!
//! A beat only pings: the summary is kept between changes, so nothing is
//! rebuilt while nothing changes, and changes that come close together are
//! looked at once ([`GATHER`]). Notices are also looked at every
//! [`RECHECK`], for what time alone brings: a reminder once the quiet
//! period is over, a refresh token's end drawing near.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Interval};

use super::Daemon;
use crate::oauth::TokenManager;
use crate::status::Summary;
use crate::systemd;

/// How late, at most, a notice is that nothing but time brought.
const RECHECK: Duration = Duration::from_secs(3600);
/// Changes are looked at no more often than this: ten thousand first
/// refreshes, or a hundred thousand runs due at one minute, each tell
/// `changed`, and each look reads every account.
const GATHER: Duration = Duration::from_millis(500);

/// Starts the heartbeat; `ready` is the summary `READY=1` carried, and
/// `first_wave` the accounts whose first refresh was still going then: once
/// theirs are all over, the memory the wave used goes back to the system.
pub(super) fn spawn(
    daemon: &Arc<Daemon>,
    ready: Summary,
    first_wave: Vec<Arc<TokenManager>>,
) -> tokio::task::JoinHandle<()> {
    let daemon = Arc::clone(daemon);
    let mut first_wave = std::collections::VecDeque::from(first_wave);
    tokio::spawn(async move {
        let mut beat = watchdog_beat();
        let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
        let mut summary = ready;
        // What the first refreshes found may already need a person.
        daemon.notify();
        let (mut changed, mut quiet_until) = (false, Instant::now());
        loop {
            tokio::select! {
                () = tick(beat.as_mut()) => {
                    systemd::watchdog();
                    continue;
                }
                _ = recheck.tick() => {
                    daemon.notify();
                    continue;
                }
                () = daemon.registry.changed.notified(), if !changed => {
                    changed = true;
                    continue;
                }
                () = tokio::time::sleep_until(quiet_until), if changed => {}
            }
            changed = false;
            quiet_until = Instant::now() + GATHER;
            wave_over(&mut first_wave);
            let now = daemon.registry.summary();
            if now != summary {
                systemd::status(&now.to_string());
                summary = now;
            }
            daemon.notify();
        }
    })
}

/// Drops the accounts at the front of `wave` whose first refresh is over;
/// when the last goes, returns the memory the wave freed to the system.
fn wave_over(wave: &mut std::collections::VecDeque<Arc<TokenManager>>) {
    if wave.is_empty() {
        return;
    }
    while wave.front().is_some_and(|m| m.settled()) {
        wave.pop_front();
    }
    if wave.is_empty() {
        tracing::debug!("the first refreshes are over");
        systemd::release_free_memory();
    }
}

/// Half systemd's watchdog interval, if it set one. An interval keeps its
/// beat whatever else wakes the loop: a sleep restarted on every change
/// would starve the watchdog while jobs run often.
fn watchdog_beat() -> Option<Interval> {
    systemd::watchdog_interval().map(|i| {
        let mut t = tokio::time::interval(i / 2);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    })
}

async fn tick(beat: Option<&mut Interval>) {
    match beat {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Tells a person what needs them, through `notify` (each event at most
    /// once a day).
    fn notify(&self) {
        let registry = &self.registry;
        let notices =
            crate::notify::notices(&registry.account_statuses(), &registry.failing_jobs());
        if !notices.is_empty() {
            let config = Arc::clone(&registry.read().config);
            self.notifier.send(&config, notices, registry.clock.now());
        }
    }
}
