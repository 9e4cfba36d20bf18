//! When the store changes under a running manager: a reload that replaces
//! the manager ([`TokenManager::inherit`]) or re-reads a stuck account
//! ([`TokenManager::reload_secret`]), and a `login`, `import-token` or
//! `logout` that tells the daemon ([`TokenManager::adopt`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use secrecy::SecretString;

use super::chain::{fingerprint_hex, same};
use super::state::TokenState;
use super::{Adopted, TokenManager};
use crate::config::Grant;
use crate::secrets::{self, SecretError, SecretKind};

impl TokenManager {
    /// Takes over what `old` (the manager this one replaces on a reload)
    /// knows that the store may not: its newest refresh token, stored or
    /// not. Waits for `old`'s request in flight first, so the chain never
    /// forks. When the store holds a token `old` never had (a login while
    /// the reload ran), what this manager loaded from the store stays.
    pub async fn inherit(&self, old: &TokenManager) {
        let _guard = Arc::clone(&old.refresh_lock).lock_owned().await;
        old.retired.store(true, Ordering::SeqCst);
        let from = old.lock();
        let mut inner = self.lock();
        let ours = inner
            .chain
            .newest
            .as_ref()
            .is_none_or(|t| from.chain.knows(t));
        if !ours {
            return;
        }
        inner.chain.inherit(&from.chain);
        if let TokenState::NeedsLogin { .. } = from.state
            && same(from.state.refused(), inner.chain.newest.as_ref())
            && self.account.token_url == old.account.token_url
            && self.account.client_id == old.account.client_id
        {
            // Same token, same endpoint and client: it would be refused again.
            inner.state = from.state.clone();
        } else if let TokenState::NoToken { refused, .. } = &mut inner.state {
            // A refused token that comes back to the store stays refused.
            refused.clone_from(&from.state.refused().cloned());
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Re-reads the store for an account that has no usable refresh token,
    /// as a reload does. A token the provider already refused is not sent
    /// again; accounts that work are left alone.
    pub async fn reload_secret(&self) -> Result<(), SecretError> {
        let stuck = self.lock().state.is_stuck();
        if !stuck || self.account.grant == Grant::ClientCredentials {
            return Ok(());
        }
        let token = secrets::get(&self.store, self.name(), SecretKind::RefreshToken).await?;
        let access = match token {
            Some(_) => None,
            None => secrets::get(&self.store, self.name(), SecretKind::AccessToken).await?,
        };
        let candidate = token.as_ref().or(access.as_ref());
        if candidate.is_some() && same(candidate, self.lock().state.refused()) {
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
            && self.lock().chain.knows(found)
        {
            tracing::warn!(ACCOUNT = %self.name(), "a rotation was stored over the token just imported; asking the client to store it again");
            return Ok(Adopted::Raced);
        }
        if token.is_none()
            && self.account.grant == Grant::AuthorizationCode
            && let Some(access) =
                secrets::get(&self.store, self.name(), SecretKind::AccessToken).await?
        {
            return Ok(self.adopt_static(access));
        }
        {
            let inner = self.lock();
            let ours = token.as_ref().is_some_and(|t| inner.chain.knows(t));
            if ours || same(token.as_ref(), inner.chain.newest.as_ref()) {
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
            // Nothing fetched with the new token yet; an access token from
            // the old one is handed out while it lasts.
            let mut inner = self.lock();
            let access = inner.state.take_access();
            inner.state = TokenState::Idle { access };
        }
        Ok(match self.refresh(guard, false).await {
            Ok(_) => Adopted::Working,
            Err(e) => Adopted::Failing(e.to_string()),
        })
    }

    /// Adopts a long-lived access token the store holds instead of a
    /// refresh token.
    fn adopt_static(&self, access: SecretString) -> Adopted {
        let known = matches!(
            &self.lock().state,
            TokenState::Static { token } if same(Some(&access), Some(token))
        );
        if known {
            return Adopted::Unchanged;
        }
        self.take_static(access);
        self.notify_changed();
        Adopted::Working
    }
}
