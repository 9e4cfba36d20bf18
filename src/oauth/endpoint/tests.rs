//! Unit tests of `oauth::endpoint`.

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
                    let answer = r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#;
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
    let (head, body) = capture("token_endpoint_auth_method = \"none\"\n", Some(HARD_SECRET)).await;
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
        false,
        crate::jobs::TYPES,
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
