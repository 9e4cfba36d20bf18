//! A stateful fake OAuth 2.0 provider on 127.0.0.1, for `freshd demo` and
//! the tests: a token endpoint that issues short-lived access tokens and
//! rotating, single-use refresh tokens, and a sliver of an API (`/v1/me`)
//! that checks them. Faults can be queued: 503s, garbage, hangs, 429 with
//! `Retry-After`, `invalid_grant`, `invalid_client`, and what no real server
//! does: redirects from the token endpoint, absurd `expires_in` values.
//!
//! It counts every request and remembers every secret it issued, so a test
//! can search freshd's output for all of them.

pub mod http;
pub mod web;

use crate::sync::MutexExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use http::{HttpRequest, HttpResponse};

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

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// `expires_in` of each access token.
    pub token_lifetime: Duration,
    /// Whether each refresh issues a new refresh token (and ends the old).
    pub rotate: bool,
    /// The client id it accepts.
    pub client_id: String,
    /// Serve `/admin/…` (issue, revoke, list secrets) for tests that drive
    /// the fake from another process.
    pub admin: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3600),
            rotate: true,
            client_id: "freshd-test-client".into(),
            admin: false,
        }
    }
}

#[derive(Debug, Default)]
struct FakeState {
    /// Valid refresh tokens → the account ("user") they belong to.
    refresh_tokens: HashMap<String, String>,
    /// Valid access tokens → their expiry.
    access_tokens: HashMap<String, Timestamp>,
    /// Every secret ever issued.
    issued: HashSet<String>,
    faults: VecDeque<Fault>,
    /// Faults that apply to every request until cleared.
    down: Option<Fault>,
    /// Faults for the next refresh of one user's token.
    user_faults: HashMap<String, VecDeque<Fault>>,
    /// When each user's refresh token last rotated.
    rotated_at: HashMap<String, std::time::Instant>,
    /// Authorization codes → (user, PKCE challenge, redirect URI).
    codes: HashMap<String, (String, String, String)>,
    /// Whether /authorize answers `access_denied`.
    deny: bool,
    token_requests: u64,
    api_requests: u64,
    serial: u64,
}

/// The running fake.
#[derive(Debug, Clone)]
pub struct FakeProvider {
    pub addr: SocketAddr,
    options: FakeOptions,
    state: Arc<Mutex<FakeState>>,
    web: Arc<Mutex<web::WebState>>,
    cancel: CancellationToken,
}

impl FakeProvider {
    /// Starts on `127.0.0.1:0`.
    pub async fn start(options: FakeOptions) -> std::io::Result<Self> {
        Self::start_on(0, options).await
    }

