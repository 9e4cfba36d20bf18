//! `type = "http"`: one request to the account's API (or any URL) with its
//! token. A 401 forces one refresh and one retry; a 429 ends the run as
//! `skipped` with the time it may run again. The body goes to `output`
//! (written whole, 0600) or to the log.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{JobBody, JobContext, redact};
use crate::config::{HttpJob, HttpTarget};
use crate::oauth::endpoint::{describe_reqwest, retry_after};
use crate::scheduler::{Ran, RunOutcome};

/// The most of a body that goes to the log when there is no `output`.
const MAX_LOGGED_BODY: usize = 2048;

#[derive(Debug)]
pub struct Http(pub HttpJob);

impl JobBody for Http {
    fn run<'a>(&'a self, cx: &'a JobContext) -> Pin<Box<dyn Future<Output = Ran> + Send + 'a>> {
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

    async fn send(
        &self,
        cx: &JobContext,
        url: &str,
        token: &SecretString,
    ) -> Result<reqwest::Response, RunOutcome> {
        let method = reqwest::Method::from_bytes(self.0.method.as_str().as_bytes())
            .map_err(|e| RunOutcome::Error(e.to_string()))?;
        let mut req = cx
            .http
            .request(method, url)
            .bearer_auth(token.expose_secret())
            .query(&self.0.query);
        if let Some(body) = &self.0.body {
            req = req.json(body);
        }
        req.send()
            .await
            .map_err(|e| RunOutcome::Error(describe_reqwest(&e)))
    }

    async fn run_once(&self, cx: &JobContext) -> RunOutcome {
        let client_id = cx.tokens.account().client_id.clone();
        if let Some(until) = cx.cooldowns.until(&client_id, cx.clock.now()) {
            return RunOutcome::Skipped(format!(
                "the API rate limits this app; the job may run again after {until}"
            ));
        }
        let url = match self.url(cx) {
            Ok(u) => u,
            Err(outcome) => return outcome,
        };
        let mut token = match cx.token().await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let mut resp = match self.send(cx, &url, &token).await {
            Ok(r) => r,
            Err(outcome) => return outcome,
        };
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            tracing::info!(JOB = %cx.job.name, ACCOUNT = %cx.job.account, "the API refused the access token (401); refreshing it once");
            token = match cx.tokens.refresh_after_401(&token).await {
                Ok(t) => t,
                Err(e) => return RunOutcome::Error(e.to_string()),
            };
            resp = match self.send(cx, &url, &token).await {
                Ok(r) => r,
                Err(outcome) => return outcome,
            };
        }
        let status = resp.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(resp.headers()).unwrap_or(Duration::from_secs(60));
            let until = cx
                .clock
                .now()
                .checked_add(
                    jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX),
                )
                .unwrap_or(jiff::Timestamp::MAX);
            cx.cooldowns.start(&client_id, until);
            return RunOutcome::Skipped(format!(
                "the API is rate limiting (429); the job may run again after {until}"
            ));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return RunOutcome::Error(describe_reqwest(&e)),
        };
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            return RunOutcome::Error(format!(
                "{} {url} answered {status}: {}",
                self.0.method.as_str(),
                redact(text.trim(), &token)
            ));
        }
        match &self.0.output {
            Some(path) => {
                let path = cx.resolve(path);
                if let Err(e) = crate::fsutil::write_private(&path, &body) {
                    return RunOutcome::Error(format!("cannot write {}: {e}", path.display()));
                }
                tracing::info!(JOB = %cx.job.name, "{} {url}: {status}, {} bytes written to {}", self.0.method.as_str(), body.len(), path.display());
            }
            None => {
                let text = String::from_utf8_lossy(&body[..body.len().min(MAX_LOGGED_BODY)]);
                tracing::info!(JOB = %cx.job.name, "{} {url}: {status}: {}", self.0.method.as_str(), redact(text.trim(), &token));
            }
        }
        RunOutcome::Ok
    }
}
