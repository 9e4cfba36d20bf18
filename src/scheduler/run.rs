//! One run of a job, as its own task: the body under the job's timeout, and
//! the run's one journal line.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::config::Job;
use crate::jobs::{RunOutcome, RunReport};

/// A run's duration for the journal: milliseconds under a second, else
/// seconds with one decimal.
fn format_took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Runs `body` (one run of `job`, started `why`) within the job's timeout
/// and logs how it went.
pub(super) async fn once(job: &Job, body: impl Future<Output = RunReport>, why: &str) -> RunReport {
    let clock_started = tokio::time::Instant::now();
    tracing::debug!(JOB = %job.name, "run starts ({why})");
    let ran = match tokio::time::timeout(job.timeout, CatchPanic(Box::pin(body))).await {
        Ok(ran) => ran,
        Err(_) => RunReport::from(RunOutcome::Error(format!(
            "stopped after its timeout of {}",
            crate::config::format_duration(job.timeout)
        ))),
    };
    // One journal line per run (DESIGN §6), with its outcome and how long it
    // took: `journalctl -u freshd JOB=NAME` is the job's history.
    let took = format_took(clock_started.elapsed());
    let (name, account) = (&job.name, &job.account);
    match &ran.outcome {
        RunOutcome::Ok if ran.quiet => {
            tracing::debug!(JOB = %name, ACCOUNT = %account, "run ok in {took}, nothing new");
        }
        RunOutcome::Ok => tracing::info!(JOB = %name, ACCOUNT = %account, "run ok in {took}"),
        RunOutcome::Skipped(why) => {
            tracing::info!(JOB = %name, ACCOUNT = %account, "run skipped after {took}: {why}");
        }
        RunOutcome::Error(e) => {
            tracing::error!(JOB = %name, ACCOUNT = %account, "run failed after {took}: {e}");
        }
    }
    ran
}

/// A body that panics ends its run with an error instead of killing the run
/// task: the job is then planned again and a `run-job` waiting behind it is
/// answered. (The panic itself is printed by the panic hook, as any.)
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = RunReport>> Future for CatchPanic<F> {
    type Output = RunReport;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RunReport> {
        let body = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| body.poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(RunReport::from(RunOutcome::Error(
                "the run panicked (a bug in freshd: please report it); the job runs again on schedule"
                    .into(),
            ))),
        }
    }
}
