//! `type = "http"`: one request to the account's API (or any URL) with its
//! token, under the API policy of [`crate::api`]: a 401 forces one refresh
//! and one retry, an idempotent request is tried again on a 5xx, and a 429
//! (an hour at least for `QUOTA_EXCEEDED`) ends the run as `skipped` with
//! the time it may run again. The body is streamed to
//! `output` (a temporary file renamed over it, 0600, never through a link;
//! at most `max_size` bytes, else the run fails and `output` stays as it
//! was) or its start goes to the log; no body is ever held whole in memory.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::Method;
use tokio::io::AsyncWriteExt;

use secrecy::SecretString;

use super::{JobBody, JobContext, JobType};
use super::{RunOutcome, RunReport};
use crate::api::{self, SendError, redact};
use crate::config::{JobCheck, Keys, Shape, choices};
use crate::oauth::endpoint::{describe_reqwest, retry_after};

/// The most of a body that goes to the log when there is no `output`.
const MAX_LOGGED_BODY: usize = 2048;
/// The most of an error answer quoted in the run's error.
const MAX_QUOTED_ERROR: usize = 200;

/// Default `max_size`: far above any JSON answer a job would save, far
/// below what would strain a small machine's memory or disk.
pub const DEFAULT_HTTP_MAX_SIZE: u64 = 16 * 1024 * 1024;

/// The `http` job type.
#[derive(Debug)]
pub struct Type;

impl JobType for Type {
    type Settings = HttpJob;
    const NAME: &'static str = "http";
    const KEYS: &'static Keys = &[
        ("method", Shape::Text),
        ("path", Shape::Text),
        ("url", Shape::Text),
        ("query", Shape::Strings),
        ("body", Shape::Any),
        ("output", Shape::Text),
        ("max_size", Shape::Text),
    ];

    fn check(job: &mut JobCheck<'_, '_>) -> Option<HttpJob> {
        let r = job.raw();
        let method = r.text("method").map_or(Some(HttpMethod::Get), |m| {
            job.one_of(m, "method", HttpMethod::CHOICES)
        });
        let target = target(job);
        let body = match r.any("body") {
            Some(b) => match serde_json::to_value(b.get_ref()) {
                Ok(v) => Some(Some(v)),
                Err(e) => {
                    job.problem(b.span(), "body", format!("cannot be sent as JSON ({e}); write a TOML table, array, string or number"));
                    None
                }
            },
            None => Some(None),
        };
        let output = match r.text("output") {
            Some(o) => job.path(o, "output").map(Some),
            None => Some(None),
        };
        let max_size = match r.text("max_size") {
            Some(m) => job.size(m, "max_size"),
            None => Some(DEFAULT_HTTP_MAX_SIZE),
        };
        Some(HttpJob {
            method: method?,
            target: target?,
            query: r
                .strings("query")
                .map(|q| q.get_ref().clone())
                .unwrap_or_default(),
            body: body?,
            output: output?,
            max_size: max_size?,
        })
    }

    fn body(settings: &HttpJob) -> Arc<dyn JobBody> {
        Arc::new(Http(settings.clone()))
    }
}

/// `path` (relative to the account's `api_base_url`) or `url`.
fn target(job: &mut JobCheck<'_, '_>) -> Option<HttpTarget> {
    let r = job.raw();
    match (r.text("path"), r.text("url")) {
        (Some(p), None) if p.get_ref().starts_with('/') => {
            Some(HttpTarget::Path(p.get_ref().clone()))
        }
        (Some(p), None) => {
            job.problem(p.span(), "path", format!("\"{}\" does not start with '/'; write a path relative to the account's api_base_url, e.g. \"/me\"", p.get_ref()));
            None
        }
        (None, Some(u)) => job.url(u, "url").map(HttpTarget::Url),
        (Some(_), Some(u)) => {
            job.problem(
                u.span(),
                "url",
                "give either `path` (relative to the account's api_base_url) or `url`, not both",
            );
            None
        }
        (None, None) => {
            job.missing("path", "missing key `path` or `url`; e.g. path = \"/me\"");
            None
        }
    }
}

/// `type = "http"`
#[derive(Debug, Clone, PartialEq)]
pub struct HttpJob {
    pub method: HttpMethod,
    pub target: HttpTarget,
    pub query: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
    /// Where the response body goes; the log when `None`.
    pub output: Option<PathBuf>,
    /// The largest body saved to `output`; a larger one fails the run.
    pub max_size: u64,
}

choices! {
    /// The methods an `http` job may use.
    pub enum HttpMethod {
        Get = "GET",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
    }
}

/// An `http` job's request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTarget {
    /// Relative to the account's `api_base_url`.
    Path(String),
    /// A full URL.
    Url(String),
}

#[derive(Debug)]
pub struct Http(pub HttpJob);

impl JobBody for Http {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = RunReport> + Send + 'a>> {
        Box::pin(async move { self.run_once(cx).await.into() })
    }
}

impl Http {
    fn url(&self, cx: &JobContext) -> Result<String, RunOutcome> {
        match &self.0.target {
            HttpTarget::Url(u) => Ok(u.clone()),
            HttpTarget::Path(p) => match &cx.tokens.account().api_base_url {
                Some(base) => Ok(format!("{base}{p}")),
                None => Err(RunOutcome::Error(format!(
                    "account {} has no api_base_url for the path {p}; set api_base_url or give a full `url`",
                    cx.job.account
                ))),
            },
        }
    }

