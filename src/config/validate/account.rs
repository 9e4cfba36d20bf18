//! `[accounts.NAME]`: the client, the provider's URLs (a preset's, or as
//! written, or left to issuer discovery), and the extra parameters a
//! provider may need.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use toml::Spanned;

use super::values::Ctx;
use crate::config::raw::RawAccount;
use crate::config::{Account, AuthMethod, Grant, Provider};

/// Default for `refresh_before_expiry`: five minutes leaves room for a few
/// retries of a failing refresh while the old token still works.
const DEFAULT_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

pub(super) fn account(
    cx: &mut Ctx<'_>,
    name: &Spanned<String>,
    raw: &Spanned<RawAccount>,
    private: bool,
) -> Option<Account> {
    let n = name.get_ref();
    let key = |k: &str| format!("accounts.{n}.{k}");
    let ok_name = cx.name(name, "accounts", "account");
    let r = raw.get_ref();
    let provider = match &r.provider {
        None => None,
        Some(p) => Some(provider(cx, p, &key("provider"))?),
    };
    let client_id = client_id(cx, raw, &key("client_id"));
    if let Some(secret) = &r.client_secret
        && !private
    {
        literal_secret_problem(cx, n, secret);
    }
    let grant = r
        .grant
        .as_ref()
        .map_or(Some(Grant::AuthorizationCode), |g| {
            cx.one_of(g, &key("grant"), Grant::CHOICES)
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
    let urls = urls(cx, n, raw, provider);
    let requests = requests(cx, n, r, provider);
    if !ok_name {
        return None;
    }
    let (urls, requests) = (urls?, requests?);
    let client_secret = r.client_secret.as_ref();
    Some(Account {
        notify: requests.notify,
        name: n.clone(),
        provider,
        client_id: client_id?,
        client_secret: client_secret.map(|s| SecretString::from(s.get_ref().clone()).into()),
        scopes: r.scopes.clone(),
        redirect_uri: requests.redirect_uri,
        grant: grant?,
        refresh_before_expiry: refresh_before_expiry?,
        authorize_url: urls.authorize,
        token_url: urls.token,
        revocation_url: urls.revocation,
        issuer: urls.issuer,
        api_base_url: urls.api_base,
        refresh_token_lifetime: refresh_token_lifetime?,
        token_endpoint_auth_method: requests.auth_method,
        authorize_params: requests.authorize_params,
        token_params: requests.token_params,
    })
}

fn literal_secret_problem(cx: &mut Ctx<'_>, n: &str, secret: &Spanned<String>) {
    cx.problem(
        secret.span(),
        &format!("accounts.{n}.client_secret"),
        format!(
            "a literal client secret needs a config file readable by its owner only: run `chmod 600` on it, or remove the key and store the secret with `secret-tool store --label='freshd {n} client secret' service freshd username {n}/client_secret`"
        ),
    );
}

fn provider(cx: &mut Ctx<'_>, p: &Spanned<String>, key: &str) -> Option<Provider> {
    let provider = Provider::from_name(p.get_ref());
    if provider.is_none() {
        cx.problem(
            p.span(),
            key,
            format!(
                "\"{}\" is not a known provider; use \"spotify\" or \"todoist\", or leave `provider` out and give `token_url` (and `authorize_url`, `api_base_url`)",
                p.get_ref()
            ),
        );
    }
    provider
}

fn client_id(cx: &mut Ctx<'_>, raw: &Spanned<RawAccount>, key: &str) -> Option<String> {
    match &raw.get_ref().client_id {
        Some(id) if !id.get_ref().trim().is_empty() => Some(id.get_ref().trim().to_owned()),
        Some(id) => {
            cx.problem(
                id.span(),
                key,
                "the client id is empty; copy it from the app you registered at the provider",
            );
            None
        }
        None => {
            cx.problem(
                raw.span(),
                key,
                "missing key `client_id`; copy it from the app you registered at the provider",
            );
            None
        }
    }
}

/// An account's endpoints.
struct Urls {
    authorize: Option<String>,
    token: Option<String>,
    revocation: Option<String>,
    api_base: Option<String>,
    issuer: Option<String>,
}

/// The URLs as written, else the preset's; a token URL is needed unless
/// `issuer` is there to discover it.
fn urls(
    cx: &mut Ctx<'_>,
    n: &str,
    raw: &Spanned<RawAccount>,
    provider: Option<Provider>,
) -> Option<Urls> {
    let r = raw.get_ref();
    let key = |k: &str| format!("accounts.{n}.{k}");
    let mut url = |field: &Option<Spanned<String>>, k: &str, preset: Option<&str>| match field {
        Some(u) => cx.url(u, &key(k)).map(Some),
        None => Some(preset.map(str::to_owned)),
    };
    let authorize = url(
        &r.authorize_url,
        "authorize_url",
        provider.map(Provider::authorize_url),
    );
    let token = url(&r.token_url, "token_url", provider.map(Provider::token_url));
    let revocation = url(&r.revocation_url, "revocation_url", None);
    // A base that paths starting with `/` are joined to: no `//`.
    let api_base = url(
        &r.api_base_url,
        "api_base_url",
        provider.map(Provider::api_base_url),
    )
    .map(|u| u.map(|u| u.trim_end_matches('/').to_owned()));
    let issuer = match &r.issuer {
        Some(i) => issuer(cx, i, &key("issuer")).map(Some),
        None => Some(None),
    };
    if matches!(token, Some(None)) && r.issuer.is_none() {
        cx.problem(raw.span(), &key("token_url"), "missing key `token_url`; give `provider = \"spotify\"` or \"todoist\" for their URLs, `issuer` to discover them, or the provider's token endpoint URL");
    }
    Some(Urls {
        authorize: authorize?,
        token: token?,
        revocation: revocation?,
        api_base: api_base?,
        issuer: issuer?,
    })
}

/// What an account adds to its requests, and who is told when it needs a
/// person.
struct Requests {
    auth_method: Option<AuthMethod>,
    authorize_params: BTreeMap<String, String>,
    token_params: BTreeMap<String, String>,
    redirect_uri: Option<String>,
    notify: Option<Vec<String>>,
}

fn requests(
    cx: &mut Ctx<'_>,
    n: &str,
    r: &RawAccount,
    provider: Option<Provider>,
) -> Option<Requests> {
    let key = |k: &str| format!("accounts.{n}.{k}");
    let auth_method = match &r.token_endpoint_auth_method {
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
    Some(Requests {
        auth_method: auth_method?,
        authorize_params: authorize_params?,
        token_params: token_params?,
        redirect_uri: redirect_uri?,
        notify: notify?,
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
