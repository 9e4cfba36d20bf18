//! Long-lived access tokens without a refresh token, through the binary.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use common::Setup;
use freshd::status::StatusReport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_access_token_is_handed_out_as_static() {
    let setup = Setup::new(3600, "").await;
    let creds = setup.path().join("creds");
    std::fs::remove_file(creds.join("spotify.refresh_token")).unwrap();
    std::fs::write(creds.join("spotify.access_token"), "at-long-lived\n").unwrap();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, token, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!((code, token.trim()), (0, "at-long-lived"), "{err}");
    let (_, json, _) = setup.cli(&["status", "--json"]).await;
    let report: StatusReport = serde_json::from_str(&json).unwrap();
    let a = &report.accounts[0];
    assert_eq!((a.state.as_str(), a.static_token), ("ok", true));
    assert_eq!(a.access_token_expires_at, None);
    assert!(json.contains("\"static\":true"), "{json}");
    assert_eq!(
        setup.fake.token_requests(),
        0,
        "a static token is never refreshed"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}
