//! Token keeping: one [`TokenManager`] per account holds the access token
//! in memory and refreshes it ahead of expiry (DESIGN §5).
//!
//! Invariants:
//! - One token request at a time per account: [`TokenManager::refresh_lock`]
//!   is held across the request, by a task of its own that finishes (and
//!   stores a rotation) even when whoever asked gives up or the daemon is
//!   stopping; [`TokenManager::finish`] waits for it before exit.
//! - A rotated refresh token is stored before the new access token is handed
//!   out. Before writing, the store is read: if it changed since freshd last
//!   read or wrote it (a `login` or `import-token`), the stored token is
//!   adopted and the rotation of the old one is not written over it.
//! - A rotation that cannot be stored is kept in memory, shown in `status`,
//!   retried on its own with backoff, carried over by a reload, and tried
//!   once more on SIGTERM.
//! - Expiry is tracked on the boot clock ([`Clock::boot`]), which never goes
//!   backward: a wall-clock step cannot make an expired token look valid.
//! - After `invalid_grant` (or a refused client, or a token URL that is not
//!   a token endpoint) nothing is sent again until the store holds another
//!   token or the account's settings change: the state is `needs_login`.
//! - Failures, tokens that arrive expired and forced refreshes never add up
//!   to more than [`MAX_UNPLANNED_REQUESTS`] requests a minute.

pub mod discovery;
pub mod endpoint;
pub mod login;
pub mod logout;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Account, Grant, format_duration};
use crate::secrets::{self, SecretError, SecretKind, SecretStore};
use crate::status::{AccountState, AccountStatus};
use crate::sync::MutexExt;
use crate::time::{Clock, sleep_until_boot};
use endpoint::{GrantRequest, Lifetime, RefreshError, TokenEndpoint, Tokens};

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
/// After a request that was sent but never answered, wait at least this
/// long: the provider may have rotated the token, and hammering it with the
/// old one is what reuse detection punishes.
const UNANSWERED_BACKOFF: Duration = Duration::from_secs(30);
/// Up to this share of the refresh margin is added at random per account,
/// so that many accounts do not refresh in the same second: with the
/// default 5-minute margin, refreshes spread over a minute (a thousand
/// accounts: about 2 % a second).
const JITTER_SHARE: f64 = 0.2;
/// Warn this long before a refresh token's known end of life (DESIGN §5).
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// The lifetime assumed when a token answer has no usable `expires_in`:
/// an hour is what most providers (Spotify included) give, and refreshing
/// a token that would have lived longer costs one request an hour.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Requests that are not a planned refresh of a good token (retries after a
/// failure or a token that arrived expired, refreshes forced by a 401) are
/// held to this many a minute, whatever the provider answers (DESIGN §5).
pub const MAX_UNPLANNED_REQUESTS: usize = 4;
const REQUEST_WINDOW: Duration = Duration::from_secs(60);
/// The first retry of a rotation the store refused; doubling up to
/// [`STORE_RETRY_CAP`].
const STORE_RETRY_BASE: Duration = Duration::from_secs(2);
const STORE_RETRY_CAP: Duration = Duration::from_secs(300);

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
    /// The last attempt failed for a reason that may pass. `until` is for
    /// people; `at` (boot clock) is when the next attempt is made.
    Backoff {
        until: Timestamp,
        at: Duration,
    },
    /// The provider refused the refresh token or the client.
    NeedsLogin {
        reason: String,
    },
    /// A long-lived access token and no refresh token: handed out as it
    /// is, never refreshed, until an API refuses it.
    Static,
}

impl TokenState {
    /// The `state` word of `status --json`.
    pub fn word(&self) -> &'static str {
        match self {
            TokenState::NoToken => "no_token",
            TokenState::Fresh | TokenState::Static => "ok",
            TokenState::Idle | TokenState::Refreshing => "refreshing",
            TokenState::Backoff { .. } => "backoff",
            TokenState::NeedsLogin { .. } => "needs_login",
        }
    }
}

/// Why no token can be handed out now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "account {account} has no refresh token: run `freshd login {account}` or `freshd import-token {account}`"
    )]
    NoToken { account: String },
    #[error("account {account} needs a new login ({reason}): run `freshd login {account}`")]
    NeedsLogin { account: String, reason: String },
    /// The provider refused the client or the token URL is wrong: the
    /// reason says what to fix; a login would not help.
    #[error("account {account} cannot refresh: {reason}")]
    Misconfigured { account: String, reason: String },
    #[error(
        "account {account} cannot refresh its token now ({reason}); next try at {}",
        crate::time::to_the_second(*until)
    )]
    Backoff {
        account: String,
        reason: String,
        until: Timestamp,
    },
}

