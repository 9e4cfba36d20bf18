//! The second stage: [`raw`](super::raw) values checked and turned into
//! [`Config`]. Every check adds a [`Problem`] and goes on, so that one run of
//! `freshd check` shows everything that is wrong.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use secrecy::SecretString;
use toml::Spanned;

use super::raw::{RawAccount, RawConfig, RawDaemon, RawJob, RawSource};
use super::{
    Account, AuthMethod, CommandJob, Config, Daemon, Grant, HttpJob, HttpMethod, HttpTarget,
    JobKind, Lines, NowPlayingJob, PlaylistJob, PlaylistMode, PlaylistRef, Position, Problem,
    Provider, SecretsMode, Source, TimeRange, Trigger, line_col,
};

/// Default for `refresh_before_expiry`: five minutes leaves room for a few
/// retries of a failing refresh while the old token still works.
const DEFAULT_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Default for `[daemon] shutdown_grace`: systemd's own stop timeout is 90 s,
/// so 10 s leaves ample margin while letting a playlist write finish.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default http job `max_size`: far above any JSON answer a job would
/// save, far below what would strain a small machine's memory or disk.
pub const DEFAULT_HTTP_MAX_SIZE: u64 = 16 * 1024 * 1024;
/// Default job `timeout`: long enough for a playlist of thousands of items
/// at Spotify's pace, short enough that a hung job is noticed within a day.
const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The shortest `every`: anything faster is a busy loop against a provider.
const MIN_EVERY: Duration = Duration::from_secs(1);

const DURATION_HINT: &str = "write a duration such as \"30s\", \"5m\" or \"1h 30m\"";

struct Ctx<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    /// Parsed cron patterns, shared by every job that uses the same one.
    crons: std::collections::HashMap<String, Arc<croner::Cron>>,
}

impl Ctx<'_> {
    fn problem(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(Problem {
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<Duration> {
        match parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(msg) => {
                self.problem(value.span(), key, msg);
                None
            }
        }
    }

    fn one_of<T: Copy>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == value.get_ref()) {
            return Some(*v);
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.problem(
            value.span(),
            key,
            format!(
                "\"{}\" is not valid; use one of {}",
                value.get_ref(),
                names.join(", ")
            ),
        );
        None
    }

    fn url(&mut self, value: &Spanned<String>, key: &str) -> Option<String> {
        match reqwest::Url::parse(value.get_ref()) {
            // Exactly as written: some token endpoints end in `/`.
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Some(value.get_ref().clone())
            }
            _ => {
                self.problem(
                    value.span(),
                    key,
                    format!(
                        "\"{}\" is not an http(s) URL; write e.g. \"https://accounts.example.com/oauth/token\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn absolute_path(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let path = PathBuf::from(value.get_ref());
        if path.is_absolute() {
            return Some(path);
        }
        self.problem(
            value.span(),
            key,
            format!(
                "\"{}\" is not an absolute path; write e.g. \"/run/user/1000/freshd.sock\"",
                value.get_ref()
            ),
        );
        None
    }

    fn relative_or_absolute(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        if value.get_ref().trim().is_empty() {
            self.problem(value.span(), key, "the path is empty; write a file name such as \"out.json\" (relative paths live in the state directory)");
            return None;
        }
        Some(PathBuf::from(value.get_ref()))
    }

    fn argv(&mut self, value: &Spanned<Vec<String>>, key: &str) -> Option<Vec<String>> {
        if value.get_ref().first().is_none_or(|p| p.is_empty()) {
            self.problem(
                value.span(),
                key,
                "the command is empty; write the program and its arguments as a list, e.g. [\"/usr/local/bin/radio-to-playlist\", \"--station\", \"fip\"]",
            );
            return None;
        }
        Some(value.get_ref().clone())
    }
}

/// Parses the durations the config accepts: jiff's friendly format
/// (`"30s"`, `"5m"`, `"1h 30m"`, `"2 days"`) or ISO 8601 (`"PT30S"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let not_a_duration = || format!("\"{text}\" is not a duration; {DURATION_HINT}");
    let span: jiff::Span = text.trim().parse().map_err(|_| not_a_duration())?;
    let parsed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            format!("\"{text}\" has months or years, whose length varies; {DURATION_HINT}")
        })?;
    if parsed.is_negative() || parsed.is_zero() {
        return Err(format!(
            "\"{text}\" is not a positive duration; {DURATION_HINT}"
        ));
    }
    Duration::try_from(parsed).map_err(|_| not_a_duration())
}

/// Parses a size: a whole number of bytes with a unit, `"512KiB"`,
/// `"16MiB"`, `"1GiB"` (also `B`, `KB`, `MB`, `GB` in powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "\"{text}\" is not a size; write a number and a unit, e.g. \"16MiB\" (units B, KiB, MiB, GiB, KB, MB, GB)"
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("\"{text}\" is not a positive size")),
        Some(n) => Ok(n),
        None => Err(bad()),
    }
}

