//! An account's token state (issue 14 §7, after pizauth's
//! `server/state.rs`): each state carries the data it needs and nothing
//! else, so a combination that cannot happen (a fresh account without an
//! access token, a backoff without a reason) cannot be written.
//!
//! What belongs to the refresh token chain rather than to one state (the
//! newest token, a rotation the store refused, the fingerprints seen) is in
//! [`Chain`](super::chain::Chain).

use std::time::Duration;

use jiff::Timestamp;
use secrecy::SecretString;

use crate::status::AccountState;

/// An access token held in memory.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) token: SecretString,
    /// Boot-clock reading at expiry.
    pub(crate) expires: Duration,
    pub(crate) lifetime: Duration,
}

/// An account's state, as pizauth models it: one of these, never flags.
#[derive(Debug, Clone)]
pub(crate) enum TokenState {
    /// No token in the store. `refused` is the token the provider last
    /// refused (not sent again if it comes back to the store); `last_error`
    /// is what `status` still shows of the state before.
    NoToken {
        refused: Option<SecretString>,
        last_error: Option<String>,
    },
    /// Nothing fetched with the current refresh token yet (before the first
    /// refresh, or after a new token was adopted). `access` is one obtained
    /// with an earlier token, handed out while it lasts.
    Idle { access: Option<Access> },
    /// An access token is held and refreshed on time.
    Fresh { access: Access },
    /// A token request is in flight. What the state before held is kept:
    /// a still-usable access token, and the failures in a row so far.
    Refreshing {
        access: Option<Access>,
        failures: u32,
        last_error: Option<String>,
    },
    /// The last attempt failed for a reason that may pass. `until` is for
    /// people; `at` (boot clock) is when the next attempt is made.
    /// `failures` counts the transient failures in a row.
    Backoff {
        access: Option<Access>,
        until: Timestamp,
        at: Duration,
        failures: u32,
        reason: String,
    },
    /// The provider refused the refresh token (`refused`, not sent again)
    /// or, with `refused` empty, the client or the token URL.
    NeedsLogin {
        reason: String,
        refused: Option<SecretString>,
    },
    /// A long-lived access token and no refresh token: handed out as it
    /// is, never refreshed, until an API refuses it.
    Static { token: SecretString },
}

impl TokenState {
    /// The `state` word of `status --json`: the one place it is derived.
    pub(crate) fn public_state(&self) -> AccountState {
        match self {
            TokenState::NoToken { .. } => AccountState::NoToken,
            TokenState::Fresh { .. } | TokenState::Static { .. } => AccountState::Ok,
            TokenState::Idle { .. } | TokenState::Refreshing { .. } => AccountState::Refreshing,
            TokenState::Backoff { .. } => AccountState::Backoff,
            TokenState::NeedsLogin { .. } => AccountState::NeedsLogin,
        }
    }

    /// The access token held, if any, with its expiry (a static token has
    /// none: see [`TokenState::Static`]).
    pub(crate) fn access(&self) -> Option<&Access> {
        match self {
            TokenState::Fresh { access } => Some(access),
            TokenState::Idle { access }
            | TokenState::Refreshing { access, .. }
            | TokenState::Backoff { access, .. } => access.as_ref(),
            TokenState::NoToken { .. }
            | TokenState::NeedsLogin { .. }
            | TokenState::Static { .. } => None,
        }
    }

    /// The access token to carry into the state that replaces this one
    /// (taken out where it is optional); a static token becomes one that
    /// never expires.
    pub(crate) fn take_access(&mut self) -> Option<Access> {
        match self {
            TokenState::Fresh { access } => Some(access.clone()),
            TokenState::Idle { access }
            | TokenState::Refreshing { access, .. }
            | TokenState::Backoff { access, .. } => access.take(),
            TokenState::Static { token } => Some(Access {
                token: token.clone(),
                expires: Duration::MAX,
                lifetime: Duration::MAX,
            }),
            TokenState::NoToken { .. } | TokenState::NeedsLogin { .. } => None,
        }
    }

