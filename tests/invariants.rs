//! freshd's promises checked against a real, independently written OpenID
//! Connect server (panva's `oidc-provider`, `tests/oidc/server.mjs`) with
//! refresh-token rotation and reuse detection, and against freshd's own fake
//! for what no real server does (redirects, absurd `expires_in`).
//!
//! After every scenario the invariants of issue 10 are checked
//! (`tests/common/oidc.rs`): (a) every refresh presented the token of the
//! provider's previous answer; (b) soon after each rotation the store held
//! the newest token; (c) `freshd token` never handed out a token the provider
//! had expired; (d) nothing went anywhere but the configured token endpoint.
//!
//! Without node or `tests/oidc/node_modules` the OIDC scenarios are skipped
//! with the reason on stderr, unless `CI` is set.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::oidc::{
    self, Auth, HandedOut, Oidc, PUBLIC_CLIENT, StoreWatch, Tokens, now_ms, sha256,
};
use common::{Daemon, PATIENCE, bin};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::Command;

const ACCOUNT: &str = "oidc";

/// A test's directory, OIDC server, freshd config and first refresh token.
struct World {
    dir: tempfile::TempDir,
    oidc: Oidc,
    config: PathBuf,
    first: Tokens,
    /// The port of the redirect URI `freshd login` listens on.
    login_port: u16,
    /// Access tokens `freshd token` handed out, for (c).
    handed: std::sync::Mutex<Vec<HandedOut>>,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

/// At most two scenarios at a time: each runs a server and a daemon, and
/// the invariants have deadlines of a few seconds.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl World {
    /// The server with `ttl`-second access tokens, a login done through its
    /// pages, the refresh token as the account's credential, and a config
    /// with `extra` appended. None when the server cannot run here.
    async fn new(ttl: u64, extra: &str) -> Option<World> {
        let slot = SLOTS.acquire().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let oidc = Oidc::start(&dir.path().join("oidc"), ttl).await?;
        let first = oidc.login("alice", Auth::None(PUBLIC_CLIENT)).await;
        assert!(first.scope.contains("offline_access"), "{}", first.scope);
        std::fs::create_dir_all(dir.path().join("creds")).unwrap();
        std::fs::write(
            dir.path().join(format!("creds/{ACCOUNT}.refresh_token")),
            &first.refresh_token,
        )
        .unwrap();
        let world = World {
            config: dir.path().join("config.toml"),
            dir,
            oidc,
            first,
            login_port: common::free_port(),
            handed: Default::default(),
            _slot: slot,
        };
        world.write_config(extra);
        Some(world)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    fn creds(&self) -> PathBuf {
        self.path().join("creds")
    }

    fn write_config(&self, extra: &str) {
        let text = format!(
            r#"[daemon]
secrets = "credentials"
state_dir = "{state}"
socket = "{socket}"
shutdown_grace = "3s"
timezone = "UTC"

[accounts.{ACCOUNT}]
client_id = "{PUBLIC_CLIENT}"
token_url = "{issuer}/token"
authorize_url = "{issuer}/auth"
api_base_url = "{issuer}"
redirect_uri = "http://127.0.0.1:{port}/callback"
scopes = ["openid", "offline_access"]
refresh_before_expiry = "1s"
{extra}
"#,
            state = self.state_dir().display(),
            socket = self.path().join("run/control.sock").display(),
            issuer = self.oidc.issuer,
            port = self.login_port,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn watch(&self) -> StoreWatch {
        StoreWatch::start(&self.state_dir(), &self.creds(), ACCOUNT)
    }

    /// Starts `freshd run` with `env` added.
    async fn start(&self, env: &[(&str, &str)]) -> Daemon {
        let notify_path = self
            .path()
            .join(format!("notify-{}.sock", fastrand::u32(..)));
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let child = Command::new(bin())
            .args(["run", "--log-level", "debug", "--config"])
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("NOTIFY_SOCKET", &notify_path)
            .env("CREDENTIALS_DIRECTORY", self.creds())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .unwrap();
        Daemon::new(child, notify)
    }

    /// `freshd ARGS --config …` as a client: (exit code, stdout, stderr).
    async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_with(args, &[], None).await
    }

    async fn cli_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> (i32, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HOME", self.path())
            .env("CREDENTIALS_DIRECTORY", self.creds())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("freshd {args:?} did not finish in {PATIENCE:?}"))
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `freshd status --json` as JSON (exit 3 says an account needs a
    /// person, which some scenarios wait for).
    async fn status(&self) -> serde_json::Value {
        let (code, out, err) = self.cli(&["status", "--json"]).await;
        assert!(code == 0 || code == 3, "status exited {code}: {err}");
        serde_json::from_str(&out).unwrap()
    }

    async fn account(&self) -> serde_json::Value {
        let status = self.status().await;
        status["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == ACCOUNT)
            .cloned()
            .unwrap()
    }

    /// Waits until the account's status satisfies `want`.
    async fn wait_account(&self, what: &str, want: impl Fn(&serde_json::Value) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let account = self.account().await;
            if want(&account) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "account never {what}: {account}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `freshd token ACCOUNT`, recorded for (c) when it hands one out.
    async fn token(&self) -> Option<String> {
        let (code, out, _) = self.cli(&["token", ACCOUNT]).await;
        let at = now_ms();
        let token = out.trim().to_string();
        if code != 0 || token.is_empty() {
            return None;
        }
        self.handed.lock().unwrap().push(HandedOut {
            at,
            hash: sha256(&token),
        });
        Some(token)
    }

    /// Asks for a token every `every` for `span`.
    async fn use_tokens(&self, span: Duration, every: Duration) -> usize {
        let end = tokio::time::Instant::now() + span;
        let mut got = 0;
        while tokio::time::Instant::now() < end {
            if self.token().await.is_some() {
                got += 1;
            }
            tokio::time::sleep(every).await;
        }
        got
    }

    /// (a); (b) at the end and, for rotations answered in one of `ranges`
    /// (ms), within `within`; (c).
    async fn check(&self, watch: &StoreWatch, within: Duration, ranges: &[(i64, i64)]) {
        let journal = self.oidc.journal().await;
        oidc::assert_chain(&journal);
        oidc::assert_store_holds_head(
            &self.oidc,
            &self.state_dir(),
            &self.creds(),
            ACCOUNT,
            Duration::from_secs(5),
        )
        .await;
        let seen = watch.seen();
        for &(from, until) in ranges {
            let v = oidc::store_violations(&journal, &seen, within, from, until);
            assert!(
                v.is_empty(),
                "(b) rotations not stored in time:\n{}\njournal:\n{}",
                v.join("\n"),
                oidc::journal_text(&journal)
            );
        }
        let handed = self.handed.lock().unwrap().clone();
        let v = oidc::expiry_violations(&journal, &handed, 250);
        assert!(
            v.is_empty(),
            "(c) expired access tokens handed out:\n{}",
            v.join("\n")
        );
    }

    /// The grant a refresh token (by hash) belongs to.
    async fn grant_of(&self, hash: &str) -> String {
        self.oidc
            .journal()
            .await
            .iter()
            .find(|e| e.issued_refresh.as_deref() == Some(hash))
            .and_then(|e| e.grant.clone())
            .unwrap_or_else(|| panic!("no grant issued {hash}"))
    }

    /// How many refreshes the provider answered.
    async fn refreshes(&self) -> usize {
        self.oidc
            .journal()
            .await
            .iter()
            .filter(|e| e.is_refresh() && e.ok())
            .count()
    }

    /// Waits until the provider has answered `n` more refreshes than `base`.
    async fn wait_refreshes(&self, base: usize, n: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.refreshes().await < base + n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} refreshes after {base}:\n{}",
                oidc::journal_text(&self.oidc.journal().await)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn stop(daemon: &mut Daemon) -> i32 {
    daemon.signal("TERM");
    daemon.exit_code().await
}

/// reliability: nothing injected: a real OIDC server (oidc-provider, rotation and reuse detection on) with 3-second access tokens, for 30 s, `freshd token` asked every 700 ms | refreshed ahead of expiry, stored each rotated refresh token before using its access token | nothing; every refresh presented the newest token, no expired token handed out
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_chain_against_a_real_oidc_server() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let got = w
        .use_tokens(Duration::from_secs(30), Duration::from_millis(700))
        .await;
    assert!(got > 20, "only {got} tokens handed out");
    let until = now_ms();
    assert!(w.refreshes().await >= 8, "{}", daemon.log_text());
    assert_eq!(stop(&mut daemon).await, 0);
    w.check(&watch, Duration::from_secs(2), &[(from, until)])
        .await;
    assert_ne!(
        oidc::stored_token(&w.state_dir(), &w.creds(), ACCOUNT).unwrap(),
        w.first.refresh_token
    );
}

/// The harness relies on the server's reuse detection: a consumed refresh
/// token presented again is refused and revokes the whole grant, so that
/// the newest token of the chain dies too. Also each client authentication
/// method with a secret that contains `+ % :` and a space.
#[tokio::test]
async fn the_oidc_server_detects_reuse_and_revokes_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let Some(oidc) = Oidc::start(dir.path(), 5).await else {
        return;
    };
    let http = reqwest::Client::new();
    let refresh = |token: String| {
        let http = http.clone();
        let url = oidc.token_url();
        async move {
            let answer: serde_json::Value = http
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", PUBLIC_CLIENT),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer
        }
    };
    let first = oidc.login("bob", Auth::None(PUBLIC_CLIENT)).await;
    let second = refresh(first.refresh_token.clone()).await;
    let second = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first.refresh_token, "rotation is on");
    let reused = refresh(first.refresh_token.clone()).await;
    assert_eq!(reused["error"], "invalid_grant", "{reused}");
    let after = refresh(second).await;
    assert_eq!(
        after["error"], "invalid_grant",
        "the grant was revoked: {after}"
    );
    let journal = oidc.journal().await;
    assert_eq!(
        oidc::chain_violations(&journal).len(),
        2,
        "the checker sees both"
    );
    assert!(oidc.current().await.is_empty(), "no live grant left");

    for auth in [
        Auth::Basic(oidc::BASIC_CLIENT, oidc::BASIC_SECRET),
        Auth::Post(oidc::POST_CLIENT, oidc::POST_SECRET),
    ] {
        let tokens = oidc.login("carol", auth).await;
        assert!(oidc.introspect(auth, &tokens.access_token).await);
    }
}

// ---- store write failures ----

/// A tmpfs mounted over a directory for the length of a test (root only).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a `size` tmpfs on `dir`; None (after saying why) when this
    /// process may not mount.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            oidc::skip("the store-failure scenarios mount a tmpfs: they need root (CAP_SYS_ADMIN)");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The account's `store_error` in `status --json` (null while everything is
/// stored).
fn store_error(account: &serde_json::Value) -> Option<String> {
    account["store_error"].as_str().map(str::to_string)
}

/// Runs a store-failure scenario: `break_store` while the daemon rotates,
/// a reload in the middle, then `mend_store`; the rotations made meanwhile
/// must end up stored, and `status` must say so meanwhile.
async fn store_failure(w: &World, break_store: impl Fn(), mend_store: impl Fn()) {
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    oidc::assert_store_holds_head(
        &w.oidc,
        &w.state_dir(),
        &w.creds(),
        ACCOUNT,
        Duration::from_secs(5),
    )
    .await;
    let broken = now_ms();
    break_store();
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    w.wait_account("showing a store_error", |a| store_error(a).is_some())
        .await;
    assert!(w.token().await.is_some(), "tokens still handed out");
    // A reload that changes the account (a new token manager) must not
    // drop the unstored rotation.
    w.write_config("refresh_token_lifetime = \"90d\"");
    daemon.signal("HUP");
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    assert!(w.token().await.is_some());
    let account = w.account().await;
    assert!(
        store_error(&account).is_some(),
        "still unstored after the reload: {account}"
    );
    mend_store();
    let mended = now_ms();
    w.wait_account("clearing its store_error", |a| store_error(a).is_none())
        .await;
    oidc::assert_store_holds_head(
        &w.oidc,
        &w.state_dir(),
        &w.creds(),
        ACCOUNT,
        Duration::from_secs(10),
    )
    .await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    assert!(w.token().await.is_some());
    assert_eq!(stop(&mut daemon).await, 0, "{}", daemon.log_text());
    w.check(
        &watch,
        Duration::from_secs(5),
        &[(from, broken), (mended + 5_000, now_ms())],
    )
    .await;
}

/// reliability: the state directory turns read-only (chmod 0500 and `chattr +i`, which stops root too) under a running daemon for several 3-second rotations of a real OIDC server's refresh tokens, with a reload that changes the account in the middle | kept the rotated token in memory, showed `store_error` in `status`, kept it over the reload, retried the write until the directory was writable again | nothing; the chain continued and the newest token was stored within seconds of the directory becoming writable
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_directory_loses_no_rotation() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let Some(_undo) = ReadOnly::check(&w.state_dir()) else {
        return;
    };
    let dir = w.state_dir();
    store_failure(
        &w,
        || ReadOnly::set(&dir, true),
        || ReadOnly::set(&dir, false),
    )
    .await;
}

/// Makes a directory read-only for everyone, root included: chmod 0500
/// alone does not stop root, which the suite may run as; an immutable
/// directory (`chattr +i`) does. Undone on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    /// Whether this works here; None after saying why not.
    fn check(dir: &Path) -> Option<ReadOnly> {
        std::fs::create_dir_all(dir).unwrap();
        if !(ReadOnly::try_set(dir, true) && ReadOnly::try_set(dir, false)) {
            oidc::skip(
                "the read-only scenarios need chattr +i (root, a file system with attributes)",
            );
            return None;
        }
        Some(ReadOnly(dir.to_path_buf()))
    }

    fn set(dir: &Path, on: bool) {
        assert!(ReadOnly::try_set(dir, on), "chattr on {}", dir.display());
    }

    /// chmod before +i and after -i: an immutable directory's mode cannot
    /// change.
    fn try_set(dir: &Path, on: bool) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        let chmod = |mode| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
        if on {
            chmod(0o500).unwrap();
        }
        let ok = std::process::Command::new("chattr")
            .arg(if on { "+i" } else { "-i" })
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !on {
            chmod(0o700).unwrap();
        }
        ok
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        ReadOnly::try_set(&self.0, false);
    }
}

