//! `freshd login`: the browser (or pasted) authorization code flow.

use super::*;

pub async fn login(path: &Path, account: &str, options: LoginOptions) -> anyhow::Result<u8> {
    let (config, acc) = match config_and_account(path, account) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if let Err(code) = check_credential_import(&config, account) {
        return Ok(code);
    }
    let store = open_store(&config)?;
    let secret = match client_secret(&store, &acc).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let state_dir = daemon::state_dir(&config);
    let http = crate::http::token_client().context("cannot build the HTTP client")?;
    match crate::oauth::login::login(&acc, secret, http, options, state_dir).await {
        Ok(authorized) => {
            let token = authorized.refresh_token.clone();
            let code = save_refresh_token(&config, &store, account, token).await;
            let outcome = if code == 0 {
                Ok(())
            } else {
                Err("the provider authorized freshd, but freshd could not store the refresh token; the terminal says why and what to do".to_owned())
            };
            authorized.finish(account, outcome).await;
            Ok(code)
        }
        Err(e) => {
            eprintln!("freshd: login failed: {e}");
            Ok(e.exit_code())
        }
    }
}
