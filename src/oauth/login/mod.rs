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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::SecretString;

use super::endpoint::{GrantRequest, HttpEndpoint, RefreshError, TokenEndpoint, Tokens};
use crate::config::{Account, AuthMethod, Grant};

mod redirect;

use redirect::{Browser, check_redirect, receive};

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
        exchange(account, &endpoint, &code, &verifier, &redirect).await
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

/// Exchanges the authorization code for tokens; the refresh token, or why
/// there is none.
async fn exchange(
    account: &Account,
    endpoint: &HttpEndpoint,
    code: &SecretString,
    verifier: &SecretString,
    redirect: &str,
) -> Result<SecretString, LoginError> {
    let tokens = endpoint
        .request(GrantRequest::AuthorizationCode {
            code,
            verifier,
            redirect_uri: redirect,
        })
        .await
        .map_err(LoginError::Exchange)?;
    refresh_token_of(account, tokens)
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

#[cfg(test)]
mod tests;