/// reliability: SIGTERM right after a read-only state directory became writable again, while rotations of a real OIDC server's refresh tokens had gone unstored for 12 s | on SIGTERM made one last attempt to store the newest rotation, which succeeded, then exit 0 | nothing; the restarted daemon continued the chain
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stores_an_unstored_rotation_once_more() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let Some(_undo) = ReadOnly::check(&w.state_dir()) else {
        return;
    };
    let watch = w.watch();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    ReadOnly::set(&w.state_dir(), true);
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    w.wait_account("showing a store_error", |a| store_error(a).is_some())
        .await;
    // Long enough for the write's retries to back off past a few seconds.
    tokio::time::sleep(Duration::from_secs(12)).await;
    ReadOnly::set(&w.state_dir(), false);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.log_text());
    oidc::assert_store_holds_head(
        &w.oidc,
        &w.state_dir(),
        &w.creds(),
        ACCOUNT,
        Duration::from_millis(500),
    )
    .await;
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    assert_eq!(stop(&mut daemon).await, 0);
    w.check(&watch, Duration::from_secs(5), &[]).await;
}

/// reliability: the state directory is a 64 KiB tmpfs that fills up (ENOSPC) under a running daemon for several 3-second rotations of a real OIDC server's refresh tokens, with a reload that changes the account in the middle | kept the rotated token in memory, showed `store_error` in `status`, kept it over the reload, retried the write until space was freed | nothing; the newest token was stored within seconds of space being freed
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_rotation() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let Some(_fs) = Tmpfs::mount(&w.state_dir(), "64k") else {
        return;
    };
    let filler = w.state_dir().join("filler");
    let fill = || {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    };
    let free = || std::fs::remove_file(&filler).unwrap();
    store_failure(&w, fill, free).await;
}

