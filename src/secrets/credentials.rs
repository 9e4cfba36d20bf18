//! systemd credentials: secrets read from `$CREDENTIALS_DIRECTORY`
//! (`LoadCredential=` / `LoadCredentialEncrypted=`), which is read-only, so
//! rotated refresh tokens go to `STATE_DIR/ACCOUNT.refresh_token`.
//!
//! # The newest refresh token wins
//!
//! A refresh token can come from two places: the credential (imported by a
//! person with `systemd-creds encrypt`) and the rotated copy (written by
//! freshd when the provider rotates). Next to the rotated copy freshd keeps
//! `STATE_DIR/ACCOUNT.refresh_token.origin.json` (mode 0600, written
//! atomically before the copy), which records the SHA-256 fingerprint of the
//! credential the copy descends from (`null` when there was none). On read:
//!
//! - only one of the two exists: that one;
//! - the credential is the one recorded: the rotated copy, which is newer;
//! - the credential differs from the one recorded (a person imported a new
//!   one since): the credential. The stale copy is renamed to
//!   `ACCOUNT.refresh_token.superseded` (kept, never read again), and the
//!   next rotation starts a new copy that descends from the new credential;
//! - a rotated copy without an origin file (written before freshd recorded
//!   origins): the copy, and the present credential is recorded as its
//!   origin, so a credential imported later wins.
//!
//! A refresh token has far too much entropy for its fingerprint to reveal it.
//!
//! [`CredentialImport`] is what `import-token` does in this mode: it encrypts
//! the token into the `.cred` file the system unit loads, with
//! `systemd-creds encrypt`, or says the exact command when it cannot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{SecretError, SecretKind, SecretStore};
use crate::fsutil;

/// Reads credentials, writes rotated refresh tokens to the state directory.
#[derive(Debug, Clone)]
pub struct CredentialsStore {
    credentials_dir: Option<PathBuf>,
    state_dir: PathBuf,
}

/// Which credential a rotated copy descends from.
#[derive(Debug, Serialize, Deserialize)]
struct Origin {
    /// Hex SHA-256 of the credential's token; `None`: there was none.
    credential_sha256: Option<String>,
    /// When the rotated copy was last written.
    written_at: jiff::Timestamp,
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

    fn origin_path(&self, account: &str) -> PathBuf {
        self.state_dir
            .join(format!("{account}.refresh_token.origin.json"))
    }

    fn credential(
        &self,
        account: &str,
        kind: SecretKind,
    ) -> Result<Option<SecretString>, SecretError> {
        let Some(dir) = &self.credentials_dir else {
            return Ok(None);
        };
        read_secret(&dir.join(format!("{account}.{}", kind.as_str())), kind)
    }

    /// The recorded origin; `None` when there is none or it is unreadable
    /// as JSON (both treated as "written before origins were recorded").
    fn origin(&self, account: &str) -> Result<Option<Origin>, SecretError> {
        let path = self.origin_path(account);
        match crate::fsutil::read_regular(&path, MAX_SECRET_FILE) {
            Ok((bytes, _)) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretError::Read { path, source }),
        }
    }

    fn write_origin(
        &self,
        account: &str,
        credential: Option<&SecretString>,
    ) -> Result<(), SecretError> {
        let origin = Origin {
            credential_sha256: credential.map(fingerprint),
            written_at: jiff::Timestamp::now(),
        };
        let path = self.origin_path(account);
        let json = serde_json::to_vec(&origin).map_err(|e| SecretError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        fsutil::write_private(&path, &json).map_err(|source| SecretError::Write { path, source })
    }

    /// The rotated copy or the credential, whichever is newer (module docs).
    fn newest_refresh_token(&self, account: &str) -> Result<Option<SecretString>, SecretError> {
        let kind = SecretKind::RefreshToken;
        let rotated = read_secret(&self.rotated_path(account), kind)?;
        let credential = self.credential(account, kind)?;
        let (Some(rotated), Some(credential)) = (rotated.as_ref(), credential.as_ref()) else {
            return Ok(rotated.or(credential));
        };
        match self.origin(account)? {
            None => {
                // A copy from before origins: it descends from this credential.
                if let Err(e) = self.write_origin(account, Some(credential)) {
                    tracing::warn!(account, "cannot record the rotated token's origin: {e}");
                }
                Ok(Some(rotated.clone()))
            }
            Some(o) if o.credential_sha256.as_deref() == Some(&*fingerprint(credential)) => {
                Ok(Some(rotated.clone()))
            }
            Some(_) => {
                tracing::info!(
                    account,
                    "the credential {account}.refresh_token changed since freshd last rotated it: using the credential, the newer token; the old rotated copy is kept as {account}.refresh_token.superseded"
                );
                self.supersede(account);
                Ok(Some(credential.clone()))
            }
        }
    }

    /// Moves a stale rotated copy aside. Best effort: while it stays, its
    /// origin still names another credential, so it is still not used.
    fn supersede(&self, account: &str) {
        let from = self.rotated_path(account);
        let to = self
            .state_dir
            .join(format!("{account}.refresh_token.superseded"));
        if let Err(e) = std::fs::rename(&from, &to) {
            tracing::warn!(account, "cannot move the stale rotated token aside: {e}");
            return;
        }
        let _ = std::fs::remove_file(self.origin_path(account));
    }
}

