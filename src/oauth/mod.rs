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
//!
//! Where things live: [`state`] is the token state (each state's data in
//! its variant), [`chain`] the refresh token chain, [`store`] reading and
//! writing the store, [`adopt`] what a reload or a command changes,
//! [`refresh`] handing out tokens and asking the endpoint, [`plan`] the
//! background task, [`backoff`] the waits and the minute's cap,
//! [`token_info`] when a refresh token was obtained. [`endpoint`] is the
//! token endpoint client, [`discovery`] finds it from an issuer, [`login`]
//! and [`logout`] are the commands' flows.

mod adopt;
mod backoff;
mod chain;
pub mod discovery;
pub mod endpoint;
pub mod login;
pub mod logout;
mod plan;
mod refresh;
mod state;
mod store;
pub mod token_info;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::config::Account;
use crate::secrets::SecretStore;
use crate::status::AccountStatus;
use crate::sync::MutexExt;
use crate::time::Clock;
use endpoint::TokenEndpoint;

pub use backoff::MAX_UNPLANNED_REQUESTS;
use backoff::Unplanned;
use chain::Chain;
pub use chain::fingerprint_hex;
use state::TokenState;

/// A token handed out has at least this much life left (or a quarter of
/// its lifetime, for very short-lived tokens), so a script that asks for one
/// can still use it.
const MIN_VALIDITY: Duration = Duration::from_secs(10);
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

/// What one account's manager holds, behind one lock.
#[derive(Debug)]
struct Inner {
    state: TokenState,
    chain: Chain,
    /// The last minute's unplanned token requests.
    unplanned: Unplanned,
    last_refresh: Option<Timestamp>,
    /// When the refresh token was obtained, for providers that limit its life.
    obtained_at: Option<Timestamp>,
    warned_expiry: bool,
    warned_lifetime: bool,
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
                state: TokenState::Idle { access: None },
                chain: Chain::default(),
                unplanned: Unplanned::default(),
                last_refresh: None,
                obtained_at: None,
                warned_expiry: false,
                warned_lifetime: false,
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

    /// What `status` shows. Holds no secret.
    pub fn status(&self) -> AccountStatus {
        let now = self.clock.now();
        let inner = self.lock();
        let warning = match (inner.obtained_at, self.account.refresh_token_lifetime) {
            (Some(o), Some(l)) if inner.chain.newest.is_some() => {
                plan::expiry_warning(self.name(), o, l, now)
            }
            _ => None,
        };
        let fixed = matches!(inner.state, TokenState::Static { .. });
        AccountStatus {
            name: self.name().to_owned(),
            state: inner.state.public_state(),
            access_token_expires_at: inner.state.access().map(|a| self.wall(a.expires)),
            static_token: fixed,
            last_refresh: inner.last_refresh,
            last_error: inner.state.last_error().map(str::to_owned),
            warning,
            store_error: inner.chain.unstored.as_ref().map(|u| u.error.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
