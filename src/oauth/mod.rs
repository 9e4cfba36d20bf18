//! Token keeping: one [`TokenManager`] per account holds the access token
//! in memory and refreshes it ahead of expiry (DESIGN §5).
//!
//! Invariants:
//! - One refresh at a time per account: [`TokenManager::refresh_lock`] is
//!   held across the request, and whoever gets it next first looks whether
//!   the token is fresh now, so a thousand callers at expiry make one
//!   request.
//! - A rotated refresh token is stored before the new access token is handed
//!   out; a store failure is logged and shown in `status`, and the token is
//!   kept in memory so the next refresh still works.
//! - After `invalid_grant` (or a refused client) nothing is sent again until
//!   a reload or a new token: the state is `needs_login`.
//! - Waits use the wall clock in 30 s steps, so a token that expired during
//!   a suspend is refreshed right after waking.

pub mod discovery;
pub mod endpoint;
pub mod login;
pub mod logout;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Account, Grant, format_duration};
use crate::scheduler::{Clock, sleep_until_wall};
use crate::secrets::{self, SecretError, SecretKind, SecretStore};
use crate::status::AccountStatus;
use endpoint::{GrantRequest, RefreshError, TokenEndpoint, Tokens};

/// A token handed out has at least this much life left (or a quarter of
/// its lifetime, for very short-lived tokens), so a script that asks for one
/// can still use it.
const MIN_VALIDITY: Duration = Duration::from_secs(10);
/// The first retry after a transient failure waits this long; each next one
/// twice as long.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// The longest wait between retries: ten minutes keeps a long outage cheap
/// while recovering within minutes once the provider is back.
const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Up to this share of the refresh margin is added at random per account,
/// so that many accounts do not refresh in the same second: with the
/// default 5-minute margin, refreshes spread over a minute (a thousand
/// accounts: about 2 % a second).
const JITTER_SHARE: f64 = 0.2;
/// Warn this long before a refresh token's known end of life (DESIGN §5).
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// An account's state, as pizauth models it: one of these, never flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// No refresh token in the store.
    NoToken,
    /// Nothing fetched yet (before the first refresh).
    Idle,
    /// An access token is held and refreshed on time.
    Fresh,
    Refreshing,
    /// The last attempt failed for a reason that may pass.
    Backoff {
        until: Timestamp,
    },
    /// The provider refused the refresh token or the client.
    NeedsLogin {
        reason: String,
    },
}

impl TokenState {
    /// The `state` word of `status --json`.
    pub fn word(&self) -> &'static str {
        match self {
            TokenState::NoToken => "no_token",
            TokenState::Idle | TokenState::Fresh => "ok",
            TokenState::Refreshing => "refreshing",
            TokenState::Backoff { .. } => "backoff",
            TokenState::NeedsLogin { .. } => "needs_login",
        }
    }
}

/// Why no token can be handed out now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "account {account} has no refresh token: run `freshd login {account}` or `freshd import-token {account}`, then `freshd reload`"
    )]
    NoToken { account: String },
    #[error(
        "account {account} needs a new login ({reason}): run `freshd login {account}`, then `freshd reload`"
    )]
    NeedsLogin { account: String, reason: String },
    #[error("account {account} cannot refresh its token now ({reason}); next try at {until}")]
    Backoff {
        account: String,
        reason: String,
        until: Timestamp,
    },
}

struct Access {
    token: SecretString,
    expires_at: Option<Timestamp>,
    lifetime: Option<Duration>,
}

struct Inner {
    state: TokenState,
    refresh_token: Option<SecretString>,
    access: Option<Access>,
    last_refresh: Option<Timestamp>,
    last_error: Option<String>,
    /// When the refresh token was obtained, for providers that limit its life.
    obtained_at: Option<Timestamp>,
    warned_expiry: bool,
    /// Transient failures in a row, for the backoff.
    failures: u32,
}

