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
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::endpoint::{GrantRequest, HttpEndpoint, RefreshError, TokenEndpoint};
use crate::config::{Account, Grant};

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
        "the redirect carries no `code`; paste the whole URL the browser was sent to, starting with {0}"
    )]
    NoCode(String),
    #[error("cannot read the pasted URL: {0}")]
    Paste(String),
    #[error("the provider refused to exchange the code: {0}")]
    Exchange(RefreshError),
    #[error(
        "the provider answered without a refresh token, so freshd cannot keep this account fresh; check that the app may use the authorization code grant with refresh tokens"
    )]
    NoRefreshToken,
}

impl LoginError {
    /// 78 where the configuration must change; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoginError::Missing { .. } | LoginError::BadUrl { .. } | LoginError::NotNeeded(_) => 78,
            LoginError::Exchange(RefreshError::Rejected { .. }) => 78,
            _ => 1,
        }
    }
}

/// What the browser (or the pasted URL) brought back.
#[derive(Debug)]
struct Redirect {
    query: HashMap<String, String>,
}

/// Runs the whole login for `account`; returns the refresh token.
pub async fn login(
    account: &Account,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    options: LoginOptions,
) -> Result<SecretString, LoginError> {
    let name = account.name.as_str();
    if account.grant == Grant::ClientCredentials {
        return Err(LoginError::NotNeeded(name.to_owned()));
    }
    let missing = |key| LoginError::Missing {
        account: name.to_owned(),
        key,
    };
    let authorize = account
        .authorize_url
        .clone()
        .ok_or_else(|| missing("authorize_url"))?;
    let redirect = account
        .redirect_uri
        .clone()
        .ok_or_else(|| missing("redirect_uri"))?;
    let bad = |key, detail: String| LoginError::BadUrl {
        account: name.to_owned(),
        key,
        detail,
    };
    let client = BasicClient::new(ClientId::new(account.client_id.clone()))
        .set_auth_uri(AuthUrl::new(authorize).map_err(|e| bad("authorize_url", e.to_string()))?)
        .set_redirect_uri(
            RedirectUrl::new(redirect.clone()).map_err(|e| bad("redirect_uri", e.to_string()))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(account.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    let redirect_url =
        reqwest::Url::parse(&redirect).map_err(|e| bad("redirect_uri", e.to_string()))?;
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
    if listener.is_some() && !options.no_browser {
        open_browser(url.as_str());
    }
    let got = match listener {
        Some(l) => {
            eprintln!("Waiting for the browser to come back to {redirect} …");
            tokio::time::timeout(options.timeout, accept_redirect(l, redirect_url.path()))
                .await
                .map_err(|_| LoginError::Timeout(options.timeout))??
        }
        None => {
            if !options.paste {
                eprintln!(
                    "The redirect URI is not on this machine's loopback address, so freshd cannot catch it."
                );
            }
            read_pasted(&redirect).await?
        }
    };
    let code = check_redirect(&got, state.secret(), &redirect)?;
    let verifier = SecretString::from(verifier.secret().clone());
    let endpoint = HttpEndpoint::new(
        http,
        account.token_url.clone(),
        account.client_id.clone(),
        client_secret,
        account.scopes.clone(),
    );
    let tokens = endpoint
        .request(GrantRequest::AuthorizationCode {
            code: &code,
            verifier: &verifier,
            redirect_uri: &redirect,
        })
        .await
        .map_err(LoginError::Exchange)?;
    tokens.refresh_token.ok_or(LoginError::NoRefreshToken)
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

fn open_browser(url: &str) {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if opened.is_err() {
        eprintln!("(No browser could be opened here; copy the URL into one.)");
    }
}

/// Serves the listener until a request for `path` arrives.
async fn accept_redirect(listener: TcpListener, path: &str) -> Result<Redirect, LoginError> {
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
        let (title, text) = if query.contains_key("code") {
            (
                "Authorized",
                "freshd received the authorization. You can close this tab.",
            )
        } else {
            (
                "Not authorized",
                "freshd did not receive an authorization; see the terminal.",
            )
        };
        let body =
            format!("<!doctype html><title>freshd: {title}</title><h1>{title}</h1><p>{text}</p>\n");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(body.as_bytes()).await;
        let _ = write.shutdown().await;
        return Ok(Redirect { query });
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

fn check_redirect(got: &Redirect, state: &str, redirect: &str) -> Result<SecretString, LoginError> {
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
    if got.query.get("state").map(String::as_str) != Some(state) {
        return Err(LoginError::StateMismatch);
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

    #[test]
    fn state_must_match() {
        let r = redirect(&[("code", "c"), ("state", "evil")]);
        assert!(matches!(
            check_redirect(&r, "good", "http://127.0.0.1:1/cb"),
            Err(LoginError::StateMismatch)
        ));
        let r = redirect(&[("code", "c"), ("state", "good")]);
        assert_eq!(
            check_redirect(&r, "good", "x").unwrap().expose_secret(),
            "c"
        );
    }

    #[test]
    fn access_denied_says_what_happened() {
        let r = redirect(&[("error", "access_denied"), ("state", "good")]);
        let e = check_redirect(&r, "good", "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the provider did not grant access: access_denied; you (or the provider) declined: run the login again and allow access"
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
