//! `freshd login`: the authorization code grant with PKCE (S256) and
//! `state`, through a one-shot listener on the redirect URI's loopback
//! address (never any other), or through a pasted redirect URL on a machine
//! without a browser.
//!
//! The oauth2 crate makes the verifier, the challenge, the state and the
//! authorization URL; the code is exchanged through the same
//! [`HttpEndpoint`] that refreshes, so errors are classified the same way.
//! The code, the verifier and the tokens stay in `secrecy` types and are
//! never printed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::discovery::Endpoints;
use super::endpoint::{GrantRequest, HttpEndpoint, RefreshError, TokenEndpoint, Tokens};
use crate::config::{Account, AuthMethod, Grant};

/// How long `login` waits for the browser to come back: long enough to log
/// in with two-factor authentication, short enough not to linger forever.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How the user takes part.
#[derive(Debug, Clone, Copy)]
pub struct LoginOptions {
    /// Print the URL; do not try to open a browser.
    pub no_browser: bool,
    /// Read the redirected URL from standard input instead of listening.
    pub paste: bool,
    pub timeout: Duration,
}

/// Why a login did not end with a refresh token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("account {0} uses grant = \"client_credentials\": it gets its tokens without a login")]
    NotNeeded(String),
    #[error(
        "account {account} has no `{key}`; set it in [accounts.{account}] (for example redirect_uri = \"http://127.0.0.1:8888/callback\", the URI registered with the app)"
    )]
    Missing { account: String, key: &'static str },
    #[error("the {key} of account {account} is not a valid URL: {detail}")]
    BadUrl {
        account: String,
        key: &'static str,
        detail: String,
    },
    #[error(
        "account {account} has token_endpoint_auth_method = \"{method}\" but no client secret; store it with `secret-tool store --label='freshd {account} client secret' service freshd username {account}/client_secret` (or as the credential {account}.client_secret), or use \"none\" for a public client"
    )]
    NoClientSecret {
        account: String,
        method: &'static str,
    },
    #[error("cannot find the provider's endpoints: {0}")]
    Discovery(RefreshError),
    #[error(
        "cannot listen on {addr} for the redirect ({source}); is another program using that port? Stop it, or use `--paste`"
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no redirect came back within {} minutes; run the login again (on a machine without a browser, use --paste)",
        .0.as_secs() / 60
    )]
    Timeout(Duration),
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    #[error(
        "the redirect's `state` does not match the one freshd sent, so it does not answer this login (an old tab, or a forged link); nothing was stored: start the login again"
    )]
    StateMismatch,
    #[error(
        "the redirect says it comes from issuer \"{got}\", not from \"{expected}\" that freshd asked (RFC 9207: a mix-up or an attack); nothing was stored: check `issuer` and start the login again"
    )]
    IssuerMismatch { expected: String, got: String },
    #[error(
        "the redirect carries no `iss`, although issuer {0} says it always sends one (RFC 9207); nothing was stored: start the login again, and if it recurs, the redirect did not come from that server"
    )]
    MissingIssuer(String),
    #[error(
        "the redirect carries no `code`; paste the whole URL the browser was sent to, starting with {0}"
    )]
    NoCode(String),
    #[error("cannot read the pasted URL: {0}")]
    Paste(String),
    #[error("the provider refused to exchange the code: {0}")]
    Exchange(RefreshError),
    #[error(
        "the provider did not grant offline access (it granted the scopes \"{0}\", without offline_access), so it issued no refresh token; allow offline access on the consent page, and check that the client may use offline_access and the refresh_token grant"
    )]
    OfflineNotGranted(String),
    #[error(
        "the provider answered without a refresh token, so freshd cannot keep this account fresh; check that the app may use the authorization code grant with refresh tokens"
    )]
    NoRefreshToken,
}

impl LoginError {
    /// 78 where the configuration must change; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoginError::Missing { .. }
            | LoginError::BadUrl { .. }
            | LoginError::NotNeeded(_)
            | LoginError::NoClientSecret { .. } => 78,
            LoginError::Exchange(RefreshError::Rejected { .. })
            | LoginError::Discovery(RefreshError::Rejected { .. }) => 78,
            _ => 1,
        }
    }
}

/// What the browser (or the pasted URL) brought back.
#[derive(Debug)]
struct Redirect {
    query: HashMap<String, String>,
}

