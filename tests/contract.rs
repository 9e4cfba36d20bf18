//! Contract check: every job runs against a Prism mock serving the shared
//! Spotify OpenAPI description, and any request Prism finds invalid fails
//! the test. Tokens come from the fake accounts service (the description
//! has no token endpoint).
//!
//! Prism is found through `$FRESHD_PRISM`, else `prism` on `PATH`; without
//! it the test is skipped with the reason printed, unless `CI` is set
//! (`.ci/run` installs `@stoplight/prism-cli@5.14.2` with npm).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{PATIENCE, Setup};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn prism() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FRESHD_PRISM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prism"))
        .find(|p| p.is_file())
}

/// The shared OpenAPI file: `$FRESHD_OPENAPI`, else `../shared/…` beside
/// the repository (where CI and the developers have it).
fn openapi() -> PathBuf {
    if let Some(p) = std::env::var_os("FRESHD_OPENAPI").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spotify/fixed-spotify-open-api.yml")
}

const JOBS: &str = r#"
[jobs.replace-top]
account = "spotify"
type = "playlist"
schedule = "0 0 1 1 *"
playlist = "Top tracks"
source = { kind = "top_tracks", time_range = "short_term", limit = 50 }

[jobs.append-uris]
account = "spotify"
type = "playlist"
schedule = "0 0 1 1 *"
playlist = "spotify:playlist:3cEYpjA9oz9GiPac4AsH4n"
source = { kind = "uris", uris = ["spotify:track:4uLU6hMCjMI75M1A2tKUQC", "spotify:episode:512ojhOuo1ktJprKbVcKyQ"] }
mode = "append"
position = "top"
max_items = 1

[jobs.recent]
account = "spotify"
type = "playlist"
schedule = "0 0 1 1 *"
playlist = "spotify:playlist:3cEYpjA9oz9GiPac4AsH4n"
source = { kind = "recently_played", limit = 50 }

[jobs.copy]
account = "spotify"
type = "playlist"
schedule = "0 0 1 1 *"
playlist = "spotify:playlist:3cEYpjA9oz9GiPac4AsH4n"
source = { kind = "playlist", playlist = "spotify:playlist:37i9dQZF1DXcBWIGoYBM5M" }

[jobs.search]
account = "spotify"
type = "playlist"
schedule = "0 0 1 1 *"
playlist = "spotify:playlist:3cEYpjA9oz9GiPac4AsH4n"
source = { kind = "search", queries = ["Massive Attack - Teardrop", "Teardrop"] }

[jobs.np]
account = "spotify"
type = "now_playing"
every = "1h"
history = "np.jsonl"

[jobs.me]
account = "spotify"
type = "http"
schedule = "0 0 1 1 *"
path = "/me"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_freshd_sends_is_valid_for_the_openapi_description() {
    let Some(prism) = prism() else {
        let why = "the contract test needs Prism: npm install @stoplight/prism-cli@5.14.2 and set FRESHD_PRISM to its bin/prism";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    };
    let spec = openapi();
    assert!(
        spec.is_file(),
        "no OpenAPI description at {} (set FRESHD_OPENAPI)",
        spec.display()
    );
    let port = common::free_port();
    let mut mock = Command::new(&prism)
        .args(["mock", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg(&spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(mock.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(mock.stderr.take().unwrap()).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let ready = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let (log, ready) = (log.clone(), ready.clone());
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    l = out.next_line() => l,
                    l = err.next_line() => l,
                };
                let Ok(Some(line)) = line else {
                    // Prism ended: let the waiter see it at once.
                    ready.notify_one();
                    return;
                };
                if line.contains("Prism is listening") {
                    ready.notify_one();
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }
    let started = tokio::time::timeout(Duration::from_secs(90), ready.notified()).await;
    let listening = log.lock().unwrap().contains("Prism is listening");
    assert!(
        started.is_ok() && listening,
        "Prism did not start:\n{}",
        log.lock().unwrap()
    );

    let setup = Setup::new(3600, JOBS).await;
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        &setup.fake.api_base_url(),
        &format!("http://127.0.0.1:{port}"),
    );
    std::fs::write(&setup.config, text).unwrap();
    let mut daemon = setup.start("debug").await;
    daemon.notify_containing("READY=1").await;
    for job in [
        "replace-top",
        "append-uris",
        "recent",
        "copy",
        "search",
        "np",
        "me",
    ] {
        let (code, _, err) = tokio::time::timeout(PATIENCE, setup.cli(&["run-job", job]))
            .await
            .unwrap();
        eprintln!("{job}: exit {code} {}", err.trim());
    }
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    let _ = mock.start_kill();

    let log = log.lock().unwrap().clone();
    let invalid: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("✖  error") || l.contains("did not pass"))
        .collect();
    assert!(
        invalid.is_empty(),
        "Prism found invalid requests:\n{}\n\nfull log:\n{log}",
        invalid.join("\n")
    );
    // The jobs reached every endpoint they use.
    for expected in [
        "get /me ",
        "get /me/top/tracks",
        "get /me/player/recently-played",
        "get /me/player/currently-playing",
        "get /me/playlists",
        "post /me/playlists",
        "get /playlists/",
        "put /playlists/",
        "post /playlists/",
        "delete /playlists/",
        "get /search",
    ] {
        assert!(
            log.contains(expected),
            "no request like {expected:?}; Prism saw:\n{log}"
        );
    }
}
