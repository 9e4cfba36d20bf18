//! Where an account's endpoints are: the config's URLs (or a preset's), or
//! the authorization server's metadata found from `issuer` through RFC 8414
//! (`/.well-known/oauth-authorization-server`) or OpenID Connect Discovery
//! (`/.well-known/openid-configuration`).
//!
//! Invariants:
//! - A URL written in the config always wins over a discovered one.
//! - Metadata is used only when its `issuer` is exactly the configured one
//!   (RFC 8414 §3.3): a mix-up between servers is refused, not guessed at.
//! - Every successful fetch is cached as `STATE_DIR/ACCOUNT.metadata.json`
//!   (mode 0600), and the cache is used when the server cannot be reached,
//!   so that freshd starts while the provider is down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::endpoint::RefreshError;
use crate::config::Account;

/// How long one metadata request may take: it is a small static document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest metadata document read; real ones are a few KiB.
const MAX_METADATA_BYTES: usize = 256 * 1024;
/// After falling back to the cache, how long before the server is asked
/// again: often enough to notice it is back, rarely enough to stay quiet
/// during an outage.
const RETRY_AFTER_CACHE: Duration = Duration::from_secs(5 * 60);
/// How long fetched metadata is trusted before it is fetched again:
/// endpoints move rarely, and a daemon may run for months.
const REFETCH_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The parts of RFC 8414 / OIDC Discovery metadata that freshd uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// RFC 9207: the server puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// Where a URL came from, for `freshd check` and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Written in the config file (or given by a preset).
    Config,
    /// Fetched from the server just now.
    Fetched { url: String },
    /// Read from the state directory's copy of an earlier fetch.
    Cache {
        path: PathBuf,
        url: String,
        fetched_at: Timestamp,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Config => f.write_str("from the config"),
            Origin::Fetched { url } => write!(f, "discovered at {url}"),
            Origin::Cache {
                path,
                url,
                fetched_at,
            } => write!(
                f,
                "from {} (discovered at {url} on {fetched_at:.0}; the server did not answer now)",
                path.display()
            ),
        }
    }
}

/// An account's endpoints, each with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize_url: Option<(String, Origin)>,
    pub token_url: Option<(String, Origin)>,
    pub revocation_url: Option<(String, Origin)>,
    /// The issuer whose `iss` an authorization response must carry.
    pub issuer: Option<String>,
    /// The metadata says every authorization response carries `iss`.
    pub iss_required: bool,
    /// The metadata used, when `issuer` is set and it could be had.
    pub metadata: Option<(Arc<Metadata>, Origin)>,
}

/// Why an issuer's metadata could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The server could not be asked and no copy is cached: may pass.
    #[error(
        "cannot discover the endpoints of issuer {issuer}: {reason}; and no earlier copy is cached (set token_url and authorize_url to do without discovery)"
    )]
    Unreachable { issuer: String, reason: String },
    /// The server answered, but not with usable metadata for this issuer.
    #[error("the metadata at {url} is not usable: {reason}")]
    Invalid { url: String, reason: String },
}

impl From<DiscoveryError> for RefreshError {
    fn from(e: DiscoveryError) -> Self {
        match e {
            DiscoveryError::Unreachable { .. } => RefreshError::Transient {
                reason: e.to_string(),
                retry_after: None,
            },
            DiscoveryError::Invalid { .. } => RefreshError::Rejected {
                reason: e.to_string(),
            },
        }
    }
}

/// The copy kept in the state directory.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    fetched_from: String,
    fetched_at: Timestamp,
    metadata: Metadata,
}

/// What has been learned so far, and when.
#[derive(Debug)]
struct Known {
    metadata: Arc<Metadata>,
    origin: Origin,
    at: Instant,
}

/// Finds an account's endpoints, fetching the issuer's metadata at most
/// now and then.
#[derive(Debug)]
pub struct Discovery {
    account: String,
    authorize_url: Option<String>,
    token_url: Option<String>,
    revocation_url: Option<String>,
    issuer: Option<String>,
    state_dir: Option<PathBuf>,
    /// Whether a fetch refreshes the cached copy (`check` only reads it).
    save: bool,
    known: Mutex<Option<Known>>,
}

