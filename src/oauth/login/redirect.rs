//! The redirect's way back: a one-shot listener on the redirect URI's
//! loopback address (the browser's connection kept for the final page),
//! or a pasted redirect URL; and the checks on what it brings (`state`,
//! `iss`, the code).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::{LoginError, LoginOptions};
use crate::oauth::discovery::Endpoints;

/// What the browser (or the pasted URL) brought back.
#[derive(Debug)]
pub(super) struct Redirect {
    pub(super) query: HashMap<String, String>,
}

/// The browser's connection to the loopback listener, kept open until
/// freshd knows whether the login worked, so the page tells the truth.
#[derive(Debug)]
pub(super) struct Browser {
    stream: tokio::net::tcp::OwnedWriteHalf,
}

impl Browser {
    pub(super) async fn success(self, account: &str) {
        let title = format!("freshd is authorized for {account}");
        let text = format!(
            "freshd stored the authorization for account {account}. You can close this tab."
        );
        self.page(&title, &text).await;
    }

    pub(super) async fn failure(self, why: &str) {
        self.page(
            "freshd is not authorized",
            &format!(
                "The login failed: {why}. The terminal where `freshd login` ran says the same."
            ),
        )
        .await;
    }

    async fn page(mut self, title: &str, text: &str) {
        let (title, text) = (html_escape(title), html_escape(text));
        let body = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>{title}</title><h1>{title}</h1><p>{text}</p>\n"
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = self.stream.write_all(head.as_bytes()).await;
        let _ = self.stream.write_all(body.as_bytes()).await;
        let _ = self.stream.shutdown().await;
    }
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Shows `url` and waits for the redirect: on the redirect URI's loopback
/// address (with the browser's connection kept for the final page), or
/// pasted. `name` is the account's.
pub(super) async fn receive(
    name: &str,
    url: &reqwest::Url,
    redirect: &str,
    options: LoginOptions,
) -> Result<(Redirect, Option<Browser>), LoginError> {
    let redirect_url = reqwest::Url::parse(redirect).map_err(|e| LoginError::BadUrl {
        account: name.to_owned(),
        key: "redirect_uri",
        detail: e.to_string(),
    })?;
    let listen = loopback_addr(&redirect_url).filter(|_| !options.paste);
    // Bind before showing the URL, so a fast browser finds us listening.
    let listener = match listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| LoginError::Listen { addr, source })?,
        ),
        None => None,
    };
    eprintln!(
        "To authorize freshd for account {name}, open this URL in a browser and allow access:\n\n  {url}\n"
    );
    let Some(listener) = listener else {
        if !options.paste {
            eprintln!(
                "The redirect URI is not on this machine's loopback address, so freshd cannot catch it."
            );
        }
        return Ok((read_pasted(redirect).await?, None));
    };
    if options.no_browser || !open_browser(url.as_str()) {
        let port = listener.local_addr().map_or(0, |a| a.port());
        eprintln!("{}", headless_hint(name, port));
    }
    eprintln!("Waiting for the browser to come back to {redirect} …");
    let (got, browser) = tokio::time::timeout(
        options.timeout,
        accept_redirect(listener, redirect_url.path()),
    )
    .await
    .map_err(|_| LoginError::Timeout(options.timeout))?;
    Ok((got, Some(browser)))
}

/// What to do when no browser opens here: another machine's browser, with
/// the port forwarded, or paste mode.
pub(super) fn headless_hint(account: &str, port: u16) -> String {
    format!(
        "No browser opens here. Either open the URL on your own machine after forwarding the port with `ssh -L {port}:127.0.0.1:{port} HOST` (HOST is this machine), or stop this and run `freshd login {account} --paste`, which asks for the address the browser ends up at."
    )
}

/// The address to listen on: the redirect URI's own loopback address and
/// port (`localhost` means 127.0.0.1), or `None` when it is not loopback.
pub(super) fn loopback_addr(url: &reqwest::Url) -> Option<SocketAddr> {
    let port = url.port_or_known_default()?;
    let ip = match url.host()? {
        oauth2::url::Host::Ipv4(ip) if ip.is_loopback() => IpAddr::V4(ip),
        oauth2::url::Host::Ipv6(ip) if ip.is_loopback() => IpAddr::V6(ip),
        oauth2::url::Host::Domain("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Starts a browser on `url`; false when there is surely none (no
/// display, or no `xdg-open`).
pub(super) fn open_browser(url: &str) -> bool {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        return false;
    }
    std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Serves the listener until a request for `path` arrives; the browser's
/// connection is kept for the page that tells how the login ended.
pub(super) async fn accept_redirect(listener: TcpListener, path: &str) -> (Redirect, Browser) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        if reader.read_line(&mut line).await.is_err() {
            continue;
        }
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let (req_path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        if req_path != path {
            let _ = write
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let query: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
        return (Redirect { query }, Browser { stream: write });
    }
}

pub(super) async fn read_pasted(redirect: &str) -> Result<Redirect, LoginError> {
    eprintln!(
        "After allowing access, the browser goes to a page starting with {redirect} (it may fail to load; that is fine).\nPaste that page's whole URL here and press Enter:"
    );
    let mut line = String::new();
    let mut stdin = BufReader::new(tokio::io::stdin());
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| LoginError::Paste(e.to_string()))?;
    let url = reqwest::Url::parse(line.trim()).map_err(|e| {
        LoginError::Paste(format!(
            "{e}; paste the whole URL, starting with {redirect}"
        ))
    })?;
    Ok(Redirect {
        query: url.query_pairs().into_owned().collect(),
    })
}

/// The code in the redirect, once `state` matches and `iss` (RFC 9207)
/// names the issuer freshd asked: the forged or mixed-up redirect is
/// refused before anything else in it is believed.
pub(super) fn check_redirect(
    got: &Redirect,
    state: &str,
    redirect: &str,
    endpoints: &Endpoints,
) -> Result<SecretString, LoginError> {
    if got.query.get("state").map(String::as_str) != Some(state) {
        return Err(LoginError::StateMismatch);
    }
    match (got.query.get("iss"), &endpoints.issuer) {
        (Some(iss), Some(expected)) if iss != expected => {
            return Err(LoginError::IssuerMismatch {
                expected: expected.clone(),
                got: iss.chars().filter(|c| !c.is_control()).take(200).collect(),
            });
        }
        (None, Some(expected)) if endpoints.iss_required => {
            return Err(LoginError::MissingIssuer(expected.clone()));
        }
        _ => {}
    }
    if let Some(error) = got.query.get("error") {
        let detail = got
            .query
            .get("error_description")
            .map(|d| format!(" ({})", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        let hint = if error == "access_denied" {
            "; you (or the provider) declined: run the login again and allow access"
        } else {
            ""
        };
        return Err(LoginError::Denied(format!("{error}{detail}{hint}")));
    }
    let code = got
        .query
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LoginError::NoCode(redirect.to_owned()))?;
    Ok(SecretString::from(code.clone()))
}
