//! A real, independently written OpenID Connect server for end-to-end tests:
//! panva's `oidc-provider` from npm, run by `tests/oidc/server.mjs` with
//! refresh-token rotation and reuse detection on. This module starts it (a
//! child process, killed on drop), gets a first refresh token through its
//! login and consent pages as a person would (authorization code + PKCE S256,
//! `prompt=consent`, scope `openid offline_access`), reads its journal of
//! token requests, and checks freshd against it:
//!
//! - (a) every refresh presented the newest refresh token of its grant, and
//!   none was refused;
//! - (b) soon after each rotation, freshd's store held the newest token;
//! - (c) no access token handed out by `freshd token` had expired at the
//!   provider;
//! - (d) (hostile fakes) nothing reached anywhere but the token endpoint:
//!   see [`Tripwire`].
//!
//! The server is found in `$FRESHD_OIDC_DIR`, else `tests/oidc`; without node
//! or its `node_modules` the test is skipped with the reason on the real
//! stderr, unless `CI` is set (then it fails: `.ci/run` installs them).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::PATIENCE;

/// The redirect URI the test clients are registered with (a native client:
/// any loopback port is accepted).
pub const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// The clients `server.mjs` registers by default.
pub const PUBLIC_CLIENT: &str = "freshd-public";
pub const BASIC_CLIENT: &str = "freshd-basic";
pub const BASIC_SECRET: &str = "se+cr%et: with a space";
pub const POST_CLIENT: &str = "freshd-post";
pub const POST_SECRET: &str = "po+st%se:cret with a space";

/// SHA-256 in hex, as the journal records tokens.
pub fn sha256(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Milliseconds since the epoch, on the test's (real) wall clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Says on the real stderr (not the captured one) why a test is skipped, or
/// fails when `CI` is set.
pub fn skip(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{why}");
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Where `server.mjs` and its `node_modules` are.
pub fn server_dir() -> PathBuf {
    match std::env::var_os("FRESHD_OIDC_DIR").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc"),
    }
}

/// Why the server cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let dir = server_dir();
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(node, Ok(s) if s.success()) {
        return Some("the OIDC tests need node (Node.js 20 or later) on PATH".into());
    }
    if !dir.join("node_modules/oidc-provider").is_dir() {
        return Some(format!(
            "the OIDC tests need oidc-provider: run `npm ci` in {} (or set FRESHD_OIDC_DIR)",
            dir.display()
        ));
    }
    None
}

/// One token-endpoint request as the server journaled it.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// When the request arrived (ms since the epoch).
    pub t: i64,
    /// When the answer was ready (ms since the epoch).
    pub t_done: i64,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    /// SHA-256 of the refresh token presented.
    pub presented: Option<String>,
    pub issued_refresh: Option<String>,
    pub issued_access: Option<String>,
    pub expires_in: Option<serde_json::Value>,
    pub access_expires_at: Option<i64>,
    pub grant: Option<String>,
    /// "ok" or the OAuth error code.
    pub outcome: String,
    pub error_description: Option<String>,
    pub status: u16,
}

impl Entry {
    pub fn is_refresh(&self) -> bool {
        self.grant_type.as_deref() == Some("refresh_token")
    }

    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// Tokens from the code exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub refresh_token: String,
    pub access_token: String,
    pub scope: String,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None(&'a str),
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
}

impl Auth<'_> {
    fn client_id(&self) -> &str {
        match self {
            Auth::None(id) | Auth::Basic(id, _) | Auth::Post(id, _) => id,
        }
    }
}