    /// Sends the request under the API policy ([`crate::api::send`]).
    async fn exchange(
        &self,
        cx: &JobContext,
        url: &str,
    ) -> Result<(reqwest::Response, SecretString), RunOutcome> {
        let method = Method::from_bytes(self.0.method.as_str().as_bytes())
            .map_err(|e| RunOutcome::Error(e.to_string()))?;
        let build = |req: reqwest::RequestBuilder| {
            let req = req.query(&self.0.query);
            match &self.0.body {
                Some(body) => req.json(body),
                None => req,
            }
        };
        api::send(&cx.http, &cx.tokens, &method, url, url, build)
            .await
            .map_err(|e| match e {
                SendError::Token(e) => RunOutcome::Error(e.to_string()),
                SendError::Network(e) => RunOutcome::Error(describe_reqwest(&e)),
            })
    }

    async fn run_once(&self, cx: &JobContext) -> RunOutcome {
        let client_id = cx.tokens.account().client_id.clone();
        if let Some(until) = cx.cooldowns.until(&client_id, cx.clock.now()) {
            return RunOutcome::Skipped(format!(
                "the API rate limits this app; the job may run again after {}",
                crate::time::to_the_second(until)
            ));
        }
        let url = match self.url(cx) {
            Ok(u) => u,
            Err(outcome) => return outcome,
        };
        let (mut resp, token) = match self.exchange(cx, &url).await {
            Ok(answer) => answer,
            Err(outcome) => return outcome,
        };
        let status = resp.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(resp.headers());
            let body = read_at_most(&mut resp, MAX_QUOTED_ERROR * 4).await;
            let (until, quota) = cx
                .cooldowns
                .after_429(&client_id, cx.clock.now(), wait, &body);
            return RunOutcome::Skipped(format!(
                "the API is rate limiting (429{}); the job may run again after {}",
                if quota { ", quota exceeded" } else { "" },
                crate::time::to_the_second(until)
            ));
        }
        if !status.is_success() {
            let body = read_at_most(&mut resp, MAX_QUOTED_ERROR).await;
            let text = String::from_utf8_lossy(&body);
            return RunOutcome::Error(format!(
                "{} {url} answered {status}: {}",
                self.0.method,
                redact(text.trim(), &token)
            ));
        }
        match &self.0.output {
            Some(path) => {
                let path = cx.resolve(path);
                match save(resp, &path, self.0.max_size).await {
                    Ok(n) => {
                        tracing::info!(JOB = %cx.job.name, "{} {url}: {status}, {n} bytes written to {}", self.0.method, path.display())
                    }
                    Err(e) => return RunOutcome::Error(e),
                }
            }
            None => {
                let body = read_at_most(&mut resp, MAX_LOGGED_BODY).await;
                let text = String::from_utf8_lossy(&body);
                tracing::info!(JOB = %cx.job.name, "{} {url}: {status}: {}", self.0.method, redact(text.trim(), &token));
            }
        }
        RunOutcome::Ok
    }
}

/// The first `limit` bytes of the body (or fewer); the rest is not read.
async fn read_at_most(resp: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// Streams the body to `path` (through a temporary file renamed over it,
/// 0600, never through a link), at most `max_size` bytes; returns how many
/// were written. A larger body fails and leaves `path` as it was.
async fn save(mut resp: reqwest::Response, path: &Path, max_size: u64) -> Result<u64, String> {
    let too_large = || {
        format!(
            "the answer is larger than max_size ({}); {} was left as it was",
            describe_size(max_size),
            path.display()
        )
    };
    if resp.content_length().is_some_and(|n| n > max_size) {
        return Err(too_large());
    }
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let tmp = temp_path(path).map_err(cannot)?;
    let (target, t) = (path.to_owned(), tmp.clone());
    let file = super::blocking(move || {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::ensure_private_dir(dir)?;
        }
        crate::fsutil::check_target(&target)?;
        let _ = std::fs::remove_file(&t);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&t)
    })
    .await
    .map_err(cannot)?;
    let mut file = tokio::fs::File::from_std(file);
    let written = stream_into(&mut resp, &mut file, max_size).await;
    drop(file);
    let result = match written {
        Ok(Some(n)) => {
            let (target, t) = (path.to_owned(), tmp.clone());
            super::blocking(move || commit(&t, &target))
                .await
                .map(|()| n)
                .map_err(cannot)
        }
        Ok(None) => Err(too_large()),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = super::blocking(move || std::fs::remove_file(&tmp)).await;
    }
    result
}

/// Copies the body into `file`; `Ok(None)` past `max_size`.
async fn stream_into(
    resp: &mut reqwest::Response,
    file: &mut tokio::fs::File,
    max_size: u64,
) -> Result<Option<u64>, String> {
    let mut total: u64 = 0;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(describe_reqwest(&e)),
        };
        total += chunk.len() as u64;
        if total > max_size {
            return Ok(None);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write the answer: {e}"))?;
    }
    file.sync_all()
        .await
        .map_err(|e| format!("cannot write the answer: {e}"))?;
    Ok(Some(total))
}

fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    Ok(path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Renames the finished temporary file over `target` (checked again: a
/// link put there meanwhile is refused) and fsyncs the directory.
fn commit(tmp: &Path, target: &Path) -> std::io::Result<()> {
    crate::fsutil::check_target(target)?;
    std::fs::rename(tmp, target)?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// `16777216` → "16 MiB"
fn describe_size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}
