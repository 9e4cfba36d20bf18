//! The control socket that `freshd status`, `token`, `run-job` and `reload`
//! talk to: one JSON request line, one JSON answer line, then the
//! connection closes.
//!
//! Invariants: the socket is mode 0600 in a directory freshd made 0700,
//! and binding it never deletes anything but a stale socket; a peer whose
//! uid is neither ours nor root's is refused before anything is read; a
//! request longer than [`MAX_REQUEST`] or slower than [`READ_TIMEOUT`] is
//! refused; at most [`connection_cap`] connections are served at once, so
//! idle clients cannot take the file descriptors a rotation needs; a
//! request whose client hung up is dropped. The only secret that crosses it is the
//! access token `freshd token` asked for.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::paths::socket_path;
use crate::status::StatusSnapshot;

mod answer;
mod protocol;
pub use protocol::{Adoption, Refusal, Request, Response, TokenText};

/// The longest request line; real ones are under 200 bytes.
const MAX_REQUEST: u64 = 64 * 1024;
/// The most of an oversized request read (and dropped) before answering,
/// and the longest time spent on it.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers requests; implemented by the daemon.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>>;
}

/// What the daemon answers: a [`Response`], or a `status` to be written
/// from its snapshot piece by piece (the same JSON as its
/// [`Response::Status`]).
#[derive(Debug)]
pub enum Answer {
    Response(Response),
    Status(Box<StatusSnapshot>),
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer::Response(response)
    }
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another freshd is already answering on {0}; stop it first (systemctl --user stop freshd)"
    )]
    InUse(PathBuf),
    #[error(
        "the control socket path {path} is taken by {what}; freshd removes only a stale socket there, so remove it yourself or set [daemon] socket to another path"
    )]
    NotASocket { path: PathBuf, what: &'static str },
    #[error("cannot create the control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the socket at `path` (0600, parent 0700). Only a stale socket (one
/// that nothing answers on) is removed first; anything else at `path` (a
/// file, a link, a directory) is refused and left alone.
pub async fn bind(path: &Path) -> Result<UnixListener, BindError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let io = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::fsutil::ensure_private_dir(dir).map_err(io)?;
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(BindError::NotASocket {
                path: path.to_owned(),
                what: crate::fsutil::kind_of(m.file_type()),
            });
        }
        Ok(_) => match UnixStream::connect(path).await {
            Ok(_) => return Err(BindError::InUse(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!("removing the stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        },
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// The most connections served at once, whatever the file limit.
const MAX_CONNECTIONS: usize = 64;
/// File descriptors kept free of connections: for the secret store (a
/// rotation must always be stored), jobs' programs and files, HTTP.
const FD_RESERVE: u64 = 32;

/// How many connections may be open at once under a file limit of
/// `nofile`: half of what the reserve leaves, between 4 and
/// [`MAX_CONNECTIONS`].
pub fn connection_cap(nofile: u64) -> usize {
    let spare = nofile.saturating_sub(FD_RESERVE) / 2;
    usize::try_from(spare)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(4, MAX_CONNECTIONS)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as systemd advises
/// daemons to do) and returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit.current = limit.maximum;
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Serves connections until `cancel`; each one in its own task, at most
/// [`connection_cap`] at once: one more is answered "busy" at once and
/// closed.
pub async fn serve(
    listener: UnixListener,
    handler: Arc<dyn Handler>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let me = own_uid();
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let cap = connection_cap(nofile);
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("control socket: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = stream.peer_cred().map(|c| c.uid()).ok();
        if !peer.is_some_and(|uid| uid == me || uid == 0) {
            tracing::warn!("control socket: refused a connection from uid {peer:?}");
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse_busy(&stream, cap);
            continue;
        };
        let handler = Arc::clone(&handler);
        tracker.spawn(async move {
            if let Err(e) = connection(stream, handler.as_ref()).await {
                tracing::debug!("control socket: {e}");
            }
            drop(slot);
        });
    }
}

/// Answers a connection over the cap without waiting for it: one line, if
/// the socket takes it now, then close.
fn refuse_busy(stream: &UnixStream, cap: usize) {
    // Logged for the first refusal and every 100th: a flood must not
    // flood the journal too.
    static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if n % 100 == 1 {
        tracing::warn!(
            "control socket: {cap} connections are open already; refused one more ({n} so far)"
        );
    }
    let answer = Response::refused(
        Refusal::Failed,
        format!(
            "freshd is busy: {cap} control connections are open already (the most it serves at once); try again"
        ),
    );
    let line = answer_line(&answer);
    let _ = stream.try_write(&line);
}

/// This process's effective uid: peers must match it (or be root).
#[expect(unsafe_code, reason = "geteuid has no safe wrapper in std")]
fn own_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

async fn connection(stream: UnixStream, handler: &dyn Handler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST + 1));
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await;
    let answer: Answer = match read {
        Err(_) => Response::refused(Refusal::Usage, "no request within 5 s").into(),
        Ok(Err(e)) => Response::refused(Refusal::Usage, format!("unreadable request: {e}")).into(),
        Ok(Ok(_)) if line.len() as u64 > MAX_REQUEST => {
            Response::refused(Refusal::Usage, "request too long").into()
        }
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(request) => {
                let peer = reader.get_ref().get_ref();
                tokio::select! {
                    answer = handler.handle(request) => answer,
                    () = hung_up(peer) => {
                        tracing::debug!("control socket: the client hung up before the answer; its request is dropped");
                        return Ok(());
                    }
                }
            }
            Err(e) => {
                Response::refused(Refusal::Usage, format!("not a request freshd knows: {e}")).into()
            }
        },
    };
    if line.len() as u64 > MAX_REQUEST {
        // Read (a bounded amount of) the rest, so that closing with unread
        // input does not reset the connection before the client reads why.
        let mut rest = reader.into_inner().into_inner().take(DRAIN_LIMIT);
        let _ = tokio::time::timeout(
            DRAIN_TIME,
            tokio::io::copy(&mut rest, &mut tokio::io::sink()),
        )
        .await;
    }
    write_answer(&mut write, answer).await?;
    write.shutdown().await
}

/// Writes `answer`, then hands the memory a large one took back to the
/// system (also after a failed write: it took the memory all the same).
async fn write_answer(write: &mut OwnedWriteHalf, answer: Answer) -> std::io::Result<()> {
    let mut size = 0;
    let written = match answer {
        Answer::Response(response) => {
            let out = answer_line(&response);
            drop(response);
            size = out.len();
            write.write_all(&out).await
        }
        // A client gives up after ANSWER_TIMEOUT: one that has not read its
        // status by then no longer holds a connection and the snapshot.
        Answer::Status(snapshot) => tokio::time::timeout(
            ANSWER_TIMEOUT,
            write_status(write, &snapshot, PIECE, &mut size),
        )
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read its status",
            ))
        }),
    };
    if size >= LARGE_ANSWER {
        crate::systemd::release_free_memory();
    }
    written
}

