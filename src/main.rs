//! The `freshd` binary: parse the command line, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use freshd::cli::{Cli, Command};
use freshd::client;
use freshd::commands::{check, import_access_token, import_token, login, logout};
use freshd::daemon::{self, ConfigSource, Options};
use freshd::oauth::login::{LOGIN_TIMEOUT, LoginOptions};

fn main() -> ExitCode {
    freshd::memory::tune_allocator();
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
        // The epoll buffer: 1,024 events by default, 12 KiB kept for good;
        // more than 128 at once only queue for the next turn.
        .max_io_events_per_tick(128)
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
    let path = cli
        .config
        .clone()
        .unwrap_or_else(freshd::paths::default_path);
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
