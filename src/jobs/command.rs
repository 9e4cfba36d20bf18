//! `type = "command"`: runs a program (an argv, no shell) with the
//! account's access token in `FRESHD_ACCESS_TOKEN` and the account's name in
//! `FRESHD_ACCOUNT`. Its output goes to the log line by line with `JOB=`,
//! the token scrubbed from it; its exit status is the run's result. It runs
//! in a process group of its own, stopped whole when the run ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;

use super::child::{self, Program, Stdout};
use super::{JobBody, JobContext, JobType};
use super::{RunOutcome, RunReport};
use crate::config::{JobCheck, Keys, Shape};

/// The `command` job type.
#[derive(Debug)]
pub struct Type;

impl JobType for Type {
    type Settings = CommandJob;
    const NAME: &'static str = "command";
    const KEYS: &'static Keys = &[("command", Shape::List)];

    fn check(job: &mut JobCheck<'_, '_>) -> Option<CommandJob> {
        let Some(c) = job.raw().list("command") else {
            job.missing("command", "missing key `command`; write the program and its arguments as a list, e.g. [\"/usr/local/bin/backup\", \"--quiet\"]");
            return None;
        };
        job.argv(c, "command").map(|argv| CommandJob { argv })
    }

    fn body(settings: &CommandJob) -> Arc<dyn JobBody> {
        Arc::new(Command(settings.clone()))
    }
}

/// `type = "command"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandJob {
    /// The program and its arguments; no shell is involved.
    pub argv: Vec<String>,
}

#[derive(Debug)]
pub struct Command(pub CommandJob);

impl JobBody for Command {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = RunReport> + Send + 'a>> {
        Box::pin(async move {
            let token = match cx.token().await {
                Ok(t) => t,
                Err(outcome) => return outcome.into(),
            };
            run_argv(&self.0.argv, cx, Some(&token), &[]).await.into()
        })
    }
}

/// Runs `argv` as a job's program would run, with `extra` environment
/// (see [`super::child`] for its process group and output limits).
pub async fn run_argv(
    argv: &[String],
    cx: &JobContext,
    token: Option<&SecretString>,
    extra: &[(String, String)],
) -> RunOutcome {
    let program = argv.first().map_or("", String::as_str);
    let finished = child::run(Program {
        argv,
        cx,
        token,
        env: extra,
        stdout: Stdout::Log,
    })
    .await;
    match finished {
        Ok(f) if f.status.success() => RunOutcome::Ok,
        Ok(f) => RunOutcome::Error(match f.status.code() {
            Some(code) => format!("{program} exited with status {code}"),
            None => format!("{program} was killed by a signal ({})", f.status),
        }),
        Err(e) => RunOutcome::Error(e),
    }
}