/// Names of accounts and jobs go into key names, file names and journal
/// fields, so they are kept to a safe alphabet.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 64
}

const NAME_RULE: &str = "names start with a letter or digit, then letters, digits, '-', '_' or '.', at most 64 characters";

pub(super) fn validate(text: &str, path: &Path, private: bool) -> Result<Config, Vec<Problem>> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| vec![super::messages::toml_problem(text, &e)])?;
    let mut cx = Ctx {
        text,
        problems: Vec::new(),
        crons: std::collections::HashMap::new(),
    };
    let daemon = daemon(&mut cx, &raw.daemon);
    let mut accounts = BTreeMap::new();
    for (name, acc) in &raw.accounts {
        if let Some(a) = account(&mut cx, name, acc, private) {
            accounts.insert(a.name.clone(), Arc::new(a));
        }
    }
    let mut jobs = BTreeMap::new();
    for (name, job) in &raw.jobs {
        let zone = daemon
            .as_ref()
            .map(|d| (&d.timezone, d.timezone_name.as_str()));
        if let Some(j) = self::job(&mut cx, name, job, &raw.accounts, zone) {
            jobs.insert(j.name.clone(), Arc::new(j));
        }
    }
    match daemon {
        Some(daemon) if cx.problems.is_empty() => Ok(Config {
            path: path.to_owned(),
            daemon,
            accounts,
            jobs,
        }),
        _ => Err(cx.problems),
    }
}

fn daemon(cx: &mut Ctx<'_>, raw: &RawDaemon) -> Option<Daemon> {
    let (timezone, timezone_name) = match &raw.timezone {
        Some(tz) => match timezone(cx, tz, "daemon.timezone") {
            Some(z) => z,
            None => (TimeZone::UTC, String::new()),
        },
        None => {
            let tz = system_zone();
            let name = tz.iana_name().unwrap_or("system local time").to_owned();
            (tz, name)
        }
    };
    let secrets = raw
        .secrets
        .as_ref()
        .map_or(Some(SecretsMode::Keyring), |s| {
            cx.one_of(
                s,
                "daemon.secrets",
                &[
                    ("keyring", SecretsMode::Keyring),
                    ("credentials", SecretsMode::Credentials),
                ],
            )
        });
    let socket = raw
        .socket
        .as_ref()
        .map(|s| cx.absolute_path(s, "daemon.socket"));
    let state_dir = raw
        .state_dir
        .as_ref()
        .map(|s| cx.absolute_path(s, "daemon.state_dir"));
    let grace = raw
        .shutdown_grace
        .as_ref()
        .map_or(Some(DEFAULT_SHUTDOWN_GRACE), |g| {
            cx.duration(g, "daemon.shutdown_grace")
        });
    let notify = match &raw.notify {
        Some(n) => cx.argv(n, "daemon.notify").map(Some),
        None => Some(None),
    };
    Some(Daemon {
        notify: notify?,
        timezone,
        timezone_name,
        secrets: secrets?,
        socket: socket
            .unwrap_or(Some(PathBuf::new()))
            .filter(|p| !p.as_os_str().is_empty()),
        state_dir: state_dir
            .unwrap_or(Some(PathBuf::new()))
            .filter(|p| !p.as_os_str().is_empty()),
        shutdown_grace: grace?,
    })
}

/// A time zone by name without building jiff's database of all zones,
/// which walks the whole of /usr/share/zoneinfo (about 110 KiB of heap and
/// 5 ms) to look one up (issue 15): UTC is built in, and a zone's TZif file
/// is read by its name. Anything else (a name in another case, zone files
/// elsewhere) is left to the database.
fn zone(name: &str) -> Result<TimeZone, jiff::Error> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::UTC);
    }
    let plain = !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        let dir = std::env::var_os("TZDIR")
            .map_or_else(|| PathBuf::from("/usr/share/zoneinfo"), PathBuf::from);
        if let Some(tz) = std::fs::read(dir.join(name))
            .ok()
            .and_then(|data| TimeZone::tzif(name, &data).ok())
        {
            return Ok(tz);
        }
    }
    TimeZone::get(name)
}

/// The system's zone: like `TimeZone::system()`, but when /etc/localtime
/// links to a zone file, that one zone is looked up by [`zone`] (jiff's
/// own lookup of the link's name builds the whole database).
fn system_zone() -> TimeZone {
    if std::env::var_os("TZ").is_none()
        && let Ok(target) = std::fs::read_link("/etc/localtime")
        && let Some((_, name)) = target.to_str().and_then(|t| t.rsplit_once("zoneinfo/"))
        && let Ok(tz) = zone(name)
    {
        return tz;
    }
    TimeZone::system()
}

