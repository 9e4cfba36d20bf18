//! Hostile files, processes and sizes (issue 12), through the real binary:
//! full disks (a small tmpfs), symbolic links, FIFOs, huge answers and
//! outputs, process trees, a low file limit and a flood of connections.
//!
//! Each scenario's `/// reliability:` line (what was injected | what freshd
//! did | what was lost) is a row of docs/reliability.md. Some need root
//! (mounting a tmpfs); `.ci/run` runs as root.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, PATIENCE, Setup};
use freshd::jobs::now_playing::HistoryLine;
use freshd_fake::web::Player;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixStream};
use tokio::time::{Instant, timeout};

/// A job that only runs on request.
fn job(name: &str, body: &str) -> String {
    format!("\n[jobs.{name}]\naccount = \"spotify\"\nschedule = \"0 0 1 1 *\"\n{body}\n")
}

/// A `now_playing` job: it polls once at start, then every hour or on
/// request.
fn np_job(name: &str, body: &str) -> String {
    format!(
        "\n[jobs.{name}]\naccount = \"spotify\"\nevery = \"1h\"\ntype = \"now_playing\"\n{body}\n"
    )
}

/// Waits until `n` polls of what plays reached the fake (the start-up
/// polls of `now_playing` jobs), and a moment more for them to finish.
async fn wait_polls(setup: &Setup, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    let polls = || {
        setup
            .fake
            .web()
            .log
            .iter()
            .filter(|(_, p)| p.contains("currently-playing"))
            .count()
    };
    while polls() < n {
        assert!(Instant::now() < deadline, "no start-up poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// `freshd ARGS` as a client, failing the test if it takes over 20 s (a
/// frozen daemon).
async fn cli(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    timeout(Duration::from_secs(20), setup.cli(args))
        .await
        .unwrap_or_else(|_| panic!("freshd {args:?} did not answer within 20 s"))
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_gone(pid: i32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while !gone(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) still runs after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pid a job's program wrote to `file` in the state directory.
async fn pid_in(setup: &Setup, file: &str) -> i32 {
    let path = setup.state_dir().join(file);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no {}", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Peak resident memory of `pid`, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An HTTP server on 127.0.0.1 that answers every request 200 with `head`
/// followed by `size` bytes of `fill`, streamed without a length.
/// A server that answers 503 to the first `failures` requests and `ok` after;
/// the counter says how many requests it saw.
async fn flaky_server(failures: usize) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = {
                    let mut c = count.lock().unwrap();
                    *c += 1;
                    *c
                };
                let answer = if n <= failures {
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                };
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn huge_server(head: &'static str, size: usize, fill: u8) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                if sock.write_all(start.as_bytes()).await.is_err()
                    || sock.write_all(head.as_bytes()).await.is_err()
                {
                    return;
                }
                let chunk = vec![fill; 64 * 1024];
                let mut sent = 0;
                while sent < size {
                    if sock.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    format!("http://{addr}")
}

/// `freshd run` under `ulimit -n nofile` (soft and hard).
async fn start_limited(setup: &Setup, nofile: u32) -> Daemon {
    let notify_path = setup.path().join("notify-limited.sock");
    let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
    let child = tokio::process::Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n {nofile} && exec \"$0\" run --log-level info --config \"$1\""),
            common::bin(),
        ])
        .arg(&setup.config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", setup.path())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("CREDENTIALS_DIRECTORY", setup.path().join("creds"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .unwrap();
    Daemon::new(child, notify)
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs (this test needs root)");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn history_lines(text: &str) -> Vec<HistoryLine> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {text:?}")))
        .collect()
}

/// reliability: the disk holding the `now_playing` history fills up (16 KiB tmpfs) so that a line is written only in part | the partial line was cut off again, the run failed once with the path, the item was not retried every poll, the next item after space came back was recorded | the one item that played while the disk was full; the history stayed valid JSONL
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_a_full_disk_stays_whole_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(dir.path().join("small"), "16k");
    let history = mnt.0.join("np.jsonl");
    // A history whose end is 40 bytes short of a page: the next line
    // crosses into a page the full disk does not have.
    let mut pad = HistoryLine {
        played_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        uri: "spotify:track:0000000000000000000pad".into(),
        kind: "track".into(),
        name: String::new(),
        artists: vec!["Pad".into()],
        album: None,
        duration_ms: 1,
    };
    let base = serde_json::to_string(&pad).unwrap().len() + 1;
    pad.name = "x".repeat(4096 - 40 - base);
    let first = format!("{}\n", serde_json::to_string(&pad).unwrap());
    assert_eq!(first.len(), 4056);
    std::fs::write(&history, &first).unwrap();
    std::fs::set_permissions(&history, std::fs::Permissions::from_mode(0o600)).unwrap();
    let filler = mnt.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0; 1024]).is_ok() {}
    }

    let config = np_job("np", &format!("history = \"{}\"", history.display()));
    let setup = Setup::new(3600, &config).await;
    setup.fake.web().player = Player::Idle;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    wait_polls(&setup, 1).await;
    setup.fake.web().player = Player::Track {
        index: 0,
        progress_ms: 5000,
        playing: true,
    };
    let (code, _, err) = cli(&setup, &["run-job", "np"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot append") && err.contains("np.jsonl"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        first,
        "the partial line was cut off"
    );
    for _ in 0..3 {
        assert_eq!(cli(&setup, &["run-job", "np"]).await.0, 0, "same item");
    }
    assert_eq!(
        daemon.log_text().matches("cannot append").count(),
        1,
        "logged once for the item, not at every poll:\n{}",
        daemon.log_text()
    );

    std::fs::remove_file(&filler).unwrap();
    setup.fake.web().player = Player::Track {
        index: 1,
        progress_ms: 5000,
        playing: true,
    };
    assert_eq!(cli(&setup, &["run-job", "np"]).await.0, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    let lines = history_lines(&std::fs::read_to_string(&history).unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], pad);
    assert_ne!(lines[1].uri, pad.uri);
}

