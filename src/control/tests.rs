//! The control socket's server and client, over real sockets.

use super::*;

#[test]
fn connections_leave_descriptors_in_reserve() {
    assert_eq!(connection_cap(64), 16);
    assert_eq!(connection_cap(1024), MAX_CONNECTIONS);
    assert_eq!(connection_cap(20), 4, "a few, whatever the limit");
    assert_eq!(connection_cap(u64::MAX), MAX_CONNECTIONS);
}

#[tokio::test]
async fn a_status_written_in_pieces_is_the_status_answers_line() {
    for (jobs, daemon) in [(0, true), (9, false), (40, true)] {
        let snapshot = crate::status::sample::snapshot(jobs, daemon);
        let whole = answer_line(&Response::Status {
            report: Box::new(snapshot.to_report()),
        });
        for piece in [1, 300, PIECE] {
            let mut written = Vec::new();
            let mut n = 0;
            write_status(&mut written, &snapshot, piece, &mut n)
                .await
                .unwrap();
            assert_eq!(n, written.len());
            assert_eq!(
                String::from_utf8(written.clone()).unwrap(),
                String::from_utf8(whole.clone()).unwrap()
            );
            let back = Response::read_bytes(&written, &Request::Status).unwrap();
            assert_eq!(
                back,
                Response::Status {
                    report: Box::new(snapshot.to_report())
                }
            );
        }
    }
    // Any other answer to a status is read as itself.
    let refused = answer_line(&Response::refused(Refusal::Failed, "busy"));
    assert_eq!(
        Response::read_bytes(&refused, &Request::Status).unwrap(),
        Response::refused(Refusal::Failed, "busy")
    );
}

/// Answers `status` with many jobs and `token` at once; both look at
/// `state` under its lock, as the daemon's handler does.
struct Big {
    state: std::sync::Mutex<crate::status::StatusSnapshot>,
}

impl Handler for Big {
    fn handle(&self, request: Request) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            match request {
                Request::Status => Answer::Status(Box::new(crate::status::StatusSnapshot {
                    accounts: state.accounts.clone(),
                    jobs: state.jobs.clone(),
                    daemon: state.daemon.clone(),
                })),
                _ => Response::Token {
                    token: TokenText(format!("at-{}", state.jobs.len())),
                }
                .into(),
            }
        })
    }
}

/// A socket in a new directory (`control.sock`) answered by [`Big`] with
/// a status of 30,000 jobs; cancel the token to stop it.
async fn serve_big() -> (tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().unwrap();
    let mut state = crate::status::sample::snapshot(3, true);
    state.jobs = state.jobs.iter().cycle().take(30_000).cloned().collect();
    let handler = Arc::new(Big {
        state: std::sync::Mutex::new(state),
    });
    let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
    tracker.spawn(serve(
        bind(&dir.path().join("control.sock")).await.unwrap(),
        handler,
        cancel.clone(),
        tracker.clone(),
    ));
    (dir, cancel)
}

/// On the daemon's kind of runtime (one thread): a client that asks for
/// a status of megabytes and never reads it holds no lock and no
/// thread; others get their tokens and statuses meanwhile.
#[tokio::test]
async fn a_status_client_that_does_not_read_blocks_no_one() {
    let (dir, cancel) = serve_big().await;
    let path = dir.path().join("control.sock");

    let mut stuck = UnixStream::connect(&path).await.unwrap();
    stuck
        .write_all(b"{\"command\":\"status\"}\n")
        .await
        .unwrap();
    // Long enough for the daemon to fill the socket's buffers and wait.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let within = Duration::from_secs(5);
    let token = Request::Token {
        account: "a".into(),
    };
    let answer = tokio::time::timeout(within, ask(&path, &token)).await;
    assert!(
        matches!(&answer, Ok(Ok(Response::Token { token })) if token.0 == "at-30000"),
        "{answer:?}"
    );
    let answer = tokio::time::timeout(within, ask(&path, &Request::Status)).await;
    match answer {
        Ok(Ok(Response::Status { report })) => assert_eq!(report.jobs.len(), 30_000),
        other => panic!("{other:?}"),
    }

    // The stuck client still gets all of its answer when it reads.
    let mut rest = Vec::new();
    tokio::time::timeout(within, stuck.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.len() > 1 << 20, "{} bytes", rest.len());
    assert_eq!(rest.last(), Some(&b'\n'));
    cancel.cancel();
}