fn timezone(cx: &mut Ctx<'_>, value: &Spanned<String>, key: &str) -> Option<(TimeZone, String)> {
    match zone(value.get_ref()) {
        Ok(tz) => Some((tz, value.get_ref().clone())),
        Err(_) => {
            cx.problem(
                value.span(),
                key,
                format!(
                    "\"{}\" is not a known time zone; use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

fn account(
    cx: &mut Ctx<'_>,
    name: &Spanned<String>,
    raw: &Spanned<RawAccount>,
    private: bool,
) -> Option<Account> {
    let n = name.get_ref();
    let key = |k: &str| format!("accounts.{n}.{k}");
    let ok_name = valid_name(n);
    if !ok_name {
        cx.problem(
            name.span(),
            &format!("accounts.{n}"),
            format!("\"{n}\" is not a valid account name; {NAME_RULE}"),
        );
    }
    let r = raw.get_ref();
    let provider = match &r.provider {
        None => None,
        Some(p) => match Provider::from_name(p.get_ref()) {
            Some(p) => Some(p),
            None => {
                cx.problem(
                    p.span(),
                    &key("provider"),
                    format!(
                        "\"{}\" is not a known provider; use \"spotify\" or \"todoist\", or leave `provider` out and give `token_url` (and `authorize_url`, `api_base_url`)",
                        p.get_ref()
                    ),
                );
                return None;
            }
        },
    };
    let client_id = match &r.client_id {
        Some(id) if !id.get_ref().trim().is_empty() => Some(id.get_ref().trim().to_owned()),
        Some(id) => {
            cx.problem(
                id.span(),
                &key("client_id"),
                "the client id is empty; copy it from the app you registered at the provider",
            );
            None
        }
        None => {
            cx.problem(
                raw.span(),
                &key("client_id"),
                "missing key `client_id`; copy it from the app you registered at the provider",
            );
            None
        }
    };
    if let Some(secret) = &r.client_secret
        && !private
    {
        cx.problem(
            secret.span(),
            &key("client_secret"),
            format!(
                "a literal client secret needs a config file readable by its owner only: run `chmod 600` on it, or remove the key and store the secret with `secret-tool store --label='freshd {n} client secret' service freshd username {n}/client_secret`"
            ),
        );
    }
    let grant = r
        .grant
        .as_ref()
        .map_or(Some(Grant::AuthorizationCode), |g| {
            cx.one_of(
                g,
                &key("grant"),
                &[
                    ("authorization_code", Grant::AuthorizationCode),
                    ("client_credentials", Grant::ClientCredentials),
                ],
            )
        });
    let refresh_before_expiry = r
        .refresh_before_expiry
        .as_ref()
        .map_or(Some(DEFAULT_REFRESH_BEFORE_EXPIRY), |d| {
            cx.duration(d, &key("refresh_before_expiry"))
        });
    let refresh_token_lifetime = match &r.refresh_token_lifetime {
        Some(d) => cx.duration(d, &key("refresh_token_lifetime")).map(Some),
        None => Some(provider.and_then(Provider::refresh_token_lifetime)),
    };
    let mut url = |field: &Option<Spanned<String>>, k: &str, preset: Option<&str>| match field {
        Some(u) => cx.url(u, &key(k)).map(Some),
        None => Some(preset.map(str::to_owned)),
    };
    let authorize_url = url(
        &r.authorize_url,
        "authorize_url",
        provider.map(Provider::authorize_url),
    );
    let token_url = url(&r.token_url, "token_url", provider.map(Provider::token_url));
    let revocation_url = url(&r.revocation_url, "revocation_url", None);
    // A base that paths starting with `/` are joined to: no `//`.
    let api_base_url = url(
        &r.api_base_url,
        "api_base_url",
        provider.map(Provider::api_base_url),
    )
    .map(|u| u.map(|u| u.trim_end_matches('/').to_owned()));
    let issuer = match &r.issuer {
        Some(i) => issuer(cx, i, &key("issuer")).map(Some),
        None => Some(None),
    };
    if matches!(token_url, Some(None)) && r.issuer.is_none() {
        cx.problem(raw.span(), &key("token_url"), "missing key `token_url`; give `provider = \"spotify\"` or \"todoist\" for their URLs, `issuer` to discover them, or the provider's token endpoint URL");
    }
    let token_endpoint_auth_method = match &r.token_endpoint_auth_method {
        Some(m) => cx
            .one_of(m, &key("token_endpoint_auth_method"), AuthMethod::CHOICES)
            .map(Some),
        None => Some(None),
    };
    let authorize_params = params(
        cx,
        r.authorize_params.as_ref(),
        &key("authorize_params"),
        RESERVED_AUTHORIZE_PARAMS,
    );
    let token_params = params(
        cx,
        r.token_params.as_ref(),
        &key("token_params"),
        RESERVED_TOKEN_PARAMS,
    );
    let redirect_uri = match &r.redirect_uri {
        Some(u) => redirect(cx, u, &key("redirect_uri"), provider).map(Some),
        None => Some(None),
    };
    let notify = match &r.notify {
        Some(c) => cx.argv(c, &key("notify")).map(Some),
        None => Some(None),
    };
    if !ok_name {
        return None;
    }
    Some(Account {
        notify: notify?,
        name: n.clone(),
        provider,
        client_id: client_id?,
        client_secret: r
            .client_secret
            .as_ref()
            .map(|s| SecretString::from(s.get_ref().clone())),
        scopes: r.scopes.clone(),
        redirect_uri: redirect_uri?,
        grant: grant?,
        refresh_before_expiry: refresh_before_expiry?,
        authorize_url: authorize_url?,
        token_url: token_url?,
        revocation_url: revocation_url?,
        issuer: issuer?,
        api_base_url: api_base_url?,
        refresh_token_lifetime: refresh_token_lifetime?,
        token_endpoint_auth_method: token_endpoint_auth_method?,
        authorize_params: authorize_params?,
        token_params: token_params?,
    })
}

/// Parameters that freshd sets itself in an authorization request.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Form fields that freshd sets itself in a token request.
const RESERVED_TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "client_id",
    "client_secret",
    "scope",
];

/// An `authorize_params` or `token_params` table, without the keys that
/// freshd owns (a second `client_id` or `grant_type` would make a request
/// whose meaning depends on the server).
fn params(
    cx: &mut Ctx<'_>,
    value: Option<&Spanned<BTreeMap<String, String>>>,
    key: &str,
    reserved: &[&str],
) -> Option<BTreeMap<String, String>> {
    let Some(value) = value else {
        return Some(BTreeMap::new());
    };
    let mut ok = true;
    for name in value.get_ref().keys() {
        if reserved.contains(&name.as_str()) {
            let instead = if name == "scope" {
                "list the scopes in `scopes`"
            } else {
                "freshd sets it itself"
            };
            cx.problem(
                value.span(),
                key,
                format!("`{name}` cannot be set here: {instead}"),
            );
            ok = false;
        } else if name.is_empty() {
            cx.problem(value.span(), key, "a parameter name is empty");
            ok = false;
        }
    }
    ok.then(|| value.get_ref().clone())
}

/// An issuer identifier: an https URL (http is allowed for loopback and
/// tests) with no query or fragment (RFC 8414 §2), kept exactly as written
/// because the server's metadata and `iss` must match it exactly.
fn issuer(cx: &mut Ctx<'_>, value: &Spanned<String>, key: &str) -> Option<String> {
    let url = cx.url(value, key)?;
    let parsed = reqwest::Url::parse(&url).ok()?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        cx.problem(
            value.span(),
            key,
            format!(
                "\"{url}\" has a query or fragment; an issuer is a plain URL such as \"https://login.example.com\" (RFC 8414 §2)"
            ),
        );
        return None;
    }
    Some(url)
}

fn redirect(
    cx: &mut Ctx<'_>,
    value: &Spanned<String>,
    key: &str,
    provider: Option<Provider>,
) -> Option<String> {
    let url = cx.url(value, key)?;
    let parsed = reqwest::Url::parse(&url).ok()?;
    if provider == Some(Provider::Spotify) && parsed.host_str() == Some("localhost") {
        cx.problem(
            value.span(),
            key,
            "Spotify refuses `localhost` in redirect URIs; use the loopback address, e.g. \"http://127.0.0.1:8888/callback\" (and register that exact URI with the app)",
        );
        return None;
    }
    Some(value.get_ref().clone())
}

const COMMON_JOB_KEYS: &[&str] = &[
    "account", "type", "schedule", "every", "timezone", "timeout",
];

/// Keys each job type takes besides [`COMMON_JOB_KEYS`].
fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "now_playing" => &["history", "on_change"],
        "playlist" => &["playlist", "source", "mode", "max_items", "position"],
        "http" => &[
            "method", "path", "url", "query", "body", "output", "max_size",
        ],
        "command" => &["command"],
        _ => &[],
    }
}

const JOB_TYPES: &[&str] = &["now_playing", "playlist", "http", "command"];

/// The type-specific keys a raw job has, with the span of each value.
fn present_type_keys(r: &RawJob) -> Vec<(&'static str, Range<usize>)> {
    let mut keys = Vec::new();
    let mut add = |k: &'static str, span: Option<Range<usize>>| {
        if let Some(s) = span {
            keys.push((k, s));
        }
    };
    add("history", r.history.as_ref().map(Spanned::span));
    add("on_change", r.on_change.as_ref().map(Spanned::span));
    add("playlist", r.playlist.as_ref().map(Spanned::span));
    add("source", r.source.as_ref().map(Spanned::span));
    add("mode", r.mode.as_ref().map(Spanned::span));
    add("max_items", r.max_items.as_ref().map(Spanned::span));
    add("position", r.position.as_ref().map(Spanned::span));
    add("method", r.method.as_ref().map(Spanned::span));
    add("path", r.path.as_ref().map(Spanned::span));
    add("url", r.url.as_ref().map(Spanned::span));
    add("query", r.query.as_ref().map(Spanned::span));
    add("body", r.body.as_ref().map(Spanned::span));
    add("output", r.output.as_ref().map(Spanned::span));
    add("max_size", r.max_size.as_ref().map(Spanned::span));
    add("command", r.command.as_ref().map(Spanned::span));
    keys
}