/// How much of a `status` is written at a time: enough that the writes
/// cost little, small enough that the client reads one piece while the
/// next is made, and that other tasks run in between.
const PIECE: usize = 64 * 1024;

/// Writes `snapshot` as the JSON line of its [`Response::Status`], in
/// pieces of about `piece` bytes, letting other tasks run between pieces;
/// counts the bytes made in `made`. No lock is held: a client that reads
/// slowly (or not at all) stalls only its own connection.
async fn write_status<W>(
    out: &mut W,
    snapshot: &StatusSnapshot,
    piece: usize,
    made: &mut usize,
) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(piece + 4096);
    buf.extend_from_slice(br#"{"answer":"status","report":"#);
    let mut pieces = snapshot.json_pieces(piece);
    loop {
        let done = pieces.fill(&mut buf).map_err(std::io::Error::from)?;
        if done {
            buf.extend_from_slice(b"}\n");
        }
        *made += buf.len();
        out.write_all(&buf).await?;
        buf.clear();
        if done {
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
}

/// `answer` as one JSON line.
fn answer_line(answer: &Response) -> Vec<u8> {
    // Written once into room for all of it: a status of a hundred thousand
    // jobs (16 MB) must not be copied over and over as the buffer grows.
    let mut line = Vec::with_capacity(answer_size(answer));
    if serde_json::to_writer(&mut line, answer).is_err() {
        line.clear();
        line.extend_from_slice(
            br#"{"answer":"refused","refusal":"failed","error":"the answer could not be written"}"#,
        );
    }
    line.push(b'\n');
    line
}

/// About how long `answer` is as JSON (a little more, for a status).
fn answer_size(answer: &Response) -> usize {
    match answer {
        Response::Status { report } => 1024 + 192 * report.jobs.len() + 512 * report.accounts.len(),
        _ => 256,
    }
}

/// Answers at least this long are followed by handing the memory they took
/// back to the system: a `status` of a hundred thousand jobs takes tens of
/// megabytes for a moment.
const LARGE_ANSWER: usize = 1024 * 1024;

/// Returns when the client closed its end of the connection (all of it:
/// a client that only shut down writing still waits for its answer).
/// Dropping the request then means a `run-job` that has not started yet
/// does not start.
async fn hung_up(peer: &tokio::net::unix::OwnedReadHalf) {
    use tokio::io::Interest;
    let mut scratch = [0; 256];
    loop {
        if peer.ready(Interest::READABLE).await.is_err() {
            return;
        }
        match peer.try_read(&mut scratch) {
            // More after the request: ignored.
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
            Ok(_) => break,
        }
    }
    // End of input: the client shut down writing, or closed. Only a close
    // also closes our writing side (the event may lag a moment).
    for _ in 0..3 {
        match peer.ready(Interest::WRITABLE).await {
            Ok(r) if r.is_write_closed() => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return,
        }
    }
    std::future::pending::<()>().await;
}

/// Why a client could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "freshd is not running, or not for this user: nothing answers on {path} ({source}); start it with `systemctl --user start freshd` or `freshd run`"
    )]
    NotRunning {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the control socket {path} failed: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("freshd answered something unreadable on {path}: {detail}")]
    BadAnswer { path: PathBuf, detail: String },
    /// The daemon closed the connection without answering (it stopped).
    #[error("freshd closed {path} without an answer")]
    Closed { path: PathBuf },
    #[error(
        "freshd did not answer on {path} within {} s; it may be stuck: see `journalctl --user -u freshd` (or -u freshd for the system unit)",
        ANSWER_TIMEOUT.as_secs()
    )]
    NoAnswer { path: PathBuf },
}

