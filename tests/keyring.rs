//! The real Secret Service: gnome-keyring in a D-Bus session of the test's
//! own. freshd must find what `secret-tool store` put there, store rotated
//! tokens where `secret-tool lookup` finds them, and turn a locked keyring
//! or a missing bus into exit 78 within seconds.
//!
//! Skipped, with the reason printed, when the programs are missing, unless
//! `CI` is set: then it fails, since `.ci/run` installs them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

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
    eprintln!("skipped: {why}");
    false
}

/// A D-Bus session with an unlocked gnome-keyring, alive until dropped.
struct Session {
    child: Child,
    bus: String,
    home: tempfile::TempDir,
}

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
        // Inside the session: unlock (creating) the login keyring with a
        // known password, say where the bus is, then wait.
        let script = r#"printf 'test-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
echo "BUS=$DBUS_SESSION_BUS_ADDRESS"
exec sleep 3600"#;
        let mut child = Command::new("dbus-run-session")
            .args(["--", "sh", "-c", script])
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
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
        Session { child, bus, home }
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
async fn keyring_with_stored_token() -> (Session, Setup, String) {
    let session = Session::start().await;
    let setup = Setup::new(3600, "").await;
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
    let (session, setup, first) = keyring_with_stored_token().await;

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
    let (session, setup, token) = keyring_with_stored_token().await;
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
