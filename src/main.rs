//! The `freshd` binary: parse the command line, start logging, dispatch.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use freshd::cli::{Cli, Command};
use freshd::client;
use freshd::config::{self, Config, SecretsMode};
use freshd::control::{self, Request};
use freshd::daemon::{self, ConfigSource, EXIT_CONFIG, Options};
use freshd::oauth::login::{LOGIN_TIMEOUT, LoginOptions};
use freshd::secrets::credentials::CredentialsStore;
use freshd::secrets::keyring::KeyringStore;
use freshd::secrets::{self as store, SecretKind, SecretStore};
use secrecy::{ExposeSecret, SecretString};

fn main() -> ExitCode {
    freshd::status::mark_started();
    let cli = Cli::parse();
    let daemonish = matches!(cli.command, Command::Run | Command::Demo { .. });
    let level = cli
        .log_level
        .clone()
        .unwrap_or_else(|| if daemonish { "info" } else { "warn" }.to_owned());
    freshd::systemd::init_logging(&level);
    if daemonish {
        // As systemd advises daemons: the soft file limit up to the hard one.
        freshd::control::raise_fd_limit();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("freshd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // A file operation stuck on a hung disk must not keep us from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("freshd: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// `e` and its causes, each said once: a message that already quotes its
/// cause (an OS error, say) is not followed by it again.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let path = cli.config.clone().unwrap_or_else(config::default_path);
    match cli.command {
        Command::Run => Ok(
            match daemon::run(Options::new(ConfigSource::File(path))).await {
                Ok(code) => code,
                Err(e) => {
                    tracing::error!("cannot start: {e}");
                    e.exit_code()
                }
            },
        ),
        Command::Demo { .. } if cli.config.is_some() => {
            eprintln!(
                "freshd: demo runs its built-in config (config/demo.toml) against a simulated provider and does not read --config; to run yours: freshd run --config PATH"
            );
            Ok(2)
        }
        Command::Demo { duration } => freshd::demo::run(duration).await,
        Command::Check => Ok(check(&path).await),
        Command::Logout { account } => logout(&path, &account).await,
        Command::ImportToken {
            account,
            check,
            access_token,
        } => {
            if access_token {
                import_access_token(&path, &account).await
            } else {
                import_token(&path, &account, check).await
            }
        }
        Command::Login {
            account,
            no_browser,
            paste,
        } => {
            login(
                &path,
                &account,
                LoginOptions {
                    no_browser,
                    paste,
                    timeout: LOGIN_TIMEOUT,
                },
            )
            .await
        }
        Command::Token { account } => Ok(client::token(&path, account).await),
        Command::Status { json } => client::status(&path, json).await,
        Command::RunJob { job } => Ok(client::run_job(&path, job).await),
        Command::Reload => Ok(client::reload(&path).await),
    }
}

async fn check(path: &Path) -> u8 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CONFIG;
        }
    };
    println!("{}: ok", path.display());
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    println!(
        "daemon: time zone {}, secrets {}, state directory {}, control socket {}",
        config.daemon.timezone_name,
        config.daemon.secrets,
        daemon::describe_state_dir(&config),
        daemon::describe_socket(&config)
    );
    println!("accounts:");
    let http = freshd::http::token_client().unwrap_or_default();
    for a in config.accounts.values() {
        let provider = a.provider.map_or("custom", |p| p.name());
        println!(
            "  {:<16} {provider}, refreshed {} before expiry",
            a.name,
            config::format_duration(a.refresh_before_expiry)
        );
        print!(
            "{}",
            freshd::oauth::discovery::describe(a, daemon::state_dir(&config), &http).await
        );
    }
    println!("jobs:");
    let now = jiff::Timestamp::now();
    for j in config.jobs.values() {
        println!(
            "  {:<16} {} on {}, {}",
            j.name,
            j.kind.type_name(),
            j.account,
            j.trigger
        );
        let zone = match &j.trigger {
            config::Trigger::Cron { timezone, .. } => timezone.clone(),
            config::Trigger::Every(_) => config.daemon.timezone.clone(),
        };
        let next: Vec<String> = j
            .trigger
            .upcoming(now, 3)
            .into_iter()
            .map(|t| {
                t.to_zoned(zone.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            })
            .collect();
        println!("    next runs: {}", next.join(", "));
    }
    0
}

