//! An in-memory store: for tests, and for `freshd demo`, which must not
//! touch the user's keyring.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::sync::Mutex;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::{ExposeSecret, SecretString};

use super::{SecretError, SecretKind, SecretStore};

/// Secrets in a map; in the unit tests, writes can be made to fail, as a
/// full disk would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<(String, SecretKind), SecretString>>,
    #[cfg(test)]
    fail_writes: AtomicBool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later `set` fail (or succeed again).
    #[cfg(test)]
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, SecretKind), SecretString>> {
        self.secrets.locked()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
        Ok(self.map().get(&(account.to_owned(), kind)).cloned())
    }

    fn set(
        &self,
        account: &str,
        kind: SecretKind,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        #[cfg(test)]
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(SecretError::WritesFail);
        }
        let copy = SecretString::from(value.expose_secret().to_owned());
        self.map().insert((account.to_owned(), kind), copy);
        Ok(())
    }

    fn hint(&self, account: &str, kind: SecretKind) -> String {
        format!("{account}/{} in memory", kind.as_str())
    }

    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError> {
        self.map().remove(&(account.to_owned(), kind));
        Ok(())
    }
}
