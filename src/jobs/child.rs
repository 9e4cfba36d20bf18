//! Every program freshd starts (a `command` job, a source command,
//! `on_change`) runs through [`run`].
//!
//! Invariants:
//! - The program leads a process group of its own; whatever it starts
//!   stays in that group. When the run ends, however it ends (the program
//!   exited, the job's timeout, the daemon stopping), the whole group gets
//!   `SIGTERM`, then `SIGKILL` [`KILL_AFTER`] later if anything is left: no
//!   run leaves processes behind.
//! - The run ends when the program exits: something it left running that
//!   still holds its output gets [`DRAIN_AFTER_EXIT`] to finish writing,
//!   not until the job's timeout.
//! - Output read into memory is bounded: a line in the log is cut at
//!   [`MAX_LINE`] bytes, a stream logs at most [`MAX_LOGGED`] bytes a run
//!   (the rest is counted and dropped), and captured output (a source
//!   command's list) past its limit fails the run.

use crate::sync::MutexExt;
use std::collections::BTreeSet;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::JobContext;
use crate::api::redact;

/// How long a process group has between `SIGTERM` and `SIGKILL`.
pub const KILL_AFTER: Duration = Duration::from_secs(3);
/// How long output is still read after the program exited, for what it
/// left running that holds its stdout or stderr.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// The longest output line logged; longer ones are cut.
pub const MAX_LINE: usize = 4096;
/// The most of one stream (stdout or stderr) that goes to the log per run:
/// enough for any useful report, and a runaway program cannot fill the
/// journal or the daemon's memory.
pub const MAX_LOGGED: usize = 64 * 1024;

/// Process groups that may still have members: killed at shutdown.
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    GROUPS.locked()
}

/// What happens to the program's standard output.
#[derive(Debug, Clone, Copy)]
pub enum Stdout {
    /// Each line to the log (info).
    Log,
    /// Kept and returned; more than `limit` bytes fails the run.
    Capture { limit: usize },
}

/// One program to run for a job.
#[derive(Debug)]
pub struct Program<'a> {
    pub argv: &'a [String],
    pub cx: &'a JobContext,
    /// `FRESHD_ACCESS_TOKEN`, scrubbed from everything logged.
    pub token: Option<&'a SecretString>,
    pub env: &'a [(String, String)],
    pub stdout: Stdout,
}

/// How the program ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The captured output ([`Stdout::Capture`]); empty otherwise.
    pub stdout: Vec<u8>,
}

/// Runs `p` to its end; `Err` says why it could not run or was stopped.
pub async fn run(p: Program<'_>) -> Result<Finished, String> {
    let (mut cmd, program) = command(&p)?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    // Dropped at the end of the run, whichever way it ends.
    let _group = child.id().and_then(Group::new);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(format!("cannot read the output of {program}"));
    };
    let job = p.cx.job.name.as_str();
    let mut captured = Vec::new();
    let status = {
        let out = async {
            match p.stdout {
                Stdout::Log => {
                    log_stream(stdout, job, p.token, false).await;
                    Ok(())
                }
                Stdout::Capture { limit } => capture(stdout, &mut captured, limit).await,
            }
        };
        let err = log_stream(stderr, job, p.token, true);
        tokio::pin!(out, err);
        let mut status = None;
        let mut out_done = false;
        let mut err_done = false;
        let mut drain_until = None;
        loop {
            if status.is_some() && out_done && err_done {
                break;
            }
            let drained = async {
                match drain_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                s = child.wait(), if status.is_none() => {
                    status = Some(s);
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                }
                r = &mut out, if !out_done => {
                    r.map_err(|limit| format!("{program} printed more than {limit} bytes; the run was stopped"))?;
                    out_done = true;
                }
                () = &mut err, if !err_done => err_done = true,
                () = drained => {
                    tracing::debug!(JOB = %job, "{program} exited, but something it started still holds its output; the run ends now");
                    break;
                }
            }
        }
        status
    };
    finished(status, captured, program)
}

/// How the run ended, from what waiting for the program gave.
fn finished(
    status: Option<std::io::Result<ExitStatus>>,
    stdout: Vec<u8>,
    program: &str,
) -> Result<Finished, String> {
    match status {
        Some(Ok(status)) => Ok(Finished { status, stdout }),
        Some(Err(e)) => Err(format!("cannot wait for {program}: {e}")),
        None => Err(format!("cannot wait for {program}")),
    }
}