fn job(
    cx: &mut Ctx<'_>,
    name: &Spanned<String>,
    raw: &Spanned<RawJob>,
    accounts: &BTreeMap<Spanned<String>, Spanned<RawAccount>>,
    zone: Option<(&TimeZone, &str)>,
) -> Option<super::Job> {
    let n = name.get_ref();
    let key = |k: &str| format!("jobs.{n}.{k}");
    let ok_name = valid_name(n);
    if !ok_name {
        cx.problem(
            name.span(),
            &format!("jobs.{n}"),
            format!("\"{n}\" is not a valid job name; {NAME_RULE}"),
        );
    }
    let r = raw.get_ref();
    let Some(kind) = &r.kind else {
        cx.problem(
            raw.span(),
            &key("type"),
            "missing key `type`; use one of \"now_playing\", \"playlist\", \"http\", \"command\"",
        );
        return None;
    };
    let type_name = kind.get_ref().as_str();
    if !JOB_TYPES.contains(&type_name) {
        cx.problem(kind.span(), &key("type"), format!("\"{type_name}\" is not a job type; use one of \"now_playing\", \"playlist\", \"http\", \"command\""));
        return None;
    }
    let allowed = type_keys(type_name);
    for (k, span) in present_type_keys(r) {
        if !allowed.contains(&k) {
            let mut valid: Vec<&str> = COMMON_JOB_KEYS.to_vec();
            valid.extend_from_slice(allowed);
            cx.problem(
                span,
                &key(k),
                format!(
                    "`{k}` is not a key of a `{type_name}` job; its keys are {}",
                    valid.join(", ")
                ),
            );
        }
    }
    let account = match &r.account {
        None => {
            cx.problem(
                raw.span(),
                &key("account"),
                "missing key `account`; name one of the [accounts.*] in this file",
            );
            None
        }
        Some(a) if accounts.keys().any(|k| k.get_ref() == a.get_ref()) => Some(a.get_ref().clone()),
        Some(a) => {
            let known: Vec<&str> = accounts.keys().map(|k| k.get_ref().as_str()).collect();
            let hint = if known.is_empty() {
                format!("add an [accounts.{}] table", a.get_ref())
            } else {
                format!("accounts in this file: {}", known.join(", "))
            };
            cx.problem(
                a.span(),
                &key("account"),
                format!("no account named \"{}\"; {hint}", a.get_ref()),
            );
            None
        }
    };
    let trigger = trigger(cx, n, raw, zone);
    let timeout = r.timeout.as_ref().map_or(Some(DEFAULT_JOB_TIMEOUT), |t| {
        cx.duration(t, &key("timeout"))
    });
    let kind = match type_name {
        "now_playing" => Some(JobKind::NowPlaying(NowPlayingJob {
            history: r
                .history
                .as_ref()
                .and_then(|h| cx.relative_or_absolute(h, &key("history"))),
            on_change: r
                .on_change
                .as_ref()
                .and_then(|c| cx.argv(c, &key("on_change"))),
        })),
        "playlist" => playlist_job(cx, n, raw).map(JobKind::Playlist),
        "http" => http_job(cx, n, raw).map(JobKind::Http),
        _ => command_job(cx, n, raw).map(JobKind::Command),
    };
    if let (JobKind::NowPlaying(_), Some(Trigger::Cron { .. })) = (kind.as_ref()?, &trigger) {
        cx.problem(raw.span(), &key("schedule"), "a `now_playing` job polls: give `every` (the longest gap between polls, e.g. \"30s\") instead of `schedule`");
        return None;
    }
    if !ok_name {
        return None;
    }
    Some(super::Job {
        name: n.clone(),
        account: account?,
        trigger: trigger?,
        timeout: timeout?,
        kind: kind?,
    })
}