/// Keeps one account's access token fresh.
pub struct TokenManager {
    account: Arc<Account>,
    endpoint: Arc<dyn TokenEndpoint>,
    store: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    state_dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// Held across a refresh: at most one request per account at a time.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Bumped after every refresh attempt: callers who found a refresh in
    /// flight wait on this, all woken at once, instead of queueing on the lock.
    refreshed: tokio::sync::watch::Sender<u64>,
    /// Wakes the background task when the plan may have changed.
    wake: Notify,
    /// This account's share of [`JITTER_SHARE`], fixed for its lifetime.
    jitter: f64,
    /// Told after every refresh attempt (the daemon's `STATUS=` line).
    observer: std::sync::OnceLock<Arc<Notify>>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("account", &self.account.name)
            .field("state", &self.lock().state)
            .finish_non_exhaustive()
    }
}

/// What freshd remembers of a refresh token besides the token itself.
#[derive(Debug, Serialize, Deserialize)]
struct TokenInfo {
    refresh_token_obtained_at: Timestamp,
}

impl TokenManager {
    pub fn new(
        account: Arc<Account>,
        endpoint: Arc<dyn TokenEndpoint>,
        store: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        state_dir: Option<PathBuf>,
    ) -> Arc<Self> {
        Arc::new(Self {
            account,
            endpoint,
            store,
            clock,
            state_dir,
            inner: Mutex::new(Inner {
                state: TokenState::Idle,
                refresh_token: None,
                access: None,
                last_refresh: None,
                last_error: None,
                obtained_at: None,
                warned_expiry: false,
                failures: 0,
            }),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshed: tokio::sync::watch::Sender::new(0),
            wake: Notify::new(),
            jitter: fastrand::f64(),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sets who is told after each refresh attempt (once).
    pub fn set_observer(&self, observer: Arc<Notify>) {
        let _ = self.observer.set(observer);
    }

    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn name(&self) -> &str {
        &self.account.name
    }

    /// Reads the refresh token from the store. A store that cannot be read
    /// is an error (the daemon exits 78); a missing token is the `no_token`
    /// state and a warning.
    pub async fn load(&self) -> Result<(), SecretError> {
        if self.account.grant == Grant::ClientCredentials {
            return Ok(());
        }
        let token = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await?;
        let obtained_at = self.token_info();
        let mut inner = self.lock();
        match token {
            Some(t) => {
                inner.refresh_token = Some(t);
                if matches!(
                    inner.state,
                    TokenState::NoToken | TokenState::NeedsLogin { .. }
                ) {
                    inner.state = TokenState::Idle;
                    inner.last_error = None;
                }
                inner.obtained_at = obtained_at;
            }
            None => {
                inner.refresh_token = None;
                inner.state = TokenState::NoToken;
                tracing::warn!(
                    ACCOUNT = %self.name(),
                    "no refresh token in {}: run `freshd login {}` or `freshd import-token {}`, then `freshd reload`",
                    self.store.hint(self.name(), SecretKind::RefreshToken),
                    self.name(),
                    self.name()
                );
            }
        }
        drop(inner);
        if self.account.refresh_token_lifetime.is_some() && obtained_at.is_none() {
            // Unknown age: count from now, and say so in the log once.
            tracing::info!(ACCOUNT = %self.name(), "the refresh token's age is unknown; counting its lifetime from now");
            self.record_obtained(self.clock.now());
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Re-reads the store for an account that has no usable refresh token,
    /// as a reload does; accounts that work are left alone.
    pub async fn reload_secret(&self) -> Result<(), SecretError> {
        let stuck = matches!(
            self.lock().state,
            TokenState::NoToken | TokenState::NeedsLogin { .. }
        );
        if stuck { self.load().await } else { Ok(()) }
    }

    fn info_path(&self) -> Option<PathBuf> {
        self.state_dir
            .as_ref()
            .map(|d| d.join(format!("{}.token-info.json", self.name())))
    }

    fn token_info(&self) -> Option<Timestamp> {
        let text = std::fs::read_to_string(self.info_path()?).ok()?;
        serde_json::from_str::<TokenInfo>(&text)
            .ok()
            .map(|i| i.refresh_token_obtained_at)
    }

    /// Remembers that the refresh token was obtained at `at` (after a login
    /// or import, or when first seen).
    pub fn record_obtained(&self, at: Timestamp) {
        self.lock().obtained_at = Some(at);
        let Some(path) = self.info_path() else { return };
        let info = TokenInfo {
            refresh_token_obtained_at: at,
        };
        let text = serde_json::to_string(&info).unwrap_or_default();
        if let Err(e) = crate::fsutil::write_private(&path, text.as_bytes()) {
            tracing::warn!(ACCOUNT = %self.name(), "cannot record when the refresh token was obtained in {}: {e}", path.display());
        }
    }

    /// A valid access token: the held one if it has enough life left, else
    /// a refreshed one. Never waits out a backoff: during one it fails at
    /// once with the time of the next attempt.
    pub async fn access_token(&self) -> Result<SecretString, TokenError> {
        loop {
            if let Some(answer) = self.answer_from_memory(self.clock.now()) {
                return answer;
            }
            // Subscribe before trying the lock, so a refresh that ends in
            // between is not missed.
            let mut done = self.refreshed.subscribe();
            if let Ok(_guard) = self.refresh_lock.try_lock() {
                // Whoever held the lock before us may have refreshed already.
                if let Some(answer) = self.answer_from_memory(self.clock.now()) {
                    return answer;
                }
                return self.refresh().await;
            }
            // A refresh is in flight: wait for it, then look again.
            if done.changed().await.is_err() {
                let _guard = self.refresh_lock.lock().await;
            }
        }
    }

    /// Forgets `rejected` (an API answered 401 to it) and refreshes, unless
    /// someone already replaced it.
    pub async fn refresh_after_401(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        let _guard = self.refresh_lock.lock().await;
        {
            let mut inner = self.lock();
            let same = inner
                .access
                .as_ref()
                .is_some_and(|a| a.token.expose_secret() == rejected.expose_secret());
            if same {
                inner.access = None;
            }
        }
        if let Some(answer) = self.answer_from_memory(self.clock.now()) {
            return answer;
        }
        self.refresh().await
    }

    /// `Some` when memory alone can answer: a usable token, or a state that
    /// forbids asking the provider now.
    fn answer_from_memory(&self, now: Timestamp) -> Option<Result<SecretString, TokenError>> {
        let inner = self.lock();
        if let Some(a) = &inner.access
            && usable(a, now)
        {
            return Some(Ok(a.token.clone()));
        }
        let account = self.name().to_owned();
        match &inner.state {
            TokenState::NoToken => Some(Err(TokenError::NoToken { account })),
            TokenState::NeedsLogin { reason } => Some(Err(TokenError::NeedsLogin {
                account,
                reason: reason.clone(),
            })),
            TokenState::Backoff { until, .. } if now < *until => Some(Err(TokenError::Backoff {
                account,
                reason: inner.last_error.clone().unwrap_or_default(),
                until: *until,
            })),
            _ => None,
        }
    }

    /// One request to the token endpoint, with the outcome recorded. The
    /// caller holds [`Self::refresh_lock`].
    async fn refresh(&self) -> Result<SecretString, TokenError> {
        let grant_token = {
            let mut inner = self.lock();
            let token = match self.account.grant {
                Grant::ClientCredentials => None,
                Grant::AuthorizationCode => match &inner.refresh_token {
                    Some(t) => Some(t.clone()),
                    None => {
                        inner.state = TokenState::NoToken;
                        return Err(TokenError::NoToken {
                            account: self.name().to_owned(),
                        });
                    }
                },
            };
            inner.state = TokenState::Refreshing;
            token
        };
        let grant = match &grant_token {
            Some(t) => GrantRequest::RefreshToken(t),
            None => GrantRequest::ClientCredentials,
        };
        tracing::debug!(ACCOUNT = %self.name(), "refreshing the access token");
        let result = self.endpoint.request(grant).await;
        let outcome = match result {
            Ok(tokens) => Ok(self.accept(tokens, grant_token.as_ref()).await),
            Err(e) => Err(self.fail(e)),
        };
        self.wake.notify_one();
        self.refreshed.send_modify(|n| *n += 1);
        if let Some(o) = self.observer.get() {
            o.notify_one();
        }
        outcome
    }

    /// Records new tokens: a rotated refresh token is stored first.
    async fn accept(&self, tokens: Tokens, sent: Option<&SecretString>) -> SecretString {
        let mut store_error = None;
        if let Some(new) = &tokens.refresh_token
            && sent.is_none_or(|old| old.expose_secret() != new.expose_secret())
        {
            match secrets::set(
                &self.store,
                self.name(),
                SecretKind::RefreshToken,
                new.clone(),
            )
            .await
            {
                Ok(()) => {
                    tracing::info!(ACCOUNT = %self.name(), "stored the rotated refresh token")
                }
                Err(e) => {
                    let msg = format!(
                        "cannot store the rotated refresh token ({e}); it is kept in memory until the store works again"
                    );
                    tracing::error!(ACCOUNT = %self.name(), "{msg}");
                    store_error = Some(msg);
                }
            }
        }
        let now = self.clock.now();
        let expires_at = tokens
            .expires_in
            .and_then(|d| SignedDuration::try_from(d).ok())
            .and_then(|d| now.checked_add(d).ok());
        let access = Access {
            token: tokens.access_token.clone(),
            expires_at,
            lifetime: tokens.expires_in,
        };
        let next = self.refresh_at(&access);
        let mut inner = self.lock();
        if let Some(new) = tokens.refresh_token {
            inner.refresh_token = Some(new);
        }
        inner.access = Some(access);
        inner.state = TokenState::Fresh;
        inner.failures = 0;
        inner.last_refresh = Some(now);
        inner.last_error = store_error;
        match (expires_at, next) {
            (Some(exp), Some(next)) => tracing::info!(
                ACCOUNT = %self.name(),
                "access token refreshed; it expires at {}, next refresh at {}",
                exp.round(jiff::Unit::Second).unwrap_or(exp),
                next.round(jiff::Unit::Second).unwrap_or(next)
            ),
            _ => {
                tracing::info!(ACCOUNT = %self.name(), "access token fetched; the provider gives it no expiry")
            }
        }
        self.check_expiry_warning(&mut inner, now);
        tokens.access_token
    }

    fn fail(&self, e: RefreshError) -> TokenError {
        let now = self.clock.now();
        let mut inner = self.lock();
        let account = self.name().to_owned();
        match e {
            RefreshError::Transient {
                reason,
                retry_after,
            } => {
                inner.failures += 1;
                let attempt = inner.failures;
                let delay = backoff_delay(attempt).max(retry_after.unwrap_or_default());
                let until = now
                    .checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
                    .unwrap_or(Timestamp::MAX);
                tracing::warn!(ACCOUNT = %account, "token refresh failed: {reason}; next try in {} (attempt {attempt})", format_duration(delay));
                inner.state = TokenState::Backoff { until };
                inner.last_error = Some(reason.clone());
                TokenError::Backoff {
                    account,
                    reason,
                    until,
                }
            }
            RefreshError::Revoked { reason } => {
                tracing::error!(
                    ACCOUNT = %account,
                    "the provider refused the refresh token ({reason}): run `freshd login {account}`; freshd will not try again until then or a reload"
                );
                inner.state = TokenState::NeedsLogin {
                    reason: reason.clone(),
                };
                inner.last_error = Some(reason.clone());
                TokenError::NeedsLogin { account, reason }
            }
            RefreshError::Rejected { reason } => {
                let reason = format!(
                    "the provider refused the client ({reason}); check client_id, client_secret and the token URL in the config"
                );
                tracing::error!(ACCOUNT = %account, "{reason}; freshd will not try again until a reload");
                inner.state = TokenState::NeedsLogin {
                    reason: reason.clone(),
                };
                inner.last_error = Some(reason.clone());
                TokenError::NeedsLogin { account, reason }
            }
        }
    }

    /// When the held token should be refreshed: `refresh_before_expiry`
    /// ahead (at most half the token's life), less this account's jitter.
    fn refresh_at(&self, a: &Access) -> Option<Timestamp> {
        let (exp, lifetime) = (a.expires_at?, a.lifetime?);
        let margin = self.account.refresh_before_expiry.min(lifetime / 2);
        let margin = margin.mul_f64(1.0 + JITTER_SHARE * self.jitter);
        exp.checked_sub(SignedDuration::try_from(margin).ok()?).ok()
    }

    fn check_expiry_warning(&self, inner: &mut Inner, now: Timestamp) {
        let (Some(obtained), Some(lifetime)) =
            (inner.obtained_at, self.account.refresh_token_lifetime)
        else {
            return;
        };
        let Some(w) = expiry_warning(self.name(), obtained, lifetime, now) else {
            return;
        };
        if !inner.warned_expiry {
            tracing::warn!(ACCOUNT = %self.name(), "{w}");
            inner.warned_expiry = true;
        }
    }

    /// Refreshes if the plan says it is time (the background task's step).
    async fn refresh_if_due(&self) {
        let _guard = self.refresh_lock.lock().await;
        let now = self.clock.now();
        let due = {
            let inner = self.lock();
            match &inner.state {
                TokenState::Idle => true,
                TokenState::Fresh => inner
                    .access
                    .as_ref()
                    .and_then(|a| self.refresh_at(a))
                    .is_some_and(|t| t <= now),
                TokenState::Backoff { until, .. } => *until <= now,
                _ => false,
            }
        };
        if due {
            let _ = self.refresh().await;
        }
    }

    /// When the background task should next act, if at all.
    fn next_wake(&self) -> Option<Timestamp> {
        let inner = self.lock();
        match &inner.state {
            TokenState::Idle => Some(self.clock.now()),
            TokenState::Fresh => inner.access.as_ref().and_then(|a| self.refresh_at(a)),
            TokenState::Backoff { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// The background refresher: sleeps until the next planned refresh (or
    /// retry) and does it. Runs until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wake = self.next_wake();
            let sleep = async {
                match wake {
                    Some(t) => sleep_until_wall(self.clock.as_ref(), t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = sleep => self.refresh_if_due().await,
            }
        }
    }

    /// The first refresh, done before the daemon says it is ready.
    pub async fn initial_refresh(&self) {
        let _guard = self.refresh_lock.lock().await;
        if self.lock().state == TokenState::Idle {
            let _ = self.refresh().await;
        }
    }

    /// What `status` shows. Holds no secret.
    pub fn status(&self) -> AccountStatus {
        let now = self.clock.now();
        let inner = self.lock();
        let warning = match (inner.obtained_at, self.account.refresh_token_lifetime) {
            (Some(o), Some(l)) if inner.refresh_token.is_some() => {
                expiry_warning(self.name(), o, l, now)
            }
            _ => None,
        };
        AccountStatus {
            name: self.name().to_owned(),
            state: inner.state.word().to_owned(),
            access_token_expires_at: inner.access.as_ref().and_then(|a| a.expires_at),
            last_refresh: inner.last_refresh,
            last_error: inner.last_error.clone(),
            warning,
        }
    }
}

fn usable(a: &Access, now: Timestamp) -> bool {
    let (Some(exp), Some(lifetime)) = (a.expires_at, a.lifetime) else {
        return a.expires_at.is_none_or(|exp| exp > now);
    };
    let need = MIN_VALIDITY.min(lifetime / 4);
    crate::scheduler::until(now, exp) > need
}

/// `BACKOFF_BASE · 2^(attempt-1)`, capped, with ±20 % jitter.
fn backoff_delay(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(BACKOFF_CAP).mul_f64(0.8 + 0.4 * fastrand::f64())
}

fn expiry_warning(
    account: &str,
    obtained: Timestamp,
    lifetime: Duration,
    now: Timestamp,
) -> Option<String> {
    let end = obtained
        .checked_add(SignedDuration::try_from(lifetime).ok()?)
        .ok()?;
    let warn_from = end
        .checked_sub(SignedDuration::try_from(EXPIRY_WARNING).ok()?)
        .ok()?;
    (now >= warn_from).then(|| {
        format!(
            "the refresh token was obtained on {} and the provider ends it around {}: run `freshd login {account}` before then",
            obtained.strftime("%Y-%m-%d"),
            end.strftime("%Y-%m-%d")
        )
    })
}

#[cfg(test)]
mod tests;
