//! What only tests use (the `testing` feature): faults queued for the token
//! endpoint, a record of every secret issued, the `/admin/…` routes for a
//! fake in another process, and ways to revoke, deny and inspect.
//! `no_hooks.rs` is this module's stand-in without the feature: the same
//! [`Hooks`] interface, doing nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::FakeProvider;
use crate::http::{HttpRequest, HttpResponse};

/// A fault to answer the next token request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 503 with an HTML body.
    Unavailable,
    /// 200 with a body that is not a token.
    Garbage,
    /// No answer for this long.
    Hang(Duration),
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
    /// 400 `invalid_grant`.
    InvalidGrant,
    /// 401 `invalid_client`.
    InvalidClient,
    /// A redirect (301, 302, 303, 307, 308) to `location`.
    Redirect { status: u16, location: String },
    /// Tokens as usual, with this raw JSON as `expires_in` (`0`, `-5`,
    /// `"abc"`, `null`, `1e12`, …); an empty string leaves it out.
    ExpiresIn(String),
}

/// The fake's test state, beside its tokens.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Every secret ever issued.
    issued: HashSet<String>,
    faults: VecDeque<Fault>,
    /// A fault for every request until cleared.
    down: Option<Fault>,
    /// Faults for the next refresh of one user's token.
    user_faults: HashMap<String, VecDeque<Fault>>,
    /// When each user's refresh token last rotated.
    rotated_at: HashMap<String, Instant>,
    /// Whether /authorize answers `access_denied`.
    deny: bool,
}

impl Hooks {
    /// The fault for this token request, if one is queued (or the endpoint
    /// is down): `Err` with the answer to give, or `Ok(Some(raw))` for an
    /// `expires_in` to put in the tokens.
    pub(crate) fn injected(&mut self) -> Result<Option<String>, HttpResponse> {
        apply(self.faults.pop_front().or_else(|| self.down.clone()))
    }

    /// The same for a refresh of `user`'s token.
    pub(crate) fn injected_for(&mut self, user: &str) -> Result<Option<String>, HttpResponse> {
        apply(self.user_faults.get_mut(user).and_then(VecDeque::pop_front))
    }

    /// Records a secret the fake issued.
    pub(crate) fn issued(&mut self, secret: &str) {
        self.issued.insert(secret.to_owned());
    }

    /// Records that `user`'s refresh token rotated just now.
    pub(crate) fn rotated(&mut self, user: &str) {
        self.rotated_at.insert(user.to_owned(), Instant::now());
    }

    /// Whether `/authorize` denies.
    pub(crate) fn denies(&self) -> bool {
        self.deny
    }
}

fn apply(fault: Option<Fault>) -> Result<Option<String>, HttpResponse> {
    match fault {
        None => Ok(None),
        Some(Fault::ExpiresIn(raw)) => Ok(Some(raw)),
        Some(fault) => Err(fault_response(&fault)),
    }
}

fn fault_response(fault: &Fault) -> HttpResponse {
    match fault {
        Fault::Unavailable => HttpResponse::text(
            503,
            "text/html",
            "<html><body><h1>503 Service Unavailable</h1></body></html>",
        ),
        Fault::Garbage => HttpResponse::text(200, "application/json", "{\"acc\u{0}ess_tok"),
        Fault::Hang(d) => HttpResponse {
            delay: Some(*d),
            ..HttpResponse::empty(504)
        },
        Fault::RateLimited(secs) => HttpResponse::json(429, &json!({"error": "rate_limited"}))
            .with_header("Retry-After", &secs.to_string()),
        Fault::InvalidGrant => HttpResponse::json(
            400,
            &json!({"error": "invalid_grant", "error_description": "Refresh token revoked"}),
        ),
        Fault::InvalidClient => HttpResponse::json(
            401,
            &json!({"error": "invalid_client", "error_description": "Invalid client secret"}),
        ),
        Fault::Redirect { status, location } => {
            HttpResponse::empty(*status).with_header("Location", location)
        }
        // Not an error: handled where tokens are issued.
        Fault::ExpiresIn(_) => HttpResponse::empty(500),
    }
}

impl FakeProvider {
    /// Answers the next token request with `fault`.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().hooks.faults.push_back(fault);
    }

    /// Answers the next refresh of `user`'s token with `fault`.
    pub fn push_user_fault(&self, user: &str, fault: Fault) {
        self.lock()
            .hooks
            .user_faults
            .entry(user.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Answers every token request with `fault` until `set_down(None)`.
    pub fn set_down(&self, fault: Option<Fault>) {
        self.lock().hooks.down = fault;
    }

    /// Makes `/authorize` deny (or grant again).
    pub fn deny_authorization(&self, deny: bool) {
        self.lock().hooks.deny = deny;
    }

    /// Ends every refresh token of `user`, as a revocation would.
    pub fn revoke(&self, user: &str) {
        self.lock().refresh_tokens.retain(|_, u| u != user);
    }

    /// When `user`'s refresh token last rotated (issued by a refresh).
    pub fn last_rotation(&self, user: &str) -> Option<Instant> {
        self.lock().hooks.rotated_at.get(user).copied()
    }

    /// Every secret the fake ever issued.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().hooks.issued.iter().cloned().collect()
    }

    /// The currently valid refresh tokens of `user`.
    pub fn valid_refresh_tokens(&self, user: &str) -> Vec<String> {
        self.lock()
            .refresh_tokens
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// `/admin/issue?user=U` (a new refresh token), `/admin/revoke?user=U`,
    /// `/admin/secrets` (every secret issued, one a line),
    /// `/admin/token-requests`.
    pub(crate) fn admin(&self, req: &HttpRequest) -> HttpResponse {
        let user = req
            .query
            .get("user")
            .cloned()
            .unwrap_or_else(|| "spotify".into());
        match req.path.as_str() {
            "/admin/issue" => {
                HttpResponse::text(200, "text/plain", &self.issue_refresh_token(&user))
            }
            "/admin/revoke" => {
                self.revoke(&user);
                HttpResponse::text(200, "text/plain", "revoked")
            }
            "/admin/secrets" => {
                HttpResponse::text(200, "text/plain", &self.issued_secrets().join("\n"))
            }
            "/admin/token-requests" => {
                HttpResponse::text(200, "text/plain", &self.token_requests().to_string())
            }
            _ => HttpResponse::empty(404),
        }
    }
}
