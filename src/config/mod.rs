//! Configuration: one TOML file, read in two stages.
//!
//! [`raw`] is what serde reads; [`Config::parse`] turns it into the
//! validated types below ([`validate`], by concern; each job type checks
//! its own keys in its file under `src/jobs/`, through the registry of job
//! types it is given, [`Registered`]), collecting every problem at once. Each problem
//! names the file, line, column and key and says what would be valid, so
//! `freshd check` can print them all and exit 78. Nothing in the daemon ever
//! sees a half-valid config: a config is either a [`Config`] or a
//! [`ConfigError`], and there are no silent defaults for values that are
//! present but wrong.

mod account;
mod choices;
mod job_type;
mod messages;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

pub use account::{Account, AuthMethod, ClientSecret, Grant, Provider};
pub(crate) use choices::choices;
pub use job_type::{JobKind, JobSettings, Registered};
pub use raw::{Keys, RawTable, Shape};
pub use validate::{JobCheck, parse_duration, quoted_list};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub daemon: Daemon,
    /// Accounts by name, in name order.
    pub accounts: BTreeMap<String, Arc<Account>>,
    /// Jobs by name, in name order.
    pub jobs: BTreeMap<String, Arc<Job>>,
}

/// `[daemon]`
#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub timezone: TimeZone,
    /// The zone's IANA name, for `check` and `status`.
    pub timezone_name: String,
    pub secrets: SecretsMode,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// How long running jobs get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// The command run when a person must act (DESIGN §3).
    pub notify: Option<Vec<String>>,
}

choices! {
    /// Where refresh tokens and client secrets live (DESIGN §4).
    pub enum SecretsMode {
        /// The Secret Service (gnome-keyring, KWallet, KeePassXC).
        Keyring = "keyring",
        /// systemd credentials, with rotated tokens in the state directory.
        Credentials = "credentials",
    }
}

/// `[jobs.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    /// Shared by every job of the account.
    pub account: Arc<str>,
    pub trigger: Trigger,
    /// The longest one run may take before it is stopped and counted failed.
    pub timeout: Duration,
    pub kind: JobKind,
}

/// When a job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A cron pattern, evaluated in a time zone.
    Cron {
        /// Shared: croner keeps a byte per possible year in each parsed
        /// pattern (kilobytes), and jobs often share a pattern.
        cron: Arc<croner::Cron>,
        /// Shared by the jobs that repeat it, as `cron` is.
        pattern: Arc<str>,
        timezone: TimeZone,
        timezone_name: Arc<str>,
    },
    /// A fixed interval between the starts of two runs.
    Every(Duration),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Cron {
                pattern,
                timezone_name,
                ..
            } => write!(f, "schedule \"{pattern}\" ({timezone_name})"),
            Trigger::Every(d) => write!(f, "every {}", format_duration(*d)),
        }
    }
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// The dotted key it concerns, e.g. `jobs.now-playing.every`.
    pub key: String,
    /// What is wrong, and what would be valid.
    pub message: String,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source} (give another with --config PATH or $FRESHD_CONFIG; config/freshd.toml is an example)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}:{}:{}: {}: {}",
            path.display(),
            p.line,
            p.column,
            p.key,
            p.message
        ));
    }
    out
}

/// The largest config file freshd reads: 10,000 jobs take about 1 MiB, so
/// 16 MiB leaves room for any real setup while refusing a file that is
/// surely not a config (a log or an image passed by mistake).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// How long reading the config may take: a local file takes milliseconds,
/// so a file that takes longer (a hung network mount) fails the start or
/// the reload at once instead of freezing the daemon.
const CONFIG_READ_TIME: std::time::Duration = std::time::Duration::from_secs(5);

impl Config {
    /// Reads and validates the file at `path`, with the job types of
    /// `types` (`jobs::TYPES`).
    pub fn load<B>(path: &Path, types: &[Registered<B>]) -> Result<Config, ConfigError> {
        let (text, private) = read_config(path)?;
        Self::parse(&text, path, private, types)
    }

    /// Reads the file at `path` and checks its `[daemon]` table only: what
    /// the client commands need to find the daemon.
    pub fn load_daemon(path: &Path) -> Result<Daemon, ConfigError> {
        let (text, _) = read_config(path)?;
        validate::validate_daemon(&text).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Validates `text` as if read from `path`. `private` says whether the
    /// file is readable by its owner only (literal secrets need that);
    /// `types` are the job types (`jobs::TYPES`).
    pub fn parse<B>(
        text: &str,
        path: &Path,
        private: bool,
        types: &[Registered<B>],
    ) -> Result<Config, ConfigError> {
        validate::validate(text, path, private, types).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

/// The text of the config file at `path`, and whether only its owner may
/// read it.
fn read_config(path: &Path) -> Result<(String, bool), ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let (bytes, meta) = match crate::fsutil::read_regular_within(
        path,
        MAX_CONFIG_BYTES,
        CONFIG_READ_TIME,
    ) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems: vec![Problem {
                    line: 1,
                    column: 1,
                    key: "(file)".into(),
                    message: format!(
                        "the file is larger than a config can be: a config is at most {MAX_CONFIG_BYTES} bytes"
                    ),
                }],
            });
        }
        Err(e) => return Err(read_err(e)),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col_bytes(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::Invalid {
            path: path.to_owned(),
            problems: vec![Problem {
                line,
                column,
                key: "(file)".into(),
                message: "the file is not UTF-8 text; a config is a TOML file".into(),
            }],
        }
    })?;
    Ok((text, file_is_private(&meta)))
}

/// Client ids of `config/freshd.toml`, which only look like real ones.
const PLACEHOLDER_CLIENT_IDS: &[&str] =
    &["0123456789abcdef0123456789abcdef", "your-todoist-client-id"];

impl Config {
    /// What `freshd check` warns about in a valid config: the example's
    /// placeholders, and a config that does nothing.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.accounts.is_empty() && self.jobs.is_empty() {
            out.push("the config has no accounts and no jobs, so freshd has nothing to do; add an [accounts.NAME] table (`man freshd.toml` lists every key)".to_owned());
        }
        for a in self.accounts.values() {
            if PLACEHOLDER_CLIENT_IDS.contains(&a.client_id.as_str())
                || a.client_id.starts_with("your-")
            {
                out.push(format!(
                    "accounts.{}.client_id is the example's placeholder \"{}\"; put the client id of the app you registered at the provider",
                    a.name, a.client_id
                ));
            }
        }
        out
    }
}

fn file_is_private(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 == 0
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    line_col_bytes(text.as_bytes(), offset)
}

fn line_col_bytes(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// `90s` → "1m 30s": the friendly form that the config accepts back.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, rest) = (secs / 86400, secs % 86400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (mins, s) = (rest / 60, rest % 60);
    let mut parts = Vec::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (mins, "m"), (s, "s")] {
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests;
