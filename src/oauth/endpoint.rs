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
use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::discovery::{Discovery, Endpoints};
use crate::config::{Account, AuthMethod};
pub use crate::http::describe_reqwest;

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

/// `Retry-After` in seconds (the HTTP-date form is read as "a minute").
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER)),
        Err(_) => Some(Duration::from_secs(60)),
    }
}

/// A token answer's fields, each taken as whatever JSON it is, so that one
/// field of the wrong type does not hide a rotated refresh token.
#[derive(Deserialize)]
struct RawTokens {
    access_token: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<serde_json::Value>,
    scope: Option<serde_json::Value>,
}

fn text(v: Option<serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// What a token endpoint's answer means. Public for the fuzz and unit tests.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    sent: &[&str],
) -> Result<Tokens, RefreshError> {
    if status == 200 {
        return parse_tokens(body);
    }
    let transient = |what: String| RefreshError::Transient {
        reason: what,
        retry_after,
    };
    if (300..400).contains(&status) || status == 404 || status == 405 {
        let what = match status {
            404 => "404 Not Found".to_owned(),
            405 => "405 Method Not Allowed".to_owned(),
            s => format!("{s}, a redirect"),
        };
        return Err(RefreshError::Rejected {
            reason: format!(
                "the token endpoint answered {what}: the token URL is wrong; check token_url (or issuer) in the config, then `freshd reload`"
            ),
        });
    }
    if status == 408 || status == 429 || status >= 500 {
        let what = match status {
            408 => "the token endpoint timed out (408)".to_owned(),
            429 => "the token endpoint is rate limiting (429)".to_owned(),
            s => format!("the token endpoint failed ({s})"),
        };
        return Err(transient(what));
    }
    // RFC 6749 §5.2 errors, typed by the oauth2 crate.
    let Ok(parsed) = serde_json::from_slice::<BasicErrorResponse>(body) else {
        return Err(transient(format!(
            "the token endpoint answered {status} without an OAuth error"
        )));
    };
    let code = scrub(parsed.error().as_ref(), sent);
    let description = parsed
        .error_description()
        .map(|d| format!(": {}", scrub(d, sent)))
        .unwrap_or_default();
    let reason = format!("{code}{description}");
    match parsed.error() {
        BasicErrorResponseType::InvalidGrant => Err(RefreshError::Revoked { reason }),
        BasicErrorResponseType::InvalidClient
        | BasicErrorResponseType::UnauthorizedClient
        | BasicErrorResponseType::UnsupportedGrantType
        | BasicErrorResponseType::InvalidScope
        | BasicErrorResponseType::InvalidRequest => Err(RefreshError::Rejected {
            reason: format!(
                "the provider refused the client ({reason}); check client_id, client_secret and the token URL in the config"
            ),
        }),
        BasicErrorResponseType::Extension(_) => Err(transient(format!(
            "the token endpoint answered {status} {reason}"
        ))),
    }
}

fn parse_tokens(body: &[u8]) -> Result<Tokens, RefreshError> {
    let garbage = |why: &str| RefreshError::Transient {
        reason: format!("the token endpoint answered 200 but {why}"),
        retry_after: None,
    };
    let raw: RawTokens =
        serde_json::from_slice(body).map_err(|_| garbage("not with a JSON token response"))?;
    let refresh_token = text(raw.refresh_token).map(SecretString::from);
    let access = text(raw.access_token);
    let lifetime = match &access {
        Some(_) => lifetime(raw.expires_in.as_ref()),
        None if refresh_token.is_some() => {
            // The answer is no good, but the provider may have rotated the
            // refresh token in it: it goes on, so that is kept.
            Lifetime::Expired("no usable access_token".into())
        }
        None => return Err(garbage("without an access_token")),
    };
    Ok(Tokens {
        access_token: SecretString::from(access.unwrap_or_default()),
        lifetime,
        refresh_token,
        scope: raw.scope.and_then(|s| s.as_str().map(str::to_owned)),
    })
}

