//! The commands that work on the config and the secret store directly
//! (`check`, `login`, `import-token`, `logout`); the ones that talk to the
//! daemon are in [`crate::client`]. Each returns the process's exit code.

mod check;
mod import_token;
mod login;
mod logout;

pub use check::check;
pub use import_token::{import_access_token, import_token};
pub use login::login;
pub use logout::logout;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, Config, SecretsMode};
use crate::control::{self, Adoption, Request, Response};
use crate::daemon::{self, EXIT_CONFIG};
use crate::oauth::login::LoginOptions;
use crate::secrets::{self as store, SecretKind, SecretStore};

fn open_store(config: &Config) -> anyhow::Result<Arc<dyn SecretStore>> {
    let dir = match config.daemon.secrets {
        // The keyring needs no directory: do not fail for want of one.
        SecretsMode::Keyring => PathBuf::new(),
        SecretsMode::Credentials => {
            daemon::state_dir(config).context("no state directory: set [daemon] state_dir")?
        }
    };
    Ok(crate::setup::open_store(config.daemon.secrets, &dir))
}

/// Reads one line from stdin without echo when it is a terminal.
fn read_secret_line(prompt: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let _ = std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if tty {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    read.context("cannot read standard input")?;
    Ok(SecretString::from(line.trim().to_owned()))
}

/// The config and the account named on the command line, or the exit code.
fn config_and_account(path: &Path, account: &str) -> Result<(Config, Arc<config::Account>), u8> {
    let config = Config::load(path, crate::jobs::TYPES).map_err(|e| {
        eprintln!("{e}");
        EXIT_CONFIG
    })?;
    let Some(acc) = config.accounts.get(account).cloned() else {
        let known: Vec<&str> = config.accounts.keys().map(String::as_str).collect();
        eprintln!(
            "freshd: no account named \"{account}\" in {}; accounts: {}",
            path.display(),
            known.join(", ")
        );
        return Err(2);
    };
    Ok((config, acc))
}

/// The account's client secret: from the file, else from the store. A store
/// that cannot be read (no keyring, a locked one) is said, and is exit 78
/// when a person must act, as `run` does.
async fn client_secret(
    store: &Arc<dyn SecretStore>,
    acc: &config::Account,
) -> Result<Option<SecretString>, u8> {
    crate::setup::client_secret(store, acc).await.map_err(|e| {
        eprintln!("freshd: {e}");
        if e.needs_person() { EXIT_CONFIG } else { 1 }
    })
}

/// Stores a refresh token a person just obtained, remembers when, and asks
/// a running daemon to look again.
async fn save_refresh_token(
    config: &Config,
    store: &Arc<dyn SecretStore>,
    account: &str,
    token: SecretString,
) -> u8 {
    if let Some(imp) = credential_import(config, account) {
        return match imp.encrypt(&token) {
            Ok(()) => {
                eprintln!("freshd: {}", imp.done());
                0
            }
            Err(e) => {
                eprintln!("freshd: {e}");
                1
            }
        };
    }
    let fingerprint = crate::oauth::fingerprint_hex(&token);
    if let Err(e) = store::set(store, account, SecretKind::RefreshToken, token.clone()).await {
        eprintln!("freshd: {e}");
        return if e.needs_person() { EXIT_CONFIG } else { 1 };
    }
    if let Some(dir) = daemon::state_dir(config) {
        let _ = crate::setup::write_token_info(&dir, account, jiff::Timestamp::now());
    }
    let place = match (config.daemon.secrets, daemon::state_dir(config)) {
        // Written where the daemon with this state_dir reads it first.
        (SecretsMode::Credentials, Some(dir)) => dir
            .join(format!("{account}.refresh_token"))
            .display()
            .to_string(),
        _ => store.hint(account, SecretKind::RefreshToken),
    };
    eprintln!("freshd: stored the refresh token of {account} in {place}");
    // A rotation of the daemon's old chain can land on the store in the
    // moment between this write and the daemon's look: then the daemon
    // says so, and the token is stored again (a second rotation that soon
    // after the first is all but impossible; three tries are plenty).
    for _ in 0..3 {
        match tell_daemon(config, account, Some(&fingerprint)).await {
            Told::Done(code) => return code,
            Told::Raced => {
                if let Err(e) =
                    store::set(store, account, SecretKind::RefreshToken, token.clone()).await
                {
                    eprintln!("freshd: {e}");
                    return if e.needs_person() { EXIT_CONFIG } else { 1 };
                }
            }
        }
    }
    eprintln!(
        "freshd: the running daemon kept writing its own rotation over the new token; stop it, run this again, then start it"
    );
    1
}

/// What a running daemon said to `adopt`.
enum Told {
    Done(u8),
    /// Its rotation was written over the client's token: store it again.
    Raced,
}

/// Tells a running daemon that `account`'s stored token changed, and waits
/// for it to say the new one is in use (DESIGN §2, `login`/`import-token`).
async fn tell_daemon(config: &Config, account: &str, fingerprint: Option<&str>) -> Told {
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let request = Request::Adopt {
        account: account.to_owned(),
        fingerprint: fingerprint.map(str::to_owned),
    };
    Told::Done(match control::ask(&socket, &request).await {
        Ok(Response::Adopted {
            adoption: Adoption::Raced,
        }) => return Told::Raced,
        Ok(answer) => {
            match &answer {
                Response::Adopted {
                    adoption: Adoption::Working,
                } => eprintln!("freshd: the running daemon took the new token and uses it now"),
                Response::Adopted {
                    adoption: Adoption::Removed,
                } => eprintln!("freshd: the running daemon no longer has a token for {account}"),
                Response::Adopted { .. } => {
                    eprintln!("freshd: the running daemon already uses this token");
                }
                Response::Refused { error, .. } => eprintln!(
                    "freshd: the running daemon took the new token, but its first refresh failed: {error}"
                ),
                other => return Told::Done(crate::client::refused(other)),
            }
            crate::client::exit_code(&answer)
        }
        Err(_) => {
            eprintln!(
                "freshd: no daemon answers on {}; the next `freshd run` (or the unit's start) uses the stored token",
                socket.display()
            );
            0
        }
    })
}

/// In credentials mode with no `[daemon] state_dir`, the daemon is the
/// system unit (`StateDirectory=`, `DynamicUser=`), whose state directory
/// this command cannot know or write: the token goes into an encrypted
/// credential instead (DESIGN §4).
fn credential_import(
    config: &Config,
    account: &str,
) -> Option<crate::secrets::credentials::CredentialImport> {
    (config.daemon.secrets == SecretsMode::Credentials && config.daemon.state_dir.is_none())
        .then(|| crate::secrets::credentials::CredentialImport::new(account))
}

/// Finds out, before a token is obtained or read (and perhaps rotated),
/// that it can be stored as a credential.
fn check_credential_import(config: &Config, account: &str) -> Result<(), u8> {
    match credential_import(config, account).map(|imp| imp.check()) {
        Some(Err(e)) => {
            eprintln!("freshd: {e}");
            Err(EXIT_CONFIG)
        }
        _ => Ok(()),
    }
}
