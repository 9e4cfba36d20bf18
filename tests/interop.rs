//! freshd against a real, independently written OpenID Connect server
//! (panva's `oidc-provider`, `tests/oidc/server.mjs`), configured as a user
//! of any standards-following server would: `issuer` and a client id, maybe
//! a client secret and its `token_endpoint_auth_method` (issue 11).
//!
//! `freshd login` is driven end to end: the test plays the browser through
//! the server's own login and consent pages and hands the redirect back to
//! freshd's loopback listener. Then the tokens are used, revoked and logged
//! out. Without node or the server's `node_modules` the tests are skipped
//! with the reason on stderr, unless `CI` is set.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::oidc::{
    BASIC_CLIENT, BASIC_SECRET, Oidc, POST_CLIENT, POST_SECRET, PUBLIC_CLIENT, sha256,
};
use common::{PATIENCE, bin, free_port};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::UnixDatagram;
use tokio::process::{Child, ChildStderr, Command};

const ACCOUNT: &str = "oidc";

/// A test's directory, OIDC server and freshd config.
struct Interop {
    dir: tempfile::TempDir,
    oidc: Oidc,
    config: PathBuf,
    port: u16,
}

impl Interop {
    /// The server, and a config whose account has `account` as its keys
    /// (besides the redirect URI); None when the server cannot run here.
    async fn new(account: &str) -> Option<Interop> {
        let dir = tempfile::tempdir().unwrap();
        let oidc = Oidc::start(&dir.path().join("oidc"), 60).await?;
        let interop = Interop {
            config: dir.path().join("config.toml"),
            dir,
            oidc,
            port: free_port(),
        };
        interop.write_config(account);
        Some(interop)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// The config, readable by its owner only (literal client secrets).
    fn write_config(&self, account: &str) {
        use std::os::unix::fs::PermissionsExt;
        let text = format!(
            r#"[daemon]
secrets = "credentials"
state_dir = "{state}"
socket = "{socket}"
shutdown_grace = "3s"
timezone = "UTC"

[accounts.{ACCOUNT}]
redirect_uri = "http://127.0.0.1:{port}/callback"
refresh_before_expiry = "1s"
{account}
"#,
            state = self.state_dir().display(),
            socket = self.path().join("run/control.sock").display(),
            port = self.port,
        );
        std::fs::write(&self.config, text).unwrap();
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn stored(&self) -> Option<String> {
        std::fs::read_to_string(self.state_dir().join(format!("{ACCOUNT}.refresh_token"))).ok()
    }

    /// `freshd ARGS --config …` with `stdin`: (exit code, stdout, stderr).
    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HOME", self.path())
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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

    /// Starts `freshd login` and reads the authorization URL it prints.
    async fn start_login(&self) -> (Login, reqwest::Url) {
        let mut child = Command::new(bin())
            .args(["login", ACCOUNT, "--no-browser", "--config"])
            .arg(&self.config)
            .env("HOME", self.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut before = String::new();
        let url = tokio::time::timeout(PATIENCE, async {
            loop {
                let line = stderr
                    .next_line()
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("login printed no URL:\n{before}"));
                if let Some(url) = line.trim().strip_prefix("http") {
                    return format!("http{url}");
                }
                before.push_str(&line);
                before.push('\n');
            }
        })
        .await
        .unwrap();
        (Login { child, stderr }, reqwest::Url::parse(&url).unwrap())
    }

    /// A whole `freshd login`, as a person would do it; the refresh token
    /// freshd stored.
    async fn login(&self) -> String {
        let (login, url) = self.start_login().await;
        let callback = self.oidc.authorize(url, "alice").await;
        let page = reqwest::get(callback).await.unwrap().text().await.unwrap();
        let (code, err) = login.finish().await;
        assert_eq!(code, 0, "{err}");
        assert!(
            page.contains(&format!("freshd is authorized for {ACCOUNT}")),
            "{page}"
        );
        self.stored().expect("login stored the refresh token")
    }

    /// Starts `freshd run`.
    async fn start(&self) -> Daemon {
        let notify_path = self.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let mut child = Command::new(bin())
            .args(["run", "--log-level", "debug", "--config"])
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line);
                }
            });
        }
        Daemon { child, notify, log }
    }
}

