//! The policy for calling an API with an account's access token, shared by
//! the Spotify client and the `http` job ([`send`]): the bearer header, one
//! refresh and one retry on a 401, which requests are tried again
//! (safe ones, on a 5xx or a network error, [`TRIES`] times in all), the
//! cooldown after a 429 (per client id, honouring `Retry-After`, an hour at
//! least for `QUOTA_EXCEEDED`), and the redaction of the token from any
//! text an API sent back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use crate::oauth::endpoint::describe_reqwest;
use crate::oauth::{TokenError, TokenManager};
use crate::sync::MutexExt;

/// `text` with every occurrence of `secret` replaced, for output that a job's
/// program or server produced and freshd logs.
pub fn redact(text: &str, secret: &SecretString) -> String {
    let s = secret.expose_secret();
    if s.len() < 4 {
        return text.to_owned();
    }
    text.replace(s, "[REDACTED]")
}

/// How often a failed safe request is tried in all.
pub const TRIES: u32 = 3;
/// The wait before the second try; doubled for the third.
pub const RETRY_WAIT: Duration = Duration::from_secs(1);
/// The cooldown after a 429 without `Retry-After`.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);
/// The least cooldown after a quota 429 (`QUOTA_EXCEEDED`): quotas reset
/// slowly, and asking again soon only extends the ban.
const QUOTA_COOLDOWN: Duration = Duration::from_secs(3600);

/// Whether a request may be sent again after a 5xx or a network error: only
/// an idempotent one (RFC 9110 §9.2.2), so a `POST` that may have landed is
/// never sent twice and a playlist is never doubled.
pub fn may_repeat(method: &Method) -> bool {
    !matches!(*method, Method::POST | Method::PATCH | Method::CONNECT)
}

/// How long to wait before trying again after try number `tries` (counted
/// from 1) ended in `status` (`None`: a network error); `None` when the
/// request is not to be tried again.
pub fn retry_wait(method: &Method, status: Option<u16>, tries: u32) -> Option<Duration> {
    let retryable = status.is_none_or(|s| (500..=599).contains(&s));
    (retryable && may_repeat(method) && tries < TRIES).then(|| RETRY_WAIT * tries)
}

/// Why [`send`] got no answer. Holds no token.
#[derive(Debug)]
pub enum SendError {
    /// No access token could be had.
    Token(TokenError),
    /// The last try met a network error.
    Network(reqwest::Error),
}

/// Sends one request with the account's access token as its bearer: on a
/// 401, one refresh and one retry; an idempotent request ([`may_repeat`])
/// is tried again on a 5xx or a network error, [`TRIES`] times in all.
/// `build` adds the query and body to each try. Returns the last answer,
/// whatever its status, with the token it carried (to redact it from what
/// the answer says).
pub async fn send(
    http: &reqwest::Client,
    tokens: &Arc<TokenManager>,
    method: &Method,
    url: &str,
    shown: &str,
    build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<(reqwest::Response, SecretString), SendError> {
    let mut token = tokens.access_token().await.map_err(SendError::Token)?;
    let mut refreshed = false;
    let mut tries = 0;
    loop {
        tries += 1;
        let req = http
            .request(method.clone(), url)
            .bearer_auth(token.expose_secret());
        let resp = match build(req).send().await {
            Ok(r) => r,
            Err(e) => match retry_wait(method, None, tries) {
                Some(wait) => {
                    tracing::debug!("{method} {shown}: {}; trying again", describe_reqwest(&e));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                None => return Err(SendError::Network(e)),
            },
        };
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
            tracing::info!(ACCOUNT = %tokens.account().name, "{method} {shown}: the access token was refused (401); refreshing it once");
            token = tokens
                .refresh_after_401(&token)
                .await
                .map_err(SendError::Token)?;
            refreshed = true;
            tries -= 1;
            continue;
        }
        if status.is_server_error()
            && let Some(wait) = retry_wait(method, Some(status.as_u16()), tries)
        {
            tracing::debug!("{method} {shown} answered {status}; trying again");
            tokio::time::sleep(wait).await;
            continue;
        }
        return Ok((resp, token));
    }
}

/// Whether a 429's body says the app's quota is exhausted
/// (`{"error": {"reason": "QUOTA_EXCEEDED"}}`) rather than a short burst.
pub fn quota_exceeded(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/reason").cloned())
        .is_some_and(|r| r == "QUOTA_EXCEEDED")
}

/// Rate-limit cooldowns by client id, shared by the whole daemon.
#[derive(Debug, Default)]
pub struct Cooldowns(Mutex<HashMap<String, Timestamp>>);

impl Cooldowns {
    /// Until when `client_id` must wait, if it must.
    pub fn until(&self, client_id: &str, now: Timestamp) -> Option<Timestamp> {
        let map = self.0.locked();
        map.get(client_id).copied().filter(|t| *t > now)
    }

    /// Starts (or lengthens) the cooldown of `client_id`.
    pub fn start(&self, client_id: &str, until: Timestamp) {
        let mut map = self.0.locked();
        let entry = map.entry(client_id.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Starts the cooldown a 429 calls for: `Retry-After` (`wait`) or a
    /// minute, an hour at least when the body says `QUOTA_EXCEEDED`.
    /// Returns its end and whether it is a quota cooldown.
    pub fn after_429(
        &self,
        client_id: &str,
        now: Timestamp,
        wait: Option<Duration>,
        body: &[u8],
    ) -> (Timestamp, bool) {
        let quota = quota_exceeded(body);
        let mut wait = wait.unwrap_or(DEFAULT_COOLDOWN);
        if quota {
            wait = wait.max(QUOTA_COOLDOWN);
        }
        let until = now
            .checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        self.start(client_id, until);
        (until, quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_is_retried_on_503_and_a_post_is_not() {
        assert_eq!(retry_wait(&Method::GET, Some(503), 1), Some(RETRY_WAIT));
        assert_eq!(retry_wait(&Method::GET, Some(503), 2), Some(RETRY_WAIT * 2));
        assert_eq!(retry_wait(&Method::GET, Some(503), TRIES), None);
        assert_eq!(retry_wait(&Method::GET, None, 1), Some(RETRY_WAIT));
        assert_eq!(retry_wait(&Method::GET, Some(404), 1), None);
        assert_eq!(retry_wait(&Method::POST, Some(503), 1), None);
        assert_eq!(retry_wait(&Method::PATCH, Some(503), 1), None);
        assert_eq!(retry_wait(&Method::PUT, Some(503), 1), Some(RETRY_WAIT));
    }

    #[test]
    fn quota_exceeded_holds_the_app_for_an_hour() {
        let c = Cooldowns::default();
        let now = Timestamp::UNIX_EPOCH;
        let body = br#"{"error":{"status":429,"reason":"QUOTA_EXCEEDED"}}"#;
        let (until, quota) = c.after_429("app", now, Some(Duration::from_secs(5)), body);
        assert!(quota);
        assert_eq!(until.duration_since(now), SignedDuration::from_hours(1));
        let (until, quota) = c.after_429("other", now, None, b"{}");
        assert!(!quota);
        assert_eq!(until.duration_since(now), SignedDuration::from_mins(1));
        assert_eq!(
            c.until("app", now),
            Some(now + SignedDuration::from_hours(1))
        );
    }
}
