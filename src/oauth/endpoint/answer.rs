//! What a token endpoint's answer means: a token, or which kind of
//! failure (DESIGN §5), with every secret that was sent scrubbed from what
//! the provider said.

use std::time::Duration;

use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    Lifetime, MAX_DESCRIPTION, MAX_LIFETIME, MAX_RETRY_AFTER, MIN_LIFETIME, RefreshError, Tokens,
};

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
    Err(oauth_error(status, retry_after, body, sent))
}

/// An RFC 6749 §5.2 error answer, typed by the oauth2 crate; anything else
/// with a 4xx is transient.
fn oauth_error(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    sent: &[&str],
) -> RefreshError {
    let transient = |what: String| RefreshError::Transient {
        reason: what,
        retry_after,
    };
    let Ok(parsed) = serde_json::from_slice::<BasicErrorResponse>(body) else {
        return transient(format!(
            "the token endpoint answered {status} without an OAuth error"
        ));
    };
    let code = scrub(parsed.error().as_ref(), sent);
    let description = parsed
        .error_description()
        .map(|d| format!(": {}", scrub(d, sent)))
        .unwrap_or_default();
    let reason = format!("{code}{description}");
    match parsed.error() {
        BasicErrorResponseType::InvalidGrant => RefreshError::Revoked { reason },
        BasicErrorResponseType::InvalidClient
        | BasicErrorResponseType::UnauthorizedClient
        | BasicErrorResponseType::UnsupportedGrantType
        | BasicErrorResponseType::InvalidScope
        | BasicErrorResponseType::InvalidRequest => RefreshError::Rejected {
            reason: format!(
                "the provider refused the client ({reason}); check client_id, client_secret and the token URL in the config"
            ),
        },
        BasicErrorResponseType::Extension(_) => {
            transient(format!("the token endpoint answered {status} {reason}"))
        }
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
pub(super) fn scrub(text: &str, sent: &[&str]) -> String {
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
