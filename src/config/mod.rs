//! Configuration: one TOML file, read in two stages.
//!
//! [`raw`] is what serde reads; [`Config::from_str`] turns it into the
//! validated types below, collecting every problem at once. Each problem
//! names the file, line, column and key and says what would be valid, so
//! `freshd check` can print them all and exit 78. Nothing in the daemon ever
//! sees a half-valid config: a config is either a [`Config`] or a
//! [`ConfigError`], and there are no silent defaults for values that are
//! present but wrong.

mod messages;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};

pub use validate::{parse_duration, valid_item_uri};

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

/// Where refresh tokens and client secrets live (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsMode {
    /// The Secret Service (gnome-keyring, KWallet, KeePassXC).
    Keyring,
    /// systemd credentials, with rotated tokens in the state directory.
    Credentials,
}

impl fmt::Display for SecretsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretsMode::Keyring => "keyring",
            SecretsMode::Credentials => "credentials",
        })
    }
}

/// A provider whose URLs freshd knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Spotify,
    Todoist,
}

impl Provider {
    pub const NAMES: &[&str] = &["spotify", "todoist"];

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "spotify" => Some(Self::Spotify),
            "todoist" => Some(Self::Todoist),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Spotify => "spotify",
            Self::Todoist => "todoist",
        }
    }

    pub fn authorize_url(self) -> &'static str {
        match self {
            Self::Spotify => "https://accounts.spotify.com/authorize",
            Self::Todoist => "https://todoist.com/oauth/authorize",
        }
    }

    pub fn token_url(self) -> &'static str {
        match self {
            Self::Spotify => "https://accounts.spotify.com/api/token",
            Self::Todoist => "https://todoist.com/oauth/access_token",
        }
    }

    fn api_base_url(self) -> &'static str {
        match self {
            Self::Spotify => "https://api.spotify.com/v1",
            Self::Todoist => "https://api.todoist.com/api/v1",
        }
    }

    /// How the provider documents client authentication at its token
    /// endpoint: Spotify takes HTTP Basic, Todoist takes `client_id` and
    /// `client_secret` as form fields.
    fn auth_method(self) -> AuthMethod {
        match self {
            Self::Spotify => AuthMethod::ClientSecretBasic,
            Self::Todoist => AuthMethod::ClientSecretPost,
        }
    }

    /// How long a refresh token lasts after authorization, where the
    /// provider limits it. Spotify's last six months (DESIGN §8); 182 days is
    /// the shortest six months can be, so the warning is never late.
    fn refresh_token_lifetime(self) -> Option<Duration> {
        match self {
            Self::Spotify => Some(Duration::from_secs(182 * 24 * 3600)),
            Self::Todoist => None,
        }
    }
}

/// How an account gets its access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A refresh token from a one-time authorization (`freshd login`).
    AuthorizationCode,
    /// The client's own credentials; no refresh token, no user.
    ClientCredentials,
}

/// How the client proves who it is to the token and revocation endpoints
/// (`token_endpoint_auth_method`, with the names of RFC 8414 and OIDC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form fields.
    ClientSecretPost,
    /// A public client: `client_id` in the form, no secret.
    None,
}

