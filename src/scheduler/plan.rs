//! A job's schedule as instants: the next occurrence of a cron pattern or an
//! interval, and how a plan is made again after the wall clock went back.

use jiff::{SignedDuration, Timestamp};

use crate::config::Trigger;

/// The most missed occurrences counted for a warning; past it the count says
/// "at least".
pub(super) const MAX_COUNTED: u64 = 10_000;

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
    pub(super) fn after_backward_jump(
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
    pub(super) fn count_between(&self, anchor: Timestamp, from: Timestamp, to: Timestamp) -> u64 {
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
