//! The two HTTP clients freshd uses, and their redirect policies.
//!
//! - [`token_client`] talks to token endpoints: it never follows a
//!   redirect. On 307/308 a client would re-send the form, refresh token
//!   included, to wherever `Location` points; after a 302 it would trust
//!   whatever server it landed on. A 3xx is a configuration error instead
//!   (see [`crate::oauth::endpoint`]).
//! - [`api_client`] talks to the APIs jobs call with a bearer token: it
//!   follows redirects within the same origin (scheme, host and port) only,
//!   so the token never goes to another host and never over plain HTTP
//!   after HTTPS.
//!
//! Neither keeps idle connections: a token keeper talks to each endpoint a
//! few times an hour, and an idle pool only costs timer wakeups.

use std::time::Duration;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take unless the caller says otherwise.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The most redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;

/// Why a Web API redirect was not followed.
#[derive(Debug, thiserror::Error)]
pub enum RedirectRefused {
    #[error(
        "the API redirected to another origin ({to}); freshd sends the bearer token only to the configured api_base_url's origin ({from})"
    )]
    OtherOrigin { from: String, to: String },
    #[error("the API redirected more than {MAX_REDIRECTS} times")]
    TooMany,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("freshd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
}

/// The client for token endpoints: no redirects, ever.
pub fn token_client() -> Result<reqwest::Client, reqwest::Error> {
    builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The client for Web APIs: same-origin redirects only.
pub fn api_client() -> Result<reqwest::Client, reqwest::Error> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let (from, to) = (origin(first), origin(attempt.url()));
        if from != to {
            return attempt.error(RedirectRefused::OtherOrigin { from, to });
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused::TooMany);
        }
        attempt.follow()
    });
    builder().redirect(policy).build()
}

/// `scheme://host:port`, the unit of trust for a bearer token.
fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// A reqwest error in words, without the URL's query (which could hold a
/// secret on some providers) and without chains of "error sending request".
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer within the timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let host = e
        .url()
        .map(|u| format!(" to {}", u.host_str().unwrap_or("?")))
        .unwrap_or_default();
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        format!("{kind}{host}")
    } else {
        format!("{kind}{host}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_differ_by_scheme_host_and_port() {
        let o = |u: &str| origin(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            o("https://api.example.com/v1/x"),
            o("https://api.example.com:443/y")
        );
        assert_ne!(o("https://api.example.com/"), o("http://api.example.com/"));
        assert_ne!(o("http://127.0.0.1:8080/"), o("http://127.0.0.1:8081/"));
        assert_ne!(o("https://a.example.com/"), o("https://b.example.com/"));
    }

    /// Answers every request with `answer`, recording each request's head.
    async fn server(answer: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 65536];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_bearer_token_never_follows_a_redirect_to_another_origin() {
        let (elsewhere, seen) =
            server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".into()).await;
        let (api, _) = server(format!(
            "HTTP/1.1 302 Found\r\nlocation: {elsewhere}/v1/me\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let err = api_client()
            .unwrap()
            .get(format!("{api}/v1/me"))
            .bearer_auth("at-secret")
            .send()
            .await
            .unwrap_err();
        let text = describe_reqwest(&err);
        assert!(text.contains("another origin"), "{text}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "a request reached the other origin"
        );
    }

    #[tokio::test]
    async fn a_same_origin_redirect_is_followed() {
        // One server: the first answer redirects to a path on itself.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: /v1/moved\r\ncontent-length: 0\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            ] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                socket.write_all(answer.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
            }
        });
        let resp = api_client()
            .unwrap()
            .get(format!("{base}/v1/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.url().path(), "/v1/moved");
    }
}
