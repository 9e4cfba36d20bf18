//! The Secret Service (gnome-keyring, KWallet, KeePassXC) through
//! `keyring-core` and the pure-Rust zbus store. Entries are service
//! `freshd`, user `ACCOUNT/refresh_token` or `ACCOUNT/client_secret`, with no
//! other attributes to match, so `secret-tool store … service freshd
//! username ACCOUNT/refresh_token` makes an entry freshd finds and
//! `secret-tool lookup` finds what freshd stored.
//!
//! Every call blocks on D-Bus; callers use [`super::get`] / [`super::set`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use keyring_core::Error as KeyringError;
use keyring_core::api::CredentialStoreApi;
use secrecy::{ExposeSecret, SecretString};
use zbus_secret_service_keyring_store::Store;

use super::{SERVICE, SecretError, SecretKind, SecretStore};

/// The Secret Service, connected on first use.
#[derive(Debug, Default)]
pub struct KeyringStore {
    store: OnceLock<Arc<Store>>,
}

impl KeyringStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn store(&self) -> Result<&Arc<Store>, SecretError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let store = Store::new().map_err(|e| classify(&e))?;
        Ok(self.store.get_or_init(|| store))
    }

    fn entry(&self, account: &str, kind: SecretKind) -> Result<keyring_core::Entry, SecretError> {
        let label = format!("freshd {account} {}", kind.words());
        let modifiers = HashMap::from([("label", label.as_str())]);
        self.store()?
            .build(SERVICE, &user(account, kind), Some(&modifiers))
            .map_err(|e| classify(&e))
    }
}

/// The `username` attribute of an entry.
pub fn user(account: &str, kind: SecretKind) -> String {
    format!("{account}/{}", kind.suffix())
}

/// Turns a keyring error into one that says what to do. keyring-core's
/// errors hold no secret values, only platform messages.
fn classify(e: &KeyringError) -> SecretError {
    let detail = e.to_string();
    match e {
        KeyringError::NoStorageAccess(_) => SecretError::Locked { detail },
        KeyringError::PlatformFailure(_) if looks_locked(&detail) => SecretError::Locked { detail },
        KeyringError::PlatformFailure(_) if looks_unreachable(&detail) => {
            SecretError::NoService { detail }
        }
        _ => SecretError::Keyring { detail },
    }
}

fn looks_locked(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("locked") || d.contains("prompt") || d.contains("dismissed")
}

fn looks_unreachable(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "dbus",
        "d-bus",
        "address",
        "connect",
        "no such file",
        "serviceunknown",
        "not provided",
        "name",
    ]
    .iter()
    .any(|w| d.contains(w))
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
        match self.entry(account, kind)?.get_password() {
            Ok(p) => Ok(Some(SecretString::from(p))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(KeyringError::BadEncoding(_)) => Err(SecretError::NotText {
                what: format!("{} in the keyring", kind.words()),
            }),
            Err(KeyringError::Ambiguous(entries)) => Err(SecretError::Keyring {
                detail: format!(
                    "{} entries match service {SERVICE} username {}; remove all but one with `secret-tool clear service {SERVICE} username {}` and store it again",
                    entries.len(),
                    user(account, kind),
                    user(account, kind)
                ),
            }),
            Err(e) => Err(classify(&e)),
        }
    }

    fn set(
        &self,
        account: &str,
        kind: SecretKind,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        self.entry(account, kind)?
            .set_password(value.expose_secret())
            .map_err(|e| classify(&e))
    }

    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError> {
        match self.entry(account, kind)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }

    fn hint(&self, account: &str, kind: SecretKind) -> String {
        format!(
            "the keyring entry service {SERVICE} username {} (secret-tool store --label='freshd {account} {}' service {SERVICE} username {})",
            user(account, kind),
            kind.words(),
            user(account, kind)
        )
    }
}