    /// Forgets the access token (an API refused it). A fresh account
    /// without one has nothing fetched: it is idle again.
    pub(crate) fn forget_access(&mut self) {
        match self {
            TokenState::Fresh { .. } => *self = TokenState::Idle { access: None },
            TokenState::Idle { access }
            | TokenState::Refreshing { access, .. }
            | TokenState::Backoff { access, .. } => *access = None,
            TokenState::NoToken { .. }
            | TokenState::NeedsLogin { .. }
            | TokenState::Static { .. } => {}
        }
    }

    /// Transient failures in a row so far.
    pub(crate) fn failures(&self) -> u32 {
        match self {
            TokenState::Refreshing { failures, .. } | TokenState::Backoff { failures, .. } => {
                *failures
            }
            _ => 0,
        }
    }

    /// What `status` shows as the last error.
    pub(crate) fn last_error(&self) -> Option<&str> {
        match self {
            TokenState::NoToken { last_error, .. } | TokenState::Refreshing { last_error, .. } => {
                last_error.as_deref()
            }
            TokenState::Backoff { reason, .. } | TokenState::NeedsLogin { reason, .. } => {
                Some(reason)
            }
            TokenState::Idle { .. } | TokenState::Fresh { .. } | TokenState::Static { .. } => None,
        }
    }

    /// The token the provider refused, while it matters.
    pub(crate) fn refused(&self) -> Option<&SecretString> {
        match self {
            TokenState::NoToken { refused, .. } | TokenState::NeedsLogin { refused, .. } => {
                refused.as_ref()
            }
            _ => None,
        }
    }

    /// No usable refresh token: only the store can change that.
    pub(crate) fn is_stuck(&self) -> bool {
        matches!(
            self,
            TokenState::NoToken { .. } | TokenState::NeedsLogin { .. }
        )
    }

    /// The state for "the store holds no token", keeping what `status`
    /// and a later reload need to know of this one.
    pub(crate) fn to_no_token(&self) -> TokenState {
        TokenState::NoToken {
            refused: self.refused().cloned(),
            last_error: self.last_error().map(str::to_owned),
        }
    }

    /// Becomes the state of a request in flight, keeping what this one held.
    pub(crate) fn start_refreshing(&mut self) {
        *self = TokenState::Refreshing {
            access: self.take_access(),
            failures: self.failures(),
            last_error: self.last_error().map(str::to_owned),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access {
            token: SecretString::from("at"),
            expires: Duration::from_secs(3600),
            lifetime: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_request_in_flight_keeps_the_token_the_failures_and_the_reason() {
        let mut s = TokenState::Backoff {
            access: Some(access()),
            until: Timestamp::UNIX_EPOCH,
            at: Duration::ZERO,
            failures: 3,
            reason: "the token endpoint failed (503)".into(),
        };
        s.start_refreshing();
        assert_eq!(s.public_state(), "refreshing");
        assert_eq!(s.failures(), 3);
        assert_eq!(s.last_error(), Some("the token endpoint failed (503)"));
        assert!(s.access().is_some());
    }

    #[test]
    fn no_token_after_a_refusal_remembers_the_refused_token_and_why() {
        let s = TokenState::NeedsLogin {
            reason: "invalid_grant".into(),
            refused: Some(SecretString::from("rt-0")),
        };
        let n = s.to_no_token();
        assert_eq!(n.public_state(), "no_token");
        assert_eq!(n.last_error(), Some("invalid_grant"));
        assert!(n.refused().is_some());
        assert!(n.is_stuck());
    }

    #[test]
    fn a_refused_access_token_leaves_a_fresh_account_with_nothing_fetched() {
        let mut s = TokenState::Fresh { access: access() };
        s.forget_access();
        assert!(matches!(s, TokenState::Idle { access: None }));
    }
}