// ---- wall-clock jumps ----

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// reliability: freshd's wall clock jumps 2 h back, then 4 h forward (libfaketime), with 5-second tokens of a real OIDC server, a reload after the first jump, `freshd token` asked every 700 ms and an `every = "5s"` command job | tracked expiry on the boot clock and re-planned the job on each jump | nothing; no expired token handed out, the job kept running every 5 s after the backward jump
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_jumps_hand_out_no_expired_token_and_stall_no_job() {
    if !Path::new(LIBFAKETIME).exists() {
        oidc::skip("the clock-jump scenario needs libfaketime: apt-get install faketime");
        return;
    }
    let ticks_file = tempfile::NamedTempFile::new().unwrap();
    let ticks_path = ticks_file.path().display().to_string();
    let job = format!(
        r#"
[jobs.tick]
account = "{ACCOUNT}"
type = "command"
every = "5s"
command = ["sh", "-c", "echo tick >> {ticks_path}"]
"#
    );
    let Some(w) = World::new(5, &job).await else {
        return;
    };
    let ticks = || {
        std::fs::read_to_string(&ticks_path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let offset = w.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let offset_env = offset.display().to_string();
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w
        .start(&[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("FAKETIME_TIMESTAMP_FILE", &offset_env),
            ("FAKETIME_NO_CACHE", "1"),
        ])
        .await;
    daemon.notify_containing("READY=1").await;
    w.use_tokens(Duration::from_secs(6), Duration::from_millis(700))
        .await;
    assert!(ticks() >= 1, "the job ran before the jump");

    // A jump is noticed within 30 s (DESIGN §5: the wall clock is checked
    // in steps of at most 30 s); the job must run again within 40 s, and
    // then every 5 s.
    std::fs::write(&offset, "-2h\n").unwrap();
    let before = ticks();
    w.use_tokens(Duration::from_secs(10), Duration::from_millis(700))
        .await;
    daemon.signal("HUP");
    w.use_tokens(Duration::from_secs(30), Duration::from_millis(700))
        .await;
    let after_back = ticks() - before;
    let before = ticks();
    w.use_tokens(Duration::from_secs(11), Duration::from_millis(700))
        .await;
    let settled = ticks() - before;

    std::fs::write(&offset, "+2h\n").unwrap();
    let before = ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let burst = ticks() - before;
    w.use_tokens(Duration::from_secs(12), Duration::from_millis(700))
        .await;
    let forward = ticks() - before;
    let log = daemon.log_text();
    assert_eq!(stop(&mut daemon).await, 0);
    // The tokens first: (c) is what a jump broke worst.
    w.check(&watch, Duration::from_secs(5), &[(from, now_ms())])
        .await;
    assert!(w.handed.lock().unwrap().len() > 50);
    assert!(
        after_back >= 2 && settled >= 2,
        "the 5 s job ran {after_back} times in the 40 s after a 2 h backward jump, then {settled} times in 11 s; log:\n{log}"
    );
    assert!(burst <= 1, "{burst} catch-up runs after a forward jump");
    assert!(forward >= 2, "the job kept running after the forward jump");
}

// ---- signals during a refresh ----

/// Waits until the server is answering (or holding) a token request.
async fn wait_inflight(w: &World) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while w.oidc.inflight().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token request arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// reliability: a reload (SIGHUP), then SIGTERM, each while a refresh is in flight at a real OIDC server that rotated the refresh token and holds its answer 5 s (reuse detection on) | the reload did not drop the in-flight refresh; on SIGTERM the request finished, its rotation was stored, then exit 0 | nothing; the restarted daemon continued the chain and the grant was not revoked
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_refresh_keeps_the_rotation() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;

    w.oidc.delay(0, 3000, 1).await;
    wait_inflight(&w).await;
    daemon.signal("HUP");
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;

    w.oidc.delay(0, 5000, 1).await;
    wait_inflight(&w).await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.log_text());
    oidc::assert_store_holds_head(
        &w.oidc,
        &w.state_dir(),
        &w.creds(),
        ACCOUNT,
        Duration::from_millis(500),
    )
    .await;

    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    assert!(w.token().await.is_some());
    assert_eq!(stop(&mut daemon).await, 0);
    w.check(&watch, Duration::from_secs(5), &[(from, now_ms())])
        .await;
}

