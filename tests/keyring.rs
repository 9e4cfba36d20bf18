//! The real Secret Service: gnome-keyring in a D-Bus session of the test's
//! own. freshd must find what `secret-tool store` put there, store rotated
//! tokens where `secret-tool lookup` finds them, and turn a locked keyring
//! or a missing bus into exit 78 within seconds.
//!
//! Skipped, with the reason printed, when the programs are missing, unless
//! `CI` is set: then it fails, since `.ci/run` installs them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{PATIENCE, Setup};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn programs_present() -> bool {
    let missing: Vec<&str> = [
        "dbus-run-session",
        "dbus-send",
        "gnome-keyring-daemon",
        "secret-tool",
    ]
    .into_iter()
    .filter(|p| !have(p))
    .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "keyring tests need {} (packages dbus, dbus-bin, gnome-keyring, libsecret-tools)",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    // To the real stderr: eprintln! would be captured, and a skip unseen.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    false
}

/// A D-Bus session with an unlocked gnome-keyring, alive until dropped.
///
/// Everything it starts (dbus-run-session, dbus-daemon, gnome-keyring-daemon
/// in the foreground, the shell's sleep) is in one process group of its own,
/// which dropping kills: `cargo test` leaves nothing behind, even when a
/// test fails.
struct Session {
    child: Child,
    group: u32,
    bus: String,
    home: tempfile::TempDir,
}

/// The login keyring's password.
const PASSWORD: &str = "test-password";

impl Session {
    async fn start() -> Session {
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        // Inside the session: gnome-keyring in the foreground (so it stays
        // in the group), unlocking (creating) the login keyring with a known
        // password; once it owns its bus name, say where the bus is, then
        // wait. Announcing earlier would let a client D-Bus-activate a
        // second, locked keyring.
        let script = format!(
            r#"printf '{PASSWORD}' | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
  i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1
done
echo "BUS=$DBUS_SESSION_BUS_ADDRESS"
exec sleep 3600"#
        );
        let mut child = Command::new("dbus-run-session")
            .args(["--", "sh", "-c", &script])
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let group = child.id().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let bus = tokio::time::timeout(PATIENCE, async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the D-Bus session ended");
                if let Some(bus) = line.strip_prefix("BUS=") {
                    return bus.to_owned();
                }
            }
        })
        .await
        .expect("no D-Bus session");
        Session {
            child,
            group,
            bus,
            home,
        }
    }

    /// The unique bus name of the Secret Service now.
    async fn secrets_owner(&self) -> String {
        let out = self
            .command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.GetNameOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split('"').nth(1).unwrap_or_default().to_owned()
    }

    /// `gnome-keyring-daemon --replace --unlock`, as a person would run it
    /// to unlock the keyring; returns once the new daemon owns the name.
    async fn replace_keyring(&self) {
        let before = self.secrets_owner().await;
        let mut child = self
            .command("gnome-keyring-daemon")
            .args([
                "--replace",
                "--foreground",
                "--unlock",
                "--components=secrets",
            ])
            .process_group(self.group as i32)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false) // the group's kill ends it
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(PASSWORD.as_bytes()).await.unwrap();
        drop(stdin);
        tokio::time::timeout(PATIENCE, async {
            loop {
                let now = self.secrets_owner().await;
                if !now.is_empty() && now != before {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the new gnome-keyring-daemon never took the bus name");
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("HOME", self.home.path())
            .env("XDG_RUNTIME_DIR", self.home.path().join("run"))
            .kill_on_drop(true);
        c
    }

    async fn secret_tool(&self, args: &[&str], input: Option<&str>) -> (bool, String) {
        let mut child = self
            .command("secret-tool")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).await.unwrap();
        }
        drop(stdin);
        let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `freshd ARGS --config CONFIG` on this bus; (code, stdout, stderr).
    async fn freshd(
        &self,
        args: &[&str],
        config: &Path,
        stdin: Option<&str>,
    ) -> (i32, String, String) {
        let mut child = self
            .command(common::bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("freshd hung")
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.start_kill();
    }
}

/// Turns a test setup's config into keyring mode.
fn keyring_config(setup: &Setup) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        text.replace("secrets = \"credentials\"", "secrets = \"keyring\""),
    )
    .unwrap();
}

