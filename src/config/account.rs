//! `[accounts.NAME]`: an OAuth client at a provider, with the provider's
//! preset URLs filled in. [`Account::same_as`] says whether a reload may
//! keep an account's tokens: it is the derived comparison of every field
//! but `notify`, so a field added later is compared without anyone
//! remembering to.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::choices;

choices! {
    /// A provider whose URLs freshd knows.
    pub enum Provider {
        Spotify = "spotify",
        Todoist = "todoist",
    }
}

impl Provider {
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

    pub(super) fn api_base_url(self) -> &'static str {
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
    pub(super) fn refresh_token_lifetime(self) -> Option<Duration> {
        match self {
            Self::Spotify => Some(Duration::from_secs(182 * 24 * 3600)),
            Self::Todoist => None,
        }
    }
}

choices! {
    /// How an account gets its access tokens.
    pub enum Grant {
        /// A refresh token from a one-time authorization (`freshd login`).
        AuthorizationCode = "authorization_code",
        /// The client's own credentials; no refresh token, no user.
        ClientCredentials = "client_credentials",
    }
}

choices! {
    /// How the client proves who it is to the token and revocation endpoints
    /// (`token_endpoint_auth_method`, with the names of RFC 8414 and OIDC).
    pub enum AuthMethod {
        /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
        ClientSecretBasic = "client_secret_basic",
        /// `client_id` and `client_secret` as form fields.
        ClientSecretPost = "client_secret_post",
        /// A public client: `client_id` in the form, no secret.
        None = "none",
    }
}

/// `[accounts.NAME]`, with preset URLs filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub provider: Option<Provider>,
    pub client_id: String,
    /// A literal secret from the file (only allowed when the file is 0600);
    /// otherwise the secret store is asked for `NAME/client_secret`.
    pub client_secret: Option<ClientSecret>,
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
    /// a reload keeps an account's token manager when this holds. Every
    /// field counts but `notify`: changing who is told keeps the tokens.
    pub fn same_as(&self, other: &Account) -> bool {
        let without_notify = |a: &Account| Account {
            notify: None,
            ..a.clone()
        };
        without_notify(self) == without_notify(other)
    }

    /// The client secret from the file, for the token endpoint.
    pub fn client_secret(&self) -> Option<SecretString> {
        self.client_secret.as_ref().map(ClientSecret::secret)
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

/// A client secret written in the config. Two are equal when their
/// secrets are (so that a changed secret is a changed account), and
/// `Debug` never shows it.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// The secret, for the token endpoint.
    pub fn secret(&self) -> SecretString {
        self.0.clone()
    }
}

impl From<SecretString> for ClientSecret {
    fn from(secret: SecretString) -> Self {
        ClientSecret(secret)
    }
}

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for ClientSecret {}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}