impl AuthMethod {
    pub const CHOICES: &[(&str, AuthMethod)] = &[
        ("client_secret_basic", AuthMethod::ClientSecretBasic),
        ("client_secret_post", AuthMethod::ClientSecretPost),
        ("none", AuthMethod::None),
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// `[accounts.NAME]`, with preset URLs filled in.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub provider: Option<Provider>,
    pub client_id: String,
    /// A literal secret from the file (only allowed when the file is 0600);
    /// otherwise the secret store is asked for `NAME/client_secret`.
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub redirect_uri: Option<String>,
    pub grant: Grant,
    pub refresh_before_expiry: Duration,
    /// Exactly as written (or the preset's); `None` when `issuer` is to
    /// fill it in.
    pub authorize_url: Option<String>,
    /// Exactly as written (or the preset's); `None` only when `issuer` is
    /// set, whose metadata then gives it.
    pub token_url: Option<String>,
    /// The RFC 7009 revocation endpoint, when written; else the issuer's
    /// metadata may give one.
    pub revocation_url: Option<String>,
    /// The authorization server's issuer identifier (RFC 8414), for
    /// discovery and the `iss` check of RFC 9207.
    pub issuer: Option<String>,
    /// A prefix for API paths, which all start with `/`: kept without a
    /// trailing `/`, so that joining never makes `//`.
    pub api_base_url: Option<String>,
    /// How long a refresh token lives after authorization, if limited.
    pub refresh_token_lifetime: Option<Duration>,
    /// `token_endpoint_auth_method` as written; `None` means the default
    /// (see [`Account::auth_method`]).
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Extra query parameters for the authorization request.
    pub authorize_params: BTreeMap<String, String>,
    /// Extra form fields for every token request.
    pub token_params: BTreeMap<String, String>,
    /// This account's own notify command, over `[daemon] notify`. Not
    /// part of [`Account::same_as`]: changing who is told keeps the tokens.
    pub notify: Option<Vec<String>>,
}

impl Account {
    /// Whether two versions of an account would keep the same tokens valid:
    /// a reload keeps an account's token manager when this holds.
    pub fn same_as(&self, other: &Account) -> bool {
        let secrets_equal = match (&self.client_secret, &other.client_secret) {
            (None, None) => true,
            (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        };
        secrets_equal
            && self.name == other.name
            && self.provider == other.provider
            && self.client_id == other.client_id
            && self.scopes == other.scopes
            && self.redirect_uri == other.redirect_uri
            && self.grant == other.grant
            && self.refresh_before_expiry == other.refresh_before_expiry
            && self.authorize_url == other.authorize_url
            && self.token_url == other.token_url
            && self.api_base_url == other.api_base_url
            && self.refresh_token_lifetime == other.refresh_token_lifetime
            && self.revocation_url == other.revocation_url
            && self.issuer == other.issuer
            && self.token_endpoint_auth_method == other.token_endpoint_auth_method
            && self.authorize_params == other.authorize_params
            && self.token_params == other.token_params
    }

    /// How the client authenticates: the configured method; else, with a
    /// client secret, the preset's documented one or Basic (RFC 6749
    /// §2.3.1 says servers must support it); else `none`.
    pub fn auth_method(&self, has_secret: bool) -> AuthMethod {
        match self.token_endpoint_auth_method {
            Some(m) => m,
            None if !has_secret => AuthMethod::None,
            None => self
                .provider
                .map_or(AuthMethod::ClientSecretBasic, Provider::auth_method),
        }
    }
}

/// `[jobs.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub account: String,
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
        pattern: String,
        timezone: TimeZone,
        timezone_name: String,
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

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    NowPlaying(NowPlayingJob),
    Playlist(PlaylistJob),
    Http(HttpJob),
    Command(CommandJob),
}

impl JobKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            JobKind::NowPlaying(_) => "now_playing",
            JobKind::Playlist(_) => "playlist",
            JobKind::Http(_) => "http",
            JobKind::Command(_) => "command",
        }
    }
}

/// `type = "now_playing"`
#[derive(Debug, Clone, PartialEq)]
pub struct NowPlayingJob {
    /// The history file; relative paths live in the state directory.
    pub history: Option<PathBuf>,
    /// A program to run on each change, with the item in `FRESHD_*`.
    pub on_change: Option<Vec<String>>,
}

/// `type = "playlist"`
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistJob {
    pub playlist: PlaylistRef,
    pub source: Source,
    pub mode: PlaylistMode,
}

/// A playlist, by name or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistRef {
    /// Found among the user's playlists (and created private if missing,
    /// when it is a job's target).
    Name(String),
    /// `spotify:playlist:ID`
    Id(String),
}

/// How a playlist job writes its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistMode {
    /// The playlist becomes exactly the source, in order.
    Replace,
    /// What is not there yet is added; `max_items` keeps the newest.
    Append {
        position: Position,
        max_items: Option<u32>,
    },
}

/// Where appended items go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Top,
    Bottom,
}

/// Where a playlist job's items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    TopTracks { time_range: TimeRange, limit: u32 },
    RecentlyPlayed { limit: u32 },
    Playlist { playlist: PlaylistRef },
    Search { lines: Lines },
    Uris { lines: Lines },
}

/// `short_term` (4 weeks), `medium_term` (6 months), `long_term` (years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRange {
    ShortTerm,
    MediumTerm,
    LongTerm,
}

impl TimeRange {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeRange::ShortTerm => "short_term",
            TimeRange::MediumTerm => "medium_term",
            TimeRange::LongTerm => "long_term",
        }
    }
}

/// Lines of input for `search` and `uris` sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lines {
    List(Vec<String>),
    File(PathBuf),
    Command(Vec<String>),
}

/// `type = "http"`
#[derive(Debug, Clone, PartialEq)]
pub struct HttpJob {
    pub method: HttpMethod,
    pub target: HttpTarget,
    pub query: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
    /// Where the response body goes; the log when `None`.
    pub output: Option<PathBuf>,
    /// The largest body saved to `output`; a larger one fails the run.
    pub max_size: u64,
}

/// The methods an `http` job may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// An `http` job's request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTarget {
    /// Relative to the account's `api_base_url`.
    Path(String),
    /// A full URL.
    Url(String),
}

/// `type = "command"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandJob {
    /// The program and its arguments; no shell is involved.
    pub argv: Vec<String>,
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
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
        let private = file_is_private(&meta);
        Self::parse(&text, path, private)
    }

    /// Validates `text` as if read from `path`. `private` says whether the
    /// file is readable by its owner only (literal secrets need that).
    pub fn parse(text: &str, path: &Path, private: bool) -> Result<Config, ConfigError> {
        validate::validate(text, path, private).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
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