impl Discovery {
    pub fn new(account: &Account, state_dir: Option<PathBuf>) -> Self {
        Self {
            account: account.name.clone(),
            authorize_url: account.authorize_url.clone(),
            token_url: account.token_url.clone(),
            revocation_url: account.revocation_url.clone(),
            issuer: account.issuer.clone(),
            state_dir,
            save: true,
            known: Mutex::new(None),
        }
    }

    /// The same, but never writing the cache: for `freshd check`, which
    /// may run as another user than the daemon.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.save = false;
        self
    }

    /// A token endpoint at a fixed URL, nothing to discover.
    pub fn fixed(token_url: String) -> Self {
        Self {
            account: String::new(),
            authorize_url: None,
            token_url: Some(token_url),
            revocation_url: None,
            issuer: None,
            state_dir: None,
            save: false,
            known: Mutex::new(None),
        }
    }

    /// The endpoints: the config's, completed from the issuer's metadata
    /// when `issuer` is set.
    pub async fn endpoints(&self, http: &reqwest::Client) -> Result<Endpoints, DiscoveryError> {
        let metadata = match &self.issuer {
            Some(issuer) => Some(self.metadata(http, issuer).await?),
            None => None,
        };
        Ok(self.combine(metadata))
    }

    fn combine(&self, metadata: Option<(Arc<Metadata>, Origin)>) -> Endpoints {
        let pick = |explicit: &Option<String>, found: fn(&Metadata) -> &Option<String>| {
            if let Some(u) = explicit {
                return Some((u.clone(), Origin::Config));
            }
            let (m, origin) = metadata.as_ref()?;
            found(m).clone().map(|u| (u, origin.clone()))
        };
        Endpoints {
            authorize_url: pick(&self.authorize_url, |m| &m.authorization_endpoint),
            token_url: pick(&self.token_url, |m| &m.token_endpoint),
            revocation_url: pick(&self.revocation_url, |m| &m.revocation_endpoint),
            issuer: self.issuer.clone(),
            iss_required: metadata
                .as_ref()
                .is_some_and(|(m, _)| m.authorization_response_iss_parameter_supported),
            metadata,
        }
    }

    async fn metadata(
        &self,
        http: &reqwest::Client,
        issuer: &str,
    ) -> Result<(Arc<Metadata>, Origin), DiscoveryError> {
        let mut known = self.known.lock().await;
        if let Some(k) = known.as_ref() {
            let fresh_for = match k.origin {
                Origin::Cache { .. } => RETRY_AFTER_CACHE,
                _ => REFETCH_AFTER,
            };
            if k.at.elapsed() < fresh_for {
                return Ok((Arc::clone(&k.metadata), k.origin.clone()));
            }
        }
        let fetched = fetch(http, issuer).await;
        let (metadata, origin) = match fetched {
            Ok((metadata, url)) => {
                if self.save {
                    self.save(&metadata, &url);
                }
                (Arc::new(metadata), Origin::Fetched { url })
            }
            Err(e @ DiscoveryError::Invalid { .. }) => return Err(e),
            Err(DiscoveryError::Unreachable { reason, .. }) => {
                if let Some(k) = known.as_mut() {
                    // Keep what we had; ask again later.
                    k.at = Instant::now();
                    return Ok((Arc::clone(&k.metadata), k.origin.clone()));
                }
                match self.load(issuer) {
                    Some(found) => {
                        tracing::warn!(
                            ACCOUNT = %self.account,
                            "cannot reach issuer {issuer} ({reason}); using the endpoints cached in the state directory"
                        );
                        found
                    }
                    None => {
                        return Err(DiscoveryError::Unreachable {
                            issuer: issuer.to_owned(),
                            reason,
                        });
                    }
                }
            }
        };
        *known = Some(Known {
            metadata: Arc::clone(&metadata),
            origin: origin.clone(),
            at: Instant::now(),
        });
        Ok((metadata, origin))
    }

    fn cache_path(&self) -> Option<PathBuf> {
        self.state_dir
            .as_ref()
            .map(|d| cache_path(d, &self.account))
    }

    fn save(&self, metadata: &Metadata, url: &str) {
        let Some(path) = self.cache_path() else {
            return;
        };
        let cached = Cached {
            fetched_from: url.to_owned(),
            fetched_at: Timestamp::now(),
            metadata: metadata.clone(),
        };
        let written = serde_json::to_vec_pretty(&cached)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::fsutil::write_private(&path, &bytes));
        if let Err(e) = written {
            tracing::warn!(
                ACCOUNT = %self.account,
                "cannot cache the issuer's metadata in {}: {e}; starting while the provider is down will not work",
                path.display()
            );
        }
    }

    fn load(&self, issuer: &str) -> Option<(Arc<Metadata>, Origin)> {
        let path = self.cache_path()?;
        // Never waited on (a FIFO) or read whole (a huge file): metadata is
        // a few KiB.
        let (bytes, _) = crate::fsutil::read_regular(&path, 1024 * 1024).ok()?;
        let cached: Cached = serde_json::from_slice(&bytes).ok()?;
        // A copy for another issuer (the config changed) is no copy.
        if cached.metadata.issuer != issuer {
            return None;
        }
        let origin = Origin::Cache {
            path,
            url: cached.fetched_from,
            fetched_at: cached.fetched_at,
        };
        Some((Arc::new(cached.metadata), origin))
    }
}

