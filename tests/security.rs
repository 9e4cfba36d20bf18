//! Hostile input at the edges: config files that are cut short, binary or
//! huge, and a control socket that gets garbage, oversized or silent
//! clients, or a client of another user.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::Setup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

async fn check(setup: &Setup, bytes: &[u8]) -> (i32, String) {
    std::fs::write(&setup.config, bytes).unwrap();
    let (code, _, err) = setup.cli(&["check"]).await;
    assert!(!err.contains("panicked"), "{err}");
    (code, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_on_truncated_binary_and_huge_files() {
    let setup = Setup::new(3600, "").await;
    let example = include_bytes!("../config/freshd.toml");
    for cut in (0..example.len()).step_by(97) {
        let (code, err) = check(&setup, &example[..cut]).await;
        assert!(code == 0 || code == 78, "cut at {cut}: exit {code}: {err}");
        if code == 78 {
            assert!(
                err.contains("config.toml:"),
                "cut at {cut}: no location: {err}"
            );
        }
    }
    let noise: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
    let (code, err) = check(&setup, &noise).await;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("not UTF-8") || err.contains("config.toml:"),
        "{err}"
    );
    let huge = "# padding\n".repeat(1_700_000);
    let (code, err) = check(&setup, huge.as_bytes()).await;
    assert_eq!(code, 78);
    assert!(err.contains("a config is at most 16777216 bytes"), "{err}");
}

async fn raw_request(path: &std::path::Path, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(path).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_private_and_survives_garbage() {
    let setup = Setup::new(3600, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let socket = setup.socket();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    // A client that says nothing does not hold up others.
    let _silent = UnixStream::connect(&socket).await.unwrap();
    assert_eq!(setup.cli(&["status"]).await.0, 0);

    let answer = raw_request(&socket, b"\x00\xff garbage {{{\n").await;
    assert!(
        answer.contains("\"answer\":\"refused\"") && answer.contains("request"),
        "{answer}"
    );
    let answer = raw_request(&socket, b"{\"command\":\"token\",\"account\":5}\n").await;
    assert!(answer.contains("\"answer\":\"refused\""), "{answer}");
    let big = vec![b'x'; 200 * 1024];
    let answer = raw_request(&socket, &big).await;
    assert!(answer.contains("request too long"), "{answer}");
    assert_eq!(setup.cli(&["status"]).await.0, 0, "still answering");

    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused_even_if_the_socket_were_open_to_all() {
    if !is_root() || !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: needs root (to act as another user) and /usr/bin/python3");
        return;
    }
    let setup = Setup::new(3600, "").await;
    let mut daemon = setup.start("info").await;
    daemon.notify_containing("READY=1").await;
    let socket = setup.socket();
    // Undo every layer but the peer check, as a careless admin might.
    for dir in [setup.path(), socket.parent().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})\ntry:\n    s.sendall(b'{{\"command\":\"token\",\"account\":\"spotify\"}}\\n')\n    print(repr(s.recv(65536)))\nexcept ConnectionError:\n    print('refused')",
        socket.to_str().unwrap()
    );
    let out = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(printed.trim(), "b''" | "refused"),
        "another user got an answer: {printed}"
    );
    daemon
        .wait_for_log("refused a connection from uid Some(65534)")
        .await;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, 0);
}