    /// Starts on `127.0.0.1:port`.
    pub async fn start_on(port: u16, options: FakeOptions) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let cancel = CancellationToken::new();
        let mut fake = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            options,
            state,
            web: Arc::default(),
            cancel: cancel.clone(),
        };
        let handler_fake = fake.clone();
        let handler: http::Handler = Arc::new(move |req| {
            let f = handler_fake.clone();
            Box::pin(async move { f.handle(&req) })
        });
        fake.addr = http::serve(port, handler, cancel).await?;
        Ok(fake)
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_url(&self) -> String {
        format!("{}/api/token", self.base_url())
    }

    pub fn api_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.locked()
    }

    /// Issues a refresh token for `user`, as an authorization would.
    pub fn issue_refresh_token(&self, user: &str) -> String {
        let mut s = self.lock();
        s.serial += 1;
        let token = format!("rt-{user}-{}-{:016x}", s.serial, fastrand::u64(..));
        s.refresh_tokens.insert(token.clone(), user.to_owned());
        s.issued.insert(token.clone());
        token
    }

    /// Ends every refresh token of `user`, as a revocation would.
    pub fn revoke(&self, user: &str) {
        self.lock().refresh_tokens.retain(|_, u| u != user);
    }

    /// Makes `/authorize` deny (or grant again).
    pub fn deny_authorization(&self, deny: bool) {
        self.lock().deny = deny;
    }

    /// Answers the next token request with `fault`.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Answers the next refresh of `user`'s token with `fault`.
    pub fn push_user_fault(&self, user: &str, fault: Fault) {
        self.lock()
            .user_faults
            .entry(user.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// When `user`'s refresh token last rotated (issued by a refresh).
    pub fn last_rotation(&self, user: &str) -> Option<std::time::Instant> {
        self.lock().rotated_at.get(user).copied()
    }

    /// Answers every token request with `fault` until `set_down(None)`.
    pub fn set_down(&self, fault: Option<Fault>) {
        self.lock().down = fault;
    }

    pub fn token_requests(&self) -> u64 {
        self.lock().token_requests
    }

    pub fn api_requests(&self) -> u64 {
        self.lock().api_requests
    }

    /// Every secret the fake ever issued.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.iter().cloned().collect()
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

    fn handle(&self, req: &HttpRequest) -> HttpResponse {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/token") => self.token(req),
            ("GET", "/authorize") => self.authorize(req),
            (_, p) if self.options.admin && p.starts_with("/admin/") => self.admin(req),
            (_, p) if p.starts_with("/v1/") => {
                let authorized = self.authorized(req);
                self.lock().api_requests += 1;
                let mut web = self.web();
                let delay = web.delay;
                let mut response = web.handle(req, &p[3..], authorized);
                response.delay = delay;
                response
            }
            _ => HttpResponse::json(
                404,
                &json!({"error": {"status": 404, "message": "Service not found"}}),
            ),
        }
    }

    fn token(&self, req: &HttpRequest) -> HttpResponse {
        let mut s = self.lock();
        s.token_requests += 1;
        let mut expires_in = None;
        match s.faults.pop_front().or_else(|| s.down.clone()) {
            Some(Fault::ExpiresIn(raw)) => expires_in = Some(raw),
            Some(fault) => return fault_response(&fault),
            None => {}
        }
        let form = req.form();
        let client_ok = form.get("client_id").map(String::as_str)
            == Some(self.options.client_id.as_str())
            || req
                .header("authorization")
                .is_some_and(|a| a.starts_with("Basic "));
        if !client_ok {
            return HttpResponse::json(
                401,
                &json!({"error": "invalid_client", "error_description": "Invalid client"}),
            );
        }
        let by_code = form.get("grant_type").map(String::as_str) == Some("authorization_code");
        let user = match form.get("grant_type").map(String::as_str) {
            Some("refresh_token") => {
                let Some(rt) = form.get("refresh_token") else {
                    return HttpResponse::json(
                        400,
                        &json!({"error": "invalid_request", "error_description": "refresh_token must be supplied"}),
                    );
                };
                let owner = s.refresh_tokens.get(rt).cloned();
                match owner
                    .as_ref()
                    .and_then(|u| s.user_faults.get_mut(u))
                    .and_then(VecDeque::pop_front)
                {
                    Some(Fault::ExpiresIn(raw)) => expires_in = Some(raw),
                    Some(fault) => return fault_response(&fault),
                    None => {}
                }
                let Some(user) = owner else {
                    return HttpResponse::json(
                        400,
                        &json!({"error": "invalid_grant", "error_description": "Refresh token revoked"}),
                    );
                };
                if self.options.rotate {
                    s.refresh_tokens.remove(rt);
                }
                user
            }
            Some("client_credentials") => "client".to_owned(),
            Some("authorization_code") => match self.redeem(&mut s, &form) {
                Ok(user) => user,
                Err(response) => return response,
            },
            _ => return HttpResponse::json(400, &json!({"error": "unsupported_grant_type"})),
        };
        s.serial += 1;
        let serial = s.serial;
        let access = format!("at-{user}-{serial}-{:016x}", fastrand::u64(..));
        let lifetime = self.options.token_lifetime;
        let expires = Timestamp::now()
            .checked_add(
                jiff::SignedDuration::try_from(lifetime).unwrap_or(jiff::SignedDuration::ZERO),
            )
            .unwrap_or(Timestamp::MAX);
        s.access_tokens.insert(access.clone(), expires);
        s.issued.insert(access.clone());
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": "user-read-currently-playing playlist-modify-private",
        });
        match expires_in.as_deref() {
            Some("") => {
                body.as_object_mut().map(|b| b.remove("expires_in"));
            }
            Some(raw) => {
                body["expires_in"] = serde_json::from_str(raw).unwrap_or_else(|_| json!(raw));
            }
            None => {}
        }
        if (self.options.rotate || by_code) && user != "client" {
            let rt = format!("rt-{user}-{serial}-{:016x}", fastrand::u64(..));
            s.refresh_tokens.insert(rt.clone(), user.clone());
            s.issued.insert(rt.clone());
            s.rotated_at.insert(user.clone(), std::time::Instant::now());
            body["refresh_token"] = json!(rt);
        }
        HttpResponse::json(200, &body)
    }

    /// `/admin/issue?user=U` (a new refresh token), `/admin/revoke?user=U`,
    /// `/admin/secrets` (every secret issued, one a line).
    fn admin(&self, req: &HttpRequest) -> HttpResponse {
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

    /// `/authorize`: the user "logs in" at once; the browser is sent back
    /// to `redirect_uri` with a code bound to the PKCE challenge, or with
    /// `access_denied`.
    fn authorize(&self, req: &HttpRequest) -> HttpResponse {
        let q = &req.query;
        let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return HttpResponse::text(400, "text/plain", "redirect_uri and state are required");
        };
        if q.get("client_id") != Some(&self.options.client_id)
            || q.get("response_type").map(String::as_str) != Some("code")
            || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            return HttpResponse::text(400, "text/plain", "INVALID_CLIENT or missing S256 PKCE");
        }
        let mut s = self.lock();
        let params = if s.deny {
            serde_urlencoded::to_string([("error", "access_denied"), ("state", state)])
        } else {
            s.serial += 1;
            let code = format!("code-{}-{:016x}", s.serial, fastrand::u64(..));
            let challenge = q.get("code_challenge").cloned().unwrap_or_default();
            s.codes.insert(
                code.clone(),
                ("spotify".into(), challenge, redirect.clone()),
            );
            s.issued.insert(code.clone());
            serde_urlencoded::to_string([("code", code.as_str()), ("state", state)])
        };
        let location = format!("{redirect}?{}", params.unwrap_or_default());
        HttpResponse::empty(302).with_header("Location", &location)
    }

    /// The authorization_code grant: single-use code, same redirect URI,
    /// and a verifier whose S256 hash is the challenge.
    fn redeem(
        &self,
        s: &mut FakeState,
        form: &HashMap<String, String>,
    ) -> Result<String, HttpResponse> {
        use base64::Engine;
        use sha2::Digest;
        let invalid = |why: &str| {
            HttpResponse::json(
                400,
                &json!({"error": "invalid_grant", "error_description": why}),
            )
        };
        let code = form.get("code").ok_or_else(|| invalid("code missing"))?;
        let (user, challenge, redirect) = s
            .codes
            .remove(code)
            .ok_or_else(|| invalid("Invalid authorization code"))?;
        if form.get("redirect_uri") != Some(&redirect) {
            return Err(invalid("Invalid redirect URI"));
        }
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| invalid("code_verifier required"))?;
        let hash = sha2::Sha256::digest(verifier.as_bytes());
        if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash) != challenge {
            return Err(invalid("code_verifier was incorrect"));
        }
        Ok(user)
    }

    /// Whether `req` carries an access token that is valid now.
    pub fn authorized(&self, req: &HttpRequest) -> bool {
        let s = self.lock();
        req.bearer()
            .and_then(|t| s.access_tokens.get(t))
            .is_some_and(|exp| *exp > Timestamp::now())
    }

    /// The Web API's state, to arrange or inspect.
    pub fn web(&self) -> std::sync::MutexGuard<'_, web::WebState> {
        self.web.locked()
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
