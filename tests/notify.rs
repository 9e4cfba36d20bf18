//! `notify`: the command that tells a person to act, through the binary.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, Setup};

/// A notifier that appends one line per call with what it was told.
fn recorder(setup: &Setup) -> (String, std::path::PathBuf) {
    let record = setup.path().join("notified.txt");
    let script = setup.path().join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$FRESHD_EVENT|$FRESHD_ACCOUNT|$FRESHD_JOB|$FRESHD_MESSAGE\" >> {}\n",
            record.display()
        ),
    )
    .unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&script, executable).unwrap();
    (format!("notify = [\"{}\"]\n", script.display()), record)
}

fn lines(record: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_lines(record: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let l = lines(record);
        if l.len() >= n {
            return l;
        }
        assert!(Instant::now() < deadline, "only {l:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// reliability: a job failing run after run, with `notify` set | the notify command ran once, with FRESHD_EVENT=job_failing, FRESHD_ACCOUNT, FRESHD_JOB and FRESHD_MESSAGE, after the third failure in a row, and not again that day | nothing; a person is told
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_told_once() {
    let setup = Setup::new(3600, "").await;
    let (notify, record) = recorder(&setup);
    let jobs = "\n[jobs.broken]\naccount = \"spotify\"\ntype = \"command\"\nevery = \"1s\"\ncommand = [\"sh\", \"-c\", \"echo nope >&2; exit 3\"]\n";
    setup.write_config(&format!("{notify}{jobs}"));
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let first = wait_lines(&record, 1).await;
    assert!(
        first[0].starts_with("job_failing|spotify|broken|freshd job broken failed 3 runs in a row"),
        "{first:?}"
    );
    // Several more failures: nothing more is said today.
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    assert_eq!(lines(&record).len(), 1, "{:?}", lines(&record));
}

/// reliability: a revoked refresh token at start, with `notify` set, then a restart | the notify command ran once with FRESHD_EVENT=needs_login and a message naming `freshd login`; the restart did not repeat it within the day | nothing; a person is told
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_login_is_told_once_even_across_a_restart() {
    let setup = Setup::new(3600, "").await;
    let (notify, record) = recorder(&setup);
    setup.write_config(&notify);
    setup.fake.revoke("spotify");
    for _ in 0..2 {
        let mut daemon = setup.start("info").await;
        daemon.notify_containing("READY=1").await;
        let told = wait_lines(&record, 1).await;
        assert!(
            told[0].starts_with("needs_login|spotify||")
                && told[0].contains("freshd login spotify"),
            "{told:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        daemon.signal("TERM");
        assert_eq!(daemon.exit_code().await, 0);
    }
    assert_eq!(lines(&record).len(), 1, "{:?}", lines(&record));
}