struct Access {
    token: SecretString,
    /// Boot-clock reading at expiry.
    expires: Duration,
    lifetime: Duration,
}

/// A rotated refresh token the store has not taken yet.
struct Unstored {
    /// For `status`: what failed and what freshd does about it.
    error: String,
    /// What the store said.
    cause: String,
    /// Boot-clock reading of the next attempt.
    retry_at: Duration,
    attempts: u32,
}

struct Inner {
    state: TokenState,
    /// The newest refresh token of the chain: what the next refresh sends.
    refresh_token: Option<SecretString>,
    /// Fingerprints of the refresh tokens this chain has held, newest last.
    /// A token in the store that is not among them was put there by
    /// someone else (a login or import); one that is, is an older token of
    /// this chain (a rotated copy that vanished, a stale credential).
    seen: VecDeque<Fingerprint>,
    /// Set while `refresh_token` is a rotation the store refused.
    unstored: Option<Unstored>,
    /// The token the provider refused, so that a reload does not send it
    /// again unless the store holds another one.
    refused: Option<SecretString>,
    access: Option<Access>,
    last_refresh: Option<Timestamp>,
    last_error: Option<String>,
    /// When the refresh token was obtained, for providers that limit its life.
    obtained_at: Option<Timestamp>,
    warned_expiry: bool,
    warned_lifetime: bool,
    /// Transient failures in a row, for the backoff.
    failures: u32,
    /// Boot-clock readings of the last minute's unplanned token requests.
    recent: VecDeque<Duration>,
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
    refresh_lock: Arc<tokio::sync::Mutex<()>>,
    /// Token requests in flight, each in a task of its own.
    inflight: TaskTracker,
    /// Bumped after every refresh attempt: callers who found a refresh in
    /// flight wait on this, all woken at once, instead of queueing on the lock.
    refreshed: tokio::sync::watch::Sender<u64>,
    /// Wakes the background task when the plan may have changed.
    wake: Notify,
    /// This account's share of [`JITTER_SHARE`], fixed for its lifetime.
    jitter: f64,
    /// Told after every refresh attempt (the daemon's `STATUS=` line).
    observer: std::sync::OnceLock<Arc<Notify>>,
    /// Permits for first refreshes, shared by every account of a daemon.
    first_wave: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
    /// Set when a reload replaced or removed the account: no request is
    /// sent any more, so the chain cannot fork between two managers.
    retired: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("account", &self.account.name)
            .field("state", &self.lock().state)
            .finish_non_exhaustive()
    }
}

/// What `adopt` found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// The store holds what the daemon already uses.
    Unchanged,
    /// A new token, and the first refresh with it worked.
    Working,
    /// A new token, and the first refresh with it failed: why.
    Failing(String),
    /// The store holds no token any more (a logout).
    Removed,
    /// The store no longer holds the client's token: a rotation of the
    /// daemon's chain was written over it in the moment between. The
    /// client stores its token again and asks again.
    Raced,
}

/// The SHA-256 of a token in hex, as `adopt` requests carry it.
pub fn fingerprint_hex(t: &SecretString) -> String {
    fingerprint(t).iter().map(|b| format!("{b:02x}")).collect()
}

/// A SHA-256 of a token: enough to recognise it, nothing to use it with.
type Fingerprint = [u8; 32];

/// How many of a chain's tokens are remembered: more than a chain rotates
/// between two looks at the store.
const SEEN: usize = 64;

fn fingerprint(t: &SecretString) -> Fingerprint {
    use sha2::Digest;
    sha2::Sha256::digest(t.expose_secret().as_bytes()).into()
}

impl Inner {
    /// Makes `t` the chain's newest token.
    fn hold(&mut self, t: SecretString) {
        let f = fingerprint(&t);
        if !self.seen.contains(&f) {
            if self.seen.len() == SEEN {
                self.seen.pop_front();
            }
            self.seen.push_back(f);
        }
        self.refresh_token = Some(t);
    }

    /// Whether `t` is a token of this chain.
    fn knows(&self, t: &SecretString) -> bool {
        self.seen.contains(&fingerprint(t))
    }
}

