//! Unit tests of `oauth::login`.

use super::super::endpoint::Lifetime;
use super::redirect::*;
use super::*;
use crate::oauth::discovery::Endpoints;
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
        &format!("[accounts.a]\nclient_id = \"id\"\ntoken_url = \"https://i.example/t\"\n{extra}"),
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
    let acc = account("scopes = [\"read\"]\nauthorize_params = { access_type = \"offline\" }\n");
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