fn trigger(
    cx: &mut Ctx<'_>,
    n: &str,
    raw: &Spanned<RawJob>,
    zone: Option<(&TimeZone, &str)>,
) -> Option<Trigger> {
    let r = raw.get_ref();
    let key = |k: &str| format!("jobs.{n}.{k}");
    match (&r.schedule, &r.every) {
        (Some(_), Some(every)) => {
            cx.problem(
                every.span(),
                &key("every"),
                "give either `schedule` (cron) or `every` (an interval), not both",
            );
            None
        }
        (None, None) => {
            cx.problem(raw.span(), &key("schedule"), "missing key `schedule` or `every`; write e.g. schedule = \"0 6 * * MON\" (cron) or every = \"30s\"");
            None
        }
        (None, Some(every)) => {
            if let Some(tz) = &r.timezone {
                cx.problem(
                    tz.span(),
                    &key("timezone"),
                    "`timezone` applies to `schedule` only; an `every` interval needs no zone",
                );
            }
            let d = cx.duration(every, &key("every"))?;
            if d < MIN_EVERY {
                cx.problem(
                    every.span(),
                    &key("every"),
                    "the interval is shorter than 1s; write at least \"1s\"",
                );
                return None;
            }
            Some(Trigger::Every(d))
        }
        (Some(schedule), None) => {
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .year(croner::parser::Year::Disallowed)
                .dom_and_dow(false)
                .build();
            let cached = cx.crons.get(schedule.get_ref()).cloned();
            let parsed = match cached {
                Some(c) => Ok(c),
                None => parser.parse(schedule.get_ref()).map(Arc::new),
            };
            let cron = match parsed {
                Ok(c) => {
                    cx.crons.insert(schedule.get_ref().clone(), Arc::clone(&c));
                    c
                }
                Err(e) => {
                    let why = super::messages::cron_problem(schedule.get_ref())
                        .unwrap_or_else(|| e.to_string());
                    cx.problem(
                        schedule.span(),
                        &key("schedule"),
                        format!(
                            "\"{}\" is not a cron pattern: {why}; write 5 fields (minute hour day-of-month month day-of-week, e.g. \"0 6 * * MON\") or 6 with seconds first",
                            schedule.get_ref()
                        ),
                    );
                    return None;
                }
            };
            let (timezone, timezone_name) = match &r.timezone {
                Some(tz) => timezone(cx, tz, &key("timezone"))?,
                None => {
                    let (tz, name) = zone?;
                    (tz.clone(), name.to_owned())
                }
            };
            Some(Trigger::Cron {
                cron,
                pattern: schedule.get_ref().clone(),
                timezone,
                timezone_name,
            })
        }
    }
}

