//! `freshd import-token`: store a refresh token (or, with `--access-token`, a static access token) given on stdin.

use super::*;

pub async fn import_token(path: &Path, account: &str, check: bool) -> anyhow::Result<u8> {
    let (config, acc) = match config_and_account(path, account) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if let Err(code) = check_credential_import(&config, account) {
        return Ok(code);
    }
    let mut token = read_secret_line(&format!(
        "Paste the refresh token for {account} (not shown), then Enter: "
    ))?;
    if token.expose_secret().is_empty() {
        eprintln!(
            "freshd: no token on standard input; pipe it in, e.g. `freshd import-token {account} < token.txt`"
        );
        return Ok(2);
    }
    let store = open_store(&config)?;
    if check {
        use crate::oauth::endpoint::{GrantRequest, TokenEndpoint};
        let secret = match client_secret(&store, &acc).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let endpoint = crate::setup::token_endpoint(
            &acc,
            secret,
            crate::http::token_client().context("cannot build the HTTP client")?,
            daemon::state_dir(&config),
        );
        match endpoint.request(GrantRequest::RefreshToken(&token)).await {
            Ok(tokens) => {
                if let Some(rotated) = tokens.refresh_token {
                    token = rotated;
                }
                eprintln!("freshd: the provider accepted the token");
            }
            Err(e) => {
                eprintln!("freshd: the provider refused the token ({e}); nothing was stored");
                return Ok(EXIT_CONFIG);
            }
        }
    }
    Ok(save_refresh_token(&config, &store, account, token).await)
}

/// `import-token --access-token`: a long-lived access token for a provider
/// that issues no refresh token, stored as `ACCOUNT/access_token`.
pub async fn import_access_token(path: &Path, account: &str) -> anyhow::Result<u8> {
    let (config, _) = match config_and_account(path, account) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if config.daemon.secrets == SecretsMode::Credentials {
        eprintln!(
            "freshd: with secrets = \"credentials\" a long-lived access token is a credential: `systemd-creds encrypt --name={account}.access_token - /etc/freshd/credentials/{account}.access_token.cred`, then add LoadCredentialEncrypted={account}.access_token:/etc/freshd/credentials/{account}.access_token.cred to the unit (`systemctl edit freshd`) and restart it; nothing was stored"
        );
        return Ok(EXIT_CONFIG);
    }
    let token = read_secret_line(&format!(
        "Paste the access token for {account} (not shown), then Enter: "
    ))?;
    if token.expose_secret().is_empty() {
        eprintln!(
            "freshd: no token on standard input; pipe it in, e.g. `freshd import-token {account} --access-token < token.txt`"
        );
        return Ok(2);
    }
    let store = open_store(&config)?;
    if let Err(e) = store::set(&store, account, SecretKind::AccessToken, token).await {
        eprintln!("freshd: {e}");
        return Ok(if e.needs_person() { EXIT_CONFIG } else { 1 });
    }
    eprintln!(
        "freshd: stored the long-lived access token of {account} in {}; it is used while the store holds no refresh token for {account}",
        store.hint(account, SecretKind::AccessToken)
    );
    Ok(match tell_daemon(&config, account, None).await {
        Told::Done(code) => code,
        Told::Raced => 1,
    })
}
