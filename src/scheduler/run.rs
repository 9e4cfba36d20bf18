//! One run of a job, as its own task: the body under the job's timeout, and
//! the run's one journal line.

use std::future::Future;
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
    let ran = match tokio::time::timeout(job.timeout, body).await {
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
