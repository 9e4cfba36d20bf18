//! A job's schedule as instants: the next occurrence of a cron pattern or an
//! interval; the plan after a run; and how a plan is made again after the
//! wall clock went back.

use jiff::{SignedDuration, Timestamp};

use super::Plan;
use crate::config::{Job, Trigger, format_duration};
use crate::jobs::RunReport;
use crate::time::until;

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

/// The plan after a scheduled run that started at `started` (for `plan`,
/// collapsing `late` missed ones) and ended at `finished`.
pub(super) fn plan_after(
    job: &Job,
    plan: Plan,
    started: Timestamp,
    late: u64,
    finished: Timestamp,
    ran: &RunReport,
) -> Option<Plan> {
    let trigger = &job.trigger;
    if let (Some(within), Trigger::Every(every)) = (ran.again_within, trigger) {
        let wait = SignedDuration::try_from(within.min(*every)).unwrap_or(SignedDuration::ZERO);
        let due = finished.checked_add(wait).unwrap_or(finished);
        return Some(Plan { due, anchor: due });
    }
    let overrun = trigger.count_between(plan.anchor, started, finished);
    if overrun > 0 {
        tracing::warn!(
            JOB = %job.name,
            "the run took {}, past {overrun} planned start(s); running once more now instead",
            format_duration(until(started, finished)),
        );
        return Some(Plan {
            due: finished,
            anchor: finished,
        });
    }
    let Some(next) = trigger.next_after(plan.anchor, started.max(plan.due)) else {
        never_again(job);
        return None;
    };
    if matches!(trigger, Trigger::Every(_)) && late > 0 {
        let due = trigger.next_after(started, started).unwrap_or(next);
        return Some(Plan {
            due,
            anchor: started,
        });
    }
    Some(Plan {
        due: next,
        anchor: plan.anchor,
    })
}

/// Makes `plan` again after the wall clock went back by `by` to `now`.
pub(super) fn plan_back(job: &Job, plan: &mut Plan, now: Timestamp, by: SignedDuration) {
    let (due, anchor) = job
        .trigger
        .after_backward_jump(now, by, plan.due, plan.anchor);
    *plan = Plan { due, anchor };
    tracing::debug!(
        JOB = %job.name,
        "the wall clock went back by {}; next run at {due}",
        format_duration(by.unsigned_abs()),
    );
}

/// Says that a job's schedule never matches again.
pub(super) fn never_again(job: &Job) {
    tracing::warn!(JOB = %job.name, "the schedule never matches again; the job will not run");
}
