//! What the client commands print and how they exit (issue 13 §5, §7): the
//! real binary against a real daemon and the fake provider.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PATIENCE, Setup, bin};
use freshd::status::StatusReport;
use tokio::process::Command;

const SLOW_JOB: &str = r#"
[jobs.slow]
account = "spotify"
type = "command"
schedule = "0 0 1 1 *"
command = ["sh", "-c", "echo started; exec sleep 20"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_has_a_header_shows_a_running_job_and_exits_3_when_a_person_is_needed() {
    let setup = Setup::new(3600, SLOW_JOB).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;

    let (code, out, err) = setup.cli(&["status"]).await;
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with(&format!(
            "freshd {} (pid {}), running since ",
            env!("CARGO_PKG_VERSION"),
            daemon.pid()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("  config {}\n", setup.config.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("  socket {}\n", setup.socket().display())),
        "{out}"
    );
    // In the daemon's zone (UTC here), to the second.
    let since = header.split("running since ").nth(1).unwrap();
    assert!(
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", &since[..19]).is_ok()
            && since[19..].starts_with(" UTC ("),
        "{header}"
    );

    // A job running now shows as running, in text and JSON.
    let run = tokio::spawn({
        let config = setup.config.clone();
        async move {
            Command::new(bin())
                .args(["run-job", "slow", "--config"])
                .arg(config)
                .output()
                .await
                .unwrap()
        }
    });
    daemon.wait_for_log("started").await;
    let (_, out, _) = setup.cli(&["status"]).await;
    let line = out.lines().find(|l| l.contains("slow")).unwrap();
    assert!(line.contains("running since "), "{out}");
    assert!(line.contains("(previous run: none)"), "{out}");
    let (code, json, _) = setup.cli(&["status", "--json"]).await;
    assert_eq!(code, 0);
    let report: StatusReport = serde_json::from_str(&json).unwrap();
    let slow = report.jobs.iter().find(|j| j.name == "slow").unwrap();
    assert!(slow.running_since.is_some(), "{json}");
    let info = report.daemon.unwrap();
    assert_eq!(info.pid, daemon.pid() as u32);
    assert_eq!(info.timezone, "UTC");

    // The daemon stops in the middle of the run: after the grace period
    // the job's program is stopped, and run-job says so.
    daemon.signal("TERM");
    let out = tokio::time::timeout(PATIENCE, run).await.unwrap().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("slow: error: sh was killed by a signal (signal: 15 (SIGTERM))"),
        "{err}"
    );
    assert_eq!(daemon.exit_code().await, 0);

    // needs_login: exit 3, in text and JSON.
    setup.fake.revoke("spotify");
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, out, _) = setup.cli(&["status"]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("needs_login"), "{out}");
    assert_eq!(setup.cli(&["status", "--json"]).await.0, 3);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_config_that_sets_socket_shows_why_it_was_refused() {
    let setup = Setup::new(3600, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let good = std::fs::read_to_string(&setup.config).unwrap();
    // The socket is set in the file (Setup's config does); the file is bad.
    std::fs::write(&setup.config, format!("{good}\nbogus_key = 1\n")).unwrap();
    let (code, out, err) = setup.cli(&["reload"]).await;
    assert_eq!(code, 78, "{out}{err}");
    assert!(
        err.starts_with(
            "freshd: reload refused; the daemon keeps running its previous configuration:\n"
        ),
        "{err}"
    );
    assert!(err.contains("bogus_key"), "{err}");
    assert_eq!(err.matches("freshd:").count(), 1, "one prefix: {err}");
    assert_eq!(err.lines().count(), 2, "the reason, said once: {err}");
    // Still running the old config.
    assert_eq!(setup.cli(&["status"]).await.0, 0);
    std::fs::write(&setup.config, good).unwrap();
    let (code, out, _) = setup.cli(&["reload"]).await;
    assert_eq!((code, out.trim()), (0, "reloaded"));
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// Runs `freshd ARGS` with `env` only (plus PATH).
async fn freshd(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn not_running_says_once_why_and_which_systemctl_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    let missing = missing.to_str().unwrap();
    let runtime = dir.path().to_str().unwrap();

    // The user's socket.
    let (code, _, err) = freshd(
        &["status", "--config", missing],
        &[("XDG_RUNTIME_DIR", runtime)],
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "freshd: nothing answers on {runtime}/freshd/control.sock (No such file or directory (os error 2)): freshd is not running, or not for this user; start it with `systemctl --user start freshd` or `freshd run`\n"
        )
    );

    // The system unit's socket: no `--user` hint.
    if std::path::Path::new("/run/freshd/control.sock").exists() {
        common::skip("a system freshd runs on this machine; the system-socket hint is not checked");
        return;
    }
    let (code, _, err) = freshd(&["token", "spotify", "--config", missing], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("/run/freshd/control.sock"), "{err}");
    assert!(err.contains("`sudo systemctl start freshd`"), "{err}");
    assert!(!err.contains("--user"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert_eq!(err.matches("freshd:").count(), 1, "{err}");
}

#[tokio::test]
async fn demo_refuses_config() {
    let (code, _, err) = freshd(&["demo", "--config", "/etc/freshd/config.toml"], &[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("demo runs its built-in config") && err.contains("freshd run --config PATH"),
        "{err}"
    );
}

/// The demo's terminal output, from a pseudo-terminal (`script`), so that
/// colour would be on if NO_COLOR were ignored.
async fn demo_on_a_terminal(no_color: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &format!("{} demo --for 4s", bin()), "/dev/null"])
        .env("TMPDIR", dir.path())
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_honours_no_color_logs_to_the_second_and_explains_itself() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        common::skip("the NO_COLOR test needs script(1) (package bsdutils) for a terminal");
        return;
    }
    let coloured = demo_on_a_terminal(false).await;
    assert!(
        coloured.contains("\x1b["),
        "colour on a terminal: {coloured}"
    );
    let plain = demo_on_a_terminal(true).await;
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain}");

    for line in plain.lines().filter(|l| !l.trim().is_empty()) {
        // "2026-07-01 10:00:00  INFO …": the time to the second.
        let time = line.get(..19).unwrap_or(line);
        assert!(
            jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", time).is_ok()
                && line[19..].starts_with(' '),
            "not a time to the second: {line}"
        );
    }
    assert!(!plain.contains("age is unknown"), "{plain}");
    let summary = plain
        .lines()
        .find(|l| l.contains("demo: the provider saw"))
        .unwrap();
    assert!(!summary.contains(" 1 token requests"), "{summary}");
    assert!(summary.contains("token request"), "{summary}");
}

/// `cargo test` leaves nothing behind: a test's daemon, dropped while a job
/// runs (as a failing test drops it), takes the job's program with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_test_daemon_leaves_no_job_program_behind() {
    let marker = format!(
        "{}.{}",
        3000 + fastrand::u32(..500),
        fastrand::u32(1..999_999)
    );
    let setup = Setup::new(
        3600,
        &format!(
            "[jobs.long]\naccount = \"spotify\"\ntype = \"command\"\nschedule = \"0 0 1 1 *\"\ncommand = [\"sh\", \"-c\", \"echo started; exec sleep {marker}\"]\n"
        ),
    )
    .await;
    let daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let run = tokio::spawn({
        let config = setup.config.clone();
        async move {
            Command::new(bin())
                .args(["run-job", "long", "--config"])
                .arg(config)
                .output()
                .await
        }
    });
    daemon.wait_for_log("started").await;
    let alive = || {
        std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(alive(), "the job's program runs");
    drop(daemon);
    let _ = tokio::time::timeout(PATIENCE, run).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    while alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep {marker} outlived its daemon"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