/// Hex SHA-256 of a token as read (trimmed).
fn fingerprint(token: &SecretString) -> String {
    Sha256::digest(token.expose_secret().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The longest secret file read: tokens are under 4 KiB; a FIFO, a device
/// or a huge file in its place is refused, never waited on or slurped.
const MAX_SECRET_FILE: u64 = 64 * 1024;

fn read_secret(path: &Path, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
    match crate::fsutil::read_regular(path, MAX_SECRET_FILE) {
        Ok((bytes, _)) => {
            let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
                what: format!("{} in {}", kind, path.display()),
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
        match kind {
            SecretKind::RefreshToken => self.newest_refresh_token(account),
            SecretKind::ClientSecret | SecretKind::AccessToken => self.credential(account, kind),
        }
    }

    fn set(
        &self,
        account: &str,
        kind: SecretKind,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        if kind != SecretKind::RefreshToken {
            return Err(SecretError::ReadOnly {
                what: format!("the {} of {account}", kind),
            });
        }
        // Origin first: a crash between the two leaves the old copy with
        // the new origin, which names the same credential within a run.
        // A credential that cannot be read now (it was at start) must not
        // cost the rotation: the origin then stays as it was.
        match self.credential(account, kind) {
            Ok(credential) => self.write_origin(account, credential.as_ref())?,
            Err(e) => tracing::warn!(account, "cannot fingerprint the credential: {e}"),
        }
        let path = self.rotated_path(account);
        fsutil::write_private(&path, value.expose_secret().as_bytes())
            .map_err(|source| SecretError::Write { path, source })
    }

    /// Removes the rotated copy; a credential that systemd loads cannot be
    /// removed from here, and saying so beats pretending.
    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError> {
        if kind == SecretKind::RefreshToken {
            for path in [self.rotated_path(account), self.origin_path(account)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(SecretError::Write { path, source }),
                }
            }
        }
        if let Some(dir) = &self.credentials_dir {
            let path = dir.join(format!("{account}.{}", kind.as_str()));
            if path.exists() {
                return Err(SecretError::CredentialRemains { path });
            }
        }
        Ok(())
    }

    fn hint(&self, account: &str, kind: SecretKind) -> String {
        format!(
            "the credential {account}.{} (LoadCredentialEncrypted={account}.{}:{})",
            kind.as_str(),
            kind.as_str(),
            CredentialImport::default_path(account, kind).display()
        )
    }
}

/// Where the system unit's encrypted credentials live (README).
pub const CREDENTIALS_DIR: &str = "/etc/freshd/credentials";

/// `import-token` in credentials mode: the token becomes the encrypted
/// credential `ACCOUNT.refresh_token` that the system unit loads with
/// `LoadCredentialEncrypted=`, made with `systemd-creds encrypt`. The
/// daemon takes it at its next start, since a credential that changed wins
/// over the rotated copy (module docs).
///
/// The CLI calls [`CredentialImport::check`] before it reads the token, and
/// when that fails prints the error (which holds [`CredentialImport::command`])
/// and stores nothing; otherwise [`CredentialImport::encrypt`], then prints
/// [`CredentialImport::done`].
#[derive(Debug, Clone)]
pub struct CredentialImport {
    account: String,
    path: PathBuf,
    program: PathBuf,
}

/// Why `import-token` could not write the credential. None holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "cannot write {path} ({why}); nothing was stored. As root, run:\n  {command}\nand give it the token on standard input, then `systemctl restart freshd`"
    )]
    Cannot {
        path: PathBuf,
        why: String,
        command: String,
    },
    #[error("`{command}` failed ({why}); nothing was stored")]
    Failed { command: String, why: String },
}