/// Where an account's metadata is cached.
pub fn cache_path(state_dir: &Path, account: &str) -> PathBuf {
    state_dir.join(format!("{account}.metadata.json"))
}

/// The metadata URLs to try for `issuer`, in order: RFC 8414 §3.1 (the
/// well-known part goes between host and path), then OIDC Discovery §4
/// (appended to the issuer).
pub fn well_known_urls(issuer: &str) -> Vec<String> {
    let mut urls = Vec::new();
    if let Ok(u) = reqwest::Url::parse(issuer) {
        let path = u.path().trim_end_matches('/');
        let mut rfc8414 = u.clone();
        rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        urls.push(rfc8414.to_string());
    }
    urls.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    urls
}

/// What one well-known URL gave.
enum Answer {
    Found(Vec<u8>),
    /// A 4xx: no metadata here; the other well-known URL may have it.
    NotHere(String),
    /// No answer, or a 5xx: may pass.
    Down(String),
}

/// Fetches and checks the metadata; the URL it came from. Both well-known
/// URLs are tried: servers differ in which one they serve.
async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<(Metadata, String), DiscoveryError> {
    let mut not_here = Vec::new();
    let mut down = None;
    for url in well_known_urls(issuer) {
        match fetch_one(http, &url).await {
            Answer::Found(body) => return parse(&body, issuer, &url).map(|m| (m, url)),
            Answer::NotHere(why) => not_here.push(why),
            Answer::Down(why) => down = Some(why),
        }
    }
    if let Some(reason) = down {
        return Err(DiscoveryError::Unreachable {
            issuer: issuer.to_owned(),
            reason,
        });
    }
    Err(DiscoveryError::Invalid {
        url: issuer.to_owned(),
        reason: format!(
            "no metadata at either well-known URL ({}); check that `issuer` is the server's issuer identifier, or set token_url and authorize_url instead",
            not_here.join("; ")
        ),
    })
}

async fn fetch_one(http: &reqwest::Client, url: &str) -> Answer {
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await;
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => return Answer::Down(super::endpoint::describe_reqwest(&e)),
    };
    let status = resp.status().as_u16();
    if status != 200 {
        let why = format!("{url} answered {status}");
        return if status >= 500 || status == 408 || status == 429 {
            Answer::Down(why)
        } else {
            Answer::NotHere(why)
        };
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_METADATA_BYTES {
                    return Answer::NotHere(format!(
                        "{url} answered more than {MAX_METADATA_BYTES} bytes"
                    ));
                }
            }
            Ok(None) => return Answer::Found(body),
            Err(e) => return Answer::Down(super::endpoint::describe_reqwest(&e)),
        }
    }
}