/// A running `freshd run` (killed when dropped).
struct Daemon {
    child: Child,
    notify: UnixDatagram,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Skips notifications until one contains `needle`.
    async fn notify_containing(&self, needle: &str) {
        let mut buf = vec![0; 4096];
        loop {
            let n = tokio::time::timeout(PATIENCE, self.notify.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} notification; log:\n{}", self.log_text()))
                .unwrap();
            if String::from_utf8_lossy(&buf[..n]).contains(needle) {
                return;
            }
        }
    }

    async fn wait_for_log(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.log_text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then its exit code.
    async fn stop(&mut self) -> i32 {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("freshd did not exit; log:\n{}", self.log_text()))
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

/// A running `freshd login`.
struct Login {
    child: Child,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Login {
    async fn finish(mut self) -> (i32, String) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stderr.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status.code().unwrap_or(-1), rest)
    }
}

fn query(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_servers_pages_with_only_an_issuer() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    t.write_config(&format!(
        "issuer = \"{}\"\nclient_id = \"{PUBLIC_CLIENT}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        t.oidc.issuer
    ));
    let (login, url) = t.start_login().await;
    // Discovery found the authorization endpoint.
    assert!(
        url.as_str()
            .starts_with(&format!("{}/auth?", t.oidc.issuer)),
        "{url}"
    );
    let q = query(&url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "a SHA-256 challenge");
    assert_eq!(q["scope"], "openid offline_access");
    assert_eq!(q["prompt"], "consent", "OIDC Core §11 for offline_access");
    assert!(q["state"].len() >= 16);
    let callback = t.oidc.authorize(url, "alice").await;
    let back = query(&callback);
    assert_eq!(back["state"], q["state"]);
    assert_eq!(back["iss"], t.oidc.issuer);
    // The page comes only once the token is stored, and says so.
    let page = reqwest::get(callback).await.unwrap().text().await.unwrap();
    assert!(page.contains("freshd is authorized for oidc"), "{page}");
    assert!(page.contains("You can close this tab"), "{page}");
    let (code, err) = login.finish().await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ssh -L"), "the headless hint: {err}");
    assert!(err.contains("--paste"), "the headless hint: {err}");
    let stored = t.stored().expect("the refresh token is stored");
    let current = t.oidc.current().await;
    assert!(
        current.values().any(|h| *h == sha256(stored.trim())),
        "the stored token is the grant's newest: {current:?}"
    );
    // The metadata is cached, private.
    let cache = t.state_dir().join("oidc.metadata.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // `check` says what it knows and where from; with the server down, the
    // cached copy serves.
    let (code, out, err) = t.cli(&["check"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "token URL: {0}/token (discovered at {0}/.well-known/oauth-authorization-server)",
            t.oidc.issuer
        )),
        "{out}"
    );
    assert!(out.contains("revocation URL: "), "{out}");
    assert!(out.contains("login requires it"), "{out}");
    let mut t = t;
    t.oidc.stop();
    let (code, out, err) = t.cli(&["check"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("(from {}", cache.display())), "{out}");
    assert!(out.contains("the server did not answer now"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_another_issuer_is_refused_and_the_page_says_so() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    t.write_config(&format!(
        "issuer = \"{}\"\nclient_id = \"{PUBLIC_CLIENT}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        t.oidc.issuer
    ));
    let (login, url) = t.start_login().await;
    let mut callback = t.oidc.authorize(url, "alice").await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "http://127.0.0.1:1".to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let page = reqwest::get(callback).await.unwrap().text().await.unwrap();
    assert!(page.contains("freshd is not authorized"), "{page}");
    assert!(page.contains("RFC 9207"), "{page}");
    let (code, err) = login.finish().await;
    assert_eq!(code, 1);
    assert!(err.contains("not from"), "{err}");
    assert!(t.stored().is_none(), "nothing is stored");
}

/// Login, refresh, revocation and logout with each way a client can prove
/// who it is, with a secret holding `+ % :` and a space, at a token URL
/// that ends in `/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_authentication_method_with_a_hard_secret() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    // The server's journal sees only "/token": the run through "/token/"
    // is checked by its outcome alone.
    for (client, secret, method, token_path) in [
        (BASIC_CLIENT, BASIC_SECRET, "client_secret_basic", "/token/"),
        (BASIC_CLIENT, BASIC_SECRET, "client_secret_basic", "/token"),
        (POST_CLIENT, POST_SECRET, "client_secret_post", "/token"),
        (PUBLIC_CLIENT, "", "none", "/token"),
    ] {
        let secret_line = if secret.is_empty() {
            String::new()
        } else {
            format!("client_secret = \"{secret}\"\n")
        };
        t.write_config(&format!(
            "issuer = \"{0}\"\ntoken_url = \"{0}{token_path}\"\nclient_id = \"{client}\"\n{secret_line}token_endpoint_auth_method = \"{method}\"\nscopes = [\"openid\", \"offline_access\"]\n",
            t.oidc.issuer
        ));
        let token = t.login().await;
        // A refresh with the same authentication.
        let (code, _, err) = t
            .cli(&["import-token", ACCOUNT, "--check"], Some(&token))
            .await;
        assert_eq!(code, 0, "{method}: {err}");
        assert!(err.contains("the provider accepted the token"), "{err}");
        let journal = t.oidc.journal().await;
        if token_path == "/token/" {
            assert!(journal.is_empty(), "the journal saw {token_path}");
        } else {
            let last = journal.last().unwrap();
            assert_eq!(
                last.grant_type.as_deref(),
                Some("refresh_token"),
                "{method}"
            );
            assert_eq!(last.client_id.as_deref(), Some(client), "{method}");
            assert!(last.ok(), "{method}: {last:?}");
        }
        for secret in [secret, token.as_str()] {
            assert!(
                secret.is_empty() || !err.contains(secret),
                "a secret was printed"
            );
        }
        // Logout revokes the rotated token and deletes it.
        let rotated = t.stored().unwrap();
        let (code, _, err) = t.cli(&["logout", ACCOUNT], None).await;
        assert_eq!(code, 0, "{method}: {err}");
        assert!(
            err.contains(&format!(
                "revoked the refresh token of oidc at {}/token/revocation",
                t.oidc.issuer
            )),
            "{err}"
        );
        assert!(t.stored().is_none(), "logout deleted the token");
        let (code, _, err) = t
            .cli(&["import-token", ACCOUNT, "--check"], Some(&rotated))
            .await;
        assert_eq!(code, 78, "{method}: a revoked token is refused: {err}");
        assert!(err.contains("invalid_grant"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_send_token_params() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    // oidc-provider checks `resource` (RFC 8707) and knows no resource
    // server, so an answer of invalid_target shows the parameter arrived.
    t.write_config(&format!(
        "issuer = \"{0}\"\nclient_id = \"{BASIC_CLIENT}\"\nclient_secret = \"{BASIC_SECRET}\"\ngrant = \"client_credentials\"\n\n[accounts.plain]\nissuer = \"{0}\"\nclient_id = \"{POST_CLIENT}\"\nclient_secret = \"{POST_SECRET}\"\ntoken_endpoint_auth_method = \"client_secret_post\"\ngrant = \"client_credentials\"\ntoken_params = {{ audience_hint = \"ignored by this server\" }}\n",
        t.oidc.issuer
    ));
    // The account that sends `resource`.
    let text = std::fs::read_to_string(&t.config).unwrap().replace(
        "grant = \"client_credentials\"\n\n",
        "grant = \"client_credentials\"\ntoken_params = { resource = \"https://api.example.com/\" }\n\n",
    );
    std::fs::write(&t.config, text).unwrap();
    let mut daemon = t.start().await;
    daemon.notify_containing("READY=1").await;
    let (code, out, err) = t.cli(&["token", "plain"], None).await;
    assert_eq!(code, 0, "{err}\n{}", daemon.log_text());
    assert!(!out.trim().is_empty());
    let journal = t.oidc.journal().await;
    let cc: Vec<_> = journal
        .iter()
        .filter(|e| e.grant_type.as_deref() == Some("client_credentials"))
        .collect();
    assert!(
        cc.iter()
            .any(|e| e.client_id.as_deref() == Some(POST_CLIENT) && e.ok()),
        "{cc:?}"
    );
    assert!(
        cc.iter()
            .any(|e| e.client_id.as_deref() == Some(BASIC_CLIENT) && e.outcome == "invalid_target"),
        "the resource parameter reached the server: {cc:?}"
    );
    assert_eq!(daemon.stop().await, 0);
}

/// Without `prompt=consent` the server drops `offline_access` (OIDC Core
/// §11) and issues no refresh token: freshd says exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_access_not_granted_is_named() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    t.write_config(&format!(
        "issuer = \"{}\"\nclient_id = \"{PUBLIC_CLIENT}\"\nscopes = [\"openid\", \"offline_access\"]\nauthorize_params = {{ prompt = \"login\" }}\n",
        t.oidc.issuer
    ));
    let (login, url) = t.start_login().await;
    assert_eq!(query(&url)["prompt"], "login", "the config's prompt wins");
    let callback = t.oidc.authorize(url, "alice").await;
    let page = reqwest::get(callback).await.unwrap().text().await.unwrap();
    let (code, err) = login.finish().await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the provider did not grant offline access (it granted the scopes \"openid\""),
        "{err}"
    );
    assert!(page.contains("freshd is not authorized"), "{page}");
    assert!(page.contains("did not grant offline access"), "{page}");
    assert!(t.stored().is_none());
}

/// With `issuer` alone, the daemon starts while the server is down, from
/// the metadata cached by an earlier run, and refreshes once it is back.
///
/// reliability: the OIDC server (found through `issuer`) down when the daemon starts | took the endpoints from the metadata cached in the state directory, said so in the log, backed off, refreshed when the server came back | nothing; no restart
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_starts_from_cached_metadata_while_the_server_is_down() {
    let Some(mut t) = Interop::new("").await else {
        return;
    };
    t.write_config(&format!(
        "issuer = \"{}\"\nclient_id = \"{PUBLIC_CLIENT}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        t.oidc.issuer
    ));
    t.login().await;
    t.oidc.stop();
    let mut daemon = t.start().await;
    daemon.notify_containing("READY=1").await;
    daemon
        .wait_for_log("using the endpoints cached in the state directory")
        .await;
    t.oidc.restart().await;
    // Backoff retries within seconds once the server answers again.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = t.cli(&["token", ACCOUNT], None).await;
        if code == 0 {
            assert!(!out.trim().is_empty());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{err}\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(daemon.stop().await, 0);
}

/// `logout` while the daemon runs: the provider revokes the grant, the
/// store is emptied, and the daemon drops its token at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_deletes_and_tells_the_running_daemon() {
    let Some(t) = Interop::new("").await else {
        return;
    };
    t.write_config(&format!(
        "issuer = \"{}\"\nclient_id = \"{PUBLIC_CLIENT}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        t.oidc.issuer
    ));
    t.login().await;
    let mut daemon = t.start().await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = t.cli(&["token", ACCOUNT], None).await;
    assert_eq!(code, 0, "{err}\n{}", daemon.log_text());
    let (code, _, err) = t.cli(&["logout", ACCOUNT], None).await;
    assert_eq!(code, 0, "{err}\n{}", daemon.log_text());
    assert!(err.contains("revoked the refresh token of oidc"), "{err}");
    assert!(
        err.contains("the running daemon no longer uses a token for oidc"),
        "{err}"
    );
    assert!(t.stored().is_none());
    assert!(t.oidc.current().await.is_empty(), "the grant is revoked");
    let (_, out, _) = t.cli(&["status", "--json"], None).await;
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["accounts"][0]["state"], "no_token", "{out}");
    let (code, _, _) = t.cli(&["token", ACCOUNT], None).await;
    assert_ne!(code, 0, "no token is handed out after logout");
    assert_eq!(daemon.stop().await, 0);
}
