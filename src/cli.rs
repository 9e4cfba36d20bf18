//! The command line (DESIGN §2). `examples/gen-docs.rs` makes the man pages
//! and shell completions from it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps OAuth 2.0 access tokens fresh and runs scheduled jobs with them.
#[derive(Debug, Parser)]
#[command(
    name = "freshd",
    version,
    about,
    propagate_version = true,
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 (status) an account needs a person, 78 the configuration or credentials need a person.\nThe config file's keys: man freshd.toml; more: man freshd."
)]
pub struct Cli {
    /// The config file [default: $FRESHD_CONFIG, else
    /// $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (what systemd's ExecStart= runs)
    Run,
    /// Check the config; print accounts, jobs and each job's next 3 runs
    Check,
    /// Authorize freshd in a browser (code + PKCE) and store the refresh token
    Login {
        account: String,
        /// Print the URL instead of opening a browser
        #[arg(long)]
        no_browser: bool,
        /// Paste the redirected URL instead of listening for it (headless machines)
        #[arg(long)]
        paste: bool,
    },
    /// Read a refresh token from standard input and store it
    ImportToken {
        account: String,
        /// Refresh once with it first, and store only if the provider accepts it
        #[arg(long, conflicts_with = "access_token")]
        check: bool,
        /// The token is a long-lived access token (a provider that issues no
        /// refresh token): handed out as it is, never refreshed
        #[arg(long)]
        access_token: bool,
    },
    /// Revoke the refresh token at the provider, delete it from the store,
    /// and tell a running daemon
    Logout { account: String },
    /// Print a valid access token, asked of the running daemon
    Token { account: String },
    /// Show accounts and jobs of the running daemon; exit 3 when an account needs a person
    Status {
        /// One JSON object {"accounts":[…],"jobs":[…],"daemon":{…}}; later versions only add fields
        #[arg(long)]
        json: bool,
    },
    /// Run one job now in the running daemon; the exit code says how it went
    RunJob { job: String },
    /// Reload the config of the running daemon (as SIGHUP does)
    Reload,
    /// Run the daemon against a built-in simulated provider
    Demo {
        /// Stop after this long, e.g. 30s [default: until Ctrl-C]
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}
