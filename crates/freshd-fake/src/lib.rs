//! A stateful fake OAuth 2.0 provider on 127.0.0.1, for `freshd demo` and
//! freshd's tests: a token endpoint that issues short-lived access tokens
//! and rotating, single-use refresh tokens, an `/authorize` page that logs
//! the user in at once (PKCE S256), and a sliver of the Spotify Web API
//! (`/v1/…`, see [`web`]) that checks them.
//!
//! The `testing` feature adds what only tests use (in `hooks.rs`): faults
//! to queue (503s, garbage, hangs, 429 with `Retry-After`, `invalid_grant`,
//! `invalid_client`, and what no real server does: redirects from the token
//! endpoint, absurd `expires_in` values), the `/admin/…` routes, and a record
//! of every secret issued, so a test can search freshd's output for all of
//! them. Without it (the release binary's `freshd demo`) none of that is
//! compiled in.

pub mod http;
pub mod web;

#[cfg(feature = "testing")]
mod hooks;
#[cfg(not(feature = "testing"))]
#[path = "no_hooks.rs"]
mod hooks;

#[cfg(feature = "testing")]
pub use hooks::Fault;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use http::{HttpRequest, HttpResponse};

/// Locks `mutex`, taking its data even if a panicking holder poisoned it:
/// the fake's state stays usable for the rest of a test.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    #[cfg(feature = "testing")]
    pub admin: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3600),
            rotate: true,
            client_id: "freshd-test-client".into(),
            #[cfg(feature = "testing")]
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
    /// Authorization codes → (user, PKCE challenge, redirect URI).
    codes: HashMap<String, (String, String, String)>,
    token_requests: u64,
    api_requests: u64,
    serial: u64,
    /// Faults and records for tests (nothing without `testing`).
    hooks: hooks::Hooks,
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

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        locked(&self.state)
    }

    /// Issues a refresh token for `user`, as an authorization would.
    pub fn issue_refresh_token(&self, user: &str) -> String {
        let mut s = self.lock();
        s.serial += 1;
        let token = format!("rt-{user}-{}-{:016x}", s.serial, fastrand::u64(..));
        s.refresh_tokens.insert(token.clone(), user.to_owned());
        s.hooks.issued(&token);
        token
    }

    pub fn token_requests(&self) -> u64 {
        self.lock().token_requests
    }

    pub fn api_requests(&self) -> u64 {
        self.lock().api_requests
    }

    /// The Web API's state, to arrange or inspect.
    pub fn web(&self) -> MutexGuard<'_, web::WebState> {
        locked(&self.web)
    }

    fn handle(&self, req: &HttpRequest) -> HttpResponse {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/token") => self.token(req).unwrap_or_else(|e| e),
            ("GET", "/authorize") => self.authorize(req),
            #[cfg(feature = "testing")]
            (_, p) if self.options.admin && p.starts_with("/admin/") => self.admin(req),
            (_, p) if p.starts_with("/v1/") => {
                let authorized = self.authorized(req);
                self.lock().api_requests += 1;
                self.web().handle(req, &p[3..], authorized)
            }
            _ => HttpResponse::json(
                404,
                &json!({"error": {"status": 404, "message": "Service not found"}}),
            ),
        }
    }

    /// The token endpoint: the refresh_token, client_credentials and
    /// authorization_code grants.
    fn token(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let mut s = self.lock();
        s.token_requests += 1;
        let mut expires_in = s.hooks.injected()?;
        let form = req.form();
        let client_ok = form.get("client_id").map(String::as_str)
            == Some(self.options.client_id.as_str())
            || req
                .header("authorization")
                .is_some_and(|a| a.starts_with("Basic "));
        if !client_ok {
            return Err(HttpResponse::json(
                401,
                &json!({"error": "invalid_client", "error_description": "Invalid client"}),
            ));
        }
        let by_code = form.get("grant_type").map(String::as_str) == Some("authorization_code");
        let user = match form.get("grant_type").map(String::as_str) {
            Some("refresh_token") => {
                let (user, raw) = self.refresh_grant(&mut s, &form)?;
                expires_in = raw.or(expires_in);
                user
            }
            Some("client_credentials") => "client".to_owned(),
            Some("authorization_code") => Self::redeem(&mut s, &form)?,
            _ => {
                return Err(HttpResponse::json(
                    400,
                    &json!({"error": "unsupported_grant_type"}),
                ));
            }
        };
        Ok(self.issue(&mut s, &user, by_code, expires_in.as_deref()))
    }

    /// The refresh_token grant: the user the token belongs to (the token
    /// ends if tokens rotate), and an `expires_in` a test asked for.
    fn refresh_grant(
        &self,
        s: &mut FakeState,
        form: &HashMap<String, String>,
    ) -> Result<(String, Option<String>), HttpResponse> {
        let rt = form.get("refresh_token").ok_or_else(|| {
            HttpResponse::json(
                400,
                &json!({"error": "invalid_request", "error_description": "refresh_token must be supplied"}),
            )
        })?;
        let owner = s.refresh_tokens.get(rt).cloned();
        let expires_in = match &owner {
            Some(user) => s.hooks.injected_for(user)?,
            None => None,
        };
        let user = owner.ok_or_else(|| {
            HttpResponse::json(
                400,
                &json!({"error": "invalid_grant", "error_description": "Refresh token revoked"}),
            )
        })?;
        if self.options.rotate {
            s.refresh_tokens.remove(rt);
        }
        Ok((user, expires_in))
    }

    /// Issues an access token (and a refresh token, if they rotate or a
    /// code was redeemed) to `user`; `expires_in` replaces the raw JSON of
    /// that field ("" leaves it out).
    fn issue(
        &self,
        s: &mut FakeState,
        user: &str,
        by_code: bool,
        expires_in: Option<&str>,
    ) -> HttpResponse {
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
        s.hooks.issued(&access);
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": "user-read-currently-playing playlist-modify-private",
        });
        match expires_in {
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
            s.refresh_tokens.insert(rt.clone(), user.to_owned());
            s.hooks.issued(&rt);
            s.hooks.rotated(user);
            body["refresh_token"] = json!(rt);
        }
        HttpResponse::json(200, &body)
    }

    /// `/authorize`: the user "logs in" at once; the browser is sent back
    /// to `redirect_uri` with a code bound to the PKCE challenge, or (when
    /// a test asked) with `access_denied`.
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
        let params = if s.hooks.denies() {
            serde_urlencoded::to_string([("error", "access_denied"), ("state", state)])
        } else {
            s.serial += 1;
            let code = format!("code-{}-{:016x}", s.serial, fastrand::u64(..));
            let challenge = q.get("code_challenge").cloned().unwrap_or_default();
            s.codes.insert(
                code.clone(),
                ("spotify".into(), challenge, redirect.clone()),
            );
            s.hooks.issued(&code);
            serde_urlencoded::to_string([("code", code.as_str()), ("state", state)])
        };
        let location = format!("{redirect}?{}", params.unwrap_or_default());
        HttpResponse::empty(302).with_header("Location", &location)
    }

    /// The authorization_code grant: single-use code, same redirect URI,
    /// and a verifier whose S256 hash is the challenge.
    fn redeem(s: &mut FakeState, form: &HashMap<String, String>) -> Result<String, HttpResponse> {
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
    fn authorized(&self, req: &HttpRequest) -> bool {
        let s = self.lock();
        req.bearer()
            .and_then(|t| s.access_tokens.get(t))
            .is_some_and(|exp| *exp > Timestamp::now())
    }
}
