//! What jobs do: one file per job type behind one trait.
//!
//! The scheduler decides when; a [`JobBody`] does one run with a
//! [`JobContext`] (the account's token manager, the shared HTTP client, the
//! state directory) and says how it went. Bodies write files only through
//! [`crate::fsutil`], so a run stopped at any moment leaves whole files.

pub mod command;
pub mod http;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{Job, JobKind};
use crate::oauth::TokenManager;
use crate::scheduler::{Ran, RunOutcome};

/// Everything one run may use.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Arc<Job>,
    pub tokens: Arc<TokenManager>,
    pub http: reqwest::Client,
    pub state_dir: PathBuf,
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

    /// The account's access token, or the run's outcome when there is none.
    pub async fn token(&self) -> Result<SecretString, RunOutcome> {
        self.tokens
            .access_token()
            .await
            .map_err(|e| RunOutcome::Error(e.to_string()))
    }
}

/// One run of one job type.
pub trait JobBody: Send + Sync + std::fmt::Debug {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = Ran> + Send + 'a>>;
}

/// The body for a job, or `None` for the types this build does not run yet.
pub fn body_for(job: &Job) -> Option<Arc<dyn JobBody>> {
    match &job.kind {
        JobKind::Command(c) => Some(Arc::new(command::Command(c.clone()))),
        JobKind::Http(h) => Some(Arc::new(http::Http(h.clone()))),
        JobKind::NowPlaying(_) | JobKind::Playlist(_) => None,
    }
}

/// `text` with every occurrence of `secret` replaced, for output that a job's
/// program or server produced and freshd logs.
pub fn redact(text: &str, secret: &SecretString) -> String {
    let s = secret.expose_secret();
    if s.len() < 4 {
        return text.to_owned();
    }
    text.replace(s, "[REDACTED]")
}