/// A D-Bus session with gnome-keyring, a keyring-mode config against the
/// fake, and a refresh token put in the keyring with `secret-tool store`
/// (returned), as a user following the README would.
async fn keyring_with_stored_token(lifetime: u64) -> (Session, Setup, String) {
    let session = Session::start().await;
    let setup = Setup::new(lifetime, "").await;
    keyring_config(&setup);
    let token = setup.fake.issue_refresh_token("spotify");
    let (ok, _) = session
        .secret_tool(
            &[
                "store",
                "--label=freshd spotify refresh token",
                "service",
                "freshd",
                "username",
                "spotify/refresh_token",
            ],
            Some(&token),
        )
        .await;
    assert!(ok, "secret-tool store failed");
    (session, setup, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_tool_and_freshd_share_entries_and_rotation_lands_in_the_keyring() {
    if !programs_present() {
        return;
    }
    let (session, setup, first) = keyring_with_stored_token(3600).await;

    // The daemon reads it, refreshes (the fake rotates), stores the new one.
    let mut daemon = session
        .command(common::bin())
        .args(["run", "--config"])
        .arg(&setup.config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(daemon.stderr.take().unwrap()).lines();
    let seen = tokio::time::timeout(PATIENCE, async {
        let mut all = String::new();
        while let Ok(Some(line)) = log.next_line().await {
            all.push_str(&line);
            all.push('\n');
            if line.contains("ready:") {
                return all;
            }
        }
        all
    })
    .await
    .expect("the daemon never became ready");
    assert!(seen.contains("stored the rotated refresh token"), "{seen}");
    let (code, token, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(token.starts_with("at-spotify-"));
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().unwrap().to_string())
        .status();
    let _ = tokio::time::timeout(PATIENCE, daemon.wait()).await;

    let (ok, stored) = session
        .secret_tool(
            &[
                "lookup",
                "service",
                "freshd",
                "username",
                "spotify/refresh_token",
            ],
            None,
        )
        .await;
    assert!(ok);
    assert_ne!(stored.trim(), first, "the rotated token replaced the first");
    assert!(
        setup
            .fake
            .valid_refresh_tokens("spotify")
            .contains(&stored.trim().to_owned())
    );

    // import-token writes where secret-tool looks.
    let imported = setup.fake.issue_refresh_token("spotify");
    let (code, _, err) = session
        .freshd(
            &["import-token", "spotify"],
            &setup.config,
            Some(&format!("{imported}\n")),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(&imported), "import-token printed the token");
    let (_, stored) = session
        .secret_tool(
            &[
                "lookup",
                "service",
                "freshd",
                "username",
                "spotify/refresh_token",
            ],
            None,
        )
        .await;
    assert_eq!(stored.trim(), imported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_keyring_is_exit_78_with_what_to_do() {
    if !programs_present() {
        return;
    }
    let (session, setup, token) = keyring_with_stored_token(3600).await;
    // `secret-tool lock` crashes in Debian 12's libsecret; ask the service.
    let locked = session
        .command("dbus-send")
        .args([
            "--session",
            "--dest=org.freedesktop.secrets",
            "--print-reply",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .await
        .unwrap();
    assert!(locked.status.success(), "cannot lock the login keyring");
    let started = std::time::Instant::now();
    let (code, _, err) = session.freshd(&["run"], &setup.config, None).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("unlock"), "{err}");
    assert!(!err.contains("restart freshd"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    assert!(!err.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_bus_is_exit_78_with_what_to_do() {
    let setup = Setup::new(3600, "").await;
    keyring_config(&setup);
    let out = Command::new(common::bin())
        .args(["run", "--config"])
        .arg(&setup.config)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("HOME", setup.path())
        .output();
    let out = tokio::time::timeout(PATIENCE, out)
        .await
        .expect("freshd hung")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("Secret Service is not reachable"), "{err}");
}

/// What `secret-tool lookup` finds for the account's refresh token.
async fn stored_refresh_token(session: &Session) -> String {
    let (_, stored) = session
        .secret_tool(
            &[
                "lookup",
                "service",
                "freshd",
                "username",
                "spotify/refresh_token",
            ],
            None,
        )
        .await;
    stored.trim().to_owned()
}

/// Waits until the keyring holds a refresh token the provider accepts
/// other than every one in `not`; returns it.
async fn wait_for_new_valid_token(session: &Session, setup: &Setup, not: &[&str]) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let stored = stored_refresh_token(session).await;
            if !not.contains(&stored.as_str())
                && setup.fake.valid_refresh_tokens("spotify").contains(&stored)
            {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("no newer rotated refresh token reached the keyring")
}

/// reliability: gnome-keyring restarted under the running daemon (`gnome-keyring-daemon --replace --unlock`, as a person unlocking it would) | stored the next rotation in the new keyring on a new Secret Service session (freshd holds a session only while it uses the store and a second after, and checks the service's owner before reusing one) | nothing; freshd was not restarted
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_restarted_under_the_daemon_gets_the_next_rotation() {
    if !programs_present() {
        return;
    }
    // 4-second tokens refreshed 2 s ahead: a rotation every ~2 s.
    let (session, setup, first) = keyring_with_stored_token(4).await;
    let runtime = session.home.path().join("run");
    let mut daemon = setup
        .start_with(
            "info",
            &[
                ("DBUS_SESSION_BUS_ADDRESS", session.bus.as_str()),
                ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ],
        )
        .await;
    daemon.notify_containing("READY=1").await;
    let before = wait_for_new_valid_token(&session, &setup, &[&first]).await;

    session.replace_keyring().await;
    // The new keyring daemon reads what the old one stored.
    let at_restart = stored_refresh_token(&session).await;
    let after = wait_for_new_valid_token(&session, &setup, &[&first, &before, &at_restart]).await;
    assert_ne!(after, at_restart);
    let log = daemon.log_text();
    assert!(!log.contains(&after), "a token reached the log");
    let (code, token, err) = setup.cli(&["token", "spotify"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(token.starts_with("at-spotify-"));
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.log_text());
}

/// The unique names on the bus (each a connection), as seen by a
/// connection of the caller's own.
fn bus_names(bus: &zbus::blocking::Connection) -> std::collections::BTreeSet<String> {
    let proxy = zbus::blocking::fdo::DBusProxy::new(bus).unwrap();
    proxy
        .list_names()
        .unwrap()
        .into_iter()
        .map(|n| n.to_string())
        .filter(|n| n.starts_with(':'))
        .collect()
}

/// Run by [`calls_in_a_row_share_one_session_which_closes_after`] with its
/// bus in the environment; the store is used in this process.
#[test]
#[ignore = "run by calls_in_a_row_share_one_session_which_closes_after"]
fn keyring_store_in_this_process() {
    use freshd::secrets::SecretStore;
    if std::env::var_os("FRESHD_KEYRING_CHILD").is_none() {
        return;
    }
    let bus = zbus::blocking::Connection::session().unwrap();
    let before = bus_names(&bus);
    let store = freshd::secrets::keyring::KeyringStore::new();
    let kind = freshd::secrets::SecretKind::RefreshToken;
    assert!(store.get("a0", kind).unwrap().is_none());
    let open = bus_names(&bus);
    assert!(
        open.len() > before.len(),
        "no session's connections: {open:?}"
    );
    for i in 1..20 {
        assert!(store.get(&format!("a{i}"), kind).unwrap().is_none());
        assert_eq!(bus_names(&bus), open, "call {i} opened another session");
    }
    // Closed a moment after the last call: its connections are gone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bus_names(&bus), before, "the session stayed open");
}

/// Calls one after another (every account read at start) share a session
/// instead of each opening one (two bus connections and a key exchange);
/// a moment after the last, it is closed and its threads end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_a_row_share_one_session_which_closes_after() {
    if !programs_present() {
        return;
    }
    let session = Session::start().await;
    let me = std::env::current_exe().unwrap();
    let out = session
        .command(me.to_str().unwrap())
        .args([
            "--exact",
            "keyring_store_in_this_process",
            "--ignored",
            "--nocapture",
        ])
        .env("FRESHD_KEYRING_CHILD", "1")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}