/// reliability: kill -9 five times: while a token request is held before the real OIDC server processes it (twice), and right after a rotation reached the store (three times); a reload after one restart | the rotated token was stored (fsync, rename) before anything else; a request killed before the provider processed it left the old token valid | nothing; each restart continued the chain. Not closable by any client: a kill after the provider rotated and before its answer arrived (the provider's reuse detection then revokes the grant)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_refreshes_keeps_the_chain() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    for round in 0..5 {
        if round % 2 == 0 && round < 4 {
            w.oidc.delay(3000, 0, 1).await;
            wait_inflight(&w).await;
        } else {
            let seen = watch.seen.lock().unwrap().len();
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while watch.seen.lock().unwrap().len() == seen {
                assert!(tokio::time::Instant::now() < deadline, "no rotation stored");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        daemon.signal("KILL");
        daemon.exit_code().await;
        // Let a held request reach the point where the server sees its
        // client is gone.
        tokio::time::sleep(Duration::from_secs(3)).await;
        daemon = w.start(&[]).await;
        daemon.notify_containing("READY=1").await;
        if round == 2 {
            daemon.signal("HUP");
        }
        let base = w.refreshes().await;
        w.wait_refreshes(base, 1).await;
    }
    assert_eq!(stop(&mut daemon).await, 0);
    w.check(&watch, Duration::from_secs(5), &[(from, now_ms())])
        .await;
}

