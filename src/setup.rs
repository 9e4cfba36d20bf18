//! Start-up steps shared by the daemon and the commands that work on the
//! store directly (`login`, `import-token`, `logout`).

use std::path::Path;
use std::sync::Arc;

use crate::config::SecretsMode;
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
