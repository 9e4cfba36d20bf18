//! Wall-clock jumps end to end: the real binary under libfaketime, whose
//! offset is rewritten while the daemon runs, as an NTP step or `date -s`
//! would set the clock. The monotonic clock is left alone, as the kernel
//! leaves it.
//!
//! libfaketime comes from the `faketime` package; without it these tests
//! say so on stderr and pass, except under CI (env `CI` set), where they
//! fail.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{PATIENCE, Setup};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Whether libfaketime is there; without it, skips with a reason (or fails
/// under CI).
fn have_libfaketime() -> bool {
    if Path::new(LIBFAKETIME).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{LIBFAKETIME} is missing; install the faketime package"
    );
    eprintln!("skipped: {LIBFAKETIME} is missing (install the faketime package)");
    false
}

/// The wall times (seconds since the epoch, as the job saw them) the job
/// has run at so far.
fn runs(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Waits until the job has run `n` times; returns the runs.
async fn wait_runs(path: &Path, n: usize, log: impl Fn() -> String) -> Vec<i64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = runs(path);
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} run(s) of {n}: {seen:?}; log:\n{}",
            seen.len(),
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon under libfaketime with an `every = "2s"` job that writes
/// the wall time it sees; once it has run twice, the clock is set by
/// `step` (libfaketime's syntax, "-2h"). Returns the runs before the step,
/// the runs after it once there are `more` of them, and the daemon.
async fn step_under_a_running_job(
    setup: &Setup,
    step: &str,
    more: usize,
) -> (Vec<i64>, Vec<i64>, common::Daemon) {
    let offset = setup.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let out = setup.path().join("runs");
    setup.write_config(&format!(
        "\n[jobs.tick]\naccount = \"spotify\"\ntype = \"command\"\nevery = \"2s\"\ncommand = [\"sh\", \"-c\", \"date +%s >> '{}'\"]\n",
        out.display()
    ));
    let daemon = setup
        .start_with(
            "debug",
            &[
                ("LD_PRELOAD", LIBFAKETIME),
                ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
                ("FAKETIME_NO_CACHE", "1"),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ],
        )
        .await;
    daemon.notify_containing("READY=1").await;
    let before = wait_runs(&out, 2, || daemon.log_text()).await;
    // The clock is set, for the daemon and its job alike.
    std::fs::write(&offset, format!("{step}\n")).unwrap();
    let after = wait_runs(&out, before.len() + more, || daemon.log_text()).await;
    let after = after[before.len()..].to_vec();
    (before, after, daemon)
}

/// reliability: the wall clock set back 2 hours (libfaketime) under a running daemon with an `every = "2s"` job | saw the jump when the job's timer next fired, re-planned the job in the new time and kept running it every 2 s | nothing; no run was held back for the 2 hours
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_job_keeps_running_after_the_clock_is_set_back_two_hours() {
    if !have_libfaketime() {
        return;
    }
    let setup = Setup::new(3600, "").await;
    let (before, after, daemon) = step_under_a_running_job(&setup, "-2h", 3).await;
    let last_before = before[before.len() - 1];
    let new_time: Vec<i64> = after
        .iter()
        .copied()
        .filter(|&t| t < last_before - 3600)
        .collect();
    assert!(
        new_time.len() >= 2,
        "the job did not go on in the stepped-back time: before {before:?}, after {after:?}"
    );
    daemon.wait_for_log("the wall clock went back by").await;
    // The runs in the new time came about 2 s apart, not 2 hours.
    for pair in new_time.windows(2) {
        assert!(pair[1] - pair[0] <= 4, "runs too far apart: {new_time:?}");
    }
}

/// reliability: the wall clock set forward 2 hours (libfaketime) under a running daemon with an `every = "2s"` job | ran the job once for the 3,600 runs the jump skipped, with a warning saying so, then every 2 s again | nothing; no burst of catch-up runs
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_job_runs_once_for_a_two_hour_forward_jump() {
    if !have_libfaketime() {
        return;
    }
    let setup = Setup::new(3600, "").await;
    let (before, after, daemon) = step_under_a_running_job(&setup, "+2h", 3).await;
    let last_before = before[before.len() - 1];
    assert!(
        after.iter().all(|&t| t > last_before + 3600),
        "a run in the old time after the jump: before {before:?}, after {after:?}"
    );
    daemon
        .wait_for_log("more run(s) were due while the machine was asleep or the clock jumped; running once for all of them")
        .await;
    // One catch-up run, then the old beat: about 2 s apart, no burst.
    for pair in after.windows(2) {
        assert!(
            (1..=4).contains(&(pair[1] - pair[0])),
            "runs not 2 s apart: {after:?}"
        );
    }
}
