//! Reading the account's tokens from the store and writing rotations back:
//! a rotation the store refuses stays in memory and is retried with
//! backoff; one found overwritten by a login or import yields to it.

use jiff::Timestamp;
use secrecy::SecretString;

use super::chain::Unstored;
use super::state::TokenState;
use super::{TokenManager, backoff};
use crate::config::{Grant, format_duration};
use crate::secrets::{self, SecretError, SecretKind};

impl TokenManager {
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
    pub(super) fn take_static(&self, access: SecretString) {
        let mut inner = self.lock();
        inner.chain.clear();
        inner.state = TokenState::Static { token: access };
        drop(inner);
        tracing::info!(ACCOUNT = %self.name(), "using the long-lived access token from the store; it is never refreshed");
        self.wake.notify_one();
    }

    /// Makes `token` (just read from the store) the one in use.
    pub(super) fn take_stored(&self, token: Option<SecretString>) {
        let obtained_at = self.token_info();
        let mut inner = self.lock();
        inner.chain.unstored = None;
        match token {
            Some(t) => {
                inner.chain.hold(t);
                if inner.state.is_stuck() {
                    inner.state = TokenState::Idle { access: None };
                }
                inner.obtained_at = obtained_at;
            }
            None => {
                inner.chain.newest = None;
                inner.state = inner.state.to_no_token();
                tracing::warn!(
                    ACCOUNT = %self.name(),
                    "no refresh token in {}: run `freshd login {}` or `freshd import-token {}`",
                    self.store.hint(self.name(), SecretKind::RefreshToken),
                    self.name(),
                    self.name()
                );
            }
        }
        let unknown_age = inner.chain.newest.is_some() && obtained_at.is_none();
        drop(inner);
        if self.account.refresh_token_lifetime.is_some() && unknown_age {
            // Unknown age: count from now, and say so in the log once.
            tracing::info!(ACCOUNT = %self.name(), "no record of when this refresh token was obtained; counting its lifetime from now");
            self.record_obtained(self.clock.now());
        }
        self.wake.notify_one();
    }

    fn token_info(&self) -> Option<Timestamp> {
        super::token_info::read_token_info(self.state_dir.as_deref()?, self.name())
    }

    /// Remembers that the refresh token was obtained at `at` (after a login
    /// or import, or when first seen).
    pub fn record_obtained(&self, at: Timestamp) {
        self.lock().obtained_at = Some(at);
        let Some(dir) = self.state_dir.as_deref() else {
            return;
        };
        if let Err((path, e)) = super::token_info::write_token_info(dir, self.name(), at) {
            tracing::warn!(ACCOUNT = %self.name(), "cannot record when the refresh token was obtained in {}: {e}", path.display());
        }
    }

    /// Keeps a rotated refresh token: it becomes the chain's newest in
    /// memory, then is written, unless the store changed since freshd last
    /// read or wrote it, in which case the stored token is adopted instead.
    pub(super) async fn keep_rotation(&self, new: SecretString) {
        self.lock().chain.hold(new);
        self.store_newest().await;
    }

    /// Writes the in-memory refresh token to the store, or adopts the
    /// store's if someone else wrote there. On failure the token stays in
    /// memory and a retry is planned.
    pub(super) async fn store_newest(&self) {
        let now_stored = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await;
        let Some(newest) = self.lock().chain.newest.clone() else {
            return;
        };
        if let Ok(Some(found)) = now_stored
            && !self.lock().chain.knows(&found)
        {
            tracing::warn!(ACCOUNT = %self.name(), "the store holds a refresh token freshd did not write (a login or import since); using it, and not writing the rotation of the old one over it");
            let mut inner = self.lock();
            inner.chain.hold(found);
            inner.chain.unstored = None;
            return;
        }
        match secrets::set(&self.store, self.name(), SecretKind::RefreshToken, newest).await {
            Ok(()) => {
                let was_unstored = self.lock().chain.unstored.take().is_some();
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
        let attempts = inner.chain.unstored.as_ref().map_or(0, |u| u.attempts) + 1;
        let delay = backoff::store_delay(attempts);
        let error = format!(
            "cannot store the rotated refresh token ({e}); it is kept in memory and freshd tries again in {} (do not restart freshd until it is stored)",
            format_duration(delay)
        );
        tracing::error!(ACCOUNT = %self.name(), "{error}");
        inner.chain.unstored = Some(Unstored {
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
    pub(super) async fn retry_store(&self) {
        let _guard = self.refresh_lock.lock().await;
        let due = self
            .lock()
            .chain
            .unstored
            .as_ref()
            .is_some_and(|u| u.retry_at <= self.clock.boot());
        if due {
            self.store_newest().await;
            self.notify_changed();
        }
    }

    /// Before exit: waits for a token request in flight (bounded by its own
    /// timeout) and tries once more to store a rotation the store refused.
    /// What cannot be saved is said, with what to do.
    pub async fn finish(&self) {
        self.inflight.close();
        self.inflight.wait().await;
        if self.lock().chain.unstored.is_none() {
            return;
        }
        self.store_newest().await;
        if let Some(u) = &self.lock().chain.unstored {
            tracing::error!(
                ACCOUNT = %self.name(),
                "freshd is stopping and the rotated refresh token could not be stored ({}); it is lost with this exit, and the stored one was already used: after the restart run `freshd login {}`",
                u.cause,
                self.name()
            );
        }
    }
}