/// The program to start, with its environment, in the state directory
/// (made if missing), and its name for messages.
fn command<'a>(p: &Program<'a>) -> Result<(tokio::process::Command, &'a str), String> {
    let Some((program, args)) = p.argv.split_first() else {
        return Err("the command is empty".into());
    };
    let cx = p.cx;
    crate::fsutil::ensure_private_dir(&cx.state_dir).map_err(|e| {
        format!(
            "cannot create the state directory {}: {e}",
            cx.state_dir.display()
        )
    })?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&cx.state_dir)
        .env("FRESHD_ACCOUNT", &*cx.job.account)
        .env("FRESHD_JOB", &cx.job.name)
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Not kill_on_drop: the group guard in `run` stops the leader with
        // the rest of its group (SIGTERM first), and tokio reaps it.
        .process_group(0);
    if let Some(t) = p.token {
        cmd.env("FRESHD_ACCESS_TOKEN", t.expose_secret());
    }
    Ok((cmd, program.as_str()))
}

/// A process group, stopped when dropped.
#[derive(Debug)]
struct Group(Pid);

impl Group {
    fn new(pid: u32) -> Option<Group> {
        let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
        groups().insert(pid.as_raw_nonzero().get());
        Some(Group(pid))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        stop_group(self.0);
    }
}

/// `SIGTERM` to the group now, `SIGKILL` [`KILL_AFTER`] later if anything
/// of it is left; on a thread, so that it happens even while the runtime
/// shuts down.
fn stop_group(pgid: Pid) {
    let raw = pgid.as_raw_nonzero().get();
    if test_kill_process_group(pgid).is_err() {
        groups().remove(&raw);
        return;
    }
    let _ = kill_process_group(pgid, Signal::TERM);
    let killer = std::thread::Builder::new()
        .name("freshd-kill".into())
        .spawn(move || {
            std::thread::sleep(KILL_AFTER);
            if test_kill_process_group(pgid).is_ok() {
                let _ = kill_process_group(pgid, Signal::KILL);
            }
            groups().remove(&raw);
        });
    if killer.is_err() {
        let _ = kill_process_group(pgid, Signal::KILL);
        groups().remove(&raw);
    }
}

/// At shutdown, after the jobs' grace: every process group still alive
/// gets `SIGTERM`, and `SIGKILL` after [`KILL_AFTER`] if it is still there.
pub async fn stop_all() {
    let left: Vec<Pid> = groups().iter().filter_map(|&g| Pid::from_raw(g)).collect();
    let alive = |g: &&Pid| test_kill_process_group(**g).is_ok();
    if !left.iter().any(|g| alive(&g)) {
        return;
    }
    tracing::warn!(
        "stopping {} process group(s) that jobs left running",
        left.len()
    );
    for g in &left {
        let _ = kill_process_group(*g, Signal::TERM);
    }
    let deadline = tokio::time::Instant::now() + KILL_AFTER;
    while left.iter().any(|g| alive(&g)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for g in left.iter().filter(alive) {
        let _ = kill_process_group(*g, Signal::KILL);
    }
}

/// Reads at most `limit` bytes into `buf`; `Err(limit)` if there is more.
async fn capture(
    stream: impl AsyncRead + Unpin,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<(), usize> {
    let mut bounded = stream.take(limit as u64 + 1);
    let _ = bounded.read_to_end(buf).await;
    if buf.len() > limit {
        return Err(limit);
    }
    Ok(())
}

/// Logs `stream` line by line with `JOB=`, the token scrubbed; at most
/// [`MAX_LINE`] bytes a line and [`MAX_LOGGED`] bytes in all, never holding
/// One line of a program's output as it may be logged: the token scrubbed,
/// then cut to [`MAX_LINE`] bytes.
fn loggable(line: &[u8], token: Option<&SecretString>) -> String {
    let text = String::from_utf8_lossy(line);
    let mut text = match token {
        Some(t) => redact(text.trim_end(), t),
        None => text.trim_end().to_owned(),
    };
    if text.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// more than a line in memory.
async fn log_stream(
    stream: impl AsyncRead + Unpin,
    job: &str,
    token: Option<&SecretString>,
    stderr: bool,
) {
    // Room for a token that starts just before the cut, so it is scrubbed
    // whole before the line is cut.
    let keep = MAX_LINE + token.map_or(0, |t| t.expose_secret().len());
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut logged = 0;
    let mut dropped: u64 = 0;
    let mut emit = |line: &[u8]| {
        if logged >= MAX_LOGGED {
            dropped += line.len() as u64;
            return;
        }
        logged += line.len();
        let text = loggable(line, token);
        if stderr {
            tracing::warn!(JOB = %job, "stderr: {text}");
        } else {
            tracing::info!(JOB = %job, "{text}");
        }
    };
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(b) => b,
        };
        let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..n.min(room)]);
        reader.consume(n);
        if end {
            emit(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
    if dropped > 0 {
        tracing::warn!(JOB = %job, "{dropped} more bytes of {} were not logged (at most {MAX_LOGGED} bytes a run)", if stderr { "stderr" } else { "output" });
    }
}
