//! Handing out access tokens and asking the token endpoint for new ones:
//! one request at a time per account, its outcome recorded as the next
//! [`TokenState`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OwnedMutexGuard;

use super::backoff::{self, UNANSWERED_BACKOFF};
use super::endpoint::{GrantRequest, Lifetime, RefreshError, Tokens};
use super::state::{Access, TokenState};
use super::{DEFAULT_LIFETIME, Inner, TokenError, TokenManager, plan};
use crate::config::{Grant, format_duration};

impl TokenManager {
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
        let fixed = match &self.lock().state {
            TokenState::Static { token } => Some(token.clone()),
            _ => None,
        };
        if let Some(sent) = fixed {
            let reason = "the API refused the long-lived access token (401); store a new one with `freshd import-token --access-token` or `freshd login`".to_owned();
            tracing::error!(ACCOUNT = %self.name(), "{reason}");
            let err = self.needs_login(&mut self.lock(), reason, Some(sent));
            self.notify_changed();
            return Err(err);
        }
        {
            let mut inner = self.lock();
            let same = inner
                .state
                .access()
                .is_some_and(|a| a.token.expose_secret() == rejected.expose_secret());
            if same {
                inner.state.forget_access();
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
        if let TokenState::Static { token } = &inner.state {
            return Some(Ok(token.clone()));
        }
        if let Some(a) = inner.state.access()
            && plan::usable(a, boot)
        {
            return Some(Ok(a.token.clone()));
        }
        let account = self.name().to_owned();
        match &inner.state {
            TokenState::NoToken { .. } => Some(Err(TokenError::NoToken { account })),
            // A refused token needs a login; no refused token means the
            // configuration was refused.
            TokenState::NeedsLogin {
                reason,
                refused: None,
            } => Some(Err(TokenError::Misconfigured {
                account,
                reason: reason.clone(),
            })),
            TokenState::NeedsLogin { reason, .. } => Some(Err(TokenError::NeedsLogin {
                account,
                reason: reason.clone(),
            })),
            TokenState::Backoff {
                until, at, reason, ..
            } if boot < *at => Some(Err(TokenError::Backoff {
                account,
                reason: reason.clone(),
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
    pub(super) async fn refresh(
        self: &Arc<Self>,
        guard: OwnedMutexGuard<()>,
        forced: bool,
    ) -> Result<SecretString, TokenError> {
        let grant_token = self.begin_request(forced)?;
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

    /// Whether a request may go now (a token to send, not retired, within
    /// the minute's cap); if so the state becomes `Refreshing` and the
    /// refresh token to send is returned (`None` for client credentials).
    fn begin_request(&self, forced: bool) -> Result<Option<SecretString>, TokenError> {
        let boot = self.clock.boot();
        let mut inner = self.lock();
        let token = match self.account.grant {
            Grant::ClientCredentials => None,
            Grant::AuthorizationCode => match &inner.chain.newest {
                Some(t) => Some(t.clone()),
                None => {
                    inner.state = inner.state.to_no_token();
                    return Err(TokenError::NoToken {
                        account: self.name().to_owned(),
                    });
                }
            },
        };
        inner.unplanned.prune(boot);
        if self.retired.load(Ordering::SeqCst) {
            return Err(TokenError::Backoff {
                account: self.name().to_owned(),
                reason: "the account's settings were replaced by a reload".into(),
                until: self.clock.now(),
            });
        }
        if (forced || inner.state.failures() > 0)
            && let Err(at) = inner.unplanned.admit(boot)
        {
            return Err(self.hold_back(&mut inner, at));
        }
        inner.state.start_refreshing();
        Ok(token)
    }

    pub(super) fn notify_changed(&self) {
        if let Some(o) = self.observer.get() {
            o.notify_one();
        }
    }

    /// The minute's cap is reached: no request now; the next one at `at`,
    /// when the oldest of the minute leaves the window.
    fn hold_back(&self, inner: &mut Inner, at: Duration) -> TokenError {
        let until = self.wall(at);
        let cap = format!(
            "{} unplanned token requests in the last minute; freshd sends no more than that",
            inner.unplanned.len()
        );
        tracing::warn!(ACCOUNT = %self.name(), "{cap}; next try at {}", until.round(jiff::Unit::Second).unwrap_or(until));
        let reason = inner.state.last_error().map_or(cap, str::to_owned);
        let failures = inner.state.failures();
        inner.state = TokenState::Backoff {
            access: inner.state.take_access(),
            until,
            at,
            failures,
            reason: reason.clone(),
        };
        TokenError::Backoff {
            account: self.name().to_owned(),
            reason,
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
        let lifetime = match self.usable_lifetime(tokens.lifetime) {
            Ok(d) => d,
            Err(e) => return Err(self.fail(e, None)),
        };
        let now = self.clock.now();
        let access = Access {
            token: tokens.access_token.clone(),
            expires: self.clock.boot() + lifetime,
            lifetime,
        };
        let next = self.refresh_at(&access);
        let expires_at = self.wall(access.expires);
        let mut inner = self.lock();
        inner.state = TokenState::Fresh { access };
        inner.last_refresh = Some(now);
        tracing::info!(
            ACCOUNT = %self.name(),
            "access token refreshed; it expires at {}, next refresh at {}",
            expires_at.round(jiff::Unit::Second).unwrap_or(expires_at),
            self.wall(next).round(jiff::Unit::Second).unwrap_or(expires_at)
        );
        self.check_expiry_warning(&mut inner, now);
        Ok(tokens.access_token)
    }

    /// The access token's lifetime from the answer: the default (said once)
    /// when the provider gave none usable, a transient failure when the
    /// token arrived dead.
    fn usable_lifetime(&self, lifetime: Lifetime) -> Result<Duration, RefreshError> {
        match lifetime {
            Lifetime::Given(d) => Ok(d),
            Lifetime::Unusable(what) => {
                let mut inner = self.lock();
                if !inner.warned_lifetime {
                    inner.warned_lifetime = true;
                    tracing::warn!(ACCOUNT = %self.name(), "the provider gave no usable lifetime for the access token ({what}); freshd assumes {} and refreshes before then", format_duration(DEFAULT_LIFETIME));
                }
                Ok(DEFAULT_LIFETIME)
            }
            Lifetime::Expired(what) => Err(RefreshError::Transient {
                reason: format!(
                    "the token endpoint's answer cannot be used ({what}): the access token is dead on arrival, a provider fault"
                ),
                retry_after: None,
            }),
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
        let attempt = inner.state.failures() + 1;
        let delay = backoff::delay(attempt, retry_after, floor);
        let at = boot + delay;
        let until = self.wall(at);
        tracing::warn!(ACCOUNT = %account, "token refresh failed: {reason}; next try in {} (attempt {attempt})", format_duration(delay));
        inner.state = TokenState::Backoff {
            access: inner.state.take_access(),
            until,
            at,
            failures: attempt,
            reason: reason.clone(),
        };
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
        refused: Option<SecretString>,
    ) -> TokenError {
        inner.state = TokenState::NeedsLogin {
            reason: reason.clone(),
            refused,
        };
        TokenError::NeedsLogin {
            account: self.name().to_owned(),
            reason,
        }
    }
}
