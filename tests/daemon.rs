//! End-to-end: the real binary under a NOTIFY_SOCKET of ours, against the
//! fake provider.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::time::Duration;

use common::{PATIENCE, Setup};
use freshd::status::StatusReport;
use freshd_fake::Fault;

const COMMAND_JOBS: &str = r#"
[jobs.ok]
account = "spotify"
type = "command"
schedule = "0 0 1 1 *"
command = ["sh", "-c", "echo ran for $FRESHD_ACCOUNT"]

[jobs.fails]
account = "spotify"
type = "command"
schedule = "0 0 1 1 *"
command = ["sh", "-c", "echo broken >&2; exit 3"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_ready_reload_bad_reload_stop() {
    let setup = Setup::new(3600, COMMAND_JOBS).await;
    let mut daemon = setup.start("debug").await;
    let ready = daemon.notify_containing("READY=1").await;
    assert!(ready.contains("STATUS=1/1 accounts ok, 2 jobs"), "{ready}");
    assert_eq!(
        setup.fake.token_requests(),
        1,
        "READY=1 comes after the first refresh"
    );

    // A good reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    daemon.signal("HUP");
    let reloading = daemon.notify_containing("RELOADING=1").await;
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    daemon.notify_containing("READY=1").await;

    // A bad reload: logged, the old config keeps running.
    std::fs::write(&setup.config, "[daemon]\nsecrets = \"vault\"\n").unwrap();
    daemon.signal("HUP");
    daemon.notify_containing("RELOADING=1").await;
    daemon.notify_containing("READY=1").await;
    daemon
        .wait_for_log("reload refused, the running configuration stays")
        .await;
    daemon
        .wait_for_log("daemon.secrets: \"vault\" is not valid")
        .await;
    // The daemon still runs the old config (two jobs). The client finds
    // the socket through the config, so it gets the good file back; the
    // daemon does not see it without another reload.
    setup.write_config(COMMAND_JOBS);
    let (code, out, err) = setup.cli(&["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let report: StatusReport = serde_json::from_str(&out).unwrap();
    assert_eq!(report.jobs.len(), 2);
    assert_eq!(report.accounts[0].state, "ok");

    daemon.signal("TERM");
    daemon.notify_containing("STOPPING=1").await;
    assert_eq!(daemon.exit_code().await, 0);
    assert!(!setup.socket().exists(), "the socket is removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_has_the_documented_shape() {
    let setup = Setup::new(3600, COMMAND_JOBS).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, out, err) = setup.cli(&["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let account = &v["accounts"][0];
    for key in [
        "name",
        "state",
        "access_token_expires_at",
        "last_refresh",
        "last_error",
    ] {
        assert!(account.get(key).is_some(), "accounts[0] lacks {key}: {out}");
    }
    assert_eq!(account["state"], "ok");
    assert!(
        account["access_token_expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let job = &v["jobs"][0];
    for key in [
        "name",
        "account",
        "next_run",
        "last_run",
        "last_result",
        "last_error",
    ] {
        assert!(job.get(key).is_some(), "jobs[0] lacks {key}: {out}");
    }
    assert_eq!(job["next_run"], "2027-01-01T00:00:00Z");
    assert!(job["last_result"].is_null());

    // run-job: exit 0 only if the job succeeded.
    let (code, out, _) = setup.cli(&["run-job", "ok"]).await;
    assert_eq!((code, out.trim()), (0, "ok: ok"));
    daemon.wait_for_log("ran for spotify").await;
    let (code, _, err) = setup.cli(&["run-job", "fails"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("sh exited with status 3"), "{err}");
    let (code, _, err) = setup.cli(&["run-job", "nope"]).await;
    assert_eq!(code, 2, "{err}");
    let (_, out, _) = setup.cli(&["status", "--json"]).await;
    let report: StatusReport = serde_json::from_str(&out).unwrap();
    let fails = report.jobs.iter().find(|j| j.name == "fails").unwrap();
    assert_eq!(fails.last_result, Some(freshd::status::JobResult::Error));
    assert!(fails.last_run.is_some());

    // `freshd reload` over the socket.
    let (code, out, _) = setup.cli(&["reload"]).await;
    assert_eq!((code, out.trim()), (0, "reloaded"));

    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes() {
    let setup = Setup::new(3600, "").await;
    assert_eq!(setup.cli(&["check"]).await.0, 0);
    // Usage error.
    assert_eq!(setup.cli(&["frobnicate"]).await.0, 2);
    // Nothing running: 1, and a message that says what to do.
    let (code, _, err) = setup.cli(&["status"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("freshd is not running"), "{err}");
    // A bad config: check and run exit 78.
    std::fs::write(&setup.config, "[jobs.x]\ntype = \"command\"\n").unwrap();
    let (code, _, err) = setup.cli(&["check"]).await;
    assert_eq!(code, 78);
    assert!(
        err.contains("config.toml:1:1: jobs.x.account: missing key `account`"),
        "{err}"
    );
    let mut daemon = setup.start("info").await;
    assert_eq!(daemon.exit_code().await, 78);
    daemon.wait_for_log("cannot start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_is_needs_login_and_the_daemon_keeps_running() {
    let setup = Setup::new(3600, "").await;
    setup.fake.revoke("spotify");
    let mut daemon = setup.start("info").await;
    let ready = daemon.notify_containing("READY=1").await;
    assert!(ready.contains("spotify: needs_login"), "{ready}");
    daemon.wait_for_log("run `freshd login spotify`").await;
    let (code, _, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 78);
    assert!(err.contains("needs a new login"), "{err}");
    let requests = setup.fake.token_requests();
    let (_, _, _) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(
        setup.fake.token_requests(),
        requests,
        "no request after invalid_grant"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// DESIGN §5 with 6-second tokens: `freshd token` never hands out an
/// expired token, across many refreshes and rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_tokens_are_never_handed_out_expired() {
    let setup = Setup::new(6, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut asked = 0;
    while tokio::time::Instant::now() < deadline {
        let (code, token, err) = setup.cli(&["token", "spotify"]).await;
        assert_eq!(code, 0, "{err}");
        let resp = client
            .get(format!("{}/me", setup.fake.api_base_url()))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "freshd handed out a token the API refuses"
        );
        asked += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(asked > 10);
    assert!(
        setup.fake.token_requests() >= 3,
        "tokens were refreshed ahead of expiry"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_kill_9_right_after_a_rotation_finds_the_new_token() {
    let setup = Setup::new(4, "").await;
    for round in 0..3 {
        let mut daemon = setup.start("info").await;
        daemon.notify_containing("READY=1").await;
        // Wait for a rotation after the start-up one, then kill at once.
        let rotations = |d: &common::Daemon| {
            d.log_text()
                .matches("stored the rotated refresh token")
                .count()
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while rotations(&daemon) < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no second rotation"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        daemon.signal("KILL");
        daemon.exit_code().await;
        let stored =
            std::fs::read_to_string(setup.state_dir().join("spotify.refresh_token")).unwrap();
        assert_eq!(
            setup.fake.valid_refresh_tokens("spotify"),
            vec![stored],
            "round {round}: the stored token is the one valid token"
        );
    }
    let mut daemon = setup.start("info").await;
    let ready = daemon.notify_containing("READY=1").await;
    assert!(ready.contains("1/1 accounts ok"), "{ready}");
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// No token, refresh token or code the fake issued appears in the daemon's
/// output at trace level, through rotations, failures, jobs and errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_at_trace_level() {
    let jobs = r#"
[jobs.echo-token]
account = "spotify"
type = "command"
every = "2s"
command = ["sh", "-c", "echo token=$FRESHD_ACCESS_TOKEN; echo err=$FRESHD_ACCESS_TOKEN >&2; exit 1"]

[jobs.me]
account = "spotify"
type = "http"
every = "2s"
path = "/me"
output = "me.json"

[jobs.np]
account = "spotify"
type = "now_playing"
every = "2s"
history = "np.jsonl"
on_change = ["sh", "-c", "env; env >&2"]

[jobs.top]
account = "spotify"
type = "playlist"
every = "2s"
playlist = "Top"
source = { kind = "top_tracks" }
"#;
    let setup = Setup::new(3, jobs).await;
    setup.fake.web().player = freshd_fake::web::Player::Track {
        index: 1,
        progress_ms: 1000,
        playing: true,
    };
    let mut daemon = setup.start("trace").await;
    daemon.notify_containing("READY=1").await;
    setup.fake.push_fault(Fault::Unavailable);
    setup.fake.push_fault(Fault::Garbage);
    // Go on until several rotations happened after the failures.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while setup.fake.issued_secrets().len() < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "too few rotations: {}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, status, _) = setup.cli(&["status", "--json"]).await;
    let (_, human, _) = setup.cli(&["status"]).await;
    setup.fake.push_fault(Fault::InvalidGrant);
    daemon
        .wait_for_log("the provider refused the refresh token")
        .await;
    daemon.signal("TERM");
    daemon.exit_code().await;
    let mut output = format!("{}\n{status}\n{human}", daemon.log_text());
    for entry in std::fs::read_dir(setup.state_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("refresh_token"))
        {
            continue; // the one place a refresh token belongs
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            output.push_str(&text);
        }
    }
    assert!(
        output.contains("FRESHD_NAME=So What"),
        "on_change ran and its output was searched"
    );
    assert!(
        output.contains("token=[REDACTED]"),
        "a job's output has its token scrubbed"
    );
    let secrets = setup.fake.issued_secrets();
    assert!(
        secrets.len() >= 4,
        "the fake issued {} secrets",
        secrets.len()
    );
    for secret in secrets {
        assert!(
            !output.contains(&secret),
            "a secret the fake issued appears in freshd's output"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_is_fed_when_systemd_asks() {
    let setup = Setup::new(3600, "").await;
    let mut daemon = setup
        .start_with("info", &[("WATCHDOG_USEC", "400000")])
        .await;
    daemon.notify_containing("READY=1").await;
    for _ in 0..3 {
        daemon.notify_containing("WATCHDOG=1").await;
    }
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

const SLOW_JOB: &str = r#"
[jobs.slow]
account = "spotify"
type = "command"
schedule = "0 0 1 1 *"
command = ["sh", "-c", "echo started; sleep 60; echo never"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_a_running_job_its_grace_then_exits_0() {
    let setup = Setup::new(3600, SLOW_JOB).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let run = tokio::spawn({
        let config = setup.config.clone();
        async move {
            tokio::process::Command::new(common::bin())
                .args(["run-job", "slow", "--config"])
                .arg(config)
                .output()
                .await
        }
    });
    daemon.wait_for_log("started").await;
    let stopping_at = std::time::Instant::now();
    daemon.signal("TERM");
    let stopping = daemon.notify_containing("STOPPING=1").await;
    assert!(stopping.contains("waiting up to 3s for slow"), "{stopping}");
    assert_eq!(daemon.exit_code().await, 0);
    // The grace period (3 s) passed, not the job's 60 s.
    assert!(stopping_at.elapsed() < Duration::from_secs(20));
    daemon
        .wait_for_log("still running after the grace period")
        .await;
    assert!(!daemon.log_text().contains("never"));
    let _ = run.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_interrupt_stops_at_once() {
    let setup = Setup::new(3600, &SLOW_JOB.replace("0 0 1 1 *", "* * * * * *")).await;
    let text = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("shutdown_grace = \"3s\"", "shutdown_grace = \"1h\"");
    std::fs::write(&setup.config, text).unwrap();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    daemon.wait_for_log("started").await;
    daemon.signal("INT");
    daemon.notify_containing("STOPPING=1").await;
    daemon.signal("INT");
    assert_eq!(daemon.exit_code().await, 0);
    daemon
        .wait_for_log("second interrupt: stopping at once")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_accounts_need_no_refresh_token() {
    let setup = Setup::new(3600, "").await;
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "refresh_before_expiry = \"2s\"",
        "refresh_before_expiry = \"2s\"\ngrant = \"client_credentials\"\nclient_secret = \"app-secret\"",
    );
    std::fs::write(&setup.config, text).unwrap();
    std::fs::remove_file(setup.path().join("creds/spotify.refresh_token")).unwrap();
    // A literal secret needs a private file.
    let (code, _, err) = setup.cli(&["check"]).await;
    assert_eq!(code, 78, "{err}");
    std::fs::set_permissions(
        &setup.config,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, token, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(token.starts_with("at-client-"), "{token}");
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    assert!(!daemon.log_text().contains("app-secret"));
}

/// Regression: sd_notify's blocking send froze the runtime once the notify
/// socket's queue was full, so a daemon whose manager stopped reading could
/// not even shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_notify_socket_never_blocks_the_daemon() {
    // Jobs that flip between success and failure every second, so the
    // status line (and a STATUS= message) changes all the time.
    let flip = |n: u32| {
        format!(
            "\n[jobs.flip{n}]\naccount = \"spotify\"\ntype = \"command\"\nevery = \"1s\"\ncommand = [\"sh\", \"-c\", \"if [ -e f{n} ]; then rm f{n}; exit 1; else touch f{n}; fi\"]\n"
        )
    };
    let setup = Setup::new(3600, &format!("{}{}{}", flip(1), flip(2), flip(3))).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    // Read nothing more: the queue fills within seconds.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let status = tokio::time::timeout(PATIENCE, setup.cli(&["status"])).await;
    assert!(
        status.is_ok_and(|(code, _, _)| code == 0),
        "the daemon stopped answering"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_run_leaves_one_info_line_with_job_account_outcome_and_duration() {
    let setup = Setup::new(3600, COMMAND_JOBS).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    assert_eq!(setup.cli(&["run-job", "ok"]).await.0, 0);
    assert_eq!(setup.cli(&["run-job", "ok"]).await.0, 0);
    assert_eq!(setup.cli(&["run-job", "fails"]).await.0, 1);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    let log = daemon.log_text();
    let runs: Vec<&str> = log.lines().filter(|l| l.contains("run ok in")).collect();
    assert_eq!(runs.len(), 2, "{log}");
    assert!(
        runs.iter()
            .all(|l| l.contains("JOB=ok") && l.contains("ACCOUNT=spotify")),
        "{runs:?}"
    );
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("run failed after"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(failed[0].contains("JOB=fails"), "{failed:?}");
}
