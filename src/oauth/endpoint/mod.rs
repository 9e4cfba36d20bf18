//! The provider's token endpoint: one request, and what its answer means.
//!
//! Classification follows DESIGN §5: network errors, 408, 429 and 5xx (and
//! answers that are not a token) are [`RefreshError::Transient`] and worth
//! retrying later; `invalid_grant` is [`RefreshError::Revoked`] (a person
//! must log in again); `invalid_client` and the other OAuth errors are
//! [`RefreshError::Rejected`] (the configuration is wrong). No message
//! built here contains a token or secret: the provider's own description is
//! scrubbed of every secret freshd sent.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::discovery::{Discovery, Endpoints};
use crate::config::{Account, AuthMethod};
pub use crate::http::describe_reqwest;

mod answer;

use answer::scrub;
pub use answer::{classify, lifetime, retry_after};

/// What a successful token request gave.
pub struct Tokens {
    pub access_token: SecretString,
    /// How long the access token lives, as far as the answer says.
    pub lifetime: Lifetime,
    /// A new refresh token, when the provider rotates them.
    pub refresh_token: Option<SecretString>,
    /// The scopes granted, when the provider says (RFC 6749 §5.1).
    pub scope: Option<String>,
}

/// The `expires_in` of a token answer, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifetime {
    /// A usable number of seconds (a number, or a string of one).
    Given(Duration),
    /// Missing, not a number, or absurdly long: the token manager assumes
    /// its default lifetime, so the token still gets refreshed. The text
    /// says what the provider sent.
    Unusable(String),
    /// Zero, negative or shorter than [`MIN_LIFETIME`], or an answer with
    /// no usable access token: dead on arrival, a provider fault. Any
    /// rotated refresh token in it is still kept.
    Expired(String),
}

/// The shortest lifetime used: a token that lives less than this cannot be
/// handed to anyone in time, and refreshing it ahead would be a hot loop.
pub const MIN_LIFETIME: Duration = Duration::from_secs(2);

/// The longest `Retry-After` honoured: Spotify's can be hours; one of years
/// (or one that overflows) would silence an account for good.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The longest `expires_in` believed. Past it (`1e12`, say) the number is
/// more likely a timestamp or a bug than a lifetime, and believing it would
/// mean never refreshing.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The most of a token endpoint's answer that is read (DESIGN §5): real
/// answers are under 4 KiB; a provider that sends gigabytes must not cost
/// gigabytes of memory.
pub const MAX_ANSWER: usize = 1024 * 1024;

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"[REDACTED]")
            .field("lifetime", &self.lifetime)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// The grants freshd asks for.
#[derive(Debug)]
pub enum GrantRequest<'a> {
    RefreshToken(&'a SecretString),
    ClientCredentials,
    AuthorizationCode {
        code: &'a SecretString,
        verifier: &'a SecretString,
        redirect_uri: &'a str,
    },
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Worth trying again later; `retry_after` is the provider's wish.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The refresh token is no good: a person must authorize again.
    #[error("{reason}")]
    Revoked { reason: String },
    /// The provider refused the client itself, or the token URL is not a
    /// token endpoint (a redirect, 404, 405): the configuration is wrong and
    /// a person must fix it. `reason` is a whole sentence saying what to do.
    #[error("{reason}")]
    Rejected { reason: String },
    /// The request was sent but no answer came within the timeout: the
    /// provider may have rotated the refresh token in an answer that never
    /// arrived.
    #[error("{reason}")]
    Unanswered { reason: String },
}

/// Something that answers token requests: the HTTP endpoint, or a scripted
/// one in unit tests that run on tokio's paused clock.
pub trait TokenEndpoint: Send + Sync + fmt::Debug {
    fn request<'a>(
        &'a self,
        grant: GrantRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Tokens, RefreshError>> + Send + 'a>>;
}

/// How long one token request may take. Providers answer in well under a
/// second; 30 s rides out a slow network without letting a hung server hold
/// every caller of `freshd token` for minutes.
pub const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest error description kept from a provider's answer.
const MAX_DESCRIPTION: usize = 200;

/// A token endpoint over HTTP.
pub struct HttpEndpoint {
    http: reqwest::Client,
    discovery: Discovery,
    client_id: String,
    client_secret: Option<SecretString>,
    auth: AuthMethod,
    scopes: Vec<String>,
    token_params: Vec<(String, String)>,
}

