//! Unit tests of `oauth::discovery`.

use super::*;

#[test]
fn well_known_urls_follow_rfc8414_then_oidc() {
    assert_eq!(
        well_known_urls("https://login.example.com"),
        [
            "https://login.example.com/.well-known/oauth-authorization-server",
            "https://login.example.com/.well-known/openid-configuration"
        ]
    );
    assert_eq!(
        well_known_urls("https://example.com/tenant/a/"),
        [
            "https://example.com/.well-known/oauth-authorization-server/tenant/a",
            "https://example.com/tenant/a/.well-known/openid-configuration"
        ]
    );
}

#[test]
fn metadata_for_another_issuer_is_refused() {
    let body = br#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/t"}"#;
    let err = parse(
        body,
        "https://good.example",
        "https://good.example/.well-known/x",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("it is for issuer \"https://evil.example\", not \"https://good.example\""),
        "{err}"
    );
    assert!(matches!(
        RefreshError::from(err),
        RefreshError::Rejected { .. }
    ));
}

#[test]
fn metadata_fields_are_read() {
    let body = br#"{"issuer":"https://i.example","authorization_endpoint":"https://i.example/auth",
        "token_endpoint":"https://i.example/token/","revocation_endpoint":"https://i.example/revoke",
        "authorization_response_iss_parameter_supported":true,"jwks_uri":"https://i.example/jwks"}"#;
    let m = parse(body, "https://i.example", "u").unwrap();
    assert_eq!(
        m.token_endpoint.as_deref(),
        Some("https://i.example/token/")
    );
    assert!(m.authorization_response_iss_parameter_supported);
    let bad = br#"{"issuer":"https://i.example","token_endpoint":"javascript:alert(1)"}"#;
    assert!(parse(bad, "https://i.example", "u").is_err());
}

fn account(text: &str) -> Account {
    let config = crate::config::Config::parse(
        &format!("[accounts.a]\nclient_id = \"id\"\n{text}"),
        Path::new("/x.toml"),
        false,
        crate::jobs::TYPES,
    )
    .unwrap();
    (*config.accounts["a"]).clone()
}

#[tokio::test]
async fn explicit_keys_override_discovered_ones_and_the_cache_serves_when_down() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: the server is "down".
    let issuer = "http://127.0.0.1:9";
    let acc = account(&format!(
        "issuer = \"{issuer}\"\ntoken_url = \"http://127.0.0.1:9/mine/\"\n"
    ));
    let d = Discovery::new(&acc, Some(dir.path().to_owned()));
    let http = reqwest::Client::new();
    let err = d.endpoints(&http).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");
    // An earlier fetch left a copy.
    let m = Metadata {
        issuer: issuer.into(),
        authorization_endpoint: Some("http://127.0.0.1:9/auth".into()),
        token_endpoint: Some("http://127.0.0.1:9/token".into()),
        revocation_endpoint: Some("http://127.0.0.1:9/revoke".into()),
        authorization_response_iss_parameter_supported: true,
        token_endpoint_auth_methods_supported: None,
        code_challenge_methods_supported: None,
    };
    d.save(&m, "http://127.0.0.1:9/.well-known/openid-configuration");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cache_path(dir.path(), "a"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let e = d.endpoints(&http).await.unwrap();
    let (token, origin) = e.token_url.unwrap();
    assert_eq!(token, "http://127.0.0.1:9/mine/");
    assert_eq!(origin, Origin::Config);
    let (auth, origin) = e.authorize_url.unwrap();
    assert_eq!(auth, "http://127.0.0.1:9/auth");
    assert!(matches!(origin, Origin::Cache { .. }), "{origin:?}");
    assert!(e.iss_required);
    // A copy for another issuer is not used.
    let other = account("issuer = \"http://127.0.0.1:9/other\"\n");
    let d = Discovery::new(&other, Some(dir.path().to_owned()));
    assert!(d.endpoints(&http).await.is_err());
}

/// A tiny HTTP server on 127.0.0.1: `answer(path)` gives status and body.
async fn serve(answer: fn(&str, &str) -> (u16, String)) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = base.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut lines = BufReader::new(r).lines();
            let first = lines.next_line().await.unwrap().unwrap_or_default();
            while let Ok(Some(l)) = lines.next_line().await {
                if l.is_empty() {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = answer(&path, &issuer);
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = w.write_all(resp.as_bytes()).await;
        }
    });
    base
}

#[tokio::test]
async fn the_oidc_url_is_tried_when_rfc8414_is_not_served() {
    let issuer = serve(|path, issuer| match path {
        "/.well-known/openid-configuration" => (
            200,
            format!(r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"}}"#),
        ),
        _ => (404, String::new()),
    })
    .await;
    let (m, url) = fetch(&reqwest::Client::new(), &issuer).await.unwrap();
    assert_eq!(url, format!("{issuer}/.well-known/openid-configuration"));
    assert_eq!(m.token_endpoint, Some(format!("{issuer}/token")));
}

#[tokio::test]
async fn a_failing_server_is_transient_and_a_missing_document_is_not() {
    let down = serve(|_, _| (503, String::new())).await;
    let err = fetch(&reqwest::Client::new(), &down).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");
    let none = serve(|_, _| (404, String::new())).await;
    let err = fetch(&reqwest::Client::new(), &none).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Invalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no metadata at either well-known URL"),
        "{err}"
    );
}