/// The running server.
pub struct Oidc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub issuer: String,
    pub port: u16,
    /// The server's own state (grants, tokens, journal), kept over restarts.
    pub state: PathBuf,
    access_ttl: u64,
    /// The server's stderr, for failure messages.
    pub log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Oidc {
    /// Starts the server with `access_ttl`-second access tokens, its state in
    /// `state`; None (after saying why) when it cannot run here.
    pub async fn start(state: &Path, access_ttl: u64) -> Option<Oidc> {
        if let Some(why) = unavailable() {
            skip(&why);
            return None;
        }
        let mut oidc = Oidc {
            child: None,
            issuer: String::new(),
            port: 0,
            state: state.to_path_buf(),
            access_ttl,
            log: Arc::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(PATIENCE)
                .build()
                .unwrap(),
        };
        oidc.spawn().await;
        Some(oidc)
    }

    async fn spawn(&mut self) {
        let dir = server_dir();
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("PORT", self.port.to_string())
            .env("OIDC_STATE_DIR", &self.state)
            .env("OIDC_AT_TTL", self.access_ttl.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("oidc server did not start; stderr:\n{}", self.log_text()));
        let issuer = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from the oidc server: {line}"));
        self.issuer = issuer.to_string();
        self.port = issuer.rsplit(':').next().unwrap().parse().unwrap();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// Stops the server (its state stays on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same grants and journal.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post_test(&self, path_and_query: &str) {
        self.http
            .post(format!("{}{path_and_query}", self.issuer))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Every token-endpoint request so far, in the order answered.
    pub async fn journal(&self) -> Vec<Entry> {
        self.get_json("/test/journal").await
    }

    /// The newest refresh token (hash) of each grant that is not revoked.
    pub async fn current(&self) -> BTreeMap<String, String> {
        #[derive(Deserialize)]
        struct Head {
            refresh: String,
        }
        #[derive(Deserialize)]
        struct Current {
            grants: BTreeMap<String, Head>,
        }
        let c: Current = self.get_json("/test/current").await;
        c.grants.into_iter().map(|(g, h)| (g, h.refresh)).collect()
    }

    /// How many token requests the server is answering (or holding) now.
    pub async fn inflight(&self) -> u64 {
        let c: serde_json::Value = self.get_json("/test/current").await;
        c["inflight"].as_u64().unwrap()
    }

    /// Holds the next `count` token requests: `before_ms` before the server
    /// processes them, `after_ms` after it answered (rotation done, answer
    /// not yet sent).
    pub async fn delay(&self, before_ms: u64, after_ms: u64, count: u32) {
        self.post_test(&format!(
            "/test/delay?before_ms={before_ms}&after_ms={after_ms}&count={count}"
        ))
        .await;
    }

    /// Revokes every grant.
    pub async fn revoke_all(&self) {
        self.post_test("/test/revoke").await;
    }

    /// Whether the provider considers `access_token` active (RFC 7662),
    /// asked by the client it was issued to.
    pub async fn introspect(&self, auth: Auth<'_>, access_token: &str) -> bool {
        let mut form = vec![("token", access_token)];
        let request = authenticate(
            self.http
                .post(format!("{}/token/introspection", self.issuer)),
            auth,
            &mut form,
        );
        let answer: serde_json::Value = request
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"].as_bool().unwrap_or(false)
    }

    /// Goes through the server's login and consent pages from `start` (an
    /// authorization URL) as `user`, as a browser would; returns the URL it
    /// is sent to at the end (the client's redirect URI with code, state and
    /// iss), without requesting it.
    pub async fn authorize(&self, start: reqwest::Url, user: &str) -> reqwest::Url {
        let issuer = reqwest::Url::parse(&self.issuer).unwrap().origin();
        let mut jar: HashMap<String, String> = HashMap::new();
        let mut next = Some((start, None::<Vec<(String, String)>>));
        let mut callback = None;
        for _ in 0..20 {
            let Some((url, form)) = next.take() else {
                break;
            };
            if url.origin() != issuer {
                callback = Some(url);
                break;
            }
            let cookie = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let request = match &form {
                Some(fields) => self.http.post(url.clone()).form(fields),
                None => self.http.get(url.clone()),
            };
            let response = request.header("cookie", cookie).send().await.unwrap();
            for value in response.headers().get_all("set-cookie") {
                let value = value.to_str().unwrap();
                let pair = value.split(';').next().unwrap();
                let (name, val) = pair.split_once('=').unwrap();
                if val.is_empty() || value.contains("expires=Thu, 01 Jan 1970") {
                    jar.remove(name);
                } else {
                    jar.insert(name.to_string(), val.to_string());
                }
            }
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"].to_str().unwrap();
                next = Some((url.join(location).unwrap(), None));
                continue;
            }
            let html = response.text().await.unwrap();
            assert!(status.is_success(), "{url} answered {status}: {html}");
            // A login or consent page: submit its form.
            let action = html
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no form on {url}: {html}"));
            let prompt = if html.contains("name=\"login\"") {
                "login"
            } else {
                "consent"
            };
            let mut fields = vec![("prompt".to_string(), prompt.to_string())];
            if prompt == "login" {
                fields.push(("login".into(), user.into()));
                fields.push(("password".into(), "test".into()));
            }
            next = Some((url.join(action).unwrap(), Some(fields)));
        }
        callback.expect("the login never left the server's pages")
    }

    /// Logs in as `user` through the server's own login and consent pages,
    /// with the authorization code flow and PKCE S256, and exchanges the
    /// code. Checks `state` and `iss` on the way back.
    pub async fn login(&self, user: &str, auth: Auth<'_>) -> Tokens {
        let verifier = random_token(48);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let state = random_token(16);
        let mut url = reqwest::Url::parse(&self.authorize_url()).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", auth.client_id())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "openid offline_access")
            .append_pair("prompt", "consent")
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let callback = self.authorize(url, user).await;
        let query: HashMap<String, String> = callback.query_pairs().into_owned().collect();
        assert_eq!(
            query.get("state"),
            Some(&state),
            "state comes back unchanged"
        );
        assert_eq!(
            query.get("iss"),
            Some(&self.issuer),
            "iss is the issuer (RFC 9207)"
        );
        let code = query
            .get("code")
            .unwrap_or_else(|| panic!("no code in the callback: {query:?}"));
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let request = authenticate(self.http.post(self.token_url()), auth, &mut form);
        let answer: serde_json::Value = request
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let field = |k: &str| {
            answer[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in the code exchange's answer: {answer}"))
                .to_string()
        };
        Tokens {
            refresh_token: field("refresh_token"),
            access_token: field("access_token"),
            scope: field("scope"),
        }
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds the client authentication `auth` to a token-endpoint request.
fn authenticate<'a>(
    request: reqwest::RequestBuilder,
    auth: Auth<'a>,
    form: &mut Vec<(&str, &'a str)>,
) -> reqwest::RequestBuilder {
    match auth {
        Auth::None(id) => {
            form.push(("client_id", id));
            request
        }
        Auth::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
            request
        }
        // RFC 6749 §2.3.1: form-urlencoded before base64.
        Auth::Basic(id, secret) => request.basic_auth(form_encode(id), Some(form_encode(secret))),
    }
}

/// application/x-www-form-urlencoded, as RFC 6749 §2.3.1 wants for Basic.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

// ---- the invariants ----

/// (a) Every refresh presented the newest refresh token of its grant, as
/// issued by the provider's previous answer for that grant, and was not
/// refused with `invalid_grant`: no reuse, no fork, no token the provider
/// never issued, no grant revoked by reuse detection. Returns the
/// violations.
pub fn chain_violations(journal: &[Entry]) -> Vec<String> {
    let mut head: HashMap<String, String> = HashMap::new(); // grant -> newest refresh hash
    let mut grant_of: HashMap<String, String> = HashMap::new(); // refresh hash -> grant
    let mut out = Vec::new();
    for (i, e) in journal.iter().enumerate() {
        if e.is_refresh() {
            let presented = e.presented.clone().unwrap_or_default();
            match grant_of.get(&presented) {
                None => out.push(format!(
                    "#{i}: presented a refresh token the provider never issued ({})",
                    e.outcome
                )),
                Some(grant) if head.get(grant) != Some(&presented) => out.push(format!(
                    "#{i}: presented an older refresh token of grant {grant} (reuse or fork): {} {}",
                    e.outcome,
                    e.error_description.as_deref().unwrap_or("")
                )),
                // The newest token refused: the grant was revoked. (A
                // server-side error is the provider's, not a broken chain.)
                Some(_) if e.outcome == "invalid_grant" => out.push(format!(
                    "#{i}: refresh refused: {} {}",
                    e.outcome,
                    e.error_description.as_deref().unwrap_or("")
                )),
                Some(_) => {}
            }
        }
        if let (Some(grant), Some(refresh)) = (&e.grant, &e.issued_refresh) {
            head.insert(grant.clone(), refresh.clone());
            grant_of.insert(refresh.clone(), grant.clone());
        }
    }
    out
}

/// Panics with the journal when (a) does not hold.
pub fn assert_chain(journal: &[Entry]) {
    let v = chain_violations(journal);
    assert!(
        v.is_empty(),
        "(a) the refresh chain broke:\n{}\njournal:\n{}",
        v.join("\n"),
        journal_text(journal)
    );
}

pub fn journal_text(journal: &[Entry]) -> String {
    journal
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "#{i} t={} {} presented={} issued={} expires_in={:?} grant={} {} {}",
                e.t,
                e.grant_type.as_deref().unwrap_or("?"),
                short(e.presented.as_deref()),
                short(e.issued_refresh.as_deref()),
                e.expires_in,
                short(e.grant.as_deref()),
                e.outcome,
                e.error_description.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn short(hash: Option<&str>) -> &str {
    hash.map_or("-", |h| &h[..h.len().min(8)])
}

/// Where freshd keeps an account's refresh token in `credentials` mode: the
/// rotated copy in the state directory over the credential.
pub fn stored_token(state_dir: &Path, creds_dir: &Path, account: &str) -> Option<String> {
    let name = format!("{account}.refresh_token");
    std::fs::read_to_string(state_dir.join(&name))
        .or_else(|_| std::fs::read_to_string(creds_dir.join(&name)))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Watches freshd's store in the background: every change of the stored
/// refresh token (its hash) with the time it was seen.
pub struct StoreWatch {
    pub seen: Arc<Mutex<Vec<(i64, String)>>>,
    task: tokio::task::JoinHandle<()>,
    paths: (PathBuf, PathBuf, String),
}

impl StoreWatch {
    pub fn start(state_dir: &Path, creds_dir: &Path, account: &str) -> StoreWatch {
        let seen: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
        let paths = (
            state_dir.to_path_buf(),
            creds_dir.to_path_buf(),
            account.to_string(),
        );
        let (state_dir, creds_dir, account) = paths.clone();
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                if let Some(token) = stored_token(&state_dir, &creds_dir, &account) {
                    let hash = sha256(&token);
                    let mut s = s.lock().unwrap();
                    if s.last().map(|(_, h)| h) != Some(&hash) {
                        s.push((now_ms(), hash));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        StoreWatch { seen, task, paths }
    }

    /// What was seen, with the store as it is now at the end.
    pub fn seen(&self) -> Vec<(i64, String)> {
        let mut seen = self.seen.lock().unwrap().clone();
        let (state_dir, creds_dir, account) = &self.paths;
        if let Some(token) = stored_token(state_dir, creds_dir, account) {
            seen.push((now_ms(), sha256(&token)));
        }
        seen
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// (b) Within `within` of each rotation, the store held that token or a
/// newer one of the same chain; rotations answered before `from` (ms) and
/// after `until` are not checked. Returns the violations.
pub fn store_violations(
    journal: &[Entry],
    seen: &[(i64, String)],
    within: Duration,
    from: i64,
    until: i64,
) -> Vec<String> {
    let within = within.as_millis() as i64;
    let mut out = Vec::new();
    let rotations: Vec<&Entry> = journal
        .iter()
        .filter(|e| e.issued_refresh.is_some())
        .collect();
    for (i, e) in rotations.iter().enumerate() {
        if e.t_done < from || e.t_done > until {
            continue;
        }
        let later: Vec<&str> = rotations[i..]
            .iter()
            .filter(|r| r.grant == e.grant)
            .filter_map(|r| r.issued_refresh.as_deref())
            .collect();
        let held = seen
            .iter()
            .any(|(t, h)| *t >= e.t && *t <= e.t_done + within && later.contains(&h.as_str()));
        if !held {
            let tail: Vec<String> = seen
                .iter()
                .rev()
                .take(4)
                .map(|(t, h)| format!("{} at {t}", short(Some(h))))
                .collect();
            out.push(format!(
                "rotation answered at {} (refresh {}) not in the store within {within} ms; last seen in the store: {}",
                e.t_done,
                short(e.issued_refresh.as_deref()),
                tail.join(", ")
            ));
        }
    }
    out
}

/// (b) at the end: the store holds the newest refresh token of the chain
/// (waits up to `patience` for it).
pub async fn assert_store_holds_head(
    oidc: &Oidc,
    state_dir: &Path,
    creds_dir: &Path,
    account: &str,
    patience: Duration,
) {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let journal = oidc.journal().await;
        let stored = stored_token(state_dir, creds_dir, account).map(|t| sha256(&t));
        let head = stored.as_ref().and_then(|s| {
            let grant = journal
                .iter()
                .find(|e| e.issued_refresh.as_ref() == Some(s))?
                .grant
                .clone();
            journal
                .iter()
                .rev()
                .find(|e| e.grant == grant && e.issued_refresh.is_some())?
                .issued_refresh
                .clone()
        });
        if stored.is_some() && stored == head {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "(b) the store holds {} but the chain's newest token is {}\njournal:\n{}",
            short(stored.as_deref()),
            short(head.as_deref()),
            journal_text(&journal)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An access token `freshd token` handed out, and when (real time, ms).
#[derive(Debug, Clone)]
pub struct HandedOut {
    pub at: i64,
    pub hash: String,
}

/// (c) No access token handed out had expired at the provider when handed
/// out (with `slack_ms` for the hand-over itself), and each was issued by it.
pub fn expiry_violations(journal: &[Entry], handed: &[HandedOut], slack_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    for h in handed {
        match journal
            .iter()
            .find(|e| e.issued_access.as_ref() == Some(&h.hash))
        {
            None => out.push(format!(
                "handed out at {} an access token the provider never issued",
                h.at
            )),
            Some(e) => match e.access_expires_at {
                Some(exp) if exp + slack_ms < h.at => out.push(format!(
                    "handed out at {} an access token that expired at {exp} ({} ms before)",
                    h.at,
                    h.at - exp
                )),
                _ => {}
            },
        }
    }
    out
}

/// (d) A listener standing where nothing may go (a redirect's target):
/// counts the connections it gets and answers each with a refresh token of
/// its own, so that a client that trusted it would show.
pub struct Tripwire {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    pub async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits: Arc<AtomicUsize> = Arc::default();
        let h = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut conn, _)) = listener.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    let _ = conn.read(&mut buf).await;
                    let body = r#"{"access_token":"tripwire-access","token_type":"Bearer","expires_in":3600,"refresh_token":"tripwire-refresh"}"#;
                    let _ = conn
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                });
            }
        });
        Tripwire { url, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}
