//! Start-up steps shared by the daemon and the commands that work on the
//! store directly (`login`, `import-token`, `logout`): the secret store,
//! an account's token endpoint, and the token-info file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use crate::config::{Account, SecretsMode};
use crate::oauth::endpoint::HttpEndpoint;
use crate::secrets::SecretStore;
use crate::secrets::credentials::CredentialsStore;
use crate::secrets::keyring::KeyringStore;

/// The secret store the config names: the Secret Service, or systemd
/// credentials (which keep rotated tokens in `state_dir`).
pub fn open_store(mode: SecretsMode, state_dir: &Path) -> Arc<dyn SecretStore> {
    match mode {
        SecretsMode::Keyring => Arc::new(KeyringStore::new()),
        SecretsMode::Credentials => Arc::new(CredentialsStore::from_env(state_dir.to_owned())),
    }
}

/// The account's token endpoint, authenticating with `client_secret` (the
/// file's, or the store's when the file has none) as the account says.
/// `state_dir` keeps the discovered issuer metadata between runs.
pub fn token_endpoint(
    account: &Account,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    state_dir: Option<PathBuf>,
) -> HttpEndpoint {
    HttpEndpoint::for_account(http, account, client_secret, state_dir)
}

/// What freshd remembers of a refresh token besides the token itself, in
/// `<state_dir>/<account>.token-info.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TokenInfo {
    refresh_token_obtained_at: jiff::Timestamp,
}

fn token_info_path(state_dir: &Path, account: &str) -> std::path::PathBuf {
    state_dir.join(format!("{account}.token-info.json"))
}

/// When the account's refresh token was obtained, if that was recorded.
pub fn read_token_info(state_dir: &Path, account: &str) -> Option<jiff::Timestamp> {
    let (bytes, _) =
        crate::fsutil::read_regular(&token_info_path(state_dir, account), 4096).ok()?;
    serde_json::from_slice::<TokenInfo>(&bytes)
        .ok()
        .map(|i| i.refresh_token_obtained_at)
}

/// Forgets when the account's refresh token was obtained (a logout). A
/// file that is not there is fine.
pub fn remove_token_info(state_dir: &Path, account: &str) {
    let _ = std::fs::remove_file(token_info_path(state_dir, account));
}

/// Records that the account's refresh token was obtained at `at`; returns
/// the file's path with the error.
pub fn write_token_info(
    state_dir: &Path,
    account: &str,
    at: jiff::Timestamp,
) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    let path = token_info_path(state_dir, account);
    let info = TokenInfo {
        refresh_token_obtained_at: at,
    };
    let text = serde_json::to_string(&info).unwrap_or_default();
    crate::fsutil::write_private(&path, text.as_bytes()).map_err(|e| (path, e))
}
