//! When jobs run: one timer over every job's next due time, and the runs it
//! starts.
//!
//! Invariants:
//! - Jobs are data. The [`Scheduler`] keeps each job's plan and [`JobState`]
//!   in one table, with a queue ordered by due time, and one task waits for
//!   the earliest: a job is a task only while it runs.
//! - A job never overlaps itself: while it runs it is out of the queue. A due
//!   time that passes meanwhile is run once after the run ends, and
//!   `freshd run-job` requests wait their turn, one run each.
//! - Waits are measured against the wall clock ([`Clock`]): tokio's timers
//!   follow the monotonic clock, which stops during a suspend and does not
//!   follow the time being set. So the timer compares wall and monotonic
//!   time whenever it wakes, and each clock has one guard that wakes it when
//!   the wall clock is set or the machine resumes (for the system clock a
//!   timerfd with `TFD_TIMER_CANCEL_ON_SET`: nothing wakes between such
//!   events).
//! - Runs that were due while the machine slept, while the clock jumped
//!   forward or while the previous run overran collapse into one run, with a
//!   warning saying how many. After a backward jump a job runs at its next
//!   occurrence in the new wall time: a cron job at its next match, an
//!   interval job on the same beat as before the jump (a job running during
//!   the jump is planned again when its run ends).

mod plan;
mod run;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Job;
use crate::jobs::{RunOutcome, RunReport};
use crate::sync::MutexExt;
use crate::time::{Clock, WallWatch, Woke, wait_wall};
use plan::{MAX_COUNTED, never_again, plan_after, plan_back};

/// What `status` and `notify` see of a job.
#[derive(Debug, Default, Clone)]
pub struct JobState {
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub last_outcome: Option<RunOutcome>,
    pub running: bool,
    /// Runs that ended in an error (a timeout included), in a row.
    pub failures: u32,
}

/// Where the outcome of a `freshd run-job` request is sent when its run is
/// done: the reply, carried by the request.
pub type RunNowReply = oneshot::Sender<RunOutcome>;

/// A job's body: each call makes one run.
pub type Body = Box<dyn Fn() -> Pin<Box<dyn Future<Output = RunReport> + Send>> + Send + Sync>;

/// A closure making one run's future, as a [`Body`].
pub fn boxed<F, Fut>(f: F) -> Body
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RunReport> + Send + 'static,
{
    Box::new(move || Box::pin(f()))
}

/// A job in the [`Scheduler`], from [`Scheduler::add`]. Never reused: a run
/// that ends after its job was replaced cannot touch the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey(u64);

/// When a job runs next, and the instant its interval counts from.
#[derive(Debug, Clone, Copy)]
struct Plan {
    due: Timestamp,
    anchor: Timestamp,
}

/// Why a run started, with what planning after it needs.
#[derive(Debug)]
enum Started {
    Schedule {
        plan: Plan,
        started: Timestamp,
        /// Occurrences missed before this run, collapsed into it.
        late: u64,
    },
    Request(RunNowReply),
}

/// One job, as data.
struct Entry {
    job: Arc<Job>,
    body: Body,
    /// `None` once the schedule never matches again: runs on request only.
    plan: Option<Plan>,
    state: JobState,
    /// `freshd run-job` requests that came while it ran.
    requests: VecDeque<RunNowReply>,
    /// How far the wall clock went back while it ran.
    back: Option<SignedDuration>,
}

#[derive(Default)]
struct Table {
    jobs: BTreeMap<JobKey, Entry>,
    /// Every idle job with a plan, by due time; a running job is not in it.
    queue: BTreeSet<(Timestamp, JobKey)>,
    /// The jobs whose last runs failed (`failures > 0`), so that what
    /// `notify` and `STATUS=` need is not a walk over every job.
    failing: BTreeSet<JobKey>,
    /// How many jobs' last outcome was an error.
    last_failed: usize,
    next_key: u64,
}

struct Inner {
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
    /// The queue has a new earliest entry: the timer looks again.
    wake: Notify,
    /// Told after every run (for `STATUS=` and `notify`).
    changed: Arc<Notify>,
    /// The timer and every run; waiting on it waits for runs in progress.
    tracker: TaskTracker,
    /// Ends the timer: no run starts after it.
    stop: CancellationToken,
}

