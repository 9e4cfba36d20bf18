//! Credentials mode through the binary: the newest refresh token wins, so
//! a token imported as a new credential after freshd rotated the old one
//! is used, not shadowed by the old rotated copy.

mod common;

use common::Setup;

/// reliability: a new refresh token imported as a new `LoadCredentialEncrypted=` credential after freshd had rotated the old one into the state directory, then a restart | saw the credential differ from the one its rotated copy descends from, used the credential, moved the old copy aside (`.superseded`) and stored the new chain's rotation | nothing; the old chain was never presented again
#[tokio::test]
async fn credential_imported_after_a_rotation_is_used_not_the_old_copy() {
    let setup = Setup::new(3600, "").await;
    let state = setup.state_dir();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    let old_copy = std::fs::read_to_string(state.join("spotify.refresh_token")).unwrap();

    // A person imports a new token: systemd puts it in the credentials
    // directory at the next start.
    let imported = setup.fake.issue_refresh_token("spotify");
    std::fs::write(setup.path().join("creds/spotify.refresh_token"), &imported).unwrap();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);

    let valid = setup.fake.valid_refresh_tokens("spotify");
    assert!(
        !valid.contains(&imported),
        "the imported token was presented (and rotated away)"
    );
    assert!(
        valid.contains(&old_copy),
        "the old rotated copy was never presented again"
    );
    let stored = std::fs::read_to_string(state.join("spotify.refresh_token")).unwrap();
    assert!(valid.contains(&stored) && stored != old_copy);
    assert_eq!(
        std::fs::read_to_string(state.join("spotify.refresh_token.superseded")).unwrap(),
        old_copy,
        "the old copy is kept aside"
    );

    // Restarted with the same credential, the new chain's copy wins.
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    assert!(
        !setup.fake.valid_refresh_tokens("spotify").contains(&stored),
        "the rotated copy descending from the present credential was used"
    );
}
