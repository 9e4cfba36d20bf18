//! The fault suite: the real binary against a fake provider that fails in
//! every way a provider can, and against kills and signals at bad moments.
//!
//! Each scenario's `/// reliability:` line (what was injected | what freshd
//! did | what was lost), here and in every other `tests/*.rs`, is a row of
//! `docs/reliability.md`; the last test checks that the document is
//! generated from exactly these lines
//! (`FRESHD_BLESS=1 cargo test --test faults reliability` rewrites it).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, Setup};
use freshd::status::StatusReport;
use freshd_fake::Fault;
use freshd_fake::web::ApiFault;

async fn status(setup: &Setup) -> StatusReport {
    let (code, out, err) = setup.cli(&["status", "--json"]).await;
    // 3: some account needs a person (needs_login, no_token).
    assert!(code == 0 || code == 3, "{code}: {err}");
    serde_json::from_str(&out).unwrap()
}

async fn state_of(setup: &Setup, account: &str) -> String {
    status(setup)
        .await
        .accounts
        .into_iter()
        .find(|a| a.name == account)
        .unwrap()
        .state
        .as_str()
        .to_owned()
}

/// Waits until `account` is in `state`.
async fn wait_state(setup: &Setup, account: &str, state: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if state_of(setup, account).await == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{account} never reached {state}: {:?}",
            status(setup).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A second account, `other`, with its own client id and refresh token.
fn second_account(setup: &Setup) -> String {
    std::fs::write(
        setup.path().join("creds/other.refresh_token"),
        setup.fake.issue_refresh_token("other"),
    )
    .unwrap();
    format!(
        "\n[accounts.other]\ntoken_url = \"{0}/api/token\"\napi_base_url = \"{0}/v1\"\nclient_id = \"freshd-test-client\"\nrefresh_before_expiry = \"2s\"\n",
        setup.fake.base_url()
    )
}

/// reliability: token endpoint down (503) for 8 s while 3-second tokens expire | backed off (2 s, 4 s, …), `token` failed at once with the next try's time, recovered by itself when the endpoint came back | nothing; no restart
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down_for_a_while_then_back() {
    let setup = Setup::new(3, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    setup.fake.set_down(Some(Fault::Unavailable));
    wait_state(&setup, "spotify", "backoff").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let asked = Instant::now();
    let (code, _, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 1, "an expired token is not handed out: {err}");
    assert!(err.contains("next try at"), "{err}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the caller is not kept waiting"
    );
    setup.fake.set_down(None);
    wait_state(&setup, "spotify", "ok").await;
    let (code, token, _) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 0);
    assert!(token.starts_with("at-spotify-"));
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: 503 with an HTML page, 200 with garbage, 503 again, in a row | each classified as transient, logged with its cause, retried after 2 s, 4 s, 8 s | nothing; the next good answer is used
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_of_503_garbage_and_html() {
    let setup = Setup::new(3600, "").await;
    for fault in [Fault::Unavailable, Fault::Garbage, Fault::Unavailable] {
        setup.fake.push_fault(fault);
    }
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    wait_state(&setup, "spotify", "ok").await;
    let log = daemon.log_text();
    assert!(log.contains("the token endpoint failed (503)"), "{log}");
    assert!(
        log.contains("the token endpoint answered 200 but not with a JSON token response"),
        "{log}"
    );
    assert_eq!(setup.fake.token_requests(), 4);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a token endpoint that answers only after 40 s (past freshd's 30 s timeout) | said READY=1 after at most 10 s with the account refreshing; gave up on that request after 30 s, said the provider may have rotated the token, waited at least 30 s, refreshed on the next try | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_hangs_past_the_timeout() {
    let setup = Setup::new(3600, "").await;
    setup.fake.push_fault(Fault::Hang(Duration::from_secs(40)));
    let mut daemon = setup.start("info").await;
    let ready = daemon.next_notify_within(Duration::from_secs(15)).await;
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(ready.contains("spotify: refreshing"), "{ready}");
    daemon.wait_for_log("no answer within the timeout").await;
    daemon
        .wait_for_log("the provider may have rotated the refresh token")
        .await;
    assert_eq!(state_of(&setup, "spotify").await, "backoff");
    // The next try comes at least 30 s later (more than PATIENCE allows).
    tokio::time::sleep(Duration::from_secs(25)).await;
    wait_state(&setup, "spotify", "ok").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: 429 with Retry-After: 3600 on one account's refresh, and a quota 429 on the Web API for its app | that account stays in backoff for the hour and `token` answers at once; the app's jobs end as `skipped`; the other account keeps refreshing and its jobs keep running | nothing; nothing waits an hour inside a task
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_for_an_hour_while_others_go_on() {
    let setup = Setup::new(3, "").await;
    let other = second_account(&setup);
    setup.write_config(&format!(
        "{other}\n[jobs.top]\naccount = \"spotify\"\ntype = \"playlist\"\nschedule = \"0 0 1 1 *\"\nplaylist = \"Top\"\nsource = {{ kind = \"top_tracks\" }}\n\n[jobs.other-tick]\naccount = \"other\"\ntype = \"command\"\nevery = \"1s\"\ncommand = [\"sh\", \"-c\", \"echo other ran\"]\n"
    ));
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    setup
        .fake
        .push_user_fault("spotify", Fault::RateLimited(3600));
    wait_state(&setup, "spotify", "backoff").await;
    let asked = Instant::now();
    let (code, _, _) = setup.cli(&["token", "spotify"]).await;
    assert!(code != 0 || asked.elapsed() < Duration::from_secs(5));
    setup.fake.web().faults.push_back(ApiFault::RateLimited {
        retry_after: 3600,
        quota: true,
    });
    let (code, _, err) = setup.cli(&["run-job", "top"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("skipped"), "{err}");
    let before = setup.fake.token_requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let report = status(&setup).await;
    let other = report.accounts.iter().find(|a| a.name == "other").unwrap();
    assert_eq!(other.state, "ok");
    assert!(
        setup.fake.token_requests() >= before + 2,
        "the other account kept refreshing"
    );
    assert!(daemon.log_text().matches("other ran").count() >= 4);
    assert_eq!(state_of(&setup, "spotify").await, "backoff");
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: invalid_grant (revoked refresh token) on one of two accounts | that account went to needs_login with one ERROR line naming `freshd login`, and sent nothing more; the other account went on | nothing of the other account
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_on_one_account_while_the_other_goes_on() {
    let setup = Setup::new(3, "").await;
    let other = second_account(&setup);
    setup.write_config(&other);
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    setup.fake.revoke("spotify");
    wait_state(&setup, "spotify", "needs_login").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(state_of(&setup, "other").await, "ok");
    assert_eq!(
        daemon
            .log_text()
            .matches("run `freshd login spotify`")
            .count(),
        1,
        "one clear error, no loop"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: the secret store fails to write a rotated refresh token | logged as an error and shown in `status` last_error; the new token kept in memory and used for the next refreshes; stored once the store works again | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_fails_to_write_a_rotated_token() {
    let setup = Setup::new(3, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    // The state directory becomes a file: every later write fails.
    let state = setup.state_dir();
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, "in the way").unwrap();
    let deadline = Instant::now() + PATIENCE;
    let report = loop {
        let report = status(&setup).await;
        if report.accounts[0]
            .store_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot store the rotated refresh token")
        {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "no store error shown: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.accounts[0].state, "ok");
    daemon
        .wait_for_log("cannot store the rotated refresh token")
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        setup.cli(&["token", "spotify"]).await.0,
        0,
        "refreshes go on with the token in memory"
    );
    std::fs::remove_file(&state).unwrap();
    let stored_at = state.join("spotify.refresh_token");
    let deadline = Instant::now() + PATIENCE;
    while !stored_at.is_file() {
        assert!(Instant::now() < deadline, "the token was never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.signal("KILL");
    let killed = Instant::now();
    daemon.exit_code().await;
    let stored = std::fs::read_to_string(&stored_at).unwrap();
    let in_flight = setup
        .fake
        .last_rotation("spotify")
        .is_some_and(|t| killed.duration_since(t) < Duration::from_millis(50));
    assert!(
        setup.fake.valid_refresh_tokens("spotify").contains(&stored) || in_flight,
        "the stored token is not valid"
    );
}

/// reliability: kill -9 at 25 random moments across rotations of single-use refresh tokens (2-second tokens) | the rotated token is stored (fsync, rename) before the new access token is used | no refresh token lost in any round, outside the ~1 ms that no client can close (provider issued, answer in flight); rounds landing there are counted
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_never_loses_the_refresh_token() {
    let setup = Setup::new(2, "").await;
    let mut in_flight = 0;
    for round in 0..25 {
        let mut daemon = setup.start("warn").await;
        daemon.notify_containing("READY=1").await;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..2500))).await;
        daemon.signal("KILL");
        let killed = Instant::now();
        daemon.exit_code().await;
        let stored = std::fs::read_to_string(setup.state_dir().join("spotify.refresh_token"))
            .or_else(|_| std::fs::read_to_string(setup.path().join("creds/spotify.refresh_token")))
            .unwrap();
        if setup.fake.valid_refresh_tokens("spotify").contains(&stored) {
            continue;
        }
        // The provider had just rotated it and the answer was on its way.
        let since = setup
            .fake
            .last_rotation("spotify")
            .map(|t| killed.duration_since(t));
        assert!(
            since.is_some_and(|d| d < Duration::from_millis(50)),
            "round {round}: the stored refresh token is not valid"
        );
        in_flight += 1;
        std::fs::write(
            setup.state_dir().join("spotify.refresh_token"),
            setup.fake.issue_refresh_token("spotify"),
        )
        .unwrap();
    }
    eprintln!("kills inside the in-flight window: {in_flight} of 25");
}

/// reliability: SIGTERM in the middle of a 1,000-item playlist replace on a slow API, and of a 60 s command job | exit 0 after the 3 s grace period; the next run made the playlist exactly the source | nothing doubled, no half-written file
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_playlist_update_and_a_long_command() {
    let uris: Vec<String> = (0..1000)
        .map(|i| format!("\"spotify:track:{:0>22}\"", format!("t{i}")))
        .collect();
    let jobs = format!(
        "\n[jobs.big]\naccount = \"spotify\"\ntype = \"playlist\"\nschedule = \"0 0 1 1 *\"\nplaylist = \"Big\"\nsource = {{ kind = \"uris\", uris = [{}] }}\n\n[jobs.long]\naccount = \"spotify\"\ntype = \"command\"\nschedule = \"0 0 1 1 *\"\ncommand = [\"sh\", \"-c\", \"echo long started; sleep 60\"]\n\n[jobs.me]\naccount = \"spotify\"\ntype = \"http\"\nevery = \"1s\"\npath = \"/me\"\noutput = \"me.json\"\n",
        uris.join(", ")
    );
    let setup = Setup::new(3600, &jobs).await;
    setup.fake.web().delay = Some(Duration::from_millis(600));
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (bin, config) = (common::bin(), setup.config.clone());
    for job in ["big", "long"] {
        let config = config.clone();
        tokio::spawn(async move {
            tokio::process::Command::new(bin)
                .args(["run-job", job, "--config"])
                .arg(config)
                .output()
                .await
        });
    }
    daemon.wait_for_log("long started").await;
    let deadline = Instant::now() + PATIENCE;
    while setup
        .fake
        .web()
        .playlists
        .first()
        .is_none_or(|p| p.items.is_empty())
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = Instant::now();
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "took {:?}",
        stopped.elapsed()
    );
    let items = setup.fake.web().playlists[0].items.len();
    assert!(items < 1000, "the update was cut short ({items} items)");
    let me = std::fs::read_to_string(setup.state_dir().join("me.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&me).expect("the output file is whole");

    setup.fake.web().delay = None;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    assert_eq!(setup.cli(&["run-job", "big"]).await.0, 0);
    let (playlists, items) = {
        let web = setup.fake.web();
        (web.playlists.len(), web.playlists[0].items.len())
    };
    assert_eq!(playlists, 1, "not created twice");
    assert_eq!(items, 1000, "exactly the source, not doubled");
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a reload that changes one of two accounts | the changed account got a new token manager (one refresh); the other kept its manager and its token | no token of the unchanged account
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_one_account_leaves_the_other_alone() {
    let setup = Setup::new(3600, "").await;
    let other = second_account(&setup);
    setup.write_config(&other);
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (_, before, _) = setup.cli(&["token", "spotify"]).await;
    let requests = setup.fake.token_requests();
    setup.write_config(&other.replace(
        "refresh_before_expiry = \"2s\"",
        "refresh_before_expiry = \"3s\"",
    ));
    assert_eq!(setup.cli(&["reload"]).await.0, 0);
    wait_state(&setup, "other", "ok").await;
    let (_, after, _) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(before, after, "the unchanged account kept its token");
    assert_eq!(
        setup.fake.token_requests(),
        requests + 1,
        "only the changed account refreshed"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// The rows of docs/reliability.md: the `/// reliability:` lines of every
/// `tests/*.rs`, by file name, then in order within the file.
fn rows() -> String {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let marker = ["///", " reliability:"].concat();
    let mut out = String::from(
        "| what was injected | what freshd did | what was lost | suite |\n|---|---|---|---|\n",
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&file).unwrap();
        for line in source
            .lines()
            .filter_map(|l| l.trim().strip_prefix(marker.as_str()))
        {
            let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
            assert_eq!(
                cells.len(),
                3,
                "a reliability line in tests/{name} needs three cells: {line}"
            );
            out.push_str(&format!(
                "| {} | {} | {} | [`{name}`](../tests/{name}) |\n",
                cells[0], cells[1], cells[2]
            ));
        }
    }
    out
}

#[test]
fn reliability_doc_is_in_step_with_the_suite() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = (
        "<!-- rows: generated from tests/*.rs -->\n",
        "<!-- end of rows -->",
    );
    let start = doc.find(begin).map(|i| i + begin.len());
    let stop = doc.find(end);
    let (Some(start), Some(stop)) = (start, stop) else {
        panic!("docs/reliability.md lacks the row markers");
    };
    let want = rows();
    if doc[start..stop] == want {
        return;
    }
    if std::env::var_os("FRESHD_BLESS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &doc[..start], &doc[stop..])).unwrap();
        return;
    }
    panic!(
        "docs/reliability.md is out of step with the suite's `/// reliability:` lines; run FRESHD_BLESS=1 cargo test --test faults reliability"
    );
}
