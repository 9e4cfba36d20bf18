//! Helpers for end-to-end tests: the real `freshd` binary, started with a
//! `NOTIFY_SOCKET` of the test's own, against the fake provider on
//! 127.0.0.1:0, in `credentials` mode with a temporary state directory.

#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

pub mod oidc;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use freshd_fake::{FakeOptions, FakeProvider};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

/// Long enough for anything a test waits for on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_freshd")
}

/// A test's directory, fake provider and config.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub fake: FakeProvider,
    pub config: PathBuf,
}

impl Setup {
    /// A fake with `lifetime`-second tokens and a config with one account
    /// `spotify` whose refresh token is in the credentials directory, plus
    /// `extra` TOML appended.
    pub async fn new(lifetime: u64, extra: &str) -> Setup {
        let fake = FakeProvider::start(FakeOptions {
            token_lifetime: Duration::from_secs(lifetime),
            ..FakeOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir_all(&creds).unwrap();
        std::fs::write(
            creds.join("spotify.refresh_token"),
            fake.issue_refresh_token("spotify"),
        )
        .unwrap();
        let config = dir.path().join("config.toml");
        let setup = Setup { dir, fake, config };
        setup.write_config(extra);
        setup
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/control.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes the config with `extra` appended.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            r#"[daemon]
secrets = "credentials"
state_dir = "{state}"
socket = "{socket}"
shutdown_grace = "3s"
timezone = "UTC"

[accounts.spotify]
provider = "spotify"
client_id = "freshd-test-client"
token_url = "{base}/api/token"
api_base_url = "{base}/v1"
refresh_before_expiry = "2s"
{extra}
"#,
            state = self.state_dir().display(),
            socket = self.socket().display(),
            base = self.fake.base_url(),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts `freshd run` at `level`.
    pub async fn start(&self, level: &str) -> Daemon {
        self.start_with(level, &[]).await
    }

    /// Starts `freshd run` at `level` with `env` added.
    pub async fn start_with(&self, level: &str, env: &[(&str, &str)]) -> Daemon {
        let notify_path = self
            .path()
            .join(format!("notify-{}.sock", fastrand::u32(..)));
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let child = Command::new(bin())
            .args(["run", "--log-level", level, "--config"])
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("NOTIFY_SOCKET", &notify_path)
            .env("CREDENTIALS_DIRECTORY", self.path().join("creds"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that dropping the Daemon also ends
            // the programs its jobs started (see `Drop for Daemon`).
            .process_group(0)
            .spawn()
            .unwrap();
        Daemon::new(child, notify)
    }

    /// Runs `freshd ARGS --config …` as a client; returns (exit code, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HOME", self.path())
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A running `freshd run`.
pub struct Daemon {
    pub child: Child,
    pub notify: UnixDatagram,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The process group freshd leads: it and its jobs' programs.
    pub group: u32,
    /// The tasks copying its stdout and stderr into `log`.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    /// `child` (spawned with piped stdout and stderr, leading a process
    /// group of its own), its output copied into `log` line by line.
    pub fn new(mut child: Child, notify: UnixDatagram) -> Daemon {
        let group = child.id().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line);
                }
            }));
        }
        Daemon {
            child,
            notify,
            log,
            group,
            readers,
        }
    }
}

impl Drop for Daemon {
    /// A test that ends (or fails) leaves no freshd and no job program
    /// behind: SIGKILL to the whole group, whether freshd still runs or not
    /// (a `kill -9` in a test orphans the job programs it had started).
    fn drop(&mut self) {
        // Job programs run in process groups of their own (so a timeout
        // stops a whole tree): find them before freshd goes.
        let mut targets = vec![format!("-{}", self.group)];
        for pid in descendants(self.group) {
            targets.push(format!("-{pid}"));
            targets.push(pid.to_string());
        }
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .args(&targets)
            .stderr(Stdio::null())
            .status();
    }
}

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                todo.push(child);
            }
        }
    }
    found
}

impl Daemon {
    /// The next datagram sent to NOTIFY_SOCKET.
    pub async fn next_notify(&self) -> String {
        self.next_notify_within(PATIENCE).await
    }

    /// The next datagram sent to NOTIFY_SOCKET within `patience`.
    pub async fn next_notify_within(&self, patience: Duration) -> String {
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(patience, self.notify.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no notification; log:\n{}", self.log_text()))
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Skips notifications until one contains `needle`; returns it.
    pub async fn notify_containing(&self, needle: &str) -> String {
        loop {
            let msg = self.next_notify().await;
            if msg.contains(needle) {
                return msg;
            }
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.log_text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }

    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("freshd did not exit; log:\n{}", self.log_text()))
            .unwrap();
        // What it wrote before it exited is in the log before this returns
        // (a program it left behind may hold the pipes: not for long).
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        status.code().unwrap_or(-1)
    }
}

/// Says that a test is skipped, and why, on the real stderr: `eprintln!`
/// inside a test is captured, so plain `cargo test` would hide the reason.
/// Under CI (`CI` set) a skip is a failure instead: CI installs everything.
pub fn skip(why: &str) {
    use std::io::Write;
    assert!(std::env::var_os("CI").is_none(), "{why}");
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