/// The metadata in `body`, if it is for `issuer` and its URLs are URLs.
pub fn parse(body: &[u8], issuer: &str, url: &str) -> Result<Metadata, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::Invalid {
        url: url.to_owned(),
        reason,
    };
    let m: Metadata = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("not a JSON metadata document ({e})")))?;
    if m.issuer != issuer {
        return Err(invalid(format!(
            "it is for issuer \"{}\", not \"{issuer}\" (RFC 8414 §3.3 wants them equal; write `issuer` exactly as the server names itself)",
            m.issuer.chars().take(200).collect::<String>()
        )));
    }
    for (name, value) in [
        ("authorization_endpoint", &m.authorization_endpoint),
        ("token_endpoint", &m.token_endpoint),
        ("revocation_endpoint", &m.revocation_endpoint),
    ] {
        if let Some(v) = value
            && !reqwest::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(invalid(format!("its {name} is not an http(s) URL")));
        }
    }
    Ok(m)
}

/// What `freshd check` says of an account's endpoints, and where each came
/// from (the config, a preset, the issuer's metadata, or its cached copy).
/// Reads the cache but never writes it.
pub async fn describe(acc: &Account, state_dir: Option<PathBuf>, http: &reqwest::Client) -> String {
    let mut out = String::new();
    if let Some(issuer) = &acc.issuer {
        out.push_str(&format!("    issuer: {issuer}\n"));
    }
    match Discovery::new(acc, state_dir)
        .read_only()
        .endpoints(http)
        .await
    {
        Ok(e) => {
            if let Some((_, origin)) = &e.metadata {
                out.push_str(&format!("    metadata: {origin}\n"));
            }
            for (what, url) in [
                ("token URL", &e.token_url),
                ("authorize URL", &e.authorize_url),
                ("revocation URL", &e.revocation_url),
            ] {
                let preset = acc.provider.filter(|p| {
                    url.as_ref()
                        .is_some_and(|(u, _)| u == p.authorize_url() || u == p.token_url())
                });
                out.push_str(&match (url, preset) {
                    (Some((u, Origin::Config)), Some(p)) => {
                        format!("    {what}: {u} (the {} preset)\n", p.as_str())
                    }
                    (Some((u, origin)), _) => format!("    {what}: {u} ({origin})\n"),
                    (None, _) => format!("    {what}: none\n"),
                });
            }
            if e.iss_required {
                out.push_str("    the issuer sends `iss` in every authorization response (RFC 9207): login requires it\n");
            }
        }
        Err(e) => out.push_str(&format!("    endpoints: unknown: {e}\n")),
    }
    let auth = match acc.token_endpoint_auth_method {
        Some(m) => m.as_str().to_owned(),
        None if acc.client_secret.is_some() => acc.auth_method(true).as_str().to_owned(),
        None => format!(
            "{} with a client secret in the store, else none",
            acc.auth_method(true).as_str()
        ),
    };
    out.push_str(&format!("    client authentication: {auth}\n"));
    for (what, params) in [
        ("authorize_params", &acc.authorize_params),
        ("token_params", &acc.token_params),
    ] {
        if !params.is_empty() {
            let names: Vec<&str> = params.keys().map(String::as_str).collect();
            out.push_str(&format!("    {what}: {}\n", names.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_rfc8414_then_oidc() {
        assert_eq!(
            well_known_urls("https://login.example.com"),
            [
                "https://login.example.com/.well-known/oauth-authorization-server",
                "https://login.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            well_known_urls("https://example.com/tenant/a/"),
            [
                "https://example.com/.well-known/oauth-authorization-server/tenant/a",
                "https://example.com/tenant/a/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn metadata_for_another_issuer_is_refused() {
        let body =
            br#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/t"}"#;
        let err = parse(
            body,
            "https://good.example",
            "https://good.example/.well-known/x",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "it is for issuer \"https://evil.example\", not \"https://good.example\""
            ),
            "{err}"
        );
        assert!(matches!(
            RefreshError::from(err),
            RefreshError::Rejected { .. }
        ));
    }

    #[test]
    fn metadata_fields_are_read() {
        let body = br#"{"issuer":"https://i.example","authorization_endpoint":"https://i.example/auth",
            "token_endpoint":"https://i.example/token/","revocation_endpoint":"https://i.example/revoke",
            "authorization_response_iss_parameter_supported":true,"jwks_uri":"https://i.example/jwks"}"#;
        let m = parse(body, "https://i.example", "u").unwrap();
        assert_eq!(
            m.token_endpoint.as_deref(),
            Some("https://i.example/token/")
        );
        assert!(m.authorization_response_iss_parameter_supported);
        let bad = br#"{"issuer":"https://i.example","token_endpoint":"javascript:alert(1)"}"#;
        assert!(parse(bad, "https://i.example", "u").is_err());
    }

    fn account(text: &str) -> Account {
        let config = crate::config::Config::parse(
            &format!("[accounts.a]\nclient_id = \"id\"\n{text}"),
            Path::new("/x.toml"),
            false,
            crate::jobs::TYPES,
        )
        .unwrap();
        (*config.accounts["a"]).clone()
    }

    #[tokio::test]
    async fn explicit_keys_override_discovered_ones_and_the_cache_serves_when_down() {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on: the server is "down".
        let issuer = "http://127.0.0.1:9";
        let acc = account(&format!(
            "issuer = \"{issuer}\"\ntoken_url = \"http://127.0.0.1:9/mine/\"\n"
        ));
        let d = Discovery::new(&acc, Some(dir.path().to_owned()));
        let http = reqwest::Client::new();
        let err = d.endpoints(&http).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");
        // An earlier fetch left a copy.
        let m = Metadata {
            issuer: issuer.into(),
            authorization_endpoint: Some("http://127.0.0.1:9/auth".into()),
            token_endpoint: Some("http://127.0.0.1:9/token".into()),
            revocation_endpoint: Some("http://127.0.0.1:9/revoke".into()),
            authorization_response_iss_parameter_supported: true,
            token_endpoint_auth_methods_supported: None,
            code_challenge_methods_supported: None,
        };
        d.save(&m, "http://127.0.0.1:9/.well-known/openid-configuration");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(cache_path(dir.path(), "a"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let e = d.endpoints(&http).await.unwrap();
        let (token, origin) = e.token_url.unwrap();
        assert_eq!(token, "http://127.0.0.1:9/mine/");
        assert_eq!(origin, Origin::Config);
        let (auth, origin) = e.authorize_url.unwrap();
        assert_eq!(auth, "http://127.0.0.1:9/auth");
        assert!(matches!(origin, Origin::Cache { .. }), "{origin:?}");
        assert!(e.iss_required);
        // A copy for another issuer is not used.
        let other = account("issuer = \"http://127.0.0.1:9/other\"\n");
        let d = Discovery::new(&other, Some(dir.path().to_owned()));
        assert!(d.endpoints(&http).await.is_err());
    }

    /// A tiny HTTP server on 127.0.0.1: `answer(path)` gives status and body.
    async fn serve(answer: fn(&str, &str) -> (u16, String)) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = base.clone();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let first = lines.next_line().await.unwrap().unwrap_or_default();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l.is_empty() {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = answer(&path, &issuer);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = w.write_all(resp.as_bytes()).await;
            }
        });
        base
    }

    #[tokio::test]
    async fn the_oidc_url_is_tried_when_rfc8414_is_not_served() {
        let issuer = serve(|path, issuer| match path {
            "/.well-known/openid-configuration" => (
                200,
                format!(r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"}}"#),
            ),
            _ => (404, String::new()),
        })
        .await;
        let (m, url) = fetch(&reqwest::Client::new(), &issuer).await.unwrap();
        assert_eq!(url, format!("{issuer}/.well-known/openid-configuration"));
        assert_eq!(m.token_endpoint, Some(format!("{issuer}/token")));
    }

    #[tokio::test]
    async fn a_failing_server_is_transient_and_a_missing_document_is_not() {
        let down = serve(|_, _| (503, String::new())).await;
        let err = fetch(&reqwest::Client::new(), &down).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");
        let none = serve(|_, _| (404, String::new())).await;
        let err = fetch(&reqwest::Client::new(), &none).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Invalid { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("no metadata at either well-known URL"),
            "{err}"
        );
    }
}