/// reliability: the `now_playing` history and an http job's `output` are symbolic links to another file; a history with mode 0644 | both runs refused with a message naming the path, the link's target untouched; the 0644 history was brought to 0600 | nothing; those two runs wrote nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_never_followed_and_wide_modes_are_narrowed() {
    let config = [
        np_job("np", "history = \"np.jsonl\""),
        np_job("wide", "history = \"wide.jsonl\""),
        job(
            "out",
            "type = \"http\"\npath = \"/me\"\noutput = \"me.json\"",
        ),
    ]
    .concat();
    let setup = Setup::new(3600, &config).await;
    let state = setup.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let victim = setup.path().join("victim");
    std::fs::write(&victim, "not freshd's\n").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("np.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("me.json")).unwrap();
    std::fs::write(state.join("wide.jsonl"), "").unwrap();
    std::fs::set_permissions(
        state.join("wide.jsonl"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    setup.fake.web().player = Player::Idle;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    wait_polls(&setup, 2).await;
    setup.fake.web().player = Player::Track {
        index: 0,
        progress_ms: 5000,
        playing: true,
    };
    for (name, file) in [("np", "np.jsonl"), ("out", "me.json")] {
        let (code, _, err) = cli(&setup, &["run-job", name]).await;
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains(file) && err.contains("is a symbolic link"),
            "{name}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not freshd's\n");
    assert!(
        std::fs::symlink_metadata(state.join("me.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(cli(&setup, &["run-job", "wide"]).await.0, 0);
    let mode = std::fs::metadata(state.join("wide.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: `[daemon] socket` names an existing regular file, then a dangling symbolic link | start refused, naming the path and what is there; the file and the link left as they were (a stale socket is still replaced) | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_path_never_deletes_a_file() {
    let setup = Setup::new(3600, "").await;
    let socket = setup.socket();
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::write(&socket, "precious").unwrap();
    let mut daemon = setup.start("info").await;
    assert_ne!(daemon.exit_code().await, 0);
    let log = daemon.log_text();
    assert!(
        log.contains(&socket.display().to_string()) && log.contains("a regular file"),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");

    std::fs::remove_file(&socket).unwrap();
    std::os::unix::fs::symlink(setup.path().join("nowhere"), &socket).unwrap();
    let mut daemon = setup.start("info").await;
    assert_ne!(daemon.exit_code().await, 0);
    let log = daemon.log_text();
    assert!(log.contains("a symbolic link"), "{log}");
    assert!(!log.contains("Address already in use"), "{log}");
    assert!(
        std::fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A stale socket (nothing answers on it) is replaced.
    std::fs::remove_file(&socket).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    assert_eq!(cli(&setup, &["status"]).await.0, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a FIFO as the `now_playing` history, as an http job's `output` and as a playlist source `file`, with nothing on the other end | each run refused at once naming the FIFO; `status`, refreshes and SIGTERM kept working | nothing; those runs did nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_never_freeze_the_daemon() {
    let config = [
        np_job("np", "history = \"np.fifo\""),
        job("out", "type = \"http\"\npath = \"/me\"\noutput = \"out.fifo\""),
        job(
            "list",
            "type = \"playlist\"\nplaylist = \"From a FIFO\"\nsource = { kind = \"uris\", file = \"list.fifo\" }",
        ),
    ]
    .concat();
    let setup = Setup::new(3600, &config).await;
    let state = setup.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    for f in ["np.fifo", "out.fifo", "list.fifo"] {
        mkfifo(&state.join(f));
    }
    setup.fake.web().player = Player::Idle;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    wait_polls(&setup, 1).await;
    setup.fake.web().player = Player::Track {
        index: 0,
        progress_ms: 5000,
        playing: true,
    };
    for (name, file) in [
        ("np", "np.fifo"),
        ("out", "out.fifo"),
        ("list", "list.fifo"),
    ] {
        let (code, _, err) = cli(&setup, &["run-job", name]).await;
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains(file) && err.contains("a FIFO"),
            "{name}: {err}"
        );
        assert_eq!(cli(&setup, &["status"]).await.0, 0);
    }
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: the config is a FIFO with no writer, `/dev/zero`, or a directory, for `freshd check` and `freshd run` | refused at once with exit 78 and a message naming the file and what it is | nothing; nothing started
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_configs_fail_fast_with_78() {
    let setup = Setup::new(3600, "").await;
    let fifo = setup.path().join("config.fifo");
    mkfifo(&fifo);
    let dir = setup.path().join("config.d");
    std::fs::create_dir_all(&dir).unwrap();
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.as_path(), "a directory"),
    ] {
        let started = Instant::now();
        let out = timeout(
            Duration::from_secs(20),
            tokio::process::Command::new(common::bin())
                .arg("check")
                .arg("--config")
                .arg(path)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("check on {} hangs", path.display()))
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{}: {err}", path.display());
        assert!(
            err.contains(&path.display().to_string()) && err.contains(what),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    std::fs::remove_file(&setup.config).unwrap();
    mkfifo(&setup.config);
    let mut daemon = setup.start("info").await;
    assert_eq!(daemon.exit_code().await, 78);
    assert!(
        daemon.log_text().contains("a FIFO"),
        "{}",
        daemon.log_text()
    );
}

/// reliability: an http job's server answers a GET with 503 twice | the job tried again (three tries in all, a second then two apart) and the run succeeded | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_get_is_retried_on_503() {
    let (server, seen) = flaky_server(2).await;
    let config = job(
        "flaky",
        &format!("type = \"http\"\nurl = \"{server}/x\"\noutput = \"flaky.out\""),
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = cli(&setup, &["run-job", "flaky"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(*seen.lock().unwrap(), 3);
    assert_eq!(
        std::fs::read_to_string(setup.state_dir().join("flaky.out")).unwrap(),
        "ok"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: an http job's server sends a 32 MiB body to a job with `max_size = "1MiB"` | the body was streamed and the run failed past 1 MiB with a message naming `max_size`; `output` kept its old content, no temporary file left | that run's body
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_past_max_size_fails_and_keeps_the_output() {
    let server = huge_server("", 32 << 20, b'x').await;
    let config = job(
        "big",
        &format!(
            "type = \"http\"\nurl = \"{server}/big\"\noutput = \"big.out\"\nmax_size = \"1MiB\""
        ),
    );
    let setup = Setup::new(3600, &config).await;
    let state = setup.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("big.out"), "old").unwrap();
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = cli(&setup, &["run-job", "big"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("larger than max_size (1 MiB)"), "{err}");
    assert_eq!(
        std::fs::read_to_string(state.join("big.out")).unwrap(),
        "old"
    );
    let left: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(peak_rss_kib(daemon.pid()) < 64 * 1024);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: the Web API answers `currently-playing` with 64 MiB of JSON | read up to its 8 MiB limit, the run failed naming the limit; the daemon's memory stayed small | that run
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_api_answers_are_capped() {
    let server = huge_server("{\"item\":null,\"pad\":\"", 64 << 20, b'x').await;
    let setup = Setup::new(3600, "").await;
    std::fs::write(
        setup.path().join("creds/big.refresh_token"),
        setup.fake.issue_refresh_token("big"),
    )
    .unwrap();
    let extra = format!(
        "\n[accounts.big]\ntoken_url = \"{}/api/token\"\napi_base_url = \"{server}/v1\"\nclient_id = \"freshd-test-client\"\n\n[jobs.np]\naccount = \"big\"\nevery = \"1h\"\ntype = \"now_playing\"\n",
        setup.fake.base_url()
    );
    setup.write_config(&extra);
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = cli(&setup, &["run-job", "np"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("larger than 8 MiB"), "{err}");
    assert!(peak_rss_kib(daemon.pid()) < 64 * 1024);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a command job prints one 256 MiB line; a source command prints 16 MiB | the line was logged cut to 4 KiB, never held whole (peak memory stayed small); the source run failed past its 4 MiB limit | the rest of the line (not logged) and that playlist run
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_output_is_bounded() {
    let config = [
        job(
            "loud",
            "type = \"command\"\ncommand = [\"sh\", \"-c\", \"head -c 268435456 /dev/zero | tr '\\\\0' x\"]",
        ),
        job(
            "list",
            "type = \"playlist\"\nplaylist = \"Loud\"\nsource = { kind = \"uris\", command = [\"sh\", \"-c\", \"head -c 16777216 /dev/zero | tr '\\\\0' x\"] }",
        ),
    ]
    .concat();
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = cli(&setup, &["run-job", "loud"]).await;
    assert_eq!(code, 0, "{err}");
    let peak = peak_rss_kib(daemon.pid());
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    let (code, _, err) = cli(&setup, &["run-job", "list"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("printed more than 4194304 bytes"), "{err}");
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a command job's program starts a grandchild (`sleep 300 &`) and hangs past the job's 2 s timeout | the whole process group got SIGTERM at the timeout; the grandchild was gone within seconds | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_whole_process_tree() {
    let config = job(
        "tree",
        "type = \"command\"\ntimeout = \"2s\"\ncommand = [\"sh\", \"-c\", \"sleep 300 & echo $! > gc.pid; sleep 300\"]",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let (code, _, err) = cli(&setup, &["run-job", "tree"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timeout"), "{err}");
    let grandchild = pid_in(&setup, "gc.pid").await;
    wait_gone(grandchild, Duration::from_secs(10), "the grandchild").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: a command job's program exits at once but leaves a grandchild holding its stdout (`sleep 300 & echo started`), with a 60 s timeout | the run ended ok when the program exited, not at the timeout; what it left in its process group was stopped | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grandchild_holding_stdout_does_not_keep_the_job_running() {
    let config = job(
        "bg",
        "type = \"command\"\ntimeout = \"60s\"\ncommand = [\"sh\", \"-c\", \"sleep 300 & echo $! > gc.pid; echo started\"]",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let started = Instant::now();
    let (code, _, err) = cli(&setup, &["run-job", "bg"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let grandchild = pid_in(&setup, "gc.pid").await;
    wait_gone(grandchild, Duration::from_secs(10), "the grandchild").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: SIGTERM while a command job runs a process tree that ignores SIGTERM (`trap '' TERM; sleep 300 &`) | after the 3 s shutdown grace the group got SIGTERM, then SIGKILL 3 s later; freshd exited 0 and nothing of the tree was left | that run
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_process_trees_that_ignore_sigterm() {
    let config = job(
        "stubborn",
        "type = \"command\"\ntimeout = \"300s\"\ncommand = [\"sh\", \"-c\", \"trap '' TERM; sleep 300 & echo $! > gc.pid; wait\"]",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let client = tokio::spawn({
        let config = setup.config.clone();
        async move {
            tokio::process::Command::new(common::bin())
                .args(["run-job", "stubborn", "--config"])
                .arg(config)
                .output()
                .await
        }
    });
    let grandchild = pid_in(&setup, "gc.pid").await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
    wait_gone(grandchild, Duration::from_secs(5), "the grandchild").await;
    let _ = client.await;
}

/// reliability: `ulimit -n 64` and 100 idle connections to the control socket while 3-second tokens rotate | connections past the cap were refused at once with "busy"; rotations went on being stored; `status` answered once the flood ended | nothing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_rotations() {
    let setup = Setup::new(3, "").await;
    let mut daemon = start_limited(&setup, 64).await;
    daemon.notify_containing("READY=1").await;
    let rotations = |d: &Daemon| {
        d.log_text()
            .matches("stored the rotated refresh token")
            .count()
    };
    let before = rotations(&daemon);
    let mut conns = Vec::new();
    for _ in 0..100 {
        conns.push(UnixStream::connect(setup.socket()).await.unwrap());
    }
    let mut busy = String::new();
    let last = conns.last_mut().unwrap();
    timeout(
        Duration::from_secs(3),
        BufReader::new(last).read_line(&mut busy),
    )
    .await
    .expect("an extra connection is answered at once")
    .unwrap();
    assert!(busy.contains("busy"), "{busy}");
    let deadline = Instant::now() + Duration::from_millis(4800);
    while rotations(&daemon) < before + 2 {
        assert!(
            Instant::now() < deadline,
            "rotations stopped during the flood:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(conns);
    assert!(
        !daemon.log_text().contains("Too many open files"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(cli(&setup, &["status"]).await.0, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

/// reliability: 20 `run-job` requests whose clients hung up at once, for a job that takes 1 s | only a run already handed to the job ran (at most 1); the rest were dropped | nothing; no runs nobody waits for
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_whose_client_hung_up_does_not_run() {
    let config = job(
        "slow",
        "type = \"command\"\ncommand = [\"sh\", \"-c\", \"echo run >> runs.txt; sleep 1\"]",
    );
    let setup = Setup::new(3600, &config).await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    for _ in 0..20 {
        let mut s = UnixStream::connect(setup.socket()).await.unwrap();
        s.write_all(b"{\"command\":\"run_job\",\"job\":\"slow\"}\n")
            .await
            .unwrap();
        drop(s);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = || {
        std::fs::read_to_string(setup.state_dir().join("runs.txt"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let dropped = runs();
    assert!(dropped <= 1, "{dropped} runs for clients that hung up");
    assert_eq!(cli(&setup, &["run-job", "slow"]).await.0, 0);
    assert_eq!(runs(), dropped + 1);
    // A client that only shut down its writing side still waits: it runs.
    let mut s = UnixStream::connect(setup.socket()).await.unwrap();
    s.write_all(b"{\"command\":\"run_job\",\"job\":\"slow\"}\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    timeout(PATIENCE, s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.contains("\"answer\":\"job_finished\"") && answer.contains("\"result\":\"ok\""),
        "{answer}"
    );
    assert_eq!(runs(), dropped + 2);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}