impl fmt::Debug for HttpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEndpoint")
            .field("discovery", &self.discovery)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl HttpEndpoint {
    /// A token endpoint at a fixed URL, with the default client
    /// authentication (Basic with a secret, else `none`) and no extra
    /// parameters: for tools and benchmarks that have no account.
    pub fn new(
        http: reqwest::Client,
        url: String,
        client_id: String,
        client_secret: Option<SecretString>,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            http,
            discovery: Discovery::fixed(url),
            client_id,
            auth: if client_secret.is_some() {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            },
            client_secret,
            scopes,
            token_params: Vec::new(),
        }
    }

    /// The endpoint of `account`, authenticating with `client_secret`
    /// (from the file or the store) as the account says; `state_dir` holds
    /// the cached metadata of an account with `issuer`.
    pub fn for_account(
        http: reqwest::Client,
        account: &Account,
        client_secret: Option<SecretString>,
        state_dir: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            http,
            discovery: Discovery::new(account, state_dir),
            client_id: account.client_id.clone(),
            auth: account.auth_method(client_secret.is_some()),
            client_secret,
            scopes: account.scopes.clone(),
            token_params: account.token_params.clone().into_iter().collect(),
        }
    }

    /// The account's endpoints, discovered from its issuer when it has one.
    pub async fn endpoints(&self) -> Result<Endpoints, RefreshError> {
        Ok(self.discovery.endpoints(&self.http).await?)
    }

    /// Adds the client's credentials to a request, as `auth` says.
    fn authenticate<'a>(
        &'a self,
        req: reqwest::RequestBuilder,
        form: &mut Vec<(&'a str, &'a str)>,
        sent: &mut Vec<&'a str>,
    ) -> Result<reqwest::RequestBuilder, RefreshError> {
        match (self.auth, &self.client_secret) {
            (AuthMethod::ClientSecretBasic, Some(secret)) => {
                sent.push(secret.expose_secret());
                Ok(req.header(
                    reqwest::header::AUTHORIZATION,
                    basic_credentials(&self.client_id, secret),
                ))
            }
            (AuthMethod::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose_secret()));
                sent.push(secret.expose_secret());
                Ok(req)
            }
            // Public clients (PKCE) name themselves in the body.
            (AuthMethod::None, _) => {
                form.push(("client_id", &self.client_id));
                Ok(req)
            }
            (method, None) => Err(RefreshError::Rejected {
                reason: format!(
                    "token_endpoint_auth_method = \"{}\" needs a client secret, and there is none: store it as the account's client_secret, or use \"none\" for a public client",
                    method.as_str()
                ),
            }),
        }
    }

    /// POSTs `form` to `url`, authenticated as the account's method says,
    /// within [`TOKEN_REQUEST_TIMEOUT`]. What was sent that is secret is
    /// added to `sent`, for scrubbing the answer.
    async fn post_form<'a>(
        &'a self,
        url: &str,
        mut form: Vec<(&'a str, &'a str)>,
        sent: &mut Vec<&'a str>,
    ) -> Result<reqwest::Response, RefreshError> {
        let req = self.http.post(url).timeout(TOKEN_REQUEST_TIMEOUT);
        let req = self.authenticate(req, &mut form, sent)?;
        let body = serde_urlencoded::to_string(&form).map_err(|e| RefreshError::Rejected {
            reason: format!("cannot encode the request: {e}"),
        })?;
        req.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| unsent_or_unanswered(&e))
    }

    async fn send(&self, grant: GrantRequest<'_>) -> Result<Tokens, RefreshError> {
        let endpoints = self.endpoints().await?;
        let Some((url, _)) = endpoints.token_url else {
            return Err(RefreshError::Rejected {
                reason: "the issuer's metadata names no token_endpoint; set token_url".into(),
            });
        };
        let scope = self.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = Vec::new();
        let mut sent: Vec<&str> = Vec::new();
        match &grant {
            GrantRequest::RefreshToken(rt) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", rt.expose_secret()));
                sent.push(rt.expose_secret());
            }
            GrantRequest::ClientCredentials => {
                form.push(("grant_type", "client_credentials"));
                if !scope.is_empty() {
                    form.push(("scope", &scope));
                }
            }
            GrantRequest::AuthorizationCode {
                code,
                verifier,
                redirect_uri,
            } => {
                form.push(("grant_type", "authorization_code"));
                form.push(("code", code.expose_secret()));
                form.push(("redirect_uri", redirect_uri));
                form.push(("code_verifier", verifier.expose_secret()));
                sent.push(code.expose_secret());
                sent.push(verifier.expose_secret());
            }
        }
        for (k, v) in &self.token_params {
            form.push((k, v));
        }
        let resp = self.post_form(&url, form, &mut sent).await?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(redirected(status.as_u16(), resp.headers(), &url, &sent));
        }
        let retry_after = retry_after(resp.headers());
        let bytes = read_capped(resp).await?;
        classify(status.as_u16(), retry_after, &bytes, &sent)
    }
}

