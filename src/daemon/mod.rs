//! The daemon: start, reload, shut down, answer the control socket.
//!
//! - `lifecycle.rs`: [`run`], in three phases: start, serve (signals and
//!   reloads), shutdown.
//! - `registry.rs`: the running accounts and jobs, how they are started,
//!   and the reload's diffing of old against new.
//! - `handler.rs`: the control socket's requests, answered.
//! - `heartbeat.rs`: `WATCHDOG=1`, `STATUS=` and `notify`, from a running
//!   summary.
//!
//! `lifecycle` uses the other three; `handler` and `heartbeat` use only the
//! registry; the registry uses none of them. Whatever `status` shows that
//! changes (an account's keeper, a job's run, a reload) tells the
//! registry's `changed`, the one route to the heartbeat.
//!
//! Start-up order: config, state directory, secret store, each account's
//! refresh token (a store that cannot be read is exit 78), the control
//! socket, the first refresh of every account, then `READY=1`, and only then
//! the job loops. SIGHUP validates the whole new config before anything
//! changes; accounts whose settings did not change keep their token manager
//! (and so their tokens), jobs that did not change keep their loop. SIGTERM
//! stops the loops between runs, gives running jobs `shutdown_grace`, and
//! exits 0.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::control;
use crate::notify::Notifier;
pub use crate::paths::state_dir;
use crate::secrets::{SecretError, SecretStore};
use crate::time::{Clock, SystemClock};

mod handler;
mod heartbeat;
mod lifecycle;
mod registry;

pub use lifecycle::run;
use registry::Registry;

/// Exit code for "a person must fix the configuration or credentials".
pub const EXIT_CONFIG: u8 = 78;

/// Where the config comes from: a file (reloadable) or fixed (the demo).
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Fixed(Box<Config>),
}

impl ConfigSource {
    fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::File(p) => Config::load(p, crate::jobs::TYPES),
            ConfigSource::Fixed(c) => Ok((**c).clone()),
        }
    }

    /// Where the config comes from, as the log and `status` say it.
    fn origin(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Fixed(_) => "the built-in configuration".into(),
        }
    }
}

/// How to run the daemon; the demo and tests replace parts.
#[derive(Debug)]
pub struct Options {
    pub config: ConfigSource,
    /// A store to use instead of the one the config names.
    pub store: Option<Arc<dyn SecretStore>>,
    pub clock: Arc<dyn Clock>,
    /// Stops the daemon as SIGTERM would (the demo's `--for`).
    pub stop: CancellationToken,
}

impl Options {
    pub fn new(config: ConfigSource) -> Self {
        Self {
            config,
            store: None,
            clock: Arc::new(SystemClock::default()),
            stop: CancellationToken::new(),
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("account {account}: {source}")]
    Secrets {
        account: String,
        #[source]
        source: SecretError,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no state directory: set [daemon] state_dir, or run under systemd (StateDirectory=), or set $XDG_STATE_HOME or $HOME"
    )]
    NoStateDir,
    #[error(transparent)]
    Locked(#[from] crate::statelock::LockError),
    #[error(transparent)]
    Socket(#[from] control::BindError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

impl StartError {
    /// The exit code: 78 when a person must act.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_)
            | StartError::NoStateDir
            | StartError::Socket(control::BindError::NotASocket { .. }) => EXIT_CONFIG,
            StartError::Secrets { source, .. } if source.needs_person() => EXIT_CONFIG,
            _ => 1,
        }
    }
}

/// A reload asked for over the control socket, and where its result goes.
type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What every task of the daemon shares.
#[derive(Debug)]
struct Daemon {
    registry: Registry,
    /// Reloads asked for over the control socket; the serve loop does them.
    reloads: mpsc::Sender<ReloadRequest>,
    notifier: Notifier,
}

/// For `freshd check`: the state directory as the daemon would use it.
pub fn state_dir_text(config: &Config) -> String {
    state_dir(config).map_or_else(
        || "(none: set [daemon] state_dir)".into(),
        |p| p.display().to_string(),
    )
}

/// The socket path as the daemon would use it.
pub fn socket_text(config: &Config) -> String {
    control::socket_path(config.daemon.socket.as_deref())
        .display()
        .to_string()
}