/// Why one run of the program failed.
#[derive(Debug)]
enum Why {
    /// It could not be started (not installed).
    Spawn(std::io::Error),
    Other(String),
}

impl CredentialImport {
    /// For `account`, at [`CREDENTIALS_DIR`]`/ACCOUNT.refresh_token.cred`.
    pub fn new(account: &str) -> Self {
        Self::at(
            account,
            Self::default_path(account, SecretKind::RefreshToken),
            PathBuf::from("systemd-creds"),
        )
    }

    /// For `account`, writing `path` with `program` (tests use a stand-in).
    pub fn at(account: &str, path: PathBuf, program: PathBuf) -> Self {
        Self {
            account: account.to_owned(),
            path,
            program,
        }
    }

    fn default_path(account: &str, kind: SecretKind) -> PathBuf {
        Path::new(CREDENTIALS_DIR).join(format!("{account}.{}.cred", kind.as_str()))
    }

    fn name(&self) -> String {
        format!("{}.{}", self.account, SecretKind::RefreshToken.as_str())
    }

    /// The `.cred` file this writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The command that does by hand what [`Self::encrypt`] does.
    pub fn command(&self) -> String {
        format!(
            "systemd-creds encrypt --name={} - {}",
            self.name(),
            self.path.display()
        )
    }

    /// Whether [`Self::encrypt`] can work: a trial encryption of a dummy
    /// value into the directory, removed at once, shows that the program
    /// runs, may use the host key and can write there. Checked before the
    /// token is read (and before `--check` may rotate it), so a person who
    /// cannot store it is told so before giving it.
    pub fn check(&self) -> Result<(), ImportError> {
        let cannot = |why: String| ImportError::Cannot {
            path: self.path.clone(),
            why,
            command: self.command(),
        };
        let dir = self.dir();
        std::fs::create_dir_all(dir).map_err(|e| cannot(format!("{}: {e}", dir.display())))?;
        let probe = dir.join(format!(".freshd-probe-{}.cred", std::process::id()));
        let result = self.run_encrypt("freshd-probe", b"probe", &probe);
        let _ = std::fs::remove_file(&probe);
        result.map_err(|why| match why {
            Why::Spawn(e) => cannot(format!("{}: {e}", self.program.display())),
            Why::Other(why) => cannot(why),
        })
    }

    fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// Encrypts `token` into [`Self::path`]: to a temporary file beside it,
    /// then renamed over it, so the unit never loads half a credential.
    pub fn encrypt(&self, token: &SecretString) -> Result<(), ImportError> {
        let failed = |why: String| ImportError::Failed {
            command: self.command(),
            why,
        };
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self
            .dir()
            .join(format!(".{file}.tmp-{}", std::process::id()));
        let result = self
            .run_encrypt(&self.name(), token.expose_secret().as_bytes(), &tmp)
            .map_err(|why| match why {
                Why::Spawn(e) => failed(e.to_string()),
                Why::Other(why) => failed(why),
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path).map_err(|e| failed(e.to_string())));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// `PROGRAM encrypt --name=NAME - DEST` with `value` on its input.
    fn run_encrypt(&self, name: &str, value: &[u8], dest: &Path) -> Result<(), Why> {
        let mut child = Command::new(&self.program)
            .args(["encrypt", &format!("--name={name}"), "-"])
            .arg(dest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Why::Spawn)?;
        // A program that fails early closes its input: its own message,
        // not the broken pipe, says why.
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(value));
        let out = child
            .wait_with_output()
            .map_err(|e| Why::Other(e.to_string()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Why::Other(format!("{}: {}", out.status, err.trim())));
        }
        match written {
            Some(Err(e)) => Err(Why::Other(e.to_string())),
            _ => Ok(()),
        }
    }

    /// What was done and what is left, for the CLI to print.
    pub fn done(&self) -> String {
        format!(
            "encrypted the refresh token of {account} into {path} with `{command}`; the system unit loads it with LoadCredentialEncrypted={name}:{path} (add that line with `systemctl edit freshd` if it is not there) and uses it from its next start, since a changed credential wins over the rotated copy: run `systemctl restart freshd`",
            account = self.account,
            path = self.path.display(),
            command = self.command(),
            name = self.name(),
        )
    }
}

#[cfg(test)]
mod tests;