/// How long a client waits for an answer: a token may need a refresh (at
/// most 30 s), so a minute means the daemon is stuck. `run-job` waits for
/// the job instead, however long it takes.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `request` to the daemon at `path` and reads its answer, within
/// [`ANSWER_TIMEOUT`] except for `run-job`, which lasts as long as the job.
pub async fn ask(path: &Path, request: &Request) -> Result<Response, ClientError> {
    if matches!(request, Request::RunJob { .. }) {
        return exchange(path, request).await;
    }
    tokio::time::timeout(ANSWER_TIMEOUT, exchange(path, request))
        .await
        .map_err(|_| ClientError::NoAnswer {
            path: path.to_owned(),
        })?
}

async fn exchange(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| ClientError::NotRunning {
            path: path.to_owned(),
            source,
        })?;
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::BadAnswer {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    line.push(b'\n');
    stream.write_all(&line).await.map_err(io)?;
    read_answer(&mut stream, path, request, MAX_ANSWER).await
}

/// Reads the answer line to `request`, at most `limit` bytes of it.
async fn read_answer(
    stream: &mut UnixStream,
    path: &Path,
    request: &Request,
    limit: usize,
) -> Result<Response, ClientError> {
    let bad = |detail: String| ClientError::BadAnswer {
        path: path.to_owned(),
        detail,
    };
    // Read straight into one buffer (no String: the parse checks the text
    // where it matters); a status is taken apart as it arrives.
    let mut answer = answer::AnswerLine::new(request);
    loop {
        let read_from = answer.bytes.len();
        if read_from > limit {
            // A daemon gone wrong (or not freshd) must not take all memory.
            return Err(bad(format!(
                "an answer line longer than {} MiB",
                limit / (1024 * 1024)
            )));
        }
        answer.bytes.reserve(ANSWER_BUFFER);
        let n = stream
            .read_buf(&mut answer.bytes)
            .await
            .map_err(|source| ClientError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            if read_from == 0 {
                return Err(ClientError::Closed {
                    path: path.to_owned(),
                });
            }
            break;
        }
        if let Some(end) = answer.bytes[read_from..].iter().position(|b| *b == b'\n') {
            answer.bytes.truncate(read_from + end + 1);
            break;
        }
        answer.advance();
    }
    answer.finish(request).map_err(|e| bad(e.to_string()))
}

/// How much of an answer the client reads at a time.
const ANSWER_BUFFER: usize = 64 * 1024;
/// The longest answer line a client reads: far above a status of a
/// hundred thousand jobs (about 30 MB).
const MAX_ANSWER: usize = 1024 * 1024 * 1024;

#[cfg(test)]
mod tests;