/// A login that got its refresh token, and the browser still waiting for
/// its page: [`Authorized::finish`] sends it once the token is stored.
#[derive(Debug)]
pub struct Authorized {
    pub refresh_token: SecretString,
    browser: Option<Browser>,
}

impl Authorized {
    /// Tells the browser how it ended: `Ok` once the token is stored, or
    /// what failed and what to do.
    pub async fn finish(self, account: &str, outcome: Result<(), String>) {
        if let Some(browser) = self.browser {
            match outcome {
                Ok(()) => browser.success(account).await,
                Err(why) => browser.failure(&why).await,
            }
        }
    }
}

/// The browser's connection to the loopback listener, kept open until
/// freshd knows whether the login worked, so the page tells the truth.
#[derive(Debug)]
struct Browser {
    stream: tokio::net::tcp::OwnedWriteHalf,
}

impl Browser {
    async fn success(self, account: &str) {
        let title = format!("freshd is authorized for {account}");
        let text = format!(
            "freshd stored the authorization for account {account}. You can close this tab."
        );
        self.page(&title, &text).await;
    }

    async fn failure(self, why: &str) {
        self.page(
            "freshd is not authorized",
            &format!(
                "The login failed: {why}. The terminal where `freshd login` ran says the same."
            ),
        )
        .await;
    }