fn playlist_ref(value: &str) -> PlaylistRef {
    match value.strip_prefix("spotify:playlist:") {
        Some(id) => PlaylistRef::Id(id.to_owned()),
        None => PlaylistRef::Name(value.to_owned()),
    }
}

fn playlist_job(cx: &mut Ctx<'_>, n: &str, raw: &Spanned<RawJob>) -> Option<PlaylistJob> {
    let r = raw.get_ref();
    let key = |k: &str| format!("jobs.{n}.{k}");
    let playlist = match &r.playlist {
        Some(p) if !p.get_ref().trim().is_empty() => Some(playlist_ref(p.get_ref().trim())),
        Some(p) => {
            cx.problem(p.span(), &key("playlist"), "the playlist is empty; give a name (created private if missing) or \"spotify:playlist:ID\"");
            None
        }
        None => {
            cx.problem(raw.span(), &key("playlist"), "missing key `playlist`; give a name (created private if missing) or \"spotify:playlist:ID\"");
            None
        }
    };
    let source = match &r.source {
        Some(s) => source(cx, n, s),
        None => {
            cx.problem(raw.span(), &key("source"), "missing key `source`; e.g. source = { kind = \"top_tracks\", time_range = \"short_term\", limit = 50 }");
            None
        }
    };
    let mode = r.mode.as_ref().map_or(Some("replace"), |m| {
        cx.one_of(
            m,
            &key("mode"),
            &[("replace", "replace"), ("append", "append")],
        )
    });
    let mode = match mode? {
        "replace" => {
            for (k, span) in [
                ("max_items", r.max_items.as_ref().map(Spanned::span)),
                ("position", r.position.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    cx.problem(
                        span,
                        &key(k),
                        format!("`{k}` applies to mode = \"append\" only"),
                    );
                }
            }
            PlaylistMode::Replace
        }
        _ => {
            let position = r.position.as_ref().map_or(Some(Position::Bottom), |p| {
                cx.one_of(
                    p,
                    &key("position"),
                    &[("top", Position::Top), ("bottom", Position::Bottom)],
                )
            });
            let max_items = match &r.max_items {
                Some(m) if (1..=10_000).contains(m.get_ref()) => {
                    Some(Some(u32::try_from(*m.get_ref()).unwrap_or(10_000)))
                }
                Some(m) => {
                    cx.problem(
                        m.span(),
                        &key("max_items"),
                        format!(
                            "{} is out of range; Spotify playlists hold 1 to 10000 items",
                            m.get_ref()
                        ),
                    );
                    None
                }
                None => Some(None),
            };
            PlaylistMode::Append {
                position: position?,
                max_items: max_items?,
            }
        }
    };
    Some(PlaylistJob {
        playlist: playlist?,
        source: source?,
        mode,
    })
}

