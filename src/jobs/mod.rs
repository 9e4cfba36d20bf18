//! What jobs do: one file per job type, each a [`JobType`] that owns its
//! keys, their validation and its body, all listed in [`TYPES`].
//!
//! The scheduler decides when; a [`JobBody`] does one run with a
//! [`JobContext`] (the account's token manager, the shared HTTP client, the
//! state directory) and says how it went. Bodies write files only through
//! [`crate::fsutil`], so a run stopped at any moment leaves whole files,
//! and do file I/O only through [`blocking`], off the runtime thread.
//! Programs run through [`child`], each in a process group of its own.

pub mod child;
pub mod command;
pub mod http;
mod kind;
pub mod now_playing;
pub mod playlist;
pub mod search;
pub mod sources;

pub use kind::{JobType, register};

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::api::Cooldowns;
use crate::config::{Job, Registered};
use crate::oauth::TokenManager;
use crate::spotify::{ApiError, Spotify};
use crate::time::Clock;

/// Every job type, in the order messages list them. A new type is a file
/// with a [`JobType`], and one line here. The config reads it only as the
/// parameter of `Config::parse` and `Config::load`.
pub static TYPES: &[Registered<Arc<dyn JobBody>>] = &[
    register::<now_playing::Type>(),
    register::<playlist::Type>(),
    register::<http::Type>(),
    register::<command::Type>(),
];

/// Everything one run may use.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Arc<Job>,
    pub tokens: Arc<TokenManager>,
    pub http: reqwest::Client,
    pub state_dir: PathBuf,
    /// The daemon's rate-limit cooldowns, one per client id.
    pub cooldowns: Arc<Cooldowns>,
    pub clock: Arc<dyn Clock>,
}

impl JobContext {
    /// A path from the config: relative ones live in the state directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.state_dir.join(path)
        }
    }

    /// The Spotify client for the job's account.
    pub fn spotify(&self) -> Result<Spotify, RunOutcome> {
        let Some(base) = self.tokens.account().api_base_url.clone() else {
            return Err(RunOutcome::Error(format!(
                "account {} has no api_base_url; give provider = \"spotify\" or api_base_url",
                self.job.account
            )));
        };
        Ok(Spotify::new(
            self.http.clone(),
            base,
            Arc::clone(&self.tokens),
            Arc::clone(&self.cooldowns),
            Arc::clone(&self.clock),
        ))
    }

    /// The account's access token, or the run's outcome when there is none.
    pub async fn token(&self) -> Result<SecretString, RunOutcome> {
        self.tokens
            .access_token()
            .await
            .map_err(|e| RunOutcome::Error(e.to_string()))
    }
}

/// How long one file operation of a job may take: a local disk answers in
/// milliseconds, so this only ends a run stuck on a hung mount.
pub const FILE_IO_DEADLINE: Duration = Duration::from_secs(30);

/// Runs blocking file I/O off the runtime thread, so a slow disk never stops
/// the token keeper or the control socket; gives up after
/// [`FILE_IO_DEADLINE`] (the thread is left to finish on its own).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::time::timeout(FILE_IO_DEADLINE, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(io::Error::other(format!("the file operation failed: {e}"))),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the disk did not answer within {} s",
                FILE_IO_DEADLINE.as_secs()
            ),
        )),
    }
}

/// One run of one job type.
pub trait JobBody: Send + Sync + std::fmt::Debug {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = RunReport> + Send + 'a>>;
}

/// The body for a job of a config read with [`TYPES`]: its type's line
/// there, found by name, made its kind (config/validate/job.rs), so that
/// line's body takes it.
pub fn body_for(job: &Job) -> Arc<dyn JobBody> {
    TYPES
        .iter()
        .find_map(|t| t.body(&job.kind))
        .expect("a job's type is the line of jobs::TYPES that checked it")
}

/// How a Web API failure ends a run: a cooldown is `skipped` (with when the
/// job may run again), anything else an error.
pub fn api_outcome(e: ApiError) -> RunOutcome {
    match e {
        ApiError::Cooldown { until, .. } => RunOutcome::Skipped(format!(
            "Spotify rate limits this app; the job may run again after {}",
            until.round(jiff::Unit::Second).unwrap_or(until)
        )),
        other => RunOutcome::Error(other.to_string()),
    }
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Ok,
    /// Not run this time, e.g. during a provider's rate-limit cooldown.
    Skipped(String),
    Error(String),
}

impl RunOutcome {
    /// The `last_result` word of `status --json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Skipped(_) => "skipped",
            RunOutcome::Error(_) => "error",
        }
    }
}

/// What a body reports of its run: the outcome, how soon the job wants to
/// run again, and whether the run is worth an info line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub outcome: RunOutcome,
    /// For `every` jobs: run again after this long if that is sooner than
    /// the interval (a poller that knows when the track ends).
    pub again_within: Option<Duration>,
    /// Nothing worth a journal line happened (a poll that saw no change):
    /// the run is logged at debug, not info.
    pub quiet: bool,
}

impl From<RunOutcome> for RunReport {
    fn from(outcome: RunOutcome) -> Self {
        RunReport {
            outcome,
            again_within: None,
            quiet: false,
        }
    }
}