/// What revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The server accepted it (RFC 7009 §2.2: also when the token was
    /// already invalid).
    Revoked { url: String },
    /// The provider has no revocation endpoint that freshd knows of.
    NoEndpoint,
}

impl HttpEndpoint {
    /// Revokes `token` at the revocation endpoint (RFC 7009),
    /// authenticating as for token requests; `hint` is its
    /// `token_type_hint` (`refresh_token` or `access_token`).
    pub async fn revoke(
        &self,
        token: &SecretString,
        hint: &str,
    ) -> Result<Revocation, RefreshError> {
        let endpoints = self.endpoints().await?;
        let Some((url, _)) = endpoints.revocation_url else {
            return Ok(Revocation::NoEndpoint);
        };
        let form: Vec<(&str, &str)> =
            vec![("token", token.expose_secret()), ("token_type_hint", hint)];
        let mut sent = vec![token.expose_secret()];
        let resp = self.post_form(&url, form, &mut sent).await?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(Revocation::Revoked { url });
        }
        if resp.status().is_redirection() {
            return Err(RefreshError::Rejected {
                reason: format!(
                    "the revocation endpoint {url} answered {status}, a redirect; freshd never follows it (it would send the token there): check revocation_url or the issuer's metadata"
                ),
            });
        }
        let retry_after = retry_after(resp.headers());
        let bytes = read_capped(resp).await.unwrap_or_default();
        match classify(status, retry_after, &bytes, &sent) {
            Err(RefreshError::Transient { reason, .. }) => Err(RefreshError::Transient {
                reason: format!(
                    "revocation at {url}: {}",
                    reason.replace("token endpoint", "revocation endpoint")
                ),
                retry_after,
            }),
            Err(e) => Err(RefreshError::Rejected {
                reason: format!("the revocation endpoint {url} refused: {e}"),
            }),
            Ok(_) => Err(RefreshError::Transient {
                reason: format!("the revocation endpoint {url} answered {status}"),
                retry_after,
            }),
        }
    }
}

impl TokenEndpoint for HttpEndpoint {
    fn request<'a>(
        &'a self,
        grant: GrantRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Tokens, RefreshError>> + Send + 'a>> {
        Box::pin(self.send(grant))
    }
}

/// The `Authorization` header of HTTP Basic client authentication: id and
/// secret each form-urlencoded before base64 (RFC 6749 §2.3.1), so that a
/// secret with `:`, `%`, `+` or a space means what it says. Marked
/// sensitive so that no debug output shows it.
pub fn basic_credentials(client_id: &str, secret: &SecretString) -> reqwest::header::HeaderValue {
    let encode =
        |s: &str| oauth2::url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose_secret()));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    // Base64 and "Basic " are always a valid header value.
    let mut header = reqwest::header::HeaderValue::from_str(&value)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Basic"));
    header.set_sensitive(true);
    header
}

/// A failed send: a timeout once the connection stood means the request
/// probably reached the provider, which may have rotated the refresh token
/// in the answer that never came.
fn unsent_or_unanswered(e: &reqwest::Error) -> RefreshError {
    let reason = describe_reqwest(e);
    if e.is_timeout() && !e.is_connect() {
        RefreshError::Unanswered { reason }
    } else {
        RefreshError::Transient {
            reason,
            retry_after: None,
        }
    }
}

/// A 3xx from the token endpoint. Token requests never follow redirects:
/// on 307/308 the form, refresh token included, would be sent to wherever
/// `Location` points, and after a 302 freshd would trust whatever server it
/// landed on. A moved token URL is a configuration matter.
fn redirected(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    url: &str,
    sent: &[&str],
) -> RefreshError {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| {
            // The query of a URL could carry a secret; the place is enough.
            let l = l.split(['?', '#']).next().unwrap_or_default();
            scrub(l, sent)
        });
    let to = location.map_or_else(|| "without a Location".to_owned(), |l| format!("to {l}"));
    RefreshError::Rejected {
        reason: format!(
            "the token endpoint {url} answered {status}, a redirect {to}; freshd never follows a token endpoint's redirect (it would send the refresh token there): check token_url in the config, then `freshd reload`"
        ),
    }
}

/// The answer's body, refused past [`MAX_ANSWER`] without reading the rest.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, RefreshError> {
    let too_big = || RefreshError::Transient {
        reason: format!(
            "the token endpoint's answer is larger than {} KiB; that is not a token answer",
            MAX_ANSWER / 1024
        ),
        retry_after: None,
    };
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                let reason = format!(
                    "the token endpoint's answer broke off: {}",
                    describe_reqwest(&e)
                );
                // The provider answered, so it may have rotated the token.
                return Err(RefreshError::Unanswered { reason });
            }
        }
    }
}

#[cfg(test)]
mod tests;