const SOURCE_KINDS: &str =
    "\"top_tracks\", \"recently_played\", \"playlist\", \"search\", \"uris\"";

fn source(cx: &mut Ctx<'_>, n: &str, raw: &Spanned<RawSource>) -> Option<Source> {
    let r = raw.get_ref();
    let key = |k: &str| format!("jobs.{n}.source.{k}");
    let Some(kind) = &r.kind else {
        cx.problem(
            raw.span(),
            &key("kind"),
            format!("missing key `kind`; use one of {SOURCE_KINDS}"),
        );
        return None;
    };
    let allowed: &[&str] = match kind.get_ref().as_str() {
        "top_tracks" => &["time_range", "limit"],
        "recently_played" => &["limit"],
        "playlist" => &["playlist"],
        "search" => &["queries", "file", "command"],
        "uris" => &["uris", "file", "command"],
        other => {
            cx.problem(
                kind.span(),
                &key("kind"),
                format!("\"{other}\" is not a source kind; use one of {SOURCE_KINDS}"),
            );
            return None;
        }
    };
    let present = [
        ("time_range", r.time_range.as_ref().map(Spanned::span)),
        ("limit", r.limit.as_ref().map(Spanned::span)),
        ("playlist", r.playlist.as_ref().map(Spanned::span)),
        ("queries", r.queries.as_ref().map(Spanned::span)),
        ("uris", r.uris.as_ref().map(Spanned::span)),
        ("file", r.file.as_ref().map(Spanned::span)),
        ("command", r.command.as_ref().map(Spanned::span)),
    ];
    let mut bad = false;
    for (k, span) in present {
        if let Some(span) = span
            && !allowed.contains(&k)
        {
            bad = true;
            cx.problem(
                span,
                &key(k),
                format!(
                    "`{k}` is not a key of a `{}` source; its keys are kind, {}",
                    kind.get_ref(),
                    allowed.join(", ")
                ),
            );
        }
    }
    let limit = match &r.limit {
        Some(l) if (1..=50).contains(l.get_ref()) => {
            Some(u32::try_from(*l.get_ref()).unwrap_or(50))
        }
        Some(l) => {
            cx.problem(
                l.span(),
                &key("limit"),
                format!(
                    "{} is out of range; Spotify gives 1 to 50 items here",
                    l.get_ref()
                ),
            );
            None
        }
        None => Some(50),
    };
    let source = match kind.get_ref().as_str() {
        "top_tracks" => Source::TopTracks {
            time_range: r
                .time_range
                .as_ref()
                .map_or(Some(TimeRange::MediumTerm), |t| {
                    cx.one_of(
                        t,
                        &key("time_range"),
                        &[
                            ("short_term", TimeRange::ShortTerm),
                            ("medium_term", TimeRange::MediumTerm),
                            ("long_term", TimeRange::LongTerm),
                        ],
                    )
                })?,
            limit: limit?,
        },
        "recently_played" => Source::RecentlyPlayed { limit: limit? },
        "playlist" => match &r.playlist {
            Some(p) if !p.get_ref().trim().is_empty() => Source::Playlist {
                playlist: playlist_ref(p.get_ref().trim()),
            },
            _ => {
                cx.problem(
                    raw.span(),
                    &key("playlist"),
                    "a `playlist` source needs `playlist`: a name or \"spotify:playlist:ID\"",
                );
                return None;
            }
        },
        "search" => Source::Search {
            lines: lines(cx, n, raw, "queries")?,
        },
        _ => {
            let lines = lines(cx, n, raw, "uris")?;
            if let (Lines::List(uris), Some(span)) = (&lines, r.uris.as_ref().map(Spanned::span))
                && let Some(bad) = uris.iter().find(|u| !valid_item_uri(u))
            {
                cx.problem(
                    span,
                    &key("uris"),
                    format!("\"{bad}\" is not a track or episode URI; write e.g. \"spotify:track:4uLU6hMCjMI75M1A2tKUQC\""),
                );
                return None;
            }
            Source::Uris { lines }
        }
    };
    (!bad).then_some(source)
}

