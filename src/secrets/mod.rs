//! Where refresh tokens and client secrets live (DESIGN §4).
//!
//! One trait, three stores: the Secret Service ([`keyring`]), systemd
//! credentials with rotated tokens in the state directory
//! ([`credentials`]), and memory ([`memory`], for tests and the demo).
//! Store calls may block (D-Bus, fsync), so the daemon makes them through
//! [`get`] and [`set`], which run them on tokio's blocking pool with a
//! deadline: a keyring that waits for a password prompt becomes an error
//! within [`STORE_TIMEOUT`], never a hang.

pub mod credentials;
pub mod keyring;
pub mod memory;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

/// The service name of every keyring entry.
pub const SERVICE: &str = "freshd";

/// How long one store call may take. A Secret Service that is alive answers
/// in milliseconds; one that waits for a person to unlock it never does.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// The two secrets an account may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretKind {
    RefreshToken,
    ClientSecret,
    /// A long-lived access token, for providers that issue no refresh
    /// token (DESIGN §4).
    AccessToken,
}

impl SecretKind {
    /// The part after `ACCOUNT/` (keyring) or `ACCOUNT.` (credentials).
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::RefreshToken => "refresh_token",
            SecretKind::ClientSecret => "client_secret",
            SecretKind::AccessToken => "access_token",
        }
    }
}

/// What the secret is, in words, for messages.
impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretKind::RefreshToken => "refresh token",
            SecretKind::ClientSecret => "client secret",
            SecretKind::AccessToken => "long-lived access token",
        })
    }
}

/// Why a store could not be read or written. None of these hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the Secret Service is not reachable ({detail}): freshd needs a D-Bus session bus with a keyring (gnome-keyring, KWallet or KeePassXC) running; under systemd use the user unit (systemctl --user), or secrets = \"credentials\" with the system unit"
    )]
    NoService { detail: String },
    #[error(
        "the keyring is locked ({detail}): unlock it (log in to the desktop, or run `gnome-keyring-daemon --replace --unlock` and type the keyring password on its standard input); a running freshd keeps a token it could not store in memory and stores it by itself once the keyring answers, so do not restart it for this"
    )]
    Locked { detail: String },
    #[error(
        "the keyring did not answer within {}s: it is probably locked and waiting for a password prompt; unlock it (log in to the desktop, or run `gnome-keyring-daemon --replace --unlock` and type the keyring password on its standard input); a running freshd keeps a token it could not store in memory and stores it by itself once the keyring answers, so do not restart it for this",
        STORE_TIMEOUT.as_secs()
    )]
    Timeout,
    #[error("the keyring failed: {detail}")]
    Keyring { detail: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} cannot be stored with secrets = \"credentials\": systemd credentials are read-only; encrypt it with `systemd-creds encrypt` and name it in LoadCredentialEncrypted= (see README)"
    )]
    ReadOnly { what: String },
    #[error(
        "the credential {path} stays: systemd credentials are read-only to freshd; remove its LoadCredential=/LoadCredentialEncrypted= line and the file it loads, then restart freshd"
    )]
    CredentialRemains { path: PathBuf },
    #[error("the {what} is not valid text")]
    NotText { what: String },
    /// `MemoryStore::fail_writes` in the unit tests (not in the binary).
    #[cfg(test)]
    #[error("writing is switched off in this test store")]
    WritesFail,
}

impl SecretError {
    /// Whether a person must act (exit code 78) rather than a retry helping.
    pub fn needs_person(&self) -> bool {
        match self {
            SecretError::Write { .. } => false,
            #[cfg(test)]
            SecretError::WritesFail => false,
            _ => true,
        }
    }
}

/// A place that holds secrets by account and kind.
///
/// Calls may block; use [`get`] and [`set`] from async code.
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The secret, or `None` when the store has none for this account.
    fn get(&self, account: &str, kind: SecretKind) -> Result<Option<SecretString>, SecretError>;
    /// Stores `value`, replacing what was there, durably before returning.
    fn set(&self, account: &str, kind: SecretKind, value: &SecretString)
    -> Result<(), SecretError>;
    /// Where a person would put this secret, for messages.
    fn hint(&self, account: &str, kind: SecretKind) -> String;
    /// Removes the secret; having none is not an error (`freshd logout`).
    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError>;
}

/// [`SecretStore::get`] on the blocking pool, within [`STORE_TIMEOUT`].
pub async fn get(
    store: &Arc<dyn SecretStore>,
    account: &str,
    kind: SecretKind,
) -> Result<Option<SecretString>, SecretError> {
    let (store, account) = (Arc::clone(store), account.to_owned());
    blocking(move || store.get(&account, kind)).await
}

/// [`SecretStore::set`] on the blocking pool, within [`STORE_TIMEOUT`].
pub async fn set(
    store: &Arc<dyn SecretStore>,
    account: &str,
    kind: SecretKind,
    value: SecretString,
) -> Result<(), SecretError> {
    let (store, account) = (Arc::clone(store), account.to_owned());
    blocking(move || store.set(&account, kind, &value)).await
}

/// [`SecretStore::delete`] on the blocking pool, within [`STORE_TIMEOUT`].
pub async fn delete(
    store: &Arc<dyn SecretStore>,
    account: &str,
    kind: SecretKind,
) -> Result<(), SecretError> {
    let (store, account) = (Arc::clone(store), account.to_owned());
    blocking(move || store.delete(&account, kind)).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SecretError> {
    match tokio::time::timeout(STORE_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(SecretError::Keyring {
            detail: format!("the store call panicked: {join}"),
        }),
        Err(_) => Err(SecretError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_errors_say_what_to_do_and_never_advise_a_restart() {
        let detail = String::from("org.freedesktop.Secret.Error.IsLocked");
        for e in [SecretError::Locked { detail }, SecretError::Timeout] {
            let text = e.to_string();
            assert!(text.contains("unlock it"), "{text}");
            assert!(text.contains("stores it by itself"), "{text}");
            assert!(!text.contains("then restart"), "{text}");
        }
    }
}
