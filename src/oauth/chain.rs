//! An account's refresh token chain: the newest token (what the next
//! refresh sends), a rotation the store has not taken yet, and the
//! fingerprints of the tokens the chain has held. These outlive any one
//! [`TokenState`](super::state::TokenState).

use std::collections::VecDeque;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// A SHA-256 of a token: enough to recognise it, nothing to use it with.
type Fingerprint = [u8; 32];

/// How many of a chain's tokens are remembered: more than a chain rotates
/// between two looks at the store.
const SEEN: usize = 64;

/// The SHA-256 of a token in hex, as `adopt` requests carry it.
pub fn fingerprint_hex(t: &SecretString) -> String {
    fingerprint(t).iter().map(|b| format!("{b:02x}")).collect()
}

fn fingerprint(t: &SecretString) -> Fingerprint {
    use sha2::Digest;
    sha2::Sha256::digest(t.expose_secret().as_bytes()).into()
}

/// Whether two optional tokens are the same.
pub(crate) fn same(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        _ => false,
    }
}

/// A rotated refresh token the store has not taken yet.
#[derive(Debug, Clone)]
pub(crate) struct Unstored {
    /// For `status`: what failed and what freshd does about it.
    pub(crate) error: String,
    /// What the store said.
    pub(crate) cause: String,
    /// Boot-clock reading of the next attempt.
    pub(crate) retry_at: Duration,
    pub(crate) attempts: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// The newest refresh token of the chain: what the next refresh sends.
    pub(crate) newest: Option<SecretString>,
    /// Set while `newest` is a rotation the store refused.
    pub(crate) unstored: Option<Unstored>,
    /// Fingerprints of the refresh tokens this chain has held, newest last.
    /// A token in the store that is not among them was put there by
    /// someone else (a login or import); one that is, is an older token of
    /// this chain (a rotated copy that vanished, a stale credential).
    seen: VecDeque<Fingerprint>,
}

impl Chain {
    /// Makes `t` the chain's newest token.
    pub(crate) fn hold(&mut self, t: SecretString) {
        let f = fingerprint(&t);
        if !self.seen.contains(&f) {
            if self.seen.len() == SEEN {
                self.seen.pop_front();
            }
            self.seen.push_back(f);
        }
        self.newest = Some(t);
    }

    /// Whether `t` is a token of this chain.
    pub(crate) fn knows(&self, t: &SecretString) -> bool {
        self.seen.contains(&fingerprint(t))
    }

    /// Forgets the chain's token (a logout, or a static token instead).
    pub(crate) fn clear(&mut self) {
        self.newest = None;
        self.unstored = None;
    }

    /// Takes over `from`'s history, its newest token if it has one, and
    /// its rotation the store refused.
    pub(crate) fn inherit(&mut self, from: &Chain) {
        self.seen.clone_from(&from.seen);
        if from.newest.is_some() {
            self.newest.clone_from(&from.newest);
        }
        self.unstored.clone_from(&from.unstored);
    }
}
