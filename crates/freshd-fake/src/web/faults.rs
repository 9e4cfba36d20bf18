//! Faults for the fake Web API (the `testing` feature): 429s (with or
//! without `QUOTA_EXCEEDED`), 500s, 401s, a lost acknowledgement, and a log
//! of every request.

use serde_json::json;

use super::{WebState, error};
use crate::http::{HttpRequest, HttpResponse};

/// A fault for the next API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFault {
    /// 429 with `Retry-After` seconds; `quota` adds `QUOTA_EXCEEDED`.
    RateLimited { retry_after: u64, quota: bool },
    /// 500
    ServerError,
    /// 401, whatever the token.
    Unauthorized,
}

impl WebState {
    /// Logs `req`; the answer of the next queued fault, if any.
    pub(super) fn injected(&mut self, req: &HttpRequest, path: &str) -> Option<HttpResponse> {
        self.log.push((req.method.clone(), path.to_owned()));
        Some(match self.faults.pop_front()? {
            ApiFault::RateLimited { retry_after, quota } => {
                let mut body =
                    json!({"error": {"status": 429, "message": "API rate limit exceeded"}});
                if quota {
                    body["error"]["reason"] = json!("QUOTA_EXCEEDED");
                }
                HttpResponse::json(429, &body).with_header("Retry-After", &retry_after.to_string())
            }
            ApiFault::ServerError => error(500, "Server error"),
            ApiFault::Unauthorized => error(401, "The access token expired"),
        })
    }

    /// Whether to lose this add's acknowledgement (once).
    pub(super) fn lose_add_ack(&mut self) -> bool {
        std::mem::take(&mut self.lose_next_add_ack)
    }
}
