//! `freshd logout`: revoke and forget an account's tokens.

use super::*;

/// `freshd logout` (DESIGN §2).
pub async fn logout(path: &Path, account: &str) -> anyhow::Result<u8> {
    let (config, acc) = match config_and_account(path, account) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let secret = match client_secret(&store, &acc).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let http = crate::http::token_client().context("cannot build the HTTP client")?;
    let state_dir = daemon::state_dir(&config);
    let out = crate::oauth::logout::logout(&acc, &store, secret, http, state_dir).await;
    if !out.deleted {
        return Ok(out.exit_code);
    }
    // A running daemon re-reads the store, finds no token, and drops its own.
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let request = Request::Adopt {
        account: account.to_owned(),
        fingerprint: None,
    };
    if let Ok(answer) = control::ask(&socket, &request).await {
        match &answer {
            Response::Adopted { .. } => {
                eprintln!("freshd: the running daemon no longer uses a token for {account}");
            }
            Response::Refused { error, .. } => {
                eprintln!(
                    "freshd: the running daemon did not drop the token of {account}: {error}; restart it (systemctl restart freshd)"
                );
                return Ok(crate::client::exit_code(&answer));
            }
            other => return Ok(crate::client::refused(other)),
        }
    }
    Ok(out.exit_code)
}