/// What an answer's `expires_in` means (RFC 6749 §5.1: seconds, a number;
/// numeric strings are common enough to accept).
pub fn lifetime(expires_in: Option<&serde_json::Value>) -> Lifetime {
    use serde_json::Value;
    let seconds = match expires_in {
        None | Some(Value::Null) => return Lifetime::Unusable("no expires_in".into()),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let shown = || {
        let text = expires_in.map(Value::to_string).unwrap_or_default();
        format!(
            "expires_in {}",
            scrub(&text, &[]).chars().take(40).collect::<String>()
        )
    };
    match seconds {
        Some(s) if s.is_finite() && s <= 0.0 => Lifetime::Expired(shown()),
        Some(s) if s.is_finite() && s < MIN_LIFETIME.as_secs_f64() => Lifetime::Expired(format!(
            "{}, shorter than {} s",
            shown(),
            MIN_LIFETIME.as_secs()
        )),
        Some(s) if s.is_finite() && s <= MAX_LIFETIME.as_secs_f64() => {
            Lifetime::Given(Duration::from_secs_f64(s))
        }
        _ => Lifetime::Unusable(shown()),
    }
}

/// `text` cut to a sane length, with every secret that was sent replaced.
fn scrub(text: &str, sent: &[&str]) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect();
    for s in sent.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "[REDACTED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_and_kept_refresh_tokens() {
        let t = classify(
            200,
            None,
            br#"{"access_token":"a","expires_in":3600,"refresh_token":"r2"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(t.lifetime, Lifetime::Given(Duration::from_secs(3600)));
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "r2");
        let t = classify(
            200,
            None,
            br#"{"access_token":"a","expires_in":"60","refresh_token":null}"#,
            &[],
        )
        .unwrap();
        assert_eq!(t.lifetime, Lifetime::Given(Duration::from_secs(60)));
        assert!(t.refresh_token.is_none());
    }

    #[test]
    fn errors_are_classified() {
        let revoked = classify(
            400,
            None,
            br#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#,
            &[],
        );
        assert_eq!(
            revoked.unwrap_err(),
            RefreshError::Revoked {
                reason: "invalid_grant: Refresh token revoked".into()
            }
        );
        let client = classify(401, None, br#"{"error":"invalid_client"}"#, &[]);
        assert!(matches!(client.unwrap_err(), RefreshError::Rejected { .. }));
        let limited = classify(429, Some(Duration::from_secs(3600)), b"", &[]);
        assert_eq!(
            limited.unwrap_err(),
            RefreshError::Transient {
                reason: "the token endpoint is rate limiting (429)".into(),
                retry_after: Some(Duration::from_secs(3600))
            }
        );
        assert!(matches!(
            classify(503, None, b"<html>", &[]).unwrap_err(),
            RefreshError::Transient { .. }
        ));
        assert!(matches!(
            classify(200, None, b"<html>oops</html>", &[]).unwrap_err(),
            RefreshError::Transient { .. }
        ));
        assert!(matches!(
            classify(400, None, b"not json", &[]).unwrap_err(),
            RefreshError::Transient { .. }
        ));
    }

    #[test]
    fn provider_descriptions_are_scrubbed_of_what_was_sent() {
        let body = br#"{"error":"invalid_grant","error_description":"token rt-SECRET-1 revoked"}"#;
        let err = classify(400, None, body, &["rt-SECRET-1"]).unwrap_err();
        assert_eq!(err.to_string(), "invalid_grant: token [REDACTED] revoked");
    }

    /// One HTTP request to a one-shot server on 127.0.0.1, answered with a
    /// token; its head and body as the server saw them.
    async fn capture(extra: &str, secret: Option<&str>) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let answer =
                            r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#;
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        s.write_all(resp.as_bytes()).await.unwrap();
                        return (head.to_owned(), body.to_owned());
                    }
                }
            }
        });
        let config = crate::config::Config::parse(
            &format!("[accounts.a]\nclient_id = \"my id\"\ntoken_url = \"{url}\"\n{extra}"),
            std::path::Path::new("/x.toml"),
            false,
            crate::jobs::TYPES,
        )
        .unwrap();
        let endpoint = HttpEndpoint::for_account(
            reqwest::Client::new(),
            &config.accounts["a"],
            secret.map(SecretString::from),
            None,
        );
        let rt = SecretString::from("rt-1");
        endpoint
            .request(GrantRequest::RefreshToken(&rt))
            .await
            .unwrap();
        server.await.unwrap()
    }

    const HARD_SECRET: &str = "a+b%c:d e";

    #[tokio::test]
    async fn basic_credentials_are_form_urlencoded_first() {
        let (head, body) = capture(
            "token_params = { resource = \"https://api.example/\" }\n",
            Some(HARD_SECRET),
        )
        .await;
        let header = head
            .lines()
            .find_map(|l| l.strip_prefix("authorization: Basic "))
            .expect(&head);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+id:a%2Bb%25c%3Ad+e");
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["grant_type", "refresh_token", "resource"]);
        assert_eq!(form[2].1, "https://api.example/");
        assert!(head.starts_with("POST /token/ "), "{head}");
    }

    #[tokio::test]
    async fn client_secret_post_sends_the_secret_as_form_fields() {
        let (head, body) = capture(
            "token_endpoint_auth_method = \"client_secret_post\"\n",
            Some(HARD_SECRET),
        )
        .await;
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "{head}"
        );
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(&body).unwrap();
        assert_eq!(form["client_id"], "my id");
        assert_eq!(form["client_secret"], HARD_SECRET);
    }

    #[tokio::test]
    async fn public_clients_send_only_their_id() {
        let (head, body) =
            capture("token_endpoint_auth_method = \"none\"\n", Some(HARD_SECRET)).await;
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "{head}"
        );
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(&body).unwrap();
        assert_eq!(form["client_id"], "my id");
        assert!(!form.contains_key("client_secret"));
        let (head, _) = capture("", None).await;
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_secret_method_without_a_secret_is_a_configuration_error() {
        let config = crate::config::Config::parse(
            "[accounts.a]\nclient_id = \"id\"\ntoken_url = \"http://127.0.0.1:9/t\"\ntoken_endpoint_auth_method = \"client_secret_basic\"\n",
            std::path::Path::new("/x.toml"),
            false, crate::jobs::TYPES,
        )
        .unwrap();
        let endpoint =
            HttpEndpoint::for_account(reqwest::Client::new(), &config.accounts["a"], None, None);
        let err = endpoint
            .request(GrantRequest::ClientCredentials)
            .await
            .unwrap_err();
        assert!(matches!(err, RefreshError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains("needs a client secret"), "{err}");
    }

    #[test]
    fn too_short_lifetimes_and_missing_access_tokens_are_dead_on_arrival() {
        use serde_json::json;
        for short in [json!(0.001), json!(0.5), json!(1), json!("1.9")] {
            assert!(
                matches!(lifetime(Some(&short)), Lifetime::Expired(_)),
                "{short}"
            );
        }
        assert_eq!(
            lifetime(Some(&json!(2))),
            Lifetime::Given(Duration::from_secs(2))
        );
        let t = classify(
            200,
            None,
            br#"{"access_token":12345,"refresh_token":"rt-2"}"#,
            &[],
        )
        .unwrap();
        assert!(matches!(t.lifetime, Lifetime::Expired(_)));
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-2");
        assert!(classify(200, None, br#"{"access_token":12345}"#, &[]).is_err());
    }

    #[test]
    fn a_redirect_location_is_scrubbed_of_what_was_sent() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LOCATION,
            "http://127.0.0.1:9/moved/rt-SECRET-1?x=rt-SECRET-1"
                .parse()
                .unwrap(),
        );
        let err = redirected(302, &headers, "http://127.0.0.1:8/token", &["rt-SECRET-1"]);
        assert!(!err.to_string().contains("rt-SECRET-1"), "{err}");
        assert!(
            err.to_string()
                .contains("to http://127.0.0.1:9/moved/[REDACTED]"),
            "{err}"
        );
    }

    #[test]
    fn lifetimes_are_judged() {
        use serde_json::json;
        let l = |v: serde_json::Value| lifetime(Some(&v));
        assert_eq!(l(json!(3600)), Lifetime::Given(Duration::from_secs(3600)));
        assert_eq!(l(json!("3600")), Lifetime::Given(Duration::from_secs(3600)));
        assert_eq!(l(json!(" 60 ")), Lifetime::Given(Duration::from_secs(60)));
        assert!(matches!(l(json!(0)), Lifetime::Expired(_)));
        assert!(matches!(l(json!(-5)), Lifetime::Expired(_)));
        assert!(matches!(l(json!("abc")), Lifetime::Unusable(_)));
        assert!(matches!(l(json!("3600s")), Lifetime::Unusable(_)));
        assert!(matches!(l(json!(1e12)), Lifetime::Unusable(_)));
        assert!(matches!(l(json!([1])), Lifetime::Unusable(_)));
        assert!(matches!(
            lifetime(Some(&serde_json::Value::Null)),
            Lifetime::Unusable(_)
        ));
        assert!(matches!(lifetime(None), Lifetime::Unusable(_)));
    }

    #[test]
    fn a_wrong_token_url_is_a_configuration_error() {
        for status in [301, 302, 307, 308, 404, 405] {
            let err = classify(status, None, b"", &[]).unwrap_err();
            let RefreshError::Rejected { reason } = err else {
                panic!("{status}: {err:?}");
            };
            assert!(reason.contains("check token_url"), "{reason}");
        }
    }

    /// A one-shot HTTP server: answers every connection with `answer` and
    /// counts the requests it got.
    async fn server(answer: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (url, hits)
    }

    fn endpoint(url: String) -> HttpEndpoint {
        HttpEndpoint::new(
            crate::http::token_client().unwrap(),
            url,
            "id".into(),
            Some(SecretString::from("client-secret")),
            vec![],
        )
    }

    #[tokio::test]
    async fn a_token_request_never_follows_a_redirect() {
        let (elsewhere, hits) = server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 55\r\n\r\n{\"access_token\":\"evil\",\"refresh_token\":\"evil-refresh\"}".into(),
        )
        .await;
        for status in [302, 307, 308] {
            let (url, _) = server(format!(
                "HTTP/1.1 {status} Moved\r\nlocation: {elsewhere}/token?x=1\r\ncontent-length: 0\r\n\r\n"
            ))
            .await;
            let rt = SecretString::from("rt-secret");
            let err = endpoint(format!("{url}/token"))
                .request(GrantRequest::RefreshToken(&rt))
                .await
                .unwrap_err();
            let RefreshError::Rejected { reason } = &err else {
                panic!("{err:?}")
            };
            assert!(
                reason.contains(&format!("to {elsewhere}/token")),
                "{reason}"
            );
            assert!(!reason.contains("x=1"), "{reason}");
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_huge_token_answer_is_refused_without_reading_it_all() {
        let body = "x".repeat(MAX_ANSWER + 1);
        let (url, _) = server(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{body}"
        ))
        .await;
        let rt = SecretString::from("rt-secret");
        let err = endpoint(url)
            .request(GrantRequest::RefreshToken(&rt))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");
    }
}
