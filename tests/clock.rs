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

/// reliability: the wall clock set back 2 hours (libfaketime) under a running daemon with an `every = "2s"` job | saw the jump when the job's timer next fired, re-planned the job in the new time and kept running it every 2 s | nothing; no run was held back for the 2 hours
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_job_keeps_running_after_the_clock_is_set_back_two_hours() {
    if !have_libfaketime() {
        return;
    }
    let setup = Setup::new(3600, "").await;
    let offset = setup.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let out = setup.path().join("runs");
    setup.write_config(&format!(
        "\n[jobs.tick]\naccount = \"spotify\"\ntype = \"command\"\nevery = \"2s\"\ncommand = [\"sh\", \"-c\", \"date +%s >> '{}'\"]\n",
        out.display()
    ));
    let offset_file = offset.to_str().unwrap();
    let daemon = setup
        .start_with(
            "debug",
            &[
                ("LD_PRELOAD", LIBFAKETIME),
                ("FAKETIME_TIMESTAMP_FILE", offset_file),
                ("FAKETIME_NO_CACHE", "1"),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ],
        )
        .await;
    daemon.notify_containing("READY=1").await;
    let log = || daemon.log_text();
    let before = wait_runs(&out, 2, log).await;

    // The clock goes back two hours, for the daemon and its job alike.
    std::fs::write(&offset, "-2h\n").unwrap();
    let after = wait_runs(&out, before.len() + 3, log).await;
    let stepped: Vec<i64> = after[before.len()..].to_vec();
    let last_before = before[before.len() - 1];
    assert!(
        stepped.iter().any(|&t| t < last_before - 3600),
        "the job never ran in the stepped-back time: before {before:?}, after {stepped:?}"
    );
    daemon.wait_for_log("the wall clock went back by").await;
    // Three runs in the new time came about 2 s apart, not 2 hours.
    let new_time: Vec<i64> = stepped
        .iter()
        .copied()
        .filter(|&t| t < last_before - 3600)
        .collect();
    for pair in new_time.windows(2) {
        assert!(pair[1] - pair[0] <= 4, "runs too far apart: {new_time:?}");
    }
}