/// Every job's schedule, in one table driven by one timer task.
#[derive(Clone)]
pub struct Scheduler(Arc<Inner>);

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts the timer on `tracker`, where runs are spawned too. After
    /// `stop` no run starts and requests are refused; runs in progress go on.
    pub fn start(
        clock: Arc<dyn Clock>,
        tracker: &TaskTracker,
        stop: CancellationToken,
        changed: Arc<Notify>,
    ) -> Self {
        let inner = Arc::new(Inner {
            clock,
            table: Mutex::default(),
            wake: Notify::new(),
            changed,
            tracker: tracker.clone(),
            stop,
        });
        tracker.spawn(Arc::clone(&inner).drive());
        Scheduler(inner)
    }

    /// Schedules `job`: an interval job runs at once, a cron job at its next
    /// match.
    pub fn add(&self, job: Arc<Job>, body: Body) -> JobKey {
        let inner = &self.0;
        let now = inner.clock.now();
        let plan = job
            .trigger
            .first_run(now)
            .map(|due| Plan { due, anchor: due });
        if plan.is_none() {
            never_again(&job);
        }
        let mut guard = inner.table.locked();
        let table = &mut *guard;
        let key = JobKey(table.next_key);
        table.next_key += 1;
        let state = JobState {
            next_run: plan.map(|p| p.due),
            ..JobState::default()
        };
        table.jobs.insert(
            key,
            Entry {
                job,
                body,
                plan,
                state,
                requests: VecDeque::new(),
                back: None,
            },
        );
        inner.enqueue(table, key);
        key
    }

    /// Takes a job out: it is not started again, and requests waiting for it
    /// are dropped (their clients hear it was stopped). A run in progress
    /// finishes.
    pub fn remove(&self, key: JobKey) {
        let mut guard = self.0.table.locked();
        let table = &mut *guard;
        let Some(entry) = table.jobs.remove(&key) else {
            return;
        };
        if let Some(plan) = entry.plan {
            table.queue.remove(&(plan.due, key));
        }
        table.failing.remove(&key);
        if matches!(entry.state.last_outcome, Some(RunOutcome::Error(_))) {
            table.last_failed -= 1;
        }
    }

    /// Runs the job now, or after its run in progress; `reply` gets the
    /// outcome. False when the job is gone or the scheduler stopped.
    pub fn run_now(&self, key: JobKey, reply: RunNowReply) -> bool {
        let inner = &self.0;
        if inner.stop.is_cancelled() {
            return false;
        }
        let mut guard = inner.table.locked();
        let table = &mut *guard;
        let Some(entry) = table.jobs.get_mut(&key) else {
            return false;
        };
        if entry.state.running {
            entry.requests.push_back(reply);
            return true;
        }
        // Out of the queue while it runs; its plan stays.
        if let Some(plan) = entry.plan {
            table.queue.remove(&(plan.due, key));
        }
        inner.launch(key, entry, Started::Request(reply));
        true
    }

    /// The job's state, if it is scheduled.
    pub fn state(&self, key: JobKey) -> Option<JobState> {
        self.states(|states| states.get(key).cloned())
    }

    /// Calls `f` with every job's state, under one lock: for `status`,
    /// which reads them all.
    pub fn states<R>(&self, f: impl FnOnce(&States<'_>) -> R) -> R {
        f(&States(&self.0.table.locked()))
    }

    /// How many jobs' last run ended in an error.
    pub fn last_failed(&self) -> usize {
        self.0.table.locked().last_failed
    }

    /// The jobs whose last runs failed, with their states.
    pub fn failing(&self) -> Vec<(Arc<Job>, JobState)> {
        let table = self.0.table.locked();
        table
            .failing
            .iter()
            .filter_map(|key| table.jobs.get(key))
            .map(|e| (Arc::clone(&e.job), e.state.clone()))
            .collect()
    }
}

/// Every job's state, as [`Scheduler::states`] lends it.
pub struct States<'t>(&'t Table);

impl fmt::Debug for States<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("States").finish_non_exhaustive()
    }
}

impl States<'_> {
    /// The job's state, if it is scheduled.
    pub fn get(&self, key: JobKey) -> Option<&JobState> {
        self.0.jobs.get(&key).map(|e| &e.state)
    }

    /// Every job's state, in the order of their keys (the order they were
    /// added): a walk, cheaper than a lookup per job.
    pub fn iter(&self) -> impl Iterator<Item = (JobKey, &JobState)> {
        self.0.jobs.iter().map(|(key, e)| (*key, &e.state))
    }
}