fn same(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        _ => false,
    }
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
                seen: VecDeque::new(),
                unstored: None,
                refused: None,
                access: None,
                last_refresh: None,
                last_error: None,
                obtained_at: None,
                warned_expiry: false,
                warned_lifetime: false,
                failures: 0,
                recent: VecDeque::new(),
            }),
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
            inflight: TaskTracker::new(),
            refreshed: tokio::sync::watch::Sender::new(0),
            wake: Notify::new(),
            jitter: fastrand::f64(),
            observer: std::sync::OnceLock::new(),
            first_wave: std::sync::OnceLock::new(),
            retired: std::sync::atomic::AtomicBool::new(false),
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
        self.inner.locked()
    }

    fn name(&self) -> &str {
        &self.account.name
    }

    /// The wall time `at` (a boot-clock reading) corresponds to now.
    fn wall(&self, at: Duration) -> Timestamp {
        let now = self.clock.now();
        let boot = self.clock.boot();
        let shift = if at >= boot {
            SignedDuration::try_from(at - boot).unwrap_or(SignedDuration::MAX)
        } else {
            -SignedDuration::try_from(boot - at).unwrap_or(SignedDuration::MAX)
        };
        now.checked_add(shift).unwrap_or(now)
    }

    /// Reads the refresh token from the store. A store that cannot be read
    /// is an error (the daemon exits 78); a missing token is the `no_token`
    /// state and a warning.
    pub async fn load(&self) -> Result<(), SecretError> {
        if self.account.grant == Grant::ClientCredentials {
            return Ok(());
        }
        let token = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await?;
        if token.is_none()
            && let Some(access) =
                secrets::get(&self.store, self.name(), SecretKind::AccessToken).await?
        {
            self.take_static(access);
            return Ok(());
        }
        self.take_stored(token);
        Ok(())
    }

    /// Makes `access`, a long-lived access token from the store, the one
    /// handed out, with no refresh ever (DESIGN §4, `ACCOUNT/access_token`).
    fn take_static(&self, access: SecretString) {
        let mut inner = self.lock();
        inner.refresh_token = None;
        inner.unstored = None;
        inner.refused = None;
        inner.access = Some(Access {
            token: access,
            expires: Duration::MAX,
            lifetime: Duration::MAX,
        });
        inner.state = TokenState::Static;
        inner.last_error = None;
        drop(inner);
        tracing::info!(ACCOUNT = %self.name(), "using the long-lived access token from the store; it is never refreshed");
        self.wake.notify_one();
    }

    /// Makes `token` (just read from the store) the one in use.
    fn take_stored(&self, token: Option<SecretString>) {
        let obtained_at = self.token_info();
        let mut inner = self.lock();
        inner.unstored = None;
        match token {
            Some(t) => {
                inner.hold(t);
                inner.refused = None;
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
                inner.access = None;
                inner.state = TokenState::NoToken;
                tracing::warn!(
                    ACCOUNT = %self.name(),
                    "no refresh token in {}: run `freshd login {}` or `freshd import-token {}`",
                    self.store.hint(self.name(), SecretKind::RefreshToken),
                    self.name(),
                    self.name()
                );
            }
        }
        let unknown_age = inner.refresh_token.is_some() && obtained_at.is_none();
        drop(inner);
        if self.account.refresh_token_lifetime.is_some() && unknown_age {
            // Unknown age: count from now, and say so in the log once.
            tracing::info!(ACCOUNT = %self.name(), "no record of when this refresh token was obtained; counting its lifetime from now");
            self.record_obtained(self.clock.now());
        }
        self.wake.notify_one();
    }

    /// Takes over what `old` (the manager this one replaces on a reload)
    /// knows that the store may not: its newest refresh token, stored or
    /// not. Waits for `old`'s request in flight first, so the chain never
    /// forks. When the store holds a token `old` never had (a login while
    /// the reload ran), what this manager loaded from the store stays.
    pub async fn inherit(&self, old: &TokenManager) {
        let _guard = Arc::clone(&old.refresh_lock).lock_owned().await;
        old.retired.store(true, std::sync::atomic::Ordering::SeqCst);
        let from = old.lock();
        let mut inner = self.lock();
        let ours = inner.refresh_token.as_ref().is_none_or(|t| from.knows(t));
        if !ours {
            return;
        }
        inner.seen.clone_from(&from.seen);
        if from.refresh_token.is_some() {
            inner.refresh_token.clone_from(&from.refresh_token);
        }
        inner.unstored = from.unstored.as_ref().map(|u| Unstored {
            error: u.error.clone(),
            cause: u.cause.clone(),
            retry_at: u.retry_at,
            attempts: u.attempts,
        });
        inner.refused.clone_from(&from.refused);
        if let TokenState::NeedsLogin { .. } = from.state
            && same(from.refused.as_ref(), inner.refresh_token.as_ref())
            && self.account.token_url == old.account.token_url
            && self.account.client_id == old.account.client_id
        {
            // Same token, same endpoint and client: it would be refused again.
            inner.state = from.state.clone();
            inner.last_error.clone_from(&from.last_error);
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Re-reads the store for an account that has no usable refresh token,
    /// as a reload does. A token the provider already refused is not sent
    /// again; accounts that work are left alone.
    pub async fn reload_secret(&self) -> Result<(), SecretError> {
        let stuck = matches!(
            self.lock().state,
            TokenState::NoToken | TokenState::NeedsLogin { .. }
        );
        if !stuck || self.account.grant == Grant::ClientCredentials {
            return Ok(());
        }
        let token = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await?;
        let access = match token {
            Some(_) => None,
            None => secrets::get(&self.store, self.name(), SecretKind::AccessToken).await?,
        };
        let candidate = token.as_ref().or(access.as_ref());
        if candidate.is_some() && same(candidate, self.lock().refused.as_ref()) {
            tracing::info!(ACCOUNT = %self.name(), "the store still holds the token the provider refused; not sending it again: run `freshd login {}`", self.name());
            return Ok(());
        }
        match access {
            Some(a) => self.take_static(a),
            None => self.take_stored(token),
        }
        Ok(())
    }

    /// Adopts what the store holds now, after a `login`, `import-token` or
    /// `logout` told the daemon that it changed: waits for a request in
    /// flight, then, for a new token, refreshes with it at once so the
    /// answer says whether it works.
    pub async fn adopt(self: &Arc<Self>, expected: Option<&str>) -> Result<Adopted, SecretError> {
        let guard = Arc::clone(&self.refresh_lock).lock_owned().await;
        let token = if self.account.grant == Grant::ClientCredentials {
            None
        } else {
            secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await?
        };
        if let (Some(expected), Some(found)) = (expected, &token)
            && fingerprint_hex(found) != expected
            && self.lock().knows(found)
        {
            tracing::warn!(ACCOUNT = %self.name(), "a rotation was stored over the token just imported; asking the client to store it again");
            return Ok(Adopted::Raced);
        }
        if token.is_none()
            && self.account.grant == Grant::AuthorizationCode
            && let Some(access) =
                secrets::get(&self.store, self.name(), SecretKind::AccessToken).await?
        {
            let inner = self.lock();
            let known = inner.state == TokenState::Static
                && same(Some(&access), inner.access.as_ref().map(|a| &a.token));
            drop(inner);
            if known {
                return Ok(Adopted::Unchanged);
            }
            self.take_static(access);
            self.notify_changed();
            return Ok(Adopted::Working);
        }
        {
            let inner = self.lock();
            let ours = token.as_ref().is_some_and(|t| inner.knows(t));
            if ours || same(token.as_ref(), inner.refresh_token.as_ref()) {
                return Ok(Adopted::Unchanged);
            }
        }
        let Some(_) = token else {
            tracing::info!(ACCOUNT = %self.name(), "the refresh token was removed from the store; the account has no token now");
            self.take_stored(None);
            self.notify_changed();
            return Ok(Adopted::Removed);
        };
        tracing::info!(ACCOUNT = %self.name(), "the store holds a new refresh token (a login or import); using it from now on");
        self.take_stored(token);
        {
            let mut inner = self.lock();
            inner.state = TokenState::Idle;
            inner.failures = 0;
            inner.last_error = None;
        }
        Ok(match self.refresh(guard, false).await {
            Ok(_) => Adopted::Working,
            Err(e) => Adopted::Failing(e.to_string()),
        })
    }

    fn token_info(&self) -> Option<Timestamp> {
        crate::setup::read_token_info(self.state_dir.as_deref()?, self.name())
    }

    /// Remembers that the refresh token was obtained at `at` (after a login
    /// or import, or when first seen).
    pub fn record_obtained(&self, at: Timestamp) {
        self.lock().obtained_at = Some(at);
        let Some(dir) = self.state_dir.as_deref() else {
            return;
        };
        if let Err((path, e)) = crate::setup::write_token_info(dir, self.name(), at) {
            tracing::warn!(ACCOUNT = %self.name(), "cannot record when the refresh token was obtained in {}: {e}", path.display());
        }
    }

    /// A valid access token: the held one if it has enough life left, else
    /// a refreshed one. Never waits out a backoff: during one it fails at
    /// once with the time of the next attempt.
    pub async fn access_token(self: &Arc<Self>) -> Result<SecretString, TokenError> {
        loop {
            if let Some(answer) = self.answer_from_memory() {
                return answer;
            }
            // Subscribe before trying the lock, so a refresh that ends in
            // between is not missed.
            let mut done = self.refreshed.subscribe();
            if let Ok(guard) = Arc::clone(&self.refresh_lock).try_lock_owned() {
                // Whoever held the lock before us may have refreshed already.
                if let Some(answer) = self.answer_from_memory() {
                    return answer;
                }
                return self.refresh(guard, false).await;
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
        self: &Arc<Self>,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        let guard = Arc::clone(&self.refresh_lock).lock_owned().await;
        if self.lock().state == TokenState::Static {
            let reason = "the API refused the long-lived access token (401); store a new one with `freshd import-token --access-token` or `freshd login`".to_owned();
            tracing::error!(ACCOUNT = %self.name(), "{reason}");
            let mut inner = self.lock();
            let sent = inner.access.as_ref().map(|a| a.token.clone());
            let err = self.needs_login(&mut inner, reason, sent);
            drop(inner);
            self.notify_changed();
            return Err(err);
        }
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
        if let Some(answer) = self.answer_from_memory() {
            return answer;
        }
        self.refresh(guard, true).await
    }

    /// `Some` when memory alone can answer: a usable token, or a state that
    /// forbids asking the provider now.
    fn answer_from_memory(&self) -> Option<Result<SecretString, TokenError>> {
        let boot = self.clock.boot();
        let inner = self.lock();
        if let Some(a) = &inner.access
            && usable(a, boot)
        {
            return Some(Ok(a.token.clone()));
        }
        let account = self.name().to_owned();
        match &inner.state {
            TokenState::NoToken => Some(Err(TokenError::NoToken { account })),
            // A refused token needs a login; no refused token means the
            // configuration was refused.
            TokenState::NeedsLogin { reason } if inner.refused.is_none() => {
                Some(Err(TokenError::Misconfigured {
                    account,
                    reason: reason.clone(),
                }))
            }
            TokenState::NeedsLogin { reason } => Some(Err(TokenError::NeedsLogin {
                account,
                reason: reason.clone(),
            })),
            TokenState::Backoff { until, at } if boot < *at => Some(Err(TokenError::Backoff {
                account,
                reason: inner.last_error.clone().unwrap_or_default(),
                until: *until,
            })),
            _ => None,
        }
    }

    /// One request to the token endpoint, with the outcome recorded. The
    /// request runs in a task of its own that holds `guard` (the refresh
    /// lock): if the caller gives up, or the daemon stops, the answer is
    /// still taken in and a rotation stored. `forced` marks a refresh that
    /// is not the plan's (a 401), which counts against the minute's cap.
    async fn refresh(
        self: &Arc<Self>,
        guard: OwnedMutexGuard<()>,
        forced: bool,
    ) -> Result<SecretString, TokenError> {
        let boot = self.clock.boot();
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
            while inner
                .recent
                .front()
                .is_some_and(|t| boot.saturating_sub(*t) >= REQUEST_WINDOW)
            {
                inner.recent.pop_front();
            }
            if self.retired.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(TokenError::Backoff {
                    account: self.name().to_owned(),
                    reason: "the account's settings were replaced by a reload".into(),
                    until: self.clock.now(),
                });
            }
            if forced || inner.failures > 0 {
                if inner.recent.len() >= MAX_UNPLANNED_REQUESTS {
                    return Err(self.hold_back(&mut inner, boot));
                }
                inner.recent.push_back(boot);
            }
            inner.state = TokenState::Refreshing;
            token
        };
        let me = Arc::clone(self);
        let task = self.inflight.spawn(async move {
            let _guard = guard;
            let grant = match &grant_token {
                Some(t) => GrantRequest::RefreshToken(t),
                None => GrantRequest::ClientCredentials,
            };
            tracing::debug!(ACCOUNT = %me.name(), "refreshing the access token");
            let outcome = match me.endpoint.request(grant).await {
                Ok(tokens) => me.accept(tokens, grant_token.as_ref()).await,
                Err(e) => Err(me.fail(e, grant_token)),
            };
            me.wake.notify_one();
            me.refreshed.send_modify(|n| *n += 1);
            me.notify_changed();
            outcome
        });
        match task.await {
            Ok(outcome) => outcome,
            Err(join) => Err(TokenError::Backoff {
                account: self.name().to_owned(),
                reason: format!("the refresh task failed: {join}"),
                until: self.clock.now(),
            }),
        }
    }

    fn notify_changed(&self) {
        if let Some(o) = self.observer.get() {
            o.notify_one();
        }
    }

    /// The minute's cap is reached: no request now; the next one when the
    /// oldest of the minute leaves the window.
    fn hold_back(&self, inner: &mut Inner, boot: Duration) -> TokenError {
        let at = inner.recent.front().map_or(boot, |t| *t + REQUEST_WINDOW);
        let until = self.wall(at);
        let reason = format!(
            "{} unplanned token requests in the last minute; freshd sends no more than that",
            inner.recent.len()
        );
        tracing::warn!(ACCOUNT = %self.name(), "{reason}; next try at {}", until.round(jiff::Unit::Second).unwrap_or(until));
        if inner.last_error.is_none() {
            inner.last_error = Some(reason.clone());
        }
        inner.state = TokenState::Backoff { until, at };
        TokenError::Backoff {
            account: self.name().to_owned(),
            reason: inner.last_error.clone().unwrap_or(reason),
            until,
        }
    }

    /// Records new tokens: a rotated refresh token is kept first (stored,
    /// or held for a retry), whatever else the answer says.
    async fn accept(
        &self,
        tokens: Tokens,
        sent: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        if let Some(new) = tokens.refresh_token
            && sent.is_none_or(|old| old.expose_secret() != new.expose_secret())
        {
            self.keep_rotation(new).await;
        }
        let lifetime = match tokens.lifetime {
            Lifetime::Given(d) => d,
            Lifetime::Unusable(what) => {
                let mut inner = self.lock();
                if !inner.warned_lifetime {
                    inner.warned_lifetime = true;
                    tracing::warn!(ACCOUNT = %self.name(), "the provider gave no usable lifetime for the access token ({what}); freshd assumes {} and refreshes before then", format_duration(DEFAULT_LIFETIME));
                }
                DEFAULT_LIFETIME
            }
            Lifetime::Expired(what) => {
                return Err(self.fail(
                    RefreshError::Transient {
                        reason: format!(
                            "the token endpoint's answer cannot be used ({what}): the access token is dead on arrival, a provider fault"
                        ),
                        retry_after: None,
                    },
                    None,
                ));
            }
        };
        let now = self.clock.now();
        let access = Access {
            token: tokens.access_token.clone(),
            expires: self.clock.boot() + lifetime,
            lifetime,
        };
        let next = self.refresh_at(&access);
        let mut inner = self.lock();
        let expires_at = self.wall(access.expires);
        inner.access = Some(access);
        inner.state = TokenState::Fresh;
        inner.failures = 0;
        inner.last_refresh = Some(now);
        inner.last_error = None;
        tracing::info!(
            ACCOUNT = %self.name(),
            "access token refreshed; it expires at {}, next refresh at {}",
            expires_at.round(jiff::Unit::Second).unwrap_or(expires_at),
            self.wall(next).round(jiff::Unit::Second).unwrap_or(expires_at)
        );
        self.check_expiry_warning(&mut inner, now);
        Ok(tokens.access_token)
    }

    /// Keeps a rotated refresh token: it becomes the chain's newest in
    /// memory, then is written, unless the store changed since freshd last
    /// read or wrote it, in which case the stored token is adopted instead.
    async fn keep_rotation(&self, new: SecretString) {
        self.lock().hold(new);
        self.store_newest().await;
    }

    /// Writes the in-memory refresh token to the store, or adopts the
    /// store's if someone else wrote there. On failure the token stays in
    /// memory and a retry is planned.
    async fn store_newest(&self) {
        let now_stored = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await;
        let Some(newest) = self.lock().refresh_token.clone() else {
            return;
        };
        if let Ok(Some(found)) = now_stored
            && !self.lock().knows(&found)
        {
            tracing::warn!(ACCOUNT = %self.name(), "the store holds a refresh token freshd did not write (a login or import since); using it, and not writing the rotation of the old one over it");
            let mut inner = self.lock();
            inner.hold(found);
            inner.unstored = None;
            return;
        }
        match secrets::set(
            &self.store,
            self.name(),
            SecretKind::RefreshToken,
            newest.clone(),
        )
        .await
        {
            Ok(()) => {
                let was_unstored = self.lock().unstored.take().is_some();
                if was_unstored {
                    tracing::info!(ACCOUNT = %self.name(), "stored the rotated refresh token that was waiting in memory");
                } else {
                    tracing::info!(ACCOUNT = %self.name(), "stored the rotated refresh token");
                }
            }
            Err(e) => self.store_failed(&e),
        }
    }

    fn store_failed(&self, e: &SecretError) {
        let boot = self.clock.boot();
        let mut inner = self.lock();
        let attempts = inner.unstored.as_ref().map_or(0, |u| u.attempts) + 1;
        let delay = STORE_RETRY_BASE
            .saturating_mul(1u32 << (attempts - 1).min(16))
            .min(STORE_RETRY_CAP);
        let error = format!(
            "cannot store the rotated refresh token ({e}); it is kept in memory and freshd tries again in {} (do not restart freshd until it is stored)",
            format_duration(delay)
        );
        tracing::error!(ACCOUNT = %self.name(), "{error}");
        inner.unstored = Some(Unstored {
            error,
            cause: e.to_string(),
            retry_at: boot + delay,
            attempts,
        });
        drop(inner);
        self.wake.notify_one();
        self.notify_changed();
    }

    /// The background task's store retry, under the refresh lock so that no
    /// rotation races it.
    async fn retry_store(&self) {
        let _guard = self.refresh_lock.lock().await;
        let due = self
            .lock()
            .unstored
            .as_ref()
            .is_some_and(|u| u.retry_at <= self.clock.boot());
        if due {
            self.store_newest().await;
            self.notify_changed();
        }
    }

    fn fail(&self, e: RefreshError, sent: Option<SecretString>) -> TokenError {
        let boot = self.clock.boot();
        let mut inner = self.lock();
        let account = self.name().to_owned();
        let (reason, retry_after, floor) = match e {
            RefreshError::Transient {
                reason,
                retry_after,
            } => (reason, retry_after, Duration::ZERO),
            RefreshError::Unanswered { reason } => {
                tracing::warn!(ACCOUNT = %account, "a token request was sent but not answered ({reason}): the provider may have rotated the refresh token in the answer that never came; freshd waits before trying the old one again, and a provider with reuse detection may then revoke the grant (the account would need `freshd login {account}`)");
                (reason, None, UNANSWERED_BACKOFF)
            }
            RefreshError::Revoked { reason } => {
                tracing::error!(
                    ACCOUNT = %account,
                    "the provider refused the refresh token ({reason}): run `freshd login {account}`; freshd sends nothing more until the store holds a new token"
                );
                return self.needs_login(&mut inner, reason, sent);
            }
            RefreshError::Rejected { reason } => {
                tracing::error!(ACCOUNT = %account, "{reason}; freshd sends nothing more until then");
                // The token itself was not refused: a reload retries it.
                self.needs_login(&mut inner, reason.clone(), None);
                return TokenError::Misconfigured { account, reason };
            }
        };
        inner.failures += 1;
        let attempt = inner.failures;
        let delay = backoff_delay(attempt)
            .max(
                retry_after
                    .unwrap_or_default()
                    .min(endpoint::MAX_RETRY_AFTER),
            )
            .max(floor);
        let at = boot + delay;
        let until = self.wall(at);
        tracing::warn!(ACCOUNT = %account, "token refresh failed: {reason}; next try in {} (attempt {attempt})", format_duration(delay));
        inner.state = TokenState::Backoff { until, at };
        inner.last_error = Some(reason.clone());
        TokenError::Backoff {
            account,
            reason,
            until,
        }
    }

    fn needs_login(
        &self,
        inner: &mut Inner,
        reason: String,
        sent: Option<SecretString>,
    ) -> TokenError {
        inner.state = TokenState::NeedsLogin {
            reason: reason.clone(),
        };
        inner.refused = sent;
        inner.access = None;
        inner.last_error = Some(reason.clone());
        TokenError::NeedsLogin {
            account: self.name().to_owned(),
            reason,
        }
    }

    /// When the held token should be refreshed (boot clock):
    /// `refresh_before_expiry` ahead (at most half the token's life), less
    /// this account's jitter.
    fn refresh_at(&self, a: &Access) -> Duration {
        let margin = self.account.refresh_before_expiry.min(a.lifetime / 2);
        let margin = margin.mul_f64(1.0 + JITTER_SHARE * self.jitter);
        a.expires.saturating_sub(margin)
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
    async fn refresh_if_due(self: &Arc<Self>) {
        let first = self.lock().state == TokenState::Idle;
        let _permit = match self.first_wave.get() {
            Some(wave) if first => Some(Arc::clone(wave).acquire_owned().await),
            _ => None,
        };
        let guard = Arc::clone(&self.refresh_lock).lock_owned().await;
        let boot = self.clock.boot();
        let due = {
            let inner = self.lock();
            match &inner.state {
                TokenState::Idle => true,
                TokenState::Fresh => inner
                    .access
                    .as_ref()
                    .is_some_and(|a| self.refresh_at(a) <= boot),
                TokenState::Backoff { at, .. } => *at <= boot,
                _ => false,
            }
        };
        if due {
            let _ = self.refresh(guard, false).await;
        }
    }

    /// When the background task should next act (boot clock), if at all:
    /// the planned refresh or retry, or a store retry.
    fn next_wake(&self) -> Option<Duration> {
        let inner = self.lock();
        let refresh = match &inner.state {
            TokenState::Idle => Some(self.clock.boot()),
            TokenState::Fresh => inner.access.as_ref().map(|a| self.refresh_at(a)),
            TokenState::Backoff { at, .. } => Some(*at),
            _ => None,
        };
        let store = inner.unstored.as_ref().map(|u| u.retry_at);
        match (refresh, store) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The background refresher: sleeps until the next planned refresh (or
    /// retry, or store retry) and does it. Runs until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wake = self.next_wake();
            let sleep = async {
                match wake {
                    Some(t) => sleep_until_boot(self.clock.as_ref(), t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = sleep => {
                    self.retry_store().await;
                    self.refresh_if_due().await;
                }
            }
        }
    }

    /// Stops this manager from sending anything more (a reload removed its
    /// account), after its request in flight.
    pub async fn retire(&self) {
        let _guard = self.refresh_lock.lock().await;
        self.retired
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the first refresh is over (whatever it found): the daemon
    /// waits for this, within a bound, before `READY=1`.
    pub fn settled(&self) -> bool {
        !matches!(self.lock().state, TokenState::Idle | TokenState::Refreshing)
    }

    /// Makes first refreshes (of an `Idle` account) wait for a permit of
    /// `wave`, so that many accounts starting together do not open a socket
    /// each at once.
    pub fn set_first_wave(&self, wave: Arc<tokio::sync::Semaphore>) {
        let _ = self.first_wave.set(wave);
    }

    /// Before exit: waits for a token request in flight (bounded by its own
    /// timeout) and tries once more to store a rotation the store refused.
    /// What cannot be saved is said, with what to do.
    pub async fn finish(&self) {
        self.inflight.close();
        self.inflight.wait().await;
        if self.lock().unstored.is_none() {
            return;
        }
        self.store_newest().await;
        if let Some(u) = &self.lock().unstored {
            tracing::error!(
                ACCOUNT = %self.name(),
                "freshd is stopping and the rotated refresh token could not be stored ({}); it is lost with this exit, and the stored one was already used: after the restart run `freshd login {}`",
                u.cause,
                self.name()
            );
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
        let fixed = inner.state == TokenState::Static;
        AccountStatus {
            name: self.name().to_owned(),
            state: match inner.state {
                TokenState::NoToken => AccountState::NoToken,
                TokenState::Fresh | TokenState::Static => AccountState::Ok,
                TokenState::Idle | TokenState::Refreshing => AccountState::Refreshing,
                TokenState::Backoff { .. } => AccountState::Backoff,
                TokenState::NeedsLogin { .. } => AccountState::NeedsLogin,
            },
            access_token_expires_at: inner
                .access
                .as_ref()
                .filter(|_| !fixed)
                .map(|a| self.wall(a.expires)),
            static_token: fixed,
            last_refresh: inner.last_refresh,
            last_error: inner.last_error.clone(),
            warning,
            store_error: inner.unstored.as_ref().map(|u| u.error.clone()),
        }
    }
}

fn usable(a: &Access, boot: Duration) -> bool {
    let need = MIN_VALIDITY.min(a.lifetime / 4);
    a.expires.saturating_sub(boot) > need
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
