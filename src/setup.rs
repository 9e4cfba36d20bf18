//! Start-up steps shared by the daemon and the commands that work on the
//! store directly (`login`, `import-token`, `logout`): the secret store,
//! an account's token endpoint, and the token-info file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use crate::config::{Account, SecretsMode};
use crate::oauth::endpoint::HttpEndpoint;
use crate::secrets::credentials::CredentialsStore;
use crate::secrets::keyring::KeyringStore;
use crate::secrets::{SecretError, SecretKind, SecretStore};

/// The secret store the config names: the Secret Service, or systemd
/// credentials (which keep rotated tokens in `state_dir`).
pub fn open_store(mode: SecretsMode, state_dir: &Path) -> Arc<dyn SecretStore> {
    match mode {
        SecretsMode::Keyring => Arc::new(KeyringStore::new()),
        SecretsMode::Credentials => Arc::new(CredentialsStore::from_env(state_dir.to_owned())),
    }
}

/// The account's client secret: the file's, else the store's (`None` when
/// neither has one). The daemon and the commands both read it here.
pub async fn client_secret(
    store: &Arc<dyn SecretStore>,
    account: &Account,
) -> Result<Option<SecretString>, SecretError> {
    if account.client_secret.is_some() {
        return Ok(account.client_secret());
    }
    crate::secrets::get(store, &account.name, SecretKind::ClientSecret).await
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

// The token-info file (when each refresh token was obtained) is written
// by the token manager too, so its code lives in the token layer; this is
// where the daemon and the commands reach it.
pub use crate::oauth::token_info::{read_token_info, write_token_info};
