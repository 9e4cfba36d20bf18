//! `freshd status` of many jobs through the real binary: the daemon writes
//! the answer in pieces and the client takes it apart as it arrives; each
//! job keeps its own schedule's times, also after a reload added jobs
//! whose names fall between the others'.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use common::Setup;
use freshd::status::StatusReport;

/// Job `j-NNNN`, run on the first of month `NNNN % 12 + 1` at midnight.
fn job(n: usize) -> String {
    format!(
        "\n[jobs.j-{n:04}]\naccount = \"spotify\"\ntype = \"command\"\nschedule = \"0 0 1 {} *\"\ncommand = [\"true\"]\n",
        n % 12 + 1
    )
}

/// Every job's month is its own, and the jobs are `expected`, in order.
fn check(report: &StatusReport, expected: &[usize]) {
    let names: Vec<&str> = report.jobs.iter().map(|j| j.name.as_str()).collect();
    let wanted: Vec<String> = expected.iter().map(|n| format!("j-{n:04}")).collect();
    assert_eq!(names, wanted);
    for (j, n) in report.jobs.iter().zip(expected) {
        let next = j.next_run.unwrap().to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(
            (next.month(), next.day(), next.hour()),
            (i8::try_from(n % 12 + 1).unwrap(), 1, 0),
            "{}",
            j.name
        );
        assert_eq!(&*j.account, "spotify");
        assert_eq!(j.running_since, None);
    }
}

/// Reloads to the jobs `numbers` and checks the status shows each with its
/// own schedule.
async fn reload_and_check(setup: &Setup, numbers: &[usize]) {
    setup.write_config(&numbers.iter().map(|&n| job(n)).collect::<String>());
    let (code, out, err) = setup.cli(&["reload"]).await;
    assert_eq!((code, out.trim()), (0, "reloaded"), "{err}");
    let (code, out, err) = setup.cli(&["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    check(&serde_json::from_str(&out).unwrap(), numbers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_status_matches_every_job_to_its_own_schedule_after_a_reload() {
    // The even jobs first; a reload adds the odd ones, whose names fall
    // between theirs but which are scheduled after them.
    let even: Vec<usize> = (0..1600).step_by(2).collect();
    let setup = Setup::new(3600, &even.iter().map(|&n| job(n)).collect::<String>()).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, out, err) = setup.cli(&["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.len() > 100_000, "a status of several pieces");
    check(&serde_json::from_str(&out).unwrap(), &even);

    let all: Vec<usize> = (0..1600).collect();
    reload_and_check(&setup, &all).await;
    // The human form has every job too.
    let (code, out, _) = setup.cli(&["status"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.starts_with("  j-")).count(), 1600);

    // A reload that removes every third job and adds others after the
    // rest (a rename is both): the walk misses, the search still finds
    // each job's own state.
    let fewer: Vec<usize> = (0..1700).filter(|n| n % 3 != 0).collect();
    reload_and_check(&setup, &fewer).await;

    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}