fn open_store(config: &Config) -> anyhow::Result<Arc<dyn SecretStore>> {
    Ok(match config.daemon.secrets {
        SecretsMode::Keyring => Arc::new(KeyringStore::new()),
        SecretsMode::Credentials => {
            let dir: PathBuf =
                daemon::state_dir(config).context("no state directory: set [daemon] state_dir")?;
            Arc::new(CredentialsStore::from_env(dir))
        }
    })
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
    let config = Config::load(path).map_err(|e| {
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
    if acc.client_secret.is_some() {
        return Ok(acc.client_secret.clone());
    }
    store::get(store, &acc.name, SecretKind::ClientSecret)
        .await
        .map_err(|e| {
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
    if let Err(e) = store::set(store, account, SecretKind::RefreshToken, token).await {
        eprintln!("freshd: {e}");
        return if e.needs_person() { EXIT_CONFIG } else { 1 };
    }
    if let Some(dir) = daemon::state_dir(config) {
        let info = serde_json::json!({ "refresh_token_obtained_at": jiff::Timestamp::now() });
        let _ = freshd::fsutil::write_private(
            &dir.join(format!("{account}.token-info.json")),
            info.to_string().as_bytes(),
        );
    }
    eprintln!(
        "freshd: stored the refresh token of {account} in {}",
        store.hint(account, SecretKind::RefreshToken)
    );
    tell_daemon(config, account).await
}

/// Tells a running daemon that `account`'s stored token changed, and waits
/// for it to say the new one is in use (DESIGN §2, `login`/`import-token`).
async fn tell_daemon(config: &Config, account: &str) -> u8 {
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let request = Request::Adopt {
        account: account.to_owned(),
    };
    match control::ask(&socket, &request).await {
        Ok(r) if r.ok => {
            match r.result.as_deref() {
                Some("working") => {
                    eprintln!("freshd: the running daemon took the new token and uses it now");
                }
                Some("removed") => {
                    eprintln!("freshd: the running daemon no longer has a token for {account}");
                }
                _ => eprintln!("freshd: the running daemon already uses this token"),
            }
            0
        }
        Ok(r) => {
            eprintln!(
                "freshd: the running daemon took the new token, but its first refresh failed: {}",
                r.error.unwrap_or_default()
            );
            r.exit_code.unwrap_or(1)
        }
        Err(_) => {
            eprintln!(
                "freshd: no daemon answers on {}; the next `freshd run` (or the unit's start) uses the stored token",
                socket.display()
            );
            0
        }
    }
}

async fn login(path: &Path, account: &str, options: LoginOptions) -> anyhow::Result<u8> {
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
    let http = freshd::http::token_client().context("cannot build the HTTP client")?;
    match freshd::oauth::login::login(&acc, secret, http, options, state_dir).await {
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

async fn import_token(path: &Path, account: &str, check: bool) -> anyhow::Result<u8> {
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
        use freshd::oauth::endpoint::{GrantRequest, HttpEndpoint, TokenEndpoint};
        let secret = match client_secret(&store, &acc).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let endpoint = HttpEndpoint::for_account(
            freshd::http::token_client().context("cannot build the HTTP client")?,
            &acc,
            secret,
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

/// `freshd logout` (DESIGN §2).
async fn logout(path: &Path, account: &str) -> anyhow::Result<u8> {
    let (config, acc) = match config_and_account(path, account) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let secret = match client_secret(&store, &acc).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let http = freshd::http::token_client().context("cannot build the HTTP client")?;
    let state_dir = daemon::state_dir(&config);
    let out = freshd::oauth::logout::logout(&acc, &store, secret, http, state_dir).await;
    if !out.deleted {
        return Ok(out.exit_code);
    }
    // A running daemon re-reads the store, finds no token, and drops its own.
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let request = Request::Adopt {
        account: account.to_owned(),
    };
    match control::ask(&socket, &request).await {
        Ok(r) if r.ok => {
            eprintln!("freshd: the running daemon no longer uses a token for {account}")
        }
        Ok(r) => {
            eprintln!(
                "freshd: the running daemon did not drop the token of {account}: {}; restart it (systemctl restart freshd)",
                r.error.unwrap_or_default()
            );
            return Ok(r.exit_code.unwrap_or(1));
        }
        Err(_) => {}
    }
    Ok(out.exit_code)
}

/// `import-token --access-token`: a long-lived access token for a provider
/// that issues no refresh token, stored as `ACCOUNT/access_token`.
async fn import_access_token(path: &Path, account: &str) -> anyhow::Result<u8> {
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
    Ok(tell_daemon(&config, account).await)
}

/// In credentials mode with no `[daemon] state_dir`, the daemon is the
/// system unit (`StateDirectory=`, `DynamicUser=`), whose state directory
/// this command cannot know or write: the token goes into an encrypted
/// credential instead (DESIGN §4).
fn credential_import(
    config: &Config,
    account: &str,
) -> Option<freshd::secrets::credentials::CredentialImport> {
    (config.daemon.secrets == SecretsMode::Credentials && config.daemon.state_dir.is_none())
        .then(|| freshd::secrets::credentials::CredentialImport::new(account))
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
