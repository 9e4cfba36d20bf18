//! The jobs end to end: the real daemon against the fake Web API, each job
//! run with `freshd run-job` and its effects read from the fake's state.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use common::Setup;
use freshd::jobs::now_playing::HistoryLine;
use freshd_fake::web::{ApiFault, Player};

/// A job that only runs on request.
fn job(name: &str, body: &str) -> String {
    format!("\n[jobs.{name}]\naccount = \"spotify\"\nschedule = \"0 0 1 1 *\"\n{body}\n")
}

fn writes(setup: &Setup) -> Vec<(String, String)> {
    setup
        .fake
        .web()
        .log
        .iter()
        .filter(|(m, _)| m != "GET")
        .cloned()
        .collect()
}

fn uris(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("spotify:track:{:0>22}", format!("x{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_creates_a_private_playlist_once_batches_past_100_and_then_writes_nothing() {
    let list: Vec<String> = uris(250).iter().map(|u| format!("\"{u}\"")).collect();
    let config = job(
        "big",
        &format!(
            "type = \"playlist\"\nplaylist = \"Big one\"\nsource = {{ kind = \"uris\", uris = [{}] }}",
            list.join(", ")
        ),
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;

    let (code, _, err) = setup.cli(&["run-job", "big"]).await;
    assert_eq!(code, 0, "{err}");
    {
        let web = setup.fake.web();
        assert_eq!(web.playlists.len(), 1);
        assert_eq!(web.playlists[0].name, "Big one");
        assert!(!web.playlists[0].public, "created private");
        assert_eq!(web.playlists[0].items, uris(250));
    }
    let methods: Vec<String> = writes(&setup)
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        methods
            .iter()
            .filter(|m| m.starts_with("POST /me/playlists"))
            .count(),
        1
    );
    assert_eq!(methods.iter().filter(|m| m.starts_with("PUT")).count(), 1);
    assert_eq!(
        methods
            .iter()
            .filter(|m| m.starts_with("POST /playlists"))
            .count(),
        2
    );

    let before = writes(&setup).len();
    let (code, _, _) = setup.cli(&["run-job", "big"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        writes(&setup).len(),
        before,
        "a playlist that is the source gets no writes"
    );
    daemon
        .wait_for_log("the playlist already is the source (250 items); nothing written")
        .await;
    assert!(
        setup
            .fake
            .web()
            .log
            .iter()
            .all(|(_, p)| !p.ends_with("/tracks")),
        "the old /tracks paths are never used"
    );

    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_adds_only_what_is_missing_at_the_top_and_trims_the_oldest() {
    let config = job(
        "recent",
        "type = \"playlist\"\nplaylist = \"Archive\"\nsource = { kind = \"top_tracks\", limit = 5 }\nmode = \"append\"\nposition = \"top\"\nmax_items = 8",
    );
    let setup = Setup::new(3600, &config).await;
    let catalogue: Vec<String> = setup.fake.web().catalogue.iter().map(|t| t.uri()).collect();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;

    setup.fake.web().top = vec![0, 1, 2, 3, 4];
    assert_eq!(setup.cli(&["run-job", "recent"]).await.0, 0);
    assert_eq!(setup.fake.web().playlists[0].items, catalogue[..5].to_vec());

    // Three new, two known: the new ones go on top, the oldest fall off past 8.
    setup.fake.web().top = vec![5, 6, 7, 0, 1];
    assert_eq!(setup.cli(&["run-job", "recent"]).await.0, 0);
    let items = setup.fake.web().playlists[0].items.clone();
    assert_eq!(items[..3], catalogue[5..8]);
    assert_eq!(items.len(), 8);

    setup.fake.web().top = vec![8, 9];
    assert_eq!(setup.cli(&["run-job", "recent"]).await.0, 0);
    let items = setup.fake.web().playlists[0].items.clone();
    assert_eq!(items.len(), 8);
    assert_eq!(items[..2], catalogue[8..10]);
    assert!(
        !items.contains(&catalogue[3]) && !items.contains(&catalogue[4]),
        "the two oldest left"
    );

    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_acknowledgement_never_doubles_a_playlist() {
    let config = job(
        "grow",
        "type = \"playlist\"\nplaylist = \"Grow\"\nsource = { kind = \"top_tracks\", limit = 6 }\nmode = \"append\"",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    setup.fake.web().lose_next_add_ack = true;
    let (code, _, err) = setup.cli(&["run-job", "grow"]).await;
    assert_eq!(code, 1, "the run fails: {err}");
    assert_eq!(
        setup.fake.web().playlists[0].items.len(),
        6,
        "the add landed once"
    );
    assert_eq!(setup.cli(&["run-job", "grow"]).await.0, 0);
    assert_eq!(
        setup.fake.web().playlists[0].items.len(),
        6,
        "and is not repeated"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_lines_from_a_file_take_the_best_match_and_log_the_rest() {
    let config = job(
        "radio",
        "type = \"playlist\"\nplaylist = \"Radio\"\nsource = { kind = \"search\", file = \"radio.txt\" }",
    );
    let setup = Setup::new(3600, &config).await;
    std::fs::create_dir_all(setup.state_dir()).unwrap();
    std::fs::write(
        setup.state_dir().join("radio.txt"),
        "# what the station played\nMassive Attack - Teardrop\nPortishead - Roads (Remastered)\nNobody - Never Heard Of It\n",
    )
    .unwrap();
    let catalogue: Vec<String> = setup.fake.web().catalogue.iter().map(|t| t.uri()).collect();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = setup.cli(&["run-job", "radio"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        setup.fake.web().playlists[0].items,
        vec![catalogue[4].clone(), catalogue[7].clone()]
    );
    daemon
        .wait_for_log("no good match for \"Nobody - Never Heard Of It\"")
        .await;
    daemon.wait_for_log("search matched 2 of 3 lines").await;

    // A source program that fails leaves the playlist alone.
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "file = \"radio.txt\"",
        "command = [\"sh\", \"-c\", \"echo oops >&2; exit 4\"]",
    );
    std::fs::write(&setup.config, text).unwrap();
    assert_eq!(setup.cli(&["reload"]).await.0, 0);
    let (code, _, err) = setup.cli(&["run-job", "radio"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("the playlist was left as it was"), "{err}");
    assert_eq!(setup.fake.web().playlists[0].items.len(), 2);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_skips_every_job_of_the_app_until_retry_after() {
    let config = format!(
        "{}{}",
        job(
            "top",
            "type = \"playlist\"\nplaylist = \"Top\"\nsource = { kind = \"top_tracks\" }"
        ),
        job("np", "type = \"now_playing\"").replace("schedule = \"0 0 1 1 *\"", "every = \"1h\"")
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    setup.fake.web().faults.push_back(ApiFault::RateLimited {
        retry_after: 3600,
        quota: false,
    });
    let (code, _, err) = setup.cli(&["run-job", "top"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("skipped: Spotify rate limits this app; the job may run again after"),
        "{err}"
    );
    let requests = setup.fake.web().log.len();
    let (code, _, err) = setup.cli(&["run-job", "np"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("skipped"), "{err}");
    assert_eq!(
        setup.fake.web().log.len(),
        requests,
        "no request during the cooldown"
    );
    let (_, out, _) = setup.cli(&["status", "--json"]).await;
    let report: freshd::status::StatusReport = serde_json::from_str(&out).unwrap();
    assert!(
        report
            .jobs
            .iter()
            .all(|j| j.last_result == Some(freshd::status::JobResult::Skipped))
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_forces_one_refresh_and_one_retry() {
    let config = job(
        "top",
        "type = \"playlist\"\nplaylist = \"Top\"\nsource = { kind = \"top_tracks\" }",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let before = setup.fake.token_requests();
    setup.fake.web().faults.push_back(ApiFault::Unauthorized);
    assert_eq!(setup.cli(&["run-job", "top"]).await.0, 0);
    assert_eq!(setup.fake.token_requests(), before + 1);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_playing_records_each_new_item_once_with_on_change() {
    let config = job(
        "np",
        "type = \"now_playing\"\nhistory = \"np.jsonl\"\non_change = [\"sh\", \"-c\", \"echo \\\"$FRESHD_ARTISTS|$FRESHD_NAME|$FRESHD_TYPE|${FRESHD_ACCESS_TOKEN:-no token}\\\" >> changes.txt\"]",
    )
    .replace("schedule = \"0 0 1 1 *\"", "every = \"1h\"");
    let setup = Setup::new(3600, &config).await;
    setup.fake.web().player = Player::Idle;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let run = || setup.cli(&["run-job", "np"]);
    assert_eq!(run().await.0, 0, "204: nothing plays");
    setup.fake.web().player = Player::Track {
        index: 0,
        progress_ms: 5000,
        playing: true,
    };
    assert_eq!(run().await.0, 0);
    assert_eq!(run().await.0, 0, "the same track again: no new line");
    setup.fake.web().player = Player::Ad;
    assert_eq!(run().await.0, 0, "an ad: item is null");
    setup.fake.web().player = Player::Track {
        index: 0,
        progress_ms: 9000,
        playing: false,
    };
    assert_eq!(
        run().await.0,
        0,
        "the same track after the ad: still no new line"
    );
    setup.fake.web().player = Player::Episode {
        progress_ms: 60_000,
    };
    assert_eq!(run().await.0, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);

    let text = std::fs::read_to_string(setup.state_dir().join("np.jsonl")).unwrap();
    let lines: Vec<HistoryLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].name, "Feeling Good");
    assert_eq!(lines[0].artists, vec!["Nina Simone"]);
    assert_eq!(lines[0].album.as_deref(), Some("I Put a Spell on You"));
    assert_eq!(lines[0].kind, "track");
    assert_eq!(lines[1].kind, "episode");
    assert_eq!(
        lines[1].artists,
        vec!["A Podcast"],
        "an episode's artist is its show"
    );
    let changes = std::fs::read_to_string(setup.state_dir().join("changes.txt")).unwrap();
    assert_eq!(
        changes,
        "Nina Simone|Feeling Good|track|no token\nA Podcast|The Daily|episode|no token\n"
    );

    // A restart does not report the episode again.
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    assert_eq!(setup.cli(&["run-job", "np"]).await.0, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    let text = std::fs::read_to_string(setup.state_dir().join("np.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 2);
}