impl Inner {
    /// The timer: sleeps until the earliest due time on the wall clock, then
    /// starts what is due.
    async fn drive(self: Arc<Self>) {
        // Jumps are measured from here on, across waits and runs alike.
        let mut look = WallWatch::new(self.clock.as_ref());
        loop {
            let earliest = self.table.locked().queue.first().map(|&(due, _)| due);
            let wait = async {
                match earliest {
                    Some(due) => wait_wall(self.clock.as_ref(), due, &mut look).await,
                    None => std::future::pending().await,
                }
            };
            // Stop first: a due time ready in the same poll as a stop must
            // not start a run the shutdown grace would then cut off.
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = self.wake.notified() => {}
                woke = wait => match woke {
                    Woke::Due => self.start_due(),
                    Woke::Back(by) => self.went_back(by),
                },
            }
        }
    }

    /// Starts every idle job whose due time has come.
    fn start_due(self: &Arc<Self>) {
        if self.stop.is_cancelled() {
            return;
        }
        let mut guard = self.table.locked();
        let table = &mut *guard;
        let now = self.clock.now();
        while let Some(&(due, key)) = table.queue.first() {
            if due > now {
                break;
            }
            table.queue.pop_first();
            let Some(entry) = table.jobs.get_mut(&key) else {
                continue;
            };
            let Some(plan) = entry.plan else {
                continue;
            };
            let started = self.clock.now();
            let late = entry
                .job
                .trigger
                .count_between(plan.anchor, plan.due, started);
            if late > 0 {
                tracing::warn!(
                    JOB = %entry.job.name,
                    "{late}{} more run(s) were due while the machine was asleep or the clock jumped; running once for all of them",
                    if late >= MAX_COUNTED { "+" } else { "" },
                );
            }
            let why = Started::Schedule {
                plan,
                started,
                late,
            };
            self.launch(key, entry, why);
        }
    }

    /// The wall clock went back by `by`: every idle job is planned again in
    /// the new time; a running one when its run ends.
    fn went_back(&self, by: SignedDuration) {
        let now = self.clock.now();
        let mut guard = self.table.locked();
        let table = &mut *guard;
        table.queue.clear();
        for (&key, entry) in &mut table.jobs {
            if entry.state.running {
                entry.back = Some(entry.back.unwrap_or_default().saturating_add(by));
                continue;
            }
            let Some(plan) = entry.plan.as_mut() else {
                continue;
            };
            plan_back(&entry.job, plan, now, by);
            entry.state.next_run = Some(plan.due);
            table.queue.insert((plan.due, key));
        }
    }

    /// Marks the job running and spawns one run of it.
    fn launch(self: &Arc<Self>, key: JobKey, entry: &mut Entry, why: Started) {
        entry.state.running = true;
        entry.state.last_run = Some(self.clock.now());
        let job = Arc::clone(&entry.job);
        let body = (entry.body)();
        let inner = Arc::clone(self);
        self.tracker.spawn(async move {
            let word = match why {
                Started::Schedule { .. } => "on schedule",
                Started::Request(_) => "on request",
            };
            let ran = run::once(&job, body, word).await;
            inner.finished(key, ran, why);
        });
    }

    /// A run ended: its state is recorded, the job planned again, and the
    /// request that asked for it answered.
    fn finished(self: &Arc<Self>, key: JobKey, ran: RunReport, why: Started) {
        let mut guard = self.table.locked();
        let table = &mut *guard;
        if let Some(entry) = table.jobs.get_mut(&key) {
            let state = &mut entry.state;
            state.running = false;
            match &ran.outcome {
                RunOutcome::Ok => state.failures = 0,
                RunOutcome::Error(_) => state.failures = state.failures.saturating_add(1),
                RunOutcome::Skipped(_) => {}
            }
            let was_error = matches!(state.last_outcome, Some(RunOutcome::Error(_)));
            let is_error = matches!(ran.outcome, RunOutcome::Error(_));
            table.last_failed = table.last_failed + usize::from(is_error) - usize::from(was_error);
            if state.failures > 0 {
                table.failing.insert(key);
            } else {
                table.failing.remove(&key);
            }
            state.last_outcome = Some(ran.outcome.clone());
            let now = self.clock.now();
            if let Started::Schedule {
                plan,
                started,
                late,
            } = &why
            {
                entry.plan = plan_after(&entry.job, *plan, *started, *late, now, &ran);
            }
            if let Some(by) = entry.back.take()
                && let Some(plan) = entry.plan.as_mut()
            {
                plan_back(&entry.job, plan, now, by);
            }
            entry.state.next_run = entry.plan.map(|p| p.due);
            self.go_on(table, key);
        }
        drop(guard);
        if let Started::Request(reply) = why {
            let _ = reply.send(ran.outcome);
        }
        self.changed.notify_one();
    }

    /// After a run: the next request waiting, else back in the queue.
    fn go_on(self: &Arc<Self>, table: &mut Table, key: JobKey) {
        let Some(entry) = table.jobs.get_mut(&key) else {
            return;
        };
        if self.stop.is_cancelled() {
            entry.requests.clear();
            return;
        }
        while let Some(reply) = entry.requests.pop_front() {
            // Its client hung up before the run started: not run.
            if !reply.is_closed() {
                self.launch(key, entry, Started::Request(reply));
                return;
            }
        }
        self.enqueue(table, key);
    }

    /// Puts an idle job in the queue, waking the timer if it is now first.
    fn enqueue(&self, table: &mut Table, key: JobKey) {
        let Some(plan) = table.jobs.get(&key).and_then(|e| e.plan) else {
            return;
        };
        table.queue.insert((plan.due, key));
        if table.queue.first() == Some(&(plan.due, key)) {
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests;
