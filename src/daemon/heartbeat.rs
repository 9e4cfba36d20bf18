//! The heartbeat: `WATCHDOG=1` when systemd asks for it; and, whenever an
//! account or job changed, `STATUS=` (if its summary changed) and the
//! notices `notify` sends. It runs on the same runtime as the scheduler,
//! so a stuck runtime stops the pings and systemd restarts us.
//!
//! A beat only pings: the summary is kept between changes, so nothing is
//! rebuilt while nothing changes. Notices are also looked at every
//! [`RECHECK`], for what time alone brings: a reminder once the quiet
//! period is over, a refresh token's end drawing near.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Interval};

use super::Daemon;
use crate::status::Summary;
use crate::systemd;

/// How late, at most, a notice is that nothing but time brought.
const RECHECK: Duration = Duration::from_secs(3600);

/// Starts the heartbeat; `ready` is the summary `READY=1` carried.
pub(super) fn spawn(daemon: &Arc<Daemon>, ready: Summary) -> tokio::task::JoinHandle<()> {
    let daemon = Arc::clone(daemon);
    tokio::spawn(async move {
        let mut beat = watchdog_beat();
        let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
        let mut summary = ready;
        // What the first refreshes found may already need a person.
        daemon.notify();
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
                () = daemon.registry.changed.notified() => {}
            }
            let now = daemon.registry.summary();
            if now != summary {
                systemd::status(&now.to_string());
                summary = now;
            }
            daemon.notify();
        }
    })
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
