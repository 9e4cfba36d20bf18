//! `type = "command"`: runs a program (an argv, no shell) with the
//! account's access token in `FRESHD_ACCESS_TOKEN` and the account's name in
//! `FRESHD_ACCOUNT`. Its output goes to the log line by line with `JOB=`,
//! the token scrubbed from it; its exit status is the run's result.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{JobBody, JobContext, redact};
use crate::config::CommandJob;
use crate::scheduler::{Ran, RunOutcome};

/// The longest output line logged; longer ones are cut.
const MAX_LINE: usize = 4096;

#[derive(Debug)]
pub struct Command(pub CommandJob);

impl JobBody for Command {
    fn run<'a>(&'a self, cx: &'a JobContext) -> Pin<Box<dyn Future<Output = Ran> + Send + 'a>> {
        Box::pin(async move {
            let token = match cx.token().await {
                Ok(t) => t,
                Err(outcome) => return outcome.into(),
            };
            run_argv(&self.0.argv, cx, Some(&token), &[]).await.into()
        })
    }
}

/// Runs `argv` as a job's program would run, with `extra` environment.
pub async fn run_argv(
    argv: &[String],
    cx: &JobContext,
    token: Option<&SecretString>,
    extra: &[(String, String)],
) -> RunOutcome {
    let Some((program, args)) = argv.split_first() else {
        return RunOutcome::Error("the command is empty".into());
    };
    if let Err(e) = crate::fsutil::ensure_private_dir(&cx.state_dir) {
        return RunOutcome::Error(format!(
            "cannot create the state directory {}: {e}",
            cx.state_dir.display()
        ));
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&cx.state_dir)
        .env("FRESHD_ACCOUNT", &cx.job.account)
        .env("FRESHD_JOB", &cx.job.name)
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("FRESHD_ACCESS_TOKEN", t.expose_secret());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return RunOutcome::Error(format!("cannot start {program}: {e}")),
    };
    let job = cx.job.name.as_str();
    let out = child.stdout.take().map(|s| log_lines(s, job, token, false));
    let err = child.stderr.take().map(|s| log_lines(s, job, token, true));
    let (status, _, _) = tokio::join!(
        child.wait(),
        async {
            if let Some(f) = out {
                f.await;
            }
        },
        async {
            if let Some(f) = err {
                f.await;
            }
        }
    );
    match status {
        Ok(s) if s.success() => RunOutcome::Ok,
        Ok(s) => RunOutcome::Error(match s.code() {
            Some(code) => format!("{program} exited with status {code}"),
            None => format!("{program} was killed by a signal ({s})"),
        }),
        Err(e) => RunOutcome::Error(format!("cannot wait for {program}: {e}")),
    }
}

async fn log_lines(
    stream: impl AsyncRead + Unpin,
    job: &str,
    token: Option<&SecretString>,
    stderr: bool,
) {
    let mut lines = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf[..buf.len().min(MAX_LINE)]);
        let line = match token {
            Some(t) => redact(text.trim_end(), t),
            None => text.trim_end().to_owned(),
        };
        if stderr {
            tracing::warn!(JOB = %job, "stderr: {line}");
        } else {
            tracing::info!(JOB = %job, "{line}");
        }
    }
}