// ---- a new token while the daemon runs ----

/// Runs `freshd login ACCOUNT --no-browser` and goes through the server's
/// pages from the URL it prints, then to its loopback listener; returns its
/// (exit code, output).
async fn freshd_login(w: &World) -> (i32, String) {
    let mut child = Command::new(bin())
        .args(["login", ACCOUNT, "--no-browser", "--config"])
        .arg(&w.config)
        .env("HOME", w.path())
        .env("CREDENTIALS_DIRECTORY", w.creds())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    for stream in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let output = std::sync::Arc::clone(&output);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                output.lock().unwrap().push(line);
            }
        });
    }
    let auth = format!("{}?", w.oidc.authorize_url());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let url = loop {
        let found = output.lock().unwrap().iter().find_map(|l| {
            l.find(&auth)
                .map(|i| l[i..].split_whitespace().next().unwrap().to_string())
        });
        if let Some(url) = found {
            break url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "freshd login printed no URL: {:?}",
            output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let callback = w
        .oidc
        .authorize(reqwest::Url::parse(&url).unwrap(), "alice")
        .await;
    let _ = reqwest::get(callback).await;
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("freshd login did not finish")
        .unwrap();
    let text = output.lock().unwrap().join("\n");
    (status.code().unwrap_or(-1), text)
}

/// The grant of the refresh token now in freshd's store.
async fn stored_grant(w: &World) -> String {
    let token = oidc::stored_token(&w.state_dir(), &w.creds(), ACCOUNT).unwrap();
    w.grant_of(&sha256(&token)).await
}

/// Checks that every refresh answered after `since` (ms) presented a token
/// of `grant`.
async fn refreshes_use(w: &World, grant: &str, since: i64) {
    let journal = w.oidc.journal().await;
    for e in journal.iter().filter(|e| e.is_refresh() && e.t > since) {
        assert_eq!(
            e.grant.as_deref(),
            Some(grant),
            "a refresh after the new token used another grant\n{}",
            oidc::journal_text(&journal)
        );
    }
}

/// reliability: `freshd import-token` with a refresh token of a new grant (a real OIDC server) while the daemon runs and the account is healthy, then a reload | the daemon adopted the new token and confirmed it; the CLI said "the running daemon uses it now" only then; the next rotation continued the new chain and never wrote over it | nothing; the old chain was left alone
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_token_while_running_is_adopted() {
    let Some(w) = World::new(4, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;

    let new = w.oidc.login("alice", Auth::None(PUBLIC_CLIENT)).await;
    let new_grant = w.grant_of(&sha256(&new.refresh_token)).await;
    let (code, out, err) = w
        .cli_with(
            &["import-token", ACCOUNT],
            &[],
            Some(&format!("{}\n", new.refresh_token)),
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("uses it now"), "{out}{err}");
    let imported = now_ms();
    daemon.signal("HUP");
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    refreshes_use(&w, &new_grant, imported).await;
    oidc::assert_store_holds_head(
        &w.oidc,
        &w.state_dir(),
        &w.creds(),
        ACCOUNT,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(stored_grant(&w).await, new_grant);
    assert!(w.token().await.is_some());
    assert_eq!(stop(&mut daemon).await, 0);
    w.check(&watch, Duration::from_secs(5), &[(from, imported)])
        .await;
}

/// reliability: `freshd login` through a real OIDC server's login and consent pages (PKCE S256, `prompt=consent` for `offline_access`) while the daemon runs and the account is healthy, then a reload | the daemon adopted the new grant's token and confirmed it; the CLI said so only then; the next rotation continued the new chain | nothing; the old chain was left alone
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_while_running_is_adopted() {
    let Some(w) = World::new(4, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    let before_login = now_ms();
    let (code, text) = freshd_login(&w).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("uses it now"), "{text}");
    let logged_in = now_ms();
    let login_grant = w
        .oidc
        .journal()
        .await
        .iter()
        .rev()
        .find(|e| e.grant_type.as_deref() == Some("authorization_code") && e.ok())
        .and_then(|e| e.grant.clone())
        .unwrap();
    let old_grant = w.grant_of(&sha256(&w.first.refresh_token)).await;
    assert_ne!(login_grant, old_grant);
    daemon.signal("HUP");
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    refreshes_use(&w, &login_grant, logged_in).await;
    assert!(w.token().await.is_some());
    assert_eq!(stop(&mut daemon).await, 0);
    assert_eq!(stored_grant(&w).await, login_grant);
    w.check(&watch, Duration::from_secs(5), &[(from, before_login)])
        .await;
}

// ---- two daemons ----

/// reliability: a second `freshd run` on the state directory of a running daemon (real OIDC server, rotation and reuse detection on), then a reload of the first | the second refused to start, named the first one's pid and exited non-zero; the first kept refreshing | nothing; no fork of the refresh chain
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_directory_refuses() {
    let Some(w) = World::new(3, "").await else {
        return;
    };
    let watch = w.watch();
    let from = now_ms();
    let mut first = w.start(&[]).await;
    first.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    let mut second = w.start(&[]).await;
    let code = second.exit_code().await;
    assert_ne!(code, 0, "{}", second.log_text());
    let pid = first.pid().to_string();
    assert!(
        second.log_text().contains(&pid),
        "the refusal names pid {pid}: {}",
        second.log_text()
    );
    first.signal("HUP");
    let base = w.refreshes().await;
    w.wait_refreshes(base, 2).await;
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first runs on"
    );
    assert!(w.token().await.is_some());
    assert_eq!(stop(&mut first).await, 0);
    w.check(&watch, Duration::from_secs(5), &[(from, now_ms())])
        .await;
}

// ---- a hostile token endpoint (freshd's own fake) ----

/// `freshd token` against a daemon whose provider misbehaves: it must
/// answer within 5 s either way.
async fn token_answers(setup: &common::Setup, what: &str) {
    let answered =
        tokio::time::timeout(Duration::from_secs(5), setup.cli(&["token", "spotify"])).await;
    assert!(answered.is_ok(), "{what}: `freshd token` hung");
}

/// reliability: the token endpoint answers 307, 308 and 302 with a Location on another port, where a listener answers with tokens of its own (freshd's fake), then a reload | never followed: the account went to needs_login naming the status and the Location; `freshd token` answered at once; the reload (a person may have fixed the config) asked the configured URL once more, never the Location | nothing; the refresh token never left for the other port, nothing from it was stored, at most a few token requests
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_from_the_token_endpoint_are_never_followed() {
    let _slot = SLOTS.acquire().await.unwrap();
    each_at_once([307u16, 308, 302], |status| async move {
        let tripwire = oidc::Tripwire::start().await;
        let setup = common::Setup::new(3, "").await;
        let mut daemon = setup.start("debug").await;
        daemon.notify_containing("READY=1").await;
        let base = setup.fake.token_requests();
        setup.fake.set_down(Some(freshd_fake::Fault::Redirect {
            status,
            location: format!("{}/api/token", tripwire.url),
        }));
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < end {
            token_answers(&setup, &status.to_string()).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            tripwire.hits(),
            0,
            "{status}: a request reached the Location"
        );
        let requests = setup.fake.token_requests() - base;
        assert!(requests <= 3, "{status}: {requests} token requests in 10 s");
        let (_, out, _) = setup.cli(&["status", "--json"]).await;
        let status_json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let account = &status_json["accounts"][0];
        assert_eq!(account["state"], "needs_login", "{status}: {account}");
        let error = account["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&status.to_string()) && error.contains(&tripwire.url),
            "{status}: last_error names the status and the Location: {error}"
        );
        // A redirect is a configuration error, not a refused token: a
        // reload (a person may have fixed the config) asks the configured
        // URL once more, and still never follows.
        let before = setup.fake.token_requests();
        daemon.signal("HUP");
        tokio::time::sleep(Duration::from_secs(3)).await;
        token_answers(&setup, &status.to_string()).await;
        assert!(
            setup.fake.token_requests() <= before + 1,
            "{status}: a reload sent more than one request"
        );
        assert_eq!(tripwire.hits(), 0);
        let stored = std::fs::read_to_string(setup.state_dir().join("spotify.refresh_token"))
            .unwrap_or_default();
        assert!(
            !stored.contains("tripwire"),
            "{status}: stored the other server's token"
        );
        daemon.signal("TERM");
        assert_eq!(daemon.exit_code().await, 0);
    })
    .await;
}

/// reliability: `expires_in` of 0, -5, "abc", "3600s", null, 1e12 or none at all, on every token answer (freshd's fake), with a reload | numbers and numeric strings parsed; unusable values taken as the default lifetime and logged once; 0 and negative treated as a provider fault; `freshd token` answered at once | nothing; never more than a few token requests a minute
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_lifetimes_cause_no_request_storm() {
    let _slot = SLOTS.acquire().await.unwrap();
    each_at_once(
        ["0", "-5", "\"abc\"", "\"3600s\"", "null", "1e12", ""],
        |raw| async move {
            let setup = common::Setup::new(3, "").await;
            setup
                .fake
                .set_down(Some(freshd_fake::Fault::ExpiresIn(raw.into())));
            let mut daemon = setup.start("debug").await;
            daemon.notify_containing("READY=1").await;
            let end = tokio::time::Instant::now() + Duration::from_secs(12);
            let mut reloaded = false;
            while tokio::time::Instant::now() < end {
                token_answers(&setup, &format!("expires_in {raw:?}")).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                if !reloaded && end - tokio::time::Instant::now() < Duration::from_secs(6) {
                    daemon.signal("HUP");
                    reloaded = true;
                }
            }
            let requests = setup.fake.token_requests();
            assert!(
                requests <= 4,
                "expires_in {raw:?}: {requests} token requests in about 12 s; log:\n{}",
                daemon.log_text()
            );
            daemon.signal("TERM");
            assert_eq!(daemon.exit_code().await, 0, "expires_in {raw:?}");
        },
    )
    .await;
}

// ---- what no client can close ----

/// reliability: a real OIDC server rotates the refresh token and then holds its answer 35 s, past freshd's 30 s timeout (reuse detection on) | gave up after 30 s, logged that the provider may have rotated the token and that reuse detection may revoke the grant, waited 30 s before presenting the old token once; the provider's reuse detection revoked the grant; the account went to needs_login naming `freshd login` and sent nothing more | the grant: the window between a provider's rotation and an answer that never arrives, which no client can close; a person must log in again
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_never_arrives_costs_the_grant_once() {
    let Some(w) = World::new(5, "").await else {
        return;
    };
    let mut daemon = w.start(&[]).await;
    daemon.notify_containing("READY=1").await;
    let base = w.refreshes().await;
    w.wait_refreshes(base, 1).await;
    w.oidc.delay(0, 35_000, 1).await;
    wait_inflight(&w).await;
    let held_at = now_ms();
    // freshd's own timeout is 30 s: wait longer than PATIENCE.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(50);
    while !daemon.log_text().contains("may have rotated") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning that the provider may have rotated; log:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.wait_account("in needs_login", |a| a["state"] == "needs_login")
        .await;
    let refused_at = now_ms();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let journal = w.oidc.journal().await;
    let after: Vec<&oidc::Entry> = journal
        .iter()
        .filter(|e| e.is_refresh() && e.t >= held_at - 1_000)
        .collect();
    // The held request (rotated, answer lost), then the old token once.
    assert_eq!(after.len(), 2, "{}", oidc::journal_text(&journal));
    assert_eq!(
        after[0].presented, after[1].presented,
        "the old token again"
    );
    assert!(
        after[0].issued_refresh.is_some(),
        "the provider had rotated"
    );
    assert_eq!(after[1].outcome, "invalid_grant");
    assert!(
        after[1].t - after[0].t >= 55_000,
        "the old token came back {} ms after the lost answer's request (30 s timeout + 30 s wait)",
        after[1].t - after[0].t
    );
    assert!(refused_at - after[1].t < 10_000);
    assert_eq!(stop(&mut daemon).await, 0);
    assert!(w.oidc.current().await.is_empty(), "the grant is revoked");
}

/// Runs `scenario` for each of `cases` at once (they are light: a fake and
/// a daemon each), and fails as the first failing one did.
async fn each_at_once<T, F, Fut>(cases: impl IntoIterator<Item = T>, scenario: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runs: Vec<_> = cases
        .into_iter()
        .map(|c| tokio::spawn(scenario(c)))
        .collect();
    for run in runs {
        if let Err(e) = run.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