/// The client would have given up by then: its connection and the
/// snapshot are let go.
#[tokio::test(start_paused = true)]
async fn a_status_not_read_within_the_answer_timeout_is_dropped() {
    let (dir, cancel) = serve_big().await;
    let path = dir.path().join("control.sock");
    let mut stuck = UnixStream::connect(&path).await.unwrap();
    stuck
        .write_all(b"{\"command\":\"status\"}\n")
        .await
        .unwrap();
    tokio::time::sleep(ANSWER_TIMEOUT + Duration::from_secs(1)).await;
    let mut rest = Vec::new();
    stuck.read_to_end(&mut rest).await.unwrap();
    assert!(rest.len() < 1 << 20, "{} bytes: all of it", rest.len());
    assert_ne!(rest.last(), Some(&b'\n'));
    cancel.cancel();
}

/// A "daemon" at `path` that reads the request line, writes `write` to
/// the client, then closes (or, with `endless`, writes it forever).
async fn fake_daemon(path: &Path, write: Vec<u8>, endless: bool) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut out) = stream.into_split();
        let mut line = String::new();
        let _ = BufReader::new(read).read_line(&mut line).await;
        loop {
            if out.write_all(&write).await.is_err() || !endless {
                return;
            }
        }
    })
}

/// A daemon gone wrong that never ends its line: the client stops at its
/// limit with a clear error instead of taking all memory.
#[tokio::test]
async fn an_answer_line_without_end_is_refused_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let status = br#"{"answer":"status","report":{"accounts":[{"name":"x"#;
    let mut garbage = status.to_vec();
    garbage.resize(64 * 1024, b'x');
    let server = fake_daemon(&path, garbage, true).await;
    let mut stream = UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"{\"command\":\"status\"}\n")
        .await
        .unwrap();
    let limit = 4 * 1024 * 1024;
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        read_answer(&mut stream, &path, &Request::Status, limit),
    )
    .await
    .unwrap();
    match answer {
        Err(ClientError::BadAnswer { detail, .. }) => {
            assert!(detail.contains("longer than 4 MiB"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    drop(stream);
    server.abort();
}

/// Cut, garbled and foreign answers are errors that say so, never a
/// panic or a short report.
#[tokio::test]
async fn broken_answers_are_clear_errors() {
    let snapshot = crate::status::sample::snapshot(40, true);
    let whole = answer_line(&Response::Status {
        report: Box::new(snapshot.to_report()),
    });
    let cut = whole[..whole.len() / 2].to_vec();
    let no_newline = whole[..whole.len() - 1].to_vec();
    for (i, (written, ok)) in [
        (cut, false),
        (no_newline, true),
        (b"\n".to_vec(), false),
        (b"[1,2,3]\n".to_vec(), false),
        (b"{\"answer\":\"status\",\"report\":[]}\n".to_vec(), false),
        (vec![0xff, 0xfe, b'\n'], false),
        (
            b"{\"ok\":false,\"error\":\"old\",\"exit_code\":69}\n".to_vec(),
            true,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let server = fake_daemon(&path, written, false).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), ask(&path, &Request::Status))
            .await
            .unwrap();
        match answer {
            Ok(_) if ok => {}
            Err(ClientError::BadAnswer { detail, .. }) if !ok => {
                assert!(!detail.is_empty(), "case {i}");
            }
            other => panic!("case {i}: {other:?}"),
        }
        server.await.unwrap();
    }
}