    async fn page(mut self, title: &str, text: &str) {
        let (title, text) = (html_escape(title), html_escape(text));
        let body = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>{title}</title><h1>{title}</h1><p>{text}</p>\n"
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = self.stream.write_all(head.as_bytes()).await;
        let _ = self.stream.write_all(body.as_bytes()).await;
        let _ = self.stream.shutdown().await;
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The scope that asks OIDC servers for a refresh token.
const OFFLINE_ACCESS: &str = "offline_access";

/// Runs the whole login for `account` up to the refresh token; the caller
/// stores it and then calls [`Authorized::finish`].
pub async fn login(
    account: &Account,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    options: LoginOptions,
    state_dir: Option<PathBuf>,
) -> Result<Authorized, LoginError> {
    let name = account.name.as_str();
    if account.grant == Grant::ClientCredentials {
        return Err(LoginError::NotNeeded(name.to_owned()));
    }
    let missing = |key| LoginError::Missing {
        account: name.to_owned(),
        key,
    };
    let redirect = account
        .redirect_uri
        .clone()
        .ok_or_else(|| missing("redirect_uri"))?;
    // Before the browser: a login that cannot end in an exchange is no login.
    let method = account.auth_method(client_secret.is_some());
    if client_secret.is_none() && method != AuthMethod::None {
        return Err(LoginError::NoClientSecret {
            account: name.to_owned(),
            method: method.as_str(),
        });
    }
    let endpoint = HttpEndpoint::for_account(http, account, client_secret, state_dir);
    let endpoints = endpoint.endpoints().await.map_err(LoginError::Discovery)?;
    let (authorize, _) = endpoints
        .authorize_url
        .clone()
        .ok_or_else(|| missing("authorize_url"))?;
    let (url, state, verifier) = authorization_request(account, authorize, &redirect)?;
    let (got, browser) = receive(name, &url, &redirect, options).await?;
    let exchanged = async {
        let code = check_redirect(&got, state.secret(), &redirect, &endpoints)?;
        let tokens = endpoint
            .request(GrantRequest::AuthorizationCode {
                code: &code,
                verifier: &verifier,
                redirect_uri: &redirect,
            })
            .await
            .map_err(LoginError::Exchange)?;
        refresh_token_of(account, tokens)
    }
    .await;
    match exchanged {
        Ok(refresh_token) => Ok(Authorized {
            refresh_token,
            browser,
        }),
        Err(e) => {
            if let Some(b) = browser {
                b.failure(&e.to_string()).await;
            }
            Err(e)
        }
    }
}

fn bad_url(account: &Account, key: &'static str, detail: String) -> LoginError {
    LoginError::BadUrl {
        account: account.name.clone(),
        key,
        detail,
    }
}

/// The authorization URL (PKCE S256, `state`, the scopes and the extra
/// parameters), its `state` and the PKCE verifier.
fn authorization_request(
    account: &Account,
    authorize: String,
    redirect: &str,
) -> Result<(reqwest::Url, CsrfToken, SecretString), LoginError> {
    let client = BasicClient::new(ClientId::new(account.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(authorize)
                .map_err(|e| bad_url(account, "authorize_url", e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect.to_owned())
                .map_err(|e| bad_url(account, "redirect_uri", e.to_string()))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(account.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in authorize_params(account) {
        request = request.add_extra_param(k, v);
    }
    let (url, state) = request.url();
    Ok((url, state, SecretString::from(verifier.secret().clone())))
}

/// Shows `url` and waits for the redirect: on the redirect URI's loopback
/// address (with the browser's connection kept for the final page), or
/// pasted. `name` is the account's.
async fn receive(
    name: &str,
    url: &reqwest::Url,
    redirect: &str,
    options: LoginOptions,
) -> Result<(Redirect, Option<Browser>), LoginError> {
    let redirect_url = reqwest::Url::parse(redirect).map_err(|e| LoginError::BadUrl {
        account: name.to_owned(),
        key: "redirect_uri",
        detail: e.to_string(),
    })?;
    let listen = loopback_addr(&redirect_url).filter(|_| !options.paste);
    // Bind before showing the URL, so a fast browser finds us listening.
    let listener = match listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| LoginError::Listen { addr, source })?,
        ),
        None => None,
    };
    eprintln!(
        "To authorize freshd for account {name}, open this URL in a browser and allow access:\n\n  {url}\n"
    );
    let Some(listener) = listener else {
        if !options.paste {
            eprintln!(
                "The redirect URI is not on this machine's loopback address, so freshd cannot catch it."
            );
        }
        return Ok((read_pasted(redirect).await?, None));
    };
    if options.no_browser || !open_browser(url.as_str()) {
        let port = listener.local_addr().map_or(0, |a| a.port());
        eprintln!("{}", headless_hint(name, port));
    }
    eprintln!("Waiting for the browser to come back to {redirect} …");
    let (got, browser) = tokio::time::timeout(
        options.timeout,
        accept_redirect(listener, redirect_url.path()),
    )
    .await
    .map_err(|_| LoginError::Timeout(options.timeout))?;
    Ok((got, Some(browser)))
}

/// The extra authorization parameters: the config's, and `prompt=consent`
/// when `offline_access` is asked for, because OIDC Core §11 lets servers
/// ignore `offline_access` without it (a config's own `prompt` wins).
fn authorize_params(account: &Account) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = account
        .authorize_params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if account.scopes.iter().any(|s| s == OFFLINE_ACCESS)
        && !account.authorize_params.contains_key("prompt")
    {
        params.push(("prompt".into(), "consent".into()));
    }
    params
}

/// The refresh token in a code exchange's answer, or why there is none.
fn refresh_token_of(account: &Account, tokens: Tokens) -> Result<SecretString, LoginError> {
    if let Some(rt) = tokens.refresh_token {
        return Ok(rt);
    }
    let asked_offline = account.scopes.iter().any(|s| s == OFFLINE_ACCESS);
    match tokens.scope {
        Some(granted)
            if asked_offline && !granted.split_whitespace().any(|s| s == OFFLINE_ACCESS) =>
        {
            Err(LoginError::OfflineNotGranted(
                granted
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect(),
            ))
        }
        _ => Err(LoginError::NoRefreshToken),
    }
}

/// What to do when no browser opens here: another machine's browser, with
/// the port forwarded, or paste mode.
fn headless_hint(account: &str, port: u16) -> String {
    format!(
        "No browser opens here. Either open the URL on your own machine after forwarding the port with `ssh -L {port}:127.0.0.1:{port} HOST` (HOST is this machine), or stop this and run `freshd login {account} --paste`, which asks for the address the browser ends up at."
    )
}

/// The address to listen on: the redirect URI's own loopback address and
/// port (`localhost` means 127.0.0.1), or `None` when it is not loopback.
fn loopback_addr(url: &reqwest::Url) -> Option<SocketAddr> {
    let port = url.port_or_known_default()?;
    let ip = match url.host()? {
        oauth2::url::Host::Ipv4(ip) if ip.is_loopback() => IpAddr::V4(ip),
        oauth2::url::Host::Ipv6(ip) if ip.is_loopback() => IpAddr::V6(ip),
        oauth2::url::Host::Domain("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Starts a browser on `url`; false when there is surely none (no
/// display, or no `xdg-open`).
fn open_browser(url: &str) -> bool {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        return false;
    }
    std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Serves the listener until a request for `path` arrives; the browser's
/// connection is kept for the page that tells how the login ended.
async fn accept_redirect(listener: TcpListener, path: &str) -> (Redirect, Browser) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        if reader.read_line(&mut line).await.is_err() {
            continue;
        }
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let (req_path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        if req_path != path {
            let _ = write
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let query: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
        return (Redirect { query }, Browser { stream: write });
    }
}

async fn read_pasted(redirect: &str) -> Result<Redirect, LoginError> {
    eprintln!(
        "After allowing access, the browser goes to a page starting with {redirect} (it may fail to load; that is fine).\nPaste that page's whole URL here and press Enter:"
    );
    let mut line = String::new();
    let mut stdin = BufReader::new(tokio::io::stdin());
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| LoginError::Paste(e.to_string()))?;
    let url = reqwest::Url::parse(line.trim()).map_err(|e| {
        LoginError::Paste(format!(
            "{e}; paste the whole URL, starting with {redirect}"
        ))
    })?;
    Ok(Redirect {
        query: url.query_pairs().into_owned().collect(),
    })
}

/// The code in the redirect, once `state` matches and `iss` (RFC 9207)
/// names the issuer freshd asked: the forged or mixed-up redirect is
/// refused before anything else in it is believed.
fn check_redirect(
    got: &Redirect,
    state: &str,
    redirect: &str,
    endpoints: &Endpoints,
) -> Result<SecretString, LoginError> {
    if got.query.get("state").map(String::as_str) != Some(state) {
        return Err(LoginError::StateMismatch);
    }
    match (got.query.get("iss"), &endpoints.issuer) {
        (Some(iss), Some(expected)) if iss != expected => {
            return Err(LoginError::IssuerMismatch {
                expected: expected.clone(),
                got: iss.chars().filter(|c| !c.is_control()).take(200).collect(),
            });
        }
        (None, Some(expected)) if endpoints.iss_required => {
            return Err(LoginError::MissingIssuer(expected.clone()));
        }
        _ => {}
    }
    if let Some(error) = got.query.get("error") {
        let detail = got
            .query
            .get("error_description")
            .map(|d| format!(" ({})", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        let hint = if error == "access_denied" {
            "; you (or the provider) declined: run the login again and allow access"
        } else {
            ""
        };
        return Err(LoginError::Denied(format!("{error}{detail}{hint}")));
    }
    let code = got
        .query
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LoginError::NoCode(redirect.to_owned()))?;
    Ok(SecretString::from(code.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::endpoint::Lifetime;
    use super::*;
    use secrecy::ExposeSecret;

    fn redirect(pairs: &[(&str, &str)]) -> Redirect {
        Redirect {
            query: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn endpoints(issuer: Option<&str>, iss_required: bool) -> Endpoints {
        Endpoints {
            authorize_url: None,
            token_url: None,
            revocation_url: None,
            issuer: issuer.map(str::to_owned),
            iss_required,
            metadata: None,
        }
    }

    #[test]
    fn state_must_match() {
        let none = endpoints(None, false);
        let r = redirect(&[("code", "c"), ("state", "evil")]);
        assert!(matches!(
            check_redirect(&r, "good", "http://127.0.0.1:1/cb", &none),
            Err(LoginError::StateMismatch)
        ));
        let r = redirect(&[("code", "c"), ("state", "good")]);
        assert_eq!(
            check_redirect(&r, "good", "x", &none)
                .unwrap()
                .expose_secret(),
            "c"
        );
    }

    #[test]
    fn iss_must_name_the_issuer_when_sent_and_when_promised() {
        let issuer = "https://login.example.com";
        let optional = endpoints(Some(issuer), false);
        let required = endpoints(Some(issuer), true);
        let from = |iss: &str| redirect(&[("code", "c"), ("state", "s"), ("iss", iss)]);
        let e = check_redirect(&from("https://evil.example"), "s", "x", &optional).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the redirect says it comes from issuer \"https://evil.example\", not from \"https://login.example.com\" that freshd asked (RFC 9207: a mix-up or an attack); nothing was stored: check `issuer` and start the login again"
        );
        assert!(check_redirect(&from(issuer), "s", "x", &required).is_ok());
        let bare = redirect(&[("code", "c"), ("state", "s")]);
        assert!(check_redirect(&bare, "s", "x", &optional).is_ok());
        assert!(matches!(
            check_redirect(&bare, "s", "x", &required),
            Err(LoginError::MissingIssuer(_))
        ));
        // An error response is checked the same way before it is believed.
        let err = redirect(&[
            ("error", "access_denied"),
            ("state", "s"),
            ("iss", "https://evil.example"),
        ]);
        assert!(matches!(
            check_redirect(&err, "s", "x", &required),
            Err(LoginError::IssuerMismatch { .. })
        ));
    }

    #[test]
    fn access_denied_says_what_happened() {
        let r = redirect(&[("error", "access_denied"), ("state", "good")]);
        let e = check_redirect(&r, "good", "x", &endpoints(None, false)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the provider did not grant access: access_denied; you (or the provider) declined: run the login again and allow access"
        );
    }

    fn account(extra: &str) -> Account {
        let config = crate::config::Config::parse(
            &format!(
                "[accounts.a]\nclient_id = \"id\"\ntoken_url = \"https://i.example/t\"\n{extra}"
            ),
            std::path::Path::new("/x.toml"),
            false,
            crate::jobs::TYPES,
        )
        .unwrap();
        (*config.accounts["a"]).clone()
    }

    #[test]
    fn offline_access_asks_for_consent_unless_the_config_says_otherwise() {
        let acc = account("scopes = [\"openid\", \"offline_access\"]\n");
        assert_eq!(
            authorize_params(&acc),
            [("prompt".to_owned(), "consent".to_owned())]
        );
        let acc = account(
            "scopes = [\"openid\", \"offline_access\"]\nauthorize_params = { prompt = \"login consent\", resource = \"r\" }\n",
        );
        assert_eq!(
            authorize_params(&acc),
            [
                ("prompt".to_owned(), "login consent".to_owned()),
                ("resource".to_owned(), "r".to_owned())
            ]
        );
        let acc =
            account("scopes = [\"read\"]\nauthorize_params = { access_type = \"offline\" }\n");
        assert_eq!(
            authorize_params(&acc),
            [("access_type".to_owned(), "offline".to_owned())]
        );
    }

    #[test]
    fn a_missing_refresh_token_says_when_offline_access_was_not_granted() {
        let answer = |scope: Option<&str>| Tokens {
            access_token: SecretString::from("at"),
            lifetime: Lifetime::Unusable("none".into()),
            refresh_token: None,
            scope: scope.map(str::to_owned),
        };
        let acc = account("scopes = [\"openid\", \"offline_access\"]\n");
        let e = refresh_token_of(&acc, answer(Some("openid"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the provider did not grant offline access (it granted the scopes \"openid\", without offline_access), so it issued no refresh token; allow offline access on the consent page, and check that the client may use offline_access and the refresh_token grant"
        );
        assert!(matches!(
            refresh_token_of(&acc, answer(None)),
            Err(LoginError::NoRefreshToken)
        ));
        assert!(matches!(
            refresh_token_of(&account(""), answer(Some("openid"))),
            Err(LoginError::NoRefreshToken)
        ));
    }

    #[tokio::test]
    async fn a_secret_method_without_a_secret_stops_before_the_browser() {
        let acc = account(
            "redirect_uri = \"http://127.0.0.1:1/cb\"\nauthorize_url = \"http://127.0.0.1:1/a\"\ntoken_endpoint_auth_method = \"client_secret_post\"\n",
        );
        let options = LoginOptions {
            no_browser: true,
            paste: false,
            timeout: Duration::from_secs(1),
        };
        let e = login(&acc, None, reqwest::Client::new(), options, None)
            .await
            .unwrap_err();
        assert!(matches!(e, LoginError::NoClientSecret { .. }), "{e}");
        assert_eq!(e.exit_code(), 78);
    }

    #[test]
    fn the_headless_hint_names_paste_and_the_port_forward() {
        let hint = headless_hint("work", 8888);
        assert!(hint.contains("ssh -L 8888:127.0.0.1:8888 HOST"), "{hint}");
        assert!(hint.contains("freshd login work --paste"), "{hint}");
    }

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            html_escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }

    #[test]
    fn listens_only_on_the_loopback_address_of_the_redirect() {
        let at = |u: &str| loopback_addr(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            at("http://127.0.0.1:8888/callback"),
            Some("127.0.0.1:8888".parse().unwrap())
        );
        assert_eq!(
            at("http://[::1]:8888/cb"),
            Some("[::1]:8888".parse().unwrap())
        );
        assert_eq!(
            at("http://localhost:9000/cb"),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(at("https://example.com/cb"), None);
        assert_eq!(at("http://192.168.1.5:8888/cb"), None);
    }
}
