//! systemd credentials: secrets read from `$CREDENTIALS_DIRECTORY`
//! (`LoadCredential=` / `LoadCredentialEncrypted=`), which is read-only, so
//! rotated refresh tokens go to `STATE_DIR/ACCOUNT.refresh_token` and are
//! preferred from then on.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::{SecretError, SecretKind, SecretStore};
use crate::fsutil;

/// Reads credentials, writes rotated refresh tokens to the state directory.
#[derive(Debug, Clone)]
pub struct CredentialsStore {
    credentials_dir: Option<PathBuf>,
    state_dir: PathBuf,
}

impl CredentialsStore {
    /// `credentials_dir` is `$CREDENTIALS_DIRECTORY` (absent outside a
    /// unit that loads credentials).
    pub fn new(credentials_dir: Option<PathBuf>, state_dir: PathBuf) -> Self {
        Self {
            credentials_dir,
            state_dir,
        }
    }

    /// From the environment systemd sets.
    pub fn from_env(state_dir: PathBuf) -> Self {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Self::new(dir, state_dir)
    }

    fn rotated_path(&self, account: &str) -> PathBuf {
        self.state_dir.join(format!("{account}.refresh_token"))
    }
}

fn read_secret(path: &Path, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
                what: format!("{} in {}", kind.words(), path.display()),
            })?;
            let trimmed = text.trim();
            Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

impl SecretStore for CredentialsStore {
    fn get(&self, account: &str, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
        if kind == SecretKind::RefreshToken
            && let Some(rotated) = read_secret(&self.rotated_path(account), kind)?
        {
            return Ok(Some(rotated));
        }
        let Some(dir) = &self.credentials_dir else {
            return Ok(None);
        };
        read_secret(&dir.join(format!("{account}.{}", kind.suffix())), kind)
    }

    fn set(
        &self,
        account: &str,
        kind: SecretKind,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        if kind != SecretKind::RefreshToken {
            return Err(SecretError::ReadOnly {
                what: format!("the {} of {account}", kind.words()),
            });
        }
        let path = self.rotated_path(account);
        fsutil::write_private(&path, value.expose_secret().as_bytes())
            .map_err(|source| SecretError::Write { path, source })
    }

    /// Removes the rotated copy; a credential that systemd loads cannot be
    /// removed from here, and saying so beats pretending.
    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError> {
        if kind == SecretKind::RefreshToken {
            let path = self.rotated_path(account);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(SecretError::Write { path, source }),
            }
        }
        if let Some(dir) = &self.credentials_dir {
            let path = dir.join(format!("{account}.{}", kind.suffix()));
            if path.exists() {
                return Err(SecretError::CredentialRemains { path });
            }
        }
        Ok(())
    }

    fn hint(&self, account: &str, kind: SecretKind) -> String {
        format!(
            "the credential {account}.{} (LoadCredentialEncrypted={account}.{}:/etc/freshd/credentials/{account}.{}.cred)",
            kind.suffix(),
            kind.suffix(),
            kind.suffix()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_token_is_preferred_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let creds = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        std::fs::write(
            creds.path().join("spotify.refresh_token"),
            "from-credential\n",
        )
        .unwrap();
        let store = CredentialsStore::new(Some(creds.path().to_owned()), state.path().to_owned());
        let got = store
            .get("spotify", SecretKind::RefreshToken)
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), "from-credential");
        store
            .set(
                "spotify",
                SecretKind::RefreshToken,
                &SecretString::from("rotated"),
            )
            .unwrap();
        let got = store
            .get("spotify", SecretKind::RefreshToken)
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), "rotated");
        let mode = std::fs::metadata(state.path().join("spotify.refresh_token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            store
                .get("other", SecretKind::RefreshToken)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.set(
                "spotify",
                SecretKind::ClientSecret,
                &SecretString::from("x")
            ),
            Err(SecretError::ReadOnly { .. })
        ));
    }

    #[test]
    fn delete_removes_the_rotated_copy_and_names_a_credential_it_cannot() {
        let creds = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let store = CredentialsStore::new(Some(creds.path().to_owned()), state.path().to_owned());
        let token = SecretString::from("rotated");
        store.set("a", SecretKind::RefreshToken, &token).unwrap();
        store.delete("a", SecretKind::RefreshToken).unwrap();
        assert!(store.get("a", SecretKind::RefreshToken).unwrap().is_none());
        // Deleting what is not there is no error.
        store.delete("a", SecretKind::RefreshToken).unwrap();
        std::fs::write(creds.path().join("b.refresh_token"), "loaded\n").unwrap();
        assert!(matches!(
            store.delete("b", SecretKind::RefreshToken),
            Err(SecretError::CredentialRemains { .. })
        ));
    }
}