/// `spotify:track:ID` or `spotify:episode:ID`: what a playlist holds.
pub fn valid_item_uri(uri: &str) -> bool {
    let id = uri
        .strip_prefix("spotify:track:")
        .or_else(|| uri.strip_prefix("spotify:episode:"));
    id.is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Exactly one of `list_key`, `file`, `command` in a source.
fn lines(cx: &mut Ctx<'_>, n: &str, raw: &Spanned<RawSource>, list_key: &str) -> Option<Lines> {
    let r = raw.get_ref();
    let key = |k: &str| format!("jobs.{n}.source.{k}");
    let list = if list_key == "queries" {
        &r.queries
    } else {
        &r.uris
    };
    let given = usize::from(list.is_some())
        + usize::from(r.file.is_some())
        + usize::from(r.command.is_some());
    if given != 1 {
        cx.problem(raw.span(), &key(list_key), format!("give exactly one of `{list_key}` (a list), `file` (a path, one item a line) or `command` (a program that prints one item a line)"));
        return None;
    }
    if let Some(list) = list {
        return Some(Lines::List(list.get_ref().clone()));
    }
    if let Some(file) = &r.file {
        return cx.relative_or_absolute(file, &key("file")).map(Lines::File);
    }
    r.command
        .as_ref()
        .and_then(|c| cx.argv(c, &key("command")))
        .map(Lines::Command)
}

fn http_job(cx: &mut Ctx<'_>, n: &str, raw: &Spanned<RawJob>) -> Option<HttpJob> {
    let r = raw.get_ref();
    let key = |k: &str| format!("jobs.{n}.{k}");
    let method = r.method.as_ref().map_or(Some(HttpMethod::Get), |m| {
        cx.one_of(
            m,
            &key("method"),
            &[
                ("GET", HttpMethod::Get),
                ("POST", HttpMethod::Post),
                ("PUT", HttpMethod::Put),
                ("PATCH", HttpMethod::Patch),
                ("DELETE", HttpMethod::Delete),
            ],
        )
    });
    let target = match (&r.path, &r.url) {
        (Some(p), None) if p.get_ref().starts_with('/') => {
            Some(HttpTarget::Path(p.get_ref().clone()))
        }
        (Some(p), None) => {
            cx.problem(p.span(), &key("path"), format!("\"{}\" does not start with '/'; write a path relative to the account's api_base_url, e.g. \"/me\"", p.get_ref()));
            None
        }
        (None, Some(u)) => cx
            .url(u, &key("url"))
            .map(|_| HttpTarget::Url(u.get_ref().clone())),
        (Some(_), Some(u)) => {
            cx.problem(
                u.span(),
                &key("url"),
                "give either `path` (relative to the account's api_base_url) or `url`, not both",
            );
            None
        }
        (None, None) => {
            cx.problem(
                raw.span(),
                &key("path"),
                "missing key `path` or `url`; e.g. path = \"/me\"",
            );
            None
        }
    };
    let body = match &r.body {
        Some(b) => {
            match serde_json::to_value(b.get_ref()) {
                Ok(v) => Some(Some(v)),
                Err(e) => {
                    cx.problem(b.span(), &key("body"), format!("cannot be sent as JSON ({e}); write a TOML table, array, string or number"));
                    None
                }
            }
        }
        None => Some(None),
    };
    let output = match &r.output {
        Some(o) => cx.relative_or_absolute(o, &key("output")).map(Some),
        None => Some(None),
    };
    let max_size = match &r.max_size {
        Some(m) => match parse_size(m.get_ref()) {
            Ok(n) => Some(n),
            Err(msg) => {
                cx.problem(m.span(), &key("max_size"), msg);
                None
            }
        },
        None => Some(DEFAULT_HTTP_MAX_SIZE),
    };
    Some(HttpJob {
        method: method?,
        target: target?,
        query: r
            .query
            .as_ref()
            .map(|q| q.get_ref().clone())
            .unwrap_or_default(),
        body: body?,
        output: output?,
        max_size: max_size?,
    })
}

fn command_job(cx: &mut Ctx<'_>, n: &str, raw: &Spanned<RawJob>) -> Option<CommandJob> {
    match &raw.get_ref().command {
        Some(c) => cx
            .argv(c, &format!("jobs.{n}.command"))
            .map(|argv| CommandJob { argv }),
        None => {
            cx.problem(raw.span(), &format!("jobs.{n}.command"), "missing key `command`; write the program and its arguments as a list, e.g. [\"/usr/local/bin/backup\", \"--quiet\"]");
            None
        }
    }
}
