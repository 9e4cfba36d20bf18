//! One daemon per state directory, through the binary: a second `freshd
//! run` on the same state directory refuses to start, names the first
//! one's pid and exits 1, and the first goes on as if nothing happened.

mod common;

use common::{PATIENCE, Setup};

/// reliability: a second `freshd run` started on the state directory of a running one | the second found `freshd.lock` held, named the first one's pid and exited 1 before reading any token; the first kept refreshing | nothing; the chain of refresh tokens was never forked
#[tokio::test]
async fn second_daemon_on_one_state_directory_exits_1_naming_the_first() {
    let setup = Setup::new(3600, "").await;
    let mut first = setup.start("info").await;
    first.notify_containing("READY=1").await;
    let requests = setup.fake.token_requests();

    let mut second = setup.start("info").await;
    assert_eq!(second.exit_code().await, 1, "{}", second.log_text());
    let log = second.log_text();
    assert!(
        log.contains(&format!("pid {}", first.pid())),
        "the refusal names the first daemon: {log}"
    );
    assert!(log.contains("freshd.lock"), "{log}");
    assert_eq!(
        setup.fake.token_requests(),
        requests,
        "the second daemon presented no refresh token"
    );

    // The first is untouched and still hands out tokens.
    let (code, token, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(token.starts_with("at-spotify-"), "{token}");

    // Once the first has gone, the directory is free again.
    first.signal("TERM");
    assert_eq!(first.exit_code().await, 0);
    let third = setup.start("info").await;
    tokio::time::timeout(PATIENCE, third.notify_containing("READY=1"))
        .await
        .expect("a daemon after the first one could not take the lock");
    third.signal("TERM");
}
